package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/check"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the live setup end to end (PostgreSQL settings, repository, keys, WAL and backup freshness); Nagios exit codes",
		Flags: flags(commonFlags(), repoFlags(), pgFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.StringFlag{Name: "slot", EnvVars: env("slot"), Usage: "physical replication slot of walvault stream, checked to exist and be active (unchecked unless set)"},
			&cli.StringFlag{Name: "max-wal-age", EnvVars: env("max-wal-age"), Value: "10m", Usage: "CRITICAL when finished segments wait and nothing reached the repository for this long"},
			&cli.StringFlag{Name: "max-backup-age", EnvVars: env("max-backup-age"), Value: "8d", Usage: "WARNING when the newest backup started longer ago (e.g. 36h, 8d)"},
			&cli.BoolFlag{Name: "archive-test", Usage: "switch WAL (pg_switch_wal) and wait for the finished segment to reach the repository"},
			&cli.DurationFlag{Name: "archive-timeout", EnvVars: env("archive-timeout"), Value: time.Minute, Usage: "how long --archive-test waits"},
		}),
		Description: `Exit status follows the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN (the worst of the checks; CRITICAL > UNKNOWN > WARNING). Problems
found are results, not errors: every non-OK check says what to change.`,
		Action: func(c *cli.Context) error {
			maxWAL, err := parseAge(settingsOf(c).MaxWALAge)
			if err != nil {
				return usagef("--max-wal-age: %v", err)
			}
			maxBackup, err := parseAge(settingsOf(c).MaxBackupAge)
			if err != nil {
				return usagef("--max-backup-age: %v", err)
			}
			if settingsOf(c).ArchiveTimeout <= 0 {
				return usagef("--archive-timeout %s: use a positive duration such as 60s", settingsOf(c).ArchiveTimeout)
			}
			opts := check.Options{
				ConnString:     settingsOf(c).PGURL,
				Recipients:     settingsOf(c).AgeRecipients,
				RecipientsFile: settingsOf(c).AgeRecipientsFile,
				IdentityFile:   settingsOf(c).AgeIdentityFile,
				WriterKeyFile:  settingsOf(c).WriterKeyFile,
				AllowUnsigned:  settingsOf(c).AllowUnsignedRepository,
				Slot:           settingsOf(c).Slot,
				MaxWALAge:      maxWAL,
				MaxBackupAge:   maxBackup,
				ArchiveTest:    settingsOf(c).ArchiveTest,
				ArchiveTimeout: settingsOf(c).ArchiveTimeout,
				Command:        "walvault",
			}
			if exe, err := os.Executable(); err == nil {
				opts.Command = exe
			}
			if p := settingsOf(c).Config; p != "" {
				opts.ConfigArgs = "--config " + p
			}
			opts.Store, opts.StoreErr = openStore(c.Context, c)
			rep := check.Run(c.Context, opts)
			if settingsOf(c).JSON {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := rep.WriteText(c.App.Writer); err != nil {
				return err
			}
			if rep.Status != check.OK {
				return &checkStatusError{status: rep.Status}
			}
			return nil
		},
	}
}

// checkStatusError carries check's Nagios status to exitCode.
type checkStatusError struct{ status check.Status }

func (e *checkStatusError) Error() string {
	return "check: " + e.status.String() + " (see the report above)"
}

// parseAge reads a duration that may also be given in days: "10m", "36h", "8d".
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || !(n > 0) || n > float64(math.MaxInt64)/float64(24*time.Hour) {
			return 0, fmt.Errorf("%q is not a duration (examples: 10m, 36h, 8d)", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration (examples: 10m, 36h, 8d)", s)
	}
	return d, nil
}
