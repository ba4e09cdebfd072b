// Command walvault archives PostgreSQL WAL and base backups, compressed and
// encrypted, to a directory or S3-compatible storage, and restores a cluster
// to any moment the repository covers.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
