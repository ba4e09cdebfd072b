package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/restore/walfetch"
)

// Drawable returns the part of window w that a random point is drawn from:
// from w.From to just before newest, the time of the newest commit or abort
// record in the window's WAL (newestArchivedXact).
//
// PostgreSQL reaches a recovery_target_time only at a commit or abort record
// later than the target; when the WAL holds none, recovery ends with
// "recovery ended before configured recovery target was reached" and the
// server does not promote. w.To, the upload time of the newest segment, is
// only an upper bound of that record, often seconds or minutes after it
// (a segment is archived when it fills, at archive_timeout, or at a switch),
// so a point drawn up to w.To can lie where no recovery stops.
//
// The end of the result is a whole microsecond before newest (PostgreSQL's
// precision), and never after w.To. ok is false when no whole microsecond
// from w.From lies before newest: no moment of w can be recovered to by time.
func Drawable(w catalog.Window, newest time.Time) (catalog.Window, bool) {
	from := w.From.Truncate(time.Microsecond)
	if from.Before(w.From) {
		from = from.Add(time.Microsecond)
	}
	to := newest.Truncate(time.Microsecond)
	if to.Equal(newest) {
		to = to.Add(-time.Microsecond)
	}
	if w.To.Before(to) {
		to = w.To
	}
	if to.Before(from) {
		return catalog.Window{}, false
	}
	d := w
	d.To = to
	return d, true
}

// newestArchivedXact returns the time of the newest commit or abort record
// that begins at or after w.FromLSN in the repository's WAL of window w
// (found in cat), and where it begins. It reads segments back from the end
// of the window (the streamed partial included, as restore_command serves
// it) and stops at the first one that holds such a record; ok is false when
// none does, back to the segment of w.FromLSN.
func newestArchivedXact(ctx context.Context, r *repo.Repository, cat *catalog.Catalog, w catalog.Window) (newest time.Time, at pgwal.LSN, ok bool, err error) {
	if w.ToLSN <= w.FromLSN || !pgwal.ValidSegmentSize(cat.SegSize) {
		return time.Time{}, 0, false, nil
	}
	first := pgwal.SegNoOf(w.FromLSN, cat.SegSize)
	// next is the segment after the one being read: a record that begins
	// in one segment may end in the next.
	var next []byte
	for seg := pgwal.SegNoOf(w.ToLSN-1, cat.SegSize); ; seg-- {
		name := pgwal.SegmentName(cat.SegmentTimeline(w.Timeline, seg), seg, cat.SegSize)
		f, err := pgwal.ParseFileName(name)
		if err != nil {
			return time.Time{}, 0, false, err
		}
		data, err := walfetch.Get(ctx, r, f)
		if err != nil {
			return time.Time{}, 0, false, fmt.Errorf("read WAL segment %s for the newest commit: %w", name, err)
		}
		scan := data
		if next != nil {
			scan = append(data[:len(data):len(data)], next...)
		}
		if _, err := pgwal.ScanXacts(scan, func(x pgwal.XactRecord) {
			if x.LSN >= w.FromLSN && (!ok || x.Time.After(newest)) {
				newest, at, ok = x.Time, x.LSN, true
			}
		}); err != nil {
			return time.Time{}, 0, false, fmt.Errorf("WAL segment %s: %w", name, err)
		}
		if ok || seg <= first {
			return newest, at, ok, nil
		}
		next = data
	}
}
