package waltest

import (
	"encoding/binary"

	"github.com/walvault/walvault/internal/pgwal"
)

// PageSize is the WAL block size of the segments Segment makes.
const PageSize = 8192

// SetPageHeaders gives every page of seg after the first (up to, not
// including, page end; all pages when end is 0) a short page header of
// the segment seg opens, with the timeline tliOf returns for the page's
// index (the first page is 0), as PostgreSQL writes them. It returns seg.
func SetPageHeaders(seg []byte, end int, tliOf func(page int) uint32) []byte {
	le := binary.LittleEndian
	start := le.Uint64(seg[8:])
	if end == 0 {
		end = len(seg) / PageSize
	}
	le.PutUint32(seg[4:], tliOf(0))
	for i := 1; i < end; i++ {
		b := seg[i*PageSize:]
		le.PutUint16(b[0:], le.Uint16(seg[0:]))
		le.PutUint16(b[2:], 0)
		le.PutUint32(b[4:], tliOf(i))
		le.PutUint64(b[8:], start+uint64(i*PageSize))
		le.PutUint32(b[16:], 0)
	}
	return seg
}

// PageLSN is the LSN of page i of segment segno.
func PageLSN(segno uint64, i int) pgwal.LSN {
	return pgwal.LSN(segno*SegSize + uint64(i*PageSize))
}
