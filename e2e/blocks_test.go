package e2e

import (
	"encoding/json"
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

// TestBlockRefreshErasure: a row is changed and its table rewritten
// (VACUUM FULL) after a first block backup A. The next backup B still
// shares A's packs (the other tables' blocks), so expiring A alone would
// keep them, the old row version with them: the dry run says so. A backup
// C whose previous backup uses blocks older than --block-refresh-days
// stores every block anew; expiring A and B then removes every pack of
// theirs, and with them the erased row. C restores, with the row changed
// and everything else intact.
func TestBlockRefreshErasure(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	pg.PgbenchInit(2)
	marker := fmt.Sprintf("ERASE-ME-%d", time.Now().UnixNano())
	pg.Exec(`CREATE TABLE people (id int PRIMARY KEY, name text);
INSERT INTO people SELECT g, 'person ' || g FROM generate_series(1, 5000) g;
INSERT INTO people VALUES (0, '` + marker + `');
CHECKPOINT`)
	wv.MustRun("backup", "--fast")
	pg.Exec("UPDATE people SET name = 'erased' WHERE id = 0")
	pg.Exec("VACUUM FULL people")
	pg.Exec("CHECKPOINT")
	wv.MustRun("backup", "--fast")
	info := wv.Info()
	if len(info.Backups) != 2 {
		t.Fatalf("%d backups, want 2", len(info.Backups))
	}
	a, b := info.Backups[0], info.Backups[1]
	if b.SharedBytes <= 0 {
		t.Fatalf("backup B shares nothing with A: %+v", b)
	}
	packsOf := func() map[string]int {
		t.Helper()
		n := map[string]int{}
		dirs, err := os.ReadDir(filepath.Join(repo.Dir, "packs"))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			files, _ := os.ReadDir(filepath.Join(repo.Dir, "packs", d.Name()))
			n[d.Name()] = len(files)
		}
		return n
	}
	if packsOf()[a.ID] == 0 {
		t.Fatalf("no pack of backup A (%s): %v", a.ID, packsOf())
	}
	// Without a refresh: expiring A keeps its packs, B needs them.
	out := wv.MustRun("expire", "--retain-full", "1", "--json")
	var plan struct {
		Removed []struct{ ID string } `json:"removed_backups"`
		Sweep   *struct {
			Packs []string `json:"removed_packs"`
		} `json:"sweep"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("expire --json: %v\n%s", err, out)
	}
	if len(plan.Removed) != 1 || plan.Removed[0].ID != a.ID {
		t.Fatalf("dry run removes %+v, want backup A %s", plan.Removed, a.ID)
	}
	if plan.Sweep != nil {
		for _, p := range plan.Sweep.Packs {
			if strings.HasPrefix(p, "packs/"+a.ID+"/") {
				t.Errorf("dry run removes %s, which backup B uses", p)
			}
		}
	}

	// C: the previous backup (B) uses A's blocks, older than the refresh
	// period (0.00002 days: 1.7 s).
	time.Sleep(2 * time.Second)
	out = wv.MustRun("backup", "--fast", "--block-refresh-days", "0.00002")
	if !strings.Contains(out, "refreshed: backup "+b.ID) {
		t.Errorf("backup C does not say it refreshed:\n%s", out)
	}
	info = wv.Info()
	c := info.Backups[len(info.Backups)-1]
	if c.SharedBytes != 0 || c.NewBytes <= 0 {
		t.Errorf("backup C shares %d bytes, stores %d new: want none shared", c.SharedBytes, c.NewBytes)
	}
	out = wv.MustRun("expire", "--retain-full", "1", "--confirm")
	t.Logf("expire:\n%s", out)
	for id, n := range packsOf() {
		if id != c.ID && n > 0 {
			t.Errorf("after expire, %d pack(s) of backup %s remain; only C's (%s) should", n, id, c.ID)
		}
	}
	wv.RunExpect(0, "verify", "--backups-only")

	pg.Stop("immediate")
	dir := h.Path("restored-refresh")
	wv.MustRun("restore", "--pgdata", dir, "--backup", c.ID, "--target-immediate", "--target-action", "promote")
	rc := h.ClusterAt("restored-refresh", dir)
	rc.Env = wv.Env
	rc.Configure("archive_mode = off")
	rc.Start()
	rc.WaitPromoted()
	if got := rc.QueryString("SELECT count(*) || ':' || count(*) FILTER (WHERE name = 'erased') || ':' || count(*) FILTER (WHERE name = $1) FROM people", marker); got != "5001:1:0" {
		t.Errorf("restored people: rows:erased:marker = %s, want 5001:1:0", got)
	}
	rc.CheckBenchInvariants()
	rc.AmCheck()
	rc.Stop("fast")
}
