package stream

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/walvault/walvault/archive/walpush"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

type itemKind int

const (
	itemHistory      itemKind = iota // <TLI>.history
	itemFull                         // a complete segment → wal/
	itemFinalPartial                 // last segment of an ended timeline → stream/
)

func (k itemKind) order() int {
	if k == itemHistory {
		return 0
	}
	return 1
}

// item is a spool file queued for upload.
type item struct {
	spoolFile
	inflight, done bool
}

// end is the LSN everything before which is stored once this item and all
// before it are (0 for history files).
func (it *item) end(segSize int64) pgwal.LSN {
	switch it.kind {
	case itemFull:
		return pgwal.SegmentStart(it.segno+1, segSize)
	case itemFinalPartial:
		return pgwal.SegmentStart(it.segno, segSize) + pgwal.LSN(it.size)
	}
	return 0
}

func (it *item) String() string {
	return filepath.Base(it.path)
}

// curSeg is the segment being received, as the receiver last published it.
type curSeg struct {
	set           bool
	tli           uint32
	segno         uint64
	path          string
	valid, synced int64
}

// lastPartial is the newest streamed partial this process stored.
type lastPartial struct {
	tli   uint32
	segno uint64
	valid int64
	at    time.Time // when its upload started: the cadence's reference
	// partials are the stored partials of the segment not yet deleted.
	partials []repo.StreamPartial
}

// uploader moves spool files to the repository, in order: a streamed
// partial of the segment being received is stored only once every earlier
// file is. Full segments go to up to UploadWorkers goroutines; partials are
// stored by the manager goroutine itself.
type uploader struct {
	s       *Streamer
	r       *repo.Repository
	segSize int64
	workers int

	mu             sync.Mutex
	queue          []*item
	cur            curSeg
	last           lastPartial
	partialRetryAt time.Time
	partialAttempt int
	draining       bool
	hadError       bool
	fatalErr       error
	progress       chan struct{} // closed and replaced on every change

	wake   chan struct{}
	failed chan struct{} // closed on a fatal error
	bufs   chan []byte
}

func newUploader(s *Streamer) *uploader {
	u := &uploader{
		s: s, r: s.r, segSize: s.segSize, workers: s.opts.UploadWorkers,
		progress: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		failed:   make(chan struct{}),
		bufs:     make(chan []byte, s.opts.UploadWorkers+1),
	}
	for range s.opts.UploadWorkers + 1 {
		u.bufs <- nil // allocated on first use
	}
	return u
}

// changedLocked wakes the manager and everyone waiting for progress.
func (u *uploader) changedLocked() {
	close(u.progress)
	u.progress = make(chan struct{})
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *uploader) progressCh() <-chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.progress
}

func (u *uploader) enqueue(f spoolFile) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.queue = append(u.queue, &item{spoolFile: f})
	u.changedLocked()
}

func (u *uploader) setCurrent(c curSeg) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c.set = true
	if c != u.cur {
		u.cur = c
		u.changedLocked()
	}
}

func (u *uploader) clearCurrent() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.cur = curSeg{}
	u.changedLocked()
}

func (u *uploader) setDraining() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.draining = true
	u.changedLocked()
}

func (u *uploader) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fatalErr == nil {
		u.fatalErr = err
		close(u.failed)
	}
}

func (u *uploader) fatal() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.fatalErr
}

// partialDoneLocked reports whether the newest partial stored covers every
// fsynced byte of the segment being received.
func (u *uploader) partialDoneLocked() bool {
	c := u.cur
	return !c.set || c.synced == 0 || (u.last.tli == c.tli && u.last.segno == c.segno && u.last.valid >= c.synced)
}

// allDone reports whether everything fsynced in the spool is stored.
func (u *uploader) allDone() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.queue) == 0 && u.partialDoneLocked()
}

func (u *uploader) errored() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hadError
}

// spoolBytes is the WAL in the spool not yet stored.
func (u *uploader) spoolBytes() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int64
	for _, it := range u.queue {
		if !it.done {
			n += it.size
		}
	}
	if c := u.cur; c.set {
		n += c.valid
		if u.last.tli == c.tli && u.last.segno == c.segno {
			n -= min(u.last.valid, c.valid)
		}
	}
	return n
}

// pending describes what is not stored yet, for the shutdown error.
func (u *uploader) pending() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var parts []string
	for _, it := range u.queue {
		if !it.done {
			parts = append(parts, it.String())
		}
	}
	if !u.partialDoneLocked() {
		parts = append(parts, fmt.Sprintf("%s (%d bytes)", filepath.Base(u.cur.path), u.cur.synced))
	}
	return strings.Join(parts, ", ")
}

type workResult struct {
	it  *item
	err error
}

func (u *uploader) run(ctx context.Context) {
	clock := u.s.clock
	results := make(chan workResult)
	inflight := 0
	var (
		timer   <-chan time.Time
		timerAt time.Time
	)
	for {
		now := clock.Now()
		u.mu.Lock()
		for _, it := range u.queue {
			if inflight >= u.workers || u.fatalErr != nil {
				break
			}
			if it.inflight || it.done {
				continue
			}
			it.inflight = true
			inflight++
			go func(it *item) {
				results <- workResult{it, u.storeItem(ctx, it)}
			}(it)
		}
		due, at := u.partialDueLocked(now)
		u.mu.Unlock()
		if due && ctx.Err() == nil {
			u.uploadPartial(ctx, now)
			continue
		}
		if !at.IsZero() && !at.Equal(timerAt) {
			timerAt, timer = at, clock.After(at.Sub(now))
		}
		select {
		case <-ctx.Done():
			for ; inflight > 0; inflight-- {
				<-results
			}
			return
		case <-u.wake:
		case res := <-results:
			inflight--
			u.finishItem(res)
		case <-timer:
			timer, timerAt = nil, time.Time{}
		}
	}
}

// partialDueLocked says whether a streamed partial should be stored now,
// or else when it will be due (zero: not until something changes).
func (u *uploader) partialDueLocked(now time.Time) (bool, time.Time) {
	if len(u.queue) > 0 || u.fatalErr != nil || u.partialDoneLocked() {
		return false, time.Time{}
	}
	due := now
	if !u.draining && !u.last.at.IsZero() {
		due = u.last.at.Add(u.s.opts.PartialInterval)
	}
	if u.partialRetryAt.After(due) {
		due = u.partialRetryAt
	}
	if !now.Before(due) {
		return true, time.Time{}
	}
	return false, due
}

func (u *uploader) finishItem(res workResult) {
	if res.err != nil {
		if isFatal(res.err) {
			u.fail(res.err)
		}
		u.mu.Lock()
		res.it.inflight = false
		u.mu.Unlock()
		return
	}
	u.mu.Lock()
	res.it.inflight, res.it.done = false, true
	var upto pgwal.LSN
	for len(u.queue) > 0 && u.queue[0].done {
		if e := u.queue[0].end(u.segSize); e > upto {
			upto = e
		}
		u.queue = u.queue[1:]
	}
	u.changedLocked()
	u.mu.Unlock()
	u.s.noteUpload(upto)
}

// storeItem stores one spool file, retrying while ctx lives; it returns nil,
// a fatal error, or ctx's error.
func (u *uploader) storeItem(ctx context.Context, it *item) error {
	for attempt := 1; ; attempt++ {
		err := u.storeOnce(ctx, it)
		if err == nil || isFatal(err) || ctx.Err() != nil {
			if isFatal(err) {
				u.s.log.Error("cannot upload spool file; stopping", "file", it.path, "err", err)
			}
			return err
		}
		u.noteError(err, it.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-u.s.clock.After(u.s.opts.Backoff(attempt)):
		}
	}
}

func (u *uploader) noteError(err error, what string) {
	u.mu.Lock()
	u.hadError = true
	u.changedLocked()
	u.mu.Unlock()
	u.s.mu.Lock()
	u.s.st.UploadErrors++
	u.s.st.UploadRetries++
	u.s.mu.Unlock()
	u.s.log.Warn("upload failed; retrying", "file", what, "err", err)
}

func (u *uploader) getBuf() []byte {
	b := <-u.bufs
	if b == nil {
		b = make([]byte, u.segSize)
	}
	return b
}

func (u *uploader) putBuf(b []byte) { u.bufs <- b }

// readPrefix reads the first n bytes of the file at path into buf.
func readPrefix(path string, n int64, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := buf[:n]
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrSpool, path, err)
	}
	return b, nil
}

func (u *uploader) storeOnce(ctx context.Context, it *item) error {
	switch it.kind {
	case itemHistory:
		data, err := os.ReadFile(it.path)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSpool, err)
		}
		f, err := pgwal.ParseFileName(filepath.Base(it.path))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSpool, err)
		}
		if err := storeObject(ctx, u.r, repo.WALKey(f), data, true, &f, u.walConflict(repo.WALKey(f))); err != nil {
			return err
		}
	case itemFull:
		buf := u.getBuf()
		defer u.putBuf(buf)
		data, err := readPrefix(it.path, u.segSize, buf)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSpool, err)
		}
		if err := u.checkSegment(it, data); err != nil {
			return err
		}
		f, _ := pgwal.ParseFileName(pgwal.SegmentName(it.tli, it.segno, u.segSize))
		key := repo.WALKey(f)
		if err := storeObject(ctx, u.r, key, data, true, &f, u.walConflict(key)); err != nil {
			return err
		}
		if err := u.r.PutWALHead(ctx, f); err != nil {
			return err
		}
		if err := deletePartials(ctx, u.r, it.tli, pgwal.SegmentName(it.tli, it.segno, u.segSize), -1); err != nil {
			return err
		}
	case itemFinalPartial:
		if it.size > 0 {
			buf := u.getBuf()
			defer u.putBuf(buf)
			data, err := readPrefix(it.path, it.size, buf)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrSpool, err)
			}
			p := u.r.StreamPartialOf(it.tli, it.segno, it.size)
			if err := storeObject(ctx, u.r, p.Key, data, false, nil, nil); err != nil {
				return err
			}
			if err := deletePartials(ctx, u.r, it.tli, p.File.Name, it.size); err != nil {
				return err
			}
		}
	}
	return removeSpoolFile(it.path)
}

// checkSegment refuses a segment that cannot be this cluster's (a damaged
// spool): the same checks wal-push makes.
func (u *uploader) checkSegment(it *item, data []byte) error {
	h, err := pgwal.ParseLongPageHeader(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSpool, it.path, err)
	}
	if err := u.r.CheckCluster(h.SystemIdentifier, 0, int64(h.SegmentSize)); err != nil {
		return fmt.Errorf("%s: %w", it.path, err)
	}
	if want := pgwal.SegmentStart(it.segno, u.segSize); h.PageAddr != want {
		return fmt.Errorf("%w: %s starts at %s, its name says %s", ErrSpool, it.path, h.PageAddr, want)
	}
	return nil
}

// uploadPartial stores the fsynced prefix of the segment being received.
func (u *uploader) uploadPartial(ctx context.Context, now time.Time) {
	u.mu.Lock()
	c := u.cur
	last := u.last
	u.mu.Unlock()
	buf := u.getBuf()
	defer u.putBuf(buf)
	data, err := readPrefix(c.path, c.synced, buf)
	if errors.Is(err, fs.ErrNotExist) {
		// Completed and renamed meanwhile: the full segment is queued.
		u.mu.Lock()
		u.partialRetryAt = now.Add(u.s.opts.PartialInterval)
		u.mu.Unlock()
		return
	}
	p := u.r.StreamPartialOf(c.tli, c.segno, c.synced)
	name, key := p.File.Name, p.Key
	if err == nil {
		err = storeObject(ctx, u.r, key, data, false, nil, nil)
	}
	if err != nil {
		if isFatal(err) {
			u.s.log.Error("cannot upload streamed partial; stopping", "key", key, "err", err)
			u.fail(err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		u.noteError(err, key)
		u.mu.Lock()
		u.partialAttempt++
		u.partialRetryAt = now.Add(u.s.opts.Backoff(u.partialAttempt))
		u.mu.Unlock()
		return
	}
	// Older partials of the segment are now redundant.
	if last.tli == c.tli && last.segno == c.segno {
		for _, old := range last.partials {
			if err := u.r.RemoveStreamPartial(ctx, old); err != nil {
				u.s.log.Warn("cannot delete superseded streamed partial", "key", old.Key, "err", err)
			}
		}
	} else if err := deletePartials(ctx, u.r, c.tli, name, c.synced); err != nil {
		u.s.log.Warn("cannot delete superseded streamed partials", "segment", name, "err", err)
	}
	u.mu.Lock()
	u.last = lastPartial{tli: c.tli, segno: c.segno, valid: c.synced, at: now, partials: []repo.StreamPartial{p}}
	u.partialAttempt = 0
	u.partialRetryAt = time.Time{}
	u.changedLocked()
	u.mu.Unlock()
	u.s.noteUpload(pgwal.SegmentStart(c.segno, u.segSize) + pgwal.LSN(c.synced))
}

// deletePartials deletes the streamed partials of a segment holding fewer
// than below bytes (all of them when below < 0).
func deletePartials(ctx context.Context, r *repo.Repository, tli uint32, name string, below int64) error {
	ps, err := r.StreamPartials(ctx, tli, name)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if below >= 0 && p.Valid >= below {
			continue
		}
		if err := r.RemoveStreamPartial(ctx, p); err != nil {
			return fmt.Errorf("delete %s: %w", p.Key, err)
		}
	}
	return nil
}

// storeObject stores data under key with wal-push's semantics: an identical
// object already there is success, a different one is walpush.ErrConflict
// and is left untouched. precheck looks before sealing (worth it for keys
// that are often already stored). For a WAL file (f not nil) a different
// object is not an error: the data is stored beside it as an alternate copy
// (repo.PutWALAlternate), as wal-push does, so that nothing planted under a
// future name can stop the streamer; conflict is told where.
func storeObject(ctx context.Context, r *repo.Repository, key string, data []byte, precheck bool, f *pgwal.FileName, conflict func(why, alt string)) error {
	sum := sha256.Sum256(data)
	compare := func() error {
		same, why, err := r.StoredMatches(ctx, key, int64(len(data)), func() [32]byte { return sum })
		if err != nil {
			return err
		}
		if same {
			return nil
		}
		if f != nil {
			alt, err := r.PutWALAlternate(ctx, *f, data, sum)
			if err == nil {
				conflict(why, alt)
				return nil
			}
			if !errors.Is(err, repo.ErrAlternateTaken) {
				return err
			}
		}
		return fmt.Errorf("%w: %s in %s: %s; the stored copy was left untouched — check that two clusters do not share this repository", walpush.ErrConflict, key, r, why)
	}
	if precheck {
		err := compare()
		if err == nil || !storage.IsNotExist(err) {
			return err
		}
	}
	_, err := r.Put(ctx, key, data, storage.PutOptions{IfAbsent: true})
	if storage.IsExist(err) {
		return compare()
	}
	return err
}

// walConflict reports a WAL file stored beside a different object under
// its name: an error in the log and in the upload error count.
func (u *uploader) walConflict(key string) func(why, alt string) {
	return func(why, alt string) {
		u.s.mu.Lock()
		u.s.st.UploadErrors++
		u.s.mu.Unlock()
		u.s.log.Error("WAL conflict: a different object is already archived under this name; stored this file beside it (walvault check and verify report it; restore uses the copy that verifies)",
			"existing", key, "why", why, "stored_as", alt)
	}
}

func isFatal(err error) bool {
	return errors.Is(err, walpush.ErrConflict) || errors.Is(err, ErrSpool) ||
		errors.Is(err, repo.ErrClusterMismatch) || errors.Is(err, ErrSlotMissing) ||
		errors.Is(err, repo.ErrNoRecipients) || errors.Is(err, repo.ErrUnsupportedFormat)
}
