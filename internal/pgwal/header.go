package pgwal

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// LongPageHeaderSize is the size in bytes of XLogLongPageHeaderData on the
// platforms PostgreSQL supports with 8-byte alignment (x86-64, arm64).
const LongPageHeaderSize = 40

// XLPLongHeader is the xlp_info flag that marks a long page header.
const XLPLongHeader = 0x0002

// LongPageHeader is XLogLongPageHeaderData, the header of the first page of
// every WAL segment. It binds the segment to one cluster (SystemIdentifier)
// and records the segment and WAL block sizes the cluster was created with.
type LongPageHeader struct {
	Magic            uint16 // xlp_magic: WAL format version, see MajorFromMagic
	Info             uint16 // xlp_info flag bits
	Timeline         uint32 // xlp_tli: timeline of the first record on the page
	PageAddr         LSN    // xlp_pageaddr: LSN of the page, the segment start
	RemLen           uint32 // xlp_rem_len: bytes of a record continued from the previous segment
	SystemIdentifier uint64 // xlp_sysid: pg_control's system identifier
	SegmentSize      uint32 // xlp_seg_size
	BlockSize        uint32 // xlp_xlog_blcksz
}

// ParseLongPageHeader decodes the first LongPageHeaderSize bytes of b, a WAL
// segment's first page, in PostgreSQL's little-endian x86-64 layout:
//
//	0  xlp_magic        uint16
//	2  xlp_info         uint16
//	4  xlp_tli          uint32
//	8  xlp_pageaddr     uint64
//	16 xlp_rem_len      uint32
//	20 (padding)        4 bytes
//	24 xlp_sysid        uint64
//	32 xlp_seg_size     uint32
//	36 xlp_xlog_blcksz  uint32
//
// It checks that the XLP_LONG_HEADER flag is set, that the segment size is
// valid (ValidSegmentSize), that the block size is a power of two from 1 KiB
// to 32 KiB, and that the page address is the start of a segment. It does not
// reject unknown magic numbers, so that newer PostgreSQL releases can still
// be identified by system identifier; use MajorFromMagic for that.
func ParseLongPageHeader(b []byte) (LongPageHeader, error) {
	if len(b) < LongPageHeaderSize {
		return LongPageHeader{}, fmt.Errorf("WAL long page header: need %d bytes, have %d", LongPageHeaderSize, len(b))
	}
	le := binary.LittleEndian
	h := LongPageHeader{
		Magic:            le.Uint16(b[0:]),
		Info:             le.Uint16(b[2:]),
		Timeline:         le.Uint32(b[4:]),
		PageAddr:         LSN(le.Uint64(b[8:])),
		RemLen:           le.Uint32(b[16:]),
		SystemIdentifier: le.Uint64(b[24:]),
		SegmentSize:      le.Uint32(b[32:]),
		BlockSize:        le.Uint32(b[36:]),
	}
	if h.Info&XLPLongHeader == 0 {
		return LongPageHeader{}, fmt.Errorf("WAL long page header: XLP_LONG_HEADER flag not set in xlp_info 0x%04X (magic 0x%04X): not the first page of a WAL segment", h.Info, h.Magic)
	}
	if !ValidSegmentSize(int64(h.SegmentSize)) {
		return LongPageHeader{}, fmt.Errorf("WAL long page header: invalid segment size %d (want a power of two from 1 MiB to 1 GiB)", h.SegmentSize)
	}
	if h.BlockSize < 1<<10 || h.BlockSize > 32<<10 || bits.OnesCount32(h.BlockSize) != 1 {
		return LongPageHeader{}, fmt.Errorf("WAL long page header: invalid WAL block size %d (want a power of two from 1 KiB to 32 KiB)", h.BlockSize)
	}
	if uint64(h.PageAddr)%uint64(h.SegmentSize) != 0 {
		return LongPageHeader{}, fmt.Errorf("WAL long page header: page address %s is not the start of a %d-byte segment", h.PageAddr, h.SegmentSize)
	}
	return h, nil
}

// SegNo returns the number of the segment this header opens.
func (h LongPageHeader) SegNo() uint64 {
	return SegNoOf(h.PageAddr, int64(h.SegmentSize))
}

// SegmentName returns the file name of the segment this header opens.
func (h LongPageHeader) SegmentName() string {
	return SegmentName(h.Timeline, h.SegNo(), int64(h.SegmentSize))
}

// MajorFromMagic returns the PostgreSQL major version whose WAL carries the
// page magic number magic (XLOG_PAGE_MAGIC in src/include/access/xlog_internal.h),
// for the releases walvault knows: 13 to 18. Unknown values return false.
func MajorFromMagic(magic uint16) (int, bool) {
	switch magic {
	case 0xD106:
		return 13, true
	case 0xD10D:
		return 14, true
	case 0xD110:
		return 15, true
	case 0xD113:
		return 16, true
	case 0xD116:
		return 17, true
	case 0xD118:
		return 18, true
	}
	return 0, false
}
