package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

// TestWALServer: PostgreSQL archives to MinIO through `walvault wal-server`
// (archive_command = wal-push --wal-server SOCKET). Segments arrive through
// the server; when it is killed -9 mid-run, wal-push archives by itself and
// nothing is missed; a conflict found by the server fails archive_command
// with the server's exit status; a restarted server takes over the stale
// socket. A backup taken before any of that and a restore of it to the
// last commit prove the archive whole: recovery replays every segment the
// servers and the fallback stored.
func TestWALServer(t *testing.T) {
	h := newHarness(t)
	srv := miniotest.Start(t)
	registerSecret("S3 secret key", srv.SecretKey)
	const bucket, prefix = "walvault-e2e", "clusters/walserver"
	srv.CreateBucket(t, bucket)
	repo := s3Repo(h, srv, bucket, prefix, srv.Endpoint)

	// The socket lives in a directory of the PostgreSQL user, as
	// /run/walvault would (short path: Unix sockets allow ~100 bytes).
	sockDir, err := os.MkdirTemp("", "wvs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	h.Chown(sockDir)
	socket := filepath.Join(sockDir, "wal.sock")

	pg := h.InitCluster("pg")
	pg.Env = repo.Env
	// The small client, as the README recommends; it falls back to
	// walvault wal-push beside it.
	pushClient := filepath.Join(filepath.Dir(suite.walvault), "walvault-push")
	if _, err := os.Stat(pushClient); err != nil {
		skipOutsideCI(t, "no walvault-push beside "+suite.walvault+" (a prebuilt WALVAULT_E2E_BINARY)")
	}
	pg.ConfigureArchiving(pushClient + " --wal-server " + socket + " %p")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")

	server, out := wv.Start("wal-server", "--socket", socket, "--log-level", "debug")
	waitFor(t, "the WAL server's socket", 30*time.Second, func() (bool, error) {
		_, err := os.Stat(socket)
		return err == nil, nil
	})
	// The backup comes first, so the restore at the end replays every
	// segment archived below, through the server or without it: a segment
	// stored wrong or not at all stops recovery short of the last commit.
	// Its own WAL goes through the server too.
	wv.MustRun("backup", "--fast")
	pg.Exec("CREATE TABLE t (i int)")
	var segs []string
	for range 3 {
		pg.Exec("INSERT INTO t SELECT generate_series(1, 1000)")
		segs = append(segs, pg.SwitchAndWaitArchived())
	}
	if log := pg.Log(); strings.Contains(log, "directly") || strings.Contains(log, "running walvault wal-push") {
		t.Errorf("wal-push fell back to pushing by itself while the server ran:\n%s", tail(log, 20))
	}

	// Server killed: archiving goes on without it.
	if err := server.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	server.Wait()
	// Its output is read only now: exec writes it from another goroutine
	// while the process runs.
	for _, s := range segs {
		if !strings.Contains(out.String(), s) {
			t.Errorf("segment %s was not archived by the WAL server:\n%s", s, out.String())
		}
	}
	for range 2 {
		pg.Exec("INSERT INTO t SELECT generate_series(1, 1000)")
		seg := pg.SwitchAndWaitArchived()
		if !strings.Contains(pg.Log(), "running walvault wal-push") || !strings.Contains(pg.Log(), "archiving "+seg+" directly") {
			t.Errorf("no fallback message for %s in the server log:\n%s", seg, pg.LogTail(20))
		}
	}

	// A new server takes over the stale socket file.
	server2, out2 := wv.Start("wal-server", "--socket", socket, "--log-level", "debug")
	waitFor(t, "the restarted WAL server", 30*time.Second, func() (bool, error) {
		c, err := net.Dial("unix", socket)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	pg.Exec("INSERT INTO t SELECT generate_series(1, 1000)")
	seg := pg.SwitchAndWaitArchived()
	// A second server on a live socket is refused.
	_, stderr := wv.RunExpect(3, "wal-server", "--socket", socket)
	if !strings.Contains(stderr, "another WAL server") {
		t.Errorf("second server on a live socket: %s", stderr)
	}

	// A conflict seen by the server: the file is stored beside the other
	// (issue 14), wal-push exits 0.
	fetched := filepath.Join(h.Mkdir(h.Path("files"), 0o755), seg)
	wv.MustRun("wal-fetch", seg, fetched)
	b, err := os.ReadFile(fetched)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	h.WriteFile(fetched, b, 0o600)
	wv.RunExpect(0, "wal-push", "--wal-server", socket, fetched)
	// The same through walvault-push: the server's exit status.
	cmd := h.command(context.Background(), suite.pgUser, repo.Env, pushClient, "--wal-server", socket, fetched)
	if b2, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("walvault-push of a conflicting file: %v\n%s", err, b2)
	}
	// The server stops cleanly on SIGTERM and removes its socket.
	if err := server2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := server2.Wait(); err != nil {
		t.Errorf("wal-server after SIGTERM: %v\n%s", err, out2.String())
	}
	if !strings.Contains(out2.String(), seg) {
		t.Errorf("segment %s was not archived by the restarted server:\n%s", seg, out2.String())
	}
	if n := strings.Count(out2.String(), "WAL conflict"); n != 2 {
		t.Errorf("the server logged %d conflicts, want 2 (the conflict through wal-push and walvault-push):\n%s", n, out2.String())
	}
	// Both copies are signed by this cluster's writer and differ: readers
	// refuse them until the operator removes the wrong one, as check and
	// verify tell (the damaged file the test pushed).
	bucketOps := s3Access(t, srv, bucket, prefix)
	alts := bucketOps.list("wal/" + seg[:8] + "/" + seg + "~")
	if len(alts) != 1 {
		t.Fatalf("copies stored beside %s: %v", seg, alts)
	}
	bucketOps.del(alts[0])
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("socket left after a clean stop: %v", err)
	}

	// The archive is whole: the backup from the start, restored to the end.
	pg.Exec("INSERT INTO t VALUES (-1)")
	pg.SwitchAndWaitArchived()
	want := pg.QueryString("SELECT count(*)::text FROM t")
	if want != "6001" {
		t.Fatalf("the primary holds %s rows, want 6001", want)
	}
	pg.Stop("immediate")
	restored := h.Path("restored")
	wv.MustRun("restore", "--pgdata", restored, "--copy-s3-credentials")
	rc := h.ClusterAt("restored", restored)
	rc.Env = repo.Env
	rc.Start()
	rc.WaitPromoted()
	if got := rc.QueryString("SELECT count(*)::text FROM t"); got != want {
		t.Errorf("restored %s rows, want %s", got, want)
	}
}
