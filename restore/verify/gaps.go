package verify

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/storage"
)

type segKey struct {
	tli   uint32
	segno uint64
}

// continuity walks the WAL the way recovery reads it, from the oldest
// backup's start to the newest segment, along the history of each timeline
// a backup ends on and of the newest timeline, and records every run of
// missing segments. Backups whose own start-to-stop WAL is incomplete are
// problems (and their missing segments too, by key).
func (v *verifier) continuity(cat *catalog.Catalog) {
	segs := make(map[segKey]repo.WALObject)
	newest := uint32(0)
	for _, w := range cat.WAL {
		if w.File.Kind == pgwal.KindSegment {
			segs[segKey{w.File.Timeline, w.File.SegNo(v.segSize)}] = w
		}
		newest = max(newest, w.File.Timeline)
	}
	partials := make(map[segKey]repo.StreamPartial)
	for _, p := range cat.Partials {
		partials[segKey{p.File.Timeline, p.File.SegNo(v.segSize)}] = p
		newest = max(newest, p.File.Timeline)
	}
	paths := map[uint32]bool{}
	for _, b := range cat.Backups {
		paths[cat.LatestTimeline(b)] = true
	}
	if newest != 0 && v.opts.BackupID == "" {
		paths[newest] = true
	}
	order := make([]uint32, 0, len(paths))
	for t := range paths {
		order = append(order, t)
	}
	slices.Sort(order)

	seen := map[segKey]bool{}
	for _, tli := range order {
		hist := history(cat, tli)
		var on []*repo.BackupManifest
		for _, b := range cat.Backups {
			if cat.OnHistory(b, tli) {
				on = append(on, b)
			}
		}
		// Backups marked keep that are older than every unmarked one
		// keep only their own WAL after expire: walk from the oldest
		// unmarked backup (their own WAL is checked below).
		for len(on) > 1 && v.kept[on[0].ID] {
			unmarked := false
			for _, b := range on[1:] {
				unmarked = unmarked || !v.kept[b.ID]
			}
			if !unmarked {
				break
			}
			on = on[1:]
		}
		// The stretch to check: from the oldest backup's start (or the
		// first segment on this path when no backup lies on it) to the
		// newest WAL on the path or the end of the newest backup.
		first, last, found := uint64(0), uint64(0), false
		include := func(s uint64) {
			if !found || s < first {
				first = s
			}
			if !found || s > last {
				last = s
			}
			found = true
		}
		for k := range segs {
			if timelineOfSegment(hist, k.segno, v.segSize) == k.tli {
				include(k.segno)
			}
		}
		for k := range partials {
			if timelineOfSegment(hist, k.segno, v.segSize) == k.tli {
				include(k.segno)
			}
		}
		if len(on) > 0 {
			start := pgwal.SegNoOf(on[0].StartLSN, v.segSize)
			for _, b := range on {
				start = min(start, pgwal.SegNoOf(b.StartLSN, v.segSize))
				include(pgwal.SegNoOf(b.StartLSN, v.segSize))
				include(pgwal.SegNoOf(max(b.StopLSN, b.StartLSN+1)-1, v.segSize))
			}
			first = start
		}
		if !found {
			continue
		}
		for s := first; s <= last; s++ {
			t := timelineOfSegment(hist, s, v.segSize)
			if _, ok := segs[segKey{t, s}]; ok {
				continue
			}
			if _, ok := partials[segKey{t, s}]; ok && s == last {
				continue // the streaming receiver's newest bytes
			}
			end := s
			for end+1 <= last && timelineOfSegment(hist, end+1, v.segSize) == t {
				if _, ok := segs[segKey{t, end + 1}]; ok {
					break
				}
				if _, ok := partials[segKey{t, end + 1}]; ok && end+1 == last {
					break
				}
				end++
			}
			if !seen[segKey{t, s}] {
				seen[segKey{t, s}] = true
				v.gap(on, segs, hist, t, s, end)
			}
			s = end
		}
	}
	sort.Slice(v.rep.Gaps, func(i, j int) bool {
		if v.rep.Gaps[i].Timeline != v.rep.Gaps[j].Timeline {
			return v.rep.Gaps[i].Timeline < v.rep.Gaps[j].Timeline
		}
		return v.rep.Gaps[i].FromLSN < v.rep.Gaps[j].FromLSN
	})

	// A backup whose WAL from start to stop is incomplete cannot be
	// restored at all.
	for _, b := range cat.Backups {
		if _, ok := cat.Reach(b); ok {
			continue
		}
		hist := history(cat, cat.LatestTimeline(b))
		var missing []string
		lastSeg := pgwal.SegNoOf(max(b.StopLSN, b.StartLSN+1)-1, v.segSize)
		for s := pgwal.SegNoOf(b.StartLSN, v.segSize); s <= lastSeg; s++ {
			t := timelineOfSegment(hist, s, v.segSize)
			if _, ok := segs[segKey{t, s}]; ok {
				continue
			}
			key := repo.WALSegmentKey(t, s, v.segSize)
			missing = append(missing, pgwal.SegmentName(t, s, v.segSize))
			v.problem(key, KindMissing, fmt.Errorf("%w: needed by backup %s (WAL %s to %s)", storage.ErrNotExist, b.ID, b.StartLSN, b.StopLSN))
		}
		v.problem(repo.BackupManifestKey(b.ID), KindUnusable, fmt.Errorf("%w: backup %s cannot be restored: its WAL from %s to %s is incomplete (missing %s)",
			repo.ErrIntegrity, b.ID, b.StartLSN, b.StopLSN, strings.Join(missing, ", ")))
	}
}

// gap records the missing segments from..to on timeline tli. on are the
// backups on the history being walked, oldest first.
func (v *verifier) gap(on []*repo.BackupManifest, segs map[segKey]repo.WALObject, hist segTimeline, tli uint32, from, to uint64) {
	g := Gap{
		Timeline: tli,
		From:     pgwal.SegmentName(tli, from, v.segSize),
		To:       pgwal.SegmentName(tli, to, v.segSize),
		Segments: int(to - from + 1),
		FromLSN:  pgwal.SegmentStart(from, v.segSize),
		ToLSN:    pgwal.SegmentStart(to+1, v.segSize),
		CutShort: []string{},
	}
	if from > 0 {
		if prev, ok := segs[segKey{timelineOfSegment(hist, from-1, v.segSize), from - 1}]; ok {
			g.After = prev.ModTime
		}
	}
	for _, b := range on {
		if b.StartLSN < g.ToLSN {
			g.CutShort = append(g.CutShort, b.ID)
			if b.StopLSN > g.FromLSN {
				g.Unusable = append(g.Unusable, b.ID)
			}
		} else if g.ResumeBackup == "" {
			g.ResumeBackup = b.ID
		}
	}
	var msg strings.Builder
	if g.Segments == 1 {
		fmt.Fprintf(&msg, "segment %s missing", g.From)
	} else {
		fmt.Fprintf(&msg, "segments %s to %s (%d) missing", g.From, g.To, g.Segments)
	}
	fmt.Fprintf(&msg, ": no restore can pass %s on timeline %d", g.FromLSN, tli)
	when := "moments after the WAL before it"
	if !g.After.IsZero() {
		when = "moments after " + g.After.UTC().Format(time.RFC3339)
	}
	switch {
	case len(g.CutShort) == 0:
		fmt.Fprintf(&msg, " (no backup starts before it)")
	case g.ResumeBackup == "":
		fmt.Fprintf(&msg, "; %s are unreachable from every backup", when)
	default:
		fmt.Fprintf(&msg, "; %s are unreachable from backups older than %s", when, g.ResumeBackup)
	}
	if len(g.Unusable) > 0 {
		fmt.Fprintf(&msg, "; backup %s cannot be restored at all", strings.Join(g.Unusable, ", "))
	}
	g.Message = msg.String()
	v.rep.Gaps = append(v.rep.Gaps, g)
}

// segTimeline answers, for recovery toward one timeline, which timeline's
// file PostgreSQL reads for each segment: the catalog's model of
// readTimeLineHistory and XLogFileReadAnyTLI, so verify and restore can
// never disagree about it.
type segTimeline func(segno uint64) uint32

func history(c *catalog.Catalog, tli uint32) segTimeline {
	return func(segno uint64) uint32 { return c.SegmentTimeline(tli, segno) }
}

func timelineOfSegment(h segTimeline, segno uint64, _ int64) uint32 { return h(segno) }
