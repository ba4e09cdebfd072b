package walpush

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage/s3"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// BenchmarkPush measures wal-push of one 16 MiB segment (a real PostgreSQL
// 15 segment, renamed for each iteration) into an encrypted, signed
// (format 2) repository in a directory and on a local MinIO: what
// archive_command costs per segment, all of it (page checks, compression,
// encryption, signing, the durable write, and whatever else a push
// stores). It uses only Push, so the same file runs against older
// revisions for a before/after figure.
func BenchmarkPush(b *testing.B) {
	b.Run("dir", func(b *testing.B) { benchPush(b, repotest.OnDisk()) })
	b.Run("minio", func(b *testing.B) {
		srv := miniotest.Start(b)
		srv.CreateBucket(b, "bench")
		st, err := s3.New(b.Context(), s3.Options{Bucket: "bench", Endpoint: srv.Endpoint, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			b.Fatal(err)
		}
		benchPush(b, repotest.OnStore(st))
	})
}

func benchPush(b *testing.B, where repotest.Option) {
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
	dir := b.TempDir()
	seg := make([]byte, len(orig))
	le := binary.LittleEndian
	b.SetBytes(segSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		segno := h.SegNo() + uint64(i)
		copy(seg, orig)
		// Rename: every page that was the original's gets the new page
		// address.
		for off := int64(0); off < segSize; off += int64(h.BlockSize) {
			if pgwal.LSN(le.Uint64(seg[off+8:])) == h.PageAddr+pgwal.LSN(off) {
				le.PutUint64(seg[off+8:], uint64(pgwal.SegmentStart(segno, segSize))+uint64(off))
			}
		}
		p := filepath.Join(dir, pgwal.SegmentName(1, segno, segSize))
		if err := os.WriteFile(p, seg, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := Push(ctx, tr.Repository, p, Options{})
		if err != nil || !res.Stored {
			b.Fatalf("push: %+v %v", res, err)
		}
		b.StopTimer()
		os.Remove(p)
		b.StartTimer()
	}
}
