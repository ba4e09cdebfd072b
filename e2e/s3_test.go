package e2e

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

// TestPITRS3: the point-in-time recovery scenario against a real MinIO,
// with archive_command configured by the server's environment, the target
// in RFC 3339, the connection given as --pg-url, and restore run as root
// giving the files to the server's user. Afterwards every object under the
// prefix is checked to be a header plus an age body without the plaintext
// marker.
func TestPITRS3(t *testing.T) {
	h := newHarness(t)
	srv := miniotest.Start(t)
	registerSecret("S3 secret key", srv.SecretKey)
	const bucket, prefix = "walvault-e2e", "clusters/pitr"
	srv.CreateBucket(t, bucket)

	repo := s3Repo(h, srv, bucket, prefix, srv.Endpoint)

	wv := runPITR(t, h, pitrCase{
		repo:          repo,
		restoreAsRoot: true,
		pgURLFlag:     true,
		formatTarget: func(_ *Cluster, ts time.Time) string {
			return ts.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		},
		objects: func(t testing.TB) map[string][]byte { return s3Objects(t, srv, bucket, prefix) },
	})
	if t.Failed() {
		return
	}

	// Storage down: wal-fetch must not answer "not found" (PostgreSQL would
	// end recovery early); other commands report storage unavailable.
	info := wv.Info()
	if len(info.WAL) == 0 {
		t.Fatal("info lists no WAL")
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	seg := info.WAL[0].From
	_, stderr := wv.RunExpect(255, "wal-fetch", seg, h.Path("fetched-while-down"))
	if strings.TrimSpace(stderr) == "" {
		t.Errorf("wal-fetch with the storage down printed nothing")
	}
	wv.RunExpect(7, "info")
}

// s3Objects reads every object under prefix: key relative to the prefix ->
// content.
func s3Objects(t testing.TB, srv *miniotest.Server, bucket, prefix string) map[string][]byte {
	t.Helper()
	client, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	objs := map[string][]byte{}
	for info := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if info.Err != nil {
			t.Fatalf("list s3://%s/%s: %v", bucket, prefix, info.Err)
		}
		obj, err := client.GetObject(ctx, bucket, info.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", info.Key, err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatalf("read %s: %v", info.Key, err)
		}
		objs[strings.TrimPrefix(info.Key, prefix+"/")] = b
	}
	if len(objs) == 0 {
		t.Fatalf("no objects under s3://%s/%s/", bucket, prefix)
	}
	return objs
}
