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

	"github.com/walvault/walvault/internal/pgwal"
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
