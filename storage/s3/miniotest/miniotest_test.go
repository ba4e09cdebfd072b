package miniotest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

func TestServer(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "bucket")
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(t.Context(), "bucket", "k", strings.NewReader("v"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Errorf("server still answers after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
