package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

func TestHeadKeyRoundTrip(t *testing.T) {
	f, _ := pgwal.ParseFileName(pgwal.SegmentName(3, 0x1234, waltest.SegSize))
	key := repo.HeadKey(f)
	if key != "heads/00000003/"+f.Name {
		t.Fatalf("HeadKey = %q", key)
	}
	got, err := repo.ParseHeadKey(key)
	if err != nil || got != f {
		t.Fatalf("ParseHeadKey(%q) = %+v, %v", key, got, err)
	}
	for _, bad := range []string{
		"wal/00000003/" + f.Name, "heads/" + f.Name, "heads/00000002/" + f.Name,
		"heads/00000003/00000003.history", "heads/00000003/" + f.Name + ".partial", "heads/00000003/x",
	} {
		if _, err := repo.ParseHeadKey(bad); err == nil {
			t.Errorf("ParseHeadKey(%q) accepted", bad)
		}
	}
}

func FuzzParseHeadKey(f *testing.F) {
	for _, s := range []string{"heads/00000001/000000010000000000000005", "heads/00000002/000000010000000000000005",
		"heads/x/y", "heads/00000001/00000001.history", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		fn, err := repo.ParseHeadKey(key)
		if err != nil {
			return
		}
		if fn.Kind != pgwal.KindSegment || repo.HeadKey(fn) != key {
			t.Fatalf("ParseHeadKey(%q) = %+v, HeadKey gives %q", key, fn, repo.HeadKey(fn))
		}
	})
}

func TestWALHeads(t *testing.T) {
	ctx := context.Background()
	seg := func(tli uint32, n uint64) pgwal.FileName {
		f, _ := pgwal.ParseFileName(pgwal.SegmentName(tli, n, waltest.SegSize))
		return f
	}
	// Format 1 keeps none.
	plain := repotest.New(t)
	if err := plain.PutWALHead(ctx, seg(1, 3)); err != nil {
		t.Fatal(err)
	}
	if heads, _, err := plain.WALHeads(ctx); err != nil || heads != nil {
		t.Fatalf("format 1: %v %v", heads, err)
	}
	tr := repotest.New(t, repotest.Signed(), repotest.OnDisk())
	for _, f := range []pgwal.FileName{seg(1, 3), seg(1, 4), seg(2, 5)} {
		if err := tr.PutWALHead(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	// Twice is fine.
	if err := tr.PutWALHead(ctx, seg(1, 4)); err != nil {
		t.Fatal(err)
	}
	// A head planted by someone without a writer key, newer than the
	// real ones, and a stray key: ignored, never counted.
	planted := repo.HeadKey(seg(1, 9))
	tr.SetRaw(t, planted, tr.Raw(t, repo.HeadKey(seg(1, 4))))
	tr.SetRaw(t, "heads/00000001/junk", []byte("x"))
	heads, ignored, err := tr.WALHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads[1].File != seg(1, 4) || heads[2].File != seg(2, 5) {
		t.Fatalf("heads = %+v", heads)
	}
	var keys []string
	for _, u := range ignored {
		keys = append(keys, u.Key)
	}
	if len(ignored) != 2 || !strings.Contains(strings.Join(keys, " "), planted) {
		t.Fatalf("ignored = %v", keys)
	}
	for _, u := range ignored {
		if u.Key == planted && !errors.Is(u.Err, repo.ErrIntegrity) {
			t.Fatalf("planted head: %v", u.Err)
		}
	}
}
