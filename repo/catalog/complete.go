package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// LatestWALTimeline returns the highest timeline the repository holds WAL
// files or heads of: the one a restore to the latest point must end on.
func (c *Catalog) LatestWALTimeline() uint32 {
	var newest uint32
	for _, w := range c.WAL {
		newest = max(newest, w.File.Timeline)
	}
	for tli := range c.Heads {
		newest = max(newest, tli)
	}
	for _, p := range c.Partials {
		newest = max(newest, p.File.Timeline)
	}
	return newest
}

// MissingWAL lists, for a repository that keeps completeness heads
// (format 2; nil otherwise), the keys of the objects that recovery along
// timeline tli from LSN from needs, that the heads say were archived, and
// that the repository does not hold:
//
//   - every full segment from from's segment up to the newest head on
//     tli's history (a head of an ancestor timeline counts up to where
//     that timeline ended on this history);
//   - the history files MissingHistories lists.
//
// The keys are in order, histories first.
func (c *Catalog) MissingWAL(tli uint32, from pgwal.LSN) []string {
	if !c.KeepsHeads {
		return nil
	}
	missing := c.MissingHistories(tli)
	if _, ok := c.Timelines[tli]; !ok && tli > 1 {
		// Without tli's history its path is unknown: the history is
		// what is missing.
		return missing
	}
	hist := c.history(tli)
	// How far the heads say this history reaches.
	end, found := uint64(0), false
	for i, s := range hist {
		h, ok := c.Heads[s.tli]
		if !ok {
			continue
		}
		seg := h.File.SegNo(c.SegSize)
		if i+1 < len(hist) {
			// Past its switch, an ancestor's own segments are not on
			// this history; its head still proves it reached the switch.
			next := pgwal.SegNoOf(hist[i+1].begin, c.SegSize)
			if next == 0 {
				continue
			}
			seg = min(seg, next-1)
		}
		if !found || seg > end {
			end, found = seg, true
		}
	}
	if !found {
		return missing
	}
	segs := c.segments()
	for s := pgwal.SegNoOf(from, c.SegSize); s <= end; s++ {
		t := timelineOfSegment(hist, s, c.SegSize)
		if _, ok := segs[segKey{t, s}]; !ok {
			missing = append(missing, repo.WALSegmentKey(t, s, c.SegSize))
		}
	}
	return missing
}

// MissingHistories lists, for a repository that keeps completeness heads
// (nil otherwise), the keys of the history files that are missing: of
// every timeline after the first that has WAL files or heads, and of every
// timeline on tli's history. Without one, recovery that follows the latest
// timeline (PostgreSQL probes history files) would stay on an older one,
// past the point where it was abandoned; so its absence is an error, never
// a fallback. The keys are in timeline order.
func (c *Catalog) MissingHistories(tli uint32) []string {
	if !c.KeepsHeads {
		return nil
	}
	needHistory := map[uint32]bool{}
	for _, w := range c.WAL {
		needHistory[w.File.Timeline] = true
	}
	for t := range c.Heads {
		needHistory[t] = true
	}
	for _, p := range c.Partials {
		needHistory[p.File.Timeline] = true
	}
	for _, s := range c.history(tli) {
		needHistory[s.tli] = true
	}
	var tlis []uint32
	for t := range needHistory {
		if _, ok := c.Timelines[t]; !ok && t > 1 {
			tlis = append(tlis, t)
		}
	}
	sort.Slice(tlis, func(i, j int) bool { return tlis[i] < tlis[j] })
	var missing []string
	for _, t := range tlis {
		f, _ := pgwal.ParseFileName(pgwal.HistoryFileName(t))
		missing = append(missing, repo.WALKey(f))
	}
	return missing
}

// CheckComplete is MissingWAL as an error: repo.ErrIncompleteWAL naming
// the missing objects (the first 20 and how many), nil when none is.
func (c *Catalog) CheckComplete(tli uint32, from pgwal.LSN) error {
	missing := c.MissingWAL(tli, from)
	if len(missing) == 0 {
		return nil
	}
	return IncompleteError(missing)
}

// IncompleteError is repo.ErrIncompleteWAL naming missing (the first 20
// and how many).
func IncompleteError(missing []string) error {
	shown := missing
	more := ""
	if len(shown) > 20 {
		shown, more = shown[:20], fmt.Sprintf(" and %d more", len(missing)-20)
	}
	return fmt.Errorf("%w: missing %s%s: the repository's signed WAL heads (and history files) say they were archived; they were deleted, or the bucket was rolled back (restore to an earlier target, or put the objects back from a copy)",
		repo.ErrIncompleteWAL, strings.Join(shown, ", "), more)
}

// NeededFrom returns where the WAL a restore along timeline tli may need
// begins: the start of the oldest backup on tli's history, passing over the
// oldest ones kept (keep, may be nil) while an unmarked backup follows, as
// retention keeps only their own WAL; with no backup on it, the start of
// the oldest full segment on the history the repository holds.
func (c *Catalog) NeededFrom(tli uint32, keep func(id string) bool) pgwal.LSN {
	var on []*repo.BackupManifest
	for _, b := range c.Backups {
		if c.OnHistory(b, tli) {
			on = append(on, b)
		}
	}
	sort.SliceStable(on, func(i, j int) bool { return on[i].StartLSN < on[j].StartLSN })
	if keep != nil {
		for len(on) > 1 && keep(on[0].ID) {
			unmarked := false
			for _, b := range on[1:] {
				unmarked = unmarked || !keep(b.ID)
			}
			if !unmarked {
				break
			}
			on = on[1:]
		}
	}
	if len(on) > 0 {
		return on[0].StartLSN
	}
	hist := c.history(tli)
	from, found := pgwal.LSN(0), false
	for _, w := range c.WAL {
		if w.File.Kind != pgwal.KindSegment {
			continue
		}
		s := w.File.SegNo(c.SegSize)
		if timelineOfSegment(hist, s, c.SegSize) != w.File.Timeline {
			continue
		}
		if l := pgwal.SegmentStart(s, c.SegSize); !found || l < from {
			from, found = l, true
		}
	}
	return from
}

// ParseWALPosition reads what --expect-wal-at-least takes: a WAL segment
// name (the archive must hold all of it: its end is returned) or an LSN.
func ParseWALPosition(s string, segSize int64) (pgwal.LSN, error) {
	if f, err := pgwal.ParseFileName(s); err == nil {
		if f.Kind != pgwal.KindSegment {
			return 0, fmt.Errorf("%q: want a WAL segment name or an LSN, not a %s", s, f.Kind)
		}
		if uint64(f.Seg) >= pgwal.SegmentsPerXLogID(segSize) {
			return 0, fmt.Errorf("%q: not a segment name of this repository's %d-byte segments (its last 8 digits must stay below %X)", s, segSize, pgwal.SegmentsPerXLogID(segSize))
		}
		return pgwal.SegmentStart(f.SegNo(segSize)+1, segSize), nil
	}
	l, err := pgwal.ParseLSN(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a WAL segment name (24 hex digits) or an LSN such as 0/3000060", s)
	}
	return l, nil
}

// Reached returns how far the WAL on timeline tli's history reaches: the
// end of its newest full segment or streamed partial.
func (c *Catalog) Reached(tli uint32) pgwal.LSN {
	hist := c.history(tli)
	var end pgwal.LSN
	for _, w := range c.WAL {
		if w.File.Kind != pgwal.KindSegment {
			continue
		}
		s := w.File.SegNo(c.SegSize)
		if timelineOfSegment(hist, s, c.SegSize) == w.File.Timeline {
			end = max(end, pgwal.SegmentStart(s+1, c.SegSize))
		}
	}
	for _, p := range c.Partials {
		s := p.File.SegNo(c.SegSize)
		if timelineOfSegment(hist, s, c.SegSize) == p.File.Timeline {
			end = max(end, pgwal.SegmentStart(s, c.SegSize)+pgwal.LSN(p.Valid))
		}
	}
	return end
}

// CheckReaches is repo.ErrIncompleteWAL, naming the segment that holds the
// position, when the WAL on tli's history does not reach at (an operator's
// independent record of how far the archive went: --expect-wal-at-least).
func (c *Catalog) CheckReaches(tli uint32, at pgwal.LSN) error {
	if at == 0 {
		return nil
	}
	if got := c.Reached(tli); got < at {
		seg := pgwal.SegNoOf(at-1, c.SegSize)
		t := timelineOfSegment(c.history(tli), seg, c.SegSize)
		return fmt.Errorf("%w: the archive reaches %s on timeline %d, and --expect-wal-at-least says %s: %s (and what comes before it) is missing; the newest WAL was deleted, or never archived",
			repo.ErrIncompleteWAL, got, tli, at, repo.WALSegmentKey(t, seg, c.SegSize))
	}
	return nil
}
