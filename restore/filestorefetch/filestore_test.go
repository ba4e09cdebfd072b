package filestorefetch

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
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

// Every folder openDir creates gets the owner, not only the last one:
// <data_dir>/filestore left to root would keep Odoo out.
func TestOpenDirChownsCreatedParents(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give folders away")
	}
	top := t.TempDir()
	dir := filepath.Join(top, "odoo", "filestore", "prod")
	root, err := openDir(dir, FetchOptions{Chown: true, UID: 65534, GID: 65534})
	if err != nil {
		t.Fatal(err)
	}
	root.Close()
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

// openDir opens what exists and creates what does not, and the Root it
// returns is the directory asked for.
func TestOpenDir(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "filestore", "prod")
	for range 2 { // created, then existing
		root, err := openDir(dir, FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := root.WriteFile("x", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		root.Close()
		if _, err := os.Stat(filepath.Join(dir, "x")); err != nil {
			t.Fatal(err)
		}
	}
}

// A file where a folder belongs is an error naming it, not a folder: it
// must not be chmod'ed and taken for one.
func TestOpenDirRefusesFile(t *testing.T) {
	top := t.TempDir()
	file := filepath.Join(top, "filestore")
	if err := os.WriteFile(file, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "prod")} {
		_, err := openDir(dir, FetchOptions{})
		if err == nil || !strings.Contains(err.Error(), file+": it exists and is not a folder") {
			t.Errorf("openDir(%s): %v", dir, err)
		}
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the file was changed: %v %v", fi.Mode(), err)
	}
}

// Issue 14: root restoring a filestore that the odoo account can write
// must not follow a link that account planted. A folder <db>/ab that is a
// link is not entered: its files are reported, the others restored, and
// nothing is written where the link points.
func TestFetchDoesNotFollowLinkedFolder(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	a, b := store(t, r, "invoice 1"), store(t, r, "invoice 2")
	for a.StoreFname[:2] == b.StoreFname[:2] {
		t.Fatal("pick contents in different folders")
	}
	top := t.TempDir()
	outside := filepath.Join(top, "etc-systemd-system")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "filestore", "prod")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{outside, b.StoreFname[:2] + "x"} { // out of the filestore, and inside it
		link := filepath.Join(dir, a.StoreFname[:2])
		os.Remove(link)
		os.MkdirAll(filepath.Join(dir, b.StoreFname[:2]+"x"), 0o750)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		rep, err := Fetch(ctx, r, []Ref{a, b}, dir, FetchOptions{Workers: 2})
		if !errors.Is(err, ErrIncomplete) || rep.Fetched+rep.Present != 1 || len(rep.Unusable) != 1 || rep.Unusable[0].StoreFname != a.StoreFname {
			t.Fatalf("link to %s: %+v, %v", target, rep, err)
		}
		if why := rep.Unusable[0].Reason; !strings.Contains(why, link+" is a symbolic link (to "+target+")") || !strings.Contains(why, "remove it") {
			t.Errorf("reason: %s", why)
		}
		if got, err := os.ReadFile(filepath.Join(dir, b.StoreFname)); err != nil || string(got) != "invoice 2" {
			t.Errorf("the other file: %q %v", got, err)
		}
		for _, d := range []string{outside, filepath.Join(dir, b.StoreFname[:2]+"x")} {
			if entries, _ := os.ReadDir(d); len(entries) != 0 {
				t.Errorf("written through the link into %s: %v", d, entries)
			}
		}
	}
}

// A file name that is a link (or a FIFO) is replaced, never written
// through, never waited on.
func TestFetchReplacesLinkedFile(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	a, b := store(t, r, "invoice 1"), store(t, r, "invoice 2")
	top := t.TempDir()
	victim := filepath.Join(top, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "filestore", "prod")
	os.MkdirAll(filepath.Join(dir, a.StoreFname[:2]), 0o750)
	os.MkdirAll(filepath.Join(dir, b.StoreFname[:2]), 0o750)
	if err := os.Symlink(victim, filepath.Join(dir, a.StoreFname)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, b.StoreFname), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Fetch(ctx, r, []Ref{a, b}, dir, FetchOptions{})
	if err != nil || rep.Fetched != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
	for ref, want := range map[Ref]string{a: "invoice 1", b: "invoice 2"} {
		p := filepath.Join(dir, ref.StoreFname)
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v %v, want a regular file", p, fi, err)
		}
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("%s: %q", p, got)
		}
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep me" {
		t.Errorf("written through the link: %q", got)
	}
}

// The filestore directory's own path: a link another account owns decides
// where root would write, and is refused; root's own links are followed.
func TestFetchRefusesForeignLinkInPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make links of another account")
	}
	r := repotest.New(t).Repository
	ctx := context.Background()
	a := store(t, r, "invoice 1")
	top := t.TempDir()
	elsewhere := filepath.Join(top, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(top, "odoo")
	if err := os.MkdirAll(filepath.Join(data, "filestore"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(data, "filestore", "prod")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{link, filepath.Join(link, "sub")} {
		rep, err := Fetch(ctx, r, []Ref{a}, dir, FetchOptions{})
		if !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), link+" is a symbolic link (to "+elsewhere+") owned by uid 65534") {
			t.Fatalf("%s: %+v %v, want ErrUnsafePath naming the link", dir, rep, err)
		}
		if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
			t.Fatalf("written through the link: %v", entries)
		}
	}
	if err := os.Lchown(link, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(ctx, r, []Ref{a}, link, FetchOptions{}); err != nil {
		t.Fatalf("through root's own link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, a.StoreFname)); err != nil {
		t.Error(err)
	}
}
