package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

// Helpers for the `walvault stream` scenarios (stream_test.go): a streamer
// run in the background with its log in a file, its Prometheus metrics, a
// marker loop that keeps committing while the server dies under it, and a
// MinIO server that can be stopped and started again on the same data and
// port.

// ---------------------------------------------------------------------------
// the streamer

// Streamer is a `walvault stream` process.
type Streamer struct {
	h           *Harness
	name        string
	args        []string
	cmd         *exec.Cmd
	logPath     string
	MetricsAddr string // "" unless started with metrics
	done        chan struct{}
	exit        int       // valid once done is closed; -1: killed by a signal
	ended       time.Time // valid once done is closed
}

// streamCluster makes a cluster set up as the stream scenarios need it:
// WAL for replication, no archiving (the stream alone carries WAL), commit
// timestamps for the marks.
func (h *Harness) streamCluster(name string, extra ...string) *Cluster {
	h.t.Helper()
	c := h.InitCluster(name)
	c.Configure(append([]string{
		"wal_level = replica",
		"archive_mode = off",
		"track_commit_timestamp = on",
		"max_wal_senders = 4",
		"max_replication_slots = 4",
	}, extra...)...)
	return c
}

// StartStream starts `walvault stream --spool <base>/<name>-spool args...`
// with w's environment; with metrics it also serves metrics on a free port.
// Its output goes to <base>/<name>.log. The test's cleanup kills it if it
// still runs.
func (h *Harness) StartStream(w *Walvault, name string, metrics bool, args ...string) *Streamer {
	h.t.Helper()
	spool := h.Path(name + "-spool")
	if _, err := os.Stat(spool); errors.Is(err, os.ErrNotExist) {
		h.Mkdir(spool, 0o700)
	}
	// One log per start, holding only the process's own output.
	logPath := h.Path(name + ".log")
	for i := 2; ; i++ {
		if _, err := os.Stat(logPath); errors.Is(err, os.ErrNotExist) {
			break
		}
		logPath = h.Path(fmt.Sprintf("%s-%d.log", name, i))
	}
	s := &Streamer{h: h, name: name, logPath: logPath, done: make(chan struct{})}
	s.args = append([]string{"stream", "--spool", spool}, args...)
	if metrics {
		s.MetricsAddr = "127.0.0.1:" + strconv.Itoa(freePort(h.t))
		s.args = append(s.args, "--metrics-addr", s.MetricsAddr)
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	h.t.Logf("starting walvault %s (log %s)", strings.Join(s.args, " "), filepath.Base(logPath))
	s.cmd = h.command(context.Background(), w.As, w.Env, suite.walvault, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = f, f // a file: the child writes it directly, we read it any time
	if err := s.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		err := s.cmd.Wait()
		s.exit = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.exit = ee.ExitCode()
		} else if err != nil {
			s.exit = -2
		}
		s.ended = time.Now()
		close(s.done)
	}()
	h.t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		recordOutput("walvault "+strings.Join(s.args, " "), s.Log())
		if h.t.Failed() {
			h.t.Logf("log of streamer %s (tail):\n%s", s.name, tail(s.Log(), 40))
		}
	})
	return s
}

// Log returns everything the streamer printed so far.
func (s *Streamer) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Exited reports whether the process has ended.
func (s *Streamer) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to end by itself and returns its
// exit status.
func (s *Streamer) Wait(timeout time.Duration) int {
	s.h.t.Helper()
	select {
	case <-s.done:
		return s.exit
	case <-time.After(timeout):
		s.h.t.Fatalf("streamer %s still runs after %v\nlog:\n%s", s.name, timeout, tail(s.Log(), 30))
		return 0
	}
}

// Terminate sends SIGTERM and waits up to timeout for the process to exit;
// it returns the exit status and how long the exit took.
func (s *Streamer) Terminate(timeout time.Duration) (int, time.Duration) {
	s.h.t.Helper()
	sent := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !s.Exited() {
		s.h.t.Fatalf("SIGTERM streamer %s: %v", s.name, err)
	}
	exit := s.Wait(timeout)
	took := s.ended.Sub(sent)
	s.h.t.Logf("streamer %s: SIGTERM -> exit %d after %v", s.name, exit, took.Round(time.Millisecond))
	return exit, took
}

// MustTerminate is Terminate, failing the test unless the exit is 0.
func (s *Streamer) MustTerminate() {
	s.h.t.Helper()
	if exit, _ := s.Terminate(90 * time.Second); exit != 0 {
		s.h.t.Fatalf("streamer %s exited %d after SIGTERM, want 0\nlog:\n%s", s.name, exit, tail(s.Log(), 40))
	}
}

// Kill ends the process with SIGKILL, as when its host dies.
func (s *Streamer) Kill() {
	s.h.t.Helper()
	_ = s.cmd.Process.Kill()
	<-s.done
}

// WaitStreaming waits until the log says it streams (after connecting, or
// after the n-th connection).
func (s *Streamer) WaitStreaming(n int, timeout time.Duration) {
	s.h.t.Helper()
	waitFor(s.h.t, fmt.Sprintf("streamer %s to stream (connection %d)", s.name, n), timeout, func() (bool, error) {
		if s.Exited() {
			s.h.t.Fatalf("streamer %s exited %d before streaming\nlog:\n%s", s.name, s.exit, tail(s.Log(), 30))
		}
		return strings.Count(s.Log(), "msg=streaming") >= n, nil
	})
}

// Metrics scrapes /metrics: name -> value, for samples without labels.
func (s *Streamer) Metrics() (map[string]float64, error) {
	if s.MetricsAddr == "" {
		return nil, errors.New("streamer started without metrics")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(bufio.NewScanner(resp.Body))
}

func parseMetrics(sc *bufio.Scanner) (map[string]float64, error) {
	m := map[string]float64{}
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		m[name] = v
	}
	return m, sc.Err()
}

// Metric returns one metric (failing the test when it cannot be read) and
// whether it was present.
func (s *Streamer) Metric(name string) (float64, bool) {
	s.h.t.Helper()
	m, err := s.Metrics()
	if err != nil {
		s.h.t.Fatalf("scrape metrics of streamer %s: %v", s.name, err)
	}
	v, ok := m[name]
	return v, ok
}

// WaitUploaded waits until the streamer's uploaded LSN (metrics) reaches
// lsn.
func (s *Streamer) WaitUploaded(lsn uint64, timeout time.Duration) {
	s.h.t.Helper()
	waitFor(s.h.t, fmt.Sprintf("streamer %s to upload up to %s", s.name, formatLSN(lsn)), timeout, func() (bool, error) {
		if s.Exited() {
			s.h.t.Fatalf("streamer %s exited %d\nlog:\n%s", s.name, s.exit, tail(s.Log(), 30))
		}
		m, err := s.Metrics()
		if err != nil {
			return false, err
		}
		up := m["walvault_stream_uploaded_lsn_bytes"]
		return uint64(up) >= lsn, fmt.Errorf("uploaded %s", formatLSN(uint64(up)))
	})
}

// WaitCaughtUp waits until everything the server has flushed is in the
// repository, judged by the repository itself: info's recoverable window
// reaches the server's flush LSN. It works without metrics.
func (s *Streamer) WaitCaughtUp(w *Walvault, c *Cluster, timeout time.Duration) uint64 {
	s.h.t.Helper()
	flush := parseLSN(s.h.t, c.QueryString("SELECT pg_current_wal_flush_lsn()::text"))
	if s.MetricsAddr != "" {
		s.WaitUploaded(flush, timeout)
		return flush
	}
	waitFor(s.h.t, fmt.Sprintf("repository to reach %s", formatLSN(flush)), timeout, func() (bool, error) {
		if s.Exited() {
			s.h.t.Fatalf("streamer %s exited %d\nlog:\n%s", s.name, s.exit, tail(s.Log(), 30))
		}
		to, ok := recoverableTo(s.h.t, w)
		return ok && to >= flush, fmt.Errorf("recoverable to %s", formatLSN(to))
	})
	return flush
}

// recoverableWindow is info --json's recoverable object, in full (the
// suite's Info leaves out its LSNs and timeline).
type recoverableWindow struct {
	From     string `json:"from"`
	To       string `json:"to"`
	FromLSN  string `json:"from_lsn"`
	ToLSN    string `json:"to_lsn"`
	Timeline int    `json:"timeline"`
}

// Recoverable runs info --json quietly (it is polled) and returns its
// recoverable window, nil when there is none or info fails.
func (w *Walvault) Recoverable() *recoverableWindow {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := w.h.command(ctx, w.As, w.Env, suite.walvault, "info", "--json")
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var info struct {
		Recoverable *recoverableWindow `json:"recoverable"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return nil
	}
	return info.Recoverable
}

// recoverableTo is info's recoverable.to_lsn.
func recoverableTo(t testing.TB, w *Walvault) (uint64, bool) {
	t.Helper()
	r := w.Recoverable()
	if r == nil {
		return 0, false
	}
	return parseLSN(t, r.ToLSN), true
}

// parseLSN reads PostgreSQL's X/Y text.
func parseLSN(t testing.TB, s string) uint64 {
	t.Helper()
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("not an LSN: %q", s)
	}
	return h<<32 | l
}

func formatLSN(l uint64) string { return fmt.Sprintf("%X/%X", l>>32, uint32(l)) }

// ---------------------------------------------------------------------------
// marks committed in a loop

// AckedMark is a mark whose INSERT returned success: committed.
type AckedMark struct {
	Mark
	Acked time.Time // when the client saw the commit succeed
}

// committedBy is the best known upper bound of the commit time: the commit
// timestamp, or when it is unknown (the server died before it could be
// read) the moment the client saw the success.
func (m AckedMark) committedBy() time.Time {
	if !m.CommitTS.IsZero() {
		return m.CommitTS
	}
	return m.Acked
}

// MarkLoop commits one mark per transaction every gap until stopped, or
// until the server goes away (unless it reconnects).
type MarkLoop struct {
	c         *Cluster
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	acked     []AckedMark
	ambiguous map[int]bool // INSERT failed: it may or may not have committed
}

// StartMarkLoop commits marks first, first+1, … every gap. With reconnect,
// a failed INSERT or lost connection does not end the loop: it reconnects
// (every 200 ms) and goes on with the next id.
func (c *Cluster) StartMarkLoop(first int, gap time.Duration, reconnect bool) *MarkLoop {
	m := &MarkLoop{c: c, stop: make(chan struct{}), done: make(chan struct{}), ambiguous: map[int]bool{}}
	go m.run(first, gap, reconnect)
	c.h.t.Cleanup(func() { m.Stop() })
	return m
}

func (m *MarkLoop) stopped() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

func (m *MarkLoop) run(id int, gap time.Duration, reconnect bool) {
	defer close(m.done)
	for !m.stopped() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pc, err := m.c.Connect(ctx)
		cancel()
		if err != nil {
			if !reconnect {
				return
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for !m.stopped() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var xid string
			err := pc.QueryRow(ctx, "INSERT INTO marks VALUES ($1, $2) RETURNING xmin::text", id,
				fmt.Sprintf("stream-%d", id)).Scan(&xid)
			acked := time.Now()
			if err != nil {
				cancel()
				m.mu.Lock()
				m.ambiguous[id] = true
				m.mu.Unlock()
				id++
				break
			}
			am := AckedMark{Mark: Mark{ID: id, XID: xid}, Acked: acked}
			// Best effort: the server may die between the two statements.
			_ = pc.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text, pg_xact_commit_timestamp($1::text::xid)`, xid).
				Scan(&am.LSNAfter, &am.CommitTS)
			cancel()
			m.mu.Lock()
			m.acked = append(m.acked, am)
			m.mu.Unlock()
			id++
			select {
			case <-m.stop:
			case <-time.After(gap):
			}
		}
		_ = pc.Close(context.Background())
		if !reconnect {
			return
		}
	}
}

// Stop ends the loop (it may have ended by itself) and returns the
// committed marks in commit order and the ids whose fate is unknown.
func (m *MarkLoop) Stop() ([]AckedMark, map[int]bool) {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
	return m.Results()
}

// Results is what the loop has done so far.
func (m *MarkLoop) Results() ([]AckedMark, map[int]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	amb := map[int]bool{}
	for k := range m.ambiguous {
		amb[k] = true
	}
	return append([]AckedMark(nil), m.acked...), amb
}

// Count is how many marks have been committed so far.
func (m *MarkLoop) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.acked)
}

// Ended reports whether the loop ended by itself (the server went away).
func (m *MarkLoop) Ended() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// markCheck is what a restored cluster holds of the committed marks.
type markCheck struct {
	Recovered     int       // committed marks recovered
	Lost          int       // committed marks not recovered
	LastCommitted AckedMark // the last committed mark
	NewestTS      time.Time // commit time of the newest recovered mark
	LossSeconds   float64   // LastCommitted's commit time - NewestTS (0 if nothing is lost)
}

// checkMarks compares the marks of a restored cluster with those committed:
// every recovered id must have been committed (or be of unknown fate), and
// the committed ones recovered must be a prefix of those committed: no
// holes. It returns how many were lost and how long before the last commit
// the recovery point lies.
func checkMarks(t testing.TB, rc *Cluster, acked []AckedMark, ambiguous map[int]bool) markCheck {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no marks were committed")
	}
	got := rc.MarkIDs()
	present := map[int64]bool{}
	for _, id := range got {
		present[id] = true
	}
	isAcked := map[int64]bool{}
	for _, m := range acked {
		isAcked[int64(m.ID)] = true
	}
	for _, id := range got {
		if !isAcked[id] && !ambiguous[int(id)] {
			t.Errorf("restored cluster holds mark %d, which was never committed", id)
		}
	}
	var res markCheck
	res.LastCommitted = acked[len(acked)-1]
	for i, m := range acked {
		if present[int64(m.ID)] {
			if res.Recovered != i {
				t.Errorf("hole: mark %d (committed %s) recovered but mark %d (committed earlier, %s) is missing",
					m.ID, m.committedBy().Format(time.RFC3339Nano), acked[res.Recovered].ID,
					acked[res.Recovered].committedBy().Format(time.RFC3339Nano))
				break
			}
			res.Recovered++
		}
	}
	res.Lost = len(acked) - res.Recovered
	if len(got) > 0 {
		var ts *time.Time
		rc.QueryRow("SELECT max(pg_xact_commit_timestamp(xmin)) FROM marks", nil, &ts)
		if ts == nil {
			t.Fatal("restored marks have no commit timestamps (track_commit_timestamp off?)")
		}
		res.NewestTS = *ts
	}
	if res.Lost > 0 {
		if res.NewestTS.IsZero() {
			res.LossSeconds = res.LastCommitted.committedBy().Sub(acked[0].committedBy()).Seconds()
		} else {
			res.LossSeconds = max(0, res.LastCommitted.committedBy().Sub(res.NewestTS).Seconds())
		}
	}
	return res
}

// ---------------------------------------------------------------------------
// pgbench that may die with its server

// WaitEnded waits for pgbench to end and returns its error without failing
// the test (the server may have died under it).
func (p *Pgbench) WaitEnded(timeout time.Duration) (string, error) {
	select {
	case err := <-p.done:
		p.done <- err // Cleanup reads it again
		recordOutput("pgbench", p.out.String())
		return p.out.String(), err
	case <-time.After(timeout):
		return "", fmt.Errorf("pgbench still runs after %v", timeout)
	}
}

// ---------------------------------------------------------------------------
// restore to latest

// restoreLatest restores the repository's latest state into a new data
// directory, starts it and waits for promotion.
func (h *Harness) restoreLatest(w *Walvault, env []string, name string) *Cluster {
	h.t.Helper()
	dir := h.Path(name)
	start := time.Now()
	// S3 credentials are in this shell's environment only (ignored for a
	// directory repository).
	w.MustRun("restore", "--pgdata", dir, "--target-action", "promote", "--copy-s3-credentials")
	rc := h.ClusterAt(name, dir)
	rc.Env = env
	rc.Start()
	rc.WaitPromoted()
	h.t.Logf("restored %s to latest and promoted in %v", name, time.Since(start).Round(time.Millisecond))
	return rc
}

// ---------------------------------------------------------------------------
// a MinIO server that can be restarted on the same data and port

// minioProc is a MinIO server process with fixed credentials and port.
type minioProc struct {
	Server *miniotest.Server // Endpoint and credentials, for clients
	dir    string
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// startMinio starts MinIO on dir (data below dir/data) listening on addr,
// with the given root credentials (new random ones when empty). The test's
// cleanup kills it.
func startMinio(t testing.TB, dir, addr, access, secret string) *minioProc {
	t.Helper()
	bin, err := miniotest.FindBinary()
	if err != nil {
		if errors.Is(err, miniotest.ErrNoBinary) && os.Getenv("CI") == "" {
			t.Skipf("skipping test that needs a MinIO server: %v", err)
		}
		t.Fatal(err)
	}
	if access == "" {
		access, secret = "walvault"+randomHex(6), randomHex(20)
	}
	if addr == "" {
		addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	}
	for _, d := range []string{filepath.Join(dir, "data"), filepath.Join(dir, "certs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	m := &minioProc{dir: dir, addr: addr, exited: make(chan struct{}), log: filepath.Join(dir, "minio.log")}
	m.Server = &miniotest.Server{Endpoint: "http://" + addr, AccessKey: access, SecretKey: secret, Region: "us-east-1", LogFile: m.log}
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	console := "127.0.0.1:" + strconv.Itoa(freePort(t))
	m.cmd = exec.Command(bin, "server", filepath.Join(dir, "data"), "--address", addr, "--console-address", console,
		"--certs-dir", filepath.Join(dir, "certs"))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	m.cmd.Env = append(env, "MINIO_ROOT_USER="+access, "MINIO_ROOT_PASSWORD="+secret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_REGION=us-east-1")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.cmd.Wait(); close(m.exited) }()
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(m.log)
			t.Logf("MinIO log (tail):\n%s", tail(string(b), 30))
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, "MinIO at "+addr+" to be healthy", time.Minute, func() (bool, error) {
		select {
		case <-m.exited:
			b, _ := os.ReadFile(m.log)
			t.Fatalf("minio exited during startup:\n%s", tail(string(b), 20))
		default:
		}
		resp, err := client.Get(m.Server.Endpoint + "/minio/health/live")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("status %s", resp.Status)
	})
	return m
}

// Stop kills the server's process group (SIGKILL: an outage, not a
// shutdown) and waits for it.
func (m *minioProc) Stop() {
	select {
	case <-m.exited:
		return
	default:
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	<-m.exited
}

// Restart starts a new server on the same data directory, address and
// credentials.
func (m *minioProc) Restart(t testing.TB) *minioProc {
	t.Helper()
	m.Stop()
	return startMinio(t, m.dir, m.addr, m.Server.AccessKey, m.Server.SecretKey)
}
