package pgwal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// Record layout constants of PostgreSQL 13 to 18 on 8-byte-aligned
// platforms (src/include/access/xlog_internal.h, xlogrecord.h).
const (
	shortPageHeaderSize = 24 // MAXALIGN(sizeof(XLogPageHeaderData))
	recordHeaderSize    = 24 // SizeOfXLogRecord

	xlpFirstIsContRecord = 0x0001

	rmXLOG     = 0    // RM_XLOG_ID
	rmXact     = 1    // RM_XACT_ID
	xlogSwitch = 0x40 // XLOG_SWITCH

	xactOpMask        = 0x70 // XLOG_XACT_OPMASK
	xactCommit        = 0x00
	xactAbort         = 0x20
	xactCommitPrepped = 0x30
	xactAbortPrepped  = 0x40

	blockIDDataShort   = 255
	blockIDDataLong    = 254
	blockIDOrigin      = 253
	blockIDToplevel    = 252
	maxBlockID         = 32
	bkpBlockHasImage   = 0x10
	bkpBlockSameRel    = 0x80
	bkpImageHasHole    = 0x01
	relFileNodeSize    = 12
	magicPG14          = 0xD10D
	bkpImageCompress   = 0x02 // BKPIMAGE_IS_COMPRESSED up to PostgreSQL 14
	bkpImageCompress15 = 0x1C // BKPIMAGE_COMPRESS_PGLZ | _LZ4 | _ZSTD from 15
)

// pgEpoch is PostgreSQL's timestamp epoch: TimestampTz counts microseconds
// from it.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// XactRecord is a transaction commit or abort record (prepared ones
// included): the records PostgreSQL compares recovery_target_time with.
type XactRecord struct {
	// LSN is where the record begins.
	LSN LSN
	// Time is the record's xact_time, in microseconds.
	Time  time.Time
	Abort bool
}

// ScanXacts decodes the WAL records in data and calls fn for each commit
// and abort record, in LSN order. data holds WAL from the start of a
// segment: one segment, or consecutive segments one after the other, so that
// a record that begins in one and ends in the next is read whole.
//
// Records are read as PostgreSQL's recovery reads them: the scan starts at
// the first record that begins in data (the end of one continued from the
// previous segment is skipped), follows each record's length to the next
// (to the next segment after a WAL switch), and stops at the end of valid
// WAL: a record or page header that does not check out, a broken back link
// (xl_prev), a CRC mismatch, or data that ends inside a record. Zeros after
// the last record, as in a padded partial segment, end the scan that way.
// end is where the scan stopped: the end of the last valid record.
// One case PostgreSQL reads further: a page flagged
// XLP_FIRST_IS_OVERWRITE_CONTRECORD (a record left incomplete by a crash and
// overwritten) ends this scan; the caller then sees fewer records, never
// wrong ones.
//
// The error is for data that does not begin with a segment's long page
// header, or a record whose CRC matches but whose layout cannot be decoded.
func ScanXacts(data []byte, fn func(XactRecord)) (end LSN, err error) {
	h, err := ParseLongPageHeader(data)
	if err != nil {
		return 0, err
	}
	s := scanner{data: data, start: h.PageAddr, blck: uint64(h.BlockSize), segSize: uint64(h.SegmentSize), magic: h.Magic}
	pos, ok := s.firstRecord()
	if !ok {
		return h.PageAddr, nil
	}
	end = pos
	var prev LSN
	for {
		rec, next, ok := s.record(pos, prev)
		if !ok {
			return end, nil
		}
		rmid, info := rec[17], rec[16]
		end = next
		if rmid == rmXact {
			op := info & xactOpMask
			if op == xactCommit || op == xactAbort || op == xactCommitPrepped || op == xactAbortPrepped {
				main, err := mainData(rec, s.magic)
				if err != nil {
					return end, fmt.Errorf("WAL record at %s: %w", pos, err)
				}
				if len(main) < 8 {
					return end, fmt.Errorf("WAL record at %s: transaction record with %d bytes of data, want at least 8", pos, len(main))
				}
				us := int64(binary.LittleEndian.Uint64(main))
				fn(XactRecord{LSN: pos, Time: pgEpoch.Add(time.Duration(us) * time.Microsecond), Abort: op == xactAbort || op == xactAbortPrepped})
			}
		}
		prev = pos
		if rmid == rmXLOG && info&^0x0F == xlogSwitch {
			// The rest of the segment is unused: the next record starts
			// at the segment boundary at or after the switch record's
			// end (a switch record that begins in a segment's last bytes
			// ends in the next one, as xlogreader rounds it).
			next = LSN((uint64(next) + s.segSize - 1) / s.segSize * s.segSize)
		}
		pos = s.recordStart(maxAlign(next))
	}
}

// scanner reads WAL records out of pages.
type scanner struct {
	data          []byte
	start         LSN // LSN of data[0], a segment start
	blck, segSize uint64
	magic         uint16
}

func maxAlign(l LSN) LSN { return (l + 7) &^ 7 }

// headerSize is the size of the page header of the page at lsn (a page
// start).
func (s *scanner) headerSize(page LSN) uint64 {
	if uint64(page)%s.segSize == 0 {
		return LongPageHeaderSize
	}
	return shortPageHeaderSize
}

// page checks the header of the page at page (a page start) and returns its
// xlp_info and xlp_rem_len; ok is false when data does not hold the page or
// the header is not that of this page.
func (s *scanner) page(page LSN) (info uint16, remLen uint32, ok bool) {
	off := uint64(page - s.start)
	if uint64(page) < uint64(s.start) || off+s.blck > uint64(len(s.data)) {
		return 0, 0, false
	}
	b := s.data[off:]
	le := binary.LittleEndian
	if le.Uint16(b) != s.magic || LSN(le.Uint64(b[8:])) != page {
		return 0, 0, false
	}
	info = le.Uint16(b[2:])
	if (info&XLPLongHeader != 0) != (uint64(page)%s.segSize == 0) {
		return 0, 0, false
	}
	return info, le.Uint32(b[16:]), true
}

// firstRecord finds the first record that begins in data, as
// XLogFindNextRecord does: past the continuation of a record from before.
func (s *scanner) firstRecord() (LSN, bool) {
	for p := s.start; ; p += LSN(s.blck) {
		info, rem, ok := s.page(p)
		if !ok {
			return 0, false
		}
		hs := s.headerSize(p)
		if info&xlpFirstIsContRecord == 0 {
			return p + LSN(hs), true
		}
		if uint64(rem) < s.blck-hs {
			return s.recordStart(maxAlign(p + LSN(hs) + LSN(rem))), true
		}
	}
}

// recordStart moves a record position that falls on a page start past the
// page header, where the record really begins.
func (s *scanner) recordStart(l LSN) LSN {
	if uint64(l)%s.blck == 0 {
		return l + LSN(s.headerSize(l))
	}
	return l
}

// record reads the record at pos, whose xl_prev must be prev (unless prev is
// 0), and returns its bytes and its end. ok is false at the end of valid
// WAL.
func (s *scanner) record(pos, prev LSN) (rec []byte, end LSN, ok bool) {
	// The page the record begins on; a record that begins right after the
	// page header must not be announced as a continuation.
	page := LSN(uint64(pos) / s.blck * s.blck)
	info, _, ok := s.page(page)
	if !ok || uint64(pos-page) == s.headerSize(page) && info&xlpFirstIsContRecord != 0 {
		return nil, 0, false
	}
	hdr, _, ok := s.read(pos, recordHeaderSize, 0)
	if !ok {
		return nil, 0, false
	}
	le := binary.LittleEndian
	total := le.Uint32(hdr)
	back := LSN(le.Uint64(hdr[8:]))
	switch {
	case total < recordHeaderSize:
		return nil, 0, false // zeros: the end of the WAL written
	case prev != 0 && back != prev:
		return nil, 0, false
	case prev == 0 && back >= pos:
		return nil, 0, false // as PostgreSQL checks when it starts reading anywhere
	}
	rec, end, ok = s.read(pos, uint64(total), uint64(total))
	if !ok {
		return nil, 0, false
	}
	crc := crc32.Update(0, castagnoli, rec[recordHeaderSize:])
	crc = crc32.Update(crc, castagnoli, rec[:20])
	if crc != le.Uint32(rec[20:]) {
		return nil, 0, false
	}
	return rec, end, true
}

// read copies n bytes of the record that begins at pos and is total bytes
// long (0: not known yet), skipping page headers and checking that every
// page it continues on says so. end is where the n bytes end.
func (s *scanner) read(pos LSN, n, total uint64) (b []byte, end LSN, ok bool) {
	if n > uint64(len(s.data)) {
		return nil, 0, false
	}
	b = make([]byte, 0, n)
	p := pos
	for uint64(len(b)) < n {
		off := uint64(p - s.start)
		if p < s.start || off >= uint64(len(s.data)) {
			return nil, 0, false
		}
		inPage := uint64(p) % s.blck
		if inPage == 0 {
			// A continuation page.
			info, rem, ok := s.page(p)
			if !ok || info&xlpFirstIsContRecord == 0 {
				return nil, 0, false
			}
			if total != 0 && uint64(rem) != total-uint64(len(b)) || rem == 0 {
				return nil, 0, false
			}
			hs := s.headerSize(p)
			p += LSN(hs)
			off += hs
			inPage = hs
		}
		k := min(n-uint64(len(b)), s.blck-inPage)
		if off+k > uint64(len(s.data)) {
			return nil, 0, false
		}
		b = append(b, s.data[off:off+k]...)
		p += LSN(k)
	}
	return b, p, true
}

// mainData returns the main data of record rec (the record's last bytes,
// after the block data), reading past its block headers (DecodeXLogRecord).
// magic is the page magic, which tells the block image flags apart.
func mainData(rec []byte, magic uint16) ([]byte, error) {
	le := binary.LittleEndian
	b := rec[recordHeaderSize:]
	var blockData, mainLen uint64
	need := func(n int) error {
		if len(b) < n {
			return fmt.Errorf("record headers end after %d bytes of %d", len(rec)-len(b), len(rec))
		}
		return nil
	}
headers:
	for len(b) > 0 {
		id := b[0]
		switch {
		case id == blockIDDataShort:
			if err := need(2); err != nil {
				return nil, err
			}
			mainLen, b = uint64(b[1]), b[2:]
			break headers
		case id == blockIDDataLong:
			if err := need(5); err != nil {
				return nil, err
			}
			mainLen, b = uint64(le.Uint32(b[1:])), b[5:]
			break headers
		case id == blockIDOrigin:
			if err := need(3); err != nil {
				return nil, err
			}
			b = b[3:]
		case id == blockIDToplevel:
			if err := need(5); err != nil {
				return nil, err
			}
			b = b[5:]
		case id <= maxBlockID:
			if err := need(4); err != nil {
				return nil, err
			}
			flags := b[1]
			blockData += uint64(le.Uint16(b[2:]))
			b = b[4:]
			if flags&bkpBlockHasImage != 0 {
				if err := need(5); err != nil {
					return nil, err
				}
				blockData += uint64(le.Uint16(b))
				bimg := b[4]
				b = b[5:]
				compressed := bimg&bkpImageCompress15 != 0
				if magic <= magicPG14 {
					compressed = bimg&bkpImageCompress != 0
				}
				if bimg&bkpImageHasHole != 0 && compressed {
					if err := need(2); err != nil {
						return nil, err
					}
					b = b[2:]
				}
			}
			if flags&bkpBlockSameRel == 0 {
				if err := need(relFileNodeSize); err != nil {
					return nil, err
				}
				b = b[relFileNodeSize:]
			}
			if err := need(4); err != nil {
				return nil, err
			}
			b = b[4:]
		default:
			return nil, fmt.Errorf("invalid block id %d", id)
		}
	}
	if blockData+mainLen != uint64(len(b)) {
		return nil, fmt.Errorf("record of %d bytes: headers, %d bytes of block data and %d of main data do not add up", len(rec), blockData, mainLen)
	}
	return b[blockData:], nil
}
