package pgwal

import (
	"fmt"
	"math/bits"
)

// Kind says which of the files PostgreSQL archives a name refers to.
type Kind int

const (
	// KindSegment is a complete WAL segment, "000000010000000000000002".
	KindSegment Kind = iota + 1
	// KindHistory is a timeline history file, "00000002.history".
	KindHistory
	// KindPartial is the incomplete last segment of an old timeline, written
	// at promotion (or by pg_receivewal): "000000010000000000000002.partial".
	KindPartial
	// KindBackupHistory marks a base backup's start and stop:
	// "000000010000000000000002.00000028.backup".
	KindBackupHistory
)

// String returns a short lower-case name for the kind.
func (k Kind) String() string {
	switch k {
	case KindSegment:
		return "segment"
	case KindHistory:
		return "history"
	case KindPartial:
		return "partial"
	case KindBackupHistory:
		return "backup-history"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// FileName is a parsed WAL archive file name.
type FileName struct {
	Kind     Kind
	Timeline uint32
	// Log and Seg are the second and third 8-hex-digit parts of a segment
	// name (also of partial and backup history names); zero for history
	// files. Their meaning depends on the segment size: see SegNo.
	Log, Seg uint32
	// Offset is the backup start offset within the segment, for
	// KindBackupHistory only.
	Offset uint32
	// Name is the canonical file name; it equals the parsed input.
	Name string
}

// String returns the file name.
func (f FileName) String() string { return f.Name }

const (
	segmentNameLen = 24
	partialSuffix  = ".partial"
	backupSuffix   = ".backup"
	historySuffix  = ".history"
)

// ParseFileName parses the name of a file PostgreSQL hands to archive_command
// or asks restore_command for. It accepts exactly:
//
//	TTTTTTTTLLLLLLLLSSSSSSSS                  segment
//	TTTTTTTTLLLLLLLLSSSSSSSS.partial          partial segment
//	TTTTTTTTLLLLLLLLSSSSSSSS.OOOOOOOO.backup  backup history file
//	TTTTTTTT.history                          timeline history file
//
// with upper-case hex digits (as PostgreSQL writes them) and a non-zero
// timeline. Anything else, including paths, lower-case hex and trailing
// characters, is an error naming the input.
func ParseFileName(name string) (FileName, error) {
	f, ok := parseFileName(name)
	if !ok {
		return FileName{}, fmt.Errorf("invalid WAL file name %q: want a 24-hex-digit segment name (optionally with .partial or .OOOOOOOO.backup) or TTTTTTTT.history, upper-case hex, timeline not 0", truncate(name, 80))
	}
	return f, nil
}

func parseFileName(name string) (FileName, bool) {
	f := FileName{Name: name}
	switch {
	case len(name) == 8+len(historySuffix) && name[8:] == historySuffix:
		f.Kind = KindHistory
	case len(name) == segmentNameLen:
		f.Kind = KindSegment
	case len(name) == segmentNameLen+len(partialSuffix) && name[segmentNameLen:] == partialSuffix:
		f.Kind = KindPartial
	case len(name) == segmentNameLen+1+8+len(backupSuffix) && name[segmentNameLen] == '.' && name[segmentNameLen+9:] == backupSuffix:
		f.Kind = KindBackupHistory
		off, ok := parseUpperHex32(name[segmentNameLen+1 : segmentNameLen+9])
		if !ok {
			return FileName{}, false
		}
		f.Offset = off
	default:
		return FileName{}, false
	}
	var ok bool
	if f.Timeline, ok = parseUpperHex32(name[0:8]); !ok || f.Timeline == 0 {
		return FileName{}, false
	}
	if f.Kind == KindHistory {
		return f, true
	}
	if f.Log, ok = parseUpperHex32(name[8:16]); !ok {
		return FileName{}, false
	}
	if f.Seg, ok = parseUpperHex32(name[16:24]); !ok {
		return FileName{}, false
	}
	return f, true
}

// SegmentsPerXLogID returns how many segments of segSize bytes make up one
// "log id" (the middle part of a segment name): 0x100000000 / segSize.
func SegmentsPerXLogID(segSize int64) uint64 {
	mustValidSegmentSize(segSize)
	return 0x100000000 / uint64(segSize)
}

// SegNo returns the segment number (XLogSegNo) of a segment, partial or
// backup history name for the given segment size. For a history file it
// returns 0.
func (f FileName) SegNo(segSize int64) uint64 {
	return uint64(f.Log)*SegmentsPerXLogID(segSize) + uint64(f.Seg)
}

// SegmentName returns the file name of segment segno on timeline tli, as
// PostgreSQL's XLogFileName does.
func SegmentName(tli uint32, segno uint64, segSize int64) string {
	per := SegmentsPerXLogID(segSize)
	return fmt.Sprintf("%08X%08X%08X", tli, uint32(segno/per), uint32(segno%per))
}

// BackupHistoryFileName returns the name of the backup history file for a
// base backup that started at start on timeline tli, as PostgreSQL's
// BackupHistoryFileName does.
func BackupHistoryFileName(tli uint32, start LSN, segSize int64) string {
	segno := SegNoOf(start, segSize)
	return fmt.Sprintf("%s.%08X.backup", SegmentName(tli, segno, segSize), uint32(uint64(start)&uint64(segSize-1)))
}

// SegNoOf returns the number of the segment that contains lsn.
func SegNoOf(lsn LSN, segSize int64) uint64 {
	mustValidSegmentSize(segSize)
	return uint64(lsn) / uint64(segSize)
}

// SegmentStart returns the LSN of the first byte of segment segno.
func SegmentStart(segno uint64, segSize int64) LSN {
	mustValidSegmentSize(segSize)
	return LSN(segno * uint64(segSize))
}

// ValidSegmentSize reports whether n is a WAL segment size initdb accepts:
// a power of two from 1 MiB to 1 GiB.
func ValidSegmentSize(n int64) bool {
	return n >= 1<<20 && n <= 1<<30 && bits.OnesCount64(uint64(n)) == 1
}

// HistoryFileName returns the name of the history file of timeline tli,
// "%08X.history".
func HistoryFileName(tli uint32) string {
	return fmt.Sprintf("%08X.history", tli)
}

func mustValidSegmentSize(segSize int64) {
	if !ValidSegmentSize(segSize) {
		panic(fmt.Sprintf("pgwal: invalid WAL segment size %d (check with ValidSegmentSize first)", segSize))
	}
}

// truncate shortens s for use in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
