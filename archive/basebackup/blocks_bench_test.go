package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// benchTar is a tar of n MiB of pages that look like table pages: mostly
// repeated text with a counter, so that they compress as tables do and
// no two are equal.
func benchTar(b *testing.B, mib int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	page := make([]byte, repo.BlockSize)
	for f := 0; f < mib; f++ {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("base/5/%d", 16384+f), Mode: 0o600, Size: 1 << 20, Typeflag: tar.TypeReg})
		for i := 0; i < (1<<20)/repo.BlockSize; i++ {
			for j := 0; j < len(page); j += 64 {
				copy(page[j:], fmt.Sprintf("%08d %08d %06d abcdefghijklmnopqrstuvwxyz0123456789\n", f, i, j))
			}
			tw.Write(page)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// BenchmarkBlockWriter: bytes of tar stream a block backup takes in, first
// (every block new) and unchanged (every block in the previous backup).
func BenchmarkBlockWriter(b *testing.B) {
	data := benchTar(b, 64)
	tr := repotest.New(b, repotest.Signed())
	r := tr.Repository
	ctx := context.Background()
	run := func(b *testing.B, id string, prev *repo.BlockIndex) {
		cctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		w, err := newBlockWriter(cctx, cancel, r, id, prev, 2, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		w.begin("base.tar")
		for p := data; len(p) > 0; {
			n := min(len(p), 64<<10)
			if err := w.write(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.end(); err != nil {
			b.Fatal(err)
		}
		if _, err := w.finish(true); err != nil {
			b.Fatal(err)
		}
	}
	const first = "20260101T000000Z"
	run(b, first, nil)
	n := 0
	next := func() string { n++; return repo.NewBackupID(repotest.CreatedAt.Add(time.Duration(n) * time.Second)) }
	b.Run("first", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			run(b, next(), nil)
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			// The writer closes the index it is given.
			b.StopTimer()
			prev, _, err := r.FileListIndex(ctx, first)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			run(b, next(), prev)
		}
	})
}
