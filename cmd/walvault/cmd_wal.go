package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/walpush"
	"github.com/walvault/walvault/archive/walpush/walclient"
	"github.com/walvault/walvault/internal/service"
	"github.com/walvault/walvault/restore/recoverydir"
	"github.com/walvault/walvault/restore/walfetch"
)

func walPushCommand() *cli.Command {
	return &cli.Command{
		Name:      "wal-push",
		Usage:     "archive one WAL file: archive_command = 'walvault wal-push %p'",
		ArgsUsage: "PATH",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.IntFlag{Name: "push-ahead", EnvVars: env("push-ahead"), Value: 2, Usage: "also archive up to N other .ready segments in parallel"},
			&cli.StringFlag{Name: "wal-server", EnvVars: env("wal-server"), Usage: "hand the file to the `walvault wal-server` listening on this Unix socket (push directly when none answers)"},
		}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("wal-push needs exactly one argument: the WAL file path (%%p)")
			}
			if sock := settingsOf(c).WALServer; sock != "" {
				err := askWALServer(c, sock)
				if !errors.Is(err, walclient.ErrServerUnavailable) {
					return err
				}
				// Nothing lost: pushing is idempotent, do it here.
				fmt.Fprintf(c.App.ErrWriter, "walvault wal-push: %v; archiving %s directly\n", err, filepath.Base(c.Args().First()))
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
			res, err := walpush.Push(c.Context, r, c.Args().First(), walpush.Options{PushAhead: settingsOf(c).PushAhead, Logger: log})
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
			&cli.BoolFlag{Name: "check", Hidden: true, Usage: "fetch nothing: open the repository and list its backups, as restore does to check restore_command before it starts"},
		}),
		Description: `Exit status: 0 fetched; 1 the repository does not hold NAME; 255 anything else
(damaged object, wrong key, unreachable storage, bad configuration), which makes
PostgreSQL stop recovery with an error instead of ending it early.`,
		Action: func(c *cli.Context) error {
			if settingsOf(c).Check {
				if err := checkRepositoryReadable(c); err != nil {
					return &fetchError{err: err}
				}
				return nil
			}
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
			dir := settingsOf(c).PrefetchDir
			if dir == "" {
				dir = filepath.Join(filepath.Dir(dest), recoverydir.PrefetchDir)
			}
			if _, err := walfetch.Fetch(c.Context, r, name, dest, dir); err != nil {
				return &fetchError{err: err, notFound: errors.Is(err, walfetch.ErrNotFound)}
			}
			if n := settingsOf(c).Prefetch; n > 0 && os.MkdirAll(dir, 0o700) == nil {
				walfetch.CleanPrefetch(dir, name)
				if next := walfetch.NextSegments(name, n, r.Config.WALSegmentSize); len(next) > 0 {
					startPrefetcher(c, dir, next)
				}
			}
			return nil
		},
	}
}

// checkRepositoryReadable opens the repository (its settings, credentials
// and identity file, as restore_command will) and lists its backups. It
// decrypts nothing: what is wrong with the objects themselves (a wrong key,
// damage) is wrong for every reader, and restore reports it better.
func checkRepositoryReadable(c *cli.Context) error {
	r, err := openRepo(c.Context, c, accessRead)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = r.BackupIDs(c.Context)
	return err
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
	args := append([]string{"wal-prefetch", "--prefetch-dir", dir}, prefetchArgs(c, os.Args[1:])...)
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

// prefetchArgs are the options wal-fetch's command line (argv) gave that
// wal-prefetch has too, with their values: the prefetcher reads the same
// config file and inherits the environment, so only the command line must
// be said again. Secrets are never there (refused on a command line).
func prefetchArgs(c *cli.Context, argv []string) []string {
	known := map[string]bool{}
	for _, f := range walPrefetchCommand().Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range argv {
		name, _, _ := flagArg(a)
		if !known[name] || seen[name] || name == "prefetch-dir" || name == "workers" || slices.Contains(secretFlags, name) {
			continue
		}
		seen[name] = true
		out = append(out, fmt.Sprintf("--%s=%v", name, c.Value(name)))
	}
	return out
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
			_, err = walfetch.Prefetch(ctx, r, settingsOf(c).PrefetchDir, c.Args().Slice(), settingsOf(c).Workers)
			return err
		},
	}
}

// askWALServer hands the file to a running wal-server: no repository is
// opened here.
func askWALServer(c *cli.Context, socket string) error {
	_, err := walclient.Ask(c.Context, socket, settingsOf(c).Repo, c.Args().First())
	return err
}

func walServerCommand() *cli.Command {
	return &cli.Command{
		Name:  "wal-server",
		Usage: "archive WAL files handed over by `wal-push --wal-server SOCKET` (a resident archiver: no process start-up, configuration read or cold compressor per segment)",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.StringFlag{Name: "socket", EnvVars: env("socket"), Usage: "Unix socket to listen on (only its user may connect; e.g. /run/walvault/main.sock)"},
			&cli.IntFlag{Name: "push-ahead", EnvVars: env("push-ahead"), Value: 2, Usage: "also archive up to N other .ready segments in parallel"},
		}),
		Description: `Run it as the PostgreSQL user, and set
  archive_command = 'walvault wal-push --config /etc/walvault/main.conf --wal-server /run/walvault/main.sock %p'
wal-push then hands each file to this process and ends with the exit status a
push of its own would have had. When no server answers (stopped, crashed, or
archiving to another repository), wal-push archives the file itself: the
server only makes archiving cheaper, never a condition for it.`,
		Action: func(c *cli.Context) error {
			socket := settingsOf(c).Socket
			if socket == "" {
				return usagef("wal-server needs --socket PATH (the same path as wal-push --wal-server)")
			}
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			r, err := openRepo(c.Context, c, accessWrite)
			if err != nil {
				return err
			}
			defer r.Close()
			l, err := walpush.Listen(socket)
			if err != nil {
				return configf("wal-server: %v", err)
			}
			defer os.Remove(socket)
			log.Info("wal-server listening", "socket", socket, "repo", r.String())
			if _, err := service.Notify("READY=1"); err != nil {
				log.Warn("systemd notify", "err", err)
			}
			pushAhead := settingsOf(c).PushAhead
			h := func(ctx context.Context, path string) (bool, int, error) {
				res, err := walpush.Push(ctx, r, path, walpush.Options{PushAhead: pushAhead, Logger: log})
				return res.Stored, exitCode(err), err
			}
			err = walpush.Serve(c.Context, l, h, walpush.ServerOptions{Repo: settingsOf(c).Repo, Logger: log})
			service.Notify("STOPPING=1")
			return err
		},
	}
}
