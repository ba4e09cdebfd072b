package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDamagedWALFailsRecovery: one flipped byte in an archived WAL segment
// in the middle of the range a restore needs must stop recovery with an
// error. PostgreSQL treats an ordinary restore_command failure as "end of
// WAL" and would promote with the rows before the damage silently missing;
// wal-fetch must exit 255 so that it aborts instead.
func TestDamagedWALFailsRecovery(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	repo := f.copyRepo(h, "repo")
	wv := repo.Walvault(h)

	// Three kinds of damage, each to its own segment; wal-fetch must exit
	// 255 for each, name the object, and leave nothing at DEST.
	damage := []struct {
		what  string
		seg   string
		apply func(b []byte) []byte
	}{
		{"one body byte flipped", f.MarkSegs[2], func(b []byte) []byte {
			b[objectHeaderLen+(len(b)-objectHeaderLen)/2] ^= 0x01
			return b
		}},
		{"truncated", f.MarkSegs[3], func(b []byte) []byte { return b[:objectHeaderLen+(len(b)-objectHeaderLen)/2] }},
		{"header checksum byte flipped", f.MarkSegs[4], func(b []byte) []byte {
			b[objectHeaderLen-1] ^= 0x80
			return b
		}},
	}
	for _, d := range damage {
		path := walObjectPath(repo, d.seg)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("segment %s is not where the layout says: %v", d.seg, err)
		}
		if len(b) <= objectHeaderLen+1 {
			t.Fatalf("%s is %d bytes: no body to damage", path, len(b))
		}
		if err := os.WriteFile(path, d.apply(b), 0o644); err != nil {
			t.Fatal(err)
		}
		dest := h.Path("fetched-" + d.seg)
		_, stderr := wv.RunExpect(255, "wal-fetch", d.seg, dest)
		if !strings.Contains(stderr, d.seg) {
			t.Errorf("wal-fetch of a %s object: message does not name %s:\n%s", d.what, d.seg, stderr)
		}
		if _, err := os.Stat(dest); err == nil {
			t.Errorf("wal-fetch of a %s object left a file at DEST", d.what)
		}
	}
	damaged := damage[0].seg

	// Restore to the latest point; recovery must fail at the damaged segment.
	dir := h.Path("restored")
	wv.MustRun("restore", "--pgdata", dir)
	rc := h.ClusterAt("restored", dir)
	// pg_ctl returns when the server accepts (read-only) connections or when
	// startup fails; either way, it must not get past the damage.
	if err := rc.TryStart(); err != nil {
		t.Logf("start failed as expected: %v", err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for rc.Running() {
		var inRecovery bool
		if err := rc.tryQueryRow("SELECT pg_is_in_recovery()", nil, &inRecovery); err == nil && !inRecovery {
			ids := rc.MarkIDs()
			t.Fatalf("server finished recovery past a damaged segment, with marks %v (want recovery to fail before promotion)", ids)
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still running 3m after start with a damaged segment in the needed range\nlog:\n%s", rc.LogTail(40))
		}
		time.Sleep(300 * time.Millisecond)
	}
	log := rc.Log()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "FATAL") || strings.Contains(line, damaged) {
			t.Logf("server log: %s", line)
		}
	}
	if !strings.Contains(log, "FATAL") {
		t.Errorf("server stopped without a FATAL in its log:\n%s", tail(log, 40))
	}
	for _, promoted := range []string{"selected new timeline ID", "archive recovery complete"} {
		if strings.Contains(log, promoted) {
			t.Errorf("server log says %q: recovery ended normally despite the damaged segment", promoted)
		}
	}
	if !strings.Contains(log, damaged) {
		t.Errorf("server log does not name the damaged segment %s (wal-fetch's message should reach it)", damaged)
	}
}

// TestWrongIdentity: a restore with an identity the repository was not
// encrypted to fails with the integrity exit code and leaves nothing
// behind, and wal-fetch with it exits 255 (never "not found"). The right
// identity then restores into the same directory.
func TestWrongIdentity(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	other := h.Path("other-identity.txt")
	h.Keygen(other)
	wrong := f.Repo.Walvault(h, "WALVAULT_AGE_IDENTITY_FILE="+other)

	dir := h.Path("restored")
	_, stderr := wrong.RunExpect(6, "restore", "--pgdata", dir)
	if !regexp.MustCompile(`(?i)identit|decrypt|key`).MatchString(stderr) {
		t.Errorf("restore with the wrong identity: message does not say what is wrong:\n%s", stderr)
	}
	if empty, err := dirEmptyOrAbsent(dir); err != nil || !empty {
		entries, _ := os.ReadDir(dir)
		t.Errorf("restore with the wrong identity left %d entries in %s (err %v)", len(entries), dir, err)
	}

	_, stderr = wrong.RunExpect(255, "wal-fetch", f.MarkSegs[0], h.Path("fetched"))
	if strings.TrimSpace(stderr) == "" {
		t.Errorf("wal-fetch with the wrong identity printed nothing")
	}
	if _, err := os.Stat(h.Path("fetched")); err == nil {
		t.Errorf("wal-fetch with the wrong identity left a file at DEST")
	}

	// Control: the right key restores, into the directory the failed
	// attempt was given, to the end of the backup.
	right := f.Repo.Walvault(h)
	right.MustRun("restore", "--pgdata", dir, "--target-immediate", "--target-action", "promote")
	rc := h.ClusterAt("restored", dir)
	rc.Start()
	rc.WaitPromoted()
	if ids := rc.MarkIDs(); len(ids) != 0 {
		t.Errorf("restored to the end of the backup, found marks %v committed after it", ids)
	}
	rc.CheckBenchInvariants()
}

// TestInterruptedBackup: a backup that cannot get its WAL times out with
// exit 8, a backup killed with SIGKILL after it uploaded data is never listed
// as a backup, and afterwards a backup and a restore (to an LSN, with a
// tablespace moved by --tablespace-map) still work.
func TestInterruptedBackup(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg := h.InitCluster("primary")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Start()
	wv := repo.Walvault(h, "WALVAULT_PG_URL="+pg.URL())
	wv.MustRun("init")

	tsOld := h.Mkdir(h.Path("ts1"), 0o700)
	pg.Exec("CREATE TABLESPACE ts1 LOCATION '" + tsOld + "'")
	pg.Exec("CREATE TABLE ts_rows (id int) TABLESPACE ts1")
	pg.Exec("INSERT INTO ts_rows SELECT generate_series(1, 1000)")
	pg.PgbenchInit(3)
	pg.CreateMarks()
	if n := len(wv.Info().Backups); n != 0 {
		t.Fatalf("new repository lists %d backups", n)
	}

	// Archiving stops: the backup's WAL cannot arrive.
	pg.Exec("ALTER SYSTEM SET archive_command = '/bin/false'")
	pg.Exec("SELECT pg_reload_conf()")
	waitFor(t, "archive_command reloaded", 30*time.Second, func() (bool, error) {
		var s string
		err := pg.tryQueryRow("SHOW archive_command", nil, &s)
		return s == "/bin/false", err
	})
	time.Sleep(time.Second) // the archiver reloads on its own schedule

	_, stderr := wv.RunExpect(8, "backup", "--fast", "--wal-timeout", "5s", "--label", "times-out")
	t.Logf("timed-out backup said: %s", tail(stderr, 5))
	if n := len(wv.Info().Backups); n != 0 {
		t.Errorf("after a backup that timed out waiting for WAL, info lists %d backups, want 0", n)
	}

	// The timed-out backup may leave its data behind (it has no manifest).
	backups := filepath.Join(repo.Dir, "backups")
	stale := map[string]bool{}
	if entries, err := os.ReadDir(backups); err == nil {
		for _, e := range entries {
			stale[e.Name()] = true
		}
	}
	t.Logf("after the timed-out backup, backups/ holds %d files in %v", countDataFiles(backups), stale)

	// A backup killed after it uploaded something of its own.
	cmd, out := wv.Start("backup", "--fast", "--label", "killed")
	waitFor(t, "the backup to upload a file under backups/", 2*time.Minute, func() (bool, error) {
		entries, err := os.ReadDir(backups)
		for _, e := range entries {
			if !stale[e.Name()] && countDataFiles(filepath.Join(backups, e.Name())) > 0 {
				return true, nil
			}
		}
		return false, err
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	t.Logf("killed the backup when %d files were under backups/; its output: %s", countDataFiles(backups), tail(out.String(), 5))
	if manifests := findFiles(backups, "backup.json"); len(manifests) != 0 {
		t.Errorf("killed backup left manifests %v (it could not have finished: archiving was blocked)", manifests)
	}
	if n := len(wv.Info().Backups); n != 0 {
		t.Errorf("after a killed backup, info lists %d backups, want 0", n)
	}

	// Archiving resumes; a backup and a restore work.
	pg.Exec("ALTER SYSTEM RESET archive_command")
	pg.Exec("SELECT pg_reload_conf()")
	pg.SwitchAndWaitArchived()
	wv.MustRun("backup", "--fast", "--label", "good")
	info := wv.Info()
	if len(info.Backups) != 1 {
		t.Fatalf("info lists %d backups after one good backup, want 1: %+v", len(info.Backups), info.Backups)
	}
	marks := pg.CommitMarks(1, 5, "after-good-backup", 50*time.Millisecond)
	pg.SwitchAndWaitArchived()
	sums := pg.CheckBenchInvariants()

	pg.Stop("immediate")
	for _, d := range []string{pg.DataDir, tsOld} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	dir := h.Path("restored")
	tsNew := h.Path("ts1-restored")
	wv.MustRun("restore", "--pgdata", dir, "--target-lsn", marks[2].LSNAfter, "--target-action", "promote",
		"--tablespace-map", tsOld+"="+tsNew)
	rc := h.ClusterAt("restored", dir)
	rc.Env = repo.Env
	rc.Start()
	rc.WaitPromoted()
	if got, want := rc.MarkIDs(), seq(1, 3); !equalInts(got, want) {
		t.Errorf("restored to the LSN after mark 3 (%s): marks %v, want %v", marks[2].LSNAfter, got, want)
	}
	if n := rc.QueryString("SELECT count(*)::text FROM ts_rows"); n != "1000" {
		t.Errorf("tablespace table has %s rows, want 1000", n)
	}
	loc := rc.QueryString("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'")
	if loc != tsNew {
		t.Errorf("tablespace ts1 is at %q, want %q (--tablespace-map)", loc, tsNew)
	}
	if got := rc.BenchSums(); got != sums {
		t.Errorf("pgbench sums after restore %+v, want the primary's %+v (no load ran after the backup)", got, sums)
	}
	rc.AmCheck()
}

// countDataFiles counts regular files under dir other than manifests.
func countDataFiles(dir string) int {
	n := 0
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Name() != "backup.json" {
			n++
		}
		return nil
	})
	return n
}

// findFiles lists files named name under dir.
func findFiles(dir, name string) []string {
	var found []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Name() == name {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// TestWALGap: one archived segment deleted from a format-2 repository.
// The signed completeness heads say it was archived, so info still shows
// the WAL ranges split at the gap but exits 6 naming it, and restore
// refuses targets beyond it (by LSN and by time) naming it, instead of
// letting PostgreSQL stop early; targets before it restore.
func TestWALGap(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	repo := f.copyRepo(h, "repo")
	gap := f.MarkSegs[3] // mark 4's segment
	if err := os.Remove(walObjectPath(repo, gap)); err != nil {
		t.Fatal(err)
	}
	wv := repo.Walvault(h)
	out, stderr := wv.RunExpect(6, "info", "--json")
	var info Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	if len(info.WAL) < 2 {
		t.Errorf("info shows WAL ranges %+v; want two, split at the missing %s", info.WAL, gap)
	}
	if !strings.Contains(stderr, gap) {
		t.Errorf("info does not name the deleted segment %s:\n%s", gap, stderr)
	}
	beyond := f.Marks[5] // mark 6, two segments past the gap
	for i, target := range [][]string{{"--target-lsn", beyond.LSNAfter}, {"--target-time", beyond.CommitTS.UTC().Format(time.RFC3339Nano)}} {
		_, stderr := wv.RunExpect(6, append([]string{"restore", "--pgdata", h.Path(fmt.Sprintf("r%d", i+1))}, target...)...)
		if !strings.Contains(stderr, gap) {
			t.Errorf("restore %v does not name the deleted segment %s:\n%s", target, gap, stderr)
		}
	}
	// Before the gap is fine.
	wv.MustRun("restore", "--pgdata", h.Path("r3"), "--target-lsn", f.Marks[1].LSNAfter)
}
