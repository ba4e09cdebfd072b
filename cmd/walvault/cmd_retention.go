package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/expire"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
)

func lockWaitFlag(def time.Duration) cli.Flag {
	return &cli.DurationFlag{Name: "lock-wait", EnvVars: env("lock-wait"), Value: def,
		Usage: "how long to wait while another command holds a conflicting repository lock"}
}

// changeOptions are who changes the repository (this process) and how
// long --lock-wait lets it wait for the lock.
func changeOptions(c *cli.Context, log *slog.Logger) repo.ChangeOptions {
	return repo.ChangeOptions{Actor: repo.CurrentActor(version), LockWait: settingsOf(c).LockWait, Logger: log}
}

func expireCommand() *cli.Command {
	return &cli.Command{
		Name:  "expire",
		Usage: "remove backups and WAL that the retention policy no longer needs (dry run unless --confirm)",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.IntFlag{Name: "retain-full", EnvVars: env("retain-full"), Usage: "keep the newest `N` backups"},
			&cli.Float64Flag{Name: "retain-days", EnvVars: env("retain-days"), Usage: "keep every moment of the last `D` days restorable (and no more: GDPR storage limitation)"},
			&cli.BoolFlag{Name: "confirm", Usage: "remove for real; without it, only print what would be removed"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.DurationFlag{Name: "filestore-margin", EnvVars: env("filestore-margin"), Value: expire.DefaultFilestoreMargin,
				Usage: "Odoo filestore: keep files present up to `D` before the oldest kept backup's start (clock differences between the hosts)"},
			lockWaitFlag(0),
		}),
		Description: `A backup is kept when any rule keeps it: the newest N (--retain-full), those
needed to restore any moment of the last D days (--retain-days), one marked with
'walvault keep', and every backup newer than a kept one. WAL is kept from the
start of the oldest kept backup on (every timeline), and from start to end of a
marked older backup. Objects S3 Object Lock still retains are left and listed.
Takes the repository's exclusive lock: no backup or other expire runs meanwhile.`,
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			pol := expire.Policy{RetainFull: settingsOf(c).RetainFull, FilestoreMargin: settingsOf(c).FilestoreMargin}
			if pol.FilestoreMargin < 0 {
				return usagef("--filestore-margin %s: give a duration of 0 or more", pol.FilestoreMargin)
			}
			if pol.RetainWindow, err = daysFlag("retain-days", settingsOf(c).RetainDays); err != nil {
				return err
			}
			if pol.RetainFull < 0 {
				return usagef("--retain-full %d: give a number of backups, 1 or more", pol.RetainFull)
			}
			if pol.RetainFull == 0 && pol.RetainWindow == 0 {
				return usagef("expire needs a policy: --retain-full N (keep the newest N backups) and/or --retain-days D (keep the last D days restorable)")
			}
			confirm := settingsOf(c).Confirm
			acc := accessRead
			if confirm {
				acc |= accessWrite // the lock and the audit record
			}
			r, err := openRepo(c.Context, c, acc)
			if err != nil {
				return err
			}
			defer r.Close()
			plan, err := expire.Run(c.Context, r, pol, expire.RunOptions{Confirm: confirm, Change: changeOptions(c, log)})
			switch {
			case errors.Is(err, expire.ErrPolicy):
				return usagef("%v", err)
			case err != nil && plan != nil && confirm:
				return fmt.Errorf("expire stopped part-way (a rerun finishes the job): %w", err)
			case err != nil:
				return fmt.Errorf("expire: %w", err)
			}
			for _, ig := range plan.Ignored {
				log.Warn("expire left out an object no trusted writer signed under its name (planted by someone who can write the repository): nothing was removed on its account and it stays; look at it, then delete it",
					"key", ig.Key, "reason", ig.Reason)
			}
			if settingsOf(c).JSON {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(plan)
			}
			printPlan(c.App.Writer, plan, confirm)
			return nil
		},
	}
}

func printPlan(w io.Writer, p *expire.Plan, confirmed bool) {
	var pol []string
	if p.Policy.RetainFull > 0 {
		pol = append(pol, fmt.Sprintf("keep the newest %d backups", p.Policy.RetainFull))
	}
	if p.Policy.RetainDays > 0 {
		pol = append(pol, fmt.Sprintf("keep the last %s days restorable", trimFloat(p.Policy.RetainDays)))
	}
	fmt.Fprintf(w, "policy: %s\n\n", strings.Join(pol, "; "))
	verb := "would remove"
	if confirmed {
		verb = "removed"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tSTART (UTC)\tSTOP (UTC)\tSTORED\tDECISION")
	for _, k := range p.Kept {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tkeep: %s\n", k.ID, k.Backup.StartTime.UTC().Format(time.RFC3339), k.Backup.StopTime.UTC().Format(time.RFC3339),
			units.Bytes(k.Backup.StoredBytes), strings.Join(k.Reasons, ", "))
	}
	for _, b := range p.Removed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.ID, b.Backup.StartTime.UTC().Format(time.RFC3339), b.Backup.StopTime.UTC().Format(time.RFC3339),
			units.Bytes(b.Bytes), verb)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(p.WAL) == 0 {
		fmt.Fprintln(w, "WAL: nothing to remove")
	}
	for _, r := range p.WAL {
		fmt.Fprintf(w, "WAL timeline %d: %s %s .. %s (%d files, %s)\n", r.Timeline, verb, r.First, r.Last, r.Files, units.Bytes(r.Bytes))
	}
	if p.WALFloor != "" {
		fmt.Fprintf(w, "WAL kept from %s on (start of the oldest kept backup), on every timeline\n", p.WALFloor)
	}
	if r := p.WALRecords; len(r.Heads)+len(r.Alternates) > 0 {
		fmt.Fprintf(w, "WAL records of the removed WAL: %s %d completeness heads (the newest of each timeline stays) and %d conflicting copies\n", verb, len(r.Heads), len(r.Alternates))
	}
	if n := len(p.Partials); n > 0 {
		fmt.Fprintf(w, "streamed partials: %s %d superseded\n", verb, n)
	}
	if n := len(p.Orphans); n > 0 {
		fmt.Fprintf(w, "interrupted backups: %s %d objects without a manifest\n", verb, n)
	}
	if fs := p.Filestore; fs != nil {
		fmt.Fprintf(w, "Odoo filestore: %s %d objects (%s) no moment from %s on references; %d kept\n",
			verb, len(fs.Objects), units.Bytes(fs.Bytes), fs.From.Format(time.RFC3339), fs.Kept)
		for _, c := range fs.Compact {
			fmt.Fprintf(w, "Odoo filestore log of %s: %d records through %s folded into one snapshot\n", c.DB, c.Records, c.Through.Format(time.RFC3339))
		}
	}
	for _, l := range p.Locked {
		fmt.Fprintf(w, "kept by S3 Object Lock until %s: %s\n", l.Until.UTC().Format(time.RFC3339), l.Key)
	}
	for _, ig := range p.Ignored {
		fmt.Fprintf(w, "left out (no trusted writer signed it: planted; look at it, then delete it): %s: %s\n", ig.Key, ig.Reason)
	}
	fmt.Fprintln(w)
	if p.Before != nil {
		fmt.Fprintf(w, "recoverable before: %s to %s\n", p.Before.From.Format(time.RFC3339), p.Before.To.Format(time.RFC3339))
	}
	if p.After != nil {
		fmt.Fprintf(w, "recoverable after:  %s to %s\n", p.After.From.Format(time.RFC3339), p.After.To.Format(time.RFC3339))
	} else {
		fmt.Fprintln(w, "recoverable after:  nothing (no usable backup)")
	}
	if p.Short && p.Promise != nil {
		fmt.Fprintf(w, "note: the repository does not reach back to %s, the start of the promised window (too young, or a WAL gap: run walvault verify)\n", p.Promise.UTC().Format(time.RFC3339))
	}
	switch {
	case p.Empty():
		fmt.Fprintln(w, "nothing to remove")
	case confirmed && len(p.Locked) > 0:
		fmt.Fprintf(w, "removed what retention allows; %d objects stay until their Object Lock retention ends (listed above): run expire again after that\n", len(p.Locked))
	case confirmed:
		fmt.Fprintf(w, "removed %s\n", units.Bytes(p.Bytes))
	default:
		fmt.Fprintf(w, "dry run: would remove %s; nothing was removed. Run again with --confirm to remove it.\n", units.Bytes(p.Bytes))
	}
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
}

func keepCommand() *cli.Command {
	return &cli.Command{
		Name:      "keep",
		Usage:     "mark a backup to keep whatever the retention policy says (or --release the mark)",
		ArgsUsage: "BACKUP-ID",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "release", Usage: "remove the keep mark: the backup follows the retention policy again"},
			&cli.StringFlag{Name: "note", Usage: "annotation stored with the mark (\"before the v17 upgrade\")"},
		}),
		Action: func(c *cli.Context) error {
			// Flags after the id ("keep ID --note X") are what people type;
			// the flag parser stops at the id, so read them here.
			releaseFlag, note := settingsOf(c).Release, settingsOf(c).Note
			args := c.Args().Slice()
			var rest []string
			for i := 0; i < len(args); i++ {
				switch a := args[i]; {
				case a == "--release" || a == "-release":
					releaseFlag = true
				case (a == "--note" || a == "-note") && i+1 < len(args):
					note = args[i+1]
					i++
				case strings.HasPrefix(a, "--note="):
					note = strings.TrimPrefix(a, "--note=")
				default:
					rest = append(rest, a)
				}
			}
			if len(rest) != 1 {
				return usagef("usage: walvault keep [--release] [--note TEXT] BACKUP-ID; 'walvault info' lists the ids")
			}
			return noteAction(c, "keep", rest[0], func(n *repo.BackupNote) {
				keep := !releaseFlag
				n.Keep = &keep
				n.Note = note
			})
		},
	}
}

func noteCommand() *cli.Command {
	return &cli.Command{
		Name:      "note",
		Usage:     "annotate a backup (shown by info)",
		ArgsUsage: "BACKUP-ID TEXT",
		Flags:     flags(commonFlags(), repoFlags()),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 || strings.TrimSpace(c.Args().Get(1)) == "" {
				return usagef("usage: walvault note BACKUP-ID TEXT")
			}
			return noteAction(c, "note", c.Args().First(), func(n *repo.BackupNote) { n.Note = c.Args().Get(1) })
		},
	}
}

func noteAction(c *cli.Context, command, id string, fill func(*repo.BackupNote)) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	if !repo.ValidBackupID(id) {
		return usagef("backup id %q: ids look like 20261123T225700Z; 'walvault info' lists them", id)
	}
	r, err := openRepo(c.Context, c, accessWrite)
	if err != nil {
		return err
	}
	defer r.Close()
	n := repo.BackupNote{Actor: repo.CurrentActor(version)}
	fill(&n)
	action, err := r.Annotate(c.Context, id, n, command, changeOptions(c, log))
	if errors.Is(err, repo.ErrNoSuchBackup) {
		return usagef("%v; 'walvault info' lists the backups", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, action)
	return nil
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "list the audit trail: every change made to the repository, by whom and when",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.StringFlag{Name: "since", Usage: "only records from this time on (RFC 3339, or a duration ago like 72h)"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array"},
		}),
		Action: func(c *cli.Context) error {
			var since time.Time
			if s := settingsOf(c).Since; s != "" {
				if d, err := time.ParseDuration(s); err == nil && d > 0 {
					since = time.Now().Add(-d)
				} else if t, err := time.Parse(time.RFC3339, s); err == nil {
					since = t
				} else {
					return usagef("--since %q: give an RFC 3339 time (2026-11-24T10:00:00Z) or a duration (72h)", s)
				}
			}
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			recs, err := r.AuditRecords(c.Context, since)
			if err != nil {
				return err
			}
			if settingsOf(c).JSON {
				if recs == nil {
					recs = []repo.AuditRecord{}
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(recs)
			}
			w := c.App.Writer
			for _, rec := range recs {
				fmt.Fprintf(w, "%s  %s@%s (pid %d, walvault %s)  %s: %s\n", rec.Time.UTC().Format(time.RFC3339), rec.User, rec.Host, rec.PID, rec.Version, rec.Command, rec.Action)
				for _, d := range rec.Details {
					fmt.Fprintf(w, "    %s\n", d)
				}
			}
			if len(recs) == 0 {
				fmt.Fprintln(w, "no audit records")
			}
			return nil
		},
	}
}

// daysFlag checks the value of --name, a number of days from 0 to 36500
// (fractions allowed), and returns it as a duration.
func daysFlag(name string, d float64) (time.Duration, error) {
	if d < 0 || math.IsNaN(d) || d > 36500 {
		return 0, usagef("--%s %v: give a number of days from 0 to 36500", name, d)
	}
	return time.Duration(d * float64(24*time.Hour)), nil
}
