package walpush

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
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
	b.Run("minio", func(b *testing.B) { benchPush(b, repotest.OnMinIO(b)) })
}

func benchPush(b *testing.B, where repotest.Option) {
	orig, h := waltest.RealSegment(b)
	segSize := int64(h.SegmentSize)
	tr := repotest.New(b, repotest.Signed(), where, repotest.ForSegment(h))
	ctx := context.Background()
	dir := b.TempDir()
	var seg []byte
	b.SetBytes(segSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		segno := h.SegNo() + uint64(i)
		seg = waltest.Renamed(seg, orig, h, segno)
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
