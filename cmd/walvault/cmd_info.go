package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/storage"
)

type infoBackup struct {
	ID        string `json:"id"`
	StartTime string `json:"start_time"`
	StopTime  string `json:"stop_time"`
	// StopTimeSource says how stop_time was found: from the server's
	// backup history file, or estimated (see repo.BackupManifest).
	StopTimeSource string `json:"stop_time_source,omitempty"`
	StartLSN       string `json:"start_lsn"`
	StopLSN        string `json:"stop_lsn"`
	Timeline       uint32 `json:"timeline"`
	Bytes          int64  `json:"bytes"`
	StoredBytes    int64  `json:"stored_bytes"`
	Label          string `json:"label,omitempty"`
	// Keep is set by backup --keep / walvault keep; Notes are the
	// annotations, oldest first.
	Keep  bool     `json:"keep"`
	Notes []string `json:"notes,omitempty"`
}

// infoUnreadable is a backup whose manifest could not be read (damaged,
// another key, a newer format): listed, and info exits with that error.
type infoUnreadable struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

type infoWAL struct {
	Timeline uint32 `json:"timeline"`
	From     string `json:"from"`
	To       string `json:"to"`
	Segments int    `json:"segments"`
}

type infoPartial struct {
	Timeline   uint32 `json:"timeline"`
	Segment    string `json:"segment"`
	ValidBytes int64  `json:"valid_bytes"`
	Uploaded   string `json:"uploaded"`
}

type infoWindow struct {
	From     string `json:"from"`
	To       string `json:"to"`
	FromLSN  string `json:"from_lsn"`
	ToLSN    string `json:"to_lsn"`
	Timeline uint32 `json:"timeline"`
}

type infoOutput struct {
	Repository string       `json:"repository"`
	System     string       `json:"system_identifier"`
	PGMajor    int          `json:"pg_major"`
	Encryption string       `json:"encryption"`
	Backups    []infoBackup `json:"backups"`
	// Unreadable backups are left out of Backups and of the window.
	Unreadable []infoUnreadable `json:"unreadable_backups,omitempty"`
	// StopTimeProblems name backup history files that could not date a
	// backup's end: that backup keeps the stop time its manifest records.
	StopTimeProblems []string  `json:"stop_time_problems,omitempty"`
	WAL              []infoWAL `json:"wal"`
	// Partials are the newest streamed partial segments (walvault stream):
	// WAL beyond the full segments above.
	Partials    []infoPartial `json:"stream_partials"`
	Recoverable *infoWindow   `json:"recoverable"`
	// Filestore is the Odoo filestore (nil when the repository holds none).
	Filestore *filestoreInfo `json:"filestore,omitempty"`
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "list backups, archived WAL per timeline, and the window a restore can reach",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		}),
		Action: func(c *cli.Context) error {
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			// One damaged manifest must not hide the rest at the moment
			// the listing is needed most: list what can be read, name
			// what cannot, and exit with the first such error.
			cat, skipped, err := catalog.LoadReadable(c.Context, r)
			if err != nil {
				return err
			}
			marks, err := r.AllBackupMarks(c.Context)
			if err != nil {
				return err
			}
			out := infoOutput{Repository: r.Store.String(), System: r.Config.SystemIdentifier, PGMajor: r.Config.PGMajor,
				Encryption: r.Config.Encryption, Backups: []infoBackup{}, WAL: []infoWAL{}, Partials: []infoPartial{}}
			for _, b := range cat.Backups {
				// The stop time with its fraction: rounded down it could
				// print a moment before the backup's end.
				out.Backups = append(out.Backups, infoBackup{ID: b.ID, StartTime: b.StartTime.UTC().Format(time.RFC3339), StopTime: b.StopTime.UTC().Format(time.RFC3339Nano),
					StopTimeSource: b.StopTimeSource,
					StartLSN:       b.StartLSN.String(), StopLSN: b.StopLSN.String(), Timeline: b.Timeline, Bytes: b.Bytes, StoredBytes: b.StoredBytes, Label: b.Label})
				ib := &out.Backups[len(out.Backups)-1]
				ib.Keep = marks[b.ID].Keep
				for _, n := range marks[b.ID].Notes {
					if n.Note != "" {
						ib.Notes = append(ib.Notes, n.Note)
					}
				}
			}
			// A manifest gone since the listing was removed by an expire
			// running now: not damage. Of the rest, damage (exit 6)
			// outranks a newer format (4) in the exit code.
			var first error
			n := 0
			for _, u := range skipped {
				if storage.IsNotExist(u.Err) {
					continue
				}
				out.Unreadable = append(out.Unreadable, infoUnreadable{ID: u.ID, Error: u.Err.Error()})
				n++
				if first == nil || (errors.Is(u.Err, repo.ErrIntegrity) || errors.Is(u.Err, repo.ErrWrongKey)) && errors.Is(first, repo.ErrUnsupportedFormat) {
					first = u.Err
				}
			}
			for _, p := range cat.StopTimeProblems {
				out.StopTimeProblems = append(out.StopTimeProblems, p.Error())
			}
			var unreadable error
			if first != nil {
				unreadable = fmt.Errorf("%d backup(s) unreadable, left out of the listing and of the recoverable window (walvault verify checks the whole repository): %w", n, first)
			}
			for _, w := range cat.Ranges() {
				out.WAL = append(out.WAL, infoWAL{Timeline: w.Timeline, From: w.From, To: w.To, Segments: w.Segments})
			}
			for _, p := range cat.Partials {
				out.Partials = append(out.Partials, infoPartial{Timeline: p.File.Timeline, Segment: p.File.Name, ValidBytes: p.Valid,
					Uploaded: p.ModTime.UTC().Format(time.RFC3339Nano)})
			}
			if w, ok := cat.Recoverable(); ok {
				out.Recoverable = &infoWindow{From: w.From.UTC().Format(time.RFC3339Nano), To: w.To.UTC().Format(time.RFC3339Nano),
					FromLSN: w.FromLSN.String(), ToLSN: w.ToLSN.String(), Timeline: w.Timeline}
			}
			fi, err := loadFilestoreInfo(c.Context, r)
			if err != nil {
				return err
			}
			if fi.Objects > 0 || len(fi.Databases) > 0 {
				out.Filestore = fi
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
				return unreadable
			}
			w := c.App.Writer
			fmt.Fprintf(w, "repository %s (system %s, PostgreSQL %d, encryption %s)\n\n", out.Repository, out.System, out.PGMajor, out.Encryption)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BACKUP\tSTART (UTC)\tSTOP (UTC)\tSTART LSN\tSTOP LSN\tTL\tSIZE\tSTORED\tKEEP\tNOTES")
			for _, b := range out.Backups {
				keep := ""
				if b.Keep {
					keep = "keep"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", b.ID, b.StartTime, b.StopTime, b.StartLSN, b.StopLSN, b.Timeline,
					units.Bytes(b.Bytes), units.Bytes(b.StoredBytes), keep, strings.Join(b.Notes, "; "))
			}
			if len(out.Backups) == 0 && len(out.Unreadable) == 0 {
				fmt.Fprintln(tw, "(none)")
			}
			tw.Flush()
			for _, u := range out.Unreadable {
				fmt.Fprintf(w, "%s  UNREADABLE: %s\n", u.ID, u.Error)
			}
			for _, p := range out.StopTimeProblems {
				fmt.Fprintf(w, "warning: %s\n", p)
			}
			fmt.Fprintln(w)
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WAL TL\tFROM\tTO\tSEGMENTS")
			for _, r := range out.WAL {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\n", r.Timeline, r.From, r.To, r.Segments)
			}
			for _, p := range out.Partials {
				fmt.Fprintf(tw, "%d\t%s (streamed, %s)\t\t\n", p.Timeline, p.Segment, units.Bytes(p.ValidBytes))
			}
			tw.Flush()
			fmt.Fprintln(w)
			if out.Recoverable == nil {
				fmt.Fprintln(w, "recoverable: nothing yet (no complete backup)")
			} else {
				fmt.Fprintf(w, "recoverable: %s (%s) to %s (%s) on timeline %d\n", out.Recoverable.From, out.Recoverable.FromLSN, out.Recoverable.To, out.Recoverable.ToLSN, out.Recoverable.Timeline)
			}
			if out.Filestore != nil {
				fmt.Fprintln(w)
				printFilestoreInfo(w, out.Filestore)
			}
			return unreadable
		},
	}
}
