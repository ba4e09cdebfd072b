package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/restore/verify"
	"github.com/walvault/walvault/storage"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "read every object back and prove the repository restores (read-only)",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Usage: "objects read in parallel (default: 2 per CPU)"},
			&cli.StringFlag{Name: "backup", Usage: "verify only this backup and the WAL from its start to its stop"},
			&cli.BoolFlag{Name: "wal-only", Usage: "skip the backup chunks"},
			&cli.BoolFlag{Name: "backups-only", Usage: "skip the WAL objects"},
			&cli.StringFlag{Name: "expect-wal-at-least", Usage: "refuse (exit 6) unless the archive reaches this WAL segment (all of it) or LSN on the timeline a restore to the latest point follows: your own record of how far archiving went"},
		}),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			if settingsOf(c).WALOnly && settingsOf(c).BackupsOnly {
				return usagef("--wal-only and --backups-only exclude each other")
			}
			id := settingsOf(c).Backup
			if id != "" && !repo.ValidBackupID(id) {
				return usagef("--backup %q: backup ids look like 20261123T225700Z", id)
			}
			if settingsOf(c).Workers < 0 {
				return usagef("--workers %d: use a positive number", settingsOf(c).Workers)
			}
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			var expect pgwal.LSN
			if s := settingsOf(c).ExpectWALAtLeast; s != "" {
				if expect, err = catalog.ParseWALPosition(s, r.Config.WALSegmentSize); err != nil {
					return usagef("--expect-wal-at-least %v", err)
				}
			}
			p := newVerifyProgress(c.App.ErrWriter, log)
			rep, err := verify.Run(c.Context, r, verify.Options{
				Workers:     settingsOf(c).Workers,
				BackupID:    id,
				WALOnly:     settingsOf(c).WALOnly,
				BackupsOnly: settingsOf(c).BackupsOnly,
				Progress:    p.update,

				ExpectWALAtLeast: expect,
			})
			p.finish()
			if err != nil {
				if id != "" && storage.IsNotExist(err) {
					return usagef("--backup %s: no such backup in %s", id, r)
				}
				return err
			}
			if settingsOf(c).JSON {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printVerifyReport(c.App.Writer, r.String(), rep)
			}
			if !rep.OK {
				if onlyNewerFormat(rep) {
					// Not damage: this walvault is too old to judge.
					return fmt.Errorf("verify: %w: %d object(s) newer than this walvault reads; upgrade walvault", repo.ErrUnsupportedFormat, len(rep.Problems))
				}
				return fmt.Errorf("verify: %w: %d problem(s); see the report", repo.ErrIntegrity, len(rep.Problems))
			}
			return nil
		},
	}
}

// onlyNewerFormat reports whether every problem is an object written by a
// newer walvault (and there is no gap), which is exit 4, not damage.
func onlyNewerFormat(rep *verify.Report) bool {
	if len(rep.Problems) == 0 || len(rep.Gaps) != 0 {
		return false
	}
	for _, p := range rep.Problems {
		if p.Kind != verify.KindUnsupported {
			return false
		}
	}
	return true
}

func printVerifyReport(w io.Writer, store string, rep *verify.Report) {
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM %s: %s: %s\n", p.Key, p.Kind, p.Error)
	}
	for _, g := range rep.Gaps {
		fmt.Fprintf(w, "GAP %s\n", g.Message)
	}
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "WARNING %s\n", s)
	}
	status := "OK"
	if !rep.OK {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s: %s: %d objects checked (%s), %d problems, %d gaps, %d warnings\n",
		store, status, rep.Objects, units.Bytes(rep.Bytes), len(rep.Problems), len(rep.Gaps), len(rep.Warnings))
	if rep.Guarantees != "" {
		fmt.Fprintf(w, "repository %s\n", rep.Guarantees)
	}
	if rep.Recoverable == nil {
		fmt.Fprintln(w, "recoverable: nothing (no usable backup)")
	} else {
		fmt.Fprintf(w, "recoverable: %s (%s) to %s (%s) on timeline %d\n", rep.Recoverable.From, rep.Recoverable.FromLSN,
			rep.Recoverable.To, rep.Recoverable.ToLSN, rep.Recoverable.Timeline)
	}
}

// verifyProgress shows progress: a line rewritten in place on a terminal,
// a log line every 30 seconds otherwise.
type verifyProgress struct {
	w        io.Writer
	log      *slog.Logger
	terminal bool
	interval time.Duration

	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newVerifyProgress(w io.Writer, log *slog.Logger) *verifyProgress {
	p := &verifyProgress{w: w, log: log, terminal: isTerminal(w), interval: 30 * time.Second}
	if p.terminal {
		p.interval = 200 * time.Millisecond
	}
	p.last = time.Now()
	return p
}

func (p *verifyProgress) update(done, total, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < p.interval && done != total {
		return
	}
	p.last = now
	if p.terminal {
		fmt.Fprintf(p.w, "\rverify: %d/%d objects, %s   ", done, total, units.Bytes(bytes))
		p.shown = true
		return
	}
	if done != total {
		p.log.Info("verify progress", "objects", done, "total", total, "bytes", bytes)
	}
}

func (p *verifyProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
