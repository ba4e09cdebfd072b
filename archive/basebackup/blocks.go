package basebackup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
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
// stored again, which costs space, never correctness. About 80 bytes each.
const maxSeen = 1 << 20

type blockWriter struct {
	ctx    context.Context
	fail   func(error)
	r      *repo.Repository
	id     string
	log    *slog.Logger
	prev   *repo.BlockIndex
	seen   map[repo.BlockID]repo.BlockLoc
	hasher *repo.BlockHasher

	fl      repo.FileList
	packIdx map[string]uint32
	pack    *repo.PackWriter
	seq     int
	stats   repo.BlockStats

	// Uploads of finished packs.
	packs chan *repo.PackWriter
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error

	// The archive being read.
	pw   *io.PipeWriter
	done chan error
}

// newBlockWriter starts the pack uploaders. prev indexes the blocks the
// repository already holds (may be empty).
func newBlockWriter(ctx context.Context, fail func(error), r *repo.Repository, id string, prev *repo.BlockIndex, workers int, log *slog.Logger) (*blockWriter, error) {
	h, err := r.NewBlockHasher()
	if err != nil {
		return nil, err
	}
	w := &blockWriter{ctx: ctx, fail: fail, r: r, id: id, log: log, prev: prev, hasher: h,
		seen: map[repo.BlockID]repo.BlockLoc{}, packIdx: map[string]uint32{},
		fl:    repo.FileList{BackupID: id},
		packs: make(chan *repo.PackWriter, max(1, workers-1)),
	}
	w.wg.Add(max(1, workers))
	for range max(1, workers) {
		go w.upload()
	}
	return w, nil
}

func (w *blockWriter) upload() {
	defer w.wg.Done()
	for p := range w.packs {
		if w.ctx.Err() != nil {
			continue
		}
		if _, err := w.r.PutPack(w.ctx, p); err != nil {
			w.fail(fmt.Errorf("store pack: %w", err))
		}
	}
}

// begin starts reading one tar archive.
func (w *blockWriter) begin(name string) {
	pr, pw := io.Pipe()
	w.pw, w.done = pw, make(chan error, 1)
	w.fl.Archives = append(w.fl.Archives, repo.FileArchive{Name: name})
	a := &w.fl.Archives[len(w.fl.Archives)-1]
	go func() {
		err := w.readArchive(a, pr)
		if err == nil {
			// Padding after the end-of-archive marker.
			_, err = io.Copy(io.Discard, pr)
		}
		pr.CloseWithError(err)
		w.done <- err
	}()
}

func (w *blockWriter) write(p []byte) error {
	_, err := w.pw.Write(p)
	return err
}

// end waits until the archive is read.
func (w *blockWriter) end() error {
	w.pw.Close()
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
			e.Blocks = make([]repo.BlockRef, 0, (e.Size+repo.BlockSize-1)/repo.BlockSize)
			for left := e.Size; left > 0; {
				n := int(min(left, repo.BlockSize))
				if _, err := io.ReadFull(tr, buf[:n]); err != nil {
					return fmt.Errorf("archive %s: %s: %w", a.Name, hdr.Name, err)
				}
				ref, err := w.block(buf[:n])
				if err != nil {
					return err
				}
				e.Blocks = append(e.Blocks, ref)
				left -= int64(n)
			}
		}
		a.Entries = append(a.Entries, e)
	}
}

// block stores one block unless the repository has it, and says where it
// is.
func (w *blockWriter) block(b []byte) (repo.BlockRef, error) {
	id := w.hasher.ID(b)
	w.stats.Blocks++
	w.stats.Bytes += int64(len(b))
	if loc, ok := w.seen[id]; ok {
		w.stats.RepeatedBlocks++
		return repo.BlockRef{ID: id, Pack: w.packIndex(loc.Pack), Offset: loc.Offset, Length: loc.Length}, nil
	}
	if w.prev != nil {
		if loc, ok := w.prev.Lookup(id); ok {
			w.stats.SharedBlocks++
			w.stats.SharedBytes += int64(loc.Length)
			if len(w.seen) < maxSeen {
				w.seen[id] = loc
			}
			return repo.BlockRef{ID: id, Pack: w.packIndex(loc.Pack), Offset: loc.Offset, Length: loc.Length}, nil
		}
	}
	if w.pack == nil {
		p, err := w.r.NewPackWriter(w.id, w.seq, make([]byte, 0, packTarget+64<<10))
		if err != nil {
			return repo.BlockRef{}, err
		}
		w.pack = p
		w.seq++
	}
	off, n, err := w.pack.Add(b)
	if err != nil {
		return repo.BlockRef{}, err
	}
	loc := repo.BlockLoc{Pack: w.pack.Key(), Offset: off, Length: int32(n)}
	if len(w.seen) < maxSeen {
		w.seen[id] = loc
	}
	w.stats.NewBlocks++
	if w.pack.Size() >= packTarget {
		if err := w.flush(); err != nil {
			return repo.BlockRef{}, err
		}
	}
	return repo.BlockRef{ID: id, Pack: w.packIndex(loc.Pack), Offset: loc.Offset, Length: loc.Length}, nil
}

func (w *blockWriter) packIndex(key string) uint32 {
	i, ok := w.packIdx[key]
	if !ok {
		i = uint32(len(w.fl.Packs))
		w.packIdx[key] = i
		w.fl.Packs = append(w.fl.Packs, key)
	}
	return i
}

// flush hands the current pack to the uploaders.
func (w *blockWriter) flush() error {
	p := w.pack
	if p == nil {
		return nil
	}
	w.pack = nil
	w.stats.NewBytes += int64(p.Size())
	select {
	case w.packs <- p:
		return nil
	case <-w.ctx.Done():
		return context.Cause(w.ctx)
	}
}

// finish stores the last pack, waits for every upload and stores the file
// list. It must be called once, also after a failure (with ok false: then
// nothing more is stored).
func (w *blockWriter) finish(ok bool) (repo.ObjectInfo, error) {
	var err error
	if ok {
		err = w.flush()
	}
	close(w.packs)
	w.wg.Wait()
	if !ok || err != nil || w.ctx.Err() != nil {
		return repo.ObjectInfo{}, errors.Join(err, context.Cause(w.ctx))
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
	x, err := repo.NewBlockIndex(fl)
	if err != nil {
		return nil, "", err
	}
	log.Info("deduplicating against the previous backup", "previous", id, "blocks", x.Len())
	return x, id, nil
}
