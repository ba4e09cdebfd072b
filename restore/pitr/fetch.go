package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/walvault/walvault/internal/bigbuf"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// fetcher downloads, verifies and opens the chunks of a backup with bounded
// parallelism and hands them out strictly in order: every chunk of the
// first archive, then of the second, and so on. At most workers chunks are
// downloaded or waiting to be consumed at any time, plus the one the
// consumer holds, so memory stays at about workers+1 chunks.
type fetcher struct {
	// free recycles plaintext buffers once the consumer is done with them:
	// a restore moves every byte through them, and fresh 16 MiB buffers
	// cost page faults (8% of restore's CPU with a sync.Pool, which the
	// frequent GCs under the memory limit kept emptying). A channel keeps
	// them across GCs; it holds at most as many as can be in flight.
	// They are mapped on huge pages (internal/bigbuf), sized for the
	// backup's largest chunk so that every chunk fits, and all of them,
	// listed in mapped, are unmapped by stop.
	free   chan []byte
	size   int
	mu     sync.Mutex
	mapped [][]byte
	ctx    context.Context
	jobs   chan *chunkJob
	sem    chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type chunkJob struct {
	key string
	res chan chunkResult
}

type chunkResult struct {
	data []byte
	err  error
}

func startFetcher(ctx context.Context, r *repo.Repository, b *repo.BackupManifest, workers int) *fetcher {
	ctx, cancel := context.WithCancel(ctx)
	f := &fetcher{
		ctx:    ctx,
		jobs:   make(chan *chunkJob, workers),
		sem:    make(chan struct{}, workers),
		free:   make(chan []byte, workers+2),
		cancel: cancel,
	}
	for _, a := range b.Archives {
		for _, c := range a.Chunks {
			f.size = max(f.size, int(min(c.Size, 1<<30)))
		}
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(f.jobs)
		for _, a := range b.Archives {
			for _, c := range a.Chunks {
				select {
				case f.sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				j := &chunkJob{key: c.Key, res: make(chan chunkResult, 1)}
				f.wg.Add(1)
				go func() {
					defer f.wg.Done()
					data, err := fetchChunk(ctx, r, b.ID, c, f.buffer())
					j.res <- chunkResult{data, err}
				}()
				select {
				case f.jobs <- j:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return f
}

// next returns the plaintext of the next chunk in order.
func (f *fetcher) next() ([]byte, error) {
	j, ok := <-f.jobs
	if !ok {
		if err := f.ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("restore: read past the last chunk of the backup")
	}
	res := <-j.res
	<-f.sem
	return res.data, res.err
}

func (f *fetcher) buffer() []byte {
	select {
	case b := <-f.free:
		return b
	default:
	}
	b := bigbuf.Get(f.size)
	f.mu.Lock()
	f.mapped = append(f.mapped, b)
	f.mu.Unlock()
	return b
}

// release returns a chunk's buffer for reuse; the caller must not touch it
// afterwards.
func (f *fetcher) release(b []byte) {
	if cap(b) > 0 {
		select {
		case f.free <- b[:0]:
		default:
		}
	}
}

// stop cancels downloads still running, waits for every goroutine and
// unmaps the buffers: no chunk handed out may be read afterwards.
func (f *fetcher) stop() {
	f.cancel()
	for range f.jobs {
		// Drain so the producer is never blocked on a full queue.
	}
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.mapped {
		bigbuf.Put(b)
	}
	f.mapped = nil
}

// fetchChunk reads one chunk (repo.Repository.Get verifies the object
// against its own header) and checks it against the manifest's record, so
// that a valid object stored under the wrong key, or a manifest and chunk
// that disagree, is caught too.
func fetchChunk(ctx context.Context, r *repo.Repository, backupID string, c repo.Chunk, dst []byte) ([]byte, error) {
	if !repo.IsBackupKey(backupID, c.Key) {
		return nil, fmt.Errorf("%w: manifest of backup %s lists chunk %s outside the backup", repo.ErrIntegrity, backupID, c.Key)
	}
	data, h, err := r.GetInto(ctx, c.Key, c.StoredSize, dst)
	if storage.IsNotExist(err) {
		// The manifest is written only after every chunk is stored: a
		// chunk gone since is damage to the repository.
		return nil, fmt.Errorf("%w: chunk %s, listed by the manifest of backup %s, is missing from the repository (walvault verify lists every damaged object; --backup picks another backup)",
			repo.ErrIntegrity, c.Key, backupID)
	}
	if err != nil {
		return nil, fmt.Errorf("chunk of backup %s: %w", backupID, err)
	}
	if int64(len(data)) != c.Size || !strings.EqualFold(h.SHA256Hex(), c.SHA256) {
		return nil, fmt.Errorf("%w: chunk %s holds %d bytes with SHA-256 %s, the manifest of backup %s records %d bytes with SHA-256 %s",
			repo.ErrIntegrity, c.Key, len(data), h.SHA256Hex(), backupID, c.Size, c.SHA256)
	}
	return data, nil
}

// archiveReader is the byte stream of one archive: the plaintexts of its
// chunks, in order, taken from the fetcher.
type archiveReader struct {
	f        *fetcher
	left     int // chunks not yet taken
	buf      []byte
	whole    []byte // the chunk buf is a tail of, released when consumed
	err      error  // a fetch error, kept so it is not mistaken for a tar error
	progress func(n int)
}

func (a *archiveReader) Read(p []byte) (int, error) {
	for len(a.buf) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		if a.left == 0 {
			// Give the last chunk's buffer back now: the reader is
			// dropped after EOF, and the next archive's chunks need it.
			a.f.release(a.whole)
			a.whole = nil
			return 0, io.EOF
		}
		a.left--
		a.f.release(a.whole)
		a.whole = nil
		data, err := a.f.next()
		if err != nil {
			a.err = err
			return 0, err
		}
		a.buf, a.whole = data, data
		if a.progress != nil {
			a.progress(len(data))
		}
	}
	n := copy(p, a.buf)
	a.buf = a.buf[n:]
	return n, nil
}
