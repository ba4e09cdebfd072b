package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/filestorepush"
	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/restore/filestorefetch"
	"github.com/walvault/walvault/restore/info"
)

func filestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "filestore",
		Usage: "archive and restore an Odoo filestore (attachments) beside the database",
		Subcommands: []*cli.Command{
			filestorePushCommand(),
			filestoreRestoreCommand(),
			filestoreInfoCommand(),
		},
	}
}

func filestoreDirFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "db", EnvVars: env("odoo-db"), Usage: "Odoo database `NAME` (its filestore is <data-dir>/filestore/NAME)"},
		&cli.StringFlag{Name: "data-dir", EnvVars: env("odoo-data-dir"), Usage: "Odoo's data_dir (default: data_dir of odoo.conf, else ~odoo/.local/share/Odoo)"},
	}
}

func filestorePushCommand() *cli.Command {
	return &cli.Command{
		Name:  "push",
		Usage: "store every file of an Odoo filestore once and log what the filestore holds",
		Flags: flags(commonFlags(), repoFlags(), filestoreDirFlags(), odooFlags(), progressFlags(), []cli.Flag{
			&cli.StringFlag{Name: "filestore", EnvVars: env("odoo-filestore"), Usage: "the filestore `DIR` itself (instead of --data-dir)"},
			&cli.StringFlag{Name: "state-dir", EnvVars: env("filestore-state-dir"), Usage: "local cache `DIR` (default: $XDG_STATE_HOME/walvault/filestore/<repo>/<db>, as root /var/lib/walvault/filestore/<repo>/<db>)"},
			&cli.DurationFlag{Name: "interval", EnvVars: env("filestore-interval"), Usage: "rescan every `D` until stopped (SIGTERM ends after the pass in progress is logged)"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Usage: "files read and stored at once (default: 2 per CPU, at least 4)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per pass"},
			lockWaitFlag(10 * time.Minute),
		}),
		Description: `Each file of <data-dir>/filestore/<db> (named xx/<sha1> by Odoo) is checked
against its name and stored once, as filestore/objects/xx/<sha1>, shared by all
databases. A file whose content does not hash to its name is reported and not
stored. Entries not shaped like xx/<sha1> (checklist/, …) are counted and
skipped. A local cache keeps later passes from reading unchanged files; without
it the repository's listing is the truth. A pass that finds files added or
removed appends a delta record to filestore/db/<db>/log/, which restore and
expire read. A pass appends a full snapshot instead, changes or not, when there
is no usable cache (none yet, unreadable, another repository's, or the
database's log changed since it was written) and after every ` + strconv.Itoa(filestorepush.SnapshotEvery) + ` deltas.`,
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			db := settingsOf(c).DB
			if db == "" {
				return usagef("filestore push needs --db NAME (the Odoo database)")
			}
			if !repo.ValidFilestoreDB(db) {
				return usagef("--db %q: Odoo database names are letters, digits, '_', '.' and '-'", db)
			}
			dir := settingsOf(c).Filestore
			switch {
			case dir != "" && settingsOf(c).DataDir != "":
				return usagef("give --filestore DIR or --data-dir DIR, not both")
			case dir == "":
				dataDir, err := odooDataDir(c, settingsOf(c).DataDir)
				if err != nil {
					return err
				}
				dir = filepath.Join(dataDir, "filestore", db)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return configf("filestore %s: not a readable directory (check --data-dir and --db)", dir)
			}
			if settingsOf(c).Interval < 0 {
				return usagef("--interval %s: give a positive duration", settingsOf(c).Interval)
			}
			prog, log, err := startProgress(c, log)
			if err != nil {
				return err
			}
			defer prog.Close()
			r, err := openRepo(c.Context, c, accessWrite)
			if err != nil {
				return err
			}
			defer r.Close()
			id := filestoreRepoID(r)
			state := settingsOf(c).StateDir
			if state == "" {
				state, err = defaultFilestoreState(id, db)
				if err != nil {
					return err
				}
			}
			opts := filestorepush.Options{DB: db, Dir: dir, StateDir: state, RepoID: id, Workers: settingsOf(c).Workers, Logger: log, Progress: prog}
			for {
				if err := filestorePass(c, log, r, opts); err != nil {
					if settingsOf(c).Interval == 0 {
						return err
					}
					if c.Context.Err() != nil {
						// Stopped (SIGTERM): what was stored is logged.
						if errors.Is(err, context.Canceled) {
							return nil
						}
						return err
					}
					log.Error("filestore pass failed; retrying at the next interval", "db", db, "err", err)
				}
				if settingsOf(c).Interval == 0 {
					return nil
				}
				select {
				case <-c.Context.Done():
					return nil
				case <-time.After(settingsOf(c).Interval):
				}
			}
		},
	}
}

// filestorePass runs one pass (under the repository's shared lock, which
// Push takes) and prints its report.
func filestorePass(c *cli.Context, log *slog.Logger, r *repo.Repository, opts filestorepush.Options) error {
	opts.Change = changeOptions(c, log)
	rep, err := filestorepush.Push(c.Context, r, opts)
	if rep != nil {
		if settingsOf(c).JSON {
			json.NewEncoder(c.App.Writer).Encode(rep)
		} else {
			fmt.Fprintf(c.App.Writer, "filestore %s: %d files (%d unchanged, %d already stored, %d stored now: %s as %s), %d skipped, %d not matching their name",
				rep.DB, rep.Files, rep.Unchanged, rep.Known+rep.Existing, rep.Uploaded, units.Bytes(rep.Bytes), units.Bytes(rep.StoredBytes), rep.Skipped, len(rep.Mismatched))
			if rep.Record != "" {
				fmt.Fprintf(c.App.Writer, "; logged %s +%d -%d", rep.Kind, rep.Added, rep.Removed)
			}
			fmt.Fprintf(c.App.Writer, " in %s\n", rep.Duration.Round(time.Millisecond))
			for _, m := range rep.Mismatched {
				fmt.Fprintf(c.App.Writer, "  not stored (content does not match the name: damaged?): %s\n", m)
			}
		}
		if rep.CacheNote != "" {
			log.Info("filestore cache not used; the repository listing decided what is stored", "reason", rep.CacheNote, "state_dir", opts.StateDir)
		}
	}
	if err != nil {
		return fmt.Errorf("filestore push: %w", err)
	}
	return nil
}

// filestoreRepoID identifies a repository for the local cache: its
// location, cluster and creation time (a repository recreated at the same
// URL is another one).
func filestoreRepoID(r *repo.Repository) string {
	h := sha256.Sum256([]byte(r.String() + "\x00" + r.Config.SystemIdentifier + "\x00" + r.Config.CreatedAt.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h[:16])
}

func defaultFilestoreState(id, db string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	switch {
	case base != "":
		base = filepath.Join(base, "walvault")
	case os.Geteuid() == 0:
		base = "/var/lib/walvault"
	default:
		home, err := os.UserHomeDir()
		if err != nil {
			return "", configf("no --state-dir and no home directory for the filestore cache: %v", err)
		}
		base = filepath.Join(home, ".local", "state", "walvault")
	}
	return filepath.Join(base, "filestore", id, db), nil
}

func filestoreRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "bring back the filestore files a recovered database references",
		Flags: flags(commonFlags(), repoFlags(), pgFlags(), filestoreDirFlags(), odooFlags(), []cli.Flag{
			&cli.StringFlag{Name: "as", Usage: "the database's new `NAME`: read from it, and write to <data-dir>/filestore/NAME"},
			&cli.StringFlag{Name: "owner", EnvVars: env("odoo-owner"), Usage: "`USER` (or USER:GROUP) owning the files when run as root (default: odoo if that user exists)"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Usage: "files fetched at once (default: 2 per CPU, at least 4)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON object"},
		}),
		Description: `Run after the database is recovered, against the recovered server (--pg-url;
the database is --as, else --db, unless the URL names one). Reads
ir_attachment.store_fname and writes exactly those files to
<data-dir>/filestore/<as or db>, each checked against its SHA-1; files already
there and intact are kept. Every referenced file the repository does not hold is
listed, and the exit code is 13 (filestore incomplete).`,
		Action: func(c *cli.Context) error {
			db := settingsOf(c).DB
			if db == "" {
				return usagef("filestore restore needs --db NAME")
			}
			dataDir, err := odooDataDir(c, settingsOf(c).DataDir)
			if err != nil {
				return err
			}
			target := db
			if settingsOf(c).As != "" {
				target = settingsOf(c).As
			}
			for _, n := range []string{db, target} {
				if !repo.ValidFilestoreDB(n) {
					return usagef("database name %q: Odoo names are letters, digits, '_', '.' and '-'", n)
				}
			}
			var fopts filestorefetch.FetchOptions
			fopts.Workers = settingsOf(c).Workers
			if err := ownerOptions(settingsOf(c).Owner, &fopts); err != nil {
				return err
			}
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			// The database the URL names (the recovered cluster's,
			// whatever --as says), else the (new) name; without
			// --pg-url, odoo.conf's connection settings.
			name := target
			if settingsOf(c).PGURL != "" {
				name = ""
			}
			cfg, err := odooConnConfig(c, name)
			if err != nil {
				return err
			}
			if cfg.Database == "" {
				cfg.Database = target
			}
			conn, err := pgx.ConnectConfig(c.Context, cfg)
			if err != nil {
				msg := err.Error()
				if cfg.Password != "" {
					msg = strings.ReplaceAll(msg, cfg.Password, "********")
				}
				return fmt.Errorf("%w: database %s: %s", replconn.ErrConnect, cfg.Database, msg)
			}
			refs, err := filestorefetch.Referenced(c.Context, conn)
			conn.Close(context.WithoutCancel(c.Context))
			if err != nil {
				return fmt.Errorf("filestore restore: database %s: %w", cfg.Database, err)
			}
			dir := filepath.Join(dataDir, "filestore", target)
			start := time.Now()
			rep, err := filestorefetch.Fetch(c.Context, r, refs, dir, fopts)
			if rep != nil {
				printFetchReport(c.App.Writer, settingsOf(c).JSON, dir, rep, time.Since(start))
			}
			if err != nil {
				return fmt.Errorf("filestore restore into %s: %w", dir, err)
			}
			return nil
		},
	}
}

// ownerOptions: as root, files belong to --owner, else odoo when that
// user exists; otherwise they belong to whoever runs walvault.
func ownerOptions(owner string, o *filestorefetch.FetchOptions) error {
	if os.Geteuid() != 0 {
		if owner != "" {
			return usagef("--owner needs root (files are created as the user running walvault)")
		}
		return nil
	}
	if owner == "" {
		if _, err := user.Lookup("odoo"); err != nil {
			return nil
		}
		owner = "odoo"
	}
	name, group, _ := strings.Cut(owner, ":")
	u, err := user.Lookup(name)
	if err != nil {
		return usagef("--owner %s: no such user", name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return usagef("--owner %s: no such group %s", owner, group)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	o.Chown, o.UID, o.GID = true, uid, gid
	return nil
}

func printFetchReport(w io.Writer, asJSON bool, dir string, rep *filestorefetch.Report, el time.Duration) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	fmt.Fprintf(w, "filestore %s: %d files referenced, %d restored (%s), %d already present, %d missing, %d unusable in %s\n",
		dir, rep.Referenced, rep.Fetched, units.Bytes(rep.Bytes), rep.Present, len(rep.Missing), len(rep.Unusable), el.Round(time.Millisecond))
	for _, m := range rep.Missing {
		fmt.Fprintf(w, "  missing (not in the repository): %s\n", m.StoreFname)
	}
	for _, p := range rep.Unusable {
		fmt.Fprintf(w, "  unusable: %s: %s\n", p.StoreFname, p.Reason)
	}
}

func filestoreInfoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "filestore objects stored, and per database the files its newest log record holds",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		}),
		Action: func(c *cli.Context) error {
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			fi, err := info.LoadFilestore(c.Context, r)
			if err != nil {
				return fmt.Errorf("filestore info: %w", err)
			}
			if settingsOf(c).JSON {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(fi)
			}
			fi.WriteText(c.App.Writer)
			return nil
		},
	}
}
