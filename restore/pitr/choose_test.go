package pitr

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
)

const segSize = 16 << 20

// Synthetic catalogs: segment n is uploaded n minutes after t0, and a
// backup's times follow the same clock.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func at(minutes float64) time.Time { return t0.Add(time.Duration(minutes * float64(time.Minute))) }

func walSegs(t *testing.T, tli uint32, segnos ...uint64) []repo.WALObject {
	t.Helper()
	var out []repo.WALObject
	for _, n := range segnos {
		f, err := pgwal.ParseFileName(pgwal.SegmentName(tli, n, segSize))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, repo.WALObject{File: f, Key: repo.WALKey(f), ModTime: at(float64(n))})
	}
	return out
}

// synthBackup starts and stops inside segments start and stop.
func synthBackup(id string, tli uint32, start, stop uint64) *repo.BackupManifest {
	return &repo.BackupManifest{
		ID: id, Timeline: tli,
		StartLSN: pgwal.LSN(start*segSize + 0x28), StopLSN: pgwal.LSN(stop*segSize + 0x100),
		StartTime: at(float64(start) + 0.1), StopTime: at(float64(stop) + 0.3),
	}
}

func synthCatalog(bs []*repo.BackupManifest, tl map[uint32][]pgwal.HistoryEntry, wal ...[]repo.WALObject) *catalog.Catalog {
	c := &catalog.Catalog{Backups: bs, Timelines: tl, SegSize: segSize}
	for _, w := range wal {
		c.WAL = append(c.WAL, w...)
	}
	return c
}

func TestChooseBackup(t *testing.T) {
	a := synthBackup("20261122T120200Z", 1, 2, 2)
	b := synthBackup("20261122T120500Z", 1, 5, 5)
	full := synthCatalog([]*repo.BackupManifest{a, b}, nil, walSegs(t, 1, 1, 2, 3, 4, 5, 6, 7, 8))
	// Backup b's WAL (segment 5) is gone; a reaches segment 4.
	holed := synthCatalog([]*repo.BackupManifest{a, b}, nil, walSegs(t, 1, 1, 2, 3, 4, 6, 7, 8))
	// Timeline 2 forked off timeline 1 in segment 4, before b was taken on
	// the old branch.
	hist := map[uint32][]pgwal.HistoryEntry{2: {{Timeline: 1, SwitchLSN: pgwal.LSN(4*segSize + 0x100)}}}
	forked := synthCatalog([]*repo.BackupManifest{a, b}, hist, walSegs(t, 1, 1, 2, 3, 4, 5, 6), walSegs(t, 2, 4, 5, 6, 7, 8))

	tm := func(m float64) *time.Time { v := at(m); return &v }
	lsn := func(v uint64) *pgwal.LSN { l := pgwal.LSN(v); return &l }
	xid := uint64(1234)

	tests := []struct {
		name   string
		c      *catalog.Catalog
		id     string
		t      Target
		want   *repo.BackupManifest
		err    error
		errHas []string
		tli    uint32
	}{
		{name: "time between backups", c: full, t: Target{Time: tm(4)}, want: a},
		{name: "time after the newest", c: full, t: Target{Time: tm(7.5)}, want: b},
		{name: "time exactly at the end of WAL", c: full, t: Target{Time: tm(8)}, want: b},
		{name: "time after the last WAL", c: full, t: Target{Time: tm(9)}, err: ErrTargetOutsideWindow,
			errHas: []string{"after the last archived WAL", "2026-11-22T12:08:00Z", "0/9000000", "2026-11-22T12:05:18Z", "0/5000100"}},
		{name: "time before every backup", c: full, t: Target{Time: tm(1)}, err: ErrTargetOutsideWindow,
			errHas: []string{"before the end of the oldest usable backup", "2026-11-22T12:02:18Z", "0/2000100"}},
		{name: "time inside a backup", c: full, t: Target{Time: tm(2.2)}, err: ErrTargetOutsideWindow},
		{name: "LSN between backups", c: full, t: Target{LSN: lsn(3 * segSize)}, want: a},
		{name: "LSN at the end of a backup", c: full, t: Target{LSN: lsn(5*segSize + 0x100)}, want: b},
		{name: "LSN past the WAL", c: full, t: Target{LSN: lsn(9*segSize + 1)}, err: ErrTargetOutsideWindow, errHas: []string{"0/9000000"}},
		{name: "XID takes the oldest", c: full, t: Target{XID: &xid}, want: a},
		{name: "name takes the oldest", c: full, t: Target{Name: "before-upgrade"}, want: a},
		{name: "immediate takes the newest", c: full, t: Target{Immediate: true}, want: b},
		{name: "no target takes the newest", c: full, want: b},
		{name: "named backup", c: full, id: b.ID, t: Target{Time: tm(6)}, want: b},
		{name: "named backup after the target", c: full, id: b.ID, t: Target{Time: tm(4)}, err: ErrTargetOutsideWindow},
		{name: "named backup unknown", c: full, id: "20261122T000000Z", err: ErrNoBackup, errHas: []string{"20261122T000000Z", "walvault info lists"}},
		{name: "no backups", c: synthCatalog(nil, nil), err: ErrNoBackup},
		{name: "named backup, no backups at all", c: synthCatalog(nil, nil), id: "20261122T000000Z", err: ErrNoBackup, errHas: []string{"20261122T000000Z", "no complete backup"}},
		{name: "WAL of the newest lost: older one", c: holed, t: Target{Time: tm(3.5)}, want: a},
		{name: "WAL of the newest lost: no target", c: holed, want: a},
		{name: "gap after the older one", c: holed, t: Target{Time: tm(7)}, err: ErrTargetOutsideWindow, errHas: []string{"0/5000000"}},
		{name: "named backup without its WAL", c: holed, id: b.ID, err: ErrNoBackup, errHas: []string{"0/5000028", "0/5000100"}},
		{name: "latest skips a backup off the newest timeline", c: forked, want: a, tli: 2},
		{name: "current keeps the old branch", c: forked, t: Target{Timeline: "current"}, want: b, tli: 1},
		{name: "numbered timeline", c: forked, t: Target{Timeline: "2", Time: tm(7)}, want: a, tli: 2},
		{name: "named backup off the newest timeline", c: forked, id: b.ID, err: ErrNoBackup, errHas: []string{"--target-timeline current"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := chooseBackup(tt.c, tt.id, tt.t)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.backup != tt.want {
				t.Errorf("chose %s, want %s", ch.backup.ID, tt.want.ID)
			}
			if tt.tli != 0 && (ch.timeline != tt.tli || ch.window.Timeline != tt.tli) {
				t.Errorf("timeline %d (window %v), want %d", ch.timeline, ch.window, tt.tli)
			}
		})
	}
}

// TestChooseBackupEdge: a time target in the second in which a backup ended
// (after the server's STOP TIME, before STOP TIME+1s) is left to
// PostgreSQL, but only when no backup that surely ended by then can be
// used, and never when it is before the start's second is over.
func TestChooseBackupEdge(t *testing.T) {
	hms := func(s string) time.Time {
		v, err := time.Parse("15:04:05.999", s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(t0.Year(), t0.Month(), t0.Day(), v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
	}
	// fromHistory is backup synthBackup(…, 5, 5) dated by a history file:
	// START TIME start, STOP TIME stop.
	fromHistory := func(id, start, stop string) *repo.BackupManifest {
		b := synthBackup(id, 1, 5, 5)
		s := hms(stop)
		b.StartTime, b.ServerStopTime, b.StopTime = hms(start), &s, s.Add(time.Second)
		b.StopTimeSource = repo.StopTimeFromHistory
		return b
	}
	a := synthBackup("20261122T120200Z", 1, 2, 2) // ends 12:02:18
	e := fromHistory("20261122T120500Z", "12:05:00", "12:05:40")
	quick := fromHistory("20261122T120501Z", "12:05:40", "12:05:40")
	estimated := synthBackup("20261122T120502Z", 1, 5, 5) // ends 12:05:18, no server stop time
	estimated.StopTimeSource = repo.StopTimeEstimated
	odd := fromHistory("20261122T120503Z", "12:05:00", "12:05:40")
	odd.StopTime = odd.StopTime.Add(5 * time.Second) // not STOP TIME + 1s: S is not trusted
	wal := walSegs(t, 1, 1, 2, 3, 4, 5, 6, 7, 8)

	tm := func(s string) *time.Time { v := hms(s); return &v }
	tests := []struct {
		name string
		bs   []*repo.BackupManifest
		t    string
		want *repo.BackupManifest // nil: refused
		edge bool
	}{
		{name: "in the stop second", bs: []*repo.BackupManifest{e}, t: "12:05:40.5", want: e, edge: true},
		{name: "at STOP TIME", bs: []*repo.BackupManifest{e}, t: "12:05:40", want: e, edge: true},
		{name: "before STOP TIME", bs: []*repo.BackupManifest{e}, t: "12:05:39.999", want: nil},
		{name: "at StopTime", bs: []*repo.BackupManifest{e}, t: "12:05:41", want: e},
		{name: "an older backup that surely ended is preferred", bs: []*repo.BackupManifest{a, e}, t: "12:05:40.5", want: a},
		{name: "after StopTime the newest", bs: []*repo.BackupManifest{a, e}, t: "12:05:41", want: e},
		{name: "not before START TIME + 1s", bs: []*repo.BackupManifest{quick}, t: "12:05:40.5", want: nil},
		{name: "estimated stop time", bs: []*repo.BackupManifest{estimated}, t: "12:05:17.9", want: nil},
		{name: "estimated stop time reached", bs: []*repo.BackupManifest{estimated}, t: "12:05:18", want: estimated},
		{name: "inconsistent server stop time ignored", bs: []*repo.BackupManifest{odd}, t: "12:05:40.5", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := chooseBackup(synthCatalog(tt.bs, nil, wal), "", Target{Time: tm(tt.t)})
			if tt.want == nil {
				if !errors.Is(err, ErrTargetOutsideWindow) {
					t.Fatalf("chose %v, %v; want ErrTargetOutsideWindow", ch, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.backup != tt.want || ch.edge != tt.edge {
				t.Errorf("chose %s (edge %v), want %s (edge %v)", ch.backup.ID, ch.edge, tt.want.ID, tt.edge)
			}
		})
	}
	// A named backup follows the same rule.
	if ch, err := chooseBackup(synthCatalog([]*repo.BackupManifest{a, e}, nil, wal), e.ID, Target{Time: tm("12:05:40.5")}); err != nil || ch.backup != e || !ch.edge {
		t.Errorf("named backup at its edge: %v, %v", ch, err)
	}
}

// TestChooseBackupDeletedWAL: in a repository that keeps completeness heads,
// a target past a segment the heads say was archived and is gone is refused
// naming the segment (not blamed on archiving), and a deleted history file
// is refused rather than followed around (issue 14).
func TestChooseBackupDeletedWAL(t *testing.T) {
	a := synthBackup("20261122T120200Z", 1, 2, 2)
	hist := map[uint32][]pgwal.HistoryEntry{2: {{Timeline: 1, SwitchLSN: pgwal.LSN(6*segSize + 0x100)}}}
	history, _ := pgwal.ParseFileName("00000002.history")
	headed := func(wal ...[]repo.WALObject) *catalog.Catalog {
		c := synthCatalog([]*repo.BackupManifest{a}, maps.Clone(hist), wal...)
		c.KeepsHeads = true
		c.Heads = map[uint32]repo.WALHead{}
		for _, s := range []struct {
			tli uint32
			seg uint64
		}{{1, 7}, {2, 9}} {
			f, _ := pgwal.ParseFileName(pgwal.SegmentName(s.tli, s.seg, segSize))
			c.Heads[s.tli] = repo.WALHead{File: f, Key: repo.HeadKey(f)}
		}
		return c
	}
	historyObj := []repo.WALObject{{File: history, Key: repo.WALKey(history)}}
	full := headed(walSegs(t, 1, 1, 2, 3, 4, 5, 6, 7), walSegs(t, 2, 6, 7, 8, 9), historyObj)
	// Segment 4 deleted (timeline 1, below both heads).
	holed := headed(walSegs(t, 1, 1, 2, 3, 5, 6, 7), walSegs(t, 2, 6, 7, 8, 9), historyObj)
	// Timeline 2's history deleted: 'latest' would stay on timeline 1.
	noHistory := headed(walSegs(t, 1, 1, 2, 3, 4, 5, 6, 7), walSegs(t, 2, 6, 7, 8, 9))
	delete(noHistory.Timelines, 2)
	// The newest segment deleted, its head kept.
	noNewest := headed(walSegs(t, 1, 1, 2, 3, 4, 5, 6, 7), walSegs(t, 2, 6, 7, 8), historyObj)

	tm := func(m float64) *time.Time { v := at(m); return &v }
	lsn := func(v uint64) *pgwal.LSN { l := pgwal.LSN(v); return &l }
	seg4 := repo.WALSegmentKey(1, 4, segSize)
	tests := []struct {
		name   string
		c      *catalog.Catalog
		t      Target
		err    error
		errHas []string
	}{
		{name: "complete", c: full, t: Target{Time: tm(8.5)}},
		{name: "before the hole", c: holed, t: Target{Time: tm(3)}},
		{name: "time past the hole", c: holed, t: Target{Time: tm(5.5)}, err: repo.ErrIncompleteWAL, errHas: []string{seg4, "after the end of the WAL left", a.ID}},
		{name: "LSN past the hole", c: holed, t: Target{LSN: lsn(5 * segSize)}, err: repo.ErrIncompleteWAL, errHas: []string{seg4}},
		{name: "time past the deleted newest", c: noNewest, t: Target{Time: tm(9.5)}, err: repo.ErrIncompleteWAL, errHas: []string{repo.WALSegmentKey(2, 9, segSize)}},
		{name: "history deleted", c: noHistory, t: Target{Time: tm(3)}, err: repo.ErrIncompleteWAL, errHas: []string{"wal/00000002/00000002.history", "--target-timeline"}},
		{name: "history deleted, one timeline on purpose", c: noHistory, t: Target{Time: tm(3), Timeline: "current"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := chooseBackup(tt.c, "", tt.t)
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if ch.backup != a {
					t.Fatalf("chose %s", ch.backup.ID)
				}
				return
			}
			if !errors.Is(err, tt.err) || !errors.Is(err, repo.ErrIntegrity) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "has not reached the repository") {
				t.Errorf("error %q blames archiving for a deletion", err)
			}
		})
	}
}
