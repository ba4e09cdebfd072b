package walfetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

// Readers pick, among a WAL file's copies, the one that verifies; two
// that verify and differ are refused naming both.
func TestGetPicksTheCopyThatVerifies(t *testing.T) {
	ctx := context.Background()
	f, _ := pgwal.ParseFileName(pgwal.SegmentName(1, 6, waltest.SegSize))
	key := repo.WALKey(f)
	genuine := waltest.Segment(1, 6, waltest.SysID, 1)
	sum := sha256.Sum256(genuine)

	// Format 2: whoever planted the object under the name has no writer
	// key: a signed object copied from another name does not verify.
	tr := repotest.New(t, repotest.Signed())
	tr.PutSegment(t, 1, 5, 1)
	tr.SetRaw(t, key, tr.Raw(t, repo.WALSegmentKey(1, 5, waltest.SegSize)))
	if _, err := Get(ctx, tr.Repository, f); !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("planted object alone: %v", err)
	}
	alt, err := tr.PutWALAlternate(ctx, f, genuine, sum)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Get(ctx, tr.Repository, f)
	if err != nil || string(got) != string(genuine) {
		t.Fatalf("planted object and the alternate: %v", err)
	}

	// Format 1: a forgery made with the recipient verifies; with the
	// genuine copy beside it, neither can be told right: refused, both named.
	tr1 := repotest.New(t)
	tr1.Write(t, key, waltest.Segment(1, 6, waltest.SysID, 99))
	alt1, err := tr1.PutWALAlternate(ctx, f, genuine, sum)
	if err != nil || alt1 != alt {
		t.Fatalf("alternate %q %v", alt1, err)
	}
	_, err = Get(ctx, tr1.Repository, f)
	if !errors.Is(err, repo.ErrIntegrity) || !strings.Contains(err.Error(), key+" and "+alt) {
		t.Fatalf("two copies that verify and differ: %v", err)
	}
	// Identical copies are the file.
	tr1.Write(t, key, genuine)
	if got, err := Get(ctx, tr1.Repository, f); err != nil || string(got) != string(genuine) {
		t.Fatalf("identical copies: %v", err)
	}
	// A copy whose pages do not fit the name does not verify either.
	tr1.Write(t, key, waltest.SetPageHeaders(waltest.Segment(1, 6, waltest.SysID, 1), 0, func(i int) uint32 { return 1 + uint32(i/50) }))
	if got, err := Get(ctx, tr1.Repository, f); err != nil || string(got) != string(genuine) {
		t.Fatalf("misfit copy and the alternate: %v", err)
	}
}
