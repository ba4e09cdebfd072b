package verify

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/walvault/walvault/repo"
)

type archiveJob struct {
	m *repo.BackupManifest
	a repo.Archive
}

// chunkResult is one verified chunk's plaintext; ok is false when the chunk
// failed (the problem is recorded) and the stream is broken there.
type chunkResult struct {
	data []byte
	ok   bool
}

// errBrokenStream ends the tar check of an archive at a chunk that failed:
// that chunk is the problem, not the tar stream.
var errBrokenStream = errors.New("a chunk of the archive failed")

// archive verifies every chunk of one archive and streams their plaintexts,
// in order, through archive/tar. Chunks are fetched in parallel, each
// holding a token from the moment it is fetched until the tar reader has
// consumed it. Tokens are taken in chunk order, so the chunk the reader
// waits for always holds one (or is next to get one): archives cannot
// starve each other, and memory stays at one chunk per token.
func (v *verifier) archive(ctx context.Context, j archiveJob) {
	if j.a.Layout == repo.ArchiveBlocks {
		v.blockArchive(ctx, j)
		return
	}
	slots := make(chan chan chunkResult, cap(v.tokens))
	go func() {
		defer close(slots)
		for seq, c := range j.a.Chunks {
			if !v.acquire(ctx) {
				return
			}
			res := make(chan chunkResult, 1)
			slots <- res // never blocks: each queued slot holds a token
			go func() { res <- v.chunk(ctx, j, seq, c) }()
		}
	}()
	cr := &chunkReader{slots: slots, release: v.release}
	var total int64
	counted := countingReader{r: cr, n: &total}
	var tarErr error
	switch {
	case j.a.Name == repo.ServerManifestArchive:
		_, tarErr = io.Copy(io.Discard, counted)
	default:
		tarErr = checkTar(counted, j.a.Name == "base.tar")
	}
	cr.drain(&total)
	if cr.broken || ctx.Err() != nil {
		return
	}
	prefix := repo.BackupArchiveFolder(j.m.ID, j.a.Name)
	if tarErr != nil {
		v.problem(prefix, KindTar, fmt.Errorf("%w: archive %s of backup %s: %v", repo.ErrIntegrity, j.a.Name, j.m.ID, tarErr))
		return
	}
	if total != j.a.Bytes {
		v.problem(prefix, KindMismatch, fmt.Errorf("%w: archive %s of backup %s holds %d bytes, the manifest says %d", repo.ErrIntegrity, j.a.Name, j.m.ID, total, j.a.Bytes))
	}
}

// chunk reads and verifies one chunk against the manifest. It gives its
// token back itself when the chunk failed.
func (v *verifier) chunk(ctx context.Context, j archiveJob, seq int, c repo.Chunk) chunkResult {
	if want := repo.BackupChunkKey(j.m.ID, j.a.Name, seq); c.Key != want {
		v.done(c.Key)
		v.release()
		v.problem(c.Key, KindMismatch, fmt.Errorf("%w: chunk %d of archive %s of backup %s should be stored under %s", repo.ErrIntegrity, seq, j.a.Name, j.m.ID, want))
		return chunkResult{}
	}
	data, h, err := v.r.Get(ctx, c.Key)
	v.done(c.Key)
	if err == nil {
		if err = chunkMatches(c, data, h); err != nil {
			v.release()
			v.problem(c.Key, KindMismatch, err)
			return chunkResult{}
		}
		return chunkResult{data: data, ok: true}
	}
	v.release()
	v.objectError(ctx, c.Key, err)
	return chunkResult{}
}

// checkTar reads a tar stream to its end, discarding the contents. base.tar
// must hold backup_label: without it PostgreSQL would start the copy as a
// crashed primary instead of recovering it.
func checkTar(r io.Reader, base bool) error {
	tr := tar.NewReader(r)
	label := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("not a valid tar stream: %w", err)
		}
		if strings.TrimPrefix(h.Name, "./") == "backup_label" {
			label = true
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fmt.Errorf("not a valid tar stream: %s: %w", h.Name, err)
		}
	}
	if base && !label {
		return errors.New("base.tar holds no backup_label")
	}
	return nil
}

// chunkReader reads the plaintexts of an archive's chunks in order, giving
// each chunk's token back once it is consumed.
type chunkReader struct {
	slots   <-chan chan chunkResult
	cur     []byte
	holding bool
	broken  bool
	release func()
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.holding {
			c.release()
			c.holding = false
		}
		if c.broken {
			return 0, errBrokenStream
		}
		next, ok := <-c.slots
		if !ok {
			return 0, io.EOF
		}
		res := <-next
		if !res.ok {
			c.broken = true
			return 0, errBrokenStream
		}
		c.cur, c.holding = res.data, true
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// drain consumes what the check left, so that every chunk is verified and
// every token given back; total counts the bytes.
func (c *chunkReader) drain(total *int64) {
	*total += int64(len(c.cur))
	c.cur = nil
	if c.holding {
		c.release()
		c.holding = false
	}
	for next := range c.slots {
		res := <-next
		if !res.ok {
			c.broken = true
			continue
		}
		*total += int64(len(res.data))
		c.release()
	}
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
