package expire

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// DefaultFilestoreMargin is how far before the window's start the filestore
// logs are read as if inside it: the log's times come from the host that
// runs filestore push, the backups' from the database server, and their
// clocks may differ.
const DefaultFilestoreMargin = time.Hour

// FilestoreInventory is what the filestore decision works on.
type FilestoreInventory struct {
	// Logs are each database's log records, in key order.
	Logs map[string][]repo.FilestoreRecord
	// Objects are the stored filestore objects by file name.
	Objects map[string]storage.ObjectInfo
}

// FilestoreCompaction replaces a database's records up to a time by one
// snapshot of the state they fold to.
type FilestoreCompaction struct {
	DB       string               `json:"db"`
	Snapshot repo.FilestoreRecord `json:"-"`
	Records  int                  `json:"records"`
	Through  time.Time            `json:"through"`
	keys     []string
}

// FilestorePlan is the filestore part of a Plan.
type FilestorePlan struct {
	// From is the first moment kept restorable minus the margin: files
	// present at it or any time after are kept.
	From time.Time `json:"from"`
	// Objects are the file names whose objects are removed.
	Objects []string `json:"removed_objects"`
	Bytes   int64    `json:"stored_bytes"`
	Kept    int      `json:"kept_objects"`
	// Compact lists the log records folded into one snapshot.
	Compact []FilestoreCompaction `json:"compacted_logs"`
	// keys are the listed keys of Objects.
	keys []string
}

// planFilestore decides which filestore objects no kept moment can
// reference. A file is needed when some database's log says it was
// present at from (the fold of the records up to from) or at any moment
// after (named by a later record). An object no log names is removed only
// once older than OrphanGrace (a pass stores objects before it logs them,
// under the shared lock expire excludes).
func planFilestore(inv *FilestoreInventory, from, now time.Time) *FilestorePlan {
	fp := &FilestorePlan{From: from.UTC()}
	needed := make(map[string]bool)
	named := make(map[string]bool)
	dbs := make([]string, 0, len(inv.Logs))
	for db := range inv.Logs {
		dbs = append(dbs, db)
	}
	sort.Strings(dbs)
	for _, db := range dbs {
		recs := inv.Logs[db]
		state := make(map[string]bool)
		var before []repo.FilestoreRecord
		for _, rec := range recs {
			for _, n := range rec.Added {
				named[n] = true
			}
			for _, n := range rec.Removed {
				named[n] = true
			}
			if !rec.Time.After(from) {
				rec.Apply(state)
				before = append(before, rec)
				continue
			}
			for _, n := range rec.Added {
				needed[n] = true
			}
		}
		for n := range state {
			needed[n] = true
		}
		if len(before) > 1 || (len(before) == 1 && before[0].Kind != repo.FilestoreSnapshot) {
			last := before[len(before)-1]
			snap := repo.FilestoreRecord{DB: db, Time: last.Time, Kind: repo.FilestoreSnapshot}
			for n := range state {
				snap.Added = append(snap.Added, n)
			}
			sort.Strings(snap.Added)
			c := FilestoreCompaction{DB: db, Snapshot: snap, Records: len(before), Through: last.Time.UTC()}
			for _, rec := range before {
				c.keys = append(c.keys, rec.Key)
			}
			fp.Compact = append(fp.Compact, c)
		}
	}
	names := make([]string, 0, len(inv.Objects))
	for n := range inv.Objects {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		oi := inv.Objects[n]
		switch {
		case needed[n]:
			fp.Kept++
		case !named[n] && oi.ModTime.After(now.Add(-OrphanGrace)):
			fp.Kept++ // a pass in progress may log it yet
		default:
			fp.Objects = append(fp.Objects, n)
			fp.keys = append(fp.keys, oi.Key)
			fp.Bytes += oi.Size
		}
	}
	return fp
}

// loadFilestore reads every database's log and lists the objects. When a
// log holds a record no trusted writer signed under its name, it returns
// no inventory (filestore expiry is skipped for the run: objects are
// shared by all databases) and that log in ignored.
func loadFilestore(ctx context.Context, r *repo.Repository) (inv *FilestoreInventory, ignored []Ignored, err error) {
	objs, err := r.FilestoreObjects(ctx)
	if err != nil {
		return nil, nil, err
	}
	dbs, err := r.FilestoreDBs(ctx)
	if err != nil {
		return nil, nil, err
	}
	inv = &FilestoreInventory{Logs: make(map[string][]repo.FilestoreRecord, len(dbs)), Objects: objs}
	for _, db := range dbs {
		recs, err := r.FilestoreLog(ctx, db)
		switch {
		case errors.Is(err, repo.ErrUntrusted):
			ignored = append(ignored, Ignored{Key: repo.FilestoreLogPrefix(db),
				Reason: "no filestore object was considered for removal: " + err.Error()})
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("filestore log of %s: %w", db, err)
		}
		inv.Logs[db] = recs
	}
	if len(ignored) > 0 {
		return nil, ignored, nil
	}
	return inv, nil, nil
}

// executeFilestore compacts the logs (snapshot first, then the records it
// replaces) and removes the objects.
func executeFilestore(ctx context.Context, r *repo.Repository, fp *FilestorePlan, valid func() error, del func(string) (bool, error)) error {
	for _, c := range fp.Compact {
		if err := valid(); err != nil {
			return err
		}
		if _, err := r.PutFilestoreRecord(ctx, c.Snapshot); err != nil {
			return fmt.Errorf("expire: compact the filestore log of %s: %w", c.DB, err)
		}
		if err := deleteAll(ctx, c.keys, del); err != nil {
			return err
		}
	}
	return deleteAll(ctx, fp.keys, del)
}
