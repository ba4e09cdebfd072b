package basebackup

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestThroughput measures a backup of a pgbench database of scale
// $WALVAULT_BENCH_SCALE into an age-encrypted local repository, with the
// default chunk size and workers, next to pg_basebackup -Ft of the same
// cluster. Skipped unless the variable is set.
func TestThroughput(t *testing.T) {
	scale := os.Getenv("WALVAULT_BENCH_SCALE")
	if scale == "" {
		t.Skip("set WALVAULT_BENCH_SCALE (e.g. 20) to measure")
	}
	e := startPG(t)
	e.Srv.Run(t, "pgbench", "-i", "-s", scale, "-q", "postgres")
	e.Srv.SQL(t, "CHECKPOINT")

	out := filepath.Join(e.Srv.Dir, "pg_basebackup")
	t0 := time.Now()
	e.Srv.Run(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(e.Srv.Port), "-D", out, "-Ft", "-X", "none", "-c", "fast", "--no-sync")
	t.Logf("pg_basebackup -Ft -X none (uncompressed, no fsync): %v", time.Since(t0))

	r := newTestRepo(t, e.Cluster)
	pushWALFiles(t, r, e.ArchiveDir, true)
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	t0 = time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	m, err := Run(context.Background(), r.Repository, Options{ConnString: e.Srv.ConnString, Fast: true, PollInterval: 50 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	t.Logf("walvault backup (zstd fastest + age, %d-MiB chunks, %d workers): %v for %d bytes (%.1f MB/s), stored %d (%.1fx), CPU %v, peak RSS %d MiB (%d MiB before)",
		DefaultChunkSize>>20, runtimeWorkers(), d, m.Bytes, float64(m.Bytes)/d.Seconds()/1e6, m.StoredBytes, float64(m.Bytes)/float64(m.StoredBytes), cpu, after.Maxrss>>10, before.Maxrss>>10)
}

func runtimeWorkers() int {
	var o Options
	_ = o.setDefaults()
	return o.Workers
}
