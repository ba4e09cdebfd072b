package expire

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/storage"
)

// TestExpireWALRecords: on a real signed repository, expire removes the
// completeness heads and the conflicting WAL copies of the segments it
// removes, keeps those of the WAL it keeps, keeps the newest head of every
// timeline (also one whose WAL is all gone) and a planted head, and the
// archive is still complete by its heads afterwards.
func TestExpireWALRecords(t *testing.T) {
	f := newFixtureWith(t, []repotest.Option{repotest.Signed()})
	ctx := context.Background()
	file := func(tli uint32, segno uint64) pgwal.FileName {
		fn, err := pgwal.ParseFileName(pgwal.SegmentName(tli, segno, waltest.SegSize))
		if err != nil {
			t.Fatal(err)
		}
		return fn
	}
	head := func(tli uint32, segno uint64) string { return repo.HeadKey(file(tli, segno)) }
	for s := uint64(1); s <= 40; s++ {
		if err := f.r.PutWALHead(ctx, file(1, s)); err != nil {
			t.Fatal(err)
		}
	}
	// An abandoned timeline 2 that forked in segment 3 and was archived
	// up to segment 5, long before the WAL expire keeps.
	hist, _ := pgwal.ParseFileName(pgwal.HistoryFileName(2))
	if _, err := f.r.Put(ctx, repo.WALKey(hist), []byte("1\t0/3000000\tno recovery target specified\n"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for s := uint64(3); s <= 5; s++ {
		if _, err := f.r.Put(ctx, repo.WALSegmentKey(2, s, waltest.SegSize), []byte("timeline 2"), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := f.r.PutWALHead(ctx, file(2, s)); err != nil {
			t.Fatal(err)
		}
	}
	// Conflicting copies a writer stored beside segments 5 (below the WAL
	// kept) and 35 (in it), and beside the history file.
	alt := func(fn pgwal.FileName) string {
		data := []byte("another copy of " + fn.Name)
		key, err := f.r.PutWALAlternate(ctx, fn, data, sha256.Sum256(data))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	alt5, alt35, altHist := alt(file(1, 5)), alt(file(1, 35)), alt(hist)
	// A head planted past the newest (no writer key): left in place.
	planted := head(1, 41)
	if err := f.st.Put(ctx, planted, strings.NewReader("planted"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	p := f.plan(t, Policy{RetainFull: 2}) // keeps WAL from segment 20 on
	var wantHeads []string
	for s := uint64(1); s < 20; s++ {
		wantHeads = append(wantHeads, head(1, s))
	}
	wantHeads = append(wantHeads, head(2, 3), head(2, 4))
	if !slices.Equal(p.WALRecords.Heads, wantHeads) {
		t.Errorf("heads removed %v, want %v", p.WALRecords.Heads, wantHeads)
	}
	if !slices.Equal(p.WALRecords.Alternates, []string{alt5}) {
		t.Errorf("alternates removed %v, want %v", p.WALRecords.Alternates, []string{alt5})
	}
	if !strings.Contains(p.Summary(), "21 WAL completeness heads and 1 conflicting WAL copies") {
		t.Errorf("summary %q does not count the records", p.Summary())
	}
	f.execute(t, p)

	exists := func(key string) bool {
		_, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(key)))
		return err == nil
	}
	for _, k := range wantHeads {
		if exists(k) {
			t.Errorf("%s still there", k)
		}
	}
	for _, k := range []string{head(1, 20), head(1, 40), head(2, 5), planted, alt35, altHist} {
		if !exists(k) {
			t.Errorf("%s removed, want it kept", k)
		}
	}
	if again := f.plan(t, Policy{RetainFull: 2}); !again.Empty() {
		t.Errorf("a second run still removes heads %v, alternates %v", again.WALRecords.Heads, again.WALRecords.Alternates)
	}
	// Completeness survives: the newest heads are the same, and the WAL
	// timeline 1 needs is all there by them.
	cat, err := catalog.Load(ctx, f.r)
	if err != nil {
		t.Fatal(err)
	}
	if cat.Heads[1].Key != head(1, 40) || cat.Heads[2].Key != head(2, 5) {
		t.Errorf("newest heads after expire %v", cat.Heads)
	}
	if m := cat.MissingWAL(1, cat.NeededFrom(1, nil)); len(m) != 0 {
		t.Errorf("after expire, missing %v", m)
	}
	// And it still catches a deletion right after the expire.
	if err := f.st.Delete(ctx, repo.WALSegmentKey(1, 40, waltest.SegSize)); err != nil {
		t.Fatal(err)
	}
	if cat, err = catalog.Load(ctx, f.r); err != nil {
		t.Fatal(err)
	}
	if m := cat.MissingWAL(1, cat.NeededFrom(1, nil)); !slices.Equal(m, []string{repo.WALSegmentKey(1, 40, waltest.SegSize)}) {
		t.Errorf("the newest segment deleted after expire: missing %v", m)
	}
}
