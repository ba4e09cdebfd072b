package walpush

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walvault/walvault/archive/walpush/walclient"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

// startServer serves r on a socket in a temporary directory, with a handler
// that turns errors into codes the way the command does (5 for a conflict,
// 4 for another cluster, 1 otherwise).
func startServer(t *testing.T, r *repo.Repository, repoURL string) string {
	t.Helper()
	// Unix socket paths are short (108 bytes): not under t.TempDir().
	dir, err := os.MkdirTemp("", "wvsock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "wal.sock")
	l, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("socket mode: %v %v, want no access for group or others", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := func(ctx context.Context, path string) (bool, int, error) {
		res, err := Push(ctx, r, path, Options{})
		code := 0
		switch {
		case errors.Is(err, ErrConflict):
			code = 5
		case errors.Is(err, repo.ErrClusterMismatch):
			code = 4
		case err != nil:
			code = 1
		}
		return res.Stored, code, err
	}
	go func() { done <- Serve(ctx, l, h, ServerOptions{Repo: repoURL}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return socket
}

func TestServerPushesLikePush(t *testing.T) {
	tr := repotest.New(t, repotest.OnDisk())
	r, repoDir := tr.Repository, tr.Dir
	ctx := context.Background()
	socket := startServer(t, r, "file://"+repoDir)
	wal := t.TempDir()
	name := pgwal.SegmentName(1, 5, waltest.SegSize)
	seg := waltest.Segment(1, 5, waltest.SysID, 1)
	p := writeWAL(t, wal, name, seg)

	resp, err := walclient.Ask(ctx, socket, "file://"+repoDir, p)
	if err != nil || !resp.Stored {
		t.Fatalf("first push through the server: %+v %v", resp, err)
	}
	got, _, err := r.Get(ctx, repo.WALKey(mustParse(t, name)))
	if err != nil || string(got) != string(seg) {
		t.Fatalf("stored object: %v", err)
	}
	// Same again: success, not stored twice.
	if resp, err := walclient.Ask(ctx, socket, "file://"+repoDir, p); err != nil || resp.Stored {
		t.Fatalf("second push: %+v %v", resp, err)
	}
	// Different content: stored beside it, success (archiving goes on).
	p2 := writeWAL(t, t.TempDir(), name, waltest.Segment(1, 5, waltest.SysID, 2))
	if resp, err := walclient.Ask(ctx, socket, "file://"+repoDir, p2); err != nil || !resp.Stored {
		t.Fatalf("conflict through the server: %+v %v", resp, err)
	}
	var re *walclient.RemoteError
	// Another cluster's segment: code 4.
	p3 := writeWAL(t, t.TempDir(), pgwal.SegmentName(1, 6, waltest.SegSize), waltest.Segment(1, 6, 42, 1))
	if _, err := walclient.Ask(ctx, socket, "file://"+repoDir, p3); !errors.As(err, &re) || re.Code != 4 {
		t.Fatalf("foreign segment through the server: %v", err)
	}
	// A relative path is resolved by the client (the archiver runs in
	// PGDATA and passes pg_wal/NAME).
	t.Chdir(wal)
	if _, err := walclient.Ask(ctx, socket, "file://"+repoDir, name); err != nil {
		t.Fatalf("relative path: %v", err)
	}
}

func TestServerUnavailable(t *testing.T) {
	tr := repotest.New(t, repotest.OnDisk())
	r, repoDir := tr.Repository, tr.Dir
	ctx := context.Background()
	p := writeWAL(t, t.TempDir(), pgwal.SegmentName(1, 5, waltest.SegSize), waltest.Segment(1, 5, waltest.SysID, 1))

	// Nobody listening.
	dir, err := os.MkdirTemp("", "wvsock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := walclient.Ask(ctx, filepath.Join(dir, "none.sock"), "file://"+repoDir, p); !errors.Is(err, walclient.ErrServerUnavailable) {
		t.Fatalf("no server: %v", err)
	}
	// A server archiving elsewhere turns the request away, untouched.
	socket := startServer(t, r, "file:///somewhere/else")
	if _, err := walclient.Ask(ctx, socket, "file://"+repoDir, p); !errors.Is(err, walclient.ErrServerUnavailable) || !strings.Contains(err.Error(), "somewhere/else") {
		t.Fatalf("server of another repository: %v", err)
	}
	if _, _, err := r.Get(ctx, repo.WALKey(mustParse(t, filepath.Base(p)))); err == nil {
		t.Fatal("a server of another repository stored the file")
	}
	// A server that closes without answering (it died mid-push).
	mute := filepath.Join(dir, "mute.sock")
	l, err := net.Listen("unix", mute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			c.Read(buf)
			c.Close()
		}
	}()
	if _, err := walclient.Ask(ctx, mute, "file://"+repoDir, p); !errors.Is(err, walclient.ErrServerUnavailable) {
		t.Fatalf("server died before answering: %v", err)
	}
}

func TestListenRefusesLiveServerAndNonSocket(t *testing.T) {
	tr := repotest.New(t, repotest.OnDisk())
	r, repoDir := tr.Repository, tr.Dir
	socket := startServer(t, r, "file://"+repoDir)
	if _, err := Listen(socket); err == nil || !strings.Contains(err.Error(), "another WAL server") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	dir := t.TempDir()
	plain := filepath.Join(dir, "file")
	os.WriteFile(plain, []byte("x"), 0o600)
	if _, err := Listen(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "x" {
		t.Fatal("Listen touched a regular file")
	}
}
