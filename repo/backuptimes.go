package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
)

// Where a backup's StopTime comes from (BackupManifest.StopTimeSource).
const (
	// StopTimeFromHistory: STOP TIME of the backup history file the server
	// archived, plus one second (it is truncated to whole seconds).
	StopTimeFromHistory = "backup-history"
	// StopTimeEstimated: the server's START TIME plus one second plus the
	// time from the server's answer to the start (after its checkpoint) to
	// its answer to the stop, measured on walvault's clock. Used when the
	// backup could not read the history file: it had no identity to
	// decrypt it, or the server wrote none (a backup from a standby, a
	// repository fed by walvault stream only).
	StopTimeEstimated = "estimate"
)

// BackupHistoryKey is the key of the backup history file PostgreSQL
// archives for a backup that started at start on timeline tli.
func BackupHistoryKey(tli uint32, start pgwal.LSN, segSize int64) string {
	return fmt.Sprintf("%s%08X/%s", WALPrefix, tli, pgwal.BackupHistoryFileName(tli, start, segSize))
}

// HasBackupHistory reports whether the repository holds the backup history
// file the server archives when backup m ends. Errors are the store's.
func (r *Repository) HasBackupHistory(ctx context.Context, m *BackupManifest) (bool, error) {
	return r.exists(ctx, BackupHistoryKey(m.Timeline, m.StartLSN, m.WALSegmentSize))
}

// BackupHistory reads and parses the backup history file of backup m (see
// UseBackupHistory).
func (r *Repository) BackupHistory(ctx context.Context, m *BackupManifest) (pgwal.BackupHistory, error) {
	data, _, err := r.Get(ctx, BackupHistoryKey(m.Timeline, m.StartLSN, m.WALSegmentSize))
	if err != nil {
		return pgwal.BackupHistory{}, err
	}
	return pgwal.ParseBackupHistory(data)
}

// UseBackupHistory takes m's times from h, the backup history file the
// server wrote when m ended: StopTime becomes STOP TIME plus one second (the
// true end lies in [STOP TIME, STOP TIME+1s)), ServerStopTime STOP TIME,
// StartTime START TIME, and StopTimeSource StopTimeFromHistory.
//
// h is input from storage, so it is checked against m first: the same start
// and stop LSN and timeline, a stop not before the start, and, when m's
// StartTime came from backup_label, the same START TIME. Reading the times
// needs the server's zone: m.LogTimezone when recorded, else the offset that
// maps START TIME onto m.StartTime (or the local zone, accepted only if it
// does the same). On any mismatch UseBackupHistory returns an error and
// leaves m unchanged.
func (m *BackupManifest) UseBackupHistory(h pgwal.BackupHistory) error {
	if h.StartLSN != m.StartLSN || h.StopLSN != m.StopLSN {
		return fmt.Errorf("backup history file runs from %s to %s, backup %s from %s to %s", h.StartLSN, h.StopLSN, m.ID, m.StartLSN, m.StopLSN)
	}
	if (h.StartTimeline != 0 && h.StartTimeline != m.Timeline) || (h.StopTimeline != 0 && h.StopTimeline != m.Timeline) {
		return fmt.Errorf("backup history file is of timelines %d to %d, backup %s of timeline %d", h.StartTimeline, h.StopTimeline, m.ID, m.Timeline)
	}
	start, stop, err := m.historyTimes(h)
	if err != nil {
		return err
	}
	if stop.Before(start) {
		return fmt.Errorf("backup history file: STOP TIME %q is before START TIME %q", h.StopTime, h.StartTime)
	}
	s := stop.UTC()
	m.StartTime = start.UTC()
	m.ServerStopTime = &s
	m.StopTime = s.Add(time.Second)
	m.StopTimeSource = StopTimeFromHistory
	return nil
}

// LabelStart reports whether m.StartTime is the server's START TIME (whole
// seconds) rather than walvault's clock, which backup falls back to when it
// cannot read backup_label's time.
func (m *BackupManifest) LabelStart() bool {
	return !m.StartTime.IsZero() && m.StartTime.Nanosecond() == 0
}

// historyTimes reads h's START TIME and STOP TIME in the server's zone.
func (m *BackupManifest) historyTimes(h pgwal.BackupHistory) (start, stop time.Time, err error) {
	var locs []*time.Location
	if m.LogTimezone != "" {
		if l, err := time.LoadLocation(m.LogTimezone); err == nil {
			locs = append(locs, l)
		}
	}
	check := m.LabelStart()
	if check {
		// START TIME is backup_label's, which m.StartTime holds: their
		// difference is the zone's offset at the start, and STOP TIME
		// has it too unless its abbreviation differs (a DST change
		// during the backup). Zones are whole quarter hours off UTC.
		if wall, err := pgwal.ServerWallClock(h.StartTime); err == nil {
			off := wall.Sub(m.StartTime)
			if off%(15*time.Minute) == 0 && off.Abs() <= 16*time.Hour {
				locs = append(locs, time.FixedZone(pgwal.ServerTimeZone(h.StartTime), int(off/time.Second)))
			}
		}
		locs = append(locs, time.Local)
	}
	locs = append(locs, nil) // numeric offsets, UTC
	var errs []error
	for _, loc := range locs {
		start, err1 := pgwal.ParseServerTime(h.StartTime, loc)
		stop, err2 := pgwal.ParseServerTime(h.StopTime, loc)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, err)
			continue
		}
		if check && !start.Equal(m.StartTime) {
			errs = append(errs, fmt.Errorf("START TIME %q is %s, backup %s started at %s", h.StartTime,
				start.UTC().Format(time.RFC3339), m.ID, m.StartTime.UTC().Format(time.RFC3339)))
			continue
		}
		return start, stop, nil
	}
	return time.Time{}, time.Time{}, fmt.Errorf("backup history file: cannot read its times in the server's zone: %w", errs[0])
}
