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
	// edge: the time target is before the backup's StopTime, within the
	// second its end is known to; PostgreSQL decides (earliestTimeTarget).
	edge bool
}

// chooseBackup picks the backup to restore for target t (or checks the one
// named by id) and checks that t lies in the window it can reach:
//
//   - time target: the newest backup that stopped by then; only when none
//     can be used, one whose end may be just after the target, for
//     PostgreSQL to decide (see earliestTimeTarget);
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
	// unusable backup (it says which targets would work), and WAL the
	// signed heads say was archived and is gone matters more than either.
	var firstErr, windowErr, incompleteErr error
	preceding := 0
	// Backups that surely ended by the target first, then (time targets)
	// those whose end may be just after it.
	for _, pass := range []func(*repo.BackupManifest, Target) bool{precedes, atEdge} {
		for _, b := range cands {
			if !pass(b, t) {
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
			if incompleteErr == nil && errors.Is(err, repo.ErrIncompleteWAL) {
				incompleteErr = err
			}
		}
	}
	if preceding == 0 {
		w, ok := c.Recoverable()
		if !ok {
			return nil, fmt.Errorf("%w: recovery target %s: no backup ended before it", ErrTargetOutsideWindow, t)
		}
		return nil, fmt.Errorf("%w: recovery target %s is before the end of the oldest usable backup; the recoverable window is %s; choose a later target", ErrTargetOutsideWindow, t, w)
	}
	// Deleted WAL first: it is what the operator must know.
	if incompleteErr != nil {
		return nil, incompleteErr
	}
	if windowErr != nil {
		return nil, windowErr
	}
	return nil, firstErr
}

// precedes reports whether b ended by target t, so that recovery from b
// can stop at t.
func precedes(b *repo.BackupManifest, t Target) bool {
	switch t.kind() {
	case "time":
		return !b.StopTime.After(roundMicro(*t.Time))
	case "lsn":
		return b.StopLSN <= *t.LSN
	}
	return true
}

// atEdge reports whether time target t falls in the second before b's
// StopTime in which PostgreSQL, not restore, decides (earliestTimeTarget).
func atEdge(b *repo.BackupManifest, t Target) bool {
	if t.kind() != "time" {
		return false
	}
	tt := roundMicro(*t.Time)
	return tt.Before(b.StopTime) && !tt.Before(earliestTimeTarget(b))
}

// earliestTimeTarget is the earliest recovery_target_time restore lets
// PostgreSQL try from backup b; restore refuses only targets certainly
// before b's consistent point (the end of the backup).
//
// Targets from b.StopTime on are reachable: StopTime is never earlier than
// the end, so every commit recovery replays to get there carries an earlier
// timestamp. When the server's backup history file dated the end, its STOP
// TIME S and START TIME B are known, in whole seconds, and the true end lies
// in [S, S+1s) = [S, StopTime). A target T in [max(S, B+1s), StopTime) may
// then be after the end or just before it, and only PostgreSQL can tell.
// It does so safely:
//
//   - Commits before the start checkpoint's redo point are in the copied
//     data files and are not replayed, so recovery could not stop before
//     them. They all happened before the server stamped START TIME, so
//     their timestamps are earlier than B+1s <= T: none is after T.
//   - Commits from the redo point to the end of the backup are replayed and
//     compared with T. If one is later than T, recovery stops before the
//     consistent point and PostgreSQL refuses to start with "requested
//     recovery stop point is before consistent recovery point" (the user
//     then picks a later target), rather than open a wrong state.
//
// Targets before S are certainly before the end and refused here. Without a
// history file's times (an estimated StopTime) the earliest target is
// StopTime itself.
func earliestTimeTarget(b *repo.BackupManifest) time.Time {
	s := b.ServerStopTime
	// The manifest is input from storage: use S only when it is consistent
	// with the other times (StopTime = S+1s, B <= S).
	if s == nil || b.StopTimeSource != repo.StopTimeFromHistory || !b.LabelStart() ||
		s.Before(b.StartTime) || !s.Before(b.StopTime) || b.StopTime.After(s.Add(time.Second)) {
		return b.StopTime
	}
	e := b.StartTime.Add(time.Second)
	if s.After(e) {
		e = *s
	}
	return e
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
		if tt.Before(earliestTimeTarget(b)) {
			return nil, outside("is before the end of the backup")
		}
		if tt.After(w.To) {
			return nil, pastEnd(c, tli, b, t, w, outside("is after the last archived WAL (newer WAL has not reached the repository: check that archiving works)"))
		}
		return &choice{backup: b, window: w, timeline: tli, edge: tt.Before(b.StopTime)}, nil
	case "lsn":
		if *t.LSN < b.StopLSN {
			return nil, outside("is before the end of the backup")
		}
		if *t.LSN > w.ToLSN {
			return nil, pastEnd(c, tli, b, t, w, outside("is after the last archived WAL (newer WAL has not reached the repository: check that archiving works)"))
		}
	}
	return &choice{backup: b, window: w, timeline: tli}, nil
}

// pastEnd is the refusal of target t, after the end w of the WAL that
// backup b reaches along timeline tli. When the signed heads say WAL past
// that end was archived (catalog.MissingWAL), the window ends where objects
// were deleted, not where archiving has got to: the refusal names them
// (repo.ErrIncompleteWAL, issue 14) instead of blaming archiving.
func pastEnd(c *catalog.Catalog, tli uint32, b *repo.BackupManifest, t Target, w catalog.Window, outside error) error {
	missing := c.MissingWAL(tli, b.StartLSN)
	if len(missing) == 0 {
		return outside
	}
	return fmt.Errorf("recovery target %s is after the end of the WAL left from backup %s (%s): %w",
		t, b.ID, w, catalog.IncompleteError(missing))
}

// recoveryTimeline returns the timeline PostgreSQL will follow from b for
// the recovery_target_timeline setting spec, and refuses a setting that
// PostgreSQL would refuse at startup for this backup.
func recoveryTimeline(c *catalog.Catalog, b *repo.BackupManifest, spec string) (uint32, error) {
	var tli uint32
	switch spec {
	case "", "latest":
		// PostgreSQL finds the latest timeline by probing history files:
		// one deleted, and it would stay on a timeline that was left,
		// past where it was left (issue 14).
		if missing := c.MissingHistories(b.Timeline); len(missing) > 0 {
			return 0, fmt.Errorf("recovery_target_timeline = 'latest' cannot be followed: %w; to recover along one timeline on purpose, restore with --target-timeline N", catalog.IncompleteError(missing))
		}
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
