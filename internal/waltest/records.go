package waltest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
)

// Resource managers and record kinds of the records WAL writes
// (PostgreSQL's RM_XLOG_ID, RM_XACT_ID, XLOG_SWITCH, XLOG_XACT_*).
const (
	RmXLOG     = 0
	RmXact     = 1
	RmHeap     = 10
	XLOGSwitch = 0x40

	XactCommit         = 0x00
	XactPrepare        = 0x10
	XactAbort          = 0x20
	XactCommitPrepared = 0x30
	XactAbortPrepared  = 0x40
	XactAssignment     = 0x50
	XactInvalidations  = 0x60
)

const (
	shortPageHeaderSize = 24
	recordHeaderSize    = 24
	contRecord          = 0x0001
	relFileNodeSize     = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// WAL lays out WAL records in pages as PostgreSQL's XLogInsert does, for
// tests: page headers (long at segment starts), records at 8-byte
// boundaries, records and record headers split across pages under
// continuation headers, xl_prev links and CRCs. Buf is the WAL written so
// far, from Start (a segment start); tests may damage it.
type WAL struct {
	Buf       []byte
	Start     pgwal.LSN
	BlockSize uint64
	SegSize   uint64
	Magic     uint16
	SysID     uint64
	// Timeline goes into the page headers written from now on (0: 1).
	Timeline uint32
	// Prev is the start of the last record, the next one's xl_prev.
	Prev pgwal.LSN
}

// NewWAL starts WAL at start, a segment start, of a PostgreSQL 15 cluster
// sysid with segments of segSize bytes and pages of blockSize.
func NewWAL(start pgwal.LSN, segSize, blockSize uint64, sysid uint64) *WAL {
	return &WAL{Start: start, BlockSize: blockSize, SegSize: segSize, Magic: 0xD110, SysID: sysid}
}

// Pos is where the next byte goes.
func (w *WAL) Pos() pgwal.LSN { return w.Start + pgwal.LSN(len(w.Buf)) }

// pageHeader writes the header of the page at the current position; rem is
// how many bytes of a record continued from the page before remain (0:
// none).
func (w *WAL) pageHeader(rem uint64) {
	p := w.Pos()
	var info uint16
	if rem > 0 {
		info |= contRecord
	}
	size := shortPageHeaderSize
	if uint64(p)%w.SegSize == 0 {
		info |= pgwal.XLPLongHeader
		size = pgwal.LongPageHeaderSize
	}
	h := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint16(h, w.Magic)
	le.PutUint16(h[2:], info)
	le.PutUint32(h[4:], max(w.Timeline, 1))
	le.PutUint64(h[8:], uint64(p))
	le.PutUint32(h[16:], uint32(rem))
	if size == pgwal.LongPageHeaderSize {
		le.PutUint64(h[24:], w.SysID)
		le.PutUint32(h[32:], uint32(w.SegSize))
		le.PutUint32(h[36:], uint32(w.BlockSize))
	}
	w.Buf = append(w.Buf, h...)
}

// write appends b, of which rem bytes of a record remain (b included),
// starting page headers where pages begin; first: b begins the record.
func (w *WAL) write(b []byte, rem uint64, first bool) {
	for len(b) > 0 {
		if uint64(w.Pos())%w.BlockSize == 0 {
			if first {
				w.pageHeader(0)
			} else {
				w.pageHeader(rem)
			}
		}
		first = false
		n := min(uint64(len(b)), w.BlockSize-uint64(w.Pos())%w.BlockSize)
		w.Buf = append(w.Buf, b[:n]...)
		b, rem = b[n:], rem-n
	}
}

// Continuation writes the last n bytes of a record begun before Start.
func (w *WAL) Continuation(n int) {
	w.write(bytes.Repeat([]byte{0xAB}, n), uint64(n), false)
	w.Align()
}

// Align pads to the next 8-byte boundary, where records begin.
func (w *WAL) Align() {
	for w.Pos()%8 != 0 {
		w.Buf = append(w.Buf, 0)
	}
}

// Record appends a record of resource manager rmid with info and body (the
// block headers, data headers and data after the XLogRecord header), and
// returns where it begins.
func (w *WAL) Record(rmid, info byte, body []byte) pgwal.LSN {
	w.Align()
	if uint64(w.Pos())%w.BlockSize == 0 {
		w.pageHeader(0)
	}
	at := w.Pos()
	rec := make([]byte, recordHeaderSize+len(body))
	le := binary.LittleEndian
	le.PutUint32(rec, uint32(len(rec)))
	le.PutUint32(rec[4:], 1234)
	le.PutUint64(rec[8:], uint64(w.Prev))
	rec[16], rec[17] = info, rmid
	copy(rec[recordHeaderSize:], body)
	crc := crc32.Update(0, castagnoli, rec[recordHeaderSize:])
	crc = crc32.Update(crc, castagnoli, rec[:20])
	le.PutUint32(rec[20:], crc)
	w.write(rec, uint64(len(rec)), true)
	w.Prev = at
	return at
}

// Commit appends a commit record at t with extra bytes of data after its
// time (subtransactions and the like); Abort an abort record.
func (w *WAL) Commit(t time.Time, extra int) pgwal.LSN {
	return w.Record(RmXact, XactCommit, XactBody(t, extra))
}

// Abort appends an abort record at t.
func (w *WAL) Abort(t time.Time) pgwal.LSN { return w.Record(RmXact, XactAbort, XactBody(t, 0)) }

// Heap appends a record with one block reference carrying n bytes of data.
func (w *WAL) Heap(n int) pgwal.LSN { return w.Record(RmHeap, 0, HeapBody(n)) }

// Switch appends an XLOG_SWITCH record and zeros to the end of the segment.
func (w *WAL) Switch() pgwal.LSN {
	at := w.Record(RmXLOG, XLOGSwitch, nil)
	for uint64(w.Pos())%w.SegSize != 0 {
		w.Buf = append(w.Buf, 0)
	}
	return at
}

// PadTo appends zeros up to n bytes, and returns Buf.
func (w *WAL) PadTo(n int) []byte {
	for len(w.Buf) < n {
		w.Buf = append(w.Buf, 0)
	}
	return w.Buf
}

// Segment returns segment segno of the WAL written, padded with zeros to
// its end.
func (w *WAL) Segment(segno uint64) []byte {
	from := segno*w.SegSize - uint64(w.Start)
	w.PadTo(int(from + w.SegSize))
	return bytes.Clone(w.Buf[from : from+w.SegSize])
}

// XactBody is the body of a commit or abort record at t with extra bytes of
// data after xact_time.
func XactBody(t time.Time, extra int) []byte {
	main := make([]byte, 8+extra)
	binary.LittleEndian.PutUint64(main, uint64(t.Sub(pgEpoch)/time.Microsecond))
	for i := 8; i < len(main); i++ {
		main[i] = byte(i)
	}
	if len(main) < 256 {
		return append([]byte{255, byte(len(main))}, main...)
	}
	h := []byte{254, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(h[1:], uint32(len(main)))
	return append(h, main...)
}

// HeapBody is a record body with one block reference carrying n bytes of
// data and three bytes of main data: what most records look like. The
// record is 49+n bytes long.
func HeapBody(n int) []byte {
	b := []byte{0, 0x20 /* BKPBLOCK_HAS_DATA */, byte(n), byte(n >> 8)}
	b = append(b, make([]byte, relFileNodeSize+4)...)
	b = append(b, 255, 3)
	b = append(b, make([]byte, n)...)
	return append(b, 1, 2, 3)
}
