package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestRestoreLatestAfterPromotion: a cluster restored to a restore point and
// promoted (timeline 2) keeps archiving into the same repository; a restore
// with no target follows the history file onto timeline 2 and recovers its
// rows; a restore pinned to timeline 1 recovers that timeline's own later
// rows, up to a transaction id.
func TestRestoreLatestAfterPromotion(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg := h.InitCluster("primary")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Start()
	wv := repo.Walvault(h, "WALVAULT_PG_URL="+pg.URL())
	wv.MustRun("init")
	pg.PgbenchInit(1)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")

	marks := pg.CommitMarks(1, 5, "tl1", 20*time.Millisecond)
	pg.Exec("SELECT pg_create_restore_point('e2e-before-6')")
	marks = append(marks, pg.CommitMarks(6, 10, "tl1", 20*time.Millisecond)...)
	pg.SwitchAndWaitArchived()
	pg.Stop("immediate")
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	// Restore to the restore point and promote: timeline 2.
	dir1 := h.Path("restored-1")
	wv.MustRun("restore", "--pgdata", dir1, "--target-name", "e2e-before-6", "--target-action", "promote")
	r1 := h.ClusterAt("restored-1", dir1)
	r1.Env = repo.Env // its archive_command (from the backup's postgresql.conf) needs them
	r1.Start()
	r1.WaitPromoted()
	if got, want := r1.MarkIDs(), seq(1, 5); !equalInts(got, want) {
		t.Fatalf("restored to the restore point: marks %v, want %v", got, want)
	}
	if seg := r1.QueryString("SELECT pg_walfile_name(pg_current_wal_lsn())"); !strings.HasPrefix(seg, "00000002") {
		t.Fatalf("promoted cluster writes %s, want timeline 2", seg)
	}
	r1.CommitMarks(101, 105, "tl2", 20*time.Millisecond)
	last := r1.SwitchAndWaitArchived()
	if !strings.HasPrefix(last, "00000002") {
		t.Fatalf("last archived segment %s is not on timeline 2", last)
	}
	if _, err := os.Stat(walObjectPath(repo, "00000002.history")); err != nil {
		t.Errorf("timeline 2's history file is not in the repository: %v", err)
	}
	info := wv.Info()
	var tl2 bool
	for _, w := range info.WAL {
		if w.Timeline == 2 {
			tl2 = true
			if w.To < last {
				t.Errorf("info: timeline 2 WAL ends at %s, before the archived %s", w.To, last)
			}
		}
	}
	if !tl2 {
		t.Errorf("info --json shows no timeline 2 WAL: %+v", info.WAL)
	}
	r1.Stop("immediate")
	if err := os.RemoveAll(dir1); err != nil {
		t.Fatal(err)
	}

	// Latest: along the history onto timeline 2.
	dir2 := h.Path("restored-2")
	wv.MustRun("restore", "--pgdata", dir2)
	r2 := h.ClusterAt("restored-2", dir2)
	r2.Env = repo.Env
	r2.Start()
	r2.WaitPromoted()
	want := append(seq(1, 5), seq(101, 105)...)
	if got := r2.MarkIDs(); !equalInts(got, want) {
		t.Errorf("latest restore: marks %v, want %v", got, want)
	}
	r2.CheckBenchInvariants()
	r2.Stop("fast")

	// Timeline 1, to the commit of mark 8: rows timeline 2 never saw.
	dir3 := h.Path("restored-3")
	wv.MustRun("restore", "--pgdata", dir3, "--target-timeline", "1", "--target-xid", marks[7].XID,
		"--target-action", "promote")
	r3 := h.ClusterAt("restored-3", dir3)
	r3.Env = repo.Env
	r3.Start()
	r3.WaitPromoted()
	if got, want := r3.MarkIDs(), seq(1, 8); !equalInts(got, want) {
		t.Errorf("timeline 1 to xid %s (mark 8): marks %v, want %v", marks[7].XID, got, want)
	}
	r3.AmCheck()
}
