package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

// TestObjectLock: on a bucket with S3 Object Lock, every object walvault
// writes (WAL, chunks, manifests, audit records; not its short-lived locks)
// carries a retention, checked with an independent client; deleting a
// retained version is refused by the server; expire leaves retained
// backups in place and says so, and the repository still verifies.
func TestObjectLock(t *testing.T) {
	h := newHarness(t)
	srv := miniotest.Start(t)
	registerSecret("S3 secret key", srv.SecretKey)
	const bucket, prefix = "walvault-locked", "odoo"
	srv.CreateLockedBucket(t, bucket)

	repo := s3Repo(h, srv, bucket, prefix, srv.Endpoint)
	repo.Env = append(repo.Env, "WALVAULT_S3_OBJECT_LOCK_DAYS=1", "WALVAULT_S3_OBJECT_LOCK_MODE=governance")
	pg, wv := h.StartArchiving("primary", repo)
	pg.PgbenchInit(1)
	for range 2 {
		wv.MustRun("backup", "--fast")
		pg.SwitchAndWaitArchived()
	}

	client, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var manifest string
	n := 0
	for oi := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		if strings.HasPrefix(oi.Key, prefix+"/locks/") {
			t.Errorf("lock object left behind: %s", oi.Key)
			continue
		}
		// Under Object Lock a backup stands on objects locked as long as
		// itself: whole chunks, no packs shared with older backups.
		if strings.HasPrefix(oi.Key, prefix+"/packs/") {
			t.Errorf("block pack %s written under Object Lock: the second backup would rely on the first's lock", oi.Key)
		}
		mode, until, err := client.GetObjectRetention(ctx, bucket, oi.Key, "")
		if err != nil || mode == nil || *mode != minio.Governance || until == nil ||
			until.Before(time.Now().Add(23*time.Hour)) || until.After(time.Now().Add(25*time.Hour)) {
			t.Errorf("%s: retention %v until %v (%v); want GOVERNANCE for a day", oi.Key, mode, until, err)
		}
		if strings.HasSuffix(oi.Key, "/backup.json") && manifest == "" {
			manifest = oi.Key
		}
		n++
	}
	t.Logf("%d objects checked for retention", n)
	if manifest == "" {
		t.Fatal("no manifest found")
	}
	st, err := client.StatObject(ctx, bucket, manifest, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.RemoveObject(ctx, bucket, manifest, minio.RemoveObjectOptions{VersionID: st.VersionID}); err == nil {
		t.Errorf("the server let a retained manifest version be deleted")
	}

	out := wv.MustRun("expire", "--retain-full", "1", "--confirm")
	if !strings.Contains(out, "kept by S3 Object Lock until") {
		t.Errorf("expire does not report the retained objects:\n%s", out)
	}
	if got := len(wv.Info().Backups); got != 2 {
		t.Errorf("%d backups after expire on retained objects, want both kept", got)
	}
	wv.MustRun("verify")

	// Object lock needs S3: a file repository refuses it clearly.
	file := h.NewFileRepo("file")
	_, stderr := file.Walvault(h, "WALVAULT_S3_OBJECT_LOCK_DAYS=1").RunExpect(3, "info")
	if !strings.Contains(stderr, "object lock needs an S3 repository") {
		t.Errorf("file repository with object lock: %s", stderr)
	}
}
