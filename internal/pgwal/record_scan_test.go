package pgwal_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/waltest"
)

type xact struct {
	lsn   pgwal.LSN
	t     time.Time
	abort bool
}

func scanAll(t *testing.T, data []byte) ([]xact, pgwal.LSN) {
	t.Helper()
	var got []xact
	end, err := pgwal.ScanXacts(data, func(x pgwal.XactRecord) { got = append(got, xact{x.LSN, x.Time, x.Abort}) })
	if err != nil {
		t.Fatalf("ScanXacts: %v", err)
	}
	return got, end
}

func sameXacts(t *testing.T, got, want []xact) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i].lsn != want[i].lsn || !got[i].t.Equal(want[i].t) || got[i].abort != want[i].abort {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestScanXactsPostgres15 reads a segment written by PostgreSQL 15.18: a
// commit, a commit of 2,500 subtransactions (10,045 bytes, over two page
// boundaries), an abort, a COMMIT PREPARED, a ROLLBACK PREPARED, a commit
// and pg_switch_wal(). The expected values are pg_waldump's.
func TestScanXactsPostgres15(t *testing.T) {
	f, err := os.Open("testdata/000000010000000000000006.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	ts := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := []xact{
		{0x06000068, ts("2026-11-24 08:19:05.698284"), false},
		{0x0602A158, ts("2026-11-24 08:19:05.886030"), false},
		{0x0602C8F0, ts("2026-11-24 08:19:06.000873"), true},
		{0x0602CA50, ts("2026-11-24 08:19:06.002893"), false},
		{0x0602CBB8, ts("2026-11-24 08:19:06.004719"), true},
		{0x0602CC28, ts("2026-11-24 08:19:06.005238"), false},
	}
	got, end := scanAll(t, seg)
	sameXacts(t, got, want)
	if end != 0x0602CC68 { // the end of the XLOG_SWITCH record at 0/602CC50
		t.Errorf("end %s, want 0/602CC68", end)
	}
	// Cut inside the big commit: the records before it, and no error.
	got, end = scanAll(t, seg[:0x2A158+5000])
	sameXacts(t, got, want[:1])
	if end > 0x0602A158 {
		t.Errorf("cut inside a record: end %s, after its start", end)
	}
}

func TestScanXacts(t *testing.T) {
	const blck, segSize = 1024, 1 << 20
	base := time.Date(2026, 11, 24, 8, 14, 46, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	seg0 := pgwal.LSN(5 * segSize)
	newWAL := func() *waltest.WAL { return waltest.NewWAL(seg0, segSize, blck, waltest.SysID) }

	t.Run("records across pages", func(t *testing.T) {
		w := newWAL()
		var want []xact
		w.Record(waltest.RmXLOG, 0x10, make([]byte, 80))
		want = append(want, xact{w.Commit(at(1), 4), at(1), false})
		w.Heap(3000) // over three pages
		want = append(want, xact{w.Abort(at(2)), at(2), true})
		// A commit with 2,000 bytes of subtransactions, over pages.
		want = append(want, xact{w.Record(waltest.RmXact, waltest.XactCommit|0x80, waltest.XactBody(at(3), 2000)), at(3), false})
		// Fill the page up to 16 bytes before its end: the next record's
		// header is split by a page header.
		w.Align()
		if r := blck - uint64(w.Pos())%blck; r < 80 {
			w.Heap(int(r))
			w.Align()
		}
		w.Heap(int(blck-uint64(w.Pos())%blck) - 16 - 49)
		if r := blck - uint64(w.Pos())%blck; r != 16 {
			t.Fatalf("setup: %d bytes left on the page, want 16", r)
		}
		want = append(want, xact{w.Record(waltest.RmXact, waltest.XactCommitPrepared, waltest.XactBody(at(4), 8)), at(4), false})
		want = append(want, xact{w.Record(waltest.RmXact, waltest.XactAbortPrepared, waltest.XactBody(at(5), 8)), at(5), true})
		// Transaction records recovery does not stop at.
		w.Record(waltest.RmXact, waltest.XactPrepare, waltest.XactBody(at(6), 8))
		w.Record(waltest.RmXact, waltest.XactAssignment, make([]byte, 12))
		w.Record(waltest.RmXact, waltest.XactInvalidations, waltest.XactBody(at(99), 100))
		end := w.Pos()
		got, gotEnd := scanAll(t, w.PadTo(segSize))
		sameXacts(t, got, want)
		if gotEnd != end {
			t.Errorf("end %s, want %s", gotEnd, end)
		}
	})

	t.Run("continued at the segment start", func(t *testing.T) {
		for _, cont := range []int{16, 1000, 1024 - 40, 3000} { // within the page, to its end, over pages
			w := newWAL()
			w.Continuation(cont)
			w.Prev = seg0 - 100 // a record in the segment before
			x := w.Commit(at(7), 0)
			got, _ := scanAll(t, w.PadTo(segSize))
			sameXacts(t, got, []xact{{x, at(7), false}})
		}
	})

	t.Run("switch and the next segment", func(t *testing.T) {
		w := newWAL()
		a := w.Commit(at(1), 0)
		w.Switch()
		b := w.Commit(at(2), 0)
		// A commit that begins in the second segment and ends in a third.
		for uint64(w.Pos())%segSize < segSize-3000 {
			w.Heap(900)
		}
		c := w.Commit(at(3), 6000)
		end := w.Pos()
		data := w.PadTo(3 * segSize)
		got, gotEnd := scanAll(t, data)
		sameXacts(t, got, []xact{{a, at(1), false}, {b, at(2), false}, {c, at(3), false}})
		if gotEnd != end {
			t.Errorf("end %s, want %s", gotEnd, end)
		}
		// Without the third segment, the split commit is not read.
		got, _ = scanAll(t, data[:2*segSize])
		sameXacts(t, got, []xact{{a, at(1), false}, {b, at(2), false}})
		// The second segment alone starts at its first record.
		got, _ = scanAll(t, data[segSize:3*segSize])
		sameXacts(t, got, []xact{{b, at(2), false}, {c, at(3), false}})
	})

	// The end of valid WAL: what follows a bad record is not read.
	nextPage := func(w *waltest.WAL, bad pgwal.LSN) uint64 {
		return (uint64(bad)/blck+1)*blck - uint64(w.Start)
	}
	damage := []struct {
		name   string
		before func(w *waltest.WAL) // before the bad record is written
		hurt   func(w *waltest.WAL, bad pgwal.LSN)
	}{
		{name: "CRC", hurt: func(w *waltest.WAL, bad pgwal.LSN) { w.Buf[bad-w.Start+24+3] ^= 1 }},
		{name: "back link", before: func(w *waltest.WAL) { w.Prev -= 8 }}, // a valid CRC over a wrong xl_prev
		{name: "length", hurt: func(w *waltest.WAL, bad pgwal.LSN) { binary.LittleEndian.PutUint32(w.Buf[bad-w.Start:], 0) }},
		{name: "page address of a continuation", hurt: func(w *waltest.WAL, bad pgwal.LSN) { w.Buf[nextPage(w, bad)+8] ^= 1 }},
		{name: "continuation flag", hurt: func(w *waltest.WAL, bad pgwal.LSN) { w.Buf[nextPage(w, bad)+2] &^= 1 }},
		{name: "remaining length", hurt: func(w *waltest.WAL, bad pgwal.LSN) { w.Buf[nextPage(w, bad)+16]++ }},
		{name: "stale page (recycled segment)", hurt: func(w *waltest.WAL, bad pgwal.LSN) {
			p := nextPage(w, bad)
			binary.LittleEndian.PutUint64(w.Buf[p+8:], uint64(w.Start)+p-7*segSize)
		}},
	}
	for _, d := range damage {
		t.Run("damaged "+d.name, func(t *testing.T) {
			w := newWAL()
			a := w.Commit(at(1), 0)
			end := w.Pos()
			if d.before != nil {
				d.before(w)
			}
			bad := w.Commit(at(2), 1500) // over a page end
			w.Commit(at(3), 0)
			if d.hurt != nil {
				d.hurt(w, bad)
			}
			got, gotEnd := scanAll(t, w.PadTo(segSize))
			sameXacts(t, got, []xact{{a, at(1), false}})
			if gotEnd != end {
				t.Errorf("end %s, want %s", gotEnd, end)
			}
		})
	}

	t.Run("not a segment start", func(t *testing.T) {
		w := newWAL()
		w.Commit(at(1), 0)
		if _, err := pgwal.ScanXacts(w.PadTo(segSize)[blck:], func(pgwal.XactRecord) {}); err == nil {
			t.Error("no error for data that does not start a segment")
		}
	})

	t.Run("undecodable transaction record", func(t *testing.T) {
		w := newWAL()
		w.Record(waltest.RmXact, waltest.XactCommit, []byte{255, 4, 1, 2, 3, 4}) // 4 bytes: no xact_time
		if _, err := pgwal.ScanXacts(w.PadTo(segSize), func(pgwal.XactRecord) {}); err == nil {
			t.Error("no error for a commit record without its time")
		}
	})
}

// FuzzScanXacts: any input, no panic; records come in order and end after
// them. (Run with a short -fuzzminimizetime: minimizing inputs of valid
// WAL takes the default minute each.)
func FuzzScanXacts(f *testing.F) {
	const blck, segSize = 1024, 1 << 20
	w := waltest.NewWAL(3*segSize, segSize, blck, waltest.SysID)
	w.Continuation(1500)
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	w.Commit(t0, 0)
	w.Heap(1200)
	w.Commit(t0.Add(time.Second), 900)
	w.Switch()
	w.Abort(t0.Add(2 * time.Second))
	full := w.PadTo(segSize + 2*blck)
	f.Add(bytes.Clone(full[:8*blck]))
	f.Add(bytes.Clone(full[:3000]))
	f.Add(bytes.Clone(full[segSize : segSize+2*blck]))
	f.Fuzz(func(t *testing.T, data []byte) {
		var last pgwal.LSN
		end, err := pgwal.ScanXacts(data, func(x pgwal.XactRecord) {
			if x.LSN < last {
				t.Fatalf("records out of order: %s after %s", x.LSN, last)
			}
			last = x.LSN
		})
		if err == nil && last != 0 && end <= last {
			t.Fatalf("end %s not after the last record %s", end, last)
		}
	})
}
