package pgwal

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// HistoryEntry is one line of a timeline history file: timeline Timeline
// ended, and its child timeline began, at SwitchLSN.
type HistoryEntry struct {
	Timeline  uint32
	SwitchLSN LSN
	Reason    string
}

// ParseHistory parses the contents of a timeline history file
// ("TTTTTTTT.history"), whose lines PostgreSQL writes as
//
//	<parent timeline, decimal>\t<switch LSN>\t<reason>\n
//
// Blank lines and lines starting with '#' are skipped, as PostgreSQL does.
// Every other line must have a decimal timeline and an LSN separated by a
// tab, optionally followed by a tab and a free-text reason; timelines must
// be non-zero and strictly increasing and switch LSNs must not decrease.
// Errors name the line. An empty file yields no entries and no error.
func ParseHistory(data []byte) ([]HistoryEntry, error) {
	var entries []HistoryEntry
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		s := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(strings.TrimLeft(s, " \t"), "#") {
			continue
		}
		e, err := parseHistoryLine(s)
		if err != nil {
			return nil, fmt.Errorf("timeline history line %d: %w", lineNo, err)
		}
		if n := len(entries); n > 0 {
			prev := entries[n-1]
			if e.Timeline <= prev.Timeline {
				return nil, fmt.Errorf("timeline history line %d: timeline %d does not follow %d: timelines must increase", lineNo, e.Timeline, prev.Timeline)
			}
			if e.SwitchLSN < prev.SwitchLSN {
				return nil, fmt.Errorf("timeline history line %d: switch point %s is before the previous one, %s", lineNo, e.SwitchLSN, prev.SwitchLSN)
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func parseHistoryLine(s string) (HistoryEntry, error) {
	fields := strings.SplitN(s, "\t", 3)
	if len(fields) < 2 {
		return HistoryEntry{}, fmt.Errorf("%q: want <timeline>\\t<LSN>\\t<reason>", truncate(s, 80))
	}
	tli, err := strconv.ParseUint(fields[0], 10, 32)
	if err != nil || tli == 0 {
		return HistoryEntry{}, fmt.Errorf("%q: invalid timeline %q: want a decimal number from 1 to 4294967295", truncate(s, 80), truncate(fields[0], 20))
	}
	lsn, err := ParseLSN(fields[1])
	if err != nil {
		return HistoryEntry{}, err
	}
	e := HistoryEntry{Timeline: uint32(tli), SwitchLSN: lsn}
	if len(fields) == 3 {
		e.Reason = fields[2]
	}
	return e, nil
}
