package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
	"github.com/walvault/walvault/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// sharedRoot makes a root directory as an administrator makes a shared
// repository's (install -d -m 2770 -g GROUP): here the test's own group.
func sharedRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o770|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSetgid == 0 {
		t.Skipf("this file system does not keep the set-group-ID bit of %s", root)
	}
	return root
}

// withUmask runs the rest of the test under umask m, as services do
// (systemd's UMask=0077): the modes must not depend on it. The umask is the
// process's; this package's tests do not run in parallel.
func withUmask(t *testing.T, m int) {
	old := syscall.Umask(m)
	t.Cleanup(func() { syscall.Umask(old) })
}

// checkTreeModes fails for every directory below root whose mode is not
// dir and every file whose mode is not file, and for anything whose group
// is not root's.
func checkTreeModes(t *testing.T, root string, dir, file os.FileMode) {
	t.Helper()
	rfi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	gid := rfi.Sys().(*syscall.Stat_t).Gid
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		want := file
		if fi.IsDir() {
			want = dir | os.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		if g := fi.Sys().(*syscall.Stat_t).Gid; g != gid {
			t.Errorf("%s: group %d, want the root's %d", p, g, gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConformanceShared: a store whose root is set-group-ID and
// group-writable passes the same suite, under a umask that would hide
// everything from the group, and everything it leaves is 2770 or 0640 and
// of the root's group.
func TestConformanceShared(t *testing.T) {
	withUmask(t, 0o077)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		root := sharedRoot(t)
		s, err := local.New(root)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Shared() {
			t.Fatalf("store on a 2770 root is not shared")
		}
		t.Cleanup(func() { checkTreeModes(t, root, 0o770|os.ModeSetgid, 0o640) })
		return s
	})
}

// TestModesPrivate: without a shared root, whatever the umask, the store
// creates 0700 directories and 0600 files; a root that is group-writable
// but not set-group-ID, or set-group-ID but not group-writable, is not
// shared either.
func TestModesPrivate(t *testing.T) {
	withUmask(t, 0)
	for _, mode := range []os.FileMode{0o700, 0o770, 0o750 | os.ModeSetgid} {
		t.Run(mode.String(), func(t *testing.T) {
			root := t.TempDir()
			if err := os.Chmod(root, mode); err != nil {
				t.Fatal(err)
			}
			s, err := local.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			if s.Shared() {
				t.Fatalf("store on a %v root is shared", mode)
			}
			for _, opts := range []storage.PutOptions{{}, {IfAbsent: true}} {
				key := fmt.Sprintf("d/e/k-%v", opts.IfAbsent)
				if err := s.Put(t.Context(), key, strings.NewReader("x"), opts); err != nil {
					t.Fatal(err)
				}
			}
			checkTreeModes(t, root, 0o700, 0o600)
		})
	}
}

// TestSharedModeDecidedAtOpen: the mode is the root's when the store is
// opened; a store opened on a missing root creates it private.
func TestSharedModeDecidedAtOpen(t *testing.T) {
	base := t.TempDir()
	s, err := local.Open(filepath.Join(base, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Shared() {
		t.Fatal("store on a missing root is shared")
	}
	if err := s.Put(t.Context(), "a/k", strings.NewReader("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(base, "repo"))
	if err != nil || fi.Mode() != 0o700|os.ModeDir {
		t.Fatalf("root made by the first Put: %v, %v; want drwx------", fi, err)
	}
	checkTreeModes(t, filepath.Join(base, "repo"), 0o700, 0o600)
}

// TestDeadTemporariesRemovedShared: in a shared store, a temporary a dead
// Put left (of the group, 0640, as any member's Put leaves it) is removed
// by the next Put, as in a private one.
func TestDeadTemporariesRemovedShared(t *testing.T) {
	withUmask(t, 0o077)
	root := sharedRoot(t)
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(root, ".tmp", name)
		if err := os.WriteFile(p, []byte("half an attachment"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dead := write("put-999", 0o640)
	// Dead before it was given to the group: unreadable to the others,
	// so it cannot be locked. Here it is unreadable to its owner too,
	// which only a test run without root notices (as root the lock is
	// tried and succeeds); e2e/docsetup_test.go has other users.
	unshared := write("put-998", 0)
	if err := s.Put(t.Context(), "k", strings.NewReader("v"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dead, unshared} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the dead Put's temporary %s is still there (%v)", filepath.Base(p), err)
		}
	}
	checkTreeModes(t, root, 0o770|os.ModeSetgid, 0o640)
}

func TestModesAndTemporaries(t *testing.T) {
	root := t.TempDir()
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Put(ctx, "a/b/c", bytes.NewReader([]byte("x")), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"a", 0o700 | os.ModeDir},
		{"a/b", 0o700 | os.ModeDir},
		{"a/b/c", 0o600},
	} {
		fi, err := os.Stat(filepath.Join(root, c.path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
	// A temporary left by a crashed Put is never listed.
	if err := os.WriteFile(filepath.Join(root, ".tmp", "put-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.List(ctx, "", func(oi storage.ObjectInfo) error { got = append(got, oi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "a/b/c" {
		t.Errorf("List = %q, want [a/b/c]", got)
	}
	if err := s.List(ctx, ".tmp/", func(oi storage.ObjectInfo) error { t.Errorf("listed %s", oi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, ".tmp/x", bytes.NewReader(nil), storage.PutOptions{}); err == nil {
		t.Error("Put(.tmp/x) succeeded; .tmp is reserved")
	}
	// Successful and failed puts leave no temporaries.
	if err := s.Put(ctx, "a/b/c", bytes.NewReader([]byte("y")), storage.PutOptions{IfAbsent: true}); !storage.IsExist(err) {
		t.Fatalf("got %v, want exist", err)
	}
	ents, err := os.ReadDir(filepath.Join(root, ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf(".tmp holds %d entries, want only the planted one", len(ents))
	}
	if want := "file://" + root; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestNewOnFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.New(f); err == nil {
		t.Error("New on a regular file succeeded")
	}
}

// An I/O or permission failure must never look like a missing object.
func TestUnreadableIsNotNotFound(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions")
	}
	root := t.TempDir()
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "d/k", bytes.NewReader([]byte("x")), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "d"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(root, "d"), 0o700) })
	for _, key := range []string{"d/k", "d/missing"} {
		if _, err := s.Get(t.Context(), key); err == nil || storage.IsNotExist(err) {
			t.Errorf("Get(%s) in an unreadable directory: %v, want a non-not-found error", key, err)
		}
	}
}

// BenchmarkPut measures one WAL-segment-sized durable Put (write, fsync,
// rename, directory fsync).
func BenchmarkPut(b *testing.B) {
	s, err := local.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		if err := s.Put(b.Context(), fmt.Sprintf("wal/%024d", i), bytes.NewReader(data), storage.PutOptions{IfAbsent: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeadTemporariesRemoved: the temporary of a Put whose process died
// (nobody holds it locked) is removed by the next Put; one a live Put holds
// locked is left alone, as is one created a moment ago.
func TestDeadTemporariesRemoved(t *testing.T) {
	dir := t.TempDir()
	if _, err := local.New(dir); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp")
	old := time.Now().Add(-time.Minute)
	write := func(name string, mtime time.Time) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte("half a segment"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dead := write("put-111", old)
	fresh := write("put-222", time.Now())
	live := write("put-333", old)
	// A directory a mkdir prepared before it died (always empty).
	deadDir := filepath.Join(tmp, "dir-444")
	if err := os.Mkdir(deadDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(deadDir, old, old); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Skipf("no file locks here: %v", err)
	}

	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a/k", bytes.NewReader([]byte("v")), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dead, deadDir} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the dead Put's temporary %s is still there (%v)", filepath.Base(p), err)
		}
	}
	for _, p := range []string{fresh, live} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

// TestOpenCreatesNothing: a read-only command on a mistyped path leaves no
// directory behind; the first write makes it.
func TestOpenCreatesNothing(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dir := filepath.Join(base, "does", "not", "exist")
	s, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "walvault.json"); !storage.IsNotExist(err) {
		t.Errorf("Get = %v, want not found", err)
	}
	if _, err := s.Stat(ctx, "walvault.json"); !storage.IsNotExist(err) {
		t.Errorf("Stat = %v, want not found", err)
	}
	n := 0
	if err := s.List(ctx, "", func(storage.ObjectInfo) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List = %d objects, %v", n, err)
	}
	if _, err := os.Lstat(filepath.Join(base, "does")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading made a directory: %v", err)
	}
	if err := s.Put(ctx, "a/b", strings.NewReader("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("after Put: %v, %v", fi, err)
	}
}

// TestConcurrentPutsShareNewParents: Puts at once into keys whose parent
// directories do not exist yet, as a filestore push does with its
// workers: every Put succeeds. A directory made by one could be replaced,
// while still empty, by another's, and a third then renamed its own
// child into the replaced, deleted one (ENOENT).
func TestConcurrentPutsShareNewParents(t *testing.T) {
	for round := range 40 {
		s, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 16)
		start := make(chan struct{})
		for i := range errs {
			wg.Go(func() {
				<-start
				key := fmt.Sprintf("filestore/objects/%02x/%d", i, round)
				errs[i] = s.Put(context.Background(), key, bytes.NewReader([]byte(key)), storage.PutOptions{IfAbsent: true})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, put %d: %v", round, i, err)
			}
		}
	}
}
