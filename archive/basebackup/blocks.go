package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// Block backups (repo/blocks.go): each tar stream the server sends is read
// member by member; every regular file is cut into 8 KiB blocks, named by
// their keyed hash, and only blocks the previous backup (or this one) did
// not store go into new packs. The file list, stored last before the
// manifest, says where every block of every file is.

// packTarget is the size at which a pack is closed and stored.
const packTarget = 16 << 20

// maxSeen bounds the index of blocks this backup has stored already (for
// repeats within one backup, such as zeroed pages): past it, repeats are
// stored again, which costs space, never correctness. About 100 bytes
// each: at most 26 MiB.
const maxSeen = 1 << 18

// maxPending bounds the entries, and their blocks, waiting for the
// sealers before they go to the file list (40 bytes a block: about
// 10 MiB); past it, reading waits. One entry is held whole, however large: a relation segment is
// at most 1 GiB, 131,072 blocks.
const maxPending = 1 << 18

type blockWriter struct {
	ctx    context.Context
	fail   func(error)
	r      *repo.Repository
	id     string
	log    *slog.Logger
	prev   *repo.BlockIndex
	hasher *repo.BlockHasher
	// inc is set for an incremental backup (PostgreSQL 17+).
	inc *incremental
	// sizeDelta: how much longer the current archive's tar stream is as
	// restore writes it than as the server sent it (INCREMENTAL files
	// rebuilt whole, backup_label rewritten).
	sizeDelta int64
	// seen: blocks this backup stored, by id.
	seen map[repo.BlockID]seenRef

	// The file list is written entry by entry (to a temporary file) once
	// the sealers have stored an entry's new blocks: pending are the
	// entries read and not yet written, in order, holding pendingBlocks.
	flw *repo.FileListWriter
	// The pieces of the list's runs (storePiece): named with runHasher,
	// new ones in listPack, those of this list by id.
	runHasher     *repo.BlockHasher
	listPack      *repo.PackWriter
	pieces        map[repo.BlockID]repo.BlockRef
	frame         [][]byte // new pieces of the frame being gathered
	frameAt       []int    // their indexes in storePieces' refs
	repeat        [][2]int // pieces repeating one of the frame: index, frame position
	pending       []*pendingEntry
	pendingBlocks int
	// Batches of new blocks are numbered: sent were handed to sealers,
	// the one being gathered is number sent; inflight are those sent
	// and not known done, in order; every batch before doneSeq is done.
	sent, doneSeq int64
	inflight      []sentBatch

	stats      repo.BlockStats
	lastShared frameKey

	// Sealers compress, encrypt and pack new blocks, each into packs of
	// its own, and store full packs.
	jobs  chan sentBatch
	batch []sealJob
	bufs  chan []byte
	wg    sync.WaitGroup
	seq   atomic.Int64
	mu    sync.Mutex // guards packs, packIdx and stats.NewBytes
	// packs are the packs the file list references, indexed by packIdx.
	packs   []string
	packIdx map[string]uint32

	// The archive being read.
	pw   *bufPipe
	done chan error
}

// sealBatch is how many new blocks go to one sealer at a time: runs of
// blocks a restore reads in one request stay together in one pack.
const sealBatch = 256

// sealJob is one new block: its content (a buffer of bufs) and the
// reference to fill in.
type sealJob struct {
	data []byte
	ref  *repo.BlockRef
}

// sentBatch is a batch of new blocks handed to a sealer, which closes
// done once it filled in their references (or gave up: then the backup
// failed).
type sentBatch struct {
	jobs []sealJob
	seq  int64
	done chan struct{}
}

// seenRef is a block this backup stored: where (loc), or, while the entry
// holding its reference is pending, that reference (ref) and the batch
// that fills it in (seq).
type seenRef struct {
	ref *repo.BlockRef
	seq int64
	loc repo.BlockRef
}

// pendingEntry is an entry waiting for its references: its new blocks'
// and those its repeated blocks copy (fix) are filled in once every batch
// up to need is done (need -1: none).
type pendingEntry struct {
	e    repo.FileEntry
	need int64
	fix  []fixup
}

type fixup struct{ dst, src *repo.BlockRef }

type frameKey struct {
	pack string
	off  int64
}

// newBlockWriter starts the sealers. prev indexes the blocks the
// repository already holds (may be nil); the writer closes it.
func newBlockWriter(ctx context.Context, fail func(error), r *repo.Repository, id string, prev *repo.BlockIndex, workers int, log *slog.Logger) (*blockWriter, error) {
	h, err := r.NewBlockHasher()
	if err != nil {
		prev.Close()
		return nil, err
	}
	rh, err := r.NewRunHasher()
	if err != nil {
		prev.Close()
		return nil, err
	}
	flw, err := repo.NewFileListWriter(id, h.Key)
	if err != nil {
		prev.Close()
		return nil, err
	}
	workers = max(1, workers)
	w := &blockWriter{ctx: ctx, fail: fail, r: r, id: id, log: log, prev: prev, hasher: h,
		seen: map[repo.BlockID]seenRef{}, packIdx: map[string]uint32{}, flw: flw,
		runHasher: rh, pieces: map[repo.BlockID]repo.BlockRef{},
		jobs: make(chan sentBatch, 2),
		bufs: make(chan []byte, (2+2*workers)*sealBatch),
	}
	flw.UseRuns(w.storePieces, w.packName)
	w.wg.Add(workers)
	for range workers {
		go w.seal()
	}
	return w, nil
}

// seal packs new blocks until the jobs end, then stores its last pack.
func (w *blockWriter) seal() {
	defer w.wg.Done()
	var pack *repo.PackWriter
	buf := make([]byte, 0, packTarget+64<<10)
	store := func() {
		if pack == nil {
			return
		}
		n, err := w.r.PutPack(w.ctx, pack)
		if err != nil {
			w.fail(fmt.Errorf("store pack: %w", err))
		}
		w.mu.Lock()
		w.stats.NewBytes += n
		w.mu.Unlock()
		buf, pack = pack.Bytes(), nil
	}
	blocks := make([][]byte, 0, repo.FrameBlocks)
	for sb := range w.jobs {
		batch := sb.jobs
		// Frames of up to FrameBlocks consecutive blocks.
		for len(batch) > 0 && w.ctx.Err() == nil {
			frame := batch[:min(len(batch), repo.FrameBlocks)]
			batch = batch[len(frame):]
			if pack == nil {
				var err error
				if pack, err = w.r.NewPackWriter(w.id, int(w.seq.Add(1)-1), buf[:0]); err != nil {
					w.fail(err)
					break
				}
			}
			blocks = blocks[:0]
			for _, j := range frame {
				blocks = append(blocks, j.data)
			}
			off, n, err := pack.AddFrame(blocks)
			if err != nil {
				w.fail(err)
				break
			}
			idx := w.packIndex(pack.Key())
			for k, j := range frame {
				*j.ref = repo.BlockRef{ID: j.ref.ID, Pack: idx, Offset: off, Length: int32(n), Index: uint8(k)}
				select {
				case w.bufs <- j.data[:0]:
				default:
				}
			}
			if pack.Size() >= packTarget {
				store()
			}
		}
		close(sb.done)
	}
	if w.ctx.Err() == nil {
		store()
	}
}

// begin starts reading one tar archive.
func (w *blockWriter) begin(name string) {
	pw := newBufPipe()
	pr := pw
	w.pw, w.done = pw, make(chan error, 1)
	w.flw.BeginArchive(name)
	go func() {
		err := w.readArchive(name, pr)
		if err == nil {
			err = w.sendBatch()
		}
		if err == nil {
			err = w.flush(-1)
		}
		if err == nil {
			// Padding after the end-of-archive marker.
			_, err = io.Copy(io.Discard, pr)
		}
		pr.CloseWithError(err)
		w.done <- err
	}()
}

func (w *blockWriter) write(p []byte) error {
	return w.pw.write(w.ctx, p)
}

// end waits until the archive is read.
func (w *blockWriter) end() error {
	w.pw.close(nil)
	err := <-w.done
	w.pw, w.done = nil, nil
	return err
}

// abort stops reading the current archive, if any.
func (w *blockWriter) abort(err error) {
	if w.pw != nil {
		w.pw.CloseWithError(err)
		<-w.done
		w.pw, w.done = nil, nil
	}
}

func (w *blockWriter) readArchive(name string, r io.Reader) error {
	tr := tar.NewReader(r)
	buf := make([]byte, repo.BlockSize)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", name, err)
		}
		pe := &pendingEntry{need: -1, e: repo.FileEntry{Name: hdr.Name, Typeflag: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			ModTime: hdr.ModTime.Unix(), Linkname: hdr.Linkname, Size: hdr.Size}}
		e := &pe.e
		if e.Mode < 0 || e.UID < 0 || e.GID < 0 || e.Size < 0 {
			return fmt.Errorf("archive %s: member %q with a negative field", name, hdr.Name)
		}
		if !e.IsRegular() {
			e.Size = 0
		}
		var src io.Reader = tr
		if w.inc != nil && e.IsRegular() {
			if name == "base.tar" && hdr.Name == "backup_label" {
				if e.Size > maxIncrementalLabel {
					return fmt.Errorf("archive %s: backup_label of %d bytes", name, e.Size)
				}
				text, err := io.ReadAll(tr)
				if err != nil {
					return fmt.Errorf("archive %s: %s: %w", name, hdr.Name, err)
				}
				w.inc.label = stripIncrementalLabel(text)
				w.sizeDelta += tarPadded(int64(len(w.inc.label))) - tarPadded(e.Size)
				e.Size, src = int64(len(w.inc.label)), bytes.NewReader(w.inc.label)
			} else if target, ok := incrementalTarget(hdr.Name); ok {
				if err := w.incrementalFile(name, target, tr, pe, buf); err != nil {
					return fmt.Errorf("archive %s: %s: %w", name, hdr.Name, err)
				}
				src = nil
			}
		}
		if e.IsRegular() && src != nil {
			// Exactly this many: the references' addresses stay put
			// while sealers fill them in.
			e.Blocks = make([]repo.BlockRef, 0, (e.Size+repo.BlockSize-1)/repo.BlockSize)
			for left := e.Size; left > 0; {
				n := int(min(left, repo.BlockSize))
				if _, err := io.ReadFull(src, buf[:n]); err != nil {
					return fmt.Errorf("archive %s: %s: %w", name, hdr.Name, err)
				}
				e.Blocks = append(e.Blocks, repo.BlockRef{})
				if err := w.block(buf[:n], &e.Blocks[len(e.Blocks)-1], pe); err != nil {
					return err
				}
				left -= int64(n)
			}
		}
		w.pending = append(w.pending, pe)
		w.pendingBlocks += len(e.Blocks)
		if err := w.flush(maxPending); err != nil {
			return err
		}
	}
}

// incrementalFile turns the INCREMENTAL file being read from r into the
// entry of the whole file target, of archive: the blocks the server sent
// are named (and stored when new) as any other, the others are the prior
// backup's (see incremental.go).
func (w *blockWriter) incrementalFile(archive, target string, r io.Reader, pe *pendingEntry, buf []byte) error {
	e := &pe.e
	sent, truncation, err := readIncrementalHeader(r, e.Size)
	if err != nil {
		return err
	}
	length := truncation
	if n := len(sent); n > 0 && sent[n-1]+1 > length {
		length = sent[n-1] + 1
	}
	prior, ok, err := w.inc.prior.Blocks(archive, target, w.inc.scratch)
	if err != nil {
		return err
	}
	w.inc.scratch = prior
	if !ok {
		return fmt.Errorf("the previous backup %s has no file %s to take its unchanged blocks from (its file list and its backup_manifest disagree; run this backup with --read-all, and walvault verify)", w.inc.priorID, target)
	}
	w.sizeDelta += tarPadded(int64(length)*repo.BlockSize) - tarPadded(e.Size)
	e.Name, e.Size = target, int64(length)*repo.BlockSize
	e.Blocks = make([]repo.BlockRef, length)
	next := 0
	var lastPack string
	var lastIdx uint32
	for b := range length {
		ref := &e.Blocks[b]
		switch {
		case next < len(sent) && sent[next] == b:
			next++
			if _, err := io.ReadFull(r, buf[:repo.BlockSize]); err != nil {
				return err
			}
			if err := w.block(buf[:repo.BlockSize], ref, pe); err != nil {
				return err
			}
		case b < truncation && int(b) < len(prior):
			pb := prior[b]
			w.stats.Blocks++
			w.stats.Bytes += repo.BlockSize
			w.stats.SharedBlocks++
			if f := (frameKey{pb.Pack, pb.Offset}); f != w.lastShared {
				w.lastShared = f
				w.stats.SharedBytes += int64(pb.Length)
			}
			if pb.Pack != lastPack { // runs of blocks share their pack
				lastPack, lastIdx = pb.Pack, w.packIndex(pb.Pack)
			}
			*ref = repo.BlockRef{ID: pb.ID, Pack: lastIdx, Offset: pb.Offset, Length: pb.Length, Index: pb.Index}
		default:
			// Past the truncation length, or past the end of the
			// prior file: zeros, as pg_combinebackup writes them.
			if err := w.block(zeroBlock[:], ref, pe); err != nil {
				return err
			}
		}
	}
	w.inc.sizes[manifestPath(archive, target)] = e.Size
	w.inc.rebuilt++
	w.inc.sent += int64(len(sent))
	return nil
}

// zeroBlock is a block of zeros (never written to: block copies what it
// stores).
var zeroBlock [repo.BlockSize]byte

// tarPadded is the room a member of size bytes takes in a tar stream,
// after its header.
func tarPadded(size int64) int64 { return (size + 511) / 512 * 512 }

// flush writes the pending entries whose references are all filled in
// to the file list, in order; while more than limit entries and blocks
// are pending (limit -1: any), it waits for the sealers.
func (w *blockWriter) flush(limit int) error {
	for len(w.pending) > 0 {
		pe := w.pending[0]
		ready, err := w.batchesDone(pe.need, len(w.pending)+w.pendingBlocks > limit)
		if err != nil || !ready {
			return err
		}
		for _, f := range pe.fix {
			*f.dst = *f.src
		}
		if err := w.flw.Add(&pe.e); err != nil {
			return err
		}
		// The references stay here no longer: seen keeps where.
		for i := range pe.e.Blocks {
			ref := &pe.e.Blocks[i]
			if s, ok := w.seen[ref.ID]; ok && s.ref == ref {
				w.seen[ref.ID] = seenRef{loc: *ref}
			}
		}
		w.pendingBlocks -= len(pe.e.Blocks)
		w.pending[0] = nil
		w.pending = w.pending[1:]
	}
	return nil
}

// batchesDone reports whether every batch up to seq is done; with wait,
// it sends the batch being gathered if need be and waits.
func (w *blockWriter) batchesDone(seq int64, wait bool) (bool, error) {
	if seq < w.doneSeq {
		return true, nil
	}
	if seq >= w.sent {
		if !wait {
			return false, nil
		}
		if err := w.sendBatch(); err != nil {
			return false, err
		}
	}
	for len(w.inflight) > 0 && w.inflight[0].seq <= seq {
		b := w.inflight[0]
		if wait {
			select {
			case <-b.done:
			case <-w.ctx.Done():
				return false, context.Cause(w.ctx)
			}
		} else {
			select {
			case <-b.done:
			default:
				return false, nil
			}
		}
		// A sealer that gave up closes done too.
		if err := w.ctx.Err(); err != nil {
			return false, context.Cause(w.ctx)
		}
		w.inflight[0] = sentBatch{}
		w.inflight = w.inflight[1:]
		w.doneSeq = b.seq + 1
	}
	return seq < w.doneSeq, nil
}

// block names one block and fills in ref: at once when the repository
// has it, else once a sealer has stored it.
func (w *blockWriter) block(b []byte, ref *repo.BlockRef, pe *pendingEntry) error {
	id := w.hasher.ID(b)
	w.stats.Blocks++
	w.stats.Bytes += int64(len(b))
	ref.ID = id
	if s, ok := w.seen[id]; ok {
		w.stats.RepeatedBlocks++
		if s.ref == nil {
			*ref = s.loc
		} else {
			pe.fix = append(pe.fix, fixup{dst: ref, src: s.ref})
			pe.need = max(pe.need, s.seq)
		}
		return nil
	}
	if w.prev != nil {
		if loc, ok := w.prev.Lookup(id); ok {
			w.stats.SharedBlocks++
			// A frame's stored bytes count once, when its first
			// shared block is met (its blocks come one after another).
			if f := (frameKey{loc.Pack, loc.Offset}); f != w.lastShared {
				w.lastShared = f
				w.stats.SharedBytes += int64(loc.Length)
			}
			*ref = repo.BlockRef{ID: id, Pack: w.packIndex(loc.Pack), Offset: loc.Offset, Length: loc.Length, Index: loc.Index}
			if len(w.seen) < maxSeen {
				w.seen[id] = seenRef{loc: *ref}
			}
			return nil
		}
	}
	if len(w.seen) < maxSeen {
		w.seen[id] = seenRef{ref: ref, seq: w.sent}
	}
	pe.need = w.sent
	w.stats.NewBlocks++
	var data []byte
	select {
	case data = <-w.bufs:
	default:
		data = make([]byte, 0, repo.BlockSize)
	}
	w.batch = append(w.batch, sealJob{data: append(data[:0], b...), ref: ref})
	if len(w.batch) == sealBatch {
		return w.sendBatch()
	}
	return nil
}

// sendBatch hands the new blocks gathered so far to a sealer.
func (w *blockWriter) sendBatch() error {
	if len(w.batch) == 0 {
		return nil
	}
	sb := sentBatch{jobs: w.batch, seq: w.sent, done: make(chan struct{})}
	select {
	case w.jobs <- sb:
		w.batch = make([]sealJob, 0, sealBatch)
		w.inflight = append(w.inflight, sentBatch{seq: sb.seq, done: sb.done})
		w.sent++
		return nil
	case <-w.ctx.Done():
		return context.Cause(w.ctx)
	}
}

func (w *blockWriter) packIndex(key string) uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, ok := w.packIdx[key]
	if !ok {
		i = uint32(len(w.packs))
		w.packIdx[key] = i
		w.packs = append(w.packs, key)
	}
	return i
}

// finish waits for the sealers (which store their last packs) and stores
// the file list. It must be called once, also after a failure (with ok
// false: then nothing more is stored).
func (w *blockWriter) finish(ok bool) (repo.ObjectInfo, error) {
	if !ok {
		w.fail(errors.New("backup failed"))
	}
	close(w.jobs)
	w.wg.Wait()
	if ok && w.ctx.Err() == nil {
		if err := w.storeListPack(); err != nil {
			w.fail(err)
		}
	}
	if w.prev != nil {
		if err := w.prev.Err(); err != nil {
			w.log.Warn("the previous backup's block index could not be read: some blocks it has were stored again", "err", err)
		}
		w.prev.Close()
		w.prev = nil
	}
	defer w.flw.Close()
	if !ok || w.ctx.Err() != nil {
		return repo.ObjectInfo{}, context.Cause(w.ctx)
	}
	if len(w.pending) > 0 || len(w.batch) > 0 {
		return repo.ObjectInfo{}, errors.New("block backup: the file list is finished with blocks pending")
	}
	info, err := w.r.PutFileListFrom(w.ctx, w.flw, w.packs)
	if err != nil {
		return info, fmt.Errorf("store file list of backup %s: %w", w.id, err)
	}
	return info, nil
}

// storePieces names the pieces of a file's list runs (repo.FileListWriter's
// UseRuns) and fills in their references: a piece the previous backup
// stored (a run of a file that did not change) is named again, new ones
// go, in frames of up to 16, into a pack of the backup's that writers can
// read. It runs on the goroutine that adds entries to the list.
func (w *blockWriter) storePieces(pieces [][]byte, refs []repo.BlockRef) error {
	w.frame, w.frameAt = w.frame[:0], w.frameAt[:0]
	flush := func() error {
		if len(w.frame) == 0 {
			return nil
		}
		if w.listPack == nil {
			var err error
			if w.listPack, err = w.r.NewListPackWriter(w.id, int(w.seq.Add(1)-1)); err != nil {
				return err
			}
		}
		off, n, err := w.listPack.AddFrame(w.frame)
		if err != nil {
			return err
		}
		idx := w.packIndex(w.listPack.Key())
		for k, i := range w.frameAt {
			refs[i] = repo.BlockRef{ID: refs[i].ID, Pack: idx, Offset: off, Length: int32(n), Index: uint8(k)}
			w.pieces[refs[i].ID] = refs[i]
		}
		w.frame, w.frameAt = w.frame[:0], w.frameAt[:0]
		if w.listPack.Size() >= packTarget {
			return w.storeListPack()
		}
		return nil
	}
	for i, piece := range pieces {
		id := w.runHasher.ID(piece)
		refs[i].ID = id
		if loc, ok := w.pieces[id]; ok {
			refs[i] = loc
			continue
		}
		if w.prev != nil {
			if loc, ok := w.prev.Lookup(id); ok {
				refs[i] = repo.BlockRef{ID: id, Pack: w.packIndex(loc.Pack), Offset: loc.Offset, Length: loc.Length, Index: loc.Index}
				w.stats.ListSharedPieces++
				w.pieces[id] = refs[i]
				continue
			}
		}
		if slices.ContainsFunc(w.frameAt, func(j int) bool { return refs[j].ID == id }) {
			// The same piece twice in one frame: stored once.
			w.repeat = append(w.repeat, [2]int{i, slices.IndexFunc(w.frameAt, func(j int) bool { return refs[j].ID == id })})
			continue
		}
		w.stats.ListNewPieces++
		w.frame = append(w.frame, piece)
		w.frameAt = append(w.frameAt, i)
		if len(w.frame) == repo.FrameBlocks {
			if err := w.applyRepeats(refs, flush); err != nil {
				return err
			}
		}
	}
	return w.applyRepeats(refs, flush)
}

// applyRepeats flushes the frame being gathered, then gives each piece
// repeated within it the reference of its first copy.
func (w *blockWriter) applyRepeats(refs []repo.BlockRef, flush func() error) error {
	at := slices.Clone(w.frameAt)
	if err := flush(); err != nil {
		return err
	}
	for _, r := range w.repeat {
		refs[r[0]] = refs[at[r[1]]]
	}
	w.repeat = w.repeat[:0]
	return nil
}

// storeListPack stores the pack of new pieces, if any.
func (w *blockWriter) storeListPack() error {
	if w.listPack == nil {
		return nil
	}
	n, err := w.r.PutPack(w.ctx, w.listPack)
	if err != nil {
		return fmt.Errorf("store pack: %w", err)
	}
	w.mu.Lock()
	w.stats.NewBytes += n
	w.mu.Unlock()
	w.listPack = nil
	return nil
}

// packName returns the key of pack i of the list.
func (w *blockWriter) packName(i uint32) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.packs[i]
}

// previousBlocks finds the newest complete block backup (none: "", and
// the index is nil) — the one a new backup deduplicates against — and
// starts indexing its blocks in the background: wait returns the index
// (nil when the list cannot be used: then every block is stored again,
// which is always safe) and, withPrior, where each of its files' blocks
// are, for an incremental backup against it. The caller must call wait
// once, and close what it returns. Indexing overlaps with what the
// backup does meanwhile (the manifest sent to PostgreSQL 17, its
// checkpoint).
//
// First it pins backup self (repo.Pin) with the previous backup as its
// base, so that expire's sweep keeps every pack that file list
// references, and this backup's own packs, while it runs.
func previousBlocks(ctx context.Context, r *repo.Repository, self string, now time.Time, log *slog.Logger, withPrior bool) (string, func() (*repo.BlockIndex, *repo.PriorFiles, error), error) {
	id, err := r.LatestBlockBackup(ctx)
	if err != nil {
		return "", nil, err
	}
	if err := r.PutPin(ctx, repo.Pin{Backup: self, Base: id, Created: now.UTC()}); err != nil {
		return "", nil, fmt.Errorf("pin the backup's blocks: %w", err)
	}
	if id == "" {
		return "", func() (*repo.BlockIndex, *repo.PriorFiles, error) { return nil, nil, nil }, nil
	}
	type result struct {
		x     *repo.BlockIndex
		prior *repo.PriorFiles
		err   error
	}
	done := make(chan result, 1)
	go func() {
		x, prior, err := indexPrevious(ctx, r, id, log, withPrior)
		done <- result{x, prior, err}
	}()
	return id, func() (*repo.BlockIndex, *repo.PriorFiles, error) {
		res := <-done
		return res.x, res.prior, res.err
	}, nil
}

// indexPrevious indexes backup id's blocks for previousBlocks.
func indexPrevious(ctx context.Context, r *repo.Repository, id string, log *slog.Logger, withPrior bool) (*repo.BlockIndex, *repo.PriorFiles, error) {
	var (
		x     *repo.BlockIndex
		prior *repo.PriorFiles
		key   repo.ContentKeyID
		err   error
	)
	if withPrior {
		x, prior, key, err = r.FileListIndexPrior(ctx, id)
	} else {
		x, key, err = r.FileListIndex(ctx, id)
	}
	if err != nil {
		if ctx.Err() != nil || !(errors.Is(err, repo.ErrIntegrity) || errors.Is(err, repo.ErrWrongKey) || errors.Is(err, repo.ErrUnsupportedFormat) || storage.IsNotExist(err)) {
			return nil, nil, fmt.Errorf("read the file list of the previous backup %s: %w", id, err)
		}
		// Storing every block again is always safe.
		log.Warn("cannot read the previous backup's file list: this backup stores every block", "previous", id, "err", err)
		return nil, nil, nil
	}
	if h, err := r.NewBlockHasher(); err != nil {
		x.Close()
		prior.Close()
		return nil, nil, err
	} else if key != h.Key {
		x.Close()
		prior.Close()
		// Another root named those blocks (a root rotation): no id can
		// match.
		log.Warn("the previous backup's blocks were named under another content key (a root rotation): this backup stores every block", "previous", id, "its_key", key, "this_key", h.Key)
		return nil, nil, nil
	}
	log.Info("deduplicating against the previous backup", "previous", id, "blocks", x.Len())
	return x, prior, nil
}

// bufPipe carries an archive's bytes from the replication stream to the
// goroutine that cuts it into blocks, through a few buffers: unlike an
// io.Pipe, whose Write waits until the reader took the bytes, the stream
// goes on receiving while the blocks of the previous buffer are hashed.
type bufPipe struct {
	full chan []byte
	free chan []byte
	cur  []byte // the buffer being filled (writer side)
	// Reader side.
	rd   []byte
	back []byte // the buffer rd is a tail of
	mu   sync.Mutex
	err  error // set once: io.EOF after close(nil)
	quit chan struct{}
}

const (
	pipeBufSize = 256 << 10
	pipeBufs    = 8
)

func newBufPipe() *bufPipe {
	return &bufPipe{full: make(chan []byte, pipeBufs), free: make(chan []byte, pipeBufs+1), quit: make(chan struct{})}
}

// write copies p into the pipe, waiting for room.
func (p *bufPipe) write(ctx context.Context, b []byte) error {
	for len(b) > 0 {
		if p.cur == nil {
			select {
			case p.cur = <-p.free:
			default:
				p.cur = make([]byte, 0, pipeBufSize)
			}
		}
		n := min(len(b), cap(p.cur)-len(p.cur))
		p.cur = append(p.cur, b[:n]...)
		b = b[n:]
		if len(p.cur) == cap(p.cur) {
			if err := p.send(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *bufPipe) send(ctx context.Context) error {
	if len(p.cur) == 0 {
		return nil
	}
	select {
	case p.full <- p.cur:
		p.cur = nil
		return nil
	case <-p.quit:
		return p.closedErr()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (p *bufPipe) closedErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil || p.err == io.EOF {
		return io.ErrClosedPipe
	}
	return p.err
}

// close ends the writer's side: the reader reads what is buffered, then
// io.EOF.
func (p *bufPipe) close(ctx context.Context) {
	if ctx == nil {
		ctx = context.Background()
	}
	p.send(ctx)
	close(p.full)
}

// CloseWithError ends the reader's side (or, from the writer, both) with
// err.
func (p *bufPipe) CloseWithError(err error) error {
	if err == nil {
		err = io.ErrClosedPipe
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
		close(p.quit)
	}
	p.mu.Unlock()
	return nil
}

func (p *bufPipe) Read(b []byte) (int, error) {
	for len(p.rd) == 0 {
		if p.back != nil {
			select {
			case p.free <- p.back[:0]:
			default:
			}
			p.back = nil
		}
		select {
		case buf, ok := <-p.full:
			if !ok {
				return 0, io.EOF
			}
			p.rd, p.back = buf, buf
		case <-p.quit:
			return 0, p.closedErr()
		}
	}
	n := copy(b, p.rd)
	p.rd = p.rd[n:]
	return n, nil
}
