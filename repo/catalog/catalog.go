package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// Catalog is a snapshot of what a repository holds. Its methods do no I/O
// and do not modify it; build one with Load, or by hand in tests. Do not
// change its fields while its methods run.
type Catalog struct {
	// Backups are the complete backups (those with a manifest).
	Backups []*repo.BackupManifest
	// WAL lists every WAL file the repository holds, of every kind.
	WAL []repo.WALObject
	// Timelines maps a timeline to the parsed content of its history file:
	// the timelines it descends from and where each one switched. Timeline
	// 1 has none; a timeline whose history file is missing is treated as
	// having no ancestors.
	Timelines map[uint32][]pgwal.HistoryEntry
	// SegSize is the WAL segment size in bytes.
	SegSize int64
	// Partials are the streamed partial segments (the newest WAL of a
	// streaming receiver); only the largest of each segment is kept.
	Partials []repo.StreamPartial
	// StopTimeProblems are the backup history files Load found but could
	// not use to date a backup's end (see CorrectStopTimes).
	StopTimeProblems []StopTimeProblem
	// KeepsHeads is set for a repository that records completeness heads
	// (format 2); Heads are then the newest authentic head of each
	// timeline and IgnoredHeads the heads passed over (repo.WALHeads).
	// See MissingWAL.
	KeepsHeads   bool
	Heads        map[uint32]repo.WALHead
	IgnoredHeads []repo.UnknownObject
}

// Load reads the catalog of r: every backup manifest, the WAL listing and
// the history files (which are fetched and decrypted, so r needs an
// identity when the repository holds any). Backups whose manifest does not
// date their end from the server's backup history file get it from that
// file when the repository holds it (CorrectStopTimes).
func Load(ctx context.Context, r *repo.Repository) (*Catalog, error) {
	backups, err := r.Backups(ctx)
	if err != nil {
		return nil, err
	}
	return load(ctx, r, backups)
}

// Unreadable is a backup whose manifest LoadReadable left out.
type Unreadable struct {
	ID  string
	Err error
}

// LoadReadable is Load for restore, where one damaged backup must not make
// the others unusable: a backup whose manifest cannot be read (damaged,
// encrypted to another key, of a newer format, or gone since the listing)
// is left out of the catalog and returned in skipped. When no manifest at
// all can be read, it fails with the first such error, as Load does (a
// wrong identity is not "no backups"). Errors that say nothing about one
// manifest (no identity, storage unreachable) fail it too.
func LoadReadable(ctx context.Context, r *repo.Repository) (c *Catalog, skipped []Unreadable, err error) {
	ids, err := r.BackupIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	var backups []*repo.BackupManifest
	for _, id := range ids {
		m, err := r.BackupManifest(ctx, id)
		switch {
		case err == nil:
			backups = append(backups, m)
		case errors.Is(err, repo.ErrIntegrity), errors.Is(err, repo.ErrWrongKey),
			errors.Is(err, repo.ErrUnsupportedFormat), storage.IsNotExist(err):
			skipped = append(skipped, Unreadable{ID: id, Err: err})
		default:
			return nil, nil, err
		}
	}
	if len(backups) == 0 && len(skipped) > 0 {
		return nil, nil, skipped[0].Err
	}
	sort.Slice(backups, func(i, j int) bool { return backups[i].StartLSN < backups[j].StartLSN })
	c, err = load(ctx, r, backups)
	if err != nil {
		return nil, nil, err
	}
	return c, skipped, nil
}

func load(ctx context.Context, r *repo.Repository, backups []*repo.BackupManifest) (*Catalog, error) {
	segSize := r.Config.WALSegmentSize
	if !pgwal.ValidSegmentSize(segSize) {
		return nil, fmt.Errorf("%w: repository records WAL segment size %d, which PostgreSQL does not allow", repo.ErrIntegrity, segSize)
	}
	// Heads before the WAL: a segment is stored before its head, so
	// every head listed here has its segment in the listing below, even
	// while wal-push runs.
	heads, ignored, err := r.WALHeads(ctx)
	if err != nil {
		return nil, err
	}
	wal, _, err := r.ListWAL(ctx)
	if err != nil {
		return nil, err
	}
	timelines := make(map[uint32][]pgwal.HistoryEntry)
	for _, w := range wal {
		if w.File.Kind != pgwal.KindHistory {
			continue
		}
		data, _, err := r.Get(ctx, w.Key)
		if err != nil {
			return nil, fmt.Errorf("read timeline history: %w", err)
		}
		entries, err := pgwal.ParseHistory(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", repo.ErrIntegrity, w.Key, err)
		}
		timelines[w.File.Timeline] = entries
	}
	problems, err := CorrectStopTimes(ctx, r, backups, wal, segSize)
	if err != nil {
		return nil, err
	}
	all, _, err := r.AllStreamPartials(ctx)
	if err != nil {
		return nil, err
	}
	var partials []repo.StreamPartial
	for i, p := range all {
		// Listed by growing offset per segment: keep the last of each.
		if i+1 < len(all) && all[i+1].File.Name == p.File.Name {
			continue
		}
		partials = append(partials, p)
	}
	return &Catalog{Backups: backups, WAL: wal, Timelines: timelines, SegSize: segSize, Partials: partials, StopTimeProblems: problems,
		KeepsHeads: r.KeepsHeads(), Heads: heads, IgnoredHeads: ignored}, nil
}

// partial returns the largest streamed partial of segment seg on tli.
func (c *Catalog) partial(tli uint32, seg uint64) (repo.StreamPartial, bool) {
	for _, p := range c.Partials {
		if p.File.Timeline == tli && p.File.SegNo(c.SegSize) == seg {
			return p, true
		}
	}
	return repo.StreamPartial{}, false
}

// WALRange is a run of consecutive full WAL segments on one timeline.
type WALRange struct {
	Timeline uint32 `json:"timeline"`
	// From and To name the first and the last segment of the run.
	From     string `json:"from"`
	To       string `json:"to"`
	Segments int    `json:"segments"`
	// FromLSN is the start of From, ToLSN the end of To (the start of the
	// segment after it).
	FromLSN pgwal.LSN `json:"from_lsn"`
	ToLSN   pgwal.LSN `json:"to_lsn"`
}

// Ranges returns the runs of consecutive full segments of every timeline,
// ordered by timeline and position. A missing segment ends a run; partial
// segments, history and backup history files are not counted.
func (c *Catalog) Ranges() []WALRange {
	if !pgwal.ValidSegmentSize(c.SegSize) {
		return nil
	}
	keys := make([]segKey, 0, len(c.WAL))
	for k := range c.segments() {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].tli != keys[j].tli {
			return keys[i].tli < keys[j].tli
		}
		return keys[i].segno < keys[j].segno
	})
	var out []WALRange
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j].tli == keys[i].tli && keys[j].segno == keys[j-1].segno+1 {
			j++
		}
		first, last := keys[i], keys[j-1]
		out = append(out, WALRange{
			Timeline: first.tli,
			From:     pgwal.SegmentName(first.tli, first.segno, c.SegSize),
			To:       pgwal.SegmentName(last.tli, last.segno, c.SegSize),
			Segments: j - i,
			FromLSN:  pgwal.SegmentStart(first.segno, c.SegSize),
			ToLSN:    pgwal.SegmentStart(last.segno+1, c.SegSize),
		})
		i = j
	}
	return out
}

// Window is a stretch of time and WAL a restore can stop anywhere in.
type Window struct {
	// From and FromLSN are the end of the backup the window starts from: the
	// earliest point at which the restored cluster is consistent.
	From    time.Time
	FromLSN pgwal.LSN
	// To is the upload time of the last segment of contiguous WAL (an upper
	// bound of its last commit, never before From); ToLSN is that segment's
	// end.
	To    time.Time
	ToLSN pgwal.LSN
	// Timeline is the timeline of that last segment.
	Timeline uint32
}

// String describes w for messages: both ends in RFC 3339 and as LSNs.
func (w Window) String() string {
	return fmt.Sprintf("from %s (LSN %s) to %s (LSN %s, timeline %d)",
		w.From.UTC().Format(time.RFC3339Nano), w.FromLSN,
		w.To.UTC().Format(time.RFC3339Nano), w.ToLSN, w.Timeline)
}

// Recoverable returns the window that starts at the end of the oldest usable
// backup (the oldest by start time whose WAL from StartLSN to StopLSN is all
// present) and ends where the contiguous WAL that follows it ends, following
// timeline switches to the latest timeline on whose history that backup
// lies (see Reach). ok is false when no backup is usable (or none exists).
//
// A gap in the WAL after that backup ends the window even when a newer
// backup could recover past the gap: ask Reach of each backup for that.
func (c *Catalog) Recoverable() (w Window, ok bool) {
	bs := append([]*repo.BackupManifest(nil), c.Backups...)
	sort.SliceStable(bs, func(i, j int) bool {
		if !bs[i].StartTime.Equal(bs[j].StartTime) {
			return bs[i].StartTime.Before(bs[j].StartTime)
		}
		return bs[i].StartLSN < bs[j].StartLSN
	})
	for _, b := range bs {
		if w, ok := c.Reach(b); ok {
			return w, true
		}
	}
	return Window{}, false
}

// Reach reports whether all WAL from b's StartLSN to its StopLSN is present
// (ok), and how far contiguous WAL reaches from b along the history of the
// latest timeline b lies on (LatestTimeline). When ok is false the window
// still tells how far the WAL reaches; it ends before b.StopLSN.
func (c *Catalog) Reach(b *repo.BackupManifest) (Window, bool) {
	return c.ReachTimeline(b, c.LatestTimeline(b))
}

// ReachTimeline is Reach along the history of timeline tli. ok is false as
// well when b does not lie on that history (see OnHistory).
func (c *Catalog) ReachTimeline(b *repo.BackupManifest, tli uint32) (Window, bool) {
	w := Window{From: b.StopTime, FromLSN: b.StopLSN, To: b.StopTime, ToLSN: b.StartLSN, Timeline: b.Timeline}
	if !pgwal.ValidSegmentSize(c.SegSize) || !c.OnHistory(b, tli) {
		return w, false
	}
	hist := c.history(tli)
	segs := c.segments()
	seg := pgwal.SegNoOf(b.StartLSN, c.SegSize)
	w.ToLSN = pgwal.SegmentStart(seg, c.SegSize)
	var last *repo.WALObject
	for {
		t := timelineOfSegment(hist, seg, c.SegSize)
		o, found := segs[segKey{t, seg}]
		if !found {
			break
		}
		last = &o
		seg++
	}
	if last == nil {
		return w, false
	}
	w.ToLSN = pgwal.SegmentStart(seg, c.SegSize)
	w.Timeline = last.File.Timeline
	if last.ModTime.After(w.To) {
		w.To = last.ModTime
	}
	// A streaming receiver's newest bytes: the partial of the segment
	// right after the contiguous run.
	if p, ok := c.partial(timelineOfSegment(hist, seg, c.SegSize), seg); ok {
		w.ToLSN = pgwal.SegmentStart(seg, c.SegSize) + pgwal.LSN(p.Valid)
		w.Timeline = p.File.Timeline
		if p.ModTime.After(w.To) {
			w.To = p.ModTime
		}
	}
	return w, w.ToLSN >= b.StopLSN
}

// OnHistory reports whether backup b lies on the history of timeline tli:
// b's timeline is tli or one of its ancestors, and tli's history did not
// leave b's timeline before b ended. PostgreSQL refuses to recover such a
// backup towards tli ("requested timeline is not a child of this server's
// history").
func (c *Catalog) OnHistory(b *repo.BackupManifest, tli uint32) bool {
	hist := c.history(tli)
	end := b.StartLSN
	if b.StopLSN > b.StartLSN {
		end = b.StopLSN - 1
	}
	return timelineOf(hist, b.StartLSN) == b.Timeline && timelineOf(hist, end) == b.Timeline
}

// LatestTimeline returns the highest-numbered timeline whose history b lies
// on: the one recovery from b ends on when it follows every switch.
func (c *Catalog) LatestTimeline(b *repo.BackupManifest) uint32 {
	best := b.Timeline
	for tli := range c.Timelines {
		if tli > best && c.OnHistory(b, tli) {
			best = tli
		}
	}
	return best
}

// NewestTimeline returns the timeline PostgreSQL picks for
// recovery_target_timeline = 'latest' when recovery starts on timeline
// from: it probes for the history files of from+1, from+2, … and takes the
// last one found before the first missing one (findNewestTimeLine). That
// timeline need not be one whose history a given backup lies on; when it is
// not, PostgreSQL refuses to start.
func (c *Catalog) NewestTimeline(from uint32) uint32 {
	newest := from
	for probe := from + 1; probe != 0; probe++ {
		if _, ok := c.Timelines[probe]; !ok {
			break
		}
		newest = probe
	}
	return newest
}

type segKey struct {
	tli   uint32
	segno uint64
}

// segments indexes the full segments by timeline and number.
func (c *Catalog) segments() map[segKey]repo.WALObject {
	m := make(map[segKey]repo.WALObject, len(c.WAL))
	for _, w := range c.WAL {
		if w.File.Kind == pgwal.KindSegment {
			m[segKey{w.File.Timeline, w.File.SegNo(c.SegSize)}] = w
		}
	}
	return m
}

// span is one timeline's stretch of a history: [begin, end), or from begin
// on for the last one.
type span struct {
	tli        uint32
	begin, end pgwal.LSN
	last       bool
}

// history returns the spans of timeline tli's history, oldest first, as
// PostgreSQL's readTimeLineHistory builds them. Entries that do not precede
// tli (a damaged file) end the list.
func (c *Catalog) history(tli uint32) []span {
	var out []span
	var begin pgwal.LSN
	for _, e := range c.Timelines[tli] {
		if e.Timeline >= tli || e.SwitchLSN < begin {
			break
		}
		out = append(out, span{tli: e.Timeline, begin: begin, end: e.SwitchLSN})
		begin = e.SwitchLSN
	}
	return append(out, span{tli: tli, begin: begin, last: true})
}

// timelineOf returns the timeline that holds lsn in hist
// (tliOfPointInHistory); a switch point belongs to the child timeline.
func timelineOf(hist []span, lsn pgwal.LSN) uint32 {
	for _, s := range hist {
		if lsn >= s.begin && (s.last || lsn < s.end) {
			return s.tli
		}
	}
	return 0
}

// timelineOfSegment returns the timeline whose file recovery reads for
// segment segno: the newest timeline of hist that began in or before it, as
// XLogFileReadAnyTLI chooses.
// SegmentTimeline returns the timeline whose file recovery toward timeline
// tli reads for segment segno: the newest timeline of tli's history that
// began in or before that segment.
func (c *Catalog) SegmentTimeline(tli uint32, segno uint64) uint32 {
	return timelineOfSegment(c.history(tli), segno, c.SegSize)
}

func timelineOfSegment(hist []span, segno uint64, segSize int64) uint32 {
	for i := len(hist) - 1; i > 0; i-- {
		if pgwal.SegNoOf(hist[i].begin, segSize) <= segno {
			return hist[i].tli
		}
	}
	return hist[0].tli
}
