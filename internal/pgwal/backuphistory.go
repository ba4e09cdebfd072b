package pgwal

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxBackupHistorySize bounds the backup history files ParseBackupHistory
// reads. PostgreSQL writes a few hundred bytes: a dozen short lines and a
// label of at most 1023 bytes.
const MaxBackupHistorySize = 64 << 10

// BackupHistory is what a backup history file says about the base backup it
// marks: the "<segment>.<offset>.backup" file PostgreSQL writes into pg_wal
// when a backup ends on a primary, and hands to archive_command like a
// segment. Its times are the server's clock, which is what
// recovery_target_time is compared with; a backup taken from a standby gets
// no such file.
type BackupHistory struct {
	StartLSN, StopLSN LSN
	// CheckpointLSN is the start checkpoint (0 when the file has none).
	CheckpointLSN LSN
	// StartTimeline and StopTimeline are 0 when absent (written since
	// PostgreSQL 11).
	StartTimeline, StopTimeline uint32
	// StartTime and StopTime are the raw values, such as
	// "2026-11-23 22:57:00 CET": the server's wall clock in its
	// log_timezone, truncated to whole seconds (ParseServerTime reads
	// them). START TIME is taken when the start checkpoint has finished,
	// STOP TIME after the backup's end record is written and its segment
	// switched.
	StartTime, StopTime string
	Label               string
}

// ParseBackupHistory reads a backup history file, whose lines PostgreSQL
// writes as "KEY: value":
//
//	START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
//	STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)
//	CHECKPOINT LOCATION: 0/2000060
//	BACKUP METHOD: streamed
//	BACKUP FROM: primary
//	START TIME: 2026-11-23 22:57:00 UTC
//	LABEL: walvault 20261123T225700Z
//	START TIMELINE: 1
//	STOP TIME: 2026-11-23 22:57:41 UTC
//	STOP TIMELINE: 1
//
// START WAL LOCATION, STOP WAL LOCATION, START TIME and STOP TIME are
// required, the stop must not precede the start, and no key walvault reads
// may appear twice (a second STOP TIME could only be forged, for instance
// through a label). Keys walvault does not read are skipped, so that lines
// added by later PostgreSQL versions are no error.
func ParseBackupHistory(data []byte) (BackupHistory, error) {
	var h BackupHistory
	if len(data) > MaxBackupHistorySize {
		return h, fmt.Errorf("backup history file of %d bytes: PostgreSQL writes well under %d", len(data), MaxBackupHistorySize)
	}
	seen := make(map[string]bool)
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		key, val, ok := strings.Cut(string(line), ": ")
		if !ok {
			continue
		}
		switch key {
		case "START WAL LOCATION", "STOP WAL LOCATION", "CHECKPOINT LOCATION", "START TIME", "STOP TIME",
			"START TIMELINE", "STOP TIMELINE", "LABEL":
		default:
			continue
		}
		if seen[key] {
			return h, fmt.Errorf("backup history file line %d: %s appears twice", lineNo, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "START WAL LOCATION":
			h.StartLSN, err = historyLSN(val)
		case "STOP WAL LOCATION":
			h.StopLSN, err = historyLSN(val)
		case "CHECKPOINT LOCATION":
			h.CheckpointLSN, err = ParseLSN(val)
		case "START TIME":
			h.StartTime, err = historyTime(val)
		case "STOP TIME":
			h.StopTime, err = historyTime(val)
		case "START TIMELINE":
			h.StartTimeline, err = historyTimeline(val)
		case "STOP TIMELINE":
			h.StopTimeline, err = historyTimeline(val)
		case "LABEL":
			h.Label = val
		}
		if err != nil {
			return h, fmt.Errorf("backup history file line %d: %s: %w", lineNo, key, err)
		}
	}
	for _, k := range []string{"START WAL LOCATION", "STOP WAL LOCATION", "START TIME", "STOP TIME"} {
		if !seen[k] {
			return h, fmt.Errorf("backup history file has no %s", k)
		}
	}
	if h.StopLSN < h.StartLSN {
		return h, fmt.Errorf("backup history file: STOP WAL LOCATION %s is before START WAL LOCATION %s", h.StopLSN, h.StartLSN)
	}
	return h, nil
}

// historyLSN reads "0/2000028 (file 000000010000000000000002)"; the file
// name is PostgreSQL's comment, not checked.
func historyLSN(val string) (LSN, error) {
	lsn, _, _ := strings.Cut(val, " ")
	return ParseLSN(lsn)
}

func historyTimeline(val string) (uint32, error) {
	v, err := strconv.ParseUint(val, 10, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("invalid timeline %q", truncate(val, 20))
	}
	return uint32(v), nil
}

// historyTime checks the shape of a time value; ParseServerTime gives its
// meaning, which needs the server's zone.
func historyTime(val string) (string, error) {
	if len(val) < len(serverTimeLayout)+2 || len(val) > len(serverTimeLayout)+1+maxZoneLen {
		return "", fmt.Errorf("invalid time %q", truncate(val, 60))
	}
	if _, err := parseWall(val[:len(serverTimeLayout)]); err != nil {
		return "", fmt.Errorf("invalid time %q", truncate(val, 60))
	}
	return val, nil
}

// parseWall parses a wall clock written as PostgreSQL writes it,
// "2006-01-02 15:04:05" with every digit, and nothing else (time.Parse
// alone also takes " 4:04:05").
func parseWall(s string) (time.Time, error) {
	t, err := time.Parse(serverTimeLayout, s)
	if err == nil && t.Format(serverTimeLayout) != s {
		err = fmt.Errorf("%q is not of the form %q", truncate(s, 40), serverTimeLayout)
	}
	return t, err
}

const (
	serverTimeLayout = "2006-01-02 15:04:05"
	// maxZoneLen bounds a zone abbreviation (PostgreSQL's own limit is
	// TZ_STRLEN_MAX, 255; real ones are 2 to 6 characters).
	maxZoneLen = 32
)

// ParseServerTime interprets a time PostgreSQL writes into backup_label and
// backup history files, such as "2026-11-23 22:57:00 CET": the server's wall
// clock in its log_timezone, in whole seconds, followed by the zone's
// abbreviation, which alone is ambiguous (CST, IST…). loc, the location
// log_timezone names, resolves it. Numeric abbreviations ("+03", "-0330") and
// UTC/GMT need no location. A time whose abbreviation loc does not use at
// that moment is an error rather than a guess.
func ParseServerTime(s string, loc *time.Location) (time.Time, error) {
	if len(s) < len(serverTimeLayout)+2 || s[len(serverTimeLayout)] != ' ' {
		return time.Time{}, fmt.Errorf("server time %q: want %q followed by a zone", truncate(s, 60), serverTimeLayout)
	}
	wall, err := parseWall(s[:len(serverTimeLayout)])
	if err != nil {
		return time.Time{}, fmt.Errorf("server time %q: %w", truncate(s, 60), err)
	}
	abbr := s[len(serverTimeLayout)+1:]
	if abbr[0] == '+' || abbr[0] == '-' {
		off, ok := parseNumericZone(abbr)
		if !ok {
			return time.Time{}, fmt.Errorf("server time %q: bad zone offset %q", truncate(s, 60), truncate(abbr, 20))
		}
		return wall.Add(-time.Duration(off) * time.Second).In(time.FixedZone(abbr, off)), nil
	}
	if loc != nil {
		// Around a DST change one wall time names two instants; the
		// abbreviation tells which. Try the instants an hour either side.
		t := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, loc)
		for _, c := range []time.Time{t, t.Add(-time.Hour), t.Add(time.Hour)} {
			c = c.In(loc)
			if name, _ := c.Zone(); name == abbr && c.Format(serverTimeLayout) == s[:len(serverTimeLayout)] {
				return c, nil
			}
		}
	}
	if abbr == "UTC" || abbr == "GMT" || abbr == "UCT" {
		return wall, nil
	}
	return time.Time{}, fmt.Errorf("server time %q: zone %q is not used by log_timezone %v at that time", truncate(s, 60), truncate(abbr, 20), loc)
}

// ServerTimeZone returns the abbreviation that ends a time ParseServerTime
// reads ("CET" of "2026-11-23 22:57:00 CET"), or "" when s has none.
func ServerTimeZone(s string) string {
	if len(s) < len(serverTimeLayout)+2 || s[len(serverTimeLayout)] != ' ' {
		return ""
	}
	return s[len(serverTimeLayout)+1:]
}

// ServerWallClock returns the wall clock of such a time as if it were UTC
// (no zone applied), for comparing it with a known instant.
func ServerWallClock(s string) (time.Time, error) {
	if len(s) < len(serverTimeLayout) {
		return time.Time{}, errors.New("server time too short")
	}
	return parseWall(s[:len(serverTimeLayout)])
}

// parseNumericZone parses "+03", "-0330" or "+03:30" into seconds east of
// UTC.
func parseNumericZone(z string) (int, bool) {
	sign := 1
	if z[0] == '-' {
		sign = -1
	}
	d := strings.ReplaceAll(z[1:], ":", "")
	if len(d) != 2 && len(d) != 4 {
		return 0, false
	}
	for _, c := range []byte(d) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	h, _ := strconv.Atoi(d[:2])
	m := 0
	if len(d) == 4 {
		m, _ = strconv.Atoi(d[2:])
	}
	if h > 15 || m > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60), true
}
