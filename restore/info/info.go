// Package info is what "walvault info" reports about a repository: its
// backups, archived WAL per timeline, streamed partials, the window a
// restore can reach and the Odoo filestore. Report is the schema of
// "walvault info --json", a documented interface scripts and monitors read:
// fields are only ever added.
package info

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/storage"
)

// Backup is one complete backup.
type Backup struct {
	ID        string `json:"id"`
	StartTime string `json:"start_time"`
	// StopTime keeps its fraction: rounded down it could be a moment
	// before the backup's end.
	StopTime string `json:"stop_time"`
	// StopTimeSource says how stop_time was found: from the server's
	// backup history file, or estimated (see repo.BackupManifest).
	StopTimeSource string `json:"stop_time_source,omitempty"`
	StartLSN       string `json:"start_lsn"`
	StopLSN        string `json:"stop_lsn"`
	Timeline       uint32 `json:"timeline"`
	Bytes          int64  `json:"bytes"`
	StoredBytes    int64  `json:"stored_bytes"`
	// NewBytes and SharedBytes, for a block backup: the packs it stored,
	// and the stored blocks of older backups it uses.
	NewBytes    int64 `json:"new_bytes,omitempty"`
	SharedBytes int64 `json:"shared_bytes,omitempty"`
	// IncrementalFrom: PostgreSQL (17+) sent only the blocks changed since
	// that backup (the backup still restores on its own).
	IncrementalFrom string `json:"incremental_from,omitempty"`
	Label           string `json:"label,omitempty"`
	// Keep is set by backup --keep / walvault keep; Notes are the
	// annotations, oldest first.
	Keep  bool     `json:"keep"`
	Notes []string `json:"notes,omitempty"`
}

// Unreadable is a backup whose manifest could not be read (damaged,
// another key, a newer format): listed, and info exits with that error.
type Unreadable struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// WAL is a run of consecutive full segments of one timeline.
type WAL struct {
	Timeline uint32 `json:"timeline"`
	From     string `json:"from"`
	To       string `json:"to"`
	Segments int    `json:"segments"`
}

// Partial is the newest streamed partial segment of a timeline.
type Partial struct {
	Timeline   uint32 `json:"timeline"`
	Segment    string `json:"segment"`
	ValidBytes int64  `json:"valid_bytes"`
	Uploaded   string `json:"uploaded"`
}

// Window is the stretch a restore can reach.
type Window struct {
	From     string `json:"from"`
	To       string `json:"to"`
	FromLSN  string `json:"from_lsn"`
	ToLSN    string `json:"to_lsn"`
	Timeline uint32 `json:"timeline"`
}

// FilestoreDB is one Odoo database's filestore as its newest log record
// holds it.
type FilestoreDB struct {
	DB          string `json:"db"`
	Records     int    `json:"log_records"`
	Last        string `json:"last_record"`
	Files       int    `json:"files"`
	Bytes       int64  `json:"stored_bytes"`
	Unavailable int    `json:"files_not_stored,omitempty"`
}

// Filestore is the Odoo filestore part of the repository ("walvault
// filestore info --json" prints it alone).
type Filestore struct {
	Objects   int           `json:"objects"`
	Bytes     int64         `json:"stored_bytes"`
	Databases []FilestoreDB `json:"databases"`
}

// Report is "walvault info --json".
type Report struct {
	Repository string   `json:"repository"`
	System     string   `json:"system_identifier"`
	PGMajor    int      `json:"pg_major"`
	Encryption string   `json:"encryption"`
	Backups    []Backup `json:"backups"`
	// Unreadable backups are left out of Backups and of the window.
	Unreadable []Unreadable `json:"unreadable_backups,omitempty"`
	// StopTimeProblems name backup history files that could not date a
	// backup's end: that backup keeps the stop time its manifest records.
	StopTimeProblems []string `json:"stop_time_problems,omitempty"`
	WAL              []WAL    `json:"wal"`
	// Partials are the newest streamed partial segments (walvault stream):
	// WAL beyond the full segments above.
	Partials    []Partial `json:"stream_partials"`
	Recoverable *Window   `json:"recoverable"`
	// Heads are the newest signed WAL heads, one per timeline (format 2):
	// how far the archive is supposed to reach. MissingWAL names what the
	// heads say was archived and is gone (see catalog.MissingWAL);
	// IgnoredHeads those that do not verify.
	Heads        []Head   `json:"wal_heads,omitempty"`
	MissingWAL   []string `json:"missing_wal,omitempty"`
	IgnoredHeads []string `json:"ignored_wal_heads,omitempty"`
	// Filestore is the Odoo filestore (nil when the repository holds none).
	Filestore *Filestore `json:"filestore,omitempty"`
}

// Head is the newest signed WAL head of a timeline.
type Head struct {
	Timeline uint32 `json:"timeline"`
	Segment  string `json:"segment"`
}

// Load builds the report of r. One damaged manifest does not hide the rest
// at the moment the listing is needed most: the report lists what can be
// read and names what cannot, and the error returned with it is the first
// such problem (damage, exit 6, outranks a newer format, 4). A nil report
// comes with an error that stopped everything.
func Load(ctx context.Context, r *repo.Repository) (*Report, error) {
	cat, skipped, err := catalog.LoadReadable(ctx, r)
	if err != nil {
		return nil, err
	}
	marks, err := r.AllBackupMarks(ctx)
	if err != nil {
		return nil, err
	}
	out := &Report{Repository: r.String(), System: r.Config.SystemIdentifier, PGMajor: r.Config.PGMajor,
		Encryption: r.Config.Encryption, Backups: []Backup{}, WAL: []WAL{}, Partials: []Partial{}}
	for _, b := range cat.Backups {
		ib := Backup{ID: b.ID, StartTime: b.StartTime.UTC().Format(time.RFC3339), StopTime: b.StopTime.UTC().Format(time.RFC3339Nano),
			StopTimeSource: b.StopTimeSource, StartLSN: b.StartLSN.String(), StopLSN: b.StopLSN.String(), Timeline: b.Timeline,
			Bytes: b.Bytes, StoredBytes: b.StoredBytes, Label: b.Label, Keep: marks[b.ID].Keep}
		if bs := b.Blocks; bs != nil {
			ib.NewBytes, ib.SharedBytes, ib.IncrementalFrom = bs.NewBytes, bs.SharedBytes, bs.IncrementalFrom
		}
		for _, n := range marks[b.ID].Notes {
			if n.Note != "" {
				ib.Notes = append(ib.Notes, n.Note)
			}
		}
		out.Backups = append(out.Backups, ib)
	}
	// A manifest gone since the listing was removed by an expire running
	// now: not damage.
	var first error
	n := 0
	for _, u := range skipped {
		if storage.IsNotExist(u.Err) {
			continue
		}
		out.Unreadable = append(out.Unreadable, Unreadable{ID: u.ID, Error: u.Err.Error()})
		n++
		if first == nil || (errors.Is(u.Err, repo.ErrIntegrity) || errors.Is(u.Err, repo.ErrWrongKey)) && errors.Is(first, repo.ErrUnsupportedFormat) {
			first = u.Err
		}
	}
	for _, p := range cat.StopTimeProblems {
		out.StopTimeProblems = append(out.StopTimeProblems, p.Error())
	}
	for _, w := range cat.Ranges() {
		out.WAL = append(out.WAL, WAL{Timeline: w.Timeline, From: w.From, To: w.To, Segments: w.Segments})
	}
	for _, p := range cat.Partials {
		out.Partials = append(out.Partials, Partial{Timeline: p.File.Timeline, Segment: p.File.Name, ValidBytes: p.Valid,
			Uploaded: p.ModTime.UTC().Format(time.RFC3339Nano)})
	}
	if w, ok := cat.Recoverable(); ok {
		out.Recoverable = &Window{From: w.From.UTC().Format(time.RFC3339Nano), To: w.To.UTC().Format(time.RFC3339Nano),
			FromLSN: w.FromLSN.String(), ToLSN: w.ToLSN.String(), Timeline: w.Timeline}
	}
	tli := cat.LatestWALTimeline()
	from := cat.NeededFrom(tli, func(id string) bool { return marks[id].Keep })
	out.MissingWAL = cat.MissingWAL(tli, from)
	for t, h := range cat.Heads {
		out.Heads = append(out.Heads, Head{Timeline: t, Segment: h.File.Name})
	}
	sort.Slice(out.Heads, func(i, j int) bool { return out.Heads[i].Timeline < out.Heads[j].Timeline })
	for _, u := range cat.IgnoredHeads {
		out.IgnoredHeads = append(out.IgnoredHeads, fmt.Sprintf("%s: %v", u.Key, u.Err))
	}
	fi, err := LoadFilestore(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(out.MissingWAL) > 0 {
		return out, catalog.IncompleteError(out.MissingWAL)
	}
	if fi.Objects > 0 || len(fi.Databases) > 0 {
		out.Filestore = fi
	}
	if first != nil {
		return out, fmt.Errorf("%d backup(s) unreadable, left out of the listing and of the recoverable window (walvault verify checks the whole repository): %w", n, first)
	}
	return out, nil
}

// LoadFilestore folds each database's filestore log to its latest state.
func LoadFilestore(ctx context.Context, r *repo.Repository) (*Filestore, error) {
	objs, err := r.FilestoreObjects(ctx)
	if err != nil {
		return nil, err
	}
	out := &Filestore{Objects: len(objs), Databases: []FilestoreDB{}}
	for _, oi := range objs {
		out.Bytes += oi.Size
	}
	dbs, err := r.FilestoreDBs(ctx)
	if err != nil {
		return nil, err
	}
	for _, db := range dbs {
		recs, err := r.FilestoreLog(ctx, db)
		if err != nil {
			return nil, err
		}
		state := map[string]bool{}
		for _, rec := range recs {
			rec.Apply(state)
		}
		d := FilestoreDB{DB: db, Records: len(recs), Files: len(state)}
		if len(recs) > 0 {
			d.Last = recs[len(recs)-1].Time.UTC().Format(time.RFC3339)
		}
		for n := range state {
			if oi, ok := objs[n]; ok {
				d.Bytes += oi.Size
			} else {
				d.Unavailable++
			}
		}
		out.Databases = append(out.Databases, d)
	}
	sort.Slice(out.Databases, func(i, j int) bool { return out.Databases[i].DB < out.Databases[j].DB })
	return out, nil
}

// WriteText prints the report for a terminal.
func (out *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "repository %s (system %s, PostgreSQL %d, encryption %s)\n\n", out.Repository, out.System, out.PGMajor, out.Encryption)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tSTART (UTC)\tSTOP (UTC)\tSTART LSN\tSTOP LSN\tTL\tSIZE\tSTORED\tKEEP\tNOTES")
	for _, b := range out.Backups {
		keep := ""
		if b.Keep {
			keep = "keep"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", b.ID, b.StartTime, b.StopTime, b.StartLSN, b.StopLSN, b.Timeline,
			units.Bytes(b.Bytes), storedText(b), keep, strings.Join(b.Notes, "; "))
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
	for _, h := range out.Heads {
		fmt.Fprintf(w, "archived up to (signed head): timeline %d, %s\n", h.Timeline, h.Segment)
	}
	for _, m := range out.MissingWAL {
		fmt.Fprintf(w, "MISSING: %s (the signed heads say it was archived)\n", m)
	}
	for _, h := range out.IgnoredHeads {
		fmt.Fprintf(w, "ignored WAL head: %s\n", h)
	}
	if out.Filestore != nil {
		fmt.Fprintln(w)
		out.Filestore.WriteText(w)
	}
}

// WriteText prints the filestore part for a terminal.
func (fi *Filestore) WriteText(w io.Writer) {
	fmt.Fprintf(w, "filestore objects: %d (%s stored, shared by all databases)\n", fi.Objects, units.Bytes(fi.Bytes))
	if len(fi.Databases) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tFILES NOW\tSTORED\tLOG RECORDS\tLAST PASS (UTC)")
	for _, d := range fi.Databases {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", d.DB, d.Files, units.Bytes(d.Bytes), d.Records, d.Last)
	}
	tw.Flush()
}

// storedText is a backup's stored size, and for a block backup what it
// shares with older ones.
func storedText(b Backup) string {
	if b.SharedBytes == 0 {
		return units.Bytes(b.StoredBytes)
	}
	if b.IncrementalFrom != "" {
		return fmt.Sprintf("%s (+%s shared, incremental)", units.Bytes(b.StoredBytes), units.Bytes(b.SharedBytes))
	}
	return fmt.Sprintf("%s (+%s shared)", units.Bytes(b.StoredBytes), units.Bytes(b.SharedBytes))
}
