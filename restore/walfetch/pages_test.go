package walfetch

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

// The attack of issue 14: timeline 1's segment stored under timeline 2's
// name of the same segment, in a format-1 repository (format 2 refuses the
// copy by its signature already). Pages say timeline 1 ≤ 2, so only the
// history tells: timeline 2 began after this segment.
func TestFetchRefusesOldTimelineUnderNewName(t *testing.T) {
	ctx := context.Background()
	const seg = 3
	pages := waltest.SegSize / waltest.PageSize
	for _, signed := range []bool{false, true} {
		var opts []repotest.Option
		if signed {
			opts = append(opts, repotest.Signed())
		}
		tr := repotest.New(t, opts...)
		old := waltest.SetPageHeaders(waltest.Segment(1, seg, waltest.SysID, 1), 0, func(int) uint32 { return 1 })
		tr.Write(t, repo.WALSegmentKey(2, seg, waltest.SegSize), old)
		name := pgwal.SegmentName(2, seg, waltest.SegSize)
		dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		_, err := Fetch(ctx, tr.Repository, name, dest, "")
		if signed {
			// Format 2: no history of timeline 2 is an error, not a
			// reason to judge less.
			if !errors.Is(err, repo.ErrIntegrity) {
				t.Fatalf("signed, no history: %v", err)
			}
		} else if err != nil {
			t.Fatalf("format 1, no history (cannot judge): %v", err)
		}
		// Timeline 2 began in segment 6: nothing of segment 3 is its.
		tr.Write(t, "wal/00000002/00000002.history", []byte("1\t0/600100\tno recovery target specified\n"))
		if _, err := Fetch(ctx, tr.Repository, name, dest, ""); !errors.Is(err, repo.ErrIntegrity) || !errors.Is(err, pgwal.ErrPageTimeline) {
			t.Fatalf("signed=%v: copy of timeline 1 under timeline 2's name: %v", signed, err)
		}
		// The genuine switch segment: timeline 2 began in it.
		tr.Write(t, "wal/00000002/00000002.history", []byte("1\t0/380100\tno recovery target specified\n"))
		fork := waltest.SetPageHeaders(waltest.Segment(2, seg, waltest.SysID, 1), 0, func(i int) uint32 {
			if i <= pages/2 {
				return 1
			}
			return 2
		})
		tr.Write(t, repo.WALSegmentKey(2, seg, waltest.SegSize), fork)
		if _, err := Fetch(ctx, tr.Repository, name, dest, ""); err != nil {
			t.Fatalf("signed=%v: genuine switch segment: %v", signed, err)
		}
		// A page of a later timeline than the name's.
		later := waltest.SetPageHeaders(waltest.Segment(1, seg+1, waltest.SysID, 1), 0, func(i int) uint32 { return 1 + uint32(i/100) })
		tr.Write(t, repo.WALSegmentKey(1, seg+1, waltest.SegSize), later)
		if _, err := Fetch(ctx, tr.Repository, pgwal.SegmentName(1, seg+1, waltest.SegSize), dest, ""); !errors.Is(err, repo.ErrIntegrity) || errors.Is(err, ErrNotFound) {
			t.Fatalf("signed=%v: later timeline in the pages: %v", signed, err)
		}
	}
}
