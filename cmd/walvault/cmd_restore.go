package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/pgwal"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/scratch"
)

// recoveryConfigName is the config file restore writes into the data
// directory for the restore_command it sets.
const recoveryConfigName = "walvault-recovery.conf"

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "restore a base backup into a data directory, set up to replay WAL to a target",
		Flags: flags(commonFlags(), repoFlags(), progressFlags(), []cli.Flag{
			&cli.StringFlag{Name: "pgdata", EnvVars: env("pgdata"), Usage: "data directory to restore into (empty or missing)"},
			&cli.StringFlag{Name: "backup", Usage: "backup id to restore (default: the newest that ends before the target)"},
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
			&cli.BoolFlag{Name: "clear-tablespaces", Usage: "delete what the directories named as NEW in --tablespace-map hold (a directory in use by a running server is never touched)"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Usage: "parallel downloads (default: 2 per CPU)"},
			&cli.StringFlag{Name: "db", Usage: "post-recovery steps: the database they work on (needed by --as, --odoo-filestore, --neutralize, --anonymize; ignored without them)"},
			&cli.StringFlag{Name: "as", Usage: "post-recovery step: rename the database --db (or --database's copy) to this name"},
			&cli.StringFlag{Name: "odoo-filestore", Usage: "post-recovery step: Odoo's data_dir `DIR`: bring back into DIR/filestore/<name> exactly the files the recovered database references"},
			&cli.BoolFlag{Name: "neutralize", Usage: "post-recovery step: apply Odoo's neutralization (mail, crons, payments, tokens off) to the database, as walvault odoo neutralize"},
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
			if c.String("anonymize-rules") != "" && !c.Bool("anonymize") {
				return usagef("--anonymize-rules goes with --anonymize")
			}
			if c.String("database") != "" {
				return restoreDatabase(c, log)
			}
			if c.String("into") != "" || c.String("scratch") != "" {
				return usagef("--into and --scratch go with --database NAME (one database copied into a running server)")
			}
			pgdata := c.String("pgdata")
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
			if id := c.String("backup"); id != "" && !repo.ValidBackupID(id) {
				return usagef("--backup %q: backup ids look like 20261123T225700Z (walvault info lists them)", id)
			}
			tsMap, err := parseTablespaceMap(c)
			if err != nil {
				return err
			}
			if c.Bool("clear-tablespaces") && len(tsMap) == 0 {
				return usagef("--clear-tablespaces clears the directories named with --tablespace-map OLD=NEW; give those")
			}
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			exe, err := selfPath()
			if err != nil {
				return err
			}
			confPath := filepath.Join(pgdata, recoveryConfigName)
			extra, keyCopied, err := recoveryFiles(c, pgdata)
			if err != nil {
				return err
			}
			if post != nil {
				// Before any download: the server programs must be there.
				if post.BinDir, _, err = scratch.FindBinDir(c.String("pg-bindir"), r.Config.PGMajor); err != nil {
					return err
				}
				if post.Account, err = scratch.ServerAccount(c.String("owner")); err != nil {
					return configf("%v", err)
				}
				// Neutralize and anonymise before the filestore, as
				// restore --database does: anonymised records reference no
				// file, so personal attachments are never fetched into a
				// staging copy, and a filestore that comes back incomplete
				// (exit 13) does not leave the copy un-neutralized.
				odooSteps, err := odooSteps(c, post.FinalName())
				if err != nil {
					return err
				}
				post.Steps = append(post.Steps, odooSteps...)
				if err := addFilestoreStep(c, r, post); err != nil {
					return err
				}
			}
			prog, log, err := startProgress(c, log)
			if err != nil {
				return err
			}
			defer prog.Close()
			prog.Start("restore", -1)
			start := time.Now()
			res, err := pitr.Run(c.Context, r, pitr.Options{
				PGData:           pgdata,
				BackupID:         c.String("backup"),
				Target:           target,
				TablespaceMap:    tsMap,
				Owner:            c.String("owner"),
				Force:            c.Bool("force"),
				ClearTablespaces: c.Bool("clear-tablespaces"),
				RestoreCommand:   fmt.Sprintf("%s wal-fetch --config %s %%f %%p", shellQuote(exe), shellQuote(confPath)),
				ExtraFiles:       extra,
				Workers:          c.Int("workers"),
				Logger:           log,
				Progress:         prog.Update,
			})
			prog.Close()
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "restored backup %s (%s, stop %s) into %s: %s in %s\n", res.Backup.ID, res.Backup.StopLSN,
				res.Backup.StopTime.UTC().Format(time.RFC3339), pgdata, units.Bytes(res.Bytes), time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(w, "recovery target: %s; recoverable window from this backup: %s to %s\n", describeTarget(target),
				res.Window.From.UTC().Format(time.RFC3339), res.Window.To.UTC().Format(time.RFC3339))
			if keyCopied {
				fmt.Fprintf(w, "%s cannot read %s: restore_command uses a copy, %s (mode 0600)\n",
					c.String("owner"), c.String("age-identity-file"), filepath.Join(pgdata, recoveryKeyName))
			}
			if post != nil {
				return runPostRecovery(c, log, post, pgdata, res, target)
			}
			fmt.Fprintf(w, "start the server to replay WAL, for example:\n  pg_ctl -D %s start\n", shellQuote(pgdata))
			secrets := confPath + " (it holds the repository settings for restore_command)"
			if keyCopied {
				secrets += " and " + filepath.Join(pgdata, recoveryKeyName) + " (the identity: a private key)"
			}
			fmt.Fprintf(w, "after recovery ends, delete %s, and %s (segments prefetched but not needed)\n",
				secrets, filepath.Join(pgdata, "pg_wal", ".walvault-prefetch"))
			return nil
		},
	}
}

func parseTablespaceMap(c *cli.Context) (map[string]string, error) {
	tsMap := map[string]string{}
	for _, m := range c.StringSlice("tablespace-map") {
		old, nw, ok := strings.Cut(m, "=")
		if !ok || !filepath.IsAbs(old) || !filepath.IsAbs(nw) {
			return nil, usagef("--tablespace-map %q: use OLD=NEW with absolute paths", m)
		}
		tsMap[filepath.Clean(old)] = filepath.Clean(nw)
	}
	return tsMap, nil
}

func parseTarget(c *cli.Context) (pitr.Target, error) {
	t := pitr.Target{Timeline: c.String("target-timeline"), Action: c.String("target-action")}
	n := 0
	if s := c.String("target-time"); s != "" {
		n++
		tm, err := pitr.ParseTargetTime(s)
		if err != nil {
			return t, usagef("--target-time: %v", err)
		}
		t.Time = &tm
	}
	if s := c.String("target-lsn"); s != "" {
		n++
		l, err := pgwal.ParseLSN(s)
		if err != nil {
			return t, usagef("--target-lsn: %v", err)
		}
		t.LSN = &l
	}
	if s := c.String("target-xid"); s != "" {
		n++
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil || x < 3 {
			return t, usagef("--target-xid %q: a transaction id is a number of 3 or more", s)
		}
		t.XID = &x
	}
	if s := c.String("target-name"); s != "" {
		n++
		t.Name = s
	}
	if c.Bool("target-immediate") {
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
	if s := c.String("target-inclusive"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return t, usagef("--target-inclusive %q: use true or false", s)
		}
		t.Inclusive = &b
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

// recoveryConfig is the config file restore_command reads: the repository
// settings of this run. The server that replays WAL usually runs under
// another user and without this shell's environment, so S3 credentials
// given through the environment are written here too (mode 0600, owned by
// the server's user).
func recoveryConfig(c *cli.Context) ([]byte, error) {
	return recoveryConfigWith(c, "")
}

// recoveryKeyName is the copy of the identity file restore writes into the
// data directory when the server's user could not read the original.
const recoveryKeyName = "walvault-recovery.key"

// recoveryFiles are the files restore writes into pgdata for
// restore_command: the settings and, when this runs as root, a copy of the
// identity file beside them, mode 0600 and owned by the server's user. As
// root the key is usually root's own (in /root, the usual case in an
// incident), which the server's user cannot read; without the copy every
// wal-fetch would fail and recovery would stop at the backup's end. Judging
// readability from the file's mode alone misses the folders above it, so
// root always copies, as drill does.
func recoveryFiles(c *cli.Context, pgdata string) (map[string][]byte, bool, error) {
	id := c.String("age-identity-file")
	if id == "" || os.Geteuid() != 0 {
		conf, err := recoveryConfig(c)
		return map[string][]byte{recoveryConfigName: conf}, false, err
	}
	key, err := os.ReadFile(id)
	if err != nil {
		return nil, false, configf("--age-identity-file: %v", err)
	}
	conf, err := recoveryConfigWith(c, filepath.Join(pgdata, recoveryKeyName))
	return map[string][]byte{recoveryConfigName: conf, recoveryKeyName: key}, true, err
}

// recoveryConfigWith is recoveryConfig with the identity file at
// identity instead of where this run read it ("": the same).
func recoveryConfigWith(c *cli.Context, identity string) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# written by walvault restore for restore_command; delete after recovery\n")
	put := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s = %s\n", k, v)
		}
	}
	put("repo", c.String("repo"))
	put("s3-endpoint", c.String("s3-endpoint"))
	put("s3-region", c.String("s3-region"))
	if c.Bool("s3-path-style") {
		put("s3-path-style", "true")
	}
	if id := c.String("age-identity-file"); identity != "" {
		put("age-identity-file", identity)
	} else if id != "" {
		abs, err := filepath.Abs(id)
		if err != nil {
			return nil, err
		}
		put("age-identity-file", abs)
	}
	if strings.HasPrefix(c.String("repo"), "s3://") {
		ak, sk, tok := c.String("s3-access-key"), c.String("s3-secret-key"), c.String("s3-session-token")
		if ak == "" && sk == "" {
			ak, sk, tok = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
		}
		put("s3-access-key", ak)
		put("s3-secret-key", sk)
		put("s3-session-token", tok)
	}
	put("log-format", c.String("log-format"))
	return []byte(b.String()), nil
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
