package filestorefetch

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

func store(t *testing.T, r *repo.Repository, content string) Ref {
	t.Helper()
	sum := sha1.Sum([]byte(content))
	h := hex.EncodeToString(sum[:])
	name := repo.FilestoreNameOf(h)
	if _, err := r.Put(context.Background(), repo.FilestoreObjectKey(name), []byte(content), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return Ref{StoreFname: name, Checksum: h}
}

func TestFetch(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	a, b, c := store(t, r, "invoice 1"), store(t, r, "invoice 2"), store(t, r, "logo")
	missing := Ref{StoreFname: repo.FilestoreNameOf(strings.Repeat("f", 40)), Checksum: strings.Repeat("f", 40)}
	odd := Ref{StoreFname: "abc/" + strings.Repeat("a", 40)}
	dir := filepath.Join(t.TempDir(), "filestore", "copy")

	// b is already there and right; c is there but damaged.
	os.MkdirAll(filepath.Join(dir, b.StoreFname[:2]), 0o750)
	os.WriteFile(filepath.Join(dir, b.StoreFname), []byte("invoice 2"), 0o640)
	os.MkdirAll(filepath.Join(dir, c.StoreFname[:2]), 0o750)
	os.WriteFile(filepath.Join(dir, c.StoreFname), []byte("lgoo"), 0o640)

	// odd twice (two checksums): one name, one problem.
	refs := []Ref{a, b, c, missing, odd, {StoreFname: a.StoreFname}, {StoreFname: odd.StoreFname, Checksum: "x"}}
	rep, err := Fetch(ctx, r, refs, dir, FetchOptions{Workers: 2})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "2 of 5 referenced files") {
		t.Fatalf("want ErrIncomplete for 2 of 5, got %v", err)
	}
	if rep.Referenced != 5 || rep.Fetched != 2 || rep.Present != 1 || len(rep.Missing) != 1 || rep.Missing[0] != missing || len(rep.Unusable) != 1 || rep.Unusable[0].StoreFname != odd.StoreFname {
		t.Fatalf("report %+v", rep)
	}
	for ref, want := range map[Ref]string{a: "invoice 1", b: "invoice 2", c: "logo"} {
		p := filepath.Join(dir, ref.StoreFname)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Fatalf("%s: %q %v", ref.StoreFname, got, err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o640 && ref != b {
			t.Fatalf("%s mode %v", p, fi.Mode())
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".walvault-*"))
	if len(left) != 0 {
		t.Fatalf("temporaries left: %v", left)
	}

	// All present now: nothing fetched, complete.
	rep, err = Fetch(ctx, r, []Ref{a, b, c}, dir, FetchOptions{})
	if err != nil || rep.Present != 3 || rep.Fetched != 0 {
		t.Fatalf("second fetch %+v %v", rep, err)
	}
}

func TestFetchRefusesDamagedObject(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	// An object whose content is not what its name says (planted or a
	// bug): envelope intact, SHA-1 wrong.
	name := repo.FilestoreNameOf(strings.Repeat("1", 40))
	if _, err := r.PutSum(ctx, repo.FilestoreObjectKey(name), []byte("other"), sha256.Sum256([]byte("other")), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rep, err := Fetch(ctx, r, []Ref{{StoreFname: name}}, dir, FetchOptions{})
	if !errors.Is(err, ErrIncomplete) || len(rep.Unusable) != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
		t.Fatal("a file with the wrong content was written")
	}
}

// Every folder mkdirOwned creates gets the owner, not only the last one:
// <data_dir>/filestore left to root would keep Odoo out.
func TestMkdirOwnedChownsCreatedParents(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give folders away")
	}
	top := t.TempDir()
	dir := filepath.Join(top, "odoo", "filestore", "prod", "ab")
	if _, err := mkdirOwned(dir, FetchOptions{Chown: true, UID: 65534, GID: 65534}); err != nil {
		t.Fatal(err)
	}
	for d := dir; d != top; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: uid %d mode %v, want 65534 and 0750", d, st.Uid, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(top); fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("the existing folder %s changed owner", top)
	}
}

// mkdirOwned names every folder it creates, and only those: Fetch syncs
// their parents, or a power loss could drop <data_dir>/filestore with
// every file below it fsynced.
func TestMkdirOwnedReportsCreated(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "filestore", "prod")
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{dir, []string{filepath.Join(top, "filestore"), dir}},
		{dir, nil}, // exists now
		{filepath.Join(dir, "ab"), []string{filepath.Join(dir, "ab")}},
	} {
		got, err := mkdirOwned(tc.dir, FetchOptions{})
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("mkdirOwned(%s) = %q %v, want %q", tc.dir, got, err, tc.want)
		}
	}
}

// A file where a folder belongs is an error naming it, not a folder: it
// must not be chmod'ed and taken for one.
func TestMkdirOwnedRefusesFile(t *testing.T) {
	top := t.TempDir()
	file := filepath.Join(top, "filestore")
	if err := os.WriteFile(file, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "prod")} {
		_, err := mkdirOwned(dir, FetchOptions{})
		if err == nil || !strings.Contains(err.Error(), file+": it exists and is not a folder") {
			t.Errorf("mkdirOwned(%s): %v", dir, err)
		}
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the file was changed: %v %v", fi.Mode(), err)
	}
}
