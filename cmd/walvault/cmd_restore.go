package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/recoverydir"
	"github.com/walvault/walvault/restore/scratch"
)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "restore a base backup into a data directory, set up to replay WAL to a target",
		Flags: flags(commonFlags(), repoFlags(), progressFlags(), odooFlags(), []cli.Flag{
			dbRoleFlag(),
			&cli.StringFlag{Name: "pgdata", EnvVars: env("pgdata"), Usage: "data directory to restore into (empty or missing)"},
			&cli.StringFlag{Name: "backup", Usage: "backup id to restore (default: the newest that ends before the target)"},
			&cli.StringFlag{Name: "expect-wal-at-least", Usage: "refuse (exit 6) unless the archive reaches this WAL segment (all of it) or LSN on the timeline a restore to the latest point follows: your own record of how far archiving went"},
			&cli.StringFlag{Name: "target-time", Usage: "recover to this moment: RFC 3339 or PostgreSQL timestamptz text, with a zone"},
			&cli.StringFlag{Name: "target-lsn", Usage: "recover to this WAL location (e.g. 0/3000060)"},
			&cli.StringFlag{Name: "target-xid", Usage: "recover to the commit of this transaction id"},
			&cli.StringFlag{Name: "target-name", Usage: "recover to this restore point (pg_create_restore_point)"},
			&cli.BoolFlag{Name: "target-immediate", Usage: "stop as soon as the backup is consistent"},
			&cli.StringFlag{Name: "target-timeline", Value: "latest", Usage: "latest, current, or a timeline number"},
			&cli.StringFlag{Name: "target-action", Value: "pause", Usage: "at the target: pause, promote or shutdown"},
			&cli.StringFlag{Name: "target-inclusive", Usage: "true or false: stop just after (default) or just before the target"},
			&cli.StringSliceFlag{Name: "tablespace-map", Usage: "OLD=NEW: restore the tablespace at OLD into NEW (repeatable)"},
			&cli.StringFlag{Name: "owner", EnvVars: env("owner"), Value: "postgres", Usage: "when run as root: give the files to this user"},
			&cli.BoolFlag{Name: "force", Usage: "restore into a non-empty data directory, deleting what it holds (never a tablespace directory outside it: see --clear-tablespaces)"},
			&cli.BoolFlag{Name: "delta", Usage: "restore into a data directory that holds this cluster (damaged or behind), rewriting only the blocks that differ from the backup's (a block backup without tablespaces; needs the root key in the identity file, or a writer key)"},
			&cli.BoolFlag{Name: "clear-tablespaces", Usage: "delete what the directories named as NEW in --tablespace-map hold (a directory in use by a running server is never touched)"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Usage: "parallel downloads (default: 2 per CPU)"},
			&cli.StringFlag{Name: "recovery-dir", Usage: "where restore_command's settings (and identity copy) wait until recovery ends, outside the data directory (default: PGDATA.walvault-recovery)"},
			&cli.BoolFlag{Name: "copy-s3-credentials", Usage: "write this run's S3 credentials into the recovery directory for restore_command (readable only by --owner, removed when recovery ends); without it the server's user needs its own"},
			&cli.StringFlag{Name: "db", Usage: "post-recovery steps: the database they work on (needed by --as, --odoo-filestore, --neutralize, --anonymize; ignored without them)"},
			&cli.StringFlag{Name: "as", Usage: "post-recovery step: rename the database --db (or --database's copy) to this name"},
			&cli.StringFlag{Name: "odoo-filestore", Usage: "post-recovery step: Odoo's data_dir `DIR`: bring back into DIR/filestore/<name> exactly the files the recovered database references"},
			&cli.BoolFlag{Name: "neutralize", Usage: "post-recovery step: apply Odoo's neutralization (mail, crons, payments, tokens off) to the database, as walvault odoo neutralize"},
			baseURLFlag("with --neutralize: "),
			&cli.BoolFlag{Name: "anonymize", Usage: "post-recovery step: replace the database's personal data with fake values, as walvault odoo anonymize"},
			&cli.StringFlag{Name: "anonymize-rules", EnvVars: env("anonymize-rules"), Usage: "with --anonymize: rule `FILE` merged with the default rules (docs/ANONYMIZE.md)"},
			&cli.StringSliceFlag{Name: "keep-login", EnvVars: env("keep-login"), Usage: "with --anonymize: res_users `LOGIN` left as is, with its password (repeat for several)"},
			&cli.StringFlag{Name: "odoo-owner", EnvVars: env("odoo-owner"), Usage: "with --odoo-filestore, as root: `USER` (or USER:GROUP) owning the files (default: odoo if that user exists)"},
			&cli.StringFlag{Name: "database", Usage: "copy only this database, recovered to the target in a scratch directory, into the running server --into (instead of --pgdata)"},
			&cli.StringFlag{Name: "into", Usage: "with --database: the server to copy into, a libpq URL or key=value `CONNECTION` (password through PGPASSWORD or ~/.pgpass, never here)"},
			&cli.StringFlag{Name: "scratch", EnvVars: env("scratch"), Usage: "with --database: where the scratch directory is made (default $TMPDIR); it needs the backup's size"},
			&cli.StringFlag{Name: "pg-bindir", EnvVars: env("pg-bindir"), Usage: "with post-recovery steps or --database: directory of the PostgreSQL server programs (default: /usr/lib/postgresql/<version>/bin, else PATH)"},
			&cli.DurationFlag{Name: "timeout", EnvVars: env("timeout"), Value: time.Hour, Usage: "with post-recovery steps or --database: how long to wait for recovery to reach the target and promote"},
		}),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			if settingsOf(c).AnonymizeRules != "" && !settingsOf(c).Anonymize {
				return usagef("--anonymize-rules goes with --anonymize")
			}
			if settingsOf(c).BaseURL != "" && !settingsOf(c).Neutralize {
				return usagef("--base-url goes with --neutralize")
			}
			if _, err := baseURLOption(c); err != nil {
				return err
			}
			if settingsOf(c).Database != "" {
				if c.Bool("delta") {
					return usagef("--delta rewrites a whole data directory (--pgdata); --database copies one database into a running server: use one or the other")
				}
				return restoreDatabase(c, log)
			}
			if settingsOf(c).Into != "" || settingsOf(c).Scratch != "" {
				return usagef("--into and --scratch go with --database NAME (one database copied into a running server)")
			}
			pgdata := settingsOf(c).PGData
			if pgdata == "" {
				return usagef("restore needs --pgdata DIR (or --database NAME --into CONNECTION)")
			}
			if pgdata, err = filepath.Abs(pgdata); err != nil {
				return usagef("--pgdata: %v", err)
			}
			target, err := parseTarget(c)
			if err != nil {
				return err
			}
			post, err := postRecoveryFlags(c, &target)
			if err != nil {
				return err
			}
			if id := settingsOf(c).Backup; id != "" && !repo.ValidBackupID(id) {
				return usagef("--backup %q: backup ids look like 20261123T225700Z (walvault info lists them)", id)
			}
			tsMap, err := parseTablespaceMap(c)
			if err != nil {
				return err
			}
			if settingsOf(c).ClearTablespaces && len(tsMap) == 0 {
				return usagef("--clear-tablespaces clears the directories named with --tablespace-map OLD=NEW; give those")
			}
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			account, err := scratch.ServerAccount(settingsOf(c).Owner)
			if err != nil {
				return configf("%v", err)
			}
			if post != nil {
				post.opts.Account = account
				post.opts.DBUser, post.opts.FallbackRoles = settingsOf(c).DBUser, fallbackRoles(c)
				// Before any download: the server programs must be there,
				// the rules readable.
				if post.opts.BinDir, _, err = scratch.FindBinDir(settingsOf(c).PGBinDir, r.Config.PGMajor); err != nil {
					return err
				}
				if err := planSteps(c, r, &post.plan, post.opts.FinalName()); err != nil {
					return err
				}
			}
			recDir := settingsOf(c).RecoveryDir
			if recDir == "" {
				recDir = recoverydir.DefaultDir(pgdata)
			} else if recDir, err = filepath.Abs(recDir); err != nil {
				return usagef("--recovery-dir: %v", err)
			}
			if settingsOf(c).CopyS3Credentials && post != nil {
				return usagef("--copy-s3-credentials has no use with post-recovery steps: restore runs recovery itself, with this run's credentials in the server's environment")
			}
			// Checked (by trying, as the server's user) before anything is
			// downloaded: a restore_command that cannot work must not be
			// found out at the end of a long restore.
			rs, err := setupRecovery(c.Context, c, recoveryRequest{pgdata: pgdata, dir: recDir, account: account, scratch: post != nil})
			if err != nil {
				return err
			}
			if post != nil {
				post.opts.ServerEnv = rs.env
			}
			var expect pgwal.LSN
			if s := settingsOf(c).ExpectWALAtLeast; s != "" {
				if expect, err = catalog.ParseWALPosition(s, r.Config.WALSegmentSize); err != nil {
					_, _ = recoverydir.Clean(rs.rec.Dir, "")
					return usagef("--expect-wal-at-least %v", err)
				}
			}
			prog, log, err := startProgress(c, log)
			if err != nil {
				_, _ = recoverydir.Clean(rs.rec.Dir, "")
				return err
			}
			defer prog.Close()
			prog.Start("restore", -1)
			start := time.Now()
			res, err := pitr.Run(c.Context, r, pitr.Options{
				PGData:           pgdata,
				BackupID:         settingsOf(c).Backup,
				Target:           target,
				TablespaceMap:    tsMap,
				Owner:            account.Name,
				Force:            settingsOf(c).Force,
				Delta:            c.Bool("delta"),
				ClearTablespaces: settingsOf(c).ClearTablespaces,
				RestoreCommand:   rs.rec.RestoreCommand,
				EndCommand:       rs.rec.EndCommand,
				Workers:          settingsOf(c).Workers,
				Logger:           log,
				Progress:         prog.Update,
				ExpectWALAtLeast: expect,
			})
			prog.Close()
			if err != nil {
				// Nothing will run restore_command: the settings and any
				// identity copy go now.
				_, _ = recoverydir.Clean(rs.rec.Dir, "")
				return fmt.Errorf("restore: %w", err)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "restored backup %s (%s, stop %s) into %s: %s in %s\n", res.Backup.ID, res.Backup.StopLSN,
				res.Backup.StopTime.UTC().Format(time.RFC3339), pgdata, units.Bytes(res.Bytes), time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(w, "recovery target: %s; recoverable window from this backup: %s to %s\n", describeTarget(target),
				res.Window.From.UTC().Format(time.RFC3339), res.Window.To.UTC().Format(time.RFC3339))
			if post != nil {
				return runPostRecovery(c, log, post, pgdata, rs.rec, res)
			}
			describeRecoverySetup(w, rs, account, pgdata)
			fmt.Fprintf(w, "start the server to replay WAL, for example:\n  pg_ctl -D %s start\n", shellQuote(pgdata))
			return nil
		},
	}
}

// describeRecoverySetup says what restore_command reads, where, and how it
// goes away.
func describeRecoverySetup(w io.Writer, rs *recoverySetup, account *scratch.Account, pgdata string) {
	what := rs.rec.ConfPath
	if rs.keyCopied {
		what += " and a copy of the identity, " + rs.rec.KeyPath
	}
	fmt.Fprintf(w, "restore_command reads %s (readable only by %s, outside the data directory)", what, account.Name)
	if rs.included != "" {
		fmt.Fprintf(w, "; it also reads your %s", rs.included)
	}
	if rs.credsCopied {
		fmt.Fprintf(w, "; this run's S3 credentials are copied there (--copy-s3-credentials)")
	}
	fmt.Fprintf(w, ".\nrecovery_end_command removes them when recovery ends; for a restore you abandon, remove them with:\n  walvault recovery-cleanup --pgdata %s", shellQuote(pgdata))
	if rs.rec.Dir != recoverydir.DefaultDir(pgdata) {
		fmt.Fprintf(w, " --recovery-dir %s", shellQuote(rs.rec.Dir))
	}
	fmt.Fprintln(w)
}

func parseTablespaceMap(c *cli.Context) (map[string]string, error) {
	tsMap := map[string]string{}
	for _, m := range settingsOf(c).TablespaceMap {
		old, nw, ok := strings.Cut(m, "=")
		if !ok || !filepath.IsAbs(old) || !filepath.IsAbs(nw) {
			return nil, usagef("--tablespace-map %q: use OLD=NEW with absolute paths", m)
		}
		tsMap[filepath.Clean(old)] = filepath.Clean(nw)
	}
	return tsMap, nil
}

func parseTarget(c *cli.Context) (pitr.Target, error) {
	t := pitr.Target{Timeline: settingsOf(c).TargetTimeline, Action: settingsOf(c).TargetAction}
	n := 0
	if s := settingsOf(c).TargetTime; s != "" {
		n++
		tm, err := pitr.ParseTargetTime(s)
		if err != nil {
			return t, usagef("--target-time: %v", err)
		}
		t.Time = &tm
	}
	if s := settingsOf(c).TargetLSN; s != "" {
		n++
		l, err := pgwal.ParseLSN(s)
		if err != nil {
			return t, usagef("--target-lsn: %v", err)
		}
		t.LSN = &l
	}
	if s := settingsOf(c).TargetXID; s != "" {
		n++
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil || x < 3 {
			return t, usagef("--target-xid %q: a transaction id is a number of 3 or more", s)
		}
		t.XID = &x
	}
	if s := settingsOf(c).TargetName; s != "" {
		n++
		t.Name = s
	}
	if settingsOf(c).TargetImmediate {
		n++
		t.Immediate = true
	}
	if n > 1 {
		return t, usagef("give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target-immediate")
	}
	switch t.Action {
	case "pause", "promote", "shutdown":
	default:
		return t, usagef("--target-action %q: use pause, promote or shutdown", t.Action)
	}
	switch tl := t.Timeline; tl {
	case "latest", "current":
	default:
		if v, err := strconv.ParseUint(tl, 10, 32); err != nil || v == 0 {
			return t, usagef("--target-timeline %q: use latest, current or a timeline number", tl)
		}
	}
	if s := settingsOf(c).TargetInclusive; s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return t, usagef("--target-inclusive %q: use true or false", s)
		}
		t.Inclusive = &b
	}
	if err := t.Validate(); err != nil {
		return t, usagef("%v", err)
	}
	return t, nil
}

func describeTarget(t pitr.Target) string {
	switch {
	case t.Time != nil:
		return "time " + t.Time.UTC().Format(time.RFC3339Nano)
	case t.LSN != nil:
		return "LSN " + t.LSN.String()
	case t.XID != nil:
		return fmt.Sprintf("transaction %d", *t.XID)
	case t.Name != "":
		return "restore point " + t.Name
	case t.Immediate:
		return "end of the backup"
	}
	return "the end of the archived WAL (latest)"
}

// selfPath is this program's path with symbolic links resolved: the
// program restore_command (and the drill's and --database's scratch
// servers) run.
func selfPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(exe)
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
