package pitr

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
)

// choice is the backup a restore starts from and what it can reach.
type choice struct {
	backup   *repo.BackupManifest
	window   catalog.Window
	timeline uint32 // the timeline recovery follows
}

// chooseBackup picks the backup to restore for target t (or checks the one
// named by id) and checks that t lies in the window it can reach:
//
//   - time target: the newest backup that stopped before it;
//   - LSN target: the newest backup that stopped at or before it;
//   - XID or restore point name: the oldest backup, because neither says
//     where in the WAL it lies, and the oldest backup reaches every point a
//     newer one does (as long as the WAL between them is complete);
//   - immediate, or no target: the newest backup.
//
// A backup qualifies only when all WAL from its start to its stop is in the
// repository and it lies on the history of the timeline recovery will
// follow; a candidate that does not reach the target gives way to an older
// one that does (across a WAL gap, or on another timeline branch).
func chooseBackup(c *catalog.Catalog, id string, t Target) (*choice, error) {
	if id != "" {
		for _, b := range c.Backups {
			if b.ID == id {
				return checkChoice(c, b, t)
			}
		}
		if len(c.Backups) == 0 {
			return nil, fmt.Errorf("%w: backup %s is not in the repository, which holds no complete backup", ErrNoBackup, id)
		}
		return nil, fmt.Errorf("%w: backup %s is not in the repository (walvault info lists them)", ErrNoBackup, id)
	}
	if len(c.Backups) == 0 {
		return nil, fmt.Errorf("%w: the repository holds no complete backup; take one with walvault backup", ErrNoBackup)
	}

	cands := append([]*repo.BackupManifest(nil), c.Backups...)
	switch t.kind() {
	case "time":
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].StopTime.After(cands[j].StopTime) })
	case "lsn":
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].StopLSN > cands[j].StopLSN })
	case "xid", "name":
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].StartTime.Before(cands[j].StartTime) })
	default:
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].StartTime.After(cands[j].StartTime) })
	}
	// The first failure of the best candidate explains best what went
	// wrong, except that a window the target misses is more useful than an
	// unusable backup: it says which targets would work.
	var firstErr, windowErr error
	preceding := 0
	for _, b := range cands {
		if !precedes(b, t) {
			continue
		}
		preceding++
		ch, err := checkChoice(c, b, t)
		if err == nil {
			return ch, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if windowErr == nil && errors.Is(err, ErrTargetOutsideWindow) {
			windowErr = err
		}
	}
	if preceding == 0 {
		w, ok := c.Recoverable()
		if !ok {
			return nil, fmt.Errorf("%w: recovery target %s: no backup ended before it", ErrTargetOutsideWindow, t)
		}
		return nil, fmt.Errorf("%w: recovery target %s is before the end of the oldest usable backup; the recoverable window is %s; choose a later target", ErrTargetOutsideWindow, t, w)
	}
	if windowErr != nil {
		return nil, windowErr
	}
	return nil, firstErr
}

// precedes reports whether b ended before target t, so that recovery from b
// can stop at t.
func precedes(b *repo.BackupManifest, t Target) bool {
	switch t.kind() {
	case "time":
		return b.StopTime.Before(roundMicro(*t.Time))
	case "lsn":
		return b.StopLSN <= *t.LSN
	}
	return true
}

// checkChoice checks that b is usable and reaches t.
func checkChoice(c *catalog.Catalog, b *repo.BackupManifest, t Target) (*choice, error) {
	tli, err := recoveryTimeline(c, b, t.Timeline)
	if err != nil {
		return nil, err
	}
	w, ok := c.ReachTimeline(b, tli)
	if !ok {
		return nil, fmt.Errorf("%w: backup %s needs all WAL from %s to %s on timeline %d, but the archived WAL stops at %s; the backup cannot be restored",
			ErrNoBackup, b.ID, b.StartLSN, b.StopLSN, b.Timeline, w.ToLSN)
	}
	outside := func(why string) error {
		return fmt.Errorf("%w: recovery target %s %s; from backup %s the recoverable window is %s; %s",
			ErrTargetOutsideWindow, t, why, b.ID, w, "choose a target inside it, or restore without a target to replay all archived WAL")
	}
	switch t.kind() {
	case "time":
		tt := roundMicro(*t.Time)
		if !tt.After(b.StopTime) {
			return nil, outside("is not after the end of the backup")
		}
		if tt.After(w.To) {
			return nil, outside("is after the last archived WAL (newer WAL has not reached the repository: check that archiving works)")
		}
	case "lsn":
		if *t.LSN < b.StopLSN {
			return nil, outside("is before the end of the backup")
		}
		if *t.LSN > w.ToLSN {
			return nil, outside("is after the last archived WAL (newer WAL has not reached the repository: check that archiving works)")
		}
	}
	return &choice{backup: b, window: w, timeline: tli}, nil
}

// recoveryTimeline returns the timeline PostgreSQL will follow from b for
// the recovery_target_timeline setting spec, and refuses a setting that
// PostgreSQL would refuse at startup for this backup.
func recoveryTimeline(c *catalog.Catalog, b *repo.BackupManifest, spec string) (uint32, error) {
	var tli uint32
	switch spec {
	case "", "latest":
		tli = c.NewestTimeline(b.Timeline)
		if !c.OnHistory(b, tli) {
			return 0, fmt.Errorf("%w: backup %s (timeline %d, ending at %s) is not on the history of timeline %d, the newest in the repository, which recovery_target_timeline = 'latest' follows; restore with --target-timeline current to stay on timeline %d, or choose a backup taken before timeline %d forked off",
				ErrNoBackup, b.ID, b.Timeline, b.StopLSN, tli, b.Timeline, tli)
		}
	case "current":
		tli = b.Timeline
	default:
		v, err := strconv.ParseUint(spec, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("recovery target timeline %q: want latest, current or a number", spec)
		}
		tli = uint32(v)
		if !c.OnHistory(b, tli) {
			return 0, fmt.Errorf("%w: backup %s (timeline %d, ending at %s) is not on the history of timeline %d; choose a backup taken before that timeline forked off",
				ErrNoBackup, b.ID, b.Timeline, b.StopLSN, tli)
		}
	}
	return tli, nil
}

// describeWindow is used in log lines.
func describeWindow(w catalog.Window) []any {
	return []any{
		"from", w.From.UTC().Format(time.RFC3339), "from_lsn", w.FromLSN.String(),
		"to", w.To.UTC().Format(time.RFC3339), "to_lsn", w.ToLSN.String(), "timeline", w.Timeline,
	}
}
