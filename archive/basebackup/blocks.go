package basebackup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
// stored again, which costs space, never correctness. About 60 bytes each:
// at most 16 MiB.
const maxSeen = 1 << 18

type blockWriter struct {
	ctx    context.Context
	fail   func(error)
	r      *repo.Repository
	id     string
	log    *slog.Logger
	prev   *repo.BlockIndex
	hasher *repo.BlockHasher
	// seen: blocks this backup stored, by id: the reference that holds
	// (or, while its sealer works, will hold) where. Repeats are fixed up
	// from it at the end.
	seen   map[repo.BlockID]*repo.BlockRef
	fixups []fixup

	fl         repo.FileList
	stats      repo.BlockStats
	lastShared frameKey

	// Sealers compress, encrypt and pack new blocks, each into packs of
	// its own, and store full packs.
	jobs  chan []sealJob
	batch []sealJob
	bufs  chan []byte
	wg    sync.WaitGroup
	seq   atomic.Int64
	mu    sync.Mutex // guards fl.Packs, packIdx and stats.NewBytes
	// packIdx indexes fl.Packs.
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

type fixup struct{ dst, src *repo.BlockRef }

type frameKey struct {
	pack string
	off  int64
}

// newBlockWriter starts the sealers. prev indexes the blocks the
// repository already holds (may be empty).
func newBlockWriter(ctx context.Context, fail func(error), r *repo.Repository, id string, prev *repo.BlockIndex, workers int, log *slog.Logger) (*blockWriter, error) {
	h, err := r.NewBlockHasher()
	if err != nil {
		return nil, err
	}
	workers = max(1, workers)
	w := &blockWriter{ctx: ctx, fail: fail, r: r, id: id, log: log, prev: prev, hasher: h,
		seen: map[repo.BlockID]*repo.BlockRef{}, packIdx: map[string]uint32{},
		fl:   repo.FileList{BackupID: id, ContentKey: h.Key},
		jobs: make(chan []sealJob, 2),
		bufs: make(chan []byte, (2+2*workers)*sealBatch),
	}
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
	for batch := range w.jobs {
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
	w.fl.Archives = append(w.fl.Archives, repo.FileArchive{Name: name})
	a := &w.fl.Archives[len(w.fl.Archives)-1]
	go func() {
		err := w.readArchive(a, pr)
		if err == nil {
			err = w.sendBatch()
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

func (w *blockWriter) readArchive(a *repo.FileArchive, r io.Reader) error {
	tr := tar.NewReader(r)
	buf := make([]byte, repo.BlockSize)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", a.Name, err)
		}
		e := repo.FileEntry{Name: hdr.Name, Typeflag: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			ModTime: hdr.ModTime.Unix(), Linkname: hdr.Linkname, Size: hdr.Size}
		if e.Mode < 0 || e.UID < 0 || e.GID < 0 || e.Size < 0 {
			return fmt.Errorf("archive %s: member %q with a negative field", a.Name, hdr.Name)
		}
		if !e.IsRegular() {
			e.Size = 0
		}
		if e.IsRegular() {
			// Exactly this many: the references' addresses stay put
			// while sealers fill them in.
			e.Blocks = make([]repo.BlockRef, 0, (e.Size+repo.BlockSize-1)/repo.BlockSize)
			for left := e.Size; left > 0; {
				n := int(min(left, repo.BlockSize))
				if _, err := io.ReadFull(tr, buf[:n]); err != nil {
					return fmt.Errorf("archive %s: %s: %w", a.Name, hdr.Name, err)
				}
				e.Blocks = append(e.Blocks, repo.BlockRef{})
				if err := w.block(buf[:n], &e.Blocks[len(e.Blocks)-1]); err != nil {
					return err
				}
				left -= int64(n)
			}
		}
		a.Entries = append(a.Entries, e)
	}
}

// block names one block and fills in ref: at once when the repository
// has it, else once a sealer has stored it.
func (w *blockWriter) block(b []byte, ref *repo.BlockRef) error {
	id := w.hasher.ID(b)
	w.stats.Blocks++
	w.stats.Bytes += int64(len(b))
	ref.ID = id
	if src, ok := w.seen[id]; ok {
		w.stats.RepeatedBlocks++
		w.fixups = append(w.fixups, fixup{dst: ref, src: src})
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
				w.seen[id] = ref
			}
			return nil
		}
	}
	if len(w.seen) < maxSeen {
		w.seen[id] = ref
	}
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
	select {
	case w.jobs <- w.batch:
		w.batch = make([]sealJob, 0, sealBatch)
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
		i = uint32(len(w.fl.Packs))
		w.packIdx[key] = i
		w.fl.Packs = append(w.fl.Packs, key)
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
	if !ok || w.ctx.Err() != nil {
		return repo.ObjectInfo{}, context.Cause(w.ctx)
	}
	for _, f := range w.fixups {
		*f.dst = *f.src
	}
	info, err := w.r.PutFileList(w.ctx, &w.fl)
	if err != nil {
		return info, fmt.Errorf("store file list of backup %s: %w", w.id, err)
	}
	return info, nil
}

// previousBlocks indexes the blocks of the newest complete block backup
// (nil when there is none): the one a new backup deduplicates against.
//
// First it pins backup self (repo.Pin) with the previous backup as its
// base, so that expire's sweep keeps every pack that file list
// references, and this backup's own packs, while it runs.
func previousBlocks(ctx context.Context, r *repo.Repository, self string, now time.Time, log *slog.Logger) (*repo.BlockIndex, string, error) {
	id, err := r.LatestBlockBackup(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := r.PutPin(ctx, repo.Pin{Backup: self, Base: id, Created: now.UTC()}); err != nil {
		return nil, "", fmt.Errorf("pin the backup's blocks: %w", err)
	}
	if id == "" {
		return nil, "", nil
	}
	fl, err := r.FileList(ctx, id)
	if err != nil {
		if ctx.Err() != nil || !(errors.Is(err, repo.ErrIntegrity) || errors.Is(err, repo.ErrWrongKey) || errors.Is(err, repo.ErrUnsupportedFormat) || storage.IsNotExist(err)) {
			return nil, "", fmt.Errorf("read the file list of the previous backup %s: %w", id, err)
		}
		// Storing every block again is always safe.
		log.Warn("cannot read the previous backup's file list: this backup stores every block", "previous", id, "err", err)
		return nil, "", nil
	}
	if h, err := r.NewBlockHasher(); err != nil {
		return nil, "", err
	} else if fl.ContentKey != h.Key {
		// Another root named those blocks (a root rotation): no id can
		// match.
		log.Warn("the previous backup's blocks were named under another content key (a root rotation): this backup stores every block", "previous", id, "its_key", fl.ContentKey, "this_key", h.Key)
		return nil, "", nil
	}
	x, err := repo.NewBlockIndex(fl)
	if err != nil {
		return nil, "", err
	}
	log.Info("deduplicating against the previous backup", "previous", id, "blocks", x.Len())
	return x, id, nil
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
