package service

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startServer runs NewServer on 127.0.0.1:0 and returns its base URL and
// the error channel Serve reports to when the test's context is cancelled.
func startServer(t *testing.T, health func() error) (string, func() error) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewStreamCollector(sampleStatus), NewBuildInfoCollector("test"))
	srv := NewServer("127.0.0.1:0", reg, health)
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, srv, ln) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Serve did not return after cancel")
		}
	})
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), stop
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServer(t *testing.T) {
	var unhealthy atomic.Pointer[error]
	health := func() error {
		if e := unhealthy.Load(); e != nil {
			return *e
		}
		return nil
	}
	base, stop := startServer(t, health)

	code, body := get(t, http.MethodGet, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d", code)
	}
	for _, want := range []string{"walvault_stream_lag_bytes 12288", `walvault_build_info{version="test"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}

	if code, body := get(t, http.MethodGet, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz healthy: %d %q, want 200 \"ok\\n\"", code, body)
	}
	e := errors.New("no replication connection for 2m0s")
	unhealthy.Store(&e)
	if code, body := get(t, http.MethodGet, base+"/healthz"); code != http.StatusServiceUnavailable || body != e.Error()+"\n" {
		t.Errorf("/healthz unhealthy: %d %q, want 503 %q", code, body, e.Error()+"\n")
	}

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound},
		{http.MethodGet, "/metrics/extra", http.StatusNotFound},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodHead, "/healthz", http.StatusServiceUnavailable},
	} {
		if code, _ := get(t, tc.method, base+tc.path); code != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}

	if err := stop(); err != nil {
		t.Errorf("Serve after cancel: %v, want nil", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

func TestServerNilHealth(t *testing.T) {
	base, _ := startServer(t, nil)
	if code, body := get(t, http.MethodGet, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz with nil health: %d %q", code, body)
	}
}

func TestListenAndServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := NewServer(ln.Addr().String(), prometheus.NewRegistry(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ListenAndServe(ctx, srv); err == nil {
		t.Fatal("ListenAndServe on a busy port returned nil")
	}
}

func TestHealthPolicy(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	policy := HealthPolicy{Started: now.Add(-10 * time.Minute), MaxDisconnected: time.Minute, MaxLag: 30 * time.Second}
	tests := []struct {
		name    string
		policy  HealthPolicy
		status  StreamStatus
		wantErr string // substring; "" means healthy
	}{
		{"connected, small lag", policy, StreamStatus{Connected: true, LastReceive: now, LagSeconds: 1}, ""},
		{"brief disconnection", policy, StreamStatus{LastReceive: now.Add(-30 * time.Second)}, ""},
		{"long disconnection", policy, StreamStatus{LastReceive: now.Add(-90 * time.Second)}, "no replication connection for 1m30s"},
		{"never connected, within grace", HealthPolicy{Started: now.Add(-10 * time.Second), MaxDisconnected: time.Minute}, StreamStatus{}, ""},
		{"never connected, past grace", policy, StreamStatus{}, "never connected"},
		{"never connected, no start time", HealthPolicy{MaxDisconnected: time.Minute}, StreamStatus{}, ""},
		{"lag too high", policy, StreamStatus{Connected: true, LastReceive: now, LagSeconds: 45, LagBytes: 1 << 20}, "lags the primary by 45s"},
		{"lag check off", HealthPolicy{}, StreamStatus{LagSeconds: 1e6}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.status, now)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unhealthy: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("healthy, want error containing %q", tt.wantErr)
			case err != nil && (!strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrUnhealthy)):
				t.Errorf("error %q: want it to contain %q and wrap ErrUnhealthy", err, tt.wantErr)
			}
		})
	}
}
