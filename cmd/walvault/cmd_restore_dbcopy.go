package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/restore/dbcopy"
	"github.com/walvault/walvault/restore/drill"
	"github.com/walvault/walvault/restore/odoo"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/scratch"
	"github.com/walvault/walvault/restore/steps"
)

// restoreDatabase is restore --database NAME --into CONNECTION: one
// database recovered to the target and copied beside the live one.
func restoreDatabase(c *cli.Context, log *slog.Logger) error {
	db, into := settingsOf(c).Database, settingsOf(c).Into
	switch {
	case into == "":
		return usagef("--database needs --into CONNECTION: the running server to copy the database into")
	case settingsOf(c).PGData != "":
		return usagef("--database copies one database into a running server: it takes --into, not --pgdata")
	case settingsOf(c).Force, settingsOf(c).ClearTablespaces:
		return usagef("--force and --clear-tablespaces have no use with --database (the scratch directory is always new)")
	}
	target, err := parseTarget(c)
	if err != nil {
		return err
	}
	if c.IsSet("target-action") && target.Action != "promote" {
		return usagef("--target-action %s cannot be combined with --database: the copy is made from a server that has finished recovery and promoted; drop --target-action", target.Action)
	}
	target.Action = "promote"
	newName := settingsOf(c).As
	if newName == "" {
		t := time.Now()
		if target.Time != nil {
			t = *target.Time
		}
		newName = db + "_restored_" + t.UTC().Format("20060102_1504")
	}
	if len(newName) > 63 {
		return usagef("--as %q: PostgreSQL names are at most 63 bytes", newName)
	}
	if settingsOf(c).OdooFilestore != "" && (!repo.ValidFilestoreDB(db) || !repo.ValidFilestoreDB(newName)) {
		return usagef("database names %q, %q: with --odoo-filestore they name filestore folders, and Odoo names are letters, digits, '_', '.' and '-'", db, newName)
	}
	if id := settingsOf(c).Backup; id != "" && !repo.ValidBackupID(id) {
		return usagef("--backup %q: backup ids look like 20261123T225700Z (walvault info lists them)", id)
	}
	tsMap, err := parseTablespaceMap(c)
	if err != nil {
		return err
	}
	parent := settingsOf(c).Scratch
	if parent != "" {
		if parent, err = filepath.Abs(parent); err != nil {
			return usagef("--scratch: %v", err)
		}
	}
	r, err := openRepo(c.Context, c, accessRead)
	if err != nil {
		return err
	}
	defer r.Close()
	binDir, _, err := scratch.FindBinDir(settingsOf(c).PGBinDir, r.Config.PGMajor)
	if err != nil {
		return err
	}
	account, err := scratch.ServerAccount(settingsOf(c).Owner)
	if err != nil {
		return configf("%v", err)
	}
	w := c.App.Writer
	prog, log, err := startProgress(c, log)
	if err != nil {
		return err
	}
	defer prog.Close()
	info := odoo.RestoredCopy{Database: db, Target: describeTarget(target)}
	// The copy is on a live server: the same steps as restore's, in the
	// same order (steps.Plan): marked, neutralized and anonymised before
	// the minutes a filestore can take (a failure of those drops the copy;
	// of the filestore, keeps the neutralized copy).
	plan := steps.Plan{Mark: &info}
	if err := planSteps(c, r, &plan, newName); err != nil {
		return err
	}
	stepList := plan.Steps(w)
	opts := dbcopy.Options{
		Database:      db,
		NewName:       newName,
		Into:          into,
		ScratchParent: parent,
		BinDir:        binDir,
		Major:         r.Config.PGMajor,
		Account:       account,
		DBUser:        settingsOf(c).DBUser,
		FallbackRoles: fallbackRoles(c),
		ServerEnv:     scratchServerEnv(c),
		Steps:         stepList,
		Timeout:       settingsOf(c).Timeout,
		Logger:        log,
		Out:           w,
		Progress:      prog,
		Recover: func(ctx context.Context, pgdata string) (string, error) {
			// Outside the scratch data directory, removed with the
			// scratch directory.
			rs, err := setupRecovery(ctx, c, recoveryRequest{
				pgdata: pgdata, dir: filepath.Join(filepath.Dir(pgdata), "recovery"), account: account, scratch: true,
			})
			if err != nil {
				return "", err
			}
			start := time.Now()
			prog.Start("restore", -1)
			res, err := pitr.Run(ctx, r, pitr.Options{
				PGData:         pgdata,
				BackupID:       settingsOf(c).Backup,
				Target:         target,
				TablespaceMap:  tsMap,
				Owner:          account.Name,
				RestoreCommand: rs.rec.RestoreCommand,
				EndCommand:     rs.rec.EndCommand,
				Workers:        settingsOf(c).Workers,
				Logger:         slog.New(drill.WithoutArchivingWarning(log.Handler())),
				Progress:       prog.Update,
			})
			prog.Done()
			if err != nil {
				return "", err
			}
			info.Backup = res.Backup.ID
			return fmt.Sprintf("restored backup %s (stop %s) into the scratch directory: %s in %s; recovering to %s",
				res.Backup.ID, res.Backup.StopTime.UTC().Format(time.RFC3339), units.Bytes(res.Bytes), time.Since(start).Round(time.Millisecond), describeTarget(target)), nil
		},
	}
	fmt.Fprintf(w, "restoring database %s as of %s into %s on the target server\n", db, describeTarget(target), newName)
	res, err := dbcopy.Run(c.Context, opts)
	prog.Close()
	if err != nil {
		return fmt.Errorf("restore --database %s: %w", db, err)
	}
	fmt.Fprintf(w, "database %s restored as %s: %d tables, %d rows, in %s\n", db, newName, res.Tables, res.Rows, res.Duration.Round(time.Millisecond))
	return nil
}
