package storeurl_test

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/storeurl"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := storeurl.S3Config{Endpoint: "http://127.0.0.1:1", PathStyle: true, AccessKey: "AKIDEXAMPLE", SecretKey: "s3cr3t"}
	cases := []struct {
		url    string
		want   string // String() of the store; "" means an error
		errHas string
	}{
		{"file://" + dir, "file://" + dir, ""},
		{"file://localhost" + dir, "file://" + dir, ""},
		{dir + "/repo/", "file://" + filepath.Join(dir, "repo"), ""},
		{"s3://bucket", "s3://bucket", ""},
		{"s3://bucket/", "s3://bucket", ""},
		{"s3://bucket/clusters/main/", "s3://bucket/clusters/main", ""},
		{"file://relative/path", "", "absolute path"},
		{"file:relative", "", "absolute path"},
		{"relative/path", "", "relative paths"},
		{"./x", "", "relative paths"},
		{"", "", "relative paths"},
		{"ftp://host/x", "", "unsupported scheme"},
		{"s3://", "", "names a bucket"},
		{"s3:bucket", "", "names a bucket"},
		{"s3://bucket/a//b", "", "invalid prefix"},
		{"s3://bucket/../x", "", "invalid prefix"},
		{"s3://bucket/p?region=eu", "", "query"},
		{"s3://AKID:hunter2@bucket/p", "", "credentials"},
		{"s3://AKID:hunter2@bucket/p%zz", "", "parse"},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			s, err := storeurl.Open(t.Context(), c.url, cfg)
			if c.want == "" {
				if err == nil {
					t.Fatalf("Open succeeded with %s", s)
				}
				msg := err.Error()
				if !strings.Contains(msg, c.errHas) {
					t.Errorf("error %q does not mention %q", msg, c.errHas)
				}
				if strings.Contains(msg, "hunter2") || strings.Contains(msg, "s3cr3t") {
					t.Errorf("error shows a secret: %q", msg)
				}
				if !strings.Contains(msg, "file:///") && !strings.Contains(msg, "s3://bucket") && c.errHas != "credentials" {
					t.Errorf("error %q does not list the accepted forms", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != c.want {
				t.Errorf("String() = %q, want %q", s.String(), c.want)
			}
		})
	}
}

func TestOpenFileWorks(t *testing.T) {
	dir := t.TempDir()
	s, err := storeurl.Open(t.Context(), "file://"+dir, storeurl.S3Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a/b", bytes.NewReader([]byte("x")), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(t.Context(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "x" {
		t.Errorf("read %q", b)
	}
}
