package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/restore/drill"
	"github.com/walvault/walvault/restore/pitr"
)

func drillCommand() *cli.Command {
	return &cli.Command{
		Name:  "drill",
		Usage: "rehearse a restore: recover into a scratch directory, start PostgreSQL, run checks, measure RTO and RPO, clean up",
		Flags: flags(commonFlags(), repoFlags(), progressFlags(), odooFlags(), []cli.Flag{
			&cli.StringFlag{Name: "target-time", Usage: "recover to this moment (default: the end of the archived WAL)"},
			&cli.BoolFlag{Name: "random-point", Usage: "recover to a random moment of the recoverable window, before its newest archived commit (printed, to replay with --target-time)"},
			&cli.Uint64Flag{Name: "seed", Hidden: true, Usage: "seed of --random-point (default: the clock)"},
			&cli.StringFlag{Name: "backup", Usage: "restore this backup (default: the one restore would choose)"},
			&cli.StringFlag{Name: "checks", EnvVars: env("checks"), Usage: "file of custom SQL checks, each after a line '-- check: NAME'"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON object"},
			&cli.StringFlag{Name: "junit", Usage: "also write the report as JUnit XML to this file (CI test reports)"},
			&cli.StringFlag{Name: "scratch", EnvVars: env("scratch"), Usage: "make the scratch directory inside this directory (default: $TMPDIR or /tmp)"},
			&cli.BoolFlag{Name: "keep-scratch", Usage: "keep the scratch directory (the server is stopped)"},
			&cli.BoolFlag{Name: "keep-failed", EnvVars: env("keep-failed"), Usage: "keep the scratch directory when the drill fails"},
			&cli.DurationFlag{Name: "timeout", EnvVars: env("timeout"), Value: time.Hour, Usage: "how long to wait for recovery to reach the target and promote"},
			&cli.DurationFlag{Name: "check-timeout", EnvVars: env("check-timeout"), Value: 2 * time.Hour, Usage: "how long each check (pg_amcheck, a SQL check) may run"},
			&cli.StringFlag{Name: "pg-bindir", EnvVars: env("pg-bindir"), Usage: "directory of the PostgreSQL server programs (default: /usr/lib/postgresql/<version>/bin, else PATH)"},
			&cli.StringFlag{Name: "owner", EnvVars: env("owner"), Value: "postgres", Usage: "when run as root: run PostgreSQL as this user, who gets the files"},
			dbRoleFlag(),
			&cli.StringSliceFlag{Name: "pg-option", Usage: "NAME=VALUE: a server setting for the drill (repeatable), e.g. shared_buffers=256MB"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Usage: "parallel downloads (default: 2 per CPU)"},
			&cli.IntFlag{Name: "filestore-sample", EnvVars: env("filestore-sample"), Value: 20, Usage: "Odoo: of the filestore files a database references (all checked to be in the repository), download and verify N at random (0: none, -1: all)"},
		}),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			prog, log, err := startProgress(c, log)
			if err != nil {
				return err
			}
			defer prog.Close()
			opts := drill.Options{
				BackupID:        settingsOf(c).Backup,
				Keep:            settingsOf(c).KeepScratch,
				KeepFailed:      settingsOf(c).KeepFailed,
				Timeout:         settingsOf(c).Timeout,
				CheckTimeout:    settingsOf(c).CheckTimeout,
				OSUser:          settingsOf(c).Owner,
				DBUser:          settingsOf(c).DBUser,
				FallbackRoles:   fallbackRoles(c),
				Workers:         settingsOf(c).Workers,
				FilestoreSample: settingsOf(c).FilestoreSample,
				Logger:          log,
			}
			if s := settingsOf(c).TargetTime; s != "" {
				if settingsOf(c).RandomPoint {
					return usagef("give --target-time or --random-point, not both")
				}
				t, err := pitr.ParseTargetTime(s)
				if err != nil {
					return usagef("--target-time: %v", err)
				}
				opts.Target = &t
			}
			if settingsOf(c).RandomPoint {
				opts.RandomPoint = true
				opts.Seed = uint64(time.Now().UnixNano())
				if c.IsSet("seed") {
					opts.Seed = settingsOf(c).Seed
				}
			}
			if id := opts.BackupID; id != "" && !repo.ValidBackupID(id) {
				return usagef("--backup %q: backup ids look like 20261123T225700Z (walvault info lists them)", id)
			}
			if opts.Timeout <= 0 || opts.CheckTimeout <= 0 {
				return usagef("--timeout and --check-timeout must be positive")
			}
			for _, o := range settingsOf(c).PGOption {
				name, _, ok := strings.Cut(o, "=")
				if !ok || name == "" || strings.ContainsAny(o, "\n\r\x00") {
					return usagef("--pg-option %q: use NAME=VALUE", o)
				}
				opts.Settings = append(opts.Settings, o)
			}
			if p := settingsOf(c).Checks; p != "" {
				f, err := os.Open(p)
				if err != nil {
					return configf("--checks: %v", err)
				}
				opts.Checks, err = drill.ParseChecks(f)
				f.Close()
				if err != nil {
					return usagef("--checks %s: %v", p, err)
				}
			}
			if dir := settingsOf(c).Scratch; dir != "" {
				if opts.ScratchParent, err = filepath.Abs(dir); err != nil {
					return usagef("--scratch: %v", err)
				}
			}
			junit := settingsOf(c).JUnit
			if junit != "" {
				// Fail now, not after an hour of restore, when the report
				// cannot be written.
				f, err := os.CreateTemp(filepath.Dir(junit), ".walvault-drill-*.xml")
				if err != nil {
					return configf("--junit %s: cannot write there: %v", junit, err)
				}
				f.Close()
				os.Remove(f.Name())
			}
			started := time.Now()
			// From here on a failure still produces a report, so that a CI
			// job shows why the drill did not run.
			setupFailed := func(err error) error {
				rep := &drill.Report{Started: started, Target: "latest"}
				if opts.Target != nil {
					rep.Target = opts.Target.UTC().Format(time.RFC3339Nano)
				}
				rep.Add("drill", drill.Fail, time.Since(started), err.Error())
				rep.Seconds = time.Since(started).Seconds()
				if werr := writeDrillReport(c, rep, junit); werr != nil {
					fmt.Fprintf(c.App.ErrWriter, "walvault drill: %v\n", werr)
				}
				return err
			}

			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return setupFailed(err)
			}
			defer r.Close()
			opts.BinDir, opts.ServerVersion, err = drill.FindBinDir(settingsOf(c).PGBinDir, r.Config.PGMajor)
			if err != nil {
				return setupFailed(err)
			}
			opts.Recovery = func(d drill.Dirs) (drill.Recovery, error) {
				return drillRecovery(c, d)
			}
			if opts.RandomPoint {
				fmt.Fprintf(c.App.ErrWriter, "walvault drill: random point, seed %d (the chosen moment is printed in the report; replay it with --target-time)\n", opts.Seed)
			}
			if prog != nil {
				opts.Progress = prog
			}
			rep, err := drill.Run(c.Context, r, opts)
			prog.Close()
			if rep == nil && err != nil {
				return setupFailed(fmt.Errorf("drill: %w", err))
			}
			if rep != nil {
				if werr := writeDrillReport(c, rep, junit); werr != nil {
					if err == nil {
						return werr
					}
					fmt.Fprintf(c.App.ErrWriter, "walvault drill: %v\n", werr)
				}
			}
			if err != nil {
				return fmt.Errorf("drill: %w", err)
			}
			return nil
		},
	}
}

// drillRecovery sets up restore_command as walvault restore does, with the
// recovery directory in the scratch directory (outside its data directory)
// and this run's S3 credentials in the server's environment.
func drillRecovery(c *cli.Context, d drill.Dirs) (drill.Recovery, error) {
	rs, err := setupRecovery(c.Context, c, recoveryRequest{
		pgdata: d.PGData, dir: filepath.Join(d.Scratch, "recovery"), account: d.Account, scratch: true,
	})
	if err != nil {
		return drill.Recovery{}, err
	}
	return drill.Recovery{RestoreCommand: rs.rec.RestoreCommand, EndCommand: rs.rec.EndCommand, Env: rs.env, Dir: rs.rec.Dir}, nil
}

// writeDrillReport prints the report (text or JSON) and writes the JUnit
// file.
func writeDrillReport(c *cli.Context, rep *drill.Report, junit string) error {
	var err error
	if settingsOf(c).JSON {
		err = json.NewEncoder(c.App.Writer).Encode(rep)
	} else {
		err = rep.WriteText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	if junit == "" {
		return nil
	}
	tmp := junit + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	if err := drill.WriteJUnit(f, rep); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("--junit: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--junit: %w", err)
	}
	if err := os.Rename(tmp, junit); err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	return nil
}
