package walfetch

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage/s3"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// BenchmarkGet measures what restore_command costs per 16 MiB segment (a
// real PostgreSQL 15 segment, stored under 32 names) from an encrypted,
// signed repository in a directory and on a local MinIO: read, verify,
// decrypt, decompress and check. It uses only Get, so the same file runs
// against older revisions for a before/after figure.
func BenchmarkGet(b *testing.B) {
	b.Run("dir", func(b *testing.B) { benchGet(b, repotest.OnDisk()) })
	b.Run("minio", func(b *testing.B) {
		srv := miniotest.Start(b)
		srv.CreateBucket(b, "bench")
		st, err := s3.New(b.Context(), s3.Options{Bucket: "bench", Endpoint: srv.Endpoint, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			b.Fatal(err)
		}
		benchGet(b, repotest.OnStore(st))
	})
}

func benchGet(b *testing.B, where repotest.Option) {
	gz, err := os.Open("../../internal/pgwal/testdata/000000010000000000000006.gz")
	if err != nil {
		b.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		b.Fatal(err)
	}
	orig, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	h, err := pgwal.ParseLongPageHeader(orig)
	if err != nil {
		b.Fatal(err)
	}
	segSize := int64(h.SegmentSize)
	tr := repotest.New(b, repotest.Signed(), where, repotest.WithConfig(func(c *repo.Config) {
		c.SystemIdentifier = strconv.FormatUint(h.SystemIdentifier, 10)
		c.WALSegmentSize = segSize
	}))
	ctx := context.Background()
	le := binary.LittleEndian
	const n = 32
	var names []pgwal.FileName
	for i := range n {
		segno := h.SegNo() + uint64(i)
		seg := append([]byte(nil), orig...)
		for off := int64(0); off < segSize; off += int64(h.BlockSize) {
			if pgwal.LSN(le.Uint64(seg[off+8:])) == h.PageAddr+pgwal.LSN(off) {
				le.PutUint64(seg[off+8:], uint64(pgwal.SegmentStart(segno, segSize))+uint64(off))
			}
		}
		f, _ := pgwal.ParseFileName(pgwal.SegmentName(1, segno, segSize))
		tr.Write(b, repo.WALKey(f), seg)
		names = append(names, f)
	}
	b.SetBytes(segSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Get(ctx, tr.Repository, names[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}
