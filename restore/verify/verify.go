package verify

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/restore/walfetch"
	"github.com/walvault/walvault/storage"
)

// Options select what Run checks and how.
type Options struct {
	// Workers bounds the objects read at once (default 2×GOMAXPROCS). It
	// also bounds memory: each worker holds at most one object.
	Workers int
	// BackupID restricts the check to one backup: its manifest, its chunks
	// and the WAL from its start to its stop (plus the history files).
	BackupID string
	// WALOnly skips the backup chunks; BackupsOnly skips the WAL objects.
	// Manifests and history files are read either way: continuity needs
	// them.
	WALOnly, BackupsOnly bool
	// ExpectWALAtLeast, when not zero, is how far the WAL must reach on
	// the timeline a restore to the latest point follows (an operator's
	// own record, catalog.CheckReaches); less is a problem.
	ExpectWALAtLeast pgwal.LSN
	// Progress, when set, is called after each object with the objects
	// done, the objects to check and the stored bytes read so far. Calls
	// come from worker goroutines but never overlap.
	Progress func(done, total int64, bytes int64)
}

// Problem kinds.
const (
	KindDamaged     = "damaged"     // fails decryption, decompression, size or checksum; a segment with the wrong header
	KindWrongKey    = "wrong-key"   // no configured identity decrypts it
	KindMissing     = "missing"     // listed by a manifest or needed by a backup, but absent
	KindMismatch    = "mismatch"    // verifies, but is not what the manifest recorded, or names another cluster than walvault.json
	KindTar         = "tar"         // an archive's chunks do not form a valid tar stream
	KindUnsupported = "unsupported" // written by a newer walvault
	KindUnreadable  = "unreadable"  // the store refused to return it
	KindUnusable    = "unusable"    // a backup whose WAL from start to stop is incomplete
	KindConflict    = "conflict"    // an alternate copy a writer stored beside another object under a WAL file's name
)

// Problem is one object (or archive, or backup) that would make a restore
// fail.
type Problem struct {
	Key   string `json:"key"`
	Kind  string `json:"kind"`
	Error string `json:"error"`
	// Err is the error as returned, for errors.Is (repo.ErrIntegrity,
	// repo.ErrWrongKey, storage.ErrNotExist).
	Err error `json:"-"`
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Key, p.Kind, p.Error) }

// Gap is a run of WAL segments missing on the way recovery takes: no
// restore can replay past FromLSN on Timeline.
type Gap struct {
	Timeline uint32 `json:"timeline"`
	// From and To name the first and the last missing segment.
	From     string    `json:"from"`
	To       string    `json:"to"`
	Segments int       `json:"segments"`
	FromLSN  pgwal.LSN `json:"from_lsn"`
	// ToLSN is where the WAL resumes (the end of To).
	ToLSN pgwal.LSN `json:"to_lsn"`
	// After is the upload time of the segment before the gap: moments after
	// it are unreachable from the backups in CutShort. Zero when that
	// segment is absent too.
	After time.Time `json:"after,omitzero"`
	// CutShort are the backups started before the gap ends: restores from
	// them stop at FromLSN. Unusable are those among them whose own start
	// to stop range the gap falls in.
	CutShort []string `json:"cut_short"`
	Unusable []string `json:"unusable,omitempty"`
	// ResumeBackup is the oldest backup that starts after the gap (empty
	// when none does: then nothing after the gap is reachable).
	ResumeBackup string `json:"resume_backup,omitempty"`
	Message      string `json:"message"`
}

// Window is the recoverable window (see catalog.Window), as text.
type Window struct {
	From     string `json:"from"`
	FromLSN  string `json:"from_lsn"`
	To       string `json:"to"`
	ToLSN    string `json:"to_lsn"`
	Timeline uint32 `json:"timeline"`
}

// Report is what Run found.
type Report struct {
	// OK is true when there is no problem. Gaps that only shorten the
	// window and warnings do not clear it.
	OK bool `json:"ok"`
	// Objects and Bytes count the objects read and their stored size.
	Objects  int64     `json:"objects"`
	Bytes    int64     `json:"bytes"`
	Problems []Problem `json:"problems"`
	Gaps     []Gap     `json:"gaps"`
	Warnings []string  `json:"warnings"`
	// Recoverable is the window restores reach from the oldest usable
	// backup; nil when no backup is usable.
	Recoverable *Window `json:"recoverable"`
	// Format is the repository's format version; Guarantees says what
	// that format promises about what verify read (repo.Config.Guarantees).
	Format     int    `json:"format"`
	Guarantees string `json:"guarantees"`
}

// Run verifies r as opts asks. It returns an error only when it cannot go
// on (no identity for an encrypted repository, storage unreachable,
// context cancelled); everything wrong with the repository is in the Report.
func Run(ctx context.Context, r *repo.Repository, opts Options) (*Report, error) {
	if opts.WALOnly && opts.BackupsOnly {
		return nil, errors.New("verify: WALOnly and BackupsOnly exclude each other")
	}
	if opts.BackupID != "" && !repo.ValidBackupID(opts.BackupID) {
		return nil, fmt.Errorf("verify: backup id %q is not of the form 20060102T150405Z", opts.BackupID)
	}
	if !pgwal.ValidSegmentSize(r.Config.WALSegmentSize) {
		return nil, fmt.Errorf("%w: repository records WAL segment size %d", repo.ErrIntegrity, r.Config.WALSegmentSize)
	}
	if opts.Workers < 1 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := &verifier{r: r, opts: opts, tokens: make(chan struct{}, opts.Workers), cancel: cancel, segSize: r.Config.WALSegmentSize}
	rep, err := v.run(ctx)
	if rep != nil {
		rep.Format, rep.Guarantees = r.Config.Format, r.Config.Guarantees()
	}
	return rep, err
}

type verifier struct {
	r       *repo.Repository
	opts    Options
	segSize int64
	// tokens bound the objects in flight, and so the memory held.
	tokens chan struct{}
	cancel context.CancelFunc

	mu       sync.Mutex
	fatal    error
	rep      Report
	total    int64
	sizes    map[string]int64 // stored size of every listed object
	progress sync.Mutex
	blocks   blockState
	// kept are the backups marked keep: retention keeps only their own
	// WAL when they are older than the backups it keeps by policy.
	kept map[string]bool
}

// listing is what the store holds, by kind.
type listing struct {
	wal       []repo.WALObject
	partials  []repo.StreamPartial
	manifests []string            // backup ids with a manifest
	chunks    map[string][]string // backup id → chunk keys listed under it
	notes     map[string][]string // backup id → note keys (keep marks, annotations)
	audit     []string            // audit trail records
	// heads are the newest signed WAL heads, ignoredHeads those passed
	// over (repo.WALHeads).
	heads        map[uint32]repo.WALHead
	ignoredHeads []repo.UnknownObject
}

func (v *verifier) run(ctx context.Context) (*Report, error) {
	l, err := v.list(ctx)
	if err != nil {
		return nil, err
	}
	// walvault.json's signature (format 2). Refused, it makes every object
	// fail the same way; the report names it first, as the cause.
	if err := v.r.VerifyConfig(ctx); err != nil {
		if errors.Is(err, repo.ErrNoIdentity) || storage.IsTransient(err) {
			return nil, fmt.Errorf("verify: %w", err)
		}
		v.problem(repo.ConfigKey, classify(err), err)
	}
	ids := l.manifests
	if v.opts.BackupID != "" {
		if !contains(ids, v.opts.BackupID) {
			return nil, fmt.Errorf("verify: no backup %s in the repository: %w", v.opts.BackupID, storage.ErrNotExist)
		}
		ids = []string{v.opts.BackupID}
	}

	// Keep marks. A damaged note is reported when it is read back below;
	// here it only means no marks are known.
	if marks, err := v.r.AllBackupMarks(ctx); err == nil {
		v.kept = make(map[string]bool)
		for id, m := range marks {
			v.kept[id] = m.Keep
		}
	} else if errors.Is(err, repo.ErrNoIdentity) || storage.IsTransient(err) {
		return nil, fmt.Errorf("verify: %w", err)
	}

	// Phase 1: what continuity needs (manifests, timeline histories).
	var histories []repo.WALObject
	for _, w := range l.wal {
		if w.File.Kind == pgwal.KindHistory {
			histories = append(histories, w)
		}
	}
	v.addTotal(int64(len(ids) + len(histories)))
	manifests := make([]*repo.BackupManifest, len(ids))
	timelines := make(map[uint32][]pgwal.HistoryEntry)
	var wg sync.WaitGroup
	for i, id := range ids {
		if !v.acquire(ctx) {
			break
		}
		wg.Go(func() {
			defer v.release()
			manifests[i] = v.manifest(ctx, id)
		})
	}
	for _, h := range histories {
		if !v.acquire(ctx) {
			break
		}
		wg.Go(func() {
			defer v.release()
			if entries, ok := v.history(ctx, h); ok {
				v.mu.Lock()
				timelines[h.File.Timeline] = entries
				v.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := v.failed(ctx); err != nil {
		return nil, err
	}
	v.configAgainstBackups(manifests)
	cat := &catalog.Catalog{WAL: l.wal, Timelines: timelines, SegSize: v.segSize, Partials: latestPartials(l.partials)}
	for _, m := range manifests {
		if m != nil {
			cat.Backups = append(cat.Backups, m)
		}
	}
	sort.SliceStable(cat.Backups, func(i, j int) bool { return cat.Backups[i].StartLSN < cat.Backups[j].StartLSN })

	// Phase 2: every other object.
	var archives []archiveJob
	if !v.opts.WALOnly {
		for _, m := range cat.Backups {
			for _, a := range m.Archives {
				archives = append(archives, archiveJob{m: m, a: a})
				v.addTotal(int64(len(a.Chunks)))
			}
		}
	}
	var walJobs []func(context.Context)
	if !v.opts.BackupsOnly {
		walJobs = v.walJobs(l, cat)
		v.addTotal(int64(len(walJobs)))
	}
	// A backup whose manifest is damaged cannot be walked archive by
	// archive, but its chunks are still objects to read back: each is
	// checked on its own, so the damage report is complete.
	if !v.opts.WALOnly {
		for i, id := range ids {
			if manifests[i] != nil {
				continue
			}
			for _, key := range l.chunks[id] {
				walJobs = append(walJobs, func(ctx context.Context) { v.get(ctx, key) })
			}
			v.addTotal(int64(len(l.chunks[id])))
		}
	}
	// Notes and audit records are small sealed objects: read each back.
	var small []string
	if !v.opts.WALOnly {
		for _, id := range ids {
			small = append(small, l.notes[id]...)
		}
	}
	if v.opts.BackupID == "" && !v.opts.WALOnly && !v.opts.BackupsOnly {
		small = append(small, l.audit...)
	}
	for _, key := range small {
		walJobs = append(walJobs, func(ctx context.Context) { v.get(ctx, key) })
	}
	v.addTotal(int64(len(small)))
	wg.Go(func() {
		// Archives run concurrently with each other and with the WAL; the
		// tokens, taken in chunk order within each archive, bound them all.
		var awg sync.WaitGroup
		limit := make(chan struct{}, v.opts.Workers)
		for _, j := range archives {
			select {
			case limit <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			awg.Go(func() {
				defer func() { <-limit }()
				v.archive(ctx, j)
			})
		}
		awg.Wait()
	})
	wg.Go(func() {
		var jwg sync.WaitGroup
		for _, job := range walJobs {
			if !v.acquire(ctx) {
				break
			}
			jwg.Go(func() {
				defer v.release()
				job(ctx)
			})
		}
		jwg.Wait()
	})
	wg.Wait()
	if err := v.failed(ctx); err != nil {
		return nil, err
	}

	// Continuity, from the listing and the manifests read.
	v.continuity(cat)
	if v.opts.BackupID == "" && !v.opts.BackupsOnly {
		v.complete(l, cat)
	}
	for id, keys := range l.chunks {
		if !contains(l.manifests, id) {
			v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("%s: %d chunks without a manifest (an interrupted backup; not restorable, retention removes it)", repo.BackupFolder(id), len(keys)))
		}
	}
	// Date the backups' ends as catalog.Load does, so that the window is
	// the one info and restore use. Damage to a history file is reported
	// by the object checks above; a file that does not fit its backup is
	// a warning.
	problems, err := catalog.CorrectStopTimes(ctx, v.r, cat.Backups, cat.WAL, v.segSize)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, p := range problems {
		v.rep.Warnings = append(v.rep.Warnings, p.Error())
	}
	if w, ok := cat.Recoverable(); ok {
		v.rep.Recoverable = &Window{From: w.From.UTC().Format(time.RFC3339Nano), FromLSN: w.FromLSN.String(),
			To: w.To.UTC().Format(time.RFC3339Nano), ToLSN: w.ToLSN.String(), Timeline: w.Timeline}
	}
	rep := v.rep
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Key < rep.Problems[j].Key })
	sort.Strings(rep.Warnings)
	if rep.Problems == nil {
		rep.Problems = []Problem{}
	}
	if rep.Gaps == nil {
		rep.Gaps = []Gap{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	rep.OK = len(rep.Problems) == 0
	return &rep, nil
}

// list reads the store's listing once. Keys the format does not know are
// warnings: they are not restored, and nothing of walvault's wrote them.
func (v *verifier) list(ctx context.Context) (*listing, error) {
	l := &listing{chunks: make(map[string][]string), notes: make(map[string][]string)}
	v.sizes = make(map[string]int64)
	// Heads before the WAL: a segment is stored before its head, so every
	// head listed here has its segment in the WAL listing, even while
	// wal-push runs.
	heads, ignored, err := v.r.WALHeads(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	l.heads, l.ignoredHeads = heads, ignored
	wal, unknown, err := v.r.ListWAL(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, u := range unknown {
		v.sizes[u.Key] = u.Size
		if errors.Is(u.Err, repo.ErrWALAlternate) {
			// A writer met something else under a WAL file's name and
			// stored its copy beside it: a failure to look into, though
			// restore takes the copy that verifies.
			f, _, _ := repo.ParseWALAltKey(u.Key)
			v.problem(u.Key, KindConflict, fmt.Errorf("%w: a writer found another object under %s and stored its copy of %s beside it; restore and wal-fetch use the copy that verifies (and refuse if both do and differ): find out who wrote the other (walvault audit, the store's access logs), then remove the wrong one", u.Err, repo.WALKey(f), f.Name))
			continue
		}
		v.warn("%s: not a WAL file of this format, ignored (%v)", u.Key, u.Err)
	}
	for _, w := range wal {
		v.sizes[w.Key] = w.Size
	}
	l.wal = wal
	backups, err := v.r.BackupObjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, o := range backups {
		v.sizes[o.Key] = o.Size
		switch {
		case o.ID == "":
			v.warn("%s: not under a backup id, ignored", o.Key)
		case o.Kind == repo.BackupManifestObject:
			l.manifests = append(l.manifests, o.ID)
		case o.Kind == repo.BackupChunkObject:
			l.chunks[o.ID] = append(l.chunks[o.ID], o.Key)
		case o.Kind == repo.BackupNoteObject:
			l.notes[o.ID] = append(l.notes[o.ID], o.Key)
		case o.Kind == repo.BackupFileListObject:
			// Read with the backup's block archives.
		default:
			v.warn("%s: not a chunk or a manifest, ignored", o.Key)
		}
	}
	audit, err := v.r.AuditObjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, oi := range audit {
		v.sizes[oi.Key] = oi.Size
		l.audit = append(l.audit, oi.Key)
	}
	partials, unknown, err := v.r.AllStreamPartials(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, u := range unknown {
		v.sizes[u.Key] = u.Size
		v.warn("%s: not a streamed partial segment of this format, ignored", u.Key)
	}
	for _, p := range partials {
		v.sizes[p.Key] = p.Size
	}
	l.partials = partials
	// Packs are read through the file lists that reference them; listed
	// here for their sizes (the bytes verify reports).
	packs, unknownPacks, err := v.r.Packs(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, p := range packs {
		v.sizes[p.Key] = p.Size
	}
	for _, u := range unknownPacks {
		v.warn("%s: not a pack of this format, ignored (%v)", u.Key, u.Err)
	}
	sort.Strings(l.manifests)
	return l, nil
}

// latestPartials keeps the largest streamed partial of each segment, as
// catalog.Load does. ps is in key order.
func latestPartials(ps []repo.StreamPartial) []repo.StreamPartial {
	var out []repo.StreamPartial
	for i, p := range ps {
		if i+1 < len(ps) && ps[i+1].File.Name == p.File.Name && ps[i+1].File.Timeline == p.File.Timeline {
			continue
		}
		out = append(out, p)
	}
	return out
}

func (v *verifier) manifest(ctx context.Context, id string) *repo.BackupManifest {
	key := repo.BackupManifestKey(id)
	m, err := v.r.BackupManifest(ctx, id)
	v.done(key)
	if err != nil {
		v.objectError(ctx, key, err)
		return nil
	}
	if m.SystemIdentifier != "" && m.SystemIdentifier != v.r.Config.SystemIdentifier {
		// Restore refuses such a backup; say so here too.
		v.problem(key, KindMismatch, fmt.Errorf("%w: backup %s is of the cluster with system identifier %s, %s says %s",
			repo.ErrClusterMismatch, id, m.SystemIdentifier, repo.ConfigKey, v.r.Config.SystemIdentifier))
	}
	return m
}

// configAgainstBackups reports walvault.json itself when every backup read
// names one other system than it does: the configuration, not each backup,
// is then the likely damage (a flipped digit, a file from another
// repository).
func (v *verifier) configAgainstBackups(manifests []*repo.BackupManifest) {
	var other string
	n := 0
	for _, m := range manifests {
		if m == nil || m.SystemIdentifier == "" {
			continue
		}
		if m.SystemIdentifier == v.r.Config.SystemIdentifier || other != "" && m.SystemIdentifier != other {
			return
		}
		other = m.SystemIdentifier
		n++
	}
	if n == 0 {
		return
	}
	v.problem(repo.ConfigKey, KindMismatch, fmt.Errorf("%w: %s names system identifier %s, but all %d backup(s) name %s: it was damaged or replaced; restore refuses this repository until it is put right",
		repo.ErrClusterMismatch, repo.ConfigKey, v.r.Config.SystemIdentifier, n, other))
}

func (v *verifier) history(ctx context.Context, w repo.WALObject) ([]pgwal.HistoryEntry, bool) {
	data, ok := v.get(ctx, w.Key)
	if !ok {
		return nil, false
	}
	entries, err := pgwal.ParseHistory(data)
	if err != nil {
		v.problem(w.Key, KindDamaged, fmt.Errorf("%w: %v", repo.ErrIntegrity, err))
		return nil, false
	}
	return entries, true
}

// walJobs returns one check per WAL object to verify.
func (v *verifier) walJobs(l *listing, cat *catalog.Catalog) []func(context.Context) {
	inRange := func(repo.WALObject) bool { return true }
	if v.opts.BackupID != "" {
		// Only the segments the backup needs from start to stop.
		need := make(map[string]bool)
		for _, m := range cat.Backups {
			hist := history(cat, cat.LatestTimeline(m))
			last := pgwal.SegNoOf(max(m.StopLSN, m.StartLSN+1)-1, v.segSize)
			for s := pgwal.SegNoOf(m.StartLSN, v.segSize); s <= last; s++ {
				need[repo.WALSegmentKey(timelineOfSegment(hist, s, v.segSize), s, v.segSize)] = true
			}
		}
		inRange = func(w repo.WALObject) bool { return need[w.Key] }
	}
	var jobs []func(context.Context)
	for _, w := range l.wal {
		switch {
		case w.File.Kind == pgwal.KindHistory || !inRange(w):
			// Histories were read in phase 1.
		case w.File.Kind == pgwal.KindSegment || w.File.Kind == pgwal.KindPartial:
			jobs = append(jobs, func(ctx context.Context) {
				if data, ok := v.get(ctx, w.Key); ok {
					if err := walfetch.CheckSegment(v.r, w.File, data, v.historyOf(cat, w.File.Timeline)); err != nil {
						v.problem(w.Key, KindDamaged, err)
					}
				}
			})
		default:
			jobs = append(jobs, func(ctx context.Context) { v.get(ctx, w.Key) })
		}
	}
	if v.opts.BackupID != "" {
		return jobs
	}
	for _, p := range l.partials {
		jobs = append(jobs, func(ctx context.Context) {
			data, ok := v.get(ctx, p.Key)
			if !ok {
				return
			}
			if int64(len(data)) != p.Valid || p.Valid < pgwal.LongPageHeaderSize {
				v.problem(p.Key, KindDamaged, fmt.Errorf("%w: holds %d bytes, its key says %d", repo.ErrIntegrity, len(data), p.Valid))
				return
			}
			// Checked as restore uses it: zero-padded to a segment.
			seg := make([]byte, v.segSize)
			copy(seg, data)
			if err := walfetch.CheckSegment(v.r, p.File, seg, v.historyOf(cat, p.File.Timeline)); err != nil {
				v.problem(p.Key, KindDamaged, err)
			}
		})
	}
	return jobs
}

// complete checks the WAL against the repository's signed heads (format
// 2): every segment from the oldest needed backup's start up to the newest
// head, and the history file of every timeline after the first, must be
// there (catalog.MissingWAL). Each missing one is a problem. Heads that do
// not count: a head that fails its signature (planted, copied under another
// name, or damaged) is a problem, as any such object is; a key that is not
// a head's is a warning.
func (v *verifier) complete(l *listing, cat *catalog.Catalog) {
	cat.KeepsHeads, cat.Heads, cat.IgnoredHeads = v.r.KeepsHeads(), l.heads, l.ignoredHeads
	for _, u := range l.ignoredHeads {
		if errors.Is(u.Err, repo.ErrIntegrity) {
			v.problem(u.Key, KindDamaged, fmt.Errorf("a WAL head that no trusted writer signed under this name, ignored (it does not move how far the archive reaches): %w", u.Err))
			continue
		}
		v.warn("%s: not a WAL head walvault wrote, ignored (%v)", u.Key, u.Err)
	}
	tli := cat.LatestWALTimeline()
	from := cat.NeededFrom(tli, func(id string) bool { return v.kept[id] })
	reported := map[string]bool{}
	for _, p := range v.rep.Problems {
		reported[p.Key] = true
	}
	if err := cat.CheckReaches(tli, v.opts.ExpectWALAtLeast); err != nil {
		seg := pgwal.SegNoOf(v.opts.ExpectWALAtLeast-1, v.segSize)
		v.problem(repo.WALSegmentKey(cat.SegmentTimeline(tli, seg), seg, v.segSize), KindMissing, err)
	}
	for _, key := range cat.MissingWAL(tli, from) {
		if reported[key] {
			continue
		}
		v.problem(key, KindMissing, fmt.Errorf("%w: the signed WAL heads say %s was archived (recovery to the latest point needs it): deleted, or the bucket was rolled back", repo.ErrIncompleteWAL, key))
	}
}

// historyOf gives walfetch.CheckSegment the history of timeline tli as
// phase 1 read it. In a format-2 repository a timeline after the first
// without a readable history is damage (its own problem is recorded where
// the history file is read, or by continuity when it is absent).
func (v *verifier) historyOf(cat *catalog.Catalog, tli uint32) func() ([]pgwal.HistoryEntry, bool, error) {
	return func() ([]pgwal.HistoryEntry, bool, error) {
		if tli <= 1 {
			return nil, true, nil
		}
		if e, ok := cat.Timelines[tli]; ok {
			return e, true, nil
		}
		if v.r.Signed() {
			return nil, false, fmt.Errorf("%w: the history of timeline %d (%s) is missing or damaged: the WAL of timeline %d cannot be checked against it", repo.ErrIntegrity, tli, pgwal.HistoryFileName(tli), tli)
		}
		return nil, false, nil
	}
}

// get reads and verifies one object, recording a problem when it fails.
func (v *verifier) get(ctx context.Context, key string) ([]byte, bool) {
	data, _, err := v.r.Get(ctx, key)
	v.done(key)
	if err != nil {
		v.objectError(ctx, key, err)
		return nil, false
	}
	return data, true
}

// objectError records err as a problem of key, or as the error that stops
// the run when it says nothing about the object (no identity, storage
// unreachable, cancelled).
func (v *verifier) objectError(ctx context.Context, key string, err error) {
	if ctx.Err() != nil || errors.Is(err, repo.ErrNoIdentity) || storage.IsTransient(err) {
		v.mu.Lock()
		if v.fatal == nil && ctx.Err() == nil {
			v.fatal = err
		}
		v.mu.Unlock()
		v.cancel()
		return
	}
	v.problem(key, classify(err), err)
}

func classify(err error) string {
	switch {
	case storage.IsNotExist(err):
		return KindMissing
	case errors.Is(err, repo.ErrWrongKey):
		return KindWrongKey
	case errors.Is(err, repo.ErrIntegrity):
		return KindDamaged
	case errors.Is(err, repo.ErrUnsupportedFormat):
		return KindUnsupported
	}
	return KindUnreadable
}

func (v *verifier) problem(key, kind string, err error) {
	msg := err.Error()
	// Get's errors start with the key, which the problem names already.
	for _, p := range []string{"object " + key + ": ", "get " + key + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.rep.Problems = append(v.rep.Problems, Problem{Key: key, Kind: kind, Error: msg, Err: err})
}

func (v *verifier) warn(format string, a ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf(format, a...))
}

func (v *verifier) addTotal(n int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.total += n
}

// done counts one object read and reports progress.
func (v *verifier) done(key string) {
	v.mu.Lock()
	v.rep.Objects++
	v.rep.Bytes += v.sizes[key]
	done, total, bytes := v.rep.Objects, v.total, v.rep.Bytes
	v.mu.Unlock()
	if v.opts.Progress != nil {
		v.progress.Lock()
		defer v.progress.Unlock()
		v.opts.Progress(done, total, bytes)
	}
}

func (v *verifier) failed(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.fatal != nil {
		return fmt.Errorf("verify: %w", v.fatal)
	}
	return ctx.Err()
}

func (v *verifier) acquire(ctx context.Context) bool {
	select {
	case v.tokens <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (v *verifier) release() { <-v.tokens }

// chunkMatches compares a verified chunk with what the manifest recorded.
func chunkMatches(c repo.Chunk, data []byte, h repo.ObjectHeader) error {
	if int64(len(data)) != c.Size {
		return fmt.Errorf("%w: %d bytes, the manifest says %d", repo.ErrIntegrity, len(data), c.Size)
	}
	if want, err := hex.DecodeString(c.SHA256); err != nil || len(want) != 32 || [32]byte(want) != h.SHA256 {
		return fmt.Errorf("%w: SHA-256 %s, the manifest says %q", repo.ErrIntegrity, h.SHA256Hex(), c.SHA256)
	}
	return nil
}

func contains(s []string, x string) bool {
	i := sort.SearchStrings(s, x)
	return i < len(s) && s[i] == x
}
