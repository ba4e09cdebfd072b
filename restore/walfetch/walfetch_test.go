package walfetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

func TestFetch(t *testing.T) {
	r := repotest.New(t)
	ctx := context.Background()
	want := r.PutSegment(t, 1, 3, 9)
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	name := pgwal.SegmentName(1, 3, waltest.SegSize)
	if _, err := Fetch(ctx, r.Repository, name, dest, ""); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != string(want) {
		t.Fatal("fetched content differs")
	}
	// Missing file: ErrNotFound and nothing written.
	dest2 := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	if _, err := Fetch(ctx, r.Repository, pgwal.SegmentName(1, 4, waltest.SegSize), dest2, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := os.Stat(dest2); !os.IsNotExist(err) {
		t.Fatal("dest written for a missing segment")
	}
	if _, err := Fetch(ctx, r.Repository, "00000005.history", dest2, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing history: %v", err)
	}
}

func TestFetchDamageIsNotNotFound(t *testing.T) {
	r := repotest.New(t)
	ctx := context.Background()
	r.PutSegment(t, 1, 3, 9)
	name := pgwal.SegmentName(1, 3, waltest.SegSize)
	key := repo.WALSegmentKey(1, 3, waltest.SegSize)
	orig := r.Raw(t, key)

	damaged := append([]byte(nil), orig...)
	damaged[len(damaged)/2] ^= 1
	r.SetRaw(t, key, damaged)
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	_, err := Fetch(ctx, r.Repository, name, dest, "")
	if err == nil || errors.Is(err, ErrNotFound) || !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("damaged: %v", err)
	}
	if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
		t.Fatal("dest written for a damaged segment")
	}

	// Wrong key.
	r.SetRaw(t, key, orig)
	r2 := r.Open(t, repotest.Keys(repotest.NewIdentity(t)))
	if _, err := Fetch(ctx, r2, name, dest, ""); !errors.Is(err, repo.ErrWrongKey) || errors.Is(err, ErrNotFound) {
		t.Fatalf("wrong key: %v", err)
	}

	// A valid object stored under another segment's name.
	r.Write(t, repo.WALSegmentKey(1, 5, waltest.SegSize), waltest.Segment(1, 4, waltest.SysID, 9))
	if _, err := Fetch(ctx, r.Repository, pgwal.SegmentName(1, 5, waltest.SegSize), dest, ""); !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("misplaced segment: %v", err)
	}
}

func TestPrefetch(t *testing.T) {
	r := repotest.New(t)
	ctx := context.Background()
	for segno := uint64(3); segno <= 6; segno++ {
		r.PutSegment(t, 1, segno, 9)
	}
	spool := filepath.Join(t.TempDir(), "prefetch")
	name := pgwal.SegmentName(1, 3, waltest.SegSize)
	next := NextSegments(name, 4, waltest.SegSize) // 4,5,6 exist; 7 does not
	// A prefetcher outliving recovery (its directory removed with what
	// recovery left) makes nothing.
	if stored, err := Prefetch(ctx, r.Repository, spool, next, 2); len(stored) != 0 {
		t.Fatalf("Prefetch into a missing directory = %v, %v", stored, err)
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatalf("Prefetch made its directory: %v", err)
	}
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	stored, err := Prefetch(ctx, r.Repository, spool, next, 2)
	if err != nil || len(stored) != 3 {
		t.Fatalf("Prefetch = %v, %v", stored, err)
	}
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	from, err := Fetch(ctx, r.Repository, next[0], dest, spool)
	if err != nil || !from {
		t.Fatalf("fetch from prefetch: %v %v", from, err)
	}
	CleanPrefetch(spool, next[2])
	if _, err := os.Stat(filepath.Join(spool, next[1])); !os.IsNotExist(err) {
		t.Fatal("older prefetched segment not cleaned")
	}
	if _, err := os.Stat(filepath.Join(spool, next[2])); err != nil {
		t.Fatal("current prefetched segment removed")
	}
}

func TestFetchStreamPartial(t *testing.T) {
	r := repotest.New(t)
	ctx := context.Background()
	seg := waltest.Segment(1, 8, waltest.SysID, 4)
	name := pgwal.SegmentName(1, 8, waltest.SegSize)
	for _, n := range []int64{8192, 65536} {
		r.Write(t, repo.StreamPartialKey(1, name, n), seg[:n])
	}
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	if _, err := Fetch(ctx, r.Repository, name, dest, ""); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if len(got) != waltest.SegSize || string(got[:65536]) != string(seg[:65536]) {
		t.Fatal("partial not served from the largest object")
	}
	for _, b := range got[65536:] {
		if b != 0 {
			t.Fatal("partial segment not zero-padded")
		}
	}
	// The full segment, once stored, wins.
	r.Write(t, repo.WALSegmentKey(1, 8, waltest.SegSize), seg)
	if _, err := Fetch(ctx, r.Repository, name, dest, ""); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(dest)
	if string(got) != string(seg) {
		t.Fatal("full segment not preferred")
	}
}
