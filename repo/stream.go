package repo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
)

// StreamPrefix holds partial segments uploaded by the streaming receiver:
//
//	stream/<TTTTTTTT>/<segment name>.<OOOOOOOO>
//
// where OOOOOOOO is the number of valid bytes from the start of the segment
// (8 hex digits). The plaintext is exactly those bytes. Objects are never
// rewritten: each upload of a growing segment is a new object with a larger
// offset, and the streamer deletes older ones once a newer one (or the full
// segment under wal/) is stored. Readers use the one with the largest offset,
// and only when the full segment is absent.
//
// These are distinct from PostgreSQL's own ".partial" files (the last,
// incomplete segment of a timeline that ended at a promotion), which are
// archived under wal/ like any WAL file.
const StreamPrefix = "stream/"

// StreamPartialKey names a streamed partial segment holding valid bytes of
// the segment.
func StreamPartialKey(tli uint32, segment string, valid int64) string {
	return fmt.Sprintf("%s%08X/%s.%08X", StreamPrefix, tli, segment, valid)
}

// StreamPartial is a streamed partial segment held by the repository.
type StreamPartial struct {
	File  pgwal.FileName // the segment it is a prefix of
	Valid int64          // bytes of the segment it holds
	Key   string
	// Size and ModTime are its stored size and when it was stored (set
	// by listings).
	Size    int64
	ModTime time.Time
}

// StreamPartialOf is the streamed partial holding the first valid bytes of
// segment segno of timeline tli, stored or not: its Key is where it goes.
func (r *Repository) StreamPartialOf(tli uint32, segno uint64, valid int64) StreamPartial {
	name := pgwal.SegmentName(tli, segno, r.Config.WALSegmentSize)
	f, err := pgwal.ParseFileName(name)
	if err != nil {
		panic(err) // SegmentName makes valid names
	}
	return StreamPartial{File: f, Valid: valid, Key: StreamPartialKey(tli, name, valid)}
}

// RemoveStreamPartial deletes the streamed partial p (superseded by a larger
// one or by the full segment). A partial already gone is no error.
func (r *Repository) RemoveStreamPartial(ctx context.Context, p StreamPartial) error {
	err := r.store.Delete(ctx, StreamPartialKey(p.File.Timeline, p.File.Name, p.Valid))
	if storage.IsNotExist(err) {
		return nil
	}
	return err
}

// ParseStreamPartialKey parses a StreamPartialKey.
func ParseStreamPartialKey(key string) (StreamPartial, error) {
	rest, ok := strings.CutPrefix(key, StreamPrefix)
	if !ok {
		return StreamPartial{}, fmt.Errorf("key %q is not under %s", key, StreamPrefix)
	}
	dir, name, ok := strings.Cut(rest, "/")
	if !ok {
		return StreamPartial{}, fmt.Errorf("key %q has no timeline folder", key)
	}
	seg, off, ok := strings.Cut(name, ".")
	if !ok || len(off) != 8 {
		return StreamPartial{}, fmt.Errorf("key %q has no 8-digit offset", key)
	}
	f, err := pgwal.ParseFileName(seg)
	if err != nil || f.Kind != pgwal.KindSegment {
		return StreamPartial{}, fmt.Errorf("key %q does not name a segment", key)
	}
	if dir != fmt.Sprintf("%08X", f.Timeline) {
		return StreamPartial{}, fmt.Errorf("key %q: segment of timeline %d under %s", key, f.Timeline, dir)
	}
	v, err := strconv.ParseUint(off, 16, 32)
	if err != nil || strings.ToUpper(off) != off || v == 0 {
		return StreamPartial{}, fmt.Errorf("key %q: bad offset %q", key, off)
	}
	return StreamPartial{File: f, Valid: int64(v), Key: key}, nil
}

// StreamPartials lists the streamed partial segments of one segment (name),
// or of a whole timeline when name is empty, in key order (so, per segment,
// by growing offset).
func (r *Repository) StreamPartials(ctx context.Context, tli uint32, name string) ([]StreamPartial, error) {
	prefix := fmt.Sprintf("%s%08X/%s", StreamPrefix, tli, name)
	if name != "" {
		prefix += "."
	}
	ps, _, err := r.listStreamPartials(ctx, prefix)
	return ps, err
}

// AllStreamPartials lists every streamed partial segment, of all timelines,
// in key order. Objects under stream/ whose keys are not streamed partials
// of this format (or claim more than a segment) are returned apart, as
// unknown.
func (r *Repository) AllStreamPartials(ctx context.Context) (partials []StreamPartial, unknown []UnknownObject, err error) {
	return r.listStreamPartials(ctx, StreamPrefix)
}

func (r *Repository) listStreamPartials(ctx context.Context, prefix string) (partials []StreamPartial, unknown []UnknownObject, err error) {
	err = r.store.List(ctx, prefix, func(oi storage.ObjectInfo) error {
		p, err := ParseStreamPartialKey(oi.Key)
		if err == nil && p.Valid > r.Config.WALSegmentSize {
			err = fmt.Errorf("key %q: holds more than a %d-byte segment", oi.Key, r.Config.WALSegmentSize)
		}
		if err != nil {
			unknown = append(unknown, UnknownObject{Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime, Err: err})
			return nil
		}
		p.Size, p.ModTime = oi.Size, oi.ModTime
		partials = append(partials, p)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list streamed partials: %w", err)
	}
	return partials, unknown, nil
}

// LatestStreamPartial returns the streamed partial of segment name with the
// most bytes, or an error for which storage.IsNotExist is true.
func (r *Repository) LatestStreamPartial(ctx context.Context, f pgwal.FileName) (StreamPartial, error) {
	ps, err := r.StreamPartials(ctx, f.Timeline, f.Name)
	if err != nil {
		return StreamPartial{}, err
	}
	if len(ps) == 0 {
		return StreamPartial{}, fmt.Errorf("streamed partial of %s: %w", f.Name, storage.ErrNotExist)
	}
	return ps[len(ps)-1], nil
}
