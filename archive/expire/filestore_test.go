package expire

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

func TestFilestoreExpire(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	name := func(c string) string { return repo.FilestoreNameOf(strings.Repeat(c, 40)) }
	a, b, c, d, e, fresh, g := name("a"), name("b"), name("c"), name("d"), name("e"), name("f"), name("1")
	for _, n := range []string{a, b, c, d, e, fresh, g} {
		if _, err := f.r.Put(ctx, repo.FilestoreObjectKey(n), []byte("content of "+n), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// e is named by no log and old: the leftover of a pass that never
	// logged. fresh is named by none but new: a pass may log it yet.
	old := now.Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(f.dir, filepath.FromSlash(repo.FilestoreObjectKey(e))), old, old); err != nil {
		t.Fatal(err)
	}
	day := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	for _, rec := range []repo.FilestoreRecord{
		{DB: "prod", Time: day(25), Kind: repo.FilestoreSnapshot, Added: []string{a, b, d}},
		// a: attachment deleted and garbage-collected before the window
		{DB: "prod", Time: day(15), Kind: repo.FilestoreDelta, Removed: []string{a, d}},
		// b: row deleted before the window, file collected only after
		// the window's start (deferred deletion): a restore to the
		// window's start has the row, so the file is needed
		{DB: "prod", Time: day(9), Kind: repo.FilestoreDelta, Removed: []string{b}},
		// c new in the window; d re-added after its deletion
		{DB: "prod", Time: day(5), Kind: repo.FilestoreDelta, Added: []string{c, d}},
		// another database: g gone before the window
		{DB: "shop", Time: day(12), Kind: repo.FilestoreSnapshot, Added: []string{g}},
		{DB: "shop", Time: day(11), Kind: repo.FilestoreDelta, Removed: []string{g}},
	} {
		if _, err := f.r.PutFilestoreRecord(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	// The newest two backups are kept: the window starts 10 days ago.
	pol := Policy{RetainFull: 2, FilestoreMargin: time.Hour}
	p := f.plan(t, pol)
	if p.Filestore == nil {
		t.Fatal("no filestore plan")
	}
	if got, want := p.Filestore.Objects, []string{g, a, e}; !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if len(p.Filestore.Compact) != 2 {
		t.Fatalf("compactions %+v", p.Filestore.Compact)
	}
	stateBefore := foldLog(t, f.r, "prod")
	if err := Execute(ctx, f.r, p, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a, e, g} {
		if found, err := f.r.HasFilestoreObject(ctx, n); found || err != nil {
			t.Errorf("%s still stored: %v", n, err)
		}
	}
	for _, n := range []string{b, c, d, fresh} {
		if found, err := f.r.HasFilestoreObject(ctx, n); !found || err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
	// The compacted log folds to the same state, and b is still present
	// at the window's start.
	if after := foldLog(t, f.r, "prod"); !slices.Equal(after, stateBefore) {
		t.Fatalf("fold after compaction %v, before %v", after, stateBefore)
	}
	recs, _ := f.r.FilestoreLog(ctx, "prod")
	if len(recs) != 3 || recs[0].Kind != repo.FilestoreSnapshot || !slices.Equal(recs[0].Added, []string{b}) {
		t.Fatalf("compacted log %+v", recs)
	}
	// A second run has nothing left to do.
	p = f.plan(t, pol)
	if p.Filestore == nil || len(p.Filestore.Objects) != 0 || len(p.Filestore.Compact) != 0 {
		t.Fatalf("second plan %+v", p.Filestore)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func foldLog(t *testing.T, r *repo.Repository, db string) []string {
	t.Helper()
	recs, err := r.FilestoreLog(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]bool{}
	for _, rec := range recs {
		rec.Apply(state)
	}
	var out []string
	for n := range state {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
