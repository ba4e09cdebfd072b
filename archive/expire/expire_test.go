package expire

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

var now = time.Now().UTC().Truncate(time.Second)

// fixture is a repository with WAL segments 1..40 on timeline 1 and four
// backups: 30, 20, 10 and 1 days old, starting in segments 2, 10, 20, 30.
type fixture struct {
	r    *repo.Repository
	st   storage.Store // the store r lives in, in dir
	dir  string
	ids  []string
	segs map[uint64]bool
}

var backupSegs = []uint64{2, 10, 20, 30}
var backupAges = []int{30, 20, 10, 1}

func newFixture(t *testing.T, skipSegs ...uint64) *fixture {
	t.Helper()
	return newFixtureWith(t, nil, skipSegs...)
}

// newFixtureWith is newFixture with more repotest options (Signed).
func newFixtureWith(t *testing.T, opts []repotest.Option, skipSegs ...uint64) *fixture {
	t.Helper()
	tr := repotest.New(t, append([]repotest.Option{repotest.OnDisk()}, opts...)...)
	r := tr.Repository
	ctx := context.Background()
	f := &fixture{r: r, st: tr.Store, dir: tr.Dir, segs: map[uint64]bool{}}
	for seg := uint64(1); seg <= 40; seg++ {
		if slices.Contains(skipSegs, seg) {
			continue
		}
		if _, err := r.Put(ctx, repo.WALSegmentKey(1, seg, waltest.SegSize), []byte("segment "+strconv.Itoa(int(seg))), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		f.segs[seg] = true
	}
	for i, seg := range backupSegs {
		start := now.Add(-time.Duration(backupAges[i]) * 24 * time.Hour)
		id := repo.NewBackupID(start)
		startLSN := pgwal.SegmentStart(seg, waltest.SegSize) + 0x28
		chunk := repo.BackupChunkKey(id, "base.tar", 0)
		if _, err := r.Put(ctx, chunk, []byte("tar of "+id), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		m := &repo.BackupManifest{ID: id, StartTime: start, StopTime: start.Add(time.Hour),
			StartLSN: startLSN, StopLSN: startLSN + waltest.SegSize, Timeline: 1,
			SystemIdentifier: strconv.FormatUint(waltest.SysID, 10), WALSegmentSize: waltest.SegSize,
			Archives: []repo.Archive{{Name: "base.tar", Chunks: []repo.Chunk{{Key: chunk}}}}}
		if err := r.PutBackupManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, id)
	}
	return f
}

func (f *fixture) plan(t *testing.T, pol Policy) *Plan {
	t.Helper()
	inv, err := Load(context.Background(), f.r)
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(inv, pol, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) execute(t *testing.T, p *Plan) {
	t.Helper()
	if err := Execute(context.Background(), f.r, p, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func removedIDs(p *Plan) []string {
	var out []string
	for _, b := range p.Removed {
		out = append(out, b.ID)
	}
	return out
}

func walRemoved(p *Plan) (first, last string, n int) {
	if len(p.WAL) != 1 {
		return "", "", 0
	}
	return p.WAL[0].First, p.WAL[0].Last, p.WAL[0].Files
}

func seg(n uint64) string { return pgwal.SegmentName(1, n, waltest.SegSize) }

func TestRetainFull(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, Policy{RetainFull: 2})
	if got, want := removedIDs(p), f.ids[:2]; !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	if first, last, n := walRemoved(p); first != seg(1) || last != seg(19) || n != 19 {
		t.Errorf("WAL removed %s..%s (%d), want %s..%s (19)", first, last, n, seg(1), seg(19))
	}
	if p.After == nil || !p.After.From.Equal(now.Add(-10*24*time.Hour+time.Hour)) {
		t.Errorf("window after = %+v, want from the end of the 10-day-old backup", p.After)
	}

	f.execute(t, p)
	again := f.plan(t, Policy{RetainFull: 2})
	if !again.Empty() {
		t.Errorf("second run still removes %v, WAL %v", removedIDs(again), again.WAL)
	}
	// The kept backups still restore: their WAL is all there.
	ids, _ := f.r.BackupIDs(context.Background())
	if !slices.Equal(ids, f.ids[2:]) {
		t.Errorf("backups left %v, want %v", ids, f.ids[2:])
	}
	if _, err := os.Stat(filepath.Join(f.dir, repo.BackupChunkKey(f.ids[0], "base.tar", 0))); !os.IsNotExist(err) {
		t.Errorf("chunk of a removed backup still there: %v", err)
	}
}

func TestRetainWindow(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, Policy{RetainWindow: 15 * 24 * time.Hour})
	// The 20-day-old backup is needed to restore to 15 days ago.
	if got, want := removedIDs(p), f.ids[:1]; !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	if first, last, _ := walRemoved(p); first != seg(1) || last != seg(9) {
		t.Errorf("WAL removed %s..%s, want %s..%s", first, last, seg(1), seg(9))
	}
	if p.Short || p.After == nil || p.After.From.After(*p.Promise) {
		t.Errorf("window %+v does not cover the promise from %v", p.After, p.Promise)
	}

	// A window longer than the repository's history keeps every backup.
	p = f.plan(t, Policy{RetainWindow: 40 * 24 * time.Hour})
	if len(p.Removed) != 0 || !p.Short {
		t.Errorf("40-day window: removed %v, short %v; want nothing removed and a short window", removedIDs(p), p.Short)
	}
	// Both rules: a backup is kept when either keeps it.
	p = f.plan(t, Policy{RetainFull: 3, RetainWindow: 5 * 24 * time.Hour})
	if got, want := removedIDs(p), f.ids[:1]; !slices.Equal(got, want) {
		t.Errorf("both rules: removed %v, want %v", got, want)
	}
}

func TestKeepMark(t *testing.T) {
	f := newFixture(t)
	yes := true
	if err := f.r.AddBackupNote(context.Background(), f.ids[0], repo.BackupNote{Keep: &yes, Note: "year end"}); err != nil {
		t.Fatal(err)
	}
	p := f.plan(t, Policy{RetainFull: 1})
	if got, want := removedIDs(p), f.ids[1:3]; !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	f.execute(t, p)
	// The marked backup keeps the WAL from its start to its end.
	for n := uint64(1); n <= 40; n++ {
		_, err := f.st.Stat(context.Background(), repo.WALSegmentKey(1, n, waltest.SegSize))
		wantKept := n == 2 || n == 3 || n >= 30
		if (err == nil) != wantKept {
			t.Errorf("segment %d: kept=%v, want %v", n, err == nil, wantKept)
		}
	}
	inv, err := Load(context.Background(), f.r)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range inv.Catalog.Backups {
		if _, ok := inv.Catalog.Reach(b); !ok {
			t.Errorf("backup %s no longer reaches consistency", b.ID)
		}
	}
}

// A count rule over backups whose WAL is gone still keeps a usable one.
func TestKeepsNewestUsable(t *testing.T) {
	f := newFixture(t, 30, 31) // the newest backup's WAL is missing
	p := f.plan(t, Policy{RetainFull: 1})
	if got, want := removedIDs(p), f.ids[:2]; !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v (the 10-day-old backup is the newest usable)", got, want)
	}
	if p.WALFloor != seg(20) {
		t.Errorf("floor %s, want %s", p.WALFloor, seg(20))
	}
}

func TestOrphansAndPartials(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// An interrupted backup long ago, and one in progress.
	old := repo.BackupChunkKey("20260101T000000Z", "base.tar", 0)
	fresh := repo.BackupChunkKey(repo.NewBackupID(now), "base.tar", 0)
	for _, k := range []string{old, fresh} {
		if _, err := f.r.Put(ctx, k, []byte("x"), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	past := now.Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(f.dir, old), past, past); err != nil {
		t.Fatal(err)
	}
	// Streamed partials: segment 41 in progress (two sizes), 35 superseded
	// by its full segment, 5 below the kept WAL.
	keys := map[string]bool{}
	for _, sp := range []struct {
		seg   uint64
		valid int64
		kept  bool
	}{{41, 0x1000, false}, {41, 0x2000, true}, {35, 0x1000, false}, {5, 0x1000, false}} {
		k := repo.StreamPartialKey(1, seg(sp.seg), sp.valid)
		if _, err := f.r.Put(ctx, k, []byte("partial"), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		keys[k] = sp.kept
	}
	p := f.plan(t, Policy{RetainFull: 4})
	if !slices.Equal(p.Orphans, []string{old}) {
		t.Errorf("orphans %v, want only %s", p.Orphans, old)
	}
	for k, kept := range keys {
		if slices.Contains(p.Partials, k) == kept {
			t.Errorf("partial %s: removed=%v", k, !kept)
		}
	}
	f.execute(t, p)
	if _, err := f.st.Stat(ctx, fresh); err != nil {
		t.Errorf("chunk of a backup in progress removed: %v", err)
	}
}

func TestNoPolicy(t *testing.T) {
	f := newFixture(t)
	inv, err := Load(context.Background(), f.r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MakePlan(inv, Policy{}, now); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("empty policy: %v, want ErrNoPolicy", err)
	}
	if _, err := MakePlan(inv, Policy{RetainFull: -1}, now); err == nil {
		t.Error("negative count accepted")
	}
}

// Execute stops at once when the lock is lost.
func TestExecuteStopsWhenLockLost(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, Policy{RetainFull: 1})
	lost := fmt.Errorf("%w: lost", repo.ErrLocked)
	if err := Execute(context.Background(), f.r, p, func() error { return lost }); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("Execute = %v, want the lock error", err)
	}
	if ids, _ := f.r.BackupIDs(context.Background()); len(ids) != 4 {
		t.Errorf("backups after a lost lock: %v, want all 4", ids)
	}
}

// TestRunLocksAndRecords: Run from Go keeps the rules the CLI relied on
// itself: a confirmed expire takes the exclusive lock (a running backup's
// shared lock refuses it, and nothing is removed) and records what it
// removed; a dry run takes no lock and records nothing.
func TestRunLocksAndRecords(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pol := Policy{RetainFull: 2}
	clock := func() time.Time { return now }
	backup, err := f.r.Lock(ctx, repo.LockShared, "backup", repo.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dry, err := Run(ctx, f.r, pol, RunOptions{Now: clock})
	if err != nil || len(dry.Removed) != 2 {
		t.Fatalf("dry run beside a backup: %v, %v", dry, err)
	}
	if _, err := Run(ctx, f.r, pol, RunOptions{Confirm: true, Now: clock}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("confirmed beside a backup: %v, want ErrLocked", err)
	}
	if ids, _ := f.r.BackupIDs(ctx); len(ids) != 4 {
		t.Fatalf("a refused expire removed backups: %v", ids)
	}
	if err := backup.Release(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := Run(ctx, f.r, pol, RunOptions{Confirm: true, Now: clock})
	if err != nil || !p.Done || len(p.Removed) != 2 {
		t.Fatalf("confirmed: %+v, %v", p, err)
	}
	recs, err := f.r.AuditRecords(ctx, time.Time{})
	if err != nil || len(recs) != 1 || recs[0].Command != "expire" || recs[0].Action != p.Summary() || len(recs[0].Details) == 0 {
		t.Fatalf("audit: %+v, %v", recs, err)
	}
	if _, err := Run(ctx, f.r, Policy{}, RunOptions{Confirm: true}); !errors.Is(err, ErrPolicy) {
		t.Errorf("no policy: %v", err)
	}
}

// TestPlantedObjectsDoNotStopExpire: in a format-2 repository, a backup
// manifest copied under a newer id and a filestore log record copied
// under another time (what anyone who can write the bucket can do) used
// to make expire fail for good. Now expire decides by the signed backups
// alone, skips filestore expiry, lists both in Ignored and leaves them in
// place. A genuine manifest that is damaged still stops it.
func TestPlantedObjectsDoNotStopExpire(t *testing.T) {
	f := newFixtureWith(t, []repotest.Option{repotest.Signed()})
	ctx := context.Background()
	cp := func(from, to string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(from)))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.dir, filepath.FromSlash(to))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := f.plan(t, Policy{RetainFull: 1})

	planted := repo.BackupManifestKey(repo.NewBackupID(now))
	cp(repo.BackupManifestKey(f.ids[3]), planted)
	name := repo.FilestoreNameOf(strings.Repeat("a", 40))
	if _, err := f.r.Put(ctx, repo.FilestoreObjectKey(name), []byte("a file"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.PutFilestoreRecord(ctx, repo.FilestoreRecord{DB: "prod", Time: now.Add(-time.Hour), Kind: repo.FilestoreSnapshot}); err != nil {
		t.Fatal(err)
	}
	keys, err := f.r.FilestoreLogKeys(ctx, "prod")
	if err != nil || len(keys) != 1 {
		t.Fatalf("filestore log keys %v, %v", keys, err)
	}
	cp(keys[0], repo.FilestoreLogKey("prod", now.Add(-time.Minute), "0badc0de"))

	p := f.plan(t, Policy{RetainFull: 1})
	if got, w := removedIDs(p), removedIDs(want); !slices.Equal(got, w) {
		t.Errorf("removed backups %v, want %v (as without the planted manifest)", got, w)
	}
	if g1, g2, gn := walRemoved(p); fmt.Sprint(g1, g2, gn) != fmt.Sprint(walRemoved(want)) {
		t.Errorf("removed WAL %s..%s (%d), want as without the planted manifest", g1, g2, gn)
	}
	if len(p.Orphans) != 0 {
		t.Errorf("the planted manifest's folder counted as an interrupted backup: %v", p.Orphans)
	}
	if p.Filestore != nil {
		t.Errorf("filestore expiry planned despite a record that fails its check: %+v", p.Filestore)
	}
	var ignored []string
	for _, ig := range p.Ignored {
		ignored = append(ignored, ig.Key)
		if !strings.Contains(ig.Reason, "integrity") {
			t.Errorf("ignored %s: reason %q does not say why", ig.Key, ig.Reason)
		}
	}
	if w := []string{planted, repo.FilestoreLogPrefix("prod")}; !slices.Equal(ignored, w) {
		t.Errorf("ignored %v, want %v", ignored, w)
	}
	f.execute(t, p)
	for _, k := range []string{planted, repo.FilestoreObjectKey(name)} {
		if _, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(k))); err != nil {
			t.Errorf("%s: %v (want it left in place)", k, err)
		}
	}

	// A genuine manifest damaged (its last byte flipped): retention does
	// not act on a repository it cannot read whole.
	damaged := filepath.Join(f.dir, filepath.FromSlash(repo.BackupManifestKey(f.ids[3])))
	data, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(damaged, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, f.r); !errors.Is(err, repo.ErrIntegrity) || errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("Load with a damaged genuine manifest: %v, want an integrity error", err)
	}
}
