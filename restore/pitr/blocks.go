package pitr

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// Restore of block backups (repo/blocks.go). The file list gives every
// member of each tar stream and where its blocks are; the stream is rebuilt
// from it and extracted exactly like a chunked archive, so that one
// extractor, with its path and link checks, writes every backup. Blocks
// are fetched ahead by Workers goroutines, neighbouring blocks of one pack
// in one ranged read.

// Bounds of one read: stored bytes and blocks (the plaintext of a read is
// at most maxReadBlocks × 8 KiB, however well its blocks compressed).
const (
	maxReadBytes  = 4 << 20
	maxReadBlocks = 512
)

// blockRead is one ranged read of neighbouring blocks of one pack.
type blockRead struct {
	pack   string
	refs   []repo.BlockRef
	result chan blockResult
}

type blockResult struct {
	blocks [][]byte
	err    error
}

// packCache opens each pack once.
type packCache struct {
	r     *repo.Repository
	mu    sync.Mutex
	packs map[string]*packOnce
	// frames keeps the last frames opened: a backup's changed blocks sit
	// in frames of their own between frames of older backups, so a restore
	// in file order comes back to a frame several times.
	frames    map[frameKey][][]byte
	order     []frameKey
	maxFrames int
}

type frameKey struct {
	pack string
	off  int64
}

// defaultCachedFrames bounds the frame cache: 256 frames of at most
// 128 KiB of plaintext.
const defaultCachedFrames = 256

func newPackCache(r *repo.Repository) *packCache {
	return &packCache{r: r, packs: map[string]*packOnce{}, frames: map[frameKey][][]byte{}, maxFrames: defaultCachedFrames}
}

func (c *packCache) frame(k frameKey) ([][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.frames[k]
	return f, ok
}

func (c *packCache) keepFrame(k frameKey, f [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.frames[k]; ok {
		return
	}
	for len(c.order) >= c.maxFrames {
		delete(c.frames, c.order[0])
		c.order = c.order[1:]
	}
	c.frames[k] = f
	c.order = append(c.order, k)
}

type packOnce struct {
	once sync.Once
	p    *repo.Pack
	err  error
}

func (c *packCache) open(ctx context.Context, key string) (*repo.Pack, error) {
	c.mu.Lock()
	po := c.packs[key]
	if po == nil {
		po = &packOnce{}
		c.packs[key] = po
	}
	c.mu.Unlock()
	po.once.Do(func() { po.p, po.err = c.r.OpenPack(ctx, key) })
	return po.p, po.err
}

// blockArchive produces the tar stream of one block archive.
type blockArchive struct {
	ctx      context.Context
	cancel   context.CancelFunc
	backupID string
	// fl: the pack table and content key; open and name: the archive's
	// entries, read as they are needed.
	fl       *repo.FileList
	open     *repo.OpenFileList
	name     string
	cache    *packCache
	workers  int
	pr       *io.PipeReader
	wg       sync.WaitGroup
	progress func(n int)
	r        *repo.Repository
	// hashErr is why the blocks of a repository without encryption
	// cannot be checked against their ids (blockChecker).
	hashErr error
}

// newBlockArchiveReader starts rebuilding archive name of fl; read the
// tar stream from it, then Close it. The entries are read from fl as the
// stream goes, never all held in memory.
func newBlockArchiveReader(ctx context.Context, r *repo.Repository, cache *packCache, fl *repo.OpenFileList, name string, workers int, progress func(int)) *blockArchive {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	b := &blockArchive{ctx: ctx, cancel: cancel, r: r, backupID: fl.BackupID, fl: fl.FileList, open: fl, name: name, cache: cache, workers: max(1, workers), pr: pr, progress: progress}
	_, b.hashErr = blockChecker(r, fl.FileList)
	reads := make(chan *blockRead, 2*b.workers)
	ordered := make(chan *blockRead, 2*b.workers)
	b.wg.Add(2 + b.workers)
	go func() { defer b.wg.Done(); b.plan(reads, ordered) }()
	for range b.workers {
		go func() { defer b.wg.Done(); b.fetch(reads) }()
	}
	go func() { defer b.wg.Done(); pw.CloseWithError(b.write(pw, ordered)) }()
	return b
}

func (b *blockArchive) Read(p []byte) (int, error) {
	n, err := b.pr.Read(p)
	if b.progress != nil && n > 0 {
		b.progress(n)
	}
	return n, err
}

// Close stops the goroutines.
func (b *blockArchive) Close() error {
	b.cancel()
	b.pr.CloseWithError(context.Canceled)
	b.wg.Wait()
	return nil
}

// blockChecker returns a hasher that checks fl's blocks against their ids
// (each fetching goroutine has its own): the file list is signed, so a
// block that authenticates but is not the one it names is refused. It
// returns nil where the repository is encrypted and this host has not the
// content key (the frames' AEAD, under a data key only a trusted writer
// wrapped, authenticates them). A repository without encryption keeps each
// pack's data key in the clear: whoever can write the bucket can seal a
// frame of their own under it, so there the ids are the only check and a
// restore without the content key is refused.
func blockChecker(r *repo.Repository, fl *repo.FileList) (*repo.BlockHasher, error) {
	h, err := r.BlockHasherFor(fl.ContentKey)
	if err == nil {
		return h, nil
	}
	if r.Config.Encrypted() {
		return nil, nil
	}
	return nil, fmt.Errorf("%w: backup %s is in a repository without encryption, where only the block ids prove its blocks, and checking them needs the content key: %w", repo.ErrNoIdentity, fl.BackupID, err)
}

// checkBlock refuses a block that is not the one ref (of pack) names.
func checkBlock(h *repo.BlockHasher, backupID, pack string, blk []byte, ref repo.BlockRef) error {
	if h != nil && h.ID(blk) != ref.ID {
		return fmt.Errorf("%w: backup %s: block %d of the frame at %d of pack %s does not match its id in the signed file list: damaged or replaced", repo.ErrIntegrity, backupID, ref.Index, ref.Offset, pack)
	}
	return nil
}

// plan cuts the archive's blocks, in order, into reads.
func (b *blockArchive) plan(reads, ordered chan<- *blockRead) {
	defer close(reads)
	defer close(ordered)
	var cur *blockRead
	var lastOff, end int64
	send := func() bool {
		if cur == nil {
			return true
		}
		cur.result = make(chan blockResult, 1)
		for _, ch := range []chan<- *blockRead{ordered, reads} {
			select {
			case ch <- cur:
			case <-b.ctx.Done():
				return false
			}
		}
		cur = nil
		return true
	}
	it := b.open.Entries(b.name, false)
	for {
		e, err := it.Next()
		if err != nil || e == nil {
			break // write reads the same entries and reports the error
		}
		for _, ref := range e.Blocks {
			if int(ref.Pack) >= len(b.fl.Packs) {
				continue // ParseFileList refuses this
			}
			pack := b.fl.Packs[ref.Pack]
			// Blocks of the same frame, or of the frame right after,
			// go in one read.
			if cur != nil && (cur.pack != pack || (ref.Offset != lastOff && ref.Offset != end) || len(cur.refs) == maxReadBlocks ||
				max(end, ref.Offset+int64(ref.Length))-cur.refs[0].Offset > maxReadBytes) {
				if !send() {
					return
				}
			}
			if cur == nil {
				cur = &blockRead{pack: pack}
			}
			cur.refs = append(cur.refs, ref)
			lastOff, end = ref.Offset, ref.Offset+int64(ref.Length)
		}
	}
	send()
}

func (b *blockArchive) fetch(reads <-chan *blockRead) {
	h, _ := blockChecker(b.r, b.fl) // the error is write's
	for rd := range reads {
		if b.ctx.Err() != nil {
			rd.result <- blockResult{err: b.ctx.Err()}
			continue
		}
		blocks, err := b.readBlocks(rd, h)
		rd.result <- blockResult{blocks: blocks, err: err}
	}
}

// readBlocks fetches the blocks of rd, checking each against its id with
// h (if not nil).
func (b *blockArchive) readBlocks(rd *blockRead, h *repo.BlockHasher) ([][]byte, error) {
	p, err := b.cache.open(b.ctx, rd.pack)
	if storage.IsNotExist(err) {
		return nil, fmt.Errorf("%w: pack %s, which backup %s needs, is missing from the repository (walvault verify lists every damaged object; --backup picks another backup)", repo.ErrIntegrity, rd.pack, b.backupID)
	}
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", b.backupID, err)
	}
	// The frames not in the cache, read in one request.
	frames := map[int64][][]byte{}
	lo, hi := int64(-1), int64(0)
	for _, ref := range rd.refs {
		if _, ok := frames[ref.Offset]; ok {
			continue
		}
		if f, ok := b.cache.frame(frameKey{rd.pack, ref.Offset}); ok {
			frames[ref.Offset] = f
			continue
		}
		if lo < 0 || ref.Offset < lo {
			lo = ref.Offset
		}
		hi = max(hi, ref.Offset+int64(ref.Length))
	}
	if lo >= 0 {
		data, err := p.ReadRange(b.ctx, lo, hi-lo)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", b.backupID, err)
		}
		for _, ref := range rd.refs {
			if _, ok := frames[ref.Offset]; ok || ref.Offset < lo || ref.Offset+int64(ref.Length) > hi {
				continue
			}
			at := ref.Offset - lo
			frame, err := p.OpenFrame(data[at:at+int64(ref.Length)], ref.Offset)
			if err != nil {
				return nil, fmt.Errorf("backup %s: %w", b.backupID, err)
			}
			frames[ref.Offset] = frame
			b.cache.keepFrame(frameKey{rd.pack, ref.Offset}, frame)
		}
	}
	out := make([][]byte, len(rd.refs))
	for i, ref := range rd.refs {
		frame := frames[ref.Offset]
		if int(ref.Index) >= len(frame) {
			return nil, fmt.Errorf("%w: backup %s: pack %s: the frame at %d holds %d blocks, the file list wants block %d", repo.ErrIntegrity, b.backupID, rd.pack, ref.Offset, len(frame), ref.Index)
		}
		out[i] = frame[ref.Index]
		if err := checkBlock(h, b.backupID, rd.pack, out[i], ref); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// write emits the tar stream: each member's header, then its blocks as
// they arrive in order.
func (b *blockArchive) write(w io.Writer, ordered <-chan *blockRead) error {
	if b.hashErr != nil {
		return b.hashErr
	}
	tw := tar.NewWriter(w)
	var pending [][]byte
	next := func() ([]byte, error) {
		for len(pending) == 0 {
			rd, ok := <-ordered
			if !ok {
				return nil, fmt.Errorf("%w: backup %s: file list ends before its blocks", repo.ErrIntegrity, b.backupID)
			}
			res := <-rd.result
			if res.err != nil {
				return nil, res.err
			}
			pending = res.blocks
		}
		blk := pending[0]
		pending = pending[1:]
		return blk, nil
	}
	it := b.open.Entries(b.name, true)
	for {
		e, err := it.Next()
		if err != nil {
			return fmt.Errorf("backup %s: %w", b.backupID, err)
		}
		if e == nil {
			break
		}
		hdr := &tar.Header{Name: e.Name, Typeflag: e.Typeflag, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			ModTime: time.Unix(e.ModTime, 0), Linkname: e.Linkname}
		if e.IsRegular() {
			hdr.Size = e.Size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%w: backup %s: member %q: %v", repo.ErrIntegrity, b.backupID, e.Name, err)
		}
		left := hdr.Size
		for range e.Blocks {
			blk, err := next()
			if err != nil {
				return err
			}
			want := min(left, repo.BlockSize)
			if int64(len(blk)) != want {
				return fmt.Errorf("%w: backup %s: a block of %s holds %d bytes, the file list says %d", repo.ErrIntegrity, b.backupID, e.Name, len(blk), want)
			}
			if _, err := tw.Write(blk); err != nil {
				return err
			}
			left -= want
		}
	}
	return tw.Close()
}

// fileListArchive returns the archive called name of fl (delta restore).
func fileListArchive(fl *repo.FileList, name string) *repo.FileArchive {
	for i := range fl.Archives {
		if fl.Archives[i].Name == name {
			return &fl.Archives[i]
		}
	}
	return nil
}
