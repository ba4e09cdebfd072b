package expire

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/internal/workpool"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/storage"
)

// ErrNoPolicy: neither a count nor a window was given.
var ErrNoPolicy = errors.New("no retention policy: give --retain-full N and/or --retain-days D")

// Policy says what to keep. A backup is kept when any rule keeps it.
type Policy struct {
	// RetainFull keeps the newest N backups (0: no count rule).
	RetainFull int
	// RetainWindow keeps every moment of the last RetainWindow restorable
	// (0: no window rule).
	RetainWindow time.Duration
	// FilestoreMargin widens the filestore's kept window backwards
	// (DefaultFilestoreMargin for the CLI; 0: none).
	FilestoreMargin time.Duration
}

func (p Policy) validate() error {
	if p.RetainFull < 0 || p.RetainWindow < 0 {
		return fmt.Errorf("retention must not be negative (retain-full %d, window %s)", p.RetainFull, p.RetainWindow)
	}
	if p.RetainFull == 0 && p.RetainWindow == 0 {
		return ErrNoPolicy
	}
	return nil
}

// OrphanGrace is how old the newest object of a backup without a manifest
// must be before expire removes it as the leftover of an interrupted
// backup. A running backup writes a chunk at least every few seconds and
// holds a shared lock besides.
const OrphanGrace = time.Hour

// KeptBackup is a backup the plan keeps, and why.
type KeptBackup struct {
	Backup  *repo.BackupManifest `json:"-"`
	ID      string               `json:"id"`
	Reasons []string             `json:"reasons"`
}

// RemovedBackup is a backup the plan removes.
type RemovedBackup struct {
	Backup *repo.BackupManifest `json:"-"`
	ID     string               `json:"id"`
	// Objects are every key under backups/<id>/: the manifest first.
	// They come from the repository's listing.
	Objects []string `json:"-"`
	Bytes   int64    `json:"stored_bytes"`
}

// WALRun is a run of WAL files to remove on one timeline, for reports.
type WALRun struct {
	Timeline uint32 `json:"timeline"`
	First    string `json:"first"`
	Last     string `json:"last"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"stored_bytes"`
}

// Plan is what expire removes and keeps. Build it with MakePlan; it does
// no I/O.
type Plan struct {
	Now    time.Time `json:"now"`
	Policy struct {
		RetainFull int     `json:"retain_full,omitempty"`
		RetainDays float64 `json:"retain_days,omitempty"`
	} `json:"policy"`
	Kept    []KeptBackup    `json:"kept_backups"`
	Removed []RemovedBackup `json:"removed_backups"`
	// WALFloor is the start of the oldest backup kept by the policy:
	// every WAL file from its segment on is kept (on every timeline).
	WALFloor     string   `json:"wal_floor,omitempty"`
	WAL          []WALRun `json:"removed_wal"`
	walKeys      []string
	Partials     []string `json:"removed_stream_partials"`
	partialBytes int64
	// Orphans are objects of interrupted backups (no manifest).
	Orphans     []string `json:"removed_orphans"`
	orphanBytes int64
	// Before and After are the recoverable windows now and once the plan
	// is carried out (nil: none).
	Before *Window `json:"window_before"`
	After  *Window `json:"window_after"`
	// Promise is the start of the window the policy promises (now minus
	// RetainWindow), when a window rule is set; Short says the repository
	// does not reach back that far (too new, or a gap).
	Promise *time.Time `json:"window_promised_from,omitempty"`
	Short   bool       `json:"window_short,omitempty"`
	// Bytes is the total stored size removed.
	Bytes int64 `json:"stored_bytes"`
	// Locked lists objects kept because S3 Object Lock retains them
	// (filled by Execute).
	Locked []LockedObject `json:"locked,omitempty"`
	// Filestore is what happens to Odoo filestore objects and logs (nil:
	// the repository holds none).
	Filestore *FilestorePlan `json:"filestore,omitempty"`
	// Ignored are objects no trusted writer signed, left in place and
	// out of the plan (see Load).
	Ignored []Ignored `json:"ignored,omitempty"`
	// WALRecords are the heads and alternate copies removed (heads.go).
	WALRecords WALRecordsPlan `json:"removed_wal_records"`
	// Sweep is what happens to block backups' packs (nil: not planned).
	Sweep *SweepPlan `json:"sweep,omitempty"`
	// Done is true once Execute removed everything it could.
	Done bool `json:"done"`
}

// LockedObject is an object whose retention has not ended.
type LockedObject struct {
	Key   string    `json:"key"`
	Until time.Time `json:"retained_until"`
}

// Window is a recoverable window for reports.
type Window struct {
	From     time.Time `json:"from"`
	FromLSN  string    `json:"from_lsn"`
	To       time.Time `json:"to"`
	ToLSN    string    `json:"to_lsn"`
	Timeline uint32    `json:"timeline"`
}

func window(c *catalog.Catalog) *Window {
	w, ok := c.Recoverable()
	if !ok {
		return nil
	}
	return &Window{From: w.From.UTC(), FromLSN: w.FromLSN.String(), To: w.To.UTC(), ToLSN: w.ToLSN.String(), Timeline: w.Timeline}
}

// Empty reports whether the plan removes nothing.
func (p *Plan) Empty() bool {
	return len(p.Removed) == 0 && len(p.walKeys) == 0 && len(p.Partials) == 0 && len(p.Orphans) == 0 && p.WALRecords.empty() &&
		(p.Filestore == nil || len(p.Filestore.Objects) == 0 && len(p.Filestore.Compact) == 0) &&
		(p.Sweep == nil || len(p.Sweep.Packs) == 0)
}

// Inventory is the state MakePlan works on: the catalog plus what only a
// listing tells.
type Inventory struct {
	Catalog *catalog.Catalog
	// Marks are the folded notes of each backup (keep marks).
	Marks map[string]repo.BackupMarks
	// BackupObjects are the objects of each backup id, complete or not
	// (an interrupted backup has no manifest).
	BackupObjects map[string][]repo.BackupObject
	// Partials are all streamed partials (not only the largest of each
	// segment, as in the catalog).
	Partials []repo.StreamPartial
	// Filestore is the Odoo filestore's logs and objects (nil: none, or
	// skipped: see Ignored).
	Filestore *FilestoreInventory
	// Ignored are objects left out because no trusted writer signed
	// them (see Load).
	Ignored []Ignored
	// WALRecords are the WAL heads and alternate copies (heads.go).
	WALRecords WALRecords
}

// MakePlan decides what to remove. It never removes: the newest backup; a
// backup marked keep; a backup the policy keeps; WAL from the start of the
// oldest backup the policy keeps onwards (any timeline); WAL from the start
// to the end of a kept older backup (so it can become consistent);
// timeline history files; the largest streamed partial of a segment that
// has no full segment yet.
func MakePlan(inv Inventory, pol Policy, now time.Time) (*Plan, error) {
	if err := pol.validate(); err != nil {
		return nil, err
	}
	cat := inv.Catalog
	p := &Plan{Now: now.UTC()}
	p.Policy.RetainFull = pol.RetainFull
	p.Policy.RetainDays = pol.RetainWindow.Hours() / 24
	p.Before = window(cat)
	p.Ignored = inv.Ignored

	bs := append([]*repo.BackupManifest(nil), cat.Backups...)
	sort.SliceStable(bs, func(i, j int) bool {
		if !bs[i].StartTime.Equal(bs[j].StartTime) {
			return bs[i].StartTime.Before(bs[j].StartTime)
		}
		return bs[i].StartLSN < bs[j].StartLSN
	})
	reasons := make(map[string][]string)
	// oldest is the index of the oldest backup the policy keeps; every
	// newer one is kept too, and WAL is kept from its start on.
	oldest := len(bs)
	keepFrom := func(i int, why string) {
		if i < 0 || i >= len(bs) {
			return
		}
		reasons[bs[i].ID] = append(reasons[bs[i].ID], why)
		if i < oldest {
			oldest = i
		}
	}
	if len(bs) > 0 {
		keepFrom(len(bs)-1, "newest backup")
	}
	if pol.RetainFull > 0 {
		first := len(bs) - pol.RetainFull
		if first < 0 {
			first = 0
		}
		for i := first; i < len(bs); i++ {
			keepFrom(i, fmt.Sprintf("one of the newest %d", pol.RetainFull))
		}
	}
	if pol.RetainWindow > 0 {
		from := now.Add(-pol.RetainWindow)
		p.Promise = &from
		// The newest backup that ended by the window's start can restore
		// to that start; every later one is in the window.
		anchor := -1
		for i, b := range bs {
			if !b.StopTime.After(from) {
				if _, ok := cat.Reach(b); ok {
					anchor = i
				}
			}
		}
		if anchor < 0 {
			// Nothing reaches back that far: keep everything.
			p.Short = true
			anchor = 0
		}
		for i := anchor; i < len(bs); i++ {
			why := fmt.Sprintf("in the %s window", days(pol.RetainWindow))
			if i == anchor && !bs[i].StopTime.After(from) {
				why = fmt.Sprintf("restores the start of the %s window", days(pol.RetainWindow))
			}
			keepFrom(i, why)
		}
	}
	// The newest usable backup, whatever the rules say, so a count rule
	// over backups whose WAL is damaged never leaves nothing to restore.
	for i := len(bs) - 1; i >= 0; i-- {
		if _, ok := cat.Reach(bs[i]); ok {
			if i < oldest {
				keepFrom(i, "newest usable backup")
			}
			break
		}
	}
	for i := oldest; i < len(bs); i++ {
		if len(reasons[bs[i].ID]) == 0 {
			reasons[bs[i].ID] = append(reasons[bs[i].ID], "newer than a kept backup")
		}
	}
	// Keep marks: kept, with only their own WAL.
	type segRange struct{ from, to uint64 }
	var marked []segRange
	for i, b := range bs {
		if m, ok := inv.Marks[b.ID]; ok && m.Keep {
			reasons[b.ID] = append(reasons[b.ID], "marked keep")
			if i < oldest {
				marked = append(marked, segRange{pgwal.SegNoOf(b.StartLSN, cat.SegSize), pgwal.SegNoOf(b.StopLSN, cat.SegSize)})
			}
		}
	}

	var floor uint64
	haveFloor := oldest < len(bs)
	if haveFloor {
		floor = pgwal.SegNoOf(bs[oldest].StartLSN, cat.SegSize)
		p.WALFloor = pgwal.SegmentName(bs[oldest].Timeline, floor, cat.SegSize)
	}
	needed := func(segno uint64) bool {
		if !haveFloor || segno >= floor {
			return true
		}
		for _, r := range marked {
			if segno >= r.from && segno <= r.to {
				return true
			}
		}
		return false
	}

	removedIDs := make(map[string]bool)
	for _, b := range bs {
		if len(reasons[b.ID]) > 0 {
			p.Kept = append(p.Kept, KeptBackup{Backup: b, ID: b.ID, Reasons: reasons[b.ID]})
			continue
		}
		rb := RemovedBackup{Backup: b, ID: b.ID}
		var others []string
		for _, o := range inv.BackupObjects[b.ID] {
			rb.Bytes += o.Size
			if o.Kind == repo.BackupManifestObject {
				rb.Objects = append(rb.Objects, o.Key)
			} else {
				others = append(others, o.Key)
			}
		}
		rb.Objects = append(rb.Objects, others...)
		p.Removed = append(p.Removed, rb)
		p.Bytes += rb.Bytes
		removedIDs[b.ID] = true
	}

	// Orphans: objects of ids without a manifest, all older than the grace.
	withManifest := make(map[string]bool, len(bs))
	for _, b := range bs {
		withManifest[b.ID] = true
	}
	var orphanIDs []string
	for id, objs := range inv.BackupObjects {
		// An id with a manifest that is not in the catalog has one that
		// failed its check (Inventory.Ignored): not an interrupted
		// backup.
		hasManifest := false
		for _, o := range objs {
			hasManifest = hasManifest || o.Kind == repo.BackupManifestObject
		}
		if !withManifest[id] && !hasManifest {
			orphanIDs = append(orphanIDs, id)
		}
	}
	sort.Strings(orphanIDs)
	for _, id := range orphanIDs {
		objs := inv.BackupObjects[id]
		fresh := false
		for _, oi := range objs {
			if oi.ModTime.After(now.Add(-OrphanGrace)) {
				fresh = true
			}
		}
		if fresh {
			continue
		}
		for _, oi := range objs {
			p.Orphans = append(p.Orphans, oi.Key)
			p.orphanBytes += oi.Size
		}
	}
	p.Bytes += p.orphanBytes

	// WAL, oldest first so that an interrupted run leaves the kept range
	// contiguous.
	wal := append([]repo.WALObject(nil), cat.WAL...)
	sort.SliceStable(wal, func(i, j int) bool {
		si, sj := wal[i].File.SegNo(cat.SegSize), wal[j].File.SegNo(cat.SegSize)
		if si != sj {
			return si < sj
		}
		return wal[i].Key < wal[j].Key
	})
	var removedWAL []repo.WALObject
	runs := make(map[uint32]*WALRun)
	var order []uint32
	for _, w := range wal {
		if w.File.Kind == pgwal.KindHistory || needed(w.File.SegNo(cat.SegSize)) {
			continue
		}
		removedWAL = append(removedWAL, w)
		p.walKeys = append(p.walKeys, w.Key)
		p.Bytes += w.Size
		r := runs[w.File.Timeline]
		if r == nil {
			r = &WALRun{Timeline: w.File.Timeline, First: w.File.Name}
			runs[w.File.Timeline] = r
			order = append(order, w.File.Timeline)
		}
		r.Last = w.File.Name
		r.Files++
		r.Bytes += w.Size
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	for _, t := range order {
		p.WAL = append(p.WAL, *runs[t])
	}
	p.WALRecords = planWALRecords(inv.WALRecords, cat, needed)
	p.Bytes += p.WALRecords.Bytes

	// Streamed partials: below the floor, superseded by a full segment, or
	// smaller than another partial of the same segment.
	type segKey struct {
		tli   uint32
		segno uint64
	}
	full := make(map[segKey]bool)
	for _, w := range cat.WAL {
		if w.File.Kind == pgwal.KindSegment {
			full[segKey{w.File.Timeline, w.File.SegNo(cat.SegSize)}] = true
		}
	}
	largest := make(map[segKey]int64)
	for _, sp := range inv.Partials {
		k := segKey{sp.File.Timeline, sp.File.SegNo(cat.SegSize)}
		if sp.Valid > largest[k] {
			largest[k] = sp.Valid
		}
	}
	for _, w := range removedWAL {
		if w.File.Kind == pgwal.KindSegment {
			delete(full, segKey{w.File.Timeline, w.File.SegNo(cat.SegSize)})
		}
	}
	for _, sp := range inv.Partials {
		k := segKey{sp.File.Timeline, sp.File.SegNo(cat.SegSize)}
		if !needed(k.segno) || full[k] || sp.Valid < largest[k] {
			p.Partials = append(p.Partials, sp.Key)
			p.partialBytes += sp.Size
		}
	}
	p.Bytes += p.partialBytes

	// The window once all this is gone.
	after := *cat
	after.Backups = nil
	for _, b := range cat.Backups {
		if !removedIDs[b.ID] {
			after.Backups = append(after.Backups, b)
		}
	}
	gone := make(map[string]bool, len(p.walKeys)+len(p.Partials))
	for _, k := range p.walKeys {
		gone[k] = true
	}
	for _, k := range p.Partials {
		gone[k] = true
	}
	after.WAL = nil
	for _, w := range cat.WAL {
		if !gone[w.Key] {
			after.WAL = append(after.WAL, w)
		}
	}
	after.Partials = nil
	for _, sp := range cat.Partials {
		if !gone[sp.Key] {
			after.Partials = append(after.Partials, sp)
		}
	}
	p.After = window(&after)
	if p.Promise != nil && (p.After == nil || p.After.From.After(*p.Promise)) {
		p.Short = true
	}

	// Filestore objects: needed from the start of the oldest kept backup
	// (marked ones included) on. Without any backup, nothing is removed.
	if fs := inv.Filestore; fs != nil && (len(fs.Objects) > 0 || len(fs.Logs) > 0) && len(p.Kept) > 0 {
		from := p.Kept[0].Backup.StartTime
		for _, k := range p.Kept {
			if k.Backup.StartTime.Before(from) {
				from = k.Backup.StartTime
			}
		}
		p.Filestore = planFilestore(fs, from.Add(-pol.FilestoreMargin), now)
		p.Bytes += p.Filestore.Bytes
	}
	return p, nil
}

func days(d time.Duration) string {
	n := d.Hours() / 24
	if n == float64(int64(n)) {
		if n == 1 {
			return "1-day"
		}
		return fmt.Sprintf("%d-day", int64(n))
	}
	return fmt.Sprintf("%.1f-day", n)
}

// Ignored is an object expire left out of its plan because no trusted
// writer signed it under its name: planted by someone who can write the
// bucket. Nothing is removed on its account, and it is not removed either
// (evidence, for the operator to look at).
type Ignored struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// Load reads what MakePlan needs. A backup manifest or filestore log
// record that no trusted writer signed under its name (unsigned, signed
// by a writer of another root, copied under another name: what anyone who
// can write the bucket can plant) does not stop expire, or such a person
// could stop retention for good: it cannot be a backup of this repository,
// so the backup is left out (never counted as kept, never removed, its
// WAL decided by the signed backups alone), and filestore expiry is
// skipped for the run; both are listed in Inventory.Ignored. Retention
// still refuses to act on a repository with a genuine object it cannot
// read (damaged, a wrong key, a newer format) and on any other error.
func Load(ctx context.Context, r *repo.Repository) (Inventory, error) {
	cat, skipped, err := catalog.LoadReadable(ctx, r)
	if err != nil {
		return Inventory{}, err
	}
	var ignored []Ignored
	for _, s := range skipped {
		if !errors.Is(s.Err, repo.ErrUntrusted) {
			return Inventory{}, s.Err
		}
		ignored = append(ignored, Ignored{Key: repo.BackupManifestKey(s.ID), Reason: s.Err.Error()})
	}
	marks, err := r.AllBackupMarks(ctx)
	if err != nil {
		return Inventory{}, err
	}
	listed, err := r.BackupObjects(ctx)
	if err != nil {
		return Inventory{}, err
	}
	objs := make(map[string][]repo.BackupObject)
	for _, o := range listed {
		if o.ID != "" {
			objs[o.ID] = append(objs[o.ID], o)
		}
	}
	partials, _, err := r.AllStreamPartials(ctx)
	if err != nil {
		return Inventory{}, err
	}
	fs, bad, err := loadFilestore(ctx, r)
	ignored = append(ignored, bad...)
	if err != nil {
		return Inventory{}, err
	}
	records, err := loadWALRecords(ctx, r)
	if err != nil {
		return Inventory{}, err
	}
	return Inventory{Catalog: cat, Marks: marks, BackupObjects: objs, Partials: partials, Filestore: fs, Ignored: ignored, WALRecords: records}, nil
}

// Execute removes what p lists: each backup's manifest first (so it stops
// being listed at once), then its other objects; then orphans, WAL oldest
// first, and streamed partials. An object that S3 Object Lock still
// retains is left in place and reported in p.Locked (with the rest of its
// backup when it is a manifest). valid is called before each removal; when
// it returns an error (the lock was lost) Execute stops with it.
func Execute(ctx context.Context, r *repo.Repository, p *Plan, valid func() error) error {
	var mu sync.Mutex
	del := func(key string) (bool, error) {
		if err := valid(); err != nil {
			return false, err
		}
		// The store refuses an object it still retains (Object Lock),
		// telling until when; a missing one is already gone.
		err := r.Remove(ctx, key)
		var retained *storage.RetainedError
		switch {
		case errors.As(err, &retained):
			mu.Lock()
			p.Locked = append(p.Locked, LockedObject{Key: key, Until: retained.Until})
			mu.Unlock()
			return false, nil
		case err != nil && !storage.IsNotExist(err):
			return false, fmt.Errorf("expire: %w", err)
		}
		return true, nil
	}
	for _, b := range p.Removed {
		if len(b.Objects) == 0 {
			continue
		}
		gone, err := del(b.Objects[0])
		if err != nil {
			return err
		}
		if !gone {
			continue // a retained manifest: the whole backup stays
		}
		if err := deleteAll(ctx, b.Objects[1:], del); err != nil {
			return err
		}
	}
	if err := deleteAll(ctx, p.Orphans, del); err != nil {
		return err
	}
	for _, k := range p.walKeys {
		gone, err := del(k)
		if err != nil {
			return err
		}
		if !gone {
			// Keep the rest contiguous: a retained segment means the
			// ones after it were written later and are retained too.
			break
		}
	}
	if err := deleteAll(ctx, p.WALRecords.keys(), del); err != nil {
		return err
	}
	if err := deleteAll(ctx, p.Partials, del); err != nil {
		return err
	}
	if p.Filestore != nil {
		if err := executeFilestore(ctx, r, p.Filestore, valid, del); err != nil {
			return err
		}
	}
	if err := executeSweep(ctx, p.Sweep, del); err != nil {
		return err
	}
	p.Done = true
	return nil
}

// deleteAll removes keys with a few requests in flight.
func deleteAll(ctx context.Context, keys []string, del func(string) (bool, error)) error {
	return workpool.Each(ctx, keys, 8, func(k string) error {
		_, err := del(k)
		return err
	})
}

// ErrPolicy: the retention policy cannot be applied (no rule, or a
// negative one).
var ErrPolicy = errors.New("invalid retention policy")

// RunOptions configure Run.
type RunOptions struct {
	// Confirm removes for real; without it Run only plans.
	Confirm bool
	// Change says who removes and how long to wait for the lock.
	Change repo.ChangeOptions
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run plans what pol removes from r and, with Confirm, removes it: under
// the repository's exclusive lock (no backup, filestore pass or other
// expire runs meanwhile, and the plan is made under it), recording what
// was removed in the audit trail, also when it stopped part-way. The plan
// is returned with an Execute error (what was done is in it).
func Run(ctx context.Context, r *repo.Repository, pol Policy, o RunOptions) (*Plan, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := pol.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	plan := func() (*Plan, error) {
		inv, err := Load(ctx, r)
		if err != nil {
			return nil, err
		}
		now := o.Now()
		p, err := MakePlan(inv, pol, now)
		if err != nil {
			return nil, err
		}
		// Before anything is removed: the sweep reads the file lists the
		// plan removes when a running backup builds on them.
		var removed []string
		for _, b := range p.Removed {
			removed = append(removed, b.ID)
		}
		if p.Sweep, err = PrepareSweep(ctx, r, removed, now); err != nil {
			return nil, fmt.Errorf("plan the sweep of unreferenced packs: %w", err)
		}
		p.Bytes += p.Sweep.Bytes
		return p, nil
	}
	if !o.Confirm {
		return plan()
	}
	var p *Plan
	err := r.Change(ctx, repo.LockExclusive, "expire", o.Change, func(l *repo.Lock) (repo.Audit, error) {
		var err error
		if p, err = plan(); err != nil || p.Empty() {
			return repo.Audit{}, err
		}
		err = Execute(ctx, r, p, l.Valid)
		return repo.Audit{Action: p.Summary(), Details: p.Details()}, err
	})
	return p, err
}

// Summary says in one line what the plan removes.
func (p *Plan) Summary() string {
	files := 0
	for _, w := range p.WAL {
		files += w.Files
	}
	s := fmt.Sprintf("removed %d backups, %d WAL files, %d streamed partials, %d orphan objects (%s stored)",
		len(p.Removed), files, len(p.Partials), len(p.Orphans), units.Bytes(p.Bytes))
	if p.Filestore != nil && len(p.Filestore.Objects) > 0 {
		s += fmt.Sprintf("; %d Odoo filestore objects", len(p.Filestore.Objects))
	}
	s += p.WALRecords.summary()
	if p.Sweep != nil && len(p.Sweep.Packs) > 0 {
		s += fmt.Sprintf("; %d unreferenced block packs (%s)", len(p.Sweep.Packs), units.Bytes(p.Sweep.Bytes))
	}
	if len(p.Locked) > 0 {
		s += fmt.Sprintf("; %d objects left under Object Lock retention", len(p.Locked))
	}
	if len(p.Ignored) > 0 {
		s += fmt.Sprintf("; %d objects left out that no trusted writer signed", len(p.Ignored))
	}
	return s
}

// Details lists what the plan removes, one line each.
func (p *Plan) Details() []string {
	var d []string
	for _, b := range p.Removed {
		d = append(d, "backup "+b.ID)
	}
	for _, w := range p.WAL {
		d = append(d, fmt.Sprintf("WAL timeline %d: %s .. %s (%d files)", w.Timeline, w.First, w.Last, w.Files))
	}
	if p.Sweep != nil {
		for _, k := range p.Sweep.Packs {
			d = append(d, "pack "+k)
		}
		if p.Sweep.Skipped != "" {
			d = append(d, "packs not swept: "+p.Sweep.Skipped)
		}
	}
	if p.Filestore != nil {
		for _, n := range p.Filestore.Objects {
			d = append(d, "filestore object "+n)
		}
		for _, c := range p.Filestore.Compact {
			d = append(d, fmt.Sprintf("filestore log of %s: %d records through %s compacted", c.DB, c.Records, c.Through.Format(time.RFC3339)))
		}
	}
	return d
}
