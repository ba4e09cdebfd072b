package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/s3"
	"github.com/walvault/walvault/storage/s3/miniotest"
	"github.com/walvault/walvault/storage/storagetest"
)

func newStore(t *testing.T, srv *miniotest.Server, bucket, prefix string) *s3.Store {
	t.Helper()
	s, err := s3.New(t.Context(), s3.Options{
		Bucket:    bucket,
		Prefix:    prefix,
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		PathStyle: true,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMinIO runs everything that needs a server against one MinIO process.
func TestMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	var n atomic.Int64
	bucketName := func() string { return fmt.Sprintf("walvault-test-%d", n.Add(1)) }

	t.Run("ConformanceBucketRoot", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Store {
			b := bucketName()
			srv.CreateBucket(t, b)
			return newStore(t, srv, b, "")
		})
	})

	t.Run("ConformancePrefix", func(t *testing.T) {
		b := bucketName()
		srv.CreateBucket(t, b)
		// A neighbour sharing the bucket must never show through.
		neighbour := newStore(t, srv, b, "repo")
		if err := neighbour.Put(t.Context(), "a/b", strings.NewReader("other repository"), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		storagetest.Run(t, func(t *testing.T) storage.Store {
			return newStore(t, srv, b, fmt.Sprintf("/repo%d/x/", n.Add(1)))
		})
	})

	t.Run("Layout", func(t *testing.T) {
		b := bucketName()
		srv.CreateBucket(t, b)
		s := newStore(t, srv, b, "/clusters/main/")
		data := bytes.Repeat([]byte("walvault"), 1000)
		key := "wal/00000001/000000010000000000000003"
		if err := s.Put(t.Context(), key, bytes.NewReader(data), storage.PutOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		mc, err := srv.Client()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := mc.GetObject(t.Context(), b, "clusters/main/"+key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatalf("read clusters/main/%s with minio-go: %v", key, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("minio-go reads %d bytes, want %d", len(got), len(data))
		}
		var keys []string
		for oi := range mc.ListObjects(t.Context(), b, minio.ListObjectsOptions{Recursive: true}) {
			if oi.Err != nil {
				t.Fatal(oi.Err)
			}
			keys = append(keys, oi.Key)
		}
		if len(keys) != 1 || keys[0] != "clusters/main/"+key {
			t.Errorf("bucket holds %q, want only clusters/main/%s", keys, key)
		}
		if got, want := s.String(), "s3://"+b+"/clusters/main"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		if strings.Contains(s.String(), srv.SecretKey) || strings.Contains(s.String(), srv.AccessKey) {
			t.Error("String() shows credentials")
		}
	})

	// A conditional Put whose answer was lost is retried and meets its own
	// object: the very same bytes are a success, anything else (longer,
	// shorter, one byte changed) stays ErrExist and the object unchanged.
	t.Run("IfAbsentSameBytes", func(t *testing.T) {
		b := bucketName()
		srv.CreateBucket(t, b)
		s := newStore(t, srv, b, "")
		data := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // several compare buffers
		if err := s.Put(t.Context(), "k", bytes.NewReader(data), storage.PutOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		// A body read from the middle of a reader, as a retry rewinds to.
		r := bytes.NewReader(append([]byte("prefix"), data...))
		r.Seek(6, io.SeekStart)
		if err := s.Put(t.Context(), "k", r, storage.PutOptions{IfAbsent: true}); err != nil {
			t.Errorf("same bytes again: %v, want success", err)
		}
		flipped := bytes.Clone(data)
		flipped[len(flipped)-1] ^= 1
		for name, other := range map[string][]byte{
			"last byte changed": flipped,
			"one byte shorter":  data[:len(data)-1],
			"one byte longer":   append(bytes.Clone(data), 'x'),
			"empty":             nil,
		} {
			err := s.Put(t.Context(), "k", bytes.NewReader(other), storage.PutOptions{IfAbsent: true})
			if !storage.IsExist(err) {
				t.Errorf("%s: %v, want ErrExist", name, err)
			}
		}
		rc, err := s.Get(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Error("the stored object changed")
		}
	})

	t.Run("ObjectLock", func(t *testing.T) {
		b := bucketName()
		srv.CreateLockedBucket(t, b)
		s, err := s3.New(t.Context(), s3.Options{Bucket: b, Prefix: "r", Endpoint: srv.Endpoint, Region: srv.Region,
			PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
			ObjectLock: s3.ObjectLock{Mode: "GOVERNANCE", Period: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		if err := s.Put(t.Context(), "wal/x", strings.NewReader("kept"), storage.PutOptions{IfAbsent: true}); err != nil {
			t.Fatalf("put with retention: %v", err)
		}
		if err := s.Put(t.Context(), "locks/y", strings.NewReader("lock"), storage.PutOptions{Temporary: true}); err != nil {
			t.Fatalf("temporary put: %v", err)
		}
		oi, err := s.Stat(t.Context(), "wal/x")
		if err != nil {
			t.Fatal(err)
		}
		if oi.RetainUntil.Before(before.Add(59*time.Minute)) || oi.RetainUntil.After(time.Now().Add(61*time.Minute)) {
			t.Errorf("RetainUntil = %v, want about an hour from now", oi.RetainUntil)
		}
		if !oi.Retained(time.Now()) || oi.Retained(time.Now().Add(2*time.Hour)) {
			t.Errorf("Retained wrong for RetainUntil %v", oi.RetainUntil)
		}
		if oi, err := s.Stat(t.Context(), "locks/y"); err != nil || !oi.RetainUntil.IsZero() {
			t.Errorf("temporary object: %+v, %v; want no retention", oi, err)
		}
		// The data itself cannot be removed: deleting its version is refused
		// (checked with an independent client).
		mc, err := srv.Client()
		if err != nil {
			t.Fatal(err)
		}
		st, err := mc.StatObject(t.Context(), b, "r/wal/x", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.RemoveObject(t.Context(), b, "r/wal/x", minio.RemoveObjectOptions{VersionID: st.VersionID}); err == nil {
			t.Error("deleting a retained object version succeeded")
		}
		// Our Delete leaves it in place and says until when, rather than
		// hiding it behind a delete marker.
		var retained *storage.RetainedError
		if err := s.Delete(t.Context(), "wal/x"); !errors.As(err, &retained) || !retained.Until.Equal(oi.RetainUntil) {
			t.Errorf("Delete of a retained object: %v, want a RetainedError until %v", err, oi.RetainUntil)
		}
		if _, err := s.Get(t.Context(), "wal/x"); err != nil {
			t.Errorf("retained object unreadable after the refused deletes: %v", err)
		}
		// The temporary lock object goes away for good.
		if err := s.Delete(t.Context(), "locks/y"); err != nil {
			t.Errorf("delete temporary object: %v", err)
		}
	})

	t.Run("NotFoundIsOnlyForMissingObjects", func(t *testing.T) {
		b := bucketName()
		srv.CreateBucket(t, b)
		s := newStore(t, srv, b, "p")
		_, err := s.Stat(t.Context(), "missing") // HeadObject: 404 without a body
		if !storage.IsNotExist(err) {
			t.Errorf("Stat of a missing key: %v, want not-found", err)
		}
		missing := newStore(t, srv, "no-such-bucket", "p")
		_, err = missing.Stat(t.Context(), "missing")
		if err == nil || storage.IsNotExist(err) {
			t.Errorf("Stat in a missing bucket: %v, want an error that is not not-found", err)
		}
		_, err = missing.Get(t.Context(), "missing")
		if err == nil || storage.IsNotExist(err) {
			t.Errorf("Get in a missing bucket: %v, want an error that is not not-found", err)
		}
		bad, err := s3.New(t.Context(), s3.Options{Bucket: b, Endpoint: srv.Endpoint, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: "wrong-secret"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Get(t.Context(), "missing")
		if err == nil || storage.IsNotExist(err) || strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("Get with a wrong secret: %v, want a non-not-found error without the secret", err)
		}
	})
}

// fakeS3 answers every request with the same canned failure.
func fakeS3(t *testing.T, h http.HandlerFunc) *s3.Store {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	s, err := s3.New(t.Context(), s3.Options{
		Bucket: "b", Endpoint: ts.URL, PathStyle: true,
		AccessKey: "AKIAEXAMPLE", SecretKey: "secret-example", SDKAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func xmlError(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>m</Message></Error>`, code)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	type want int
	const (
		permanent want = iota
		transient
		notExist
		exist
	)
	classify := func(err error) want {
		switch {
		case storage.IsNotExist(err):
			return notExist
		case storage.IsExist(err):
			return exist
		case storage.IsTransient(err):
			return transient
		}
		return permanent
	}
	put := func(s *s3.Store) error {
		return s.Put(t.Context(), "k", strings.NewReader("data"), storage.PutOptions{IfAbsent: true})
	}
	get := func(s *s3.Store) error {
		rc, err := s.Get(t.Context(), "k")
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.ReadAll(rc)
		return err
	}
	stat := func(s *s3.Store) error { _, err := s.Stat(t.Context(), "k"); return err }
	list := func(s *s3.Store) error {
		return s.List(t.Context(), "", func(storage.ObjectInfo) error { return nil })
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
		op      func(*s3.Store) error
		want    want
	}{
		{"NoSuchKey", xmlError(404, "NoSuchKey"), get, notExist},
		{"NoSuchBucket", xmlError(404, "NoSuchBucket"), get, permanent},
		{"AccessDenied", xmlError(403, "AccessDenied"), get, permanent},
		{"PreconditionFailed", xmlError(412, "PreconditionFailed"), put, exist},
		{"ConditionalRequestConflict", xmlError(409, "ConditionalRequestConflict"), put, exist},
		{"SlowDown", xmlError(503, "SlowDown"), put, transient},
		{"InternalError", xmlError(500, "InternalError"), list, transient},
		{"TooManyRequests", xmlError(429, "TooManyRequests"), get, transient},
		{"HEAD 500", xmlError(500, ""), stat, transient},
		{"HEAD 403", xmlError(403, ""), stat, permanent},
		{"connection reset", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, get, transient},
		{"truncated body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("short"))
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, get, transient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.op(fakeS3(t, c.handler))
			if got := classify(err); got != c.want {
				t.Errorf("got %v (class %d), want class %d", err, got, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-example") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []s3.Options{
		{},
		{Bucket: "b", Prefix: "a//b"},
		{Bucket: "b", Prefix: "../x"},
		{Bucket: "b", AccessKey: "only-access"},
		{Bucket: "b", CABundle: []byte("x"), HTTPClient: http.DefaultClient},
		{Bucket: "b", ObjectLock: s3.ObjectLock{Mode: "GOVERNANCE"}},
		{Bucket: "b", ObjectLock: s3.ObjectLock{Mode: "forever", Period: time.Hour}},
		{Bucket: "b", ObjectLock: s3.ObjectLock{Period: -time.Hour, Mode: "COMPLIANCE"}},
	} {
		if _, err := s3.New(t.Context(), o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

// BenchmarkPut measures one WAL-segment-sized Put to a local MinIO.
func BenchmarkPut(b *testing.B) {
	srv := miniotest.Start(b)
	srv.CreateBucket(b, "bench")
	s, err := s3.New(b.Context(), s3.Options{Bucket: "bench", Endpoint: srv.Endpoint, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
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
