package walfetch

import (
	"context"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

// BenchmarkGet measures what restore_command costs per 16 MiB segment (a
// real PostgreSQL 15 segment, stored under 32 names) from an encrypted,
// signed repository in a directory and on a local MinIO: read, verify,
// decrypt, decompress and check. It uses only Get, so the same file runs
// against older revisions for a before/after figure.
func BenchmarkGet(b *testing.B) {
	b.Run("dir", func(b *testing.B) { benchGet(b, repotest.OnDisk()) })
	b.Run("minio", func(b *testing.B) { benchGet(b, repotest.OnMinIO(b)) })
}

func benchGet(b *testing.B, where repotest.Option) {
	orig, h := waltest.RealSegment(b)
	segSize := int64(h.SegmentSize)
	tr := repotest.New(b, repotest.Signed(), where, repotest.ForSegment(h))
	ctx := context.Background()
	const n = 32
	var names []pgwal.FileName
	for i := range n {
		segno := h.SegNo() + uint64(i)
		seg := waltest.Renamed(nil, orig, h, segno)
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
