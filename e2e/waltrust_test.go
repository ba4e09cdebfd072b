package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

// bucketAccess is what someone with write access to the repository's
// storage (and no key) can do to its objects: the test's hostile hand, on
// a directory or on MinIO.
type bucketAccess struct {
	get  func(key string) []byte
	put  func(key string, data []byte)
	del  func(key string)
	list func(prefix string) []string
}

func dirAccess(t *testing.T, h *Harness, rp *Repo) bucketAccess {
	path := func(key string) string { return filepath.Join(rp.Dir, filepath.FromSlash(key)) }
	return bucketAccess{
		get: func(key string) []byte {
			b, err := os.ReadFile(path(key))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		put: func(key string, data []byte) {
			if err := os.MkdirAll(filepath.Dir(path(key)), 0o700); err != nil {
				t.Fatal(err)
			}
			h.WriteFile(path(key), data, 0o600)
			h.ChownTree(rp.Dir)
		},
		del: func(key string) {
			if err := os.Remove(path(key)); err != nil {
				t.Fatal(err)
			}
		},
		list: func(prefix string) []string {
			matches, _ := filepath.Glob(path(prefix) + "*")
			var out []string
			for _, m := range matches {
				rel, _ := filepath.Rel(rp.Dir, m)
				out = append(out, filepath.ToSlash(rel))
			}
			return out
		},
	}
}

func s3Access(t *testing.T, srv *miniotest.Server, bucket, prefix string) bucketAccess {
	client, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	return bucketAccess{
		get: func(key string) []byte {
			obj, err := client.GetObject(ctx, bucket, prefix+"/"+key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			b, err := io.ReadAll(obj)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		put: func(key string, data []byte) {
			if _, err := client.PutObject(ctx, bucket, prefix+"/"+key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		del: func(key string) {
			if err := client.RemoveObject(ctx, bucket, prefix+"/"+key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		list: func(p string) []string {
			var out []string
			for info := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "/" + p, Recursive: true}) {
				if info.Err != nil {
					t.Fatal(info.Err)
				}
				out = append(out, strings.TrimPrefix(info.Key, prefix+"/"))
			}
			return out
		},
	}
}

// TestWALTrust (issue 14), on a directory and on MinIO, with the real
// archive_command of a PostgreSQL 15 primary:
//
//   - objects planted under the names of the next two WAL segments (signed
//     objects copied from another name) do not wedge archiving: the
//     archiver keeps succeeding, the segments are stored beside them,
//     check says CRITICAL and verify fails naming them;
//   - deleting the newest segment is caught by its signed head: verify,
//     info and a restore to the latest point refuse naming it (before,
//     they ended the window earlier and restore promoted with fewer rows);
//   - with the segment back, the restore to the latest point recovers every
//     committed row, wal-fetch taking the copies that verify;
//   - hiding the newest timeline's history file (after the restored
//     cluster archived on timeline 2) is refused naming it;
//   - --expect-wal-at-least beyond the archive is refused naming the segment.
func TestWALTrust(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		h := newHarness(t)
		rp := h.NewFileRepo("repo")
		walTrustScenario(t, h, rp, dirAccess(t, h, rp))
	})
	t.Run("minio", func(t *testing.T) {
		h := newHarness(t)
		srv := miniotest.Start(t)
		const bucket, prefix = "walvault-e2e", "clusters/waltrust"
		srv.CreateBucket(t, bucket)
		rp := s3Repo(h, srv, bucket, prefix, srv.Endpoint)
		walTrustScenario(t, h, rp, s3Access(t, srv, bucket, prefix), "--copy-s3-credentials")
	})
}

func walTrustScenario(t *testing.T, h *Harness, rp *Repo, bucket bucketAccess, restoreArgs ...string) {
	pg, wv := h.StartArchiving("primary", rp)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")
	pg.CommitMarks(1, 5, "before", 10*time.Millisecond)
	done := pg.SwitchAndWaitArchived()
	walKey := func(seg string) string { return "wal/" + seg[:8] + "/" + seg }

	// Plant, under the segment being written and the one after it, a
	// copy of an archived object: authentic bytes under the wrong name.
	// (+1: at a segment boundary pg_walfile_name names the segment before.)
	cur := pg.QueryString("SELECT pg_walfile_name(pg_current_wal_lsn() + 1)")
	next := pg.QueryString("SELECT pg_walfile_name(pg_current_wal_lsn() + 1 + setting::bigint) FROM pg_settings WHERE name = 'wal_segment_size'")
	planted := bucket.get(walKey(done))
	for _, seg := range []string{cur, next} {
		bucket.put(walKey(seg), planted)
	}
	pg.CommitMarks(6, 10, "planted-1", 10*time.Millisecond)
	if got := pg.SwitchAndWaitArchived(); got != cur {
		t.Fatalf("archived %s, want %s", got, cur)
	}
	pg.CommitMarks(11, 15, "planted-2", 10*time.Millisecond)
	if got := pg.SwitchAndWaitArchived(); got != next {
		t.Fatalf("archived %s, want %s", got, next)
	}
	var failed int64
	pg.QueryRow("SELECT failed_count FROM pg_stat_archiver", nil, &failed)
	if failed != 0 {
		t.Errorf("the archiver failed %d time(s) on the planted names\n%s", failed, pg.LogTail(20))
	}
	for _, seg := range []string{cur, next} {
		alts := bucket.list(walKey(seg) + "~")
		if len(alts) != 1 {
			t.Fatalf("copies of %s stored beside the planted object: %v", seg, alts)
		}
		if !bytes.Equal(bucket.get(walKey(seg)), planted) {
			t.Errorf("the planted object under %s was changed (evidence must stay)", seg)
		}
		if got := bucket.list("heads/" + seg[:8] + "/" + seg); len(got) != 1 {
			t.Errorf("no signed head for %s: %v", seg, got)
		}
	}
	rep := runCheck(t, wv, 2)
	rep.expect(t, "wal-conflicts", "CRITICAL", []string{walKey(cur) + "~", walKey(next) + "~"}, []string{"walvault verify"})
	stdout, _ := wv.RunExpect(6, "verify", "--wal-only")
	for _, s := range []string{walKey(cur) + "~", "conflict"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("verify does not report %q:\n%s", s, tail(stdout, 30))
		}
	}

	// The newest segment deleted: its head remains.
	pg.CommitMarks(16, 20, "after", 10*time.Millisecond)
	last := pg.SwitchAndWaitArchived()
	pg.Stop("immediate")
	saved := bucket.get(walKey(last))
	bucket.del(walKey(last))
	stdout, _ = wv.RunExpect(6, "verify", "--wal-only")
	if !strings.Contains(stdout, walKey(last)) || !strings.Contains(stdout, "signed WAL heads") {
		t.Errorf("verify does not name the deleted %s:\n%s", walKey(last), tail(stdout, 30))
	}
	_, stderr := wv.RunExpect(6, "info")
	if !strings.Contains(stderr, walKey(last)) {
		t.Errorf("info does not name the deleted %s:\n%s", walKey(last), stderr)
	}
	dir := h.Path("restored")
	_, stderr = wv.RunExpect(6, append([]string{"restore", "--pgdata", dir}, restoreArgs...)...)
	if !strings.Contains(stderr, walKey(last)) {
		t.Errorf("restore does not name the deleted %s:\n%s", walKey(last), stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		t.Errorf("the refused restore wrote %s", dir)
	}

	// Put back: everything committed comes back, through the copies that
	// verify under the planted names.
	bucket.put(walKey(last), saved)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	wv.MustRun(append([]string{"restore", "--pgdata", dir}, restoreArgs...)...)
	r := h.ClusterAt("restored", dir)
	r.Env = rp.Env
	r.Start()
	r.WaitPromoted()
	if got, want := r.MarkIDs(), seq(1, 20); !equalInts(got, want) {
		t.Errorf("restored to the latest point: marks %v, want %v", got, want)
	}
	// The restored cluster, promoted to timeline 2, archives on: then
	// the newest timeline's history file is hidden. Before, restore
	// followed timeline 1 and exited 0; now a timeline with WAL and heads
	// but no history is refused, naming the file.
	r.CommitMarks(21, 25, "timeline-2", 10*time.Millisecond)
	tl2 := r.SwitchAndWaitArchived()
	if !strings.HasPrefix(tl2, "00000002") {
		t.Fatalf("the promoted cluster archived %s, not a timeline-2 segment", tl2)
	}
	r.Stop("fast")
	histKey := "wal/00000002/00000002.history"
	hist := bucket.get(histKey)
	bucket.del(histKey)
	dir2 := h.Path("restored-2")
	_, stderr = wv.RunExpect(6, append([]string{"restore", "--pgdata", dir2}, restoreArgs...)...)
	if !strings.Contains(stderr, histKey) {
		t.Errorf("restore does not name the hidden %s:\n%s", histKey, stderr)
	}
	stdout, _ = wv.RunExpect(6, "verify", "--wal-only")
	if !strings.Contains(stdout, histKey) {
		t.Errorf("verify does not name the hidden %s:\n%s", histKey, tail(stdout, 30))
	}
	bucket.put(histKey, hist)
	// (verify still fails on the conflicts planted above, not on this.)
	stdout, _ = wv.RunExpect(6, "verify", "--wal-only", "--expect-wal-at-least", tl2)
	if strings.Contains(stdout, "--expect-wal-at-least says") || strings.Contains(stdout, histKey) {
		t.Errorf("verify --expect-wal-at-least %s refused what the archive holds:\n%s", tl2, tail(stdout, 30))
	}
	stdout, _ = wv.RunExpect(6, "verify", "--wal-only", "--expect-wal-at-least", "000000020000000100000000")
	if !strings.Contains(stdout, "wal/00000002/000000020000000100000000") {
		t.Errorf("verify --expect-wal-at-least beyond the archive does not name the segment:\n%s", tail(stdout, 30))
	}
	t.Logf("%s: planted %s and %s; archiving went on; deleted %s refused by verify, info and restore; restore exact (%d marks)",
		rp.URL, cur, next, last, 20)
}
