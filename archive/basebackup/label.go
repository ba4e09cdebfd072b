package basebackup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/walvault/walvault/repo/pgwal"
)

// maxLabelPrefix bounds how much of base.tar is kept to find backup_label,
// which PostgreSQL sends as the first member (a few hundred bytes).
const maxLabelPrefix = 1 << 20

// errLabelIncomplete means more of the tar stream is needed.
var errLabelIncomplete = errors.New("backup_label incomplete")

// firstTarMember returns the name and content of the first member of a tar
// stream of which prefix is the beginning. It returns errLabelIncomplete
// while prefix is too short to hold the whole member.
func firstTarMember(prefix []byte) (name string, content []byte, err error) {
	tr := tar.NewReader(bytes.NewReader(prefix))
	h, err := tr.Next()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return "", nil, errLabelIncomplete
		}
		return "", nil, fmt.Errorf("base.tar: first header: %w", err)
	}
	if h.Size < 0 || h.Size > maxLabelPrefix {
		return h.Name, nil, fmt.Errorf("base.tar: first member %q has size %d", h.Name, h.Size)
	}
	content = make([]byte, h.Size)
	if _, err := io.ReadFull(tr, content); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return "", nil, errLabelIncomplete
		}
		return h.Name, nil, fmt.Errorf("base.tar: %s: %w", h.Name, err)
	}
	return h.Name, content, nil
}

// backupLabel holds the fields of a backup_label file that walvault uses.
type backupLabel struct {
	StartLSN      pgwal.LSN
	StartTimeline uint32
	// StartTime is the raw "START TIME" value, e.g. "2026-11-23 22:57:00 UTC"
	// (the server's log_timezone).
	StartTime string
	Label     string
}

// parseBackupLabel reads the fields of a backup_label file. START WAL
// LOCATION and START TIME are required; START TIMELINE (written since
// PostgreSQL 11) is optional and 0 when absent.
func parseBackupLabel(text []byte) (backupLabel, error) {
	var l backupLabel
	var haveLSN, haveTime bool
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), maxLabelPrefix)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch key {
		case "START WAL LOCATION":
			lsn, _, _ := strings.Cut(val, " ")
			v, err := pgwal.ParseLSN(lsn)
			if err != nil {
				return l, fmt.Errorf("backup_label: START WAL LOCATION: %w", err)
			}
			l.StartLSN, haveLSN = v, true
		case "START TIME":
			l.StartTime, haveTime = val, true
		case "START TIMELINE":
			v, err := strconv.ParseUint(val, 10, 32)
			if err != nil || v == 0 {
				return l, fmt.Errorf("backup_label: bad START TIMELINE %q", val)
			}
			l.StartTimeline = uint32(v)
		case "LABEL":
			l.Label = val
		}
	}
	if err := sc.Err(); err != nil {
		return l, fmt.Errorf("backup_label: %w", err)
	}
	if !haveLSN || !haveTime {
		return l, errors.New("backup_label: START WAL LOCATION or START TIME missing")
	}
	return l, nil
}

// parseLabelTime interprets a backup_label START TIME value such as
// "2026-11-23 22:57:00 CET". PostgreSQL writes the server's wall clock in
// log_timezone followed by the zone's abbreviation, which alone is
// ambiguous (CST, IST…); loc, the location named by log_timezone, resolves
// it. Numeric abbreviations ("+03", "-0330") and UTC/GMT need no location.
// A time whose abbreviation loc does not use at that moment is an error
// rather than a guess.
func parseLabelTime(s string, loc *time.Location) (time.Time, error) {
	const wallLayout = "2006-01-02 15:04:05"
	if len(s) < len(wallLayout)+2 || s[len(wallLayout)] != ' ' {
		return time.Time{}, fmt.Errorf("START TIME %q: want %q followed by a zone", s, wallLayout)
	}
	wall, err := time.Parse(wallLayout, s[:len(wallLayout)])
	if err != nil {
		return time.Time{}, fmt.Errorf("START TIME %q: %w", s, err)
	}
	abbr := s[len(wallLayout)+1:]
	if abbr[0] == '+' || abbr[0] == '-' {
		off, ok := parseNumericZone(abbr)
		if !ok {
			return time.Time{}, fmt.Errorf("START TIME %q: bad zone offset %q", s, abbr)
		}
		return wall.Add(-time.Duration(off) * time.Second).In(time.FixedZone(abbr, off)), nil
	}
	if loc != nil {
		// Around a DST change one wall time names two instants; the
		// abbreviation tells which. Try the instants an hour either side.
		t := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, loc)
		for _, c := range []time.Time{t, t.Add(-time.Hour), t.Add(time.Hour)} {
			c = c.In(loc)
			if name, _ := c.Zone(); name == abbr && c.Format(wallLayout) == s[:len(wallLayout)] {
				return c, nil
			}
		}
	}
	if abbr == "UTC" || abbr == "GMT" || abbr == "UCT" {
		return wall, nil
	}
	return time.Time{}, fmt.Errorf("START TIME %q: zone %q is not used by log_timezone %v at that time", s, abbr, loc)
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
