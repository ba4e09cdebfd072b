package pgwal_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/waltest"
)

func TestCheckPages(t *testing.T) {
	const seg = 5 // segment 5 of waltest.SegSize: LSN 0/500000
	pages := waltest.SegSize / waltest.PageSize
	mid := pages / 2
	switchAt := waltest.PageLSN(seg, mid) + 0x100 // inside page mid
	hist2 := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: switchAt}}
	hist3 := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: switchAt}, {Timeline: 2, SwitchLSN: switchAt + 0x2000}}
	later := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: waltest.PageLSN(seg+3, 0)}}
	known := func(h []pgwal.HistoryEntry) func() ([]pgwal.HistoryEntry, bool, error) {
		return func() ([]pgwal.HistoryEntry, bool, error) { return h, true, nil }
	}
	unknown := func() ([]pgwal.HistoryEntry, bool, error) { return nil, false, nil }
	all := func(tli uint32) func(int) uint32 { return func(int) uint32 { return tli } }
	// fork: pages up to and including the one holding the switch carry
	// from, the others to.
	fork := func(from, to uint32) func(int) uint32 {
		return func(i int) uint32 {
			if i <= mid {
				return from
			}
			return to
		}
	}
	for _, tc := range []struct {
		name    string
		tli     uint32 // the name's
		end     int    // pages with headers (0: all)
		pages   func(int) uint32
		history func() ([]pgwal.HistoryEntry, bool, error)
		ok      bool
	}{
		{"one timeline", 1, 0, all(1), nil, true},
		{"same timeline as a later name", 2, 0, all(2), known(hist2), true},
		{"switch segment copied under the new name", 2, 0, fork(1, 2), known(hist2), true},
		{"switch segment, two switches in it", 3, 0, func(i int) uint32 {
			switch {
			case i <= mid:
				return 1
			case i == mid+1:
				return 2
			}
			return 3
		}, known(hist3), true},
		{"recycled tail is not read", 1, mid, all(1), nil, true},
		{"older timeline, history unknown (format 1)", 2, 0, all(1), unknown, true},
		{"later timeline than the name", 1, 0, fork(1, 2), nil, false},
		{"first page of a later timeline", 1, 0, all(2), nil, false},
		{"out of sequence", 3, 0, func(i int) uint32 { return 3 - uint32(min(i, 1)) }, known(hist3), false},
		{"timeline 0", 1, 0, func(i int) uint32 { return uint32(min(i, 1)) ^ 1 }, nil, false},
		{"whole old segment under the new name", 2, 0, all(1), known(later), false},
		{"old pages past the switch", 2, 0, func(i int) uint32 { return 1 + uint32(i/(mid+2)) }, known(hist2), false},
		{"not an ancestor", 3, 0, fork(2, 3), known([]pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: switchAt}}), false},
		{"no ancestors", 2, 0, fork(1, 2), known(nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := waltest.SetPageHeaders(waltest.Segment(tc.tli, seg, waltest.SysID, 1), tc.end, tc.pages)
			err := pgwal.CheckPages(data, pgwal.PageCheck{Timeline: tc.tli, SegNo: seg, SegSize: waltest.SegSize, History: tc.history})
			if tc.ok != (err == nil) {
				t.Fatalf("CheckPages: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, pgwal.ErrPageTimeline) {
				t.Fatalf("error %v is not ErrPageTimeline", err)
			}
		})
	}
}

func TestCheckPagesHistoryOnlyWhenNeeded(t *testing.T) {
	data := waltest.SetPageHeaders(waltest.Segment(2, 5, waltest.SysID, 1), 0, func(int) uint32 { return 2 })
	called := false
	err := pgwal.CheckPages(data, pgwal.PageCheck{Timeline: 2, SegNo: 5, SegSize: waltest.SegSize,
		History: func() ([]pgwal.HistoryEntry, bool, error) { called = true; return nil, false, nil }})
	if err != nil || called {
		t.Fatalf("err %v, history read %v", err, called)
	}
	boom := errors.New("boom")
	data = waltest.SetPageHeaders(data, 0, func(i int) uint32 { return 1 + uint32(min(i, 1)) })
	err = pgwal.CheckPages(data, pgwal.PageCheck{Timeline: 2, SegNo: 5, SegSize: waltest.SegSize,
		History: func() ([]pgwal.HistoryEntry, bool, error) { return nil, false, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("history error not returned: %v", err)
	}
}

func FuzzParsePageHeader(f *testing.F) {
	f.Add(make([]byte, 20))
	f.Add(waltest.Segment(1, 5, waltest.SysID, 1)[:40])
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := pgwal.ParsePageHeader(b)
		if (err == nil) != (len(b) >= pgwal.PageHeaderFieldsSize) {
			t.Fatalf("ParsePageHeader(%d bytes): %v", len(b), err)
		}
		if err != nil {
			return
		}
		le := binary.LittleEndian
		if h.Magic != le.Uint16(b) || h.Timeline != le.Uint32(b[4:]) || uint64(h.PageAddr) != le.Uint64(b[8:]) {
			t.Fatalf("fields do not round-trip: %+v", h)
		}
	})
}

// FuzzCheckPages: any content is judged without a panic, and a refusal
// is always ErrPageTimeline or a long-header error.
func FuzzCheckPages(f *testing.F) {
	seg := waltest.SetPageHeaders(waltest.Segment(2, 5, waltest.SysID, 1), 0, func(i int) uint32 { return 1 + uint32(min(i/64, 1)) })
	f.Add(seg[:3*waltest.PageSize], uint32(2), uint64(0x500000))
	f.Add(seg[:waltest.PageSize+24], uint32(1), uint64(0x500000))
	f.Add([]byte{}, uint32(1), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, tli uint32, sw uint64) {
		hist := []pgwal.HistoryEntry{{Timeline: 1, SwitchLSN: pgwal.LSN(sw)}}
		_ = pgwal.CheckPages(data, pgwal.PageCheck{Timeline: tli, SegNo: 5, SegSize: waltest.SegSize,
			History: func() ([]pgwal.HistoryEntry, bool, error) { return hist, true, nil }})
	})
}
