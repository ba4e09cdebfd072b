package pgwal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PageHeader is XLogPageHeaderData, the short header every WAL page starts
// with (the first page of a segment has the long header, which begins with
// the same fields).
type PageHeader struct {
	Magic    uint16 // xlp_magic
	Info     uint16 // xlp_info
	Timeline uint32 // xlp_tli: timeline of the first record on the page
	PageAddr LSN    // xlp_pageaddr: the page's own LSN
	RemLen   uint32 // xlp_rem_len
}

// PageHeaderFieldsSize is how many bytes ParsePageHeader reads.
const PageHeaderFieldsSize = 20

// ParsePageHeader decodes the fields of a page header at the start of b. It
// checks nothing but the length: whether the page belongs where it lies is
// for the caller (CheckPages) to judge.
func ParsePageHeader(b []byte) (PageHeader, error) {
	if len(b) < PageHeaderFieldsSize {
		return PageHeader{}, fmt.Errorf("WAL page header: need %d bytes, have %d", PageHeaderFieldsSize, len(b))
	}
	le := binary.LittleEndian
	return PageHeader{
		Magic:    le.Uint16(b[0:]),
		Info:     le.Uint16(b[2:]),
		Timeline: le.Uint32(b[4:]),
		PageAddr: LSN(le.Uint64(b[8:])),
		RemLen:   le.Uint32(b[16:]),
	}, nil
}

// ErrPageTimeline: a page of a WAL file carries a timeline its name and the
// timeline history say it cannot carry.
var ErrPageTimeline = errors.New("WAL page timeline does not fit the file's name")

// PageCheck says what a WAL file's pages must agree with.
type PageCheck struct {
	// Timeline and SegNo are the file's name's.
	Timeline uint32
	SegNo    uint64
	SegSize  int64
	// History returns the entries of Timeline's history file (one per
	// ancestor: the timeline and where it ended), and known=false when
	// the history is not available (then older timelines are allowed
	// without judging where they ended). It is called only when a page
	// carries an older timeline than the name: in all but the one segment
	// of each timeline switch, never.
	History func() (entries []HistoryEntry, known bool, err error)
}

// CheckPages checks the timeline of every page of a WAL segment (data, the
// whole file) against its name, the way recovery will read them, and
// returns ErrPageTimeline (wrapped, naming the page) for what PostgreSQL
// cannot have written:
//
//   - a page of a later timeline than the name's, or of timeline 0;
//   - a page of an earlier timeline than the page before it;
//   - a page of an older timeline T' than the name's T when the history
//     says T' is not an ancestor of T, or that T' had ended before the
//     page, or that T began only after this segment. At a timeline switch
//     PostgreSQL copies the segment holding the switch point under the
//     new timeline's name: its pages up to the switch carry the old
//     timeline, and that is the only segment named T with older pages.
//
// Pages are read up to the first that is not a page of this segment (wrong
// magic or page address: a zero-filled or recycled tail, as in a .partial
// file or a streamed partial); what follows is not WAL recovery reads. The
// first page's long header is assumed to be checked by the caller
// (ParseLongPageHeader, page address against the name).
func CheckPages(data []byte, c PageCheck) error {
	first, err := ParseLongPageHeader(data)
	if err != nil {
		return err
	}
	blk := int(first.BlockSize)
	segStart := SegmentStart(c.SegNo, c.SegSize)
	segEnd := segStart + LSN(c.SegSize)
	var (
		prev     uint32
		hist     []HistoryEntry
		known    bool
		histRead bool
	)
	for off := 0; off+PageHeaderFieldsSize <= len(data); off += blk {
		ph, _ := ParsePageHeader(data[off:])
		addr := segStart + LSN(off)
		if ph.Magic != first.Magic || ph.PageAddr != addr {
			break
		}
		tli := ph.Timeline
		switch {
		case tli == 0:
			return fmt.Errorf("%w: the page at %s carries timeline 0", ErrPageTimeline, addr)
		case tli > c.Timeline:
			return fmt.Errorf("%w: the page at %s is of timeline %d, later than the name's timeline %d", ErrPageTimeline, addr, tli, c.Timeline)
		case tli < prev:
			return fmt.Errorf("%w: the page at %s is of timeline %d, after a page of timeline %d (out of sequence)", ErrPageTimeline, addr, tli, prev)
		}
		prev = tli
		if tli == c.Timeline {
			continue
		}
		if !histRead {
			histRead = true
			if c.History != nil {
				if hist, known, err = c.History(); err != nil {
					return err
				}
			}
		}
		if !known {
			continue
		}
		if err := ancestorPage(hist, c.Timeline, tli, addr, segEnd); err != nil {
			return err
		}
	}
	return nil
}

// ancestorPage judges a page at addr of timeline tli in a segment named
// with the later timeline name, ending at segEnd, by name's history.
func ancestorPage(hist []HistoryEntry, name, tli uint32, addr, segEnd LSN) error {
	if len(hist) == 0 {
		return fmt.Errorf("%w: the page at %s is of timeline %d, but the history of timeline %d names no ancestor", ErrPageTimeline, addr, tli, name)
	}
	if start := hist[len(hist)-1].SwitchLSN; start >= segEnd {
		return fmt.Errorf("%w: the page at %s is of timeline %d, and timeline %d began at %s, after this segment: a segment of timeline %d stored under timeline %d's name (PostgreSQL copies only the segment holding the switch point)",
			ErrPageTimeline, addr, tli, name, start, tli, name)
	}
	for _, e := range hist {
		if e.Timeline != tli {
			continue
		}
		if addr >= e.SwitchLSN {
			return fmt.Errorf("%w: the page at %s is of timeline %d, which ended at %s according to the history of timeline %d", ErrPageTimeline, addr, tli, e.SwitchLSN, name)
		}
		return nil
	}
	return fmt.Errorf("%w: the page at %s is of timeline %d, which is not an ancestor of timeline %d according to its history", ErrPageTimeline, addr, tli, name)
}
