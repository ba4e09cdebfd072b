package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	wvrepo "github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// Issue 15's end-to-end proof for block backups: backups interleaved with
// writes, the middle ones expired while a new backup runs, and a restore
// from each remaining backup checked exactly; the basic flow again on
// PostgreSQL 17 with summarize_wal on and off.

// TestBlockBackupsExpireDuringBackup: five block backups of a pgbench
// cluster, two of them with the spread checkpoint users get without
// --fast, with pgbench writes and commit marks between them. The first is
// marked keep; then, while the fifth backup runs, `expire --retain-full 2`
// waits for the backup's shared lock and removes the second and third.
// Both succeed; no pack a remaining backup's file list names was swept;
// each remaining backup restores to a point just after it (the kept first
// one to its own end: expire removed the WAL after it) with exactly the
// marks committed by then, pgbench's invariants, pg_amcheck and (the
// suite, on every restore) pg_verifybackup; verify passes.
func TestBlockBackupsExpireDuringBackup(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg := h.InitCluster("primary")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	// A backup without --fast waits for a spread checkpoint, paced over
	// checkpoint_completion_target × checkpoint_timeout: at most 6 s here.
	pg.Configure("checkpoint_timeout = 30s", "checkpoint_completion_target = 0.2")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	pg.PgbenchInit(5)
	pg.CreateMarks()

	// marks in commit order; after[i] is how many of them were committed
	// before the target just after backup i.
	marks := pg.CommitMarks(1, 2, "before any backup", 50*time.Millisecond)
	var after []int
	round := func(i int) {
		waitPastNewestStop(t, wv)
		ms := pg.CommitMarks(10*(i+1)+1, 10*(i+1)+4, fmt.Sprintf("after backup %d", i), 50*time.Millisecond)
		after = append(after, len(marks)+2) // the target falls between the 2nd and 3rd
		marks = append(marks, ms...)
		pg.StartPgbench(2, 3).Wait(t)
	}
	for i := range 4 {
		args := []string{"backup", "--label", fmt.Sprintf("round %d", i)}
		if i != 1 {
			args = append(args, "--fast")
		}
		if out := wv.MustRun(args...); !strings.Contains(out, "blocks:") {
			t.Fatalf("backup %d was not stored as blocks:\n%s", i, out)
		}
		round(i)
	}
	info := wv.Info()
	if len(info.Backups) != 4 {
		t.Fatalf("info lists %d backups, want 4", len(info.Backups))
	}
	var ids []string
	for _, b := range info.Backups {
		ids = append(ids, b.ID)
		t.Logf("backup %s: %d bytes, stored %d (new %d, shared %d)", b.ID, b.Bytes, b.StoredBytes, b.NewBytes, b.SharedBytes)
	}
	wv.MustRun("keep", ids[0], "--note", "the oldest, kept")

	// The fifth backup (spread checkpoint) holds the shared lock; expire,
	// started once the lock is there, waits for it, then plans with the
	// fifth backup complete.
	locks := filepath.Join(repo.Dir, "locks")
	lockNames := func() []string {
		ents, _ := os.ReadDir(locks)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	held := lockNames()
	backup, backupOut := wv.Start("backup", "--label", "round 4")
	finished := make(chan struct{})
	var backupErr error
	go func() { backupErr = backup.Wait(); close(finished) }()
	t.Cleanup(func() {
		select {
		case <-finished:
		default:
			_ = backup.Process.Kill()
			<-finished
		}
	})
	for seen := false; !seen; {
		select {
		case <-finished:
			t.Fatalf("the fifth backup ended (%v) before its lock was seen:\n%s", backupErr, tail(backupOut.String(), 30))
		case <-time.After(10 * time.Millisecond):
		}
		for _, name := range lockNames() {
			seen = seen || !slices.Contains(held, name)
		}
	}
	stdout, stderr := wv.RunExpect(0, "expire", "--retain-full", "2", "--confirm", "--json", "--lock-wait", "5m")
	<-finished
	if backupErr != nil {
		t.Fatalf("the fifth backup, run beside expire: %v\n%s", backupErr, tail(backupOut.String(), 40))
	}
	t.Logf("fifth backup:\n%s\nexpire:\n%s", tail(backupOut.String(), 12), tail(stderr, 12))
	var plan struct {
		Kept []struct {
			ID      string   `json:"id"`
			Reasons []string `json:"reasons"`
		} `json:"kept_backups"`
		Removed []struct {
			ID string `json:"id"`
		} `json:"removed_backups"`
		Sweep *struct {
			Packs   []string `json:"removed_packs"`
			Kept    int      `json:"kept_packs"`
			Pinned  []string `json:"pinned_backups"`
			Skipped string   `json:"skipped"`
		} `json:"sweep"`
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("expire --json: %v\n%s", err, stdout)
	}
	info = wv.Info()
	if len(info.Backups) != 3 {
		t.Fatalf("info lists %d backups after expire, want 3", len(info.Backups))
	}
	ids = append(ids, info.Backups[len(info.Backups)-1].ID)
	var removed, kept []string
	for _, b := range plan.Removed {
		removed = append(removed, b.ID)
	}
	for _, b := range plan.Kept {
		kept = append(kept, b.ID)
	}
	if !slices.Equal(removed, ids[1:3]) || !slices.Equal(kept, []string{ids[0], ids[3], ids[4]}) {
		t.Fatalf("expire removed %v and kept %v; want the middle %v removed, %v kept (marked keep, the newest two: it ran after the fifth backup)",
			removed, kept, ids[1:3], []string{ids[0], ids[3], ids[4]})
	}
	remaining := []string{ids[0], ids[3], ids[4]}
	var got []string
	for _, b := range info.Backups {
		got = append(got, b.ID)
	}
	if !slices.Equal(got, remaining) {
		t.Fatalf("backups after expire %v, want %v", got, remaining)
	}
	if plan.Sweep == nil || plan.Sweep.Skipped != "" {
		t.Fatalf("expire planned no sweep of packs: %+v", plan.Sweep)
	}
	t.Logf("sweep: removed %d packs %v, kept %d, pinned %v", len(plan.Sweep.Packs), plan.Sweep.Packs, plan.Sweep.Kept, plan.Sweep.Pinned)

	// Every pack a remaining backup's file list names is still there, and
	// only packs the removed backups wrote were swept.
	rp := inProcess(t, repo)
	for _, id := range remaining {
		fl, err := rp.FileList(context.Background(), id)
		if err != nil {
			t.Fatalf("file list of backup %s: %v", id, err)
		}
		if len(fl.Packs) == 0 {
			t.Errorf("backup %s names no packs", id)
		}
		for _, p := range fl.Packs {
			if slices.Contains(plan.Sweep.Packs, p) {
				t.Errorf("expire swept %s, which backup %s needs", p, id)
			}
			if _, err := os.Stat(filepath.Join(repo.Dir, p)); err != nil {
				t.Errorf("backup %s needs %s: %v", id, p, err)
			}
		}
	}
	for _, p := range plan.Sweep.Packs {
		if !strings.HasPrefix(p, "packs/"+ids[1]+"/") && !strings.HasPrefix(p, "packs/"+ids[2]+"/") {
			t.Errorf("expire swept %s, a pack of no removed backup", p)
		}
	}

	round(4)
	pg.SwitchAndWaitArchived()
	pg.Stop("immediate")
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	for i, id := range remaining {
		dir := h.Path("restored-" + id)
		args := []string{"restore", "--pgdata", dir, "--backup", id, "--target-action", "promote"}
		want := marks[:2] // the kept first backup: to its end, where recovery becomes consistent
		if i == 0 {
			args = append(args, "--target-immediate")
		} else {
			k := after[[]int{0, 3, 4}[i]]
			before, next := marks[k-1].CommitTS, marks[k].CommitTS
			target := before.Add(next.Sub(before) / 2).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
			args = append(args, "--target-time", target)
			want = marks[:k]
		}
		wv.MustRun(args...)
		rc := h.ClusterAt("restored-"+id, dir)
		rc.Env = wv.Env
		rc.Configure("archive_mode = off") // a test copy: no new timeline in the repository
		rc.Start()
		rc.WaitPromoted()
		var wantIDs []int64
		for _, m := range want {
			wantIDs = append(wantIDs, int64(m.ID))
		}
		if got := rc.MarkIDs(); !equalInts(got, wantIDs) {
			t.Errorf("backup %s: recovered marks %v, want exactly %v", id, got, wantIDs)
		}
		rc.CheckBenchInvariants()
		rc.AmCheck()
		rc.Stop("fast")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	wv.RunExpect(0, "verify")
}

// TestBlockBackupsPG17Summaries: on PostgreSQL 17, with summarize_wal on
// and off, two block backups with a small change between them: the second
// stores far fewer bytes than the first, it is incremental (PostgreSQL
// sent only changed blocks) exactly when the server summarizes WAL, and a
// point-in-time restore from
// each backup recovers exactly the marks up to its target, with pgbench's
// invariants and amcheck satisfied; verify passes.
func TestBlockBackupsPG17Summaries(t *testing.T) {
	requireSuite(t)
	bin := majorBin(t, 17)
	for _, summarize := range []bool{true, false} {
		name := map[bool]string{true: "summarize_wal=on", false: "summarize_wal=off"}[summarize]
		t.Run(name, func(t *testing.T) { runPG17Blocks(t, bin, summarize) })
	}
}

func runPG17Blocks(t *testing.T, bin string, summarize bool) {
	h := newHarness(t)
	h.ServerBin = bin
	// With summaries the server's manifest goes through S3 (MinIO, the
	// credentials from the environment) and back to PostgreSQL.
	var srv *miniotest.Server
	const bucket, prefix = "walvault-pg17", "clusters/pg17"
	var repo *Repo
	if summarize {
		srv = miniotest.Start(t)
		srv.CreateBucket(t, bucket)
		repo = s3Repo(h, srv, bucket, prefix, srv.Endpoint)
	} else {
		repo = h.NewFileRepo("repo")
	}
	pg := h.InitCluster("primary")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Configure(map[bool]string{true: "summarize_wal = on", false: "summarize_wal = off"}[summarize])
	pg.Start()
	if got, want := pg.QueryString("SHOW summarize_wal"), map[bool]string{true: "on", false: "off"}[summarize]; got != want {
		t.Fatalf("summarize_wal is %s, want %s", got, want)
	}
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	pg.PgbenchInit(5)
	pg.CreateMarks()

	backup := func(label string) {
		t.Helper()
		stdout, stderr := wv.RunExpect(0, "backup", "--fast", "--label", label)
		if !strings.Contains(stdout, "blocks:") {
			t.Fatalf("%s backup was not stored as blocks:\n%s", label, stdout)
		}
		if !strings.Contains(stderr, "starting base backup") {
			t.Fatalf("%s backup logged nothing at level info:\n%s", label, tail(stderr, 20))
		}
		wantIncr := summarize && label != "first"
		if got := strings.Contains(stdout, "incremental from "); got != wantIncr {
			t.Errorf("%s backup, summarize_wal %v: incremental %v, want %v\n%s\n%s",
				label, summarize, got, wantIncr, stdout, tail(stderr, 20))
		}
	}
	backup("first")
	waitPastNewestStop(t, wv)
	marks := pg.CommitMarks(1, 6, "between", 50*time.Millisecond)
	// As in TestBlockBackups: one account in 5,000 updated, invariants kept.
	pg.Exec(`BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 5000 = 0;
UPDATE pgbench_branches SET bbalance = bbalance + 100 WHERE bid = 1;
UPDATE pgbench_tellers SET tbalance = tbalance + 100 WHERE tid = 1;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 100, now());
COMMIT`)
	pg.Exec("CHECKPOINT")
	backup("second")
	waitPastNewestStop(t, wv)
	marks = append(marks, pg.CommitMarks(7, 12, "after", 50*time.Millisecond)...)
	pg.SwitchAndWaitArchived()

	info := wv.Info()
	if len(info.Backups) != 2 {
		t.Fatalf("info lists %d backups, want 2", len(info.Backups))
	}
	first, second := info.Backups[0], info.Backups[1]
	t.Logf("PostgreSQL 17, summarize_wal %v: first: %d bytes, stored %d (new %d); second: %d bytes, stored %d (new %d, shared %d)",
		summarize, first.Bytes, first.StoredBytes, first.NewBytes, second.Bytes, second.StoredBytes, second.NewBytes, second.SharedBytes)
	if first.NewBytes <= 0 || second.SharedBytes <= 0 {
		t.Fatalf("block statistics missing: %+v %+v", first, second)
	}
	// The bound of TestBlockBackups: ~2.5% of the pages changed, plus the
	// file list.
	if second.StoredBytes*100 > first.StoredBytes*12 || second.NewBytes*100 > first.NewBytes*12 {
		t.Errorf("second backup stored %d bytes (new %d), more than 12%% of the first's %d (new %d): blocks were not deduplicated",
			second.StoredBytes, second.NewBytes, first.StoredBytes, first.NewBytes)
	}
	if second.SharedBytes*2 < first.NewBytes {
		t.Errorf("second backup shares %d bytes of the first's %d", second.SharedBytes, first.NewBytes)
	}
	sums := pg.CheckBenchInvariants()

	if summarize {
		// Whoever can write the bucket without the keys replaces the
		// newest backup's backup_manifest with a genuine object of
		// another name (the first backup's): it is refused as it is
		// read, the next backup says so and reads every block, and
		// nothing forged reaches the server.
		mc, err := srv.Client()
		if err != nil {
			t.Fatal(err)
		}
		key := func(id string) string {
			return prefix + "/" + wvrepo.BackupChunkKey(id, wvrepo.ServerManifestArchive, 0)
		}
		get := func(k string) []byte {
			t.Helper()
			o, err := mc.GetObject(context.Background(), bucket, k, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			b, err := io.ReadAll(o)
			if err != nil {
				t.Fatalf("read %s: %v", k, err)
			}
			return b
		}
		put := func(k string, b []byte) {
			t.Helper()
			if _, err := mc.PutObject(context.Background(), bucket, k, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		orig := get(key(second.ID))
		put(key(second.ID), get(key(first.ID)))
		stdout, stderr := wv.RunExpect(0, "backup", "--fast", "--label", "after-planting")
		if strings.Contains(stdout, "incremental from ") || !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "backup_manifest: damaged or replaced") {
			t.Errorf("backup against a replaced backup_manifest: incremental, or the log does not say why not:\n%s\n%s", stdout, tail(stderr, 20))
		}
		put(key(second.ID), orig)

		// The same with the newest backup's file list: the server is
		// asked for an incremental backup while the list is read, which
		// then fails; the backup starts again, reading every block.
		newest := wv.Info().Backups
		last := newest[len(newest)-1].ID
		flKey := func(id string) string { return prefix + "/" + wvrepo.FileListKey(id) }
		origList := get(flKey(last))
		put(flKey(last), get(flKey(first.ID)))
		stdout, stderr = wv.RunExpect(0, "backup", "--fast", "--label", "after-planting-list")
		if strings.Contains(stdout, "incremental from ") || !strings.Contains(stdout, "blocks:") || !strings.Contains(stderr, "cannot read the previous backup's file list") {
			t.Errorf("backup against a replaced file list: incremental, or the log does not say why not:\n%s\n%s", stdout, tail(stderr, 20))
		}
		put(flKey(last), origList)

		// A refresh: the previous backup uses blocks stored longer ago
		// than --block-refresh-days (0.00001: 0.9 s): the backup reads
		// every block (starting again if the server was asked for an
		// incremental backup while the list was read) and shares none.
		time.Sleep(2 * time.Second)
		stdout, stderr = wv.RunExpect(0, "backup", "--fast", "--label", "refresh", "--block-refresh-days", "0.00001")
		if strings.Contains(stdout, "incremental from ") || !strings.Contains(stdout, "refreshed: backup ") || !strings.Contains(stdout, " 0 shared with earlier backups") || !strings.Contains(stderr, "refreshing") {
			t.Errorf("refresh backup: incremental, shared blocks, or the log does not say why:\n%s\n%s", stdout, tail(stderr, 20))
		}
	}

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
		name := "restored-" + tc.backup
		dir := h.Path(name)
		args := []string{"restore", "--pgdata", dir, "--backup", tc.backup, "--target-time", target, "--target-action", "promote"}
		if summarize {
			// restore_command, run by postgres, needs the S3 credentials
			// this environment has.
			args = append(args, "--copy-s3-credentials")
		}
		wv.MustRun(args...)
		rc := h.ClusterAt(name, dir)
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
		checkMajor(t, h, name, 17)
	}
	wv.RunExpect(0, "verify")
}
