package catalog

import (
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

const segSize = 16 << 20

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func lsn(t *testing.T, s string) pgwal.LSN {
	t.Helper()
	l, err := pgwal.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// seg is a WAL segment object uploaded segno minutes after t0.
func seg(t *testing.T, tli uint32, segno uint64) repo.WALObject {
	t.Helper()
	f, err := pgwal.ParseFileName(pgwal.SegmentName(tli, segno, segSize))
	if err != nil {
		t.Fatal(err)
	}
	return repo.WALObject{File: f, Key: repo.WALKey(f), Size: 1000, ModTime: t0.Add(time.Duration(segno) * time.Minute)}
}

func segs(t *testing.T, tli uint32, segnos ...uint64) []repo.WALObject {
	var out []repo.WALObject
	for _, n := range segnos {
		out = append(out, seg(t, tli, n))
	}
	return out
}

func other(t *testing.T, name string) repo.WALObject {
	f, err := pgwal.ParseFileName(name)
	if err != nil {
		t.Fatal(err)
	}
	return repo.WALObject{File: f, Key: repo.WALKey(f), ModTime: t0}
}

// backup starts at start and stops at stop on tli; its times follow the
// segment clock of seg (one minute per segment).
func backup(t *testing.T, id string, tli uint32, start, stop string) *repo.BackupManifest {
	s, e := lsn(t, start), lsn(t, stop)
	return &repo.BackupManifest{
		ID: id, Timeline: tli, StartLSN: s, StopLSN: e,
		StartTime: t0.Add(time.Duration(uint64(s)/segSize)*time.Minute + 10*time.Second),
		StopTime:  t0.Add(time.Duration(uint64(e)/segSize)*time.Minute + 20*time.Second),
	}
}

func cat(bs []*repo.BackupManifest, tl map[uint32][]pgwal.HistoryEntry, wal ...[]repo.WALObject) *Catalog {
	c := &Catalog{Backups: bs, Timelines: tl, SegSize: segSize}
	for _, w := range wal {
		c.WAL = append(c.WAL, w...)
	}
	return c
}

func TestRanges(t *testing.T) {
	c := cat(nil, nil,
		segs(t, 1, 1, 2, 3, 5, 6),
		segs(t, 2, 6, 7),
		[]repo.WALObject{other(t, "00000002.history"), other(t, "000000010000000000000007.partial"), other(t, "000000010000000000000002.00000028.backup")},
	)
	got := c.Ranges()
	want := []WALRange{
		{Timeline: 1, From: "000000010000000000000001", To: "000000010000000000000003", Segments: 3, FromLSN: lsn(t, "0/1000000"), ToLSN: lsn(t, "0/4000000")},
		{Timeline: 1, From: "000000010000000000000005", To: "000000010000000000000006", Segments: 2, FromLSN: lsn(t, "0/5000000"), ToLSN: lsn(t, "0/7000000")},
		{Timeline: 2, From: "000000020000000000000006", To: "000000020000000000000007", Segments: 2, FromLSN: lsn(t, "0/6000000"), ToLSN: lsn(t, "0/8000000")},
	}
	if len(got) != len(want) {
		t.Fatalf("Ranges = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("range %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if r := (&Catalog{}).Ranges(); r != nil {
		t.Errorf("empty catalog: %v", r)
	}
}

func TestReach(t *testing.T) {
	// Timeline 2 forked from 1 at 0/4000100; timeline 3 from 2 at 0/6000000.
	hist2 := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: pgwal.LSN(0x4000100)}}
	hist3 := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: pgwal.LSN(0x4000100)}, {Timeline: 2, SwitchLSN: pgwal.LSN(0x6000000)}}

	tests := []struct {
		name     string
		c        *Catalog
		b        *repo.BackupManifest
		ok       bool
		toLSN    string
		toSeg    uint64 // segment whose ModTime is To
		timeline uint32
	}{
		{
			name: "contiguous", ok: true, toLSN: "0/6000000", toSeg: 5, timeline: 1,
			b: backup(t, "a", 1, "0/2000028", "0/3000100"),
			c: cat(nil, nil, segs(t, 1, 1, 2, 3, 4, 5)),
		},
		{
			name: "gap ends the reach", ok: true, toLSN: "0/5000000", toSeg: 4, timeline: 1,
			b: backup(t, "a", 1, "0/2000028", "0/3000100"),
			c: cat(nil, nil, segs(t, 1, 2, 3, 4, 6, 7)),
		},
		{
			name: "WAL of the backup missing", ok: false, toLSN: "0/3000000", toSeg: 2, timeline: 1,
			b: backup(t, "a", 1, "0/2000028", "0/3000100"),
			c: cat(nil, nil, segs(t, 1, 2, 4, 5)),
		},
		{
			name: "no WAL at all", ok: false, toLSN: "0/2000000", timeline: 1,
			b: backup(t, "a", 1, "0/2000028", "0/3000100"),
			c: cat(nil, nil),
		},
		{
			name: "stop on a segment boundary needs no more", ok: true, toLSN: "0/3000000", toSeg: 2, timeline: 1,
			b: backup(t, "a", 1, "0/2000028", "0/3000000"),
			c: cat(nil, nil, segs(t, 1, 2)),
		},
		{
			name: "follows a timeline switch", ok: true, toLSN: "0/8000000", toSeg: 7, timeline: 2,
			b: backup(t, "a", 1, "0/2000028", "0/3000100"),
			// Timeline 1 went on past the switch (segments 4, 5): recovery
			// towards timeline 2 must take 2's segment 4 instead.
			c: cat(nil, map[uint32][]pgwal.HistoryEntry{2: hist2}, segs(t, 1, 2, 3, 4, 5), segs(t, 2, 4, 5, 6, 7)),
		},
		{
			name: "switch segment of the child missing", ok: true, toLSN: "0/4000000", toSeg: 3, timeline: 1,
			b: backup(t, "a", 1, "0/2000028", "0/3000100"),
			c: cat(nil, map[uint32][]pgwal.HistoryEntry{2: hist2}, segs(t, 1, 2, 3, 4, 5), segs(t, 2, 5, 6, 7)),
		},
		{
			name: "two switches", ok: true, toLSN: "0/9000000", toSeg: 8, timeline: 3,
			b: backup(t, "a", 1, "0/2000028", "0/3000100"),
			c: cat(nil, map[uint32][]pgwal.HistoryEntry{2: hist2, 3: hist3}, segs(t, 1, 2, 3), segs(t, 2, 4, 5), segs(t, 3, 6, 7, 8)),
		},
		{
			name: "backup on the abandoned branch stays on it", ok: true, toLSN: "0/7000000", toSeg: 6, timeline: 1,
			b: backup(t, "a", 1, "0/5000028", "0/5000100"),
			c: cat(nil, map[uint32][]pgwal.HistoryEntry{2: hist2}, segs(t, 1, 2, 3, 4, 5, 6), segs(t, 2, 4, 5, 6, 7)),
		},
		{
			name: "backup on the child timeline", ok: true, toLSN: "0/8000000", toSeg: 7, timeline: 2,
			b: backup(t, "a", 2, "0/5000028", "0/5000100"),
			c: cat(nil, map[uint32][]pgwal.HistoryEntry{2: hist2}, segs(t, 1, 2, 3, 4, 5, 6), segs(t, 2, 4, 5, 6, 7)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, ok := tt.c.Reach(tt.b)
			if ok != tt.ok {
				t.Errorf("ok = %v, want %v (window %v)", ok, tt.ok, w)
			}
			if w.ToLSN != lsn(t, tt.toLSN) {
				t.Errorf("ToLSN = %s, want %s", w.ToLSN, tt.toLSN)
			}
			if w.Timeline != tt.timeline {
				t.Errorf("Timeline = %d, want %d", w.Timeline, tt.timeline)
			}
			if w.From != tt.b.StopTime || w.FromLSN != tt.b.StopLSN {
				t.Errorf("From = %v %s, want the backup's stop %v %s", w.From, w.FromLSN, tt.b.StopTime, tt.b.StopLSN)
			}
			wantTo := t0.Add(time.Duration(tt.toSeg) * time.Minute)
			if wantTo.Before(tt.b.StopTime) {
				wantTo = tt.b.StopTime
			}
			if !w.To.Equal(wantTo) {
				t.Errorf("To = %v, want %v", w.To, wantTo)
			}
		})
	}
}

func TestTimelines(t *testing.T) {
	hist2 := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: pgwal.LSN(0x4000100)}}
	// Timeline 3 forked from timeline 1 later than timeline 2 did.
	hist3 := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: pgwal.LSN(0x6000000)}}
	c := cat(nil, map[uint32][]pgwal.HistoryEntry{2: hist2, 3: hist3})
	early := backup(t, "early", 1, "0/2000028", "0/2000100")
	middle := backup(t, "middle", 1, "0/5000028", "0/5000100")
	late := backup(t, "late", 1, "0/7000028", "0/7000100")
	straddle := backup(t, "straddle", 1, "0/4000028", "0/4000200")

	for _, tt := range []struct {
		b      *repo.BackupManifest
		on     map[uint32]bool
		latest uint32
	}{
		{early, map[uint32]bool{1: true, 2: true, 3: true}, 3},
		{middle, map[uint32]bool{1: true, 2: false, 3: true}, 3},
		{late, map[uint32]bool{1: true, 2: false, 3: false}, 1},
		{straddle, map[uint32]bool{1: true, 2: false, 3: true}, 3},
	} {
		for tli, want := range tt.on {
			if got := c.OnHistory(tt.b, tli); got != want {
				t.Errorf("OnHistory(%s, %d) = %v, want %v", tt.b.ID, tli, got, want)
			}
		}
		if got := c.LatestTimeline(tt.b); got != tt.latest {
			t.Errorf("LatestTimeline(%s) = %d, want %d", tt.b.ID, got, tt.latest)
		}
	}
	if got := c.NewestTimeline(1); got != 3 {
		t.Errorf("NewestTimeline(1) = %d, want 3", got)
	}
	// PostgreSQL's probe stops at the first missing history file.
	c.Timelines[5] = hist3
	if got := c.NewestTimeline(1); got != 3 {
		t.Errorf("NewestTimeline(1) with a hole = %d, want 3", got)
	}
	if got := c.NewestTimeline(4); got != 5 {
		t.Errorf("NewestTimeline(4) = %d, want 5", got)
	}
}

func TestRecoverable(t *testing.T) {
	if _, ok := cat(nil, nil, segs(t, 1, 1, 2)).Recoverable(); ok {
		t.Error("no backups: ok = true")
	}
	old := backup(t, "old", 1, "0/2000028", "0/2000100")
	newer := backup(t, "newer", 1, "0/5000028", "0/5000100")

	// The oldest backup's window runs to the first gap, even though the
	// newer backup reaches further.
	c := cat([]*repo.BackupManifest{newer, old}, nil, segs(t, 1, 2, 3, 5, 6, 7))
	w, ok := c.Recoverable()
	if !ok || w.FromLSN != old.StopLSN || w.ToLSN != lsn(t, "0/4000000") || !w.To.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("Recoverable = %v, %v; want from %s to 0/4000000", w, ok, old.StopLSN)
	}

	// When the oldest backup lost its WAL, the window starts at the next.
	c = cat([]*repo.BackupManifest{old, newer}, nil, segs(t, 1, 3, 5, 6, 7))
	w, ok = c.Recoverable()
	if !ok || w.FromLSN != newer.StopLSN || w.ToLSN != lsn(t, "0/8000000") {
		t.Errorf("Recoverable = %v, %v; want from %s to 0/8000000", w, ok, newer.StopLSN)
	}

	// No usable backup at all.
	c = cat([]*repo.BackupManifest{old}, nil, segs(t, 1, 3))
	if w, ok := c.Recoverable(); ok {
		t.Errorf("Recoverable = %v, want ok = false", w)
	}

	// Through a timeline switch.
	hist2 := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: pgwal.LSN(0x3000100)}}
	c = cat([]*repo.BackupManifest{old}, map[uint32][]pgwal.HistoryEntry{2: hist2}, segs(t, 1, 2, 3), segs(t, 2, 3, 4))
	w, ok = c.Recoverable()
	if !ok || w.ToLSN != lsn(t, "0/5000000") || w.Timeline != 2 {
		t.Errorf("Recoverable = %v, %v; want to 0/5000000 on timeline 2", w, ok)
	}
	if s := w.String(); s == "" {
		t.Error("empty String")
	}
}

func TestWindowToNotBeforeFrom(t *testing.T) {
	// A storage clock behind the server's: To is clamped to From.
	b := backup(t, "a", 1, "0/2000028", "0/2000100")
	b.StopTime = t0.Add(time.Hour)
	c := cat([]*repo.BackupManifest{b}, nil, segs(t, 1, 2, 3))
	w, ok := c.Reach(b)
	if !ok || !w.To.Equal(b.StopTime) {
		t.Errorf("Reach = %v, %v; want To = %v", w, ok, b.StopTime)
	}
}

func TestReachIncludesStreamedPartial(t *testing.T) {
	b := backup(t, "20261122T120000Z", 1, "0/2000028", "0/2000100")
	c := cat([]*repo.BackupManifest{b}, nil, segs(t, 1, 2, 3, 4))
	f, _ := pgwal.ParseFileName(pgwal.SegmentName(1, 5, segSize))
	when := t0.Add(7 * time.Minute)
	c.Partials = []repo.StreamPartial{{File: f, Valid: 0x4000, ModTime: when}}
	w, ok := c.Reach(b)
	if !ok || w.ToLSN != lsn(t, "0/5004000") || !w.To.Equal(when) {
		t.Fatalf("Reach = %+v, %v; want to 0/5004000 at %v", w, ok, when)
	}
	// A partial not right after the contiguous run extends nothing.
	f7, _ := pgwal.ParseFileName(pgwal.SegmentName(1, 7, segSize))
	c.Partials = []repo.StreamPartial{{File: f7, Valid: 0x4000, ModTime: when}}
	if w, _ := c.Reach(b); w.ToLSN != lsn(t, "0/5000000") {
		t.Fatalf("gap: ToLSN = %s", w.ToLSN)
	}
}
