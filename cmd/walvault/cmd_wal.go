package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/walpush"
	"github.com/walvault/walvault/restore/walfetch"
)

func walPushCommand() *cli.Command {
	return &cli.Command{
		Name:      "wal-push",
		Usage:     "archive one WAL file: archive_command = 'walvault wal-push %p'",
		ArgsUsage: "PATH",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.IntFlag{Name: "push-ahead", EnvVars: env("push-ahead"), Value: 2, Usage: "also archive up to N other .ready segments in parallel"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("wal-push needs exactly one argument: the WAL file path (%%p)")
			}
			// A short-lived process with a bounded heap (a segment or a
			// few): collecting garbage is wasted work. The soft memory
			// limit set in main still applies.
			debug.SetGCPercent(-1)
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			r, err := openRepo(c.Context, c, accessWrite)
			if err != nil {
				return err
			}
			defer r.Close()
			start := time.Now()
			res, err := walpush.Push(c.Context, r, c.Args().First(), walpush.Options{PushAhead: c.Int("push-ahead"), Logger: log})
			if err != nil {
				return err
			}
			log.Debug("wal-push", "file", res.Name, "stored", res.Stored, "bytes", res.Bytes, "stored_bytes", res.StoredSize,
				"ahead", res.Ahead, "elapsed", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func walFetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "wal-fetch",
		Usage:     "restore one WAL file: restore_command = 'walvault wal-fetch %f %p'",
		ArgsUsage: "NAME DEST",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.IntFlag{Name: "prefetch", EnvVars: env("prefetch"), Value: 4, Usage: "download the next N segments in the background (0 disables)"},
			&cli.StringFlag{Name: "prefetch-dir", EnvVars: env("prefetch-dir"), Usage: "where prefetched segments wait (default: .walvault-prefetch beside DEST)"},
		}),
		Description: `Exit status: 0 fetched; 1 the repository does not hold NAME; 255 anything else
(damaged object, wrong key, unreachable storage, bad configuration), which makes
PostgreSQL stop recovery with an error instead of ending it early.`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return &fetchError{err: usagef("wal-fetch needs two arguments: NAME (%%f) and DEST (%%p)")}
			}
			name, dest := c.Args().Get(0), c.Args().Get(1)
			if _, err := newLogger(c); err != nil {
				return &fetchError{err: err}
			}
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return &fetchError{err: err}
			}
			defer r.Close()
			dir := c.String("prefetch-dir")
			if dir == "" {
				dir = filepath.Join(filepath.Dir(dest), ".walvault-prefetch")
			}
			if _, err := walfetch.Fetch(c.Context, r, name, dest, dir); err != nil {
				return &fetchError{err: err, notFound: errors.Is(err, walfetch.ErrNotFound)}
			}
			if n := c.Int("prefetch"); n > 0 {
				walfetch.CleanPrefetch(dir, name)
				if next := walfetch.NextSegments(name, n, r.Config.WALSegmentSize); len(next) > 0 {
					startPrefetcher(c, dir, next)
				}
			}
			return nil
		},
	}
}

// startPrefetcher starts a detached walvault wal-prefetch so the next
// segments download while PostgreSQL replays this one. It passes the
// settings this process was given on its command line; the environment
// (and so every secret) is inherited, never put on a command line.
func startPrefetcher(c *cli.Context, dir string, names []string) {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	args := []string{"wal-prefetch", "--prefetch-dir", dir}
	for _, name := range []string{"config", "repo", "s3-endpoint", "s3-region", "age-identity-file", "log-format", "log-level"} {
		if c.IsSet(name) {
			args = append(args, "--"+name, c.String(name))
		}
	}
	if c.IsSet("s3-path-style") {
		args = append(args, "--s3-path-style="+boolString(c.Bool("s3-path-style")))
	}
	args = append(args, names...)
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer devnull.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	if err := cmd.Start(); err == nil {
		_ = cmd.Process.Release()
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func walPrefetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "wal-prefetch",
		Usage:     "download WAL segments into a prefetch directory (started by wal-fetch)",
		ArgsUsage: "NAME...",
		Hidden:    true,
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.StringFlag{Name: "prefetch-dir", Required: true},
			&cli.IntFlag{Name: "workers", Value: 2},
		}),
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, 10*time.Minute)
			defer cancel()
			r, err := openRepo(ctx, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = walfetch.Prefetch(ctx, r, c.String("prefetch-dir"), c.Args().Slice(), c.Int("workers"))
			return err
		},
	}
}
