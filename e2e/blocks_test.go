package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBlockBackups: in a format-2 repository backups are stored as
// deduplicated blocks. Two backups with writes between: the second stores
// only what changed (counted in bytes), and a point-in-time restore from
// each backup recovers exactly the marks committed up to its target, with
// pgbench's invariants, pg_amcheck and pg_verifybackup (the suite runs it
// on every restored directory) all satisfied.
func TestBlockBackups(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	pg.PgbenchInit(5)
	pg.CreateMarks()

	out := wv.MustRun("backup", "--fast", "--label", "first")
	out1 := out
	if !strings.Contains(out1, "blocks:") {
		t.Fatalf("first backup was not stored as blocks:\n%s", out1)
	}
	waitPastNewestStop(t, wv)
	marks := pg.CommitMarks(1, 6, "between", 50*time.Millisecond)
	// One transaction that updates one account in 5,000 (100 rows: as
	// pages are full, each update changes two heap pages and an index
	// page) and keeps pgbench's invariants.
	pg.Exec(`BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 5000 = 0;
UPDATE pgbench_branches SET bbalance = bbalance + 100 WHERE bid = 1;
UPDATE pgbench_tellers SET tbalance = tbalance + 100 WHERE tid = 1;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 100, now());
COMMIT`)
	pg.Exec("CHECKPOINT")
	out2 := wv.MustRun("backup", "--fast", "--label", "second")
	t.Logf("first backup: %s\nsecond backup: %s", out1, out2)
	waitPastNewestStop(t, wv)
	marks = append(marks, pg.CommitMarks(7, 12, "after", 50*time.Millisecond)...)
	pg.SwitchAndWaitArchived()

	info := wv.Info()
	if len(info.Backups) != 2 {
		t.Fatalf("info lists %d backups, want 2", len(info.Backups))
	}
	first, second := info.Backups[0], info.Backups[1]
	t.Logf("first: %d bytes, stored %d (new %d); second: %d bytes, stored %d (new %d, shared %d)",
		first.Bytes, first.StoredBytes, first.NewBytes, second.Bytes, second.StoredBytes, second.NewBytes, second.SharedBytes)
	if first.NewBytes <= 0 || second.SharedBytes <= 0 {
		t.Fatalf("block statistics missing: %+v %+v", first, second)
	}
	// ~300 changed pages of ~12,400 (2.5%; less compressible than the
	// average page), plus the file list (about 22 bytes per block against
	// ~700 stored: 3%).
	if second.StoredBytes*100 > first.StoredBytes*12 {
		t.Errorf("second backup stored %d bytes, more than 12%% of the first's %d: blocks were not deduplicated", second.StoredBytes, first.StoredBytes)
	}
	if second.SharedBytes*2 < first.NewBytes {
		t.Errorf("second backup shares %d bytes of the first's %d", second.SharedBytes, first.NewBytes)
	}
	sums := pg.CheckBenchInvariants()

	pg.Stop("immediate")
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		backup string
		k      int // recover marks 1..k
	}{
		{first.ID, 3},
		{second.ID, 9},
	} {
		before, after := marks[tc.k-1].CommitTS, marks[tc.k].CommitTS
		target := before.Add(after.Sub(before) / 2).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
		dir := h.Path("restored-" + tc.backup)
		wv.MustRun("restore", "--pgdata", dir, "--backup", tc.backup, "--target-time", target, "--target-action", "promote")
		rc := h.ClusterAt("restored-"+tc.backup, dir)
		rc.Env = wv.Env
		rc.Configure("archive_mode = off") // a test copy: no new timeline in the repository
		rc.Start()
		rc.WaitPromoted()
		if got, want := rc.MarkIDs(), seq(1, tc.k); !equalInts(got, want) {
			t.Errorf("backup %s: recovered marks %v, want exactly %v", tc.backup, got, want)
		}
		got := rc.CheckBenchInvariants()
		if tc.backup == second.ID && got != sums {
			t.Errorf("backup %s: pgbench sums %+v, the primary had %+v", tc.backup, got, sums)
		}
		rc.AmCheck()
		rc.Stop("fast")
	}

	// Delta restore: the directory restored from the first backup (since
	// promoted, on a timeline of its own) brought to the second backup by
	// rewriting only the blocks that differ; the suite's pg_verifybackup
	// judges the files, the marks the recovery.
	deltaDir := h.Path("restored-" + first.ID)
	before, after := marks[8].CommitTS, marks[9].CommitTS
	target := before.Add(after.Sub(before) / 2).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
	out = wv.MustRun("restore", "--delta", "--pgdata", deltaDir, "--backup", second.ID, "--target-time", target, "--target-action", "promote")
	t.Logf("delta restore: %s", out)
	rc := h.ClusterAt("delta", deltaDir)
	rc.Env = wv.Env
	rc.Configure("archive_mode = off")
	rc.Start()
	rc.WaitPromoted()
	if got, want := rc.MarkIDs(), seq(1, 9); !equalInts(got, want) {
		t.Errorf("delta restore: recovered marks %v, want exactly %v", got, want)
	}
	if got := rc.CheckBenchInvariants(); got != sums {
		t.Errorf("delta restore: pgbench sums %+v, the primary had %+v", got, sums)
	}
	rc.AmCheck()
	rc.Stop("fast")

	// Every block reads back; then the first backup's pack, which the
	// second shares, is damaged, in its signed header and then in one
	// frame in its middle (pgbench_accounts, which both backups hold):
	// verify names both backups, and restore refuses.
	wv.RunExpect(0, "verify", "--backups-only")
	pack := filepath.Join(repo.Dir, "packs", first.ID, "00000000")
	data, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{20, len(data) / 2} {
		data[at] ^= 0xff
		if err := os.WriteFile(pack, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ = wv.RunExpect(6, "verify", "--backups-only")
		for _, id := range []string{first.ID, second.ID} {
			if !strings.Contains(out, "backup "+id) {
				t.Errorf("byte %d of the pack damaged: verify does not name backup %s, which needs it:\n%s", at, id, out)
			}
		}
		_, stderr := wv.RunExpect(6, "restore", "--pgdata", h.Path(fmt.Sprintf("refused-%d", at)), "--backup", second.ID, "--target-immediate")
		if !strings.Contains(stderr, "packs/"+first.ID) {
			t.Errorf("byte %d of the pack damaged: restore does not name the damaged pack: %s", at, stderr)
		}
		// Repaired.
		data[at] ^= 0xff
		if err := os.WriteFile(pack, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The first backup expired: its pack stays (the second backup's
	// blocks are in it) and everything still verifies.
	out = wv.MustRun("expire", "--retain-full", "1", "--confirm")
	t.Logf("expire:\n%s", out)
	if _, err := os.Stat(pack); err != nil {
		t.Errorf("expire removed a pack the kept backup needs: %v", err)
	}
	wv.RunExpect(0, "verify", "--backups-only")
}

// waitPastNewestStop waits until the newest backup's stop time (whole
// seconds on the server's clock, rounded up) has passed: a commit in the
// second the backup ended lies before the window it opens.
func waitPastNewestStop(t *testing.T, wv *Walvault) {
	t.Helper()
	info := wv.Info()
	if len(info.Backups) == 0 {
		t.Fatal("no backup")
	}
	stop, err := time.Parse(time.RFC3339Nano, info.Backups[len(info.Backups)-1].StopTime)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backup's stop time to pass", time.Minute, func() (bool, error) {
		return time.Now().After(stop.Add(10 * time.Millisecond)), nil
	})
}
