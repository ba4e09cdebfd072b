package e2e

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killPoints is how many times each command is killed.
const killPoints = 5

// killer kills walvault commands with SIGKILL at seeded random moments and
// checks the repository after each kill.
type killer struct {
	t    *testing.T
	h    *Harness
	repo *Repo
	wv   *Walvault
	rng  *rand.Rand
	// tally: command -> "killed" / "finished first" counts, for the log.
	killed, finished map[string]int
	// temps counts the temporaries killed processes left in ROOT/.tmp.
	temps int
}

// points returns n kill delays drawn in [0, span), in ascending order.
func (k *killer) points(n int, span time.Duration) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(k.rng.Int64N(int64(span)))
	}
	slices.Sort(ds)
	return ds
}

// runKilled starts walvault with args and kills it after delay, unless it
// ends first. It reports whether it was killed, and the exit status if
// not.
func (k *killer) runKilled(w *Walvault, delay time.Duration, args ...string) (killed bool, exit int) {
	k.t.Helper()
	cmd, out := w.Start(args...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		k.finished[args[0]]++
		exit = cmd.ProcessState.ExitCode()
		k.t.Logf("walvault %s ended (exit %d, %v) before the kill at %v: %s", args[0], exit, err, delay, tail(out.String(), 3))
		return false, exit
	case <-time.After(delay):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		k.t.Logf("kill: %v", err)
	}
	<-done
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		// It ended on its own in the instant before the signal.
		k.finished[args[0]]++
		return false, cmd.ProcessState.ExitCode()
	}
	k.killed[args[0]]++
	k.t.Logf("killed walvault %s after %v", args[0], delay)
	return true, -1
}

// temporaries lists the store's temporary files (ROOT/.tmp).
func (k *killer) temporaries() []string {
	entries, _ := os.ReadDir(filepath.Join(k.repo.Dir, ".tmp"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// checkNothingHalfWritten: every file outside ROOT/.tmp is a whole object
// (the envelope header, or the plain configuration) and no temporary sits
// among the objects; info lists exactly the backups that have a manifest.
func (k *killer) checkNothingHalfWritten(after string) {
	k.t.Helper()
	root := k.repo.Dir
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == ".tmp" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == "walvault.json" {
			return nil
		}
		if strings.HasPrefix(d.Name(), "put-") || strings.Contains(d.Name(), ".tmp") {
			k.t.Errorf("after %s: temporary %s among the objects", after, rel)
		}
		b := make([]byte, 4)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		n, _ := f.Read(b)
		f.Close()
		if n < 4 || !bytes.Equal(b, []byte("WVLT")) {
			k.t.Errorf("after %s: object %s does not start with the envelope header: half-written?", after, rel)
		}
		return nil
	})
	if err != nil {
		k.t.Fatal(err)
	}
	withManifest := map[string]bool{}
	for _, m := range findFiles(filepath.Join(root, "backups"), "backup.json") {
		withManifest[filepath.Base(filepath.Dir(m))] = true
	}
	info := k.wv.Info()
	for _, b := range info.Backups {
		if !withManifest[b.ID] {
			k.t.Errorf("after %s: info lists backup %s, which has no manifest", after, b.ID)
		}
	}
	if len(info.Backups) != len(withManifest) {
		k.t.Errorf("after %s: info lists %d backups, %d have a manifest", after, len(info.Backups), len(withManifest))
	}
}

// checkTemporariesGone: the temporaries a killed process left (before)
// are gone once a later command wrote to the repository.
func (k *killer) checkTemporariesGone(after string, before []string) {
	k.t.Helper()
	now := k.temporaries()
	k.temps += len(before)
	for _, name := range before {
		if slices.Contains(now, name) {
			k.t.Errorf("after %s and a rerun: the killed process's temporary .tmp/%s is still there", after, name)
		}
	}
}

// waitDeadTemporaries waits long enough for the killed process's
// temporaries to count as dead (the store spares those written in the
// last second, which may belong to a Put that is just starting).
func waitDeadTemporaries() { time.Sleep(1100 * time.Millisecond) }

// TestKill9: walvault backup, expire, wal-push, restore and stream, each
// killed with SIGKILL at seeded random moments (killPoints times each).
// After every kill nothing half-written is visible in the directory
// repository and info lists only backups with a manifest; the rerun
// completes (removing the killed process's temporaries), and verify
// passes. A killed restore leaves a directory without recovery.signal that
// restore refuses without --force and completes with it. At the end the
// last restore is started and holds exactly the committed marks.
// newKiller sets up a file repository archived into by a new cluster
// (pgbench scale 1, the marks table) and a killer seeded from
// $WALVAULT_FAULT_SEED or the clock.
func newKiller(t *testing.T) (*killer, *Cluster) {
	h := newHarness(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WALVAULT_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WALVAULT_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("kill seed %d (set WALVAULT_FAULT_SEED=%d to replay)", seed, seed)

	repo := h.NewFileRepo("repo")
	pg := h.InitCluster("primary")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Configure("max_replication_slots = 4")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	pg.PgbenchInit(1)
	pg.CreateMarks()
	return &killer{t: t, h: h, repo: repo, wv: wv, rng: rand.New(rand.NewPCG(seed, 1)),
		killed: map[string]int{}, finished: map[string]int{}}, pg
}

// verify runs walvault verify and fails the test unless it passes.
func (k *killer) verify(after string) {
	k.t.Helper()
	if _, stderr, exit := k.wv.Run("verify"); exit != 0 {
		k.t.Errorf("after %s: verify exit %d:\n%s", after, exit, tail(stderr, 20))
	}
}

func TestKill9(t *testing.T) {
	t.Parallel() // overlaps TestKill9Expire's wait for a dead lock
	k, pg := newKiller(t)
	h, wv, verify := k.h, k.wv, k.verify

	// backup: the span is one whole backup.
	t0 := time.Now()
	wv.MustRun("backup", "--fast")
	span := time.Since(t0)
	for i, d := range k.points(killPoints, span) {
		what := "backup kill " + strconv.Itoa(i+1)
		if killed, exit := k.runKilled(wv, d, "backup", "--fast"); !killed && exit != 0 {
			t.Errorf("%s: backup exited %d without being killed", what, exit)
		}
		k.checkNothingHalfWritten(what)
		temps := k.temporaries()
		waitDeadTemporaries()
		wv.MustRun("backup", "--fast")
		k.checkTemporariesGone(what, temps)
		verify(what)
	}

	// wal-push: segments PostgreSQL has not archived yet, pushed by hand
	// while the archiver is held back.
	setArchiveCommand(t, pg, "/bin/false")
	var segs []string
	for i := 0; i <= killPoints; i++ {
		pg.Exec("INSERT INTO marks VALUES ($1, 'wal-push')", 1000+i)
		segs = append(segs, pg.QueryString("SELECT pg_walfile_name(pg_switch_wal())"))
	}
	pushDir := h.Mkdir(h.Path("push"), 0o755)
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(pg.DataDir, "pg_wal", s))
		if err != nil {
			t.Fatal(err)
		}
		h.WriteFile(filepath.Join(pushDir, s), b, 0o600)
	}
	t0 = time.Now()
	wv.MustRun("wal-push", "--push-ahead", "0", filepath.Join(pushDir, segs[0]))
	span = time.Since(t0)
	for i, d := range k.points(killPoints, span) {
		what := "wal-push kill " + strconv.Itoa(i+1)
		seg := filepath.Join(pushDir, segs[i+1])
		if killed, exit := k.runKilled(wv, d, "wal-push", "--push-ahead", "0", seg); !killed && exit != 0 {
			t.Errorf("%s: wal-push exited %d without being killed", what, exit)
		}
		k.checkNothingHalfWritten(what)
		temps := k.temporaries()
		waitDeadTemporaries()
		wv.MustRun("wal-push", "--push-ahead", "0", seg)
		k.checkTemporariesGone(what, temps)
		verify(what)
	}
	setArchiveCommand(t, pg, suite.walvault+" wal-push %p") // the archiver finds them stored, identical
	marks := pg.CommitMarks(1, 5, "kill", 0)
	pg.SwitchAndWaitArchived()
	sums := pg.CheckBenchInvariants()

	// stream: killed while pgbench writes; each start resumes from its
	// spool. The last one must catch up and stop cleanly.
	bench := pg.StartPgbench(1, 3+killPoints*3)
	for i := range killPoints {
		args := []string{"--slot", "walvault"}
		if i == 0 {
			args = append(args, "--create-slot")
		}
		s := h.StartStream(wv, "stream", false, args...)
		time.Sleep(300*time.Millisecond + time.Duration(k.rng.Int64N(int64(2500*time.Millisecond))))
		if s.Exited() {
			t.Errorf("stream %d exited %d before it was killed\n%s", i+1, s.exit, tail(s.Log(), 20))
		}
		s.Kill()
		k.killed["stream"]++
		what := "stream kill " + strconv.Itoa(i+1)
		k.checkNothingHalfWritten(what)
		verify(what)
	}
	bench.Wait(t)
	s := h.StartStream(wv, "stream", false, "--slot", "walvault")
	s.WaitCaughtUp(wv, pg, 2*time.Minute)
	s.MustTerminate()
	verify("the stream kills")

	// restore: to the end of the archived WAL, killed while it writes.
	pg.Stop("fast")
	dir := h.Path("restored")
	t0 = time.Now()
	wv.MustRun("restore", "--pgdata", dir)
	span = time.Since(t0)
	for i, d := range k.points(killPoints, span) {
		what := "restore kill " + strconv.Itoa(i+1)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		killed, exit := k.runKilled(wv, d, "restore", "--pgdata", dir)
		if !killed {
			if exit != 0 {
				t.Errorf("%s: restore exited %d without being killed", what, exit)
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err == nil {
			t.Errorf("%s: the killed restore left recovery.signal: a half-restored cluster would start recovery", what)
		}
		if empty, _ := dirEmptyOrAbsent(dir); !empty {
			_, stderr := wv.RunExpect(5, "restore", "--pgdata", dir)
			if !strings.Contains(stderr, "--force") || !strings.Contains(stderr, dir) {
				t.Errorf("%s: restore into the half-restored directory: message does not name it and --force:\n%s", what, stderr)
			}
			wv.MustRun("restore", "--pgdata", dir, "--force")
		} else {
			wv.MustRun("restore", "--pgdata", dir)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err != nil {
		wv.MustRun("restore", "--pgdata", dir, "--force")
	}

	verify("everything")
	t.Logf("kills %v; ended before the kill %v; temporaries left by killed processes, all removed by the rerun: %d", k.killed, k.finished, k.temps)

	// The last restore recovers every mark, and pgbench's sums.
	rc := h.ClusterAt("restored", dir)
	rc.Configure("archive_mode = off") // a test restore: keep the repository as it is
	rc.Start()
	rc.WaitPromoted() // no target: it replays all archived WAL, then promotes
	got := rc.MarkIDs()
	want := []int64{}
	for i := 0; i <= killPoints; i++ {
		want = append(want, int64(1000+i))
	}
	for _, m := range marks {
		want = append(want, int64(m.ID))
	}
	slices.Sort(want)
	if !equalInts(got, want) {
		t.Errorf("restored marks %v, want %v", got, want)
	}
	if got := rc.CheckBenchInvariants(); got.HistoryRows < sums.HistoryRows {
		t.Errorf("restored %d pgbench history rows, fewer than the %d before the stream phase", got.HistoryRows, sums.HistoryRows)
	}
	rc.AmCheck()
}

// TestKill9Expire: walvault expire killed with SIGKILL at seeded random
// moments while it removes backups. After every kill nothing half-written
// is visible, info lists only backups with a manifest, and verify passes
// (expire must never leave a listed backup without the WAL it needs). A
// process killed while holding the repository's exclusive lock leaves its
// lock object behind, but a rerun on the same host sees that the holder is
// gone and proceeds at once (exit 0), removing it.
func TestKill9Expire(t *testing.T) {
	t.Parallel()
	k, _ := newKiller(t)
	wv := k.wv
	for range killPoints + 2 {
		wv.MustRun("backup", "--fast")
	}
	// expire: each rerun removes one more backup.
	nBackups := len(wv.Info().Backups)
	t0 := time.Now()
	wv.MustRun("expire", "--retain-full", strconv.Itoa(nBackups-1), "--confirm")
	span := time.Since(t0)
	nBackups--
	for i, d := range k.points(killPoints, span) {
		what := "expire kill " + strconv.Itoa(i+1)
		keep := strconv.Itoa(max(nBackups-1, 1))
		if killed, exit := k.runKilled(wv, d, "expire", "--retain-full", keep, "--confirm"); !killed && exit != 0 && exit != 11 {
			t.Errorf("%s: expire exited %d without being killed", what, exit)
		}
		k.checkNothingHalfWritten(what)
		k.verify(what)
		_, stderr, exit := wv.Run("expire", "--retain-full", keep, "--confirm")
		if exit != 0 {
			t.Errorf("%s: expire rerun exit %d, want 0 (the killed holder's lock is dead)\n%s", what, exit, tail(stderr, 20))
		}
		nBackups = len(wv.Info().Backups)
		k.verify(what + " and rerun")
	}

	wv.MustRun("expire", "--retain-full", "1", "--confirm")
	if n := len(wv.Info().Backups); n != 1 {
		t.Errorf("after expire --retain-full 1, info lists %d backups", n)
	}
	k.checkNothingHalfWritten("the last expire")
	k.verify("the last expire")
	t.Logf("kills %v; ended before the kill %v", k.killed, k.finished)
}

// setArchiveCommand changes archive_command and waits until the server
// uses it.
func setArchiveCommand(t *testing.T, c *Cluster, cmd string) {
	t.Helper()
	c.Exec("ALTER SYSTEM SET archive_command = '" + strings.ReplaceAll(cmd, "'", "''") + "'")
	c.Exec("SELECT pg_reload_conf()")
	waitFor(t, "archive_command reloaded", 30*time.Second, func() (bool, error) {
		var s string
		err := c.tryQueryRow("SHOW archive_command", nil, &s)
		return s == cmd, err
	})
	time.Sleep(time.Second) // the archiver reloads on its own schedule
}
