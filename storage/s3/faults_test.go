package s3_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/faultproxy"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/retry"
	"github.com/walvault/walvault/storage/s3"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// TestFaultyConnection: the S3 store wrapped in retries, as every command
// uses it, against MinIO behind a proxy that breaks every other request in
// every way it knows. Puts (also conditional ones whose answer is lost),
// whole and ranged reads, stats and lists all come out right; a read whose
// body breaks resumes with a range request.
func TestFaultyConnection(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "faulty")
	p, err := faultproxy.Start(faultproxy.Options{Upstream: srv.Endpoint, Rate: 0.5, Seed: 20261124,
		SlowDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	direct, err := s3.New(t.Context(), s3.Options{Bucket: "faulty", Endpoint: p.URL, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, SDKAttempts: 1,
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	if err != nil {
		t.Fatal(err)
	}
	st := retry.Wrap(direct, retry.Options{Attempts: 12, Base: time.Millisecond, Max: 5 * time.Millisecond})
	ctx := t.Context()

	objs := map[string][]byte{}
	for i := range 8 {
		b := bytes.Repeat([]byte{byte('a' + i)}, 200_000+i*37_000)
		key := "obj/" + string(rune('a'+i))
		objs[key] = b
		// A lost answer to the first attempt makes the retry meet its
		// own object, which must count as success, not ErrExist.
		if err := st.Put(ctx, key, bytes.NewReader(b), storage.PutOptions{IfAbsent: true}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	for round := range 3 {
		for key, want := range objs {
			rc, err := st.Get(ctx, key)
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("round %d: get %s: %d bytes (want %d), err %v", round, key, len(got), len(want), err)
			}
			rc, err = st.GetRange(ctx, key, 1000, 50_000)
			if err != nil {
				t.Fatalf("get range %s: %v", key, err)
			}
			got, err = io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, want[1000:51_000]) {
				t.Fatalf("round %d: get range %s: %d bytes, err %v", round, key, len(got), err)
			}
			if oi, err := st.Stat(ctx, key); err != nil || oi.Size != int64(len(want)) {
				t.Fatalf("stat %s: %+v, %v", key, oi, err)
			}
		}
		n := 0
		if err := st.List(ctx, "obj/", func(storage.ObjectInfo) error { n++; return nil }); err != nil || n != len(objs) {
			t.Fatalf("list: %d objects, %v", n, err)
		}
	}
	stats := p.Stats()
	t.Logf("proxy: %v", stats)
	for _, k := range faultproxy.Kinds() {
		if stats.Injected[k] == 0 {
			t.Errorf("no %s fault injected", k)
		}
	}
}
