package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/walvault/walvault/internal/faultproxy"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// upstream is a small origin server: GET /obj answers body, HEAD answers
// headers only, PUT stores; it records the Host header of every request.
type upstream struct {
	*httptest.Server
	body  []byte
	hits  atomic.Int64
	mu    sync.Mutex
	hosts []string
	puts  [][]byte
}

func newUpstream(t *testing.T, body []byte) *upstream {
	u := &upstream{body: body}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.hosts = append(u.hosts, r.Host)
		u.mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			u.mu.Lock()
			u.puts = append(u.puts, b)
			u.mu.Unlock()
			w.WriteHeader(http.StatusOK)
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeContent(w, r, "obj", time.Time{}, bytes.NewReader(u.body))
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func start(t *testing.T, opts faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// client never reuses connections, so one broken answer cannot affect the
// next request, and never retries.
func client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

func get(c *http.Client, url string) (int, []byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestPassThroughKeepsHostAndBody(t *testing.T) {
	body := bytes.Repeat([]byte("walvault "), 10000)
	up := newUpstream(t, body)
	p := start(t, faultproxy.Options{Upstream: up.URL, Rate: 0})
	c := client()
	for range 5 {
		code, b, err := get(c, p.URL+"/bucket/obj")
		if err != nil || code != 200 || !bytes.Equal(b, body) {
			t.Fatalf("rate 0: status %d, %d bytes, err %v; want 200 and the body", code, len(b), err)
		}
	}
	proxyHost := strings.TrimPrefix(p.URL, "http://")
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, h := range up.hosts {
		if h != proxyHost {
			t.Errorf("upstream saw Host %q, want the client's %q (SigV4 signs it)", h, proxyHost)
		}
	}
	if st := p.Stats(); st.Requests != 5 || st.Total() != 0 {
		t.Errorf("stats %v, want 5 requests and no faults", st)
	}
}

// TestEachKind applies one kind to every request and checks what the
// client sees, whether the upstream was reached, and the counter.
func TestEachKind(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 5000)
	cases := []struct {
		kind         faultproxy.Kind
		reachesUp    bool
		check        func(code int, b []byte, err error) string
		slowAtLeast  time.Duration
		slowDelayOpt time.Duration
	}{
		{kind: faultproxy.Error500, check: func(code int, b []byte, err error) string {
			if err != nil || code != 500 || !strings.Contains(string(b), "<Code>InternalError</Code>") {
				return "want 500 with an InternalError XML body"
			}
			return ""
		}},
		{kind: faultproxy.Error503, check: func(code int, b []byte, err error) string {
			if err != nil || code != 503 || !strings.Contains(string(b), "<Code>SlowDown</Code>") {
				return "want 503 with a SlowDown XML body"
			}
			return ""
		}},
		{kind: faultproxy.Slow, reachesUp: true, slowAtLeast: 100 * time.Millisecond, slowDelayOpt: 200 * time.Millisecond,
			check: func(code int, b []byte, err error) string {
				if err != nil || code != 200 || !bytes.Equal(b, body) {
					return "want the full answer, late"
				}
				return ""
			}},
		{kind: faultproxy.DropBeforeForward, check: func(_ int, _ []byte, err error) string {
			if err == nil {
				return "want a connection error"
			}
			return ""
		}},
		{kind: faultproxy.DropAfterForward, reachesUp: true, check: func(_ int, _ []byte, err error) string {
			if err == nil {
				return "want a connection error"
			}
			return ""
		}},
		{kind: faultproxy.CutBody, reachesUp: true, check: func(code int, b []byte, err error) string {
			if code != 200 || err == nil || len(b) >= len(body) || !bytes.Equal(b, body[:len(b)]) {
				return "want 200, then a prefix of the body and a read error"
			}
			return ""
		}},
		{kind: faultproxy.TruncateBody, reachesUp: true, check: func(code int, b []byte, err error) string {
			if code != 200 || !errors.Is(err, io.ErrUnexpectedEOF) || len(b) >= len(body) || !bytes.Equal(b, body[:len(b)]) {
				return "want 200, then a prefix of the body and io.ErrUnexpectedEOF"
			}
			return ""
		}},
	}
	for _, tc := range cases {
		t.Run(tc.kind.String(), func(t *testing.T) {
			up := newUpstream(t, body)
			p := start(t, faultproxy.Options{Upstream: up.URL, Rate: 1, Seed: 7,
				Kinds: []faultproxy.Kind{tc.kind}, SlowDelay: tc.slowDelayOpt})
			c := client()
			const n = 4
			for range n {
				t0 := time.Now()
				code, b, err := get(c, p.URL+"/bucket/obj")
				if why := tc.check(code, b, err); why != "" {
					t.Fatalf("%s: got status %d, %d bytes, err %v: %s", tc.kind, code, len(b), err, why)
				}
				if el := time.Since(t0); el < tc.slowAtLeast {
					t.Errorf("slow answer came after %v, want at least %v", el, tc.slowAtLeast)
				}
			}
			if got := up.hits.Load(); (got > 0) != tc.reachesUp {
				t.Errorf("upstream got %d requests; reaches upstream = %v", got, tc.reachesUp)
			}
			st := p.Stats()
			if st.Injected[tc.kind] != n || st.Total() != n || st.Requests != n {
				t.Errorf("stats %v, want %d of %s and nothing else", st, n, tc.kind)
			}
		})
	}
}

// TestBodyFaultWithoutBody: a body fault drawn for an answer without a
// body becomes another kind, and the counters say which.
func TestBodyFaultWithoutBody(t *testing.T) {
	up := newUpstream(t, []byte("x"))
	p := start(t, faultproxy.Options{Upstream: up.URL, Rate: 1, Seed: 3,
		Kinds: []faultproxy.Kind{faultproxy.TruncateBody, faultproxy.CutBody}})
	c := client()
	for range 6 {
		req, _ := http.NewRequest(http.MethodPut, p.URL+"/bucket/k", strings.NewReader("payload"))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("PUT answered %d; want the connection dropped (no body to cut)", resp.StatusCode)
		}
	}
	st := p.Stats()
	if st.Injected[faultproxy.DropAfterForward] != 6 || st.Total() != 6 {
		t.Errorf("stats %v, want 6 drop-after-forward (the only kind left without a body)", st)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.puts) != 6 {
		t.Errorf("upstream stored %d PUTs, want 6 (the drops happen after forwarding)", len(up.puts))
	}
}

// TestRateAndSeed: the fraction of faulty requests is close to Rate, and
// the same seed gives the same sequence of decisions.
func TestRateAndSeed(t *testing.T) {
	up := newUpstream(t, []byte("hello"))
	run := func(seed uint64) (string, faultproxy.Stats) {
		p := start(t, faultproxy.Options{Upstream: up.URL, Rate: 0.15, Seed: seed,
			Kinds: []faultproxy.Kind{faultproxy.Error500, faultproxy.Error503}})
		c := &http.Client{Timeout: 10 * time.Second}
		var seq strings.Builder
		for range 400 {
			code, _, err := get(c, p.URL+"/b/o")
			if err != nil {
				t.Fatal(err)
			}
			seq.WriteString(map[int]string{200: ".", 500: "5", 503: "3"}[code])
		}
		return seq.String(), p.Stats()
	}
	a, st := run(11)
	b, _ := run(11)
	c, _ := run(12)
	if a != b {
		t.Errorf("same seed, different sequences:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("different seeds, same sequence")
	}
	if f := float64(st.Total()) / float64(st.Requests); f < 0.10 || f > 0.20 {
		t.Errorf("fault fraction %.3f at rate 0.15 over %d requests (%v)", f, st.Requests, st)
	}
	if st.Injected[faultproxy.Error500] == 0 || st.Injected[faultproxy.Error503] == 0 {
		t.Errorf("both kinds should occur: %v", st)
	}
	if n := int64(strings.Count(a, "5") + strings.Count(a, "3")); n != st.Total() {
		t.Errorf("client saw %d errors, proxy counted %d", n, st.Total())
	}
}

// TestSigV4ThroughProxy: a signed S3 client talking to a real MinIO through
// the proxy works, which it cannot unless the signed Host header arrives
// unchanged; and a truncated object body is seen as an error by it.
func TestSigV4ThroughProxy(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "bkt")
	p := start(t, faultproxy.Options{Upstream: srv.Endpoint, Rate: 0})
	mc, err := minio.New(strings.TrimPrefix(p.URL, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: srv.Region,
		Transport: &http.Transport{DisableKeepAlives: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("signed "), 20000)
	ctx := t.Context()
	if _, err := mc.PutObject(ctx, "bkt", "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put through the proxy: %v", err)
	}
	read := func() ([]byte, error) {
		obj, err := mc.GetObject(ctx, "bkt", "k", minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		defer obj.Close()
		return io.ReadAll(obj)
	}
	if b, err := read(); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("get through the proxy: %d bytes, %v", len(b), err)
	}

	p2 := start(t, faultproxy.Options{Upstream: srv.Endpoint, Rate: 1, Kinds: []faultproxy.Kind{faultproxy.TruncateBody},
		Filter: func(r *http.Request) bool { return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/k") }})
	mc2, err := minio.New(strings.TrimPrefix(p2.URL, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: srv.Region,
		Transport: &http.Transport{DisableKeepAlives: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := mc2.GetObject(ctx, "bkt", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj)
	obj.Close()
	if err == nil && bytes.Equal(b, data) {
		t.Fatalf("truncated answer read as the whole object")
	}
	if p2.Stats().Injected[faultproxy.TruncateBody] == 0 {
		t.Errorf("no truncation counted: %v", p2.Stats())
	}
}
