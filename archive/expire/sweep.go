package expire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/walvault/walvault/repo"
)

// Sweep of block backups' packs (repo/blocks.go). Removing a block backup
// removes its file list; its packs stay as long as any other backup's file
// list references them, since later backups point at the blocks earlier
// ones stored. A pack is swept only when no file list but those of the
// backups this plan removes references it, and no running backup may
// need it:
//
//   - the packs are listed first, then the pins (repo.Pin), then the file
//     lists are read. A pack listed was written after its backup's pin;
//     by the time pins are listed that backup is either still pinned, or
//     done, and then its file list is read in the third step.
//   - packs of a backup at least as new as the oldest live pin are kept,
//     and so is every pack the base file list of a live pin references
//     (read before this plan removes anything);
//   - packs of a backup with neither a manifest nor a pin are kept for
//     OrphanGrace after its start (a backup from before pins, or one whose
//     pin is not listed yet).
//
// Any file list or pin that cannot be read stops the sweep (nothing is
// swept): guessing could delete blocks a backup needs.

// SweepPlan is what the sweep removes.
type SweepPlan struct {
	Packs []string `json:"removed_packs"`
	Bytes int64    `json:"stored_bytes"`
	// Kept counts the packs kept; Pinned names the live pins.
	Kept   int      `json:"kept_packs"`
	Pinned []string `json:"pinned_backups,omitempty"`
	// Skipped says why nothing was swept (a file list or pin could not be
	// read), when so.
	Skipped string `json:"skipped,omitempty"`
}

// PrepareSweep plans the sweep for a plan that removes the backups
// removed (ids). It reads and lists; it removes nothing.
func PrepareSweep(ctx context.Context, r *repo.Repository, removed []string, now time.Time) (*SweepPlan, error) {
	sp := &SweepPlan{}
	packs, _, err := r.Packs(ctx)
	if err != nil {
		return nil, err
	}
	if len(packs) == 0 {
		return sp, nil
	}
	pins, err := r.Pins(ctx)
	if err != nil {
		sp.Skipped = err.Error()
		return sp, nil
	}
	oldestPin := ""
	var bases []string
	for _, p := range pins {
		if now.Sub(p.Created) > repo.PinLease {
			continue // stale: its backup died
		}
		sp.Pinned = append(sp.Pinned, p.Backup)
		if oldestPin == "" || p.Backup < oldestPin {
			oldestPin = p.Backup
		}
		if p.Base != "" {
			bases = append(bases, p.Base)
		}
	}
	ids, err := r.FileListIDs(ctx)
	if err != nil {
		return nil, err
	}
	referenced := map[string]bool{}
	for _, id := range ids {
		if slices.Contains(removed, id) && !slices.Contains(bases, id) {
			continue
		}
		packs, err := r.FileListPacks(ctx, id)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, repo.ErrNoIdentity) {
				return nil, err
			}
			sp.Skipped = fmt.Sprintf("the file list of backup %s cannot be read (%v): no pack is swept", id, err)
			return sp, nil
		}
		for _, p := range packs {
			referenced[p] = true
		}
	}
	complete := map[string]bool{}
	all, err := r.BackupIDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range all {
		complete[id] = true
	}
	for _, p := range packs {
		keep := referenced[p.Key] || (oldestPin != "" && p.Backup >= oldestPin)
		if !keep && !complete[p.Backup] && !slices.Contains(removed, p.Backup) {
			// A running or interrupted backup: kept for a while.
			start, err := repo.BackupStart(p.Backup)
			keep = err != nil || now.Sub(start) < OrphanGrace
		}
		if keep {
			sp.Kept++
			continue
		}
		sp.Packs = append(sp.Packs, p.Key)
		sp.Bytes += p.Size
	}
	return sp, nil
}

// ExecuteSweep removes the packs sp lists, with del (Execute's removal:
// it checks the lock and reports retained objects).
func executeSweep(ctx context.Context, sp *SweepPlan, del func(string) (bool, error)) error {
	if sp == nil {
		return nil
	}
	return deleteAll(ctx, sp.Packs, del)
}
