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
	if _, err := os.Stat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dead Put's temporary is still there (%v)", err)
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
