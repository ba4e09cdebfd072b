package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/walvault/walvault/internal/faultproxy"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// progressLine is a "progress" record of --log-format json.
type progressLine struct {
	Msg     string  `json:"msg"`
	Phase   string  `json:"phase"`
	Bytes   int64   `json:"bytes"`
	Total   *int64  `json:"total_bytes"`
	Percent float64 `json:"percent"`
	Rate    *int64  `json:"bytes_per_second"`
	Final   bool    `json:"final"`
}

// progressLines returns the progress records of phase in stderr.
func progressLines(t *testing.T, stderr, phase string) []progressLine {
	t.Helper()
	var out []progressLine
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var l progressLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "progress" {
			continue
		}
		if l.Phase == phase {
			out = append(out, l)
		}
	}
	return out
}

// checkProgressLines: at least two periodic lines, bytes never going back,
// a known total, and a final line.
func checkProgressLines(t *testing.T, what string, lines []progressLine) progressLine {
	t.Helper()
	if len(lines) < 3 {
		t.Fatalf("%s: %d progress lines, want at least 2 periodic ones and a final one: %+v", what, len(lines), lines)
	}
	var last int64
	for i, l := range lines {
		if l.Bytes < last {
			t.Errorf("%s: line %d: bytes went back from %d to %d", what, i, last, l.Bytes)
		}
		last = l.Bytes
		if l.Total == nil || *l.Total <= 0 || l.Percent < 0 || l.Percent > 100 {
			t.Errorf("%s: line %d: no sane total: %+v", what, i, l)
		}
		if l.Final != (i == len(lines)-1) {
			t.Errorf("%s: line %d of %d: final %v", what, i, len(lines), l.Final)
		}
	}
	final := lines[len(lines)-1]
	if final.Bytes <= 0 || final.Rate == nil || *final.Rate <= 0 {
		t.Errorf("%s: final line %+v", what, final)
	}
	return final
}

// TestProgressLines: backup and restore writing to a pipe log a progress
// line every --progress-interval with sane figures, and nothing with
// --no-progress. The backup is throttled (--max-rate) and the restore
// reads its chunks through a proxy that delays each by 0.5 to 1 s, so both
// last several intervals whatever the machine's speed.
func TestProgressLines(t *testing.T) {
	h := newHarness(t)
	srv := miniotest.Start(t)
	const bucket, prefix = "walvault-progress", "clusters/progress"
	srv.CreateBucket(t, bucket)
	proxy, err := faultproxy.Start(faultproxy.Options{
		Upstream:  srv.Endpoint,
		Rate:      1,
		Kinds:     []faultproxy.Kind{faultproxy.Slow},
		SlowDelay: time.Second,
		Filter: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/backups/") && strings.Contains(r.URL.Path, "/data/")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	repo := s3Repo(h, srv, bucket, prefix, srv.Endpoint)

	pg := h.InitCluster("primary")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...).With("WALVAULT_LOG_FORMAT=json", "WALVAULT_PROGRESS_INTERVAL=1s")
	wv.MustRun("init")
	pg.PgbenchInit(5)

	// 32 MB/s: a backup of about 100 MB lasts 3 s or more.
	// Chunks: the proxy slows the reads of chunks (under /data/).
	_, stderr := wv.RunExpect(0, "backup", "--fast", "--max-rate", "32768", "--chunks")
	backupFinal := checkProgressLines(t, "backup", progressLines(t, stderr, "backup"))
	info := wv.Info()
	if len(info.Backups) != 1 {
		t.Fatalf("backups %+v", info.Backups)
	}

	slow := wv.With("WALVAULT_S3_ENDPOINT=" + proxy.URL)
	_, stderr = slow.RunExpect(0, "restore", "--pgdata", h.Path("restored"), "--workers", "1", "--copy-s3-credentials")
	final := checkProgressLines(t, "restore", progressLines(t, stderr, "restore"))
	if final.Bytes != *final.Total || final.Bytes != info.Backups[0].Bytes || final.Percent != 100 {
		t.Errorf("restore's final progress %+v, backup of %d bytes", final, info.Backups[0].Bytes)
	}
	// The backup counts the tar data the server's estimate is about, not
	// the server's backup_manifest, which restore does count.
	var manifestBytes int64
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var l struct {
			Msg, Archive string
			Bytes        int64
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "restoring archive" && l.Archive == "backup_manifest" {
			manifestBytes = l.Bytes
		}
	}
	if manifestBytes == 0 || backupFinal.Bytes != info.Backups[0].Bytes-manifestBytes {
		t.Errorf("backup's final progress %d bytes; the backup holds %d, of which %d of backup_manifest", backupFinal.Bytes, info.Backups[0].Bytes, manifestBytes)
	}

	_, stderr = slow.RunExpect(0, "restore", "--pgdata", h.Path("restored-quiet"), "--workers", "1", "--no-progress", "--copy-s3-credentials")
	if strings.Contains(stderr, `"msg":"progress"`) {
		t.Errorf("restore --no-progress logged progress:\n%s", tail(stderr, 20))
	}
	if st := proxy.Stats(); st.Injected[faultproxy.Slow] < 6 {
		t.Errorf("the proxy slowed %d chunk reads, want every one of two restores: %v", st.Injected[faultproxy.Slow], st)
	}

	// On a terminal: a bar, log records on clean lines, a final line.
	t.Run("terminal", func(t *testing.T) {
		out := runOnTerminal(t, h, slow, 100, "restore", "--pgdata", h.Path("restored-tty"), "--workers", "1", "--copy-s3-credentials")
		checkTerminalOutput(t, out, 100)
	})

	// A drill shows its restore the same way (as root, the server runs as
	// postgres, as in the drill tests).
	pg.SwitchAndWaitArchived()
	drill := slow
	if suite.pgUser != nil {
		drill = slow.AsCurrentUser()
	}
	drill.Timeout = 6 * time.Minute
	stdout, stderr := drill.RunExpect(0, "drill", "--workers", "1")
	if !strings.Contains(stdout, "walvault drill PASSED") {
		t.Errorf("drill report:\n%s", stdout)
	}
	final = checkProgressLines(t, "drill's restore", progressLines(t, stderr, "restore"))
	if final.Bytes != info.Backups[0].Bytes {
		t.Errorf("drill's restore: final progress %+v, backup of %d bytes", final, info.Backups[0].Bytes)
	}
}

// runOnTerminal runs walvault with its stderr on a pseudo-terminal cols
// wide and returns what it wrote there. The terminal comes from /dev/ptmx
// directly: a few ioctls, no dependency.
func runOnTerminal(t *testing.T, h *Harness, w *Walvault, cols uint16, args ...string) string {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	cmd := h.command(ctx, w.As, append(append([]string(nil), w.Env...), "TERM=xterm", "WALVAULT_LOG_FORMAT=text"), suite.walvault, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once the program has exited
		read <- b
	}()
	err = cmd.Wait()
	out := string(<-read)
	recordOutput("walvault "+strings.Join(args, " ")+" (on a terminal)", stdout.String()+out)
	if err != nil {
		t.Fatalf("walvault %s on a terminal: %v\n%s", strings.Join(args, " "), err, tail(out, 30))
	}
	return out
}

// checkTerminalOutput: bar frames that fit the width, log records that
// start on a line of their own, a final line that stays.
func checkTerminalOutput(t *testing.T, out string, cols int) {
	t.Helper()
	frames := 0
	for _, f := range strings.Split(out, "\r") {
		f = strings.TrimSuffix(f, "\x1b[K")
		if !strings.HasPrefix(f, "restore  ") {
			continue
		}
		frames++
		if n := utf8.RuneCountInString(strings.TrimRight(f, "\n")); n >= cols {
			t.Errorf("a frame of %d columns on a terminal of %d: %q", n, cols, f)
		}
	}
	if frames < 4 {
		t.Errorf("%d bar frames in a restore of several seconds:\n%q", frames, tail(out, 20))
	}
	records := 0
	for i := 0; ; {
		j := strings.Index(out[i:], "level=")
		if j < 0 {
			break
		}
		records++
		at := i + j
		// A record starts after "time=…" at the start of the output, of a
		// line, or of a line the bar was cleared from.
		start := strings.LastIndex(out[:at], "time=")
		before := out[:max(start, 0)]
		if start < 0 || !(before == "" || strings.HasSuffix(before, "\n") || strings.HasSuffix(before, "\r\x1b[K")) {
			t.Errorf("a log record not at the start of a clean line: %q", out[max(0, at-120):min(len(out), at+40)])
		}
		i = at + 1
	}
	// Without records the loop above checks nothing: a restore logs at
	// least its start and each archive it restores.
	if records == 0 {
		t.Errorf("no log record in the output:\n%q", tail(out, 20))
	}
	if !regexp.MustCompile(`\rrestore  [0-9.]+ MiB / [0-9.]+ MiB  100%  avg [0-9.]+ [KMG]?i?B/s  [0-9.]+s\x1b\[K\r?\n`).MatchString(out) {
		t.Errorf("no final line kept:\n%q", tail(out, 20))
	}
}
