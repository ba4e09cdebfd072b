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
	"github.com/walvault/walvault/restore/filestorefetch"
	"github.com/walvault/walvault/restore/odoo"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/recoverydir"
	"github.com/walvault/walvault/restore/steps"
)

// postRecovery is what restore's post-recovery flags ask for.
type postRecovery struct {
	opts steps.Options
	plan steps.Plan
	// info is what the mark records; filled in as the restore goes.
	info odoo.RestoredCopy
}

// postRecoveryFlags reads the post-recovery flags of restore: nil when
// none is given. The steps need a server that has promoted, so the target
// action becomes promote, and pause or shutdown given explicitly are
// refused.
func postRecoveryFlags(c *cli.Context, target *pitr.Target) (*postRecovery, error) {
	db, as := settingsOf(c).DB, settingsOf(c).As
	var asked []string
	if as != "" {
		asked = append(asked, "--as")
	}
	if settingsOf(c).OdooFilestore != "" {
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
	if settingsOf(c).OdooFilestore != "" {
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
	post := &postRecovery{opts: steps.Options{Database: db, As: as, Timeout: settingsOf(c).Timeout}}
	post.info = odoo.RestoredCopy{Database: db, Target: describeTarget(*target)}
	// A copy is marked; a database recovered to serve again (only
	// --odoo-filestore) is not: the mark lets odoo neutralize and
	// anonymize run on it without --force.
	if (as != "" && as != db) || settingsOf(c).Neutralize || settingsOf(c).Anonymize {
		post.plan.Mark = &post.info
	}
	// Production again archives its new timeline: its history file too.
	post.opts.ArchiveTimeline = post.plan.Mark == nil
	return post, nil
}

// planSteps adds to plan the steps --neutralize, --anonymize and
// --odoo-filestore ask for, on database db (its final name), for restore
// and restore --database alike; steps.Plan puts them in order. The rules
// and the filestore owner are checked now, before any work.
func planSteps(c *cli.Context, r *repo.Repository, plan *steps.Plan, db string) error {
	w := c.App.Writer
	if settingsOf(c).Neutralize {
		baseURL, err := baseURLOption(c)
		if err != nil {
			return err
		}
		rerun := "walvault odoo neutralize --db " + shellQuote(db)
		if baseURL != "" {
			rerun += " --base-url " + shellQuote(baseURL)
		}
		plan.Neutralize = &steps.Step{
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
		}
	}
	if settingsOf(c).Anonymize { // --anonymize-rules alone is refused by the restore command
		rules, err := loadRules("--anonymize-rules", settingsOf(c).AnonymizeRules)
		if err != nil {
			return err
		}
		keep := settingsOf(c).KeepLogin
		rerun := "walvault odoo anonymize --db " + shellQuote(db)
		if p := settingsOf(c).AnonymizeRules; p != "" {
			rerun += " --rules " + shellQuote(p)
		}
		for _, l := range keep {
			rerun += " --keep-login " + shellQuote(l)
		}
		plan.Anonymize = &steps.Step{
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
		}
	}
	if dataDir := settingsOf(c).OdooFilestore; dataDir != "" {
		var fopts filestorefetch.FetchOptions
		fopts.Workers = settingsOf(c).Workers
		if err := ownerOptions(settingsOf(c).OdooOwner, &fopts); err != nil {
			return err
		}
		st := filestoreStep(w, r, filepath.Join(dataDir, "filestore", db), db, dataDir, fopts)
		plan.Filestore = &st
	}
	return nil
}

// filestoreStep fetches the files the database references into dir.
func filestoreStep(w io.Writer, r *repo.Repository, dir, db, dataDir string, fopts filestorefetch.FetchOptions) steps.Step {
	return steps.Step{
		Name: "odoo filestore",
		Rerun: fmt.Sprintf("walvault filestore restore --db %s --data-dir %s --pg-url URL (URL: the restored server, once started; no password in it: PGPASSWORD or ~/.pgpass)",
			shellQuote(db), shellQuote(dataDir)),
		Run: func(ctx context.Context, conn *pgx.Conn) error {
			refs, err := filestorefetch.Referenced(ctx, conn)
			if err != nil {
				return err
			}
			start := time.Now()
			rep, err := filestorefetch.Fetch(ctx, r, refs, dir, fopts)
			if rep != nil {
				printFetchReport(w, false, dir, rep, time.Since(start))
			}
			return err
		},
	}
}

// runPostRecovery starts the restored server privately, waits for it to
// promote, runs the steps and stops it, printing what it did.
func runPostRecovery(c *cli.Context, log *slog.Logger, post *postRecovery, pgdata string, rec *recoverydir.Recovery, res *pitr.Result) error {
	w := c.App.Writer
	post.info.Backup = res.Backup.ID
	opts := post.opts
	opts.PGData = pgdata
	opts.Logger = log
	opts.Out = w
	opts.Steps = post.plan.Steps(w)
	fmt.Fprintf(w, "starting the recovered server privately (socket only, archiving off) to run the post-recovery steps\n")
	out, err := steps.Run(c.Context, opts)
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
