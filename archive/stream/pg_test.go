package stream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/pgtest"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

type pgEnv struct {
	srv     *pgtest.Server
	cluster replconn.Cluster
	r       *repo.Repository
	st      storage.Store // the store r lives in
	sql     *pgconn.PgConn
}

func startPG(t *testing.T) *pgEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := pgtest.Start(t, pgtest.Options{})
	ctx := context.Background()
	rc, err := replconn.Connect(ctx, srv.ConnString)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := replconn.Identify(ctx, rc)
	rc.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := repotest.New(t, repotest.WithConfig(func(c *repo.Config) {
		c.SystemIdentifier, c.WALSegmentSize = strconv.FormatUint(cl.SystemIdentifier, 10), cl.WALSegmentSize
	}))
	e := &pgEnv{srv: srv, cluster: cl, r: tr.Repository, st: tr.Store}
	e.connectSQL(t)
	return e
}

func (e *pgEnv) connectSQL(t *testing.T) {
	t.Helper()
	c, err := pgconn.Connect(context.Background(), e.srv.ConnString)
	if err != nil {
		t.Fatal(err)
	}
	e.sql = c
	t.Cleanup(func() { c.Close(context.Background()) })
}

func (e *pgEnv) query(t *testing.T, sql string) string {
	t.Helper()
	res, err := e.sql.Exec(context.Background(), sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(res) == 0 || len(res[len(res)-1].Rows) == 0 {
		return ""
	}
	return string(res[len(res)-1].Rows[0][0])
}

func (e *pgEnv) lsn(t *testing.T, sql string) pgwal.LSN {
	t.Helper()
	l, err := pgwal.ParseLSN(e.query(t, sql))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func runStreamer(t *testing.T, s *Streamer) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Real PostgreSQL 15: the streamer follows the server within a few seconds
// under pgbench, stores switched segments byte-identical to pg_wal, removes
// their partials, and rides out a server restart without a gap.
func TestPostgresStreaming(t *testing.T) {
	e := startPG(t)
	ctx := context.Background()
	segSize := e.cluster.WALSegmentSize
	spool := t.TempDir()
	ready := make(chan struct{})
	s, err := New(e.r, Options{
		ConnString: e.srv.ConnString, CreateSlot: true, Spool: spool, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		PartialInterval: time.Second, StatusInterval: 2 * time.Second,
		Backoff: func(int) time.Duration { return 200 * time.Millisecond },
		Ready:   func() { close(ready) },
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := runStreamer(t, s)
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("not streaming after 30s")
	}

	// Lag under load: sample pg_current_wal_flush_lsn() and time how long
	// until UploadedLSN passes it.
	e.srv.Run(t, "pgbench", "-i", "-q", "-s", "2")
	bench := e.srv.Command("pgbench", "-T", "10", "-c", "2", "-n")
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	var lags []time.Duration
	for start := time.Now(); time.Since(start) < 9*time.Second; {
		target := e.lsn(t, "SELECT pg_current_wal_flush_lsn()")
		t0 := time.Now()
		waitUntil(t, "upload of "+target.String(), 15*time.Second, func() bool { return s.Status().UploadedLSN >= target })
		lags = append(lags, time.Since(t0))
		time.Sleep(100 * time.Millisecond)
	}
	if err := bench.Wait(); err != nil {
		t.Fatalf("pgbench: %v", err)
	}
	slices.Sort(lags)
	p := func(q float64) time.Duration { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
	st := s.Status()
	t.Logf("lag flush→uploaded under pgbench: n=%d median=%s p90=%s p99=%s max=%s; uploads=%d spool=%d received=%s",
		len(lags), p(0.5), p(0.9), p(0.99), lags[len(lags)-1], st.Uploads, st.SpoolBytes, st.ReceivedLSN)

	// pg_switch_wal: the segment is stored whole, equal to pg_wal's file,
	// and its streamed partials are gone.
	e.query(t, "CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 1000)")
	sw := e.lsn(t, "SELECT pg_switch_wal()")
	segno := pgwal.SegNoOf(sw-1, segSize)
	name := pgwal.SegmentName(e.cluster.Timeline, segno, segSize)
	file, err := pgwal.ParseFileName(name)
	if err != nil {
		t.Fatal(err)
	}
	key := repo.WALKey(file)
	waitUntil(t, "segment "+name, 15*time.Second, func() bool {
		_, err := e.st.Stat(ctx, key)
		return err == nil
	})
	waitUntil(t, "partials of "+name+" deleted", 5*time.Second, func() bool {
		ps, err := e.r.StreamPartials(ctx, e.cluster.Timeline, name)
		return err == nil && len(ps) == 0
	})
	stored, _, err := e.r.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(e.srv.DataDir, "pg_wal", name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, onDisk) {
		t.Fatalf("stored %s differs from the server's pg_wal file", name)
	}

	// Restart the server under the streamer.
	before := s.Status().Reconnects
	e.srv.Run(t, "pg_ctl", "-D", e.srv.DataDir, "-l", filepath.Join(e.srv.Dir, "log"), "-w", "-t", "60", "-m", "fast", "restart")
	e.connectSQL(t)
	waitUntil(t, "reconnect", 30*time.Second, func() bool { st := s.Status(); return st.Reconnects > before && st.Connected })
	e.query(t, "INSERT INTO t SELECT generate_series(1, 100000)")
	sw = e.lsn(t, "SELECT pg_switch_wal()")
	last := pgwal.SegNoOf(sw-1, segSize)
	waitUntil(t, "segment after restart", 20*time.Second, func() bool {
		_, err := e.st.Stat(ctx, repo.WALSegmentKey(e.cluster.Timeline, last, segSize))
		return err == nil
	})
	target := e.lsn(t, "SELECT pg_current_wal_flush_lsn()")
	waitUntil(t, "caught up after restart", 15*time.Second, func() bool { return s.Status().UploadedLSN >= target })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// No gap: every segment from the first streamed to the last is stored.
	var segs []uint64
	if err := e.st.List(ctx, repo.WALPrefix, func(oi storage.ObjectInfo) error {
		f, err := repo.ParseWALKey(oi.Key)
		if err == nil && f.Kind == pgwal.KindSegment {
			segs = append(segs, f.SegNo(segSize))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("only %d segments stored", len(segs))
	}
	for i := 1; i < len(segs); i++ {
		if segs[i] != segs[i-1]+1 {
			t.Fatalf("gap in stored segments: %d then %d", segs[i-1], segs[i])
		}
	}
	if segs[len(segs)-1] != last {
		t.Errorf("last stored segment %d, want %d", segs[len(segs)-1], last)
	}
	t.Logf("segments %d..%d stored; status %+v", segs[0], last, s.Status())
}

func TestPostgresSlotMissing(t *testing.T) {
	e := startPG(t)
	s, err := New(e.r, Options{ConnString: e.srv.ConnString, Slot: "nosuchslot", Spool: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Run(ctx); !errors.Is(err, ErrSlotMissing) {
		t.Fatalf("Run = %v, want ErrSlotMissing", err)
	}
	if got := e.query(t, "SELECT count(*) FROM pg_replication_slots"); got != "0" {
		t.Fatalf("%s slots exist", got)
	}
}
