package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/repo"
	restfs "github.com/walvault/walvault/restore/filestore"
	"github.com/walvault/walvault/restore/odoo"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/recoverydir"
	"github.com/walvault/walvault/restore/steps"
)

// postRecoveryFlags reads the post-recovery flags of restore: nil when
// none is given. The steps need a server that has promoted, so the target
// action becomes promote, and pause or shutdown given explicitly are
// refused.
func postRecoveryFlags(c *cli.Context, target *pitr.Target) (*steps.Options, error) {
	db, as := c.String("db"), c.String("as")
	var asked []string
	if as != "" {
		asked = append(asked, "--as")
	}
	if c.String("odoo-filestore") != "" {
		asked = append(asked, "--odoo-filestore")
	}
	for _, f := range []string{"neutralize", "anonymize"} {
		if c.Bool(f) {
			asked = append(asked, "--"+f)
		}
	}
	if len(asked) == 0 {
		// Not an error: a config file shared with filestore push (db =
		// prod) gives restore a --db too.
		return nil, nil
	}
	if db == "" {
		return nil, usagef("%s needs --db NAME: the database to work on", asked[0])
	}
	if c.String("odoo-filestore") != "" {
		for _, n := range []string{db, as} {
			if n != "" && !repo.ValidFilestoreDB(n) {
				return nil, usagef("database name %q: with --odoo-filestore it names a filestore folder, and Odoo names are letters, digits, '_', '.' and '-'", n)
			}
		}
	}
	if c.IsSet("target-action") && target.Action != "promote" {
		return nil, usagef("--target-action %s cannot be combined with %s: the post-recovery steps work on a server that has finished recovery and promoted; "+
			"drop --target-action (they set promote), or restore without the steps and run them later", target.Action, asked[0])
	}
	target.Action = "promote"
	return &steps.Options{
		Database: db,
		As:       as,
		// A copy is marked; a database recovered to serve again (only
		// --odoo-filestore) is not: the mark lets odoo neutralize and
		// anonymize run on it without --force.
		Mark:    (as != "" && as != db) || c.Bool("neutralize") || c.Bool("anonymize"),
		Timeout: c.Duration("timeout"),
	}, nil
}

// addFilestoreStep adds the Odoo filestore step when --odoo-filestore is
// given: the files the recovered database references, fetched into
// DIR/filestore/<final name>.
func addFilestoreStep(c *cli.Context, r *repo.Repository, post *steps.Options) error {
	dataDir := c.String("odoo-filestore")
	if dataDir == "" {
		return nil
	}
	var fopts restfs.FetchOptions
	fopts.Workers = c.Int("workers")
	if err := ownerOptions(c.String("odoo-owner"), &fopts); err != nil {
		return err
	}
	name := post.FinalName()
	dir := filepath.Join(dataDir, "filestore", name)
	post.Steps = append(post.Steps, filestoreStep(c.App.Writer, r, dir, name, dataDir, fopts))
	return nil
}

// filestoreStep fetches the files the database references into dir.
func filestoreStep(w io.Writer, r *repo.Repository, dir, db, dataDir string, fopts restfs.FetchOptions) steps.Step {
	return steps.Step{
		Name: "odoo filestore",
		Rerun: fmt.Sprintf("walvault filestore restore --db %s --data-dir %s --pg-url URL (URL: the restored server, once started; no password in it: PGPASSWORD or ~/.pgpass)",
			shellQuote(db), shellQuote(dataDir)),
		Run: func(ctx context.Context, conn *pgx.Conn) error {
			refs, err := restfs.Referenced(ctx, conn)
			if err != nil {
				return err
			}
			start := time.Now()
			rep, err := restfs.Fetch(ctx, r, refs, dir, fopts)
			if rep != nil {
				printFetchReport(w, false, dir, rep, time.Since(start))
			}
			return err
		},
	}
}

// odooSteps are --neutralize and --anonymize, in that order, on database
// db (its final name). The rules are read now, before any work.
func odooSteps(c *cli.Context, db string) ([]steps.Step, error) {
	w := c.App.Writer
	var out []steps.Step
	if c.Bool("neutralize") {
		baseURL, err := baseURLOption(c)
		if err != nil {
			return nil, err
		}
		rerun := "walvault odoo neutralize --db " + shellQuote(db)
		if baseURL != "" {
			rerun += " --base-url " + shellQuote(baseURL)
		}
		out = append(out, steps.Step{
			Name:  "neutralize",
			Rerun: rerun + " (with the connection settings of the started server)",
			Run: func(ctx context.Context, conn *pgx.Conn) error {
				rep, err := odoo.Neutralize(ctx, conn, odoo.NeutralizeOptions{BaseURL: baseURL})
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "neutralized %s: %d rows changed\n", db, rep.Rows())
				return rep.WriteText(w)
			},
		})
	}
	if c.Bool("anonymize") { // --anonymize-rules alone is refused by the restore command
		rules, err := loadRules("--anonymize-rules", c.String("anonymize-rules"))
		if err != nil {
			return nil, err
		}
		keep := c.StringSlice("keep-login")
		rerun := "walvault odoo anonymize --db " + shellQuote(db)
		if p := c.String("anonymize-rules"); p != "" {
			rerun += " --rules " + shellQuote(p)
		}
		for _, l := range keep {
			rerun += " --keep-login " + shellQuote(l)
		}
		out = append(out, steps.Step{
			Name:  "anonymize",
			Rerun: rerun + " (with the connection settings of the started server)",
			Run: func(ctx context.Context, conn *pgx.Conn) error {
				rep, err := odoo.Anonymize(ctx, conn, rules, odoo.AnonymizeOptions{KeepLogins: keep})
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "anonymized %s: %d rows changed\n", db, rep.Rows())
				return rep.WriteText(w)
			},
		})
	}
	return out, nil
}

// runPostRecovery starts the restored server privately, waits for it to
// promote, runs the steps and stops it, printing what it did.
func runPostRecovery(c *cli.Context, log *slog.Logger, post *steps.Options, pgdata string, rec *recoverydir.Recovery, res *pitr.Result, target pitr.Target) error {
	w := c.App.Writer
	post.PGData = pgdata
	post.Logger = log
	post.Info = odoo.RestoredCopy{Database: post.Database, Backup: res.Backup.ID, Target: describeTarget(target), RestoredAt: time.Now().UTC()}
	fmt.Fprintf(w, "starting the recovered server privately (socket only, archiving off) to run the post-recovery steps\n")
	post.Out = w
	out, err := steps.Run(c.Context, *post)
	if out.Promoted {
		// Recovery is over: recovery_end_command has removed the
		// recovery directory; make sure of it.
		if _, rerr := recoverydir.Clean(rec.Dir, pgdata); rerr != nil {
			log.Warn("could not remove the recovery directory: run walvault recovery-cleanup", "dir", rec.Dir, "err", rerr)
		} else {
			fmt.Fprintf(w, "  removed %s (restore_command's settings; recovery is over)\n", rec.Dir)
		}
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(w, "the data directory is recovered and promoted; start the server normally, for example:\n  pg_ctl -D %s start\n", shellQuote(pgdata))
	fmt.Fprintf(w, "it archives its new timeline as its configuration says (archive_mode, archive_command): point it at this repository for a real recovery, turn archiving off for a test copy\n")
	return nil
}
