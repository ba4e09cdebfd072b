package expire

import (
	"context"
	"errors"
	"fmt"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
)

// WAL records: the completeness heads (heads/<tli>/<segment>, one per
// archived segment) and the conflicting copies writers stored beside a WAL
// file (wal/<tli>/<name>~<hash>). Both are written per segment and never
// rewritten, so they would grow for ever: they go with the WAL they are
// about, below the oldest WAL expire keeps. Except the newest authentic
// head of each timeline: it is how readers know how far the archive
// reaches (catalog.MissingWAL), so it stays whatever the policy, or the
// newest segments could be deleted unnoticed right after an expire. Heads
// that do not verify (repo.WALHeads passed over them) and keys not of the
// heads' form are left in place, as other objects no trusted writer signed
// are (Plan.Ignored): verify names them.

// WALRecords is what Load lists of the WAL records.
type WALRecords struct {
	// Heads are the keys of the heads' form (their signatures unchecked).
	Heads []repo.WALHead
	// Alternates are the conflicting copies stored beside WAL files.
	Alternates []WALAlternate
}

// WALAlternate is a conflicting copy of WAL file File, stored under Key.
type WALAlternate struct {
	File pgwal.FileName
	Key  string
	Size int64
}

// WALRecordsPlan is what expire removes of the WAL records.
type WALRecordsPlan struct {
	Heads      []string `json:"removed_heads,omitempty"`
	Alternates []string `json:"removed_wal_alternates,omitempty"`
	Bytes      int64    `json:"stored_bytes,omitempty"`
}

func (p WALRecordsPlan) empty() bool { return len(p.Heads) == 0 && len(p.Alternates) == 0 }

// keys are the keys to remove: alternates first (they are the bulk), heads
// oldest first.
func (p WALRecordsPlan) keys() []string {
	return append(append([]string(nil), p.Alternates...), p.Heads...)
}

// summary is the plan's part of Plan.Summary ("" when it removes nothing).
func (p WALRecordsPlan) summary() string {
	if p.empty() {
		return ""
	}
	return fmt.Sprintf("; %d WAL completeness heads and %d conflicting WAL copies below the oldest WAL kept", len(p.Heads), len(p.Alternates))
}

// loadWALRecords lists the heads and the alternate WAL copies (a second
// listing of the WAL: the catalog keeps only the files). A format-1
// repository has neither heads nor alternates of its own making; what is
// there is listed all the same.
func loadWALRecords(ctx context.Context, r *repo.Repository) (WALRecords, error) {
	heads, _, err := r.ListWALHeads(ctx)
	if err != nil {
		return WALRecords{}, err
	}
	_, unknown, err := r.ListWAL(ctx)
	if err != nil {
		return WALRecords{}, err
	}
	rec := WALRecords{Heads: heads}
	for _, u := range unknown {
		if !errors.Is(u.Err, repo.ErrWALAlternate) {
			continue
		}
		f, _, err := repo.ParseWALAltKey(u.Key)
		if err != nil {
			continue
		}
		rec.Alternates = append(rec.Alternates, WALAlternate{File: f, Key: u.Key, Size: u.Size})
	}
	return rec, nil
}

// planWALRecords decides which records go: those of segments needed does
// not keep (the WAL rule of MakePlan), but never the newest authentic head
// of a timeline (cat.Heads), a head that did not verify
// (cat.IgnoredHeads), or an alternate copy of a history file (history
// files are never removed).
func planWALRecords(rec WALRecords, cat *catalog.Catalog, needed func(segno uint64) bool) WALRecordsPlan {
	var p WALRecordsPlan
	keep := make(map[string]bool, len(cat.Heads)+len(cat.IgnoredHeads))
	for _, h := range cat.Heads {
		keep[h.Key] = true
	}
	for _, u := range cat.IgnoredHeads {
		keep[u.Key] = true
	}
	for _, h := range rec.Heads {
		if keep[h.Key] || needed(h.File.SegNo(cat.SegSize)) {
			continue
		}
		p.Heads = append(p.Heads, h.Key)
		p.Bytes += h.Size
	}
	for _, a := range rec.Alternates {
		if a.File.Kind == pgwal.KindHistory || needed(a.File.SegNo(cat.SegSize)) {
			continue
		}
		p.Alternates = append(p.Alternates, a.Key)
		p.Bytes += a.Size
	}
	return p
}
