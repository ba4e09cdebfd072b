package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is the default listen address of the metrics server: loopback
// only. The port is unofficial: Prometheus' list of exporter ports
// (9100-9999) is full and walvault has no entry in it. 9187, the usual
// "PostgreSQL" port there, belongs to postgres_exporter, which often runs on
// the same host, so walvault does not use it.
const DefaultAddr = "127.0.0.1:9739"

// NewServer returns an HTTP server (not started) for addr that serves
//
//	GET /metrics  the registry, in the Prometheus text or protobuf format
//	GET /healthz  200 "ok", or 503 with health's error text
//
// and 404 for every other path. A nil health always reports ok. health runs
// on every request to /healthz, so it should be quick.
//
// The server has timeouts on every phase of a request, so a slow or idle
// client cannot hold it.
func NewServer(addr string, reg *prometheus.Registry, health func() error) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A node-local Prometheus scrapes one at a time; a handful more
		// covers a curl during an incident, not someone hammering the port.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if health != nil {
			if err := health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err.Error())
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// ListenAndServe listens on srv.Addr and serves until ctx is cancelled,
// then shuts the server down, giving requests in progress up to 5 seconds.
// A listen error (address in use, bad address) is returned at once, so a
// daemon can fail its start instead of running without its metrics.
// It returns nil after a shutdown caused by ctx.
func ListenAndServe(ctx context.Context, srv *http.Server) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("metrics server: %w", err)
	}
	return Serve(ctx, srv, ln)
}

// Serve is ListenAndServe on a listener the caller opened.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("metrics server shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// ErrUnhealthy is wrapped by every error HealthPolicy.Check returns.
var ErrUnhealthy = errors.New("unhealthy")

// HealthPolicy turns a stream snapshot into a health verdict for /healthz.
// A zero limit disables that check.
type HealthPolicy struct {
	// Started is when the daemon started: a streamer that has never
	// received anything is given MaxDisconnected from then to connect
	// (with Started zero, a streamer that never connected is not judged).
	Started time.Time
	// MaxDisconnected is how long the streamer may be without a
	// replication connection (counted from its last message) before it
	// is unhealthy. Short outages (a primary restart) should not page.
	MaxDisconnected time.Duration
	// MaxLag is the largest acceptable LagSeconds: the data a disaster
	// would lose now.
	MaxLag time.Duration
}

// Check returns nil when s is healthy at time now, else an error wrapping
// ErrUnhealthy that says why in words a sysadmin can act on.
func (p HealthPolicy) Check(s StreamStatus, now time.Time) error {
	if !s.Connected && p.MaxDisconnected > 0 {
		since, what := s.LastReceive, "since its last message"
		if since.IsZero() {
			since, what = p.Started, "since start, never connected"
		}
		if d := now.Sub(since); !since.IsZero() && d > p.MaxDisconnected {
			return fmt.Errorf("%w: no replication connection for %s (%s)", ErrUnhealthy, d.Round(time.Second), what)
		}
	}
	if p.MaxLag > 0 && s.LagSeconds > p.MaxLag.Seconds() {
		return fmt.Errorf("%w: repository lags the primary by %.0fs (limit %s), %d bytes not uploaded",
			ErrUnhealthy, s.LagSeconds, p.MaxLag, s.LagBytes)
	}
	return nil
}
