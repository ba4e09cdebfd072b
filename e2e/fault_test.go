package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/faultproxy"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// faultRate is the fraction of S3 requests the proxy breaks in the fault
// tests: the middle of the 10–20% the tests promise to survive.
const faultRate = 0.15

// faultSeed is the proxy's seed: $WALVAULT_FAULT_SEED, else taken from the
// clock, and always logged so that a failing run can be replayed (as far as
// concurrent requests allow: the seed fixes the sequence of decisions, not
// which request draws which).
func faultSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WALVAULT_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WALVAULT_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("fault seed %d (set WALVAULT_FAULT_SEED=%d to replay)", seed, seed)
	return seed
}

// s3Repo describes a repository in bucket/prefix reached through endpoint
// (the proxy, or MinIO itself) with the server's credentials.
func s3Repo(h *Harness, srv *miniotest.Server, bucket, prefix, endpoint string) *Repo {
	h.t.Helper()
	identity := h.Path(strings.ReplaceAll(prefix, "/", "-") + "-identity.txt")
	r := &Repo{URL: "s3://" + bucket + "/" + prefix, IdentityFile: identity, Recipient: h.Keygen(identity)}
	r.WriterKeyFile = h.WriterKey(identity, strings.TrimSuffix(identity, "-identity.txt")+"-writer.key", "e2e-s3")
	r.Env = s3Env(r, srv, endpoint)
	return r
}

func s3Env(r *Repo, srv *miniotest.Server, endpoint string) []string {
	registerSecret("S3 secret key", srv.SecretKey)
	return []string{
		"WALVAULT_REPO=" + r.URL,
		"WALVAULT_S3_ENDPOINT=" + endpoint,
		"WALVAULT_S3_PATH_STYLE=true",
		"WALVAULT_S3_REGION=" + srv.Region,
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
		"WALVAULT_AGE_RECIPIENTS=" + r.Recipient,
		"WALVAULT_AGE_IDENTITY_FILE=" + r.IdentityFile,
		"WALVAULT_WRITER_KEY_FILE=" + r.WriterKeyFile,
	}
}

// outcomes tallies how the commands run under faults ended.
type outcomes struct {
	t    testing.TB
	runs map[string][]int // command -> exit statuses, in order
}

func newOutcomes(t testing.TB) *outcomes { return &outcomes{t: t, runs: map[string][]int{}} }

func (o *outcomes) add(cmd string, exit int) { o.runs[cmd] = append(o.runs[cmd], exit) }

func (o *outcomes) String() string {
	var cmds []string
	for c := range o.runs {
		cmds = append(cmds, c)
	}
	sort.Strings(cmds)
	var b strings.Builder
	for _, c := range cmds {
		ok := 0
		for _, e := range o.runs[c] {
			if e == 0 {
				ok++
			}
		}
		fmt.Fprintf(&b, "%s: %d runs, %d succeeded, exits %v; ", c, len(o.runs[c]), ok, o.runs[c])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// storageFailure matches what a command that gave up on the storage must
// say: which operation, and that it gave up after retrying.
var storageFailure = regexp.MustCompile(`(?i)(giving up after \d+ attempts|storage|s3 (get|put|list|stat|delete))`)

// runUntilOK runs walvault up to tries times until it succeeds. Every
// failure must be the documented "storage unreachable after retries"
// (exit 7) with a message that says so; anything else fails the test. It
// returns stdout of the run that succeeded, and whether one did. before,
// if set, runs before each retry.
func (o *outcomes) runUntilOK(w *Walvault, tries int, before func(), args ...string) (string, bool) {
	o.t.Helper()
	for i := 1; i <= tries; i++ {
		if i > 1 && before != nil {
			before()
		}
		stdout, stderr, exit := w.Run(args...)
		o.add(args[0], exit)
		if exit == 0 {
			return stdout, true
		}
		if exit != 7 {
			o.t.Errorf("walvault %s under faults: exit %d; the only failure S3 faults may cause is 7 (storage unreachable after retries)\nstderr:\n%s",
				strings.Join(args, " "), exit, tail(stderr, 30))
			return "", false
		}
		if !storageFailure.MatchString(stderr) {
			o.t.Errorf("walvault %s exited 7 without saying what failed:\n%s", strings.Join(args, " "), tail(stderr, 20))
		}
		o.t.Logf("walvault %s failed clearly under faults (exit 7), attempt %d of %d", args[0], i, tries)
	}
	return "", false
}

// archiveFailures returns the exit statuses of failed archive_command runs
// in a server log.
func archiveFailures(log string) []int {
	var codes []int
	for _, m := range regexp.MustCompile(`archive command failed with exit code (\d+)`).FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		codes = append(codes, n)
	}
	return codes
}

// TestFaultyS3: archiving under pgbench load, a base backup and a
// point-in-time restore, with PostgreSQL's recovery fetching WAL, all
// through a proxy that breaks 15% of the S3 requests (server errors, slow
// answers, dropped connections, cut and truncated bodies). Every command
// must succeed or fail with exit 7 and say so; failed ones are rerun, as an
// operator or PostgreSQL would. The restored cluster must hold exactly the
// commits up to the target, keep pgbench's invariants and pass pg_amcheck;
// walvault verify without the proxy must pass; and the proxy must have
// injected every kind of fault.
func TestFaultyS3(t *testing.T) {
	h := newHarness(t)
	srv := miniotest.Start(t)
	const bucket, prefix = "walvault-faults", "clusters/faulty"
	srv.CreateBucket(t, bucket)
	proxy, err := faultproxy.Start(faultproxy.Options{
		Upstream:  srv.Endpoint,
		Rate:      faultRate,
		Seed:      faultSeed(t),
		SlowDelay: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	repo := s3Repo(h, srv, bucket, prefix, proxy.URL)
	direct := repo.Walvault(h, s3Env(repo, srv, srv.Endpoint)...) // no faults
	o := newOutcomes(t)

	pg := h.InitCluster("primary")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	if _, ok := o.runUntilOK(wv, 5, nil, "init"); !ok {
		t.Fatalf("init never succeeded under faults (%s)", o)
	}
	pg.PgbenchInit(3)
	pg.CreateMarks()

	// Archiving under load: pgbench plus forced segment switches, so that
	// archive_command runs many times through the proxy.
	bench := pg.StartPgbench(2, 25)
	for range 6 {
		time.Sleep(time.Second)
		pg.Exec("SELECT pg_switch_wal()")
	}
	if _, ok := o.runUntilOK(wv, 4, nil, "backup", "--fast", "--label", "under-faults"); !ok {
		t.Fatalf("backup never succeeded under faults (%s)", o)
	}
	marks := pg.CommitMarks(1, 24, "fault", 120*time.Millisecond)
	bench.Wait(t)
	primarySums := pg.CheckBenchInvariants()
	pg.SwitchAndWaitArchived()
	archived := pg.QueryString("SELECT archived_count::text FROM pg_stat_archiver")
	t.Logf("archiver: %s files archived; proxy so far: %v", archived, proxy.Stats())

	const k = 14 // recover marks 1..k
	before, after := marks[k-1].CommitTS, marks[k].CommitTS
	target := before.Add(after.Sub(before) / 2).UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	pg.Stop("immediate")
	for _, line := range strings.Split(pg.Log(), "\n") {
		if strings.Contains(line, "walvault: ") || strings.Contains(line, "archive command failed") {
			t.Logf("primary's log: %s", line)
		}
	}
	for _, code := range archiveFailures(pg.Log()) {
		o.add("wal-push (archive_command)", code)
		if code != 7 {
			t.Errorf("archive_command (wal-push) failed with exit %d under S3 faults; want 7 (storage unreachable after retries)", code)
		}
	}
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	// Restore through the proxy. A failed restore leaves the directory
	// without recovery.signal, refuses to restore into it again without
	// --force, and is rerun with --force.
	dir := h.Path("restored")
	restoreArgs := []string{"restore", "--pgdata", dir, "--target-time", target, "--target-action", "promote", "--copy-s3-credentials"}
	checkFailedRestore := func() {
		if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err == nil {
			t.Errorf("a failed restore left recovery.signal in %s: the half-restored cluster would start", dir)
		}
		if empty, _ := dirEmptyOrAbsent(dir); !empty {
			wv.RunExpect(5, restoreArgs...)
		}
	}
	var ok bool
	for i := 1; i <= 4 && !ok; i++ {
		args := restoreArgs
		if i > 1 {
			checkFailedRestore()
			args = append(args, "--force")
		}
		_, ok = o.runUntilOK(wv, 1, nil, args...)
	}
	if !ok {
		t.Fatalf("restore never succeeded under faults (%s)", o)
	}

	// Recovery fetches WAL through the proxy. A wal-fetch that gives up
	// exits 255, which makes PostgreSQL stop with FATAL instead of ending
	// recovery early; the operator starts it again and replay resumes.
	rc := h.ClusterAt("restored", dir)
	rc.Env = wv.Env
	starts := 0
	for {
		starts++
		err := rc.TryStart()
		if err == nil && waitRecoveryEnd(t, rc) {
			break
		}
		// (A FATAL may come after "selected new timeline ID": at the end
		// of recovery PostgreSQL fetches the old timeline's history file.
		// The next start then replays to the target again.)
		if log := rc.Log(); !strings.Contains(log, "FATAL") {
			t.Fatalf("server stopped during recovery without FATAL (start %d): %v\n%s", starts, err, rc.LogTail(40))
		}
		t.Logf("recovery stopped with FATAL under faults (start %d); the server log ends:\n%s", starts, rc.LogTail(14))
		o.add("recovery (PostgreSQL with wal-fetch)", 1)
		if starts == 5 {
			t.Fatalf("recovery did not complete in %d starts (%s)", starts, o)
		}
	}
	o.add("recovery (PostgreSQL with wal-fetch)", 0)

	if got, want := rc.MarkIDs(), seq(1, k); !equalInts(got, want) {
		t.Errorf("recovered marks %v, want exactly %v: a silently wrong restore", got, want)
	}
	sums := rc.CheckBenchInvariants()
	if sums.HistoryRows == 0 || sums.HistoryRows > primarySums.HistoryRows {
		t.Errorf("recovered %d pgbench history rows; the primary had %d, and some ran before the target", sums.HistoryRows, primarySums.HistoryRows)
	}
	rc.AmCheck()
	rc.Stop("fast")

	// The repository itself: every object reads back and verifies.
	direct.MustRun("verify")

	// verify through the proxy reads every object again: it must pass or
	// fail with exit 7, never report damage that is not there. It runs
	// at least once, and until every kind of fault has happened (a handful
	// of runs at most).
	for i := 0; i < 6 && (i == 0 || missingKinds(proxy.Stats()) != nil); i++ {
		o.runUntilOK(wv, 1, nil, "verify")
	}

	st := proxy.Stats()
	t.Logf("proxy: %v", st)
	t.Logf("outcomes: %s", o)
	if missing := missingKinds(st); missing != nil {
		t.Errorf("the proxy injected no %v fault in %d requests: the test did not prove what it claims", missing, st.Requests)
	}
	// The fraction drawn is binomial: allow four standard deviations.
	n := float64(st.Requests)
	sd := math.Sqrt(faultRate * (1 - faultRate) / n)
	if f := float64(st.Total()) / n; math.Abs(f-faultRate) > 4*sd {
		t.Errorf("fault fraction %.3f over %d requests, want %.2f ± %.3f", f, st.Requests, faultRate, 4*sd)
	}
}

// missingKinds lists the kinds of fault the proxy has not injected yet.
func missingKinds(st faultproxy.Stats) []faultproxy.Kind {
	var missing []faultproxy.Kind
	for _, k := range faultproxy.Kinds() {
		if st.Injected[k] == 0 {
			missing = append(missing, k)
		}
	}
	return missing
}

// waitRecoveryEnd waits until the server is promoted (true) or has
// stopped (false).
func waitRecoveryEnd(t testing.TB, c *Cluster) bool {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for i := 0; ; i++ {
		var inRecovery bool
		err := c.tryQueryRow("SELECT pg_is_in_recovery()", nil, &inRecovery)
		if err == nil && !inRecovery {
			return true
		}
		if err != nil && i%10 == 9 && !c.Running() {
			return false
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still in recovery after 4m (err %v)\n%s", c.Name, err, c.LogTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lastMatching returns the last line of s that contains sub.
func lastMatching(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
