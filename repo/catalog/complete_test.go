package catalog

import (
	"errors"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// completeCatalog: timeline 1 segments 1–6 (its head 6, past the switch),
// timeline 2 from 0/5000100 (in segment 5) with segments 5–8 and head 8;
// one backup on timeline 1 starting in segment 2.
func completeCatalog() *Catalog {
	c := &Catalog{SegSize: segSize, KeepsHeads: true, Timelines: map[uint32][]pgwal.HistoryEntry{
		2: {{Timeline: 1, SwitchLSN: pgwal.SegmentStart(5, segSize) + 0x100}},
	}}
	add := func(tli uint32, from, to uint64) {
		for s := from; s <= to; s++ {
			f, _ := pgwal.ParseFileName(pgwal.SegmentName(tli, s, segSize))
			c.WAL = append(c.WAL, repo.WALObject{File: f, Key: repo.WALKey(f)})
		}
	}
	add(1, 1, 6)
	add(2, 5, 8)
	h, _ := pgwal.ParseFileName("00000002.history")
	c.WAL = append(c.WAL, repo.WALObject{File: h, Key: repo.WALKey(h)})
	head := func(tli uint32, s uint64) repo.WALHead {
		f, _ := pgwal.ParseFileName(pgwal.SegmentName(tli, s, segSize))
		return repo.WALHead{File: f, Key: repo.HeadKey(f)}
	}
	c.Heads = map[uint32]repo.WALHead{1: head(1, 6), 2: head(2, 8)}
	c.Backups = []*repo.BackupManifest{{ID: "20261122T120000Z", Timeline: 1, StartLSN: pgwal.SegmentStart(2, segSize) + 0x28, StopLSN: pgwal.SegmentStart(2, segSize) + 0x100}}
	return c
}

func dropWAL(c *Catalog, key string) {
	var kept []repo.WALObject
	for _, w := range c.WAL {
		if w.Key != key {
			kept = append(kept, w)
		}
	}
	c.WAL = kept
}

func TestMissingWAL(t *testing.T) {
	c := completeCatalog()
	tli := c.LatestWALTimeline()
	from := c.NeededFrom(tli, nil)
	if tli != 2 || from != c.Backups[0].StartLSN {
		t.Fatalf("latest timeline %d, from %s", tli, from)
	}
	if m := c.MissingWAL(tli, from); len(m) != 0 {
		t.Fatalf("complete: missing %v", m)
	}
	for _, tc := range []struct {
		drop string
		want []string
	}{
		{repo.WALSegmentKey(2, 8, segSize), []string{repo.WALSegmentKey(2, 8, segSize)}},
		{repo.WALSegmentKey(1, 3, segSize), []string{repo.WALSegmentKey(1, 3, segSize)}},
		// Segment 5 is timeline 2's (the switch is in it): timeline 1's
		// own copy past the switch is not on this history.
		{repo.WALSegmentKey(1, 6, segSize), nil},
		{repo.WALSegmentKey(2, 5, segSize), []string{repo.WALSegmentKey(2, 5, segSize)}},
		{"wal/00000002/00000002.history", []string{"wal/00000002/00000002.history"}},
	} {
		c := completeCatalog()
		dropWAL(c, tc.drop)
		if tc.drop == "wal/00000002/00000002.history" {
			delete(c.Timelines, 2)
		}
		got := c.MissingWAL(c.LatestWALTimeline(), from)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("without %s: missing %v, want %v", tc.drop, got, tc.want)
		}
		if err := c.CheckComplete(c.LatestWALTimeline(), from); (err != nil) != (len(tc.want) > 0) || err != nil && !errors.Is(err, repo.ErrIncompleteWAL) {
			t.Errorf("without %s: CheckComplete %v", tc.drop, err)
		}
	}
	// Format 1: no heads, nothing required.
	c = completeCatalog()
	c.KeepsHeads = false
	dropWAL(c, repo.WALSegmentKey(2, 8, segSize))
	if m := c.MissingWAL(2, from); m != nil {
		t.Fatalf("format 1: %v", m)
	}
}

func TestCheckReaches(t *testing.T) {
	c := completeCatalog()
	end := pgwal.SegmentStart(9, segSize)
	if got := c.Reached(2); got != end {
		t.Fatalf("Reached = %s, want %s", got, end)
	}
	for _, s := range []string{pgwal.SegmentName(2, 8, segSize), end.String(), "0/0"} {
		at, err := ParseWALPosition(s, segSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckReaches(2, at); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	at, _ := ParseWALPosition(pgwal.SegmentName(2, 9, segSize), segSize)
	if err := c.CheckReaches(2, at); !errors.Is(err, repo.ErrIncompleteWAL) || !strings.Contains(err.Error(), repo.WALSegmentKey(2, 9, segSize)) {
		t.Errorf("beyond the archive: %v", err)
	}
	for _, bad := range []string{"00000002.history", "x", pgwal.SegmentName(2, 9, segSize) + ".partial", "00000002000000000000FFFF"} {
		if _, err := ParseWALPosition(bad, segSize); err == nil {
			t.Errorf("ParseWALPosition(%q) accepted", bad)
		}
	}
}

func FuzzParseWALPosition(f *testing.F) {
	for _, s := range []string{"000000020000000000000009", "0/9000000", "FFFFFFFF/FFFFFFFF", "00000002.history", "", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseWALPosition(s, segSize)
		if err != nil {
			return
		}
		if fn, ferr := pgwal.ParseFileName(s); ferr == nil {
			if l != pgwal.SegmentStart(fn.SegNo(segSize)+1, segSize) {
				t.Fatalf("%q: %s is not the segment's end", s, l)
			}
			return
		}
		if again, err := pgwal.ParseLSN(l.String()); err != nil || again != l {
			t.Fatalf("%q: %s does not round-trip", s, l)
		}
	})
}
