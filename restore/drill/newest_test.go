package drill

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/storage"
)

// drillRepo is a repository with one backup of segment 2 and the WAL after
// it, written by waltest.WAL.
type drillRepo struct {
	r    *repo.Repository
	wal  *waltest.WAL
	stop time.Time
	m    *repo.BackupManifest
}

func newDrillRepo(t *testing.T, stop time.Time) *drillRepo {
	t.Helper()
	r := repotest.New(t).Repository
	w := waltest.NewWAL(2*waltest.SegSize, waltest.SegSize, 8192, waltest.SysID)
	start := w.Heap(100)
	w.Heap(200)
	m := &repo.BackupManifest{
		ID: repo.NewBackupID(stop.Add(-time.Second)), Timeline: 1,
		StartTime: stop.Add(-time.Second), StopTime: stop,
		StartLSN: start, StopLSN: w.Pos(),
		SystemIdentifier: "7312345678901234567", PGVersionNum: 150018, WALSegmentSize: waltest.SegSize,
	}
	if err := r.PutBackupManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return &drillRepo{r: r, wal: w, stop: stop, m: m}
}

// archive stores the WAL written so far as full segments from 2 to last.
func (dr *drillRepo) archive(t *testing.T, last uint64) {
	t.Helper()
	for seg := uint64(2); seg <= last; seg++ {
		if _, err := dr.r.Put(context.Background(), repo.WALSegmentKey(1, seg, waltest.SegSize), dr.wal.Segment(seg), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func (dr *drillRepo) draw(t *testing.T, seed uint64) (time.Time, *Report, error) {
	t.Helper()
	d := &drill{r: dr.r, opts: Options{RandomPoint: true, Seed: seed}, rep: &Report{}, log: slog.New(slog.DiscardHandler)}
	err := d.randomTarget(context.Background())
	if err != nil {
		return time.Time{}, d.rep, err
	}
	return *d.opts.Target, d.rep, nil
}

// TestRandomPointBeforeNewestCommit is the failure of TestDrillS3 made
// deterministic. The recoverable window ends at the upload time of the
// newest segment, which is after the newest commit that segment holds: here
// the last commit is 2 s before the upload, in a window of about 3 s. (In
// TestDrillS3 the window is under a second, its start pushed late by the
// backup's StopTime, rounded up by up to a second, and its end is the
// upload a few hundred milliseconds after the last commit: under load a
// draw at 0.3-0.6 of it could land after the commit.) PostgreSQL stops at a
// recovery_target_time only at a later commit, so every point drawn in that
// last stretch failed with "recovery ended before configured recovery
// target was reached". Every draw must now lie before the newest commit.
func TestRandomPointBeforeNewestCommit(t *testing.T) {
	now := time.Now()
	dr := newDrillRepo(t, now.Add(-3*time.Second))
	var last time.Time
	for i := range 5 {
		last = now.Add(-2900*time.Millisecond + time.Duration(i)*200*time.Millisecond).Truncate(time.Microsecond)
		dr.wal.Commit(last, 0)
		dr.wal.Heap(50)
	}
	dr.wal.Switch() // then uploaded 2 s after the last commit: now
	dr.archive(t, 2)

	after := 0
	for seed := uint64(1); seed <= 200; seed++ {
		got, rep, err := dr.draw(t, seed)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !got.Before(last) {
			after++
			if after <= 3 {
				t.Errorf("seed %d drew %s, not before the newest archived commit %s: recovery to it cannot promote",
					seed, got.UTC().Format(time.RFC3339Nano), last.UTC().Format(time.RFC3339Nano))
			}
		}
		if got.Before(dr.stop) {
			t.Errorf("seed %d drew %s, before the backup's end %s", seed, got, dr.stop)
		}
		if n := rep.Window.NewestArchivedCommit; n == nil || !n.Equal(last) {
			t.Errorf("seed %d: report gives the newest archived commit as %v, want %s", seed, n, last)
		}
	}
	if after > 0 {
		t.Errorf("%d of 200 seeds drew a point after the newest archived commit", after)
	}
}

func TestNewestArchivedXact(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	ctx := context.Background()
	newest := func(t *testing.T, dr *drillRepo) (time.Time, pgwal.LSN, bool) {
		t.Helper()
		cat, err := catalog.Load(ctx, dr.r)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := cat.Recoverable()
		if !ok {
			t.Fatal("no recoverable window")
		}
		n, lsn, found, err := newestArchivedXact(ctx, dr.r, cat, w)
		if err != nil {
			t.Fatal(err)
		}
		return n, lsn, found
	}

	t.Run("the newest, not the last in WAL order", func(t *testing.T) {
		dr := newDrillRepo(t, at(0))
		dr.wal.Commit(at(1), 0)
		want := dr.wal.Commit(at(3), 0)
		dr.wal.Abort(at(2)) // a timestamp taken before the commit's, logged after it
		dr.wal.Switch()
		dr.archive(t, 2)
		if n, lsn, ok := newest(t, dr); !ok || !n.Equal(at(3)) || lsn != want {
			t.Errorf("newest = %v at %s (%v), want %v at %s", n, lsn, ok, at(3), want)
		}
	})

	t.Run("back over segments without a commit", func(t *testing.T) {
		dr := newDrillRepo(t, at(0))
		dr.wal.Commit(at(1), 0)
		want := dr.wal.Commit(at(2), 0)
		dr.wal.Switch()
		for dr.wal.Pos() < 4*waltest.SegSize+1000 { // segment 3, and into 4
			dr.wal.Heap(5000)
		}
		dr.wal.Switch()
		dr.archive(t, 4)
		if n, lsn, ok := newest(t, dr); !ok || !n.Equal(at(2)) || lsn != want {
			t.Errorf("newest = %v at %s (%v), want %v at %s", n, lsn, ok, at(2), want)
		}
	})

	t.Run("a commit over two segments", func(t *testing.T) {
		dr := newDrillRepo(t, at(0))
		dr.wal.Commit(at(1), 0)
		for dr.wal.Pos() < 3*waltest.SegSize-3000 {
			dr.wal.Heap(5000)
		}
		want := dr.wal.Commit(at(2), 9000) // begins in segment 2, ends in 3
		dr.wal.Heap(10)
		dr.wal.Switch()
		dr.archive(t, 3)
		if n, lsn, ok := newest(t, dr); !ok || !n.Equal(at(2)) || lsn != want {
			t.Errorf("newest = %v at %s (%v), want %v at %s", n, lsn, ok, at(2), want)
		}
	})

	t.Run("the streamed partial", func(t *testing.T) {
		dr := newDrillRepo(t, at(0))
		dr.wal.Commit(at(1), 0)
		dr.wal.Switch()
		want := dr.wal.Commit(at(2), 0)
		dr.wal.Heap(10)
		dr.archive(t, 2)
		valid := int64(dr.wal.Pos() - 3*waltest.SegSize)
		seg3 := dr.wal.Segment(3)[:valid]
		key := repo.StreamPartialKey(1, pgwal.SegmentName(1, 3, waltest.SegSize), valid)
		if _, err := dr.r.Put(ctx, key, seg3, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if n, lsn, ok := newest(t, dr); !ok || !n.Equal(at(2)) || lsn != want {
			t.Errorf("newest = %v at %s (%v), want %v at %s", n, lsn, ok, at(2), want)
		}
	})

	t.Run("none after the backup", func(t *testing.T) {
		dr := newDrillRepo(t, at(0))
		dr.wal.Heap(10)
		dr.wal.Switch()
		dr.archive(t, 2)
		if _, _, ok := newest(t, dr); ok {
			t.Error("found a commit in WAL that holds none")
		}
		// The drill says so instead of drawing a point it cannot reach.
		if _, _, err := dr.draw(t, 1); !errors.Is(err, pitr.ErrTargetOutsideWindow) {
			t.Errorf("random point without a commit: %v", err)
		}
	})
}

func TestDrawable(t *testing.T) {
	from := time.Date(2026, 11, 24, 8, 14, 46, 850_000_400, time.UTC) // not a whole microsecond
	w := catalog.Window{From: from, To: from.Add(550 * time.Millisecond)}
	us := func(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
	for _, tc := range []struct {
		name     string
		newest   time.Time
		wantTo   time.Time
		wantFrom time.Time
		ok       bool
	}{
		{"commit mid-window", us(from.Add(268 * time.Millisecond)), us(from.Add(268 * time.Millisecond)).Add(-time.Microsecond), from, true},
		{"newest not a whole microsecond", from.Add(268 * time.Millisecond), us(from.Add(268 * time.Millisecond)), from, true},
		{"commit after the window's end (clocks)", from.Add(time.Second), w.To, from, true},
		{"commit at the window's start", from, time.Time{}, time.Time{}, false},
		{"commit before the window", from.Add(-time.Second), time.Time{}, time.Time{}, false},
		{"one microsecond to draw", us(from).Add(2 * time.Microsecond), us(from).Add(time.Microsecond), from, true},
	} {
		got, ok := Drawable(w, tc.newest)
		if ok != tc.ok || ok && (!got.To.Equal(tc.wantTo) || !got.From.Equal(tc.wantFrom)) {
			t.Errorf("%s: Drawable = %v..%v, %v; want ..%v, %v", tc.name, got.From, got.To, ok, tc.wantTo, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		for seed := uint64(1); seed < 300; seed++ {
			p := RandomPoint(got, NewRand(seed))
			if !p.Before(tc.newest) || p.Before(from) || p.After(w.To) {
				t.Errorf("%s: seed %d drew %v, outside [%v, %v) and the window", tc.name, seed, p, from, tc.newest)
				break
			}
		}
	}
}
