package basebackup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/walvault/walvault/internal/bigbuf"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// manifestArchive names the archive holding the server's backup_manifest.
const manifestArchive = repo.ServerManifestArchive

// maxIncrementalManifest bounds the backup_manifest of an incremental
// backup, held whole to be rewritten (about 150 bytes a file).
const maxIncrementalManifest = 512 << 20

// tarTrailer ends a tar archive. PostgreSQL 15 and later send it;
// PostgreSQL 13 and 14 leave it to the client (pg_basebackup appends it),
// and so does walvault for them, so that the chunks of an archive always
// concatenate into a complete tar file.
var tarTrailer [1024]byte

// uploader is the archiveSink of Run. It cuts each archive into chunks of
// chunkSize bytes and hands them to a fixed pool of workers that seal and
// store them. The queue holds at most as many chunks as there are workers,
// so at most 2×workers+1 chunk buffers exist at any time; buffers are
// reused, and mapped outside the Go heap on huge pages (internal/bigbuf):
// close gives them back.
//
// beginArchive, write and endArchive are called from one goroutine.
type uploader struct {
	ctx       context.Context // cancelled with the first worker error
	cancel    context.CancelCauseFunc
	r         *repo.Repository
	id        string
	chunkSize int
	tss       []tablespace
	progress  func(done int64)
	// addTrailer appends tarTrailer to tar archives (servers before 15).
	addTrailer bool
	// blocks, when set, receives the tar archives (block backup).
	blocks   *blockWriter
	fileList repo.ObjectInfo
	// manifestRepo, when set, stores the server's manifest (a block
	// backup's: readable by writers, for the next incremental backup).
	manifestRepo *repo.Repository
	// manifest gathers an incremental backup's backup_manifest, which is
	// rewritten whole (fullManifest) before it is stored.
	manifest      []byte
	manifestWhole bool

	jobs chan chunkJob
	free chan []byte
	wg   sync.WaitGroup

	// Reader side.
	cur  *archive
	buf  []byte
	done int64
	// reported is done when progress was last reported.
	reported int64
	label    labelCapture

	mu       sync.Mutex // guards archives' chunks and err
	archives []*archive
	err      error
}

type archive struct {
	repo.Archive
	seq int // next chunk number
}

type chunkJob struct {
	a   *archive
	seq int
	buf []byte
}

// labelCapture keeps the beginning of base.tar until backup_label, its
// first member, has been read whole.
type labelCapture struct {
	prefix []byte
	text   []byte // set once found
	err    error
}

func newUploader(ctx context.Context, r *repo.Repository, id string, chunkSize, workers int, tss []tablespace, progress func(int64), addTrailer bool) *uploader {
	ctx, cancel := context.WithCancelCause(ctx)
	u := &uploader{
		ctx: ctx, cancel: cancel, r: r, id: id, chunkSize: chunkSize, tss: tss, progress: progress, addTrailer: addTrailer,
		jobs: make(chan chunkJob, workers),
		free: make(chan []byte, 2*workers+1),
	}
	u.wg.Add(workers)
	for range workers {
		go u.work()
	}
	return u
}

func (u *uploader) work() {
	defer u.wg.Done()
	for j := range u.jobs {
		if u.ctx.Err() == nil {
			key := repo.BackupChunkKey(u.id, j.a.Name, j.seq)
			r := u.r
			if j.a.Name == manifestArchive && u.manifestRepo != nil {
				r = u.manifestRepo
			}
			info, err := r.Put(u.ctx, key, j.buf, storage.PutOptions{})
			if err != nil {
				u.fail(fmt.Errorf("store chunk %d of %s: %w", j.seq, j.a.Name, err))
			} else {
				u.mu.Lock()
				for len(j.a.Chunks) <= j.seq {
					j.a.Chunks = append(j.a.Chunks, repo.Chunk{})
				}
				j.a.Chunks[j.seq] = repo.Chunk{Key: info.Key, Size: info.PlainSize, StoredSize: info.StoredSize, SHA256: info.SHA256}
				u.mu.Unlock()
			}
		}
		select { // Repository.Put does not keep the buffer.
		case u.free <- j.buf[:0]:
		default:
			bigbuf.Put(j.buf)
		}
	}
}

func (u *uploader) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	u.cancel(err)
}

// Context returns the context the reader should use: it ends when any
// worker fails.
func (u *uploader) context() context.Context { return u.ctx }

func (u *uploader) beginArchive(name, path string) error {
	if u.cur != nil {
		return fmt.Errorf("archive %s started before %s ended", name, u.cur.Name)
	}
	if err := checkArchiveName(name); err != nil {
		return err
	}
	for _, a := range u.archives {
		if a.Name == name {
			return fmt.Errorf("server sent archive %s twice", name)
		}
	}
	a := &archive{Archive: repo.Archive{Name: name, TablespacePath: path}}
	if name != "base.tar" && name != manifestArchive {
		oid, err := tablespaceOID(name, path, u.tss)
		if err != nil {
			return err
		}
		a.TablespaceOID = oid
	}
	if u.blocks != nil && name != manifestArchive {
		a.Layout = repo.ArchiveBlocks
		u.blocks.begin(name)
	}
	u.mu.Lock()
	u.archives = append(u.archives, a)
	u.mu.Unlock()
	u.cur = a
	return nil
}

// tablespaceOID finds the tablespace an archive belongs to: by path in the
// tablespace list, else by the "<oid>.tar" name PostgreSQL gives it.
func tablespaceOID(name, path string, tss []tablespace) (uint32, error) {
	for _, ts := range tss {
		if ts.OID != 0 && path != "" && ts.Location == path {
			return ts.OID, nil
		}
	}
	if s, ok := strings.CutSuffix(name, ".tar"); ok {
		if oid, err := strconv.ParseUint(s, 10, 32); err == nil && oid != 0 {
			return uint32(oid), nil
		}
	}
	return 0, fmt.Errorf("archive %s (%q) matches no tablespace", name, path)
}

func (u *uploader) write(p []byte) error {
	if u.cur == nil {
		return errors.New("base backup data outside an archive")
	}
	if u.cur.Name == "base.tar" {
		if u.label.add(p); u.label.err != nil {
			return u.label.err
		}
	}
	if u.cur.Name == manifestArchive && u.blocks != nil && u.blocks.inc != nil && !u.manifestWhole {
		if len(u.manifest)+len(p) > maxIncrementalManifest {
			return fmt.Errorf("backup_manifest of more than %d bytes", maxIncrementalManifest)
		}
		u.manifest = append(u.manifest, p...)
		return nil
	}
	u.cur.Bytes += int64(len(p))
	if u.cur.Name != manifestArchive {
		u.done += int64(len(p))
	}
	if u.cur.Layout == repo.ArchiveBlocks {
		if err := u.blocks.write(p); err != nil {
			return err
		}
		if u.done-u.reported >= 16<<20 {
			u.reportProgress()
		}
		return nil
	}
	for len(p) > 0 {
		if u.buf == nil {
			select {
			case u.buf = <-u.free:
			default:
				u.buf = bigbuf.Get(u.chunkSize)
			}
		}
		n := min(len(p), u.chunkSize-len(u.buf))
		u.buf = append(u.buf, p[:n]...)
		p = p[n:]
		if len(u.buf) == u.chunkSize {
			if err := u.flush(); err != nil {
				return err
			}
			u.reportProgress()
		}
	}
	return nil
}

func (u *uploader) reportProgress() {
	u.reported = u.done
	if u.progress != nil {
		u.progress(u.done)
	}
}

// flush queues the current buffer as the archive's next chunk, waiting for
// room in the queue.
func (u *uploader) flush() error {
	j := chunkJob{a: u.cur, seq: u.cur.seq, buf: u.buf}
	select {
	case u.jobs <- j:
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
	u.cur.seq++
	u.buf = nil
	return nil
}

func (u *uploader) endArchive() error {
	a := u.cur
	if a == nil {
		return errors.New("end of an archive that was not started")
	}
	if u.addTrailer && strings.HasSuffix(a.Name, ".tar") {
		if err := u.write(tarTrailer[:]); err != nil {
			return err
		}
	}
	if a.Layout == repo.ArchiveBlocks {
		if err := u.blocks.end(); err != nil {
			return err
		}
		// The size a restore writes (and checks free space for).
		a.Bytes += u.blocks.sizeDelta
		u.blocks.sizeDelta = 0
	}
	if a.Name == manifestArchive && u.blocks != nil && u.blocks.inc != nil {
		whole, err := fullManifest(u.manifest, u.blocks.inc.sizes, u.blocks.inc.label)
		if err != nil {
			return fmt.Errorf("incremental backup: %w", err)
		}
		u.manifestWhole, u.manifest = true, nil
		if err := u.write(whole); err != nil {
			return err
		}
	}
	if len(u.buf) > 0 {
		if err := u.flush(); err != nil {
			return err
		}
	}
	if a.Name == "base.tar" && u.label.text == nil {
		if u.label.err != nil {
			return u.label.err
		}
		return errors.New("base.tar ended before its backup_label was complete")
	}
	u.cur = nil
	u.reportProgress()
	return nil
}

// close waits for the workers and returns the first error, if any. It
// must be called exactly once, also after a failure.
func (u *uploader) close() error {
	close(u.jobs)
	u.wg.Wait()
	if b := u.blocks; b != nil {
		u.mu.Lock()
		ok := u.err == nil && u.cur == nil
		u.mu.Unlock()
		if !ok {
			b.abort(errors.New("backup failed"))
		}
		info, err := b.finish(ok)
		if err != nil && ok {
			u.fail(err)
		}
		u.fileList = info
	}
	u.cancel(nil)
	// Every buffer is back: in free, or the reader's partial one.
	bigbuf.Put(u.buf)
	u.buf = nil
	for done := false; !done; {
		select {
		case b := <-u.free:
			bigbuf.Put(b)
		default:
			done = true
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// result returns the archives in the order they were sent. Only valid
// after close returned nil.
func (u *uploader) result() ([]repo.Archive, error) {
	out := make([]repo.Archive, 0, len(u.archives))
	for _, a := range u.archives {
		if len(a.Chunks) != a.seq || slices.ContainsFunc(a.Chunks, func(c repo.Chunk) bool { return c.Key == "" }) {
			return nil, fmt.Errorf("archive %s: %d of %d chunks recorded", a.Name, len(a.Chunks), a.seq)
		}
		out = append(out, a.Archive)
	}
	return out, nil
}

func (l *labelCapture) add(p []byte) {
	if l.text != nil || l.err != nil {
		return
	}
	l.prefix = append(l.prefix, p[:min(len(p), maxLabelPrefix-len(l.prefix))]...)
	name, content, err := firstTarMember(l.prefix)
	switch {
	case errors.Is(err, errLabelIncomplete):
		if len(l.prefix) >= maxLabelPrefix {
			l.err = errors.New("base.tar: no complete first member in the first 1 MiB")
		}
		return
	case err != nil:
		l.err = err
	case name != "backup_label":
		l.err = fmt.Errorf("base.tar starts with %q, not backup_label", name)
	default:
		l.text = content
	}
	l.prefix = nil
}
