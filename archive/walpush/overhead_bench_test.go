package walpush

import (
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
)

// BenchmarkHead measures what issue 14 added to each push on its own: the
// signed head (a sealed empty object, one create-only Put) in a directory
// and on a local MinIO, and the page-timeline check of a real 16 MiB
// segment.
func BenchmarkHead(b *testing.B) {
	one := func(b *testing.B, where repotest.Option) {
		tr := repotest.New(b, repotest.Signed(), where)
		for i := 0; b.Loop(); i++ {
			f, _ := pgwal.ParseFileName(pgwal.SegmentName(1, uint64(i+1), waltest.SegSize))
			if err := tr.PutWALHead(b.Context(), f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("dir", func(b *testing.B) { one(b, repotest.OnDisk()) })
	b.Run("minio", func(b *testing.B) { one(b, repotest.OnMinIO(b)) })
}

func BenchmarkCheckPages(b *testing.B) {
	seg, h := waltest.RealSegment(b)
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		if err := pgwal.CheckPages(seg, pgwal.PageCheck{Timeline: 1, SegNo: h.SegNo(), SegSize: int64(h.SegmentSize)}); err != nil {
			b.Fatal(err)
		}
	}
}
