// Command walvault archives PostgreSQL WAL and base backups, compressed and
// encrypted, to a directory or S3-compatible storage, and restores a cluster
// to any moment the repository covers.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// memoryLimit is the soft limit the garbage collector keeps the heap under
// unless GOMEMLIMIT says otherwise: backup and restore hold a bounded
// number of 16 MiB chunks, and collecting early keeps the process well
// inside the 256 MiB the tool promises.
const memoryLimit = 160 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// WALVAULT_CPUPROFILE=FILE writes a CPU profile of the run (go tool
	// pprof), for finding where a slow backup or restore spends its time.
	var profile *os.File
	if path := os.Getenv("WALVAULT_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			profile = f
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
	}
	os.Exit(code)
}
