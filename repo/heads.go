package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
)

// WAL completeness heads (format 2). Signatures prove that what a reader
// got is what a writer archived; they cannot prove that nothing was
// deleted. So every writer of full WAL segments (wal-push, the streamer)
// stores, after the segment itself, an empty signed object
// heads/<timeline>/<segment name>: the record that the archive reached that
// segment. Heads are add-only and bound to their name like every object,
// so a reader's newest authentic head per timeline tells how far the
// archive is supposed to reach; a deleted newest segment is caught because
// its head remains. Deleting a segment and its head together is the limit
// (tail truncation): only an Object Lock retention closes it
// (docs/SECURITY.md).

// HeadPrefix is the key prefix of the completeness heads.
const HeadPrefix = "heads/"

// ErrIncompleteWAL: the repository's heads (or its WAL) say it held WAL
// objects it no longer holds. It wraps ErrIntegrity: objects were deleted.
var ErrIncompleteWAL = fmt.Errorf("%w: WAL archive incomplete", ErrIntegrity)

// HeadKey is the key of the head of full segment f:
// heads/<timeline as 8 hex digits>/<segment name>.
func HeadKey(f pgwal.FileName) string {
	return fmt.Sprintf("%s%08X/%s", HeadPrefix, f.Timeline, f.Name)
}

// ParseHeadKey returns the segment a head's key names, checking that the
// key has HeadKey's form: a full segment's name under its own timeline's
// folder.
func ParseHeadKey(key string) (pgwal.FileName, error) {
	f, err := parseTimelineKey(key, HeadPrefix)
	if err != nil {
		return f, err
	}
	if f.Kind != pgwal.KindSegment {
		return f, fmt.Errorf("key %q: a head names a full WAL segment, not a %s", key, f.Kind)
	}
	return f, nil
}

// KeepsHeads reports whether the repository records completeness heads
// (format 2: they mean something only when signed).
func (r *Repository) KeepsHeads() bool { return r.Signed() }

// PutWALHead records that full segment f is archived. Call it after the
// segment is stored. In a format-1 repository, and for other files than
// full segments, it does nothing. An object already under the head's key is
// success: a head is empty, one signed copy is as good as another, and one
// planted there does not count (readers verify heads) while the heads of
// later segments still will.
func (r *Repository) PutWALHead(ctx context.Context, f pgwal.FileName) error {
	if !r.KeepsHeads() || f.Kind != pgwal.KindSegment {
		return nil
	}
	_, err := r.Put(ctx, HeadKey(f), nil, storage.PutOptions{IfAbsent: true})
	if err != nil && !storage.IsExist(err) {
		return fmt.Errorf("record WAL head: %w", err)
	}
	return nil
}

// WALHead is a completeness head: the newest authentic one of a timeline
// (WALHeads), or one a listing found (ListWALHeads).
type WALHead struct {
	File pgwal.FileName
	Key  string
	// Size is the stored size, when it came from a listing.
	Size int64
}

// WALHeads returns the newest head of each timeline that a trusted writer
// signed under its name, and the heads it passed over: keys not of the
// form, and newer heads that do not verify (planted or damaged: they are
// ignored, so that nobody without a writer key can move the record; a
// reader reports them). A format-1 repository has none.
func (r *Repository) WALHeads(ctx context.Context) (map[uint32]WALHead, []UnknownObject, error) {
	if !r.KeepsHeads() {
		return nil, nil, nil
	}
	all, unknown, err := r.ListWALHeads(ctx)
	if err != nil {
		return nil, nil, err
	}
	byTLI := make(map[uint32][]WALHead)
	for _, h := range all {
		byTLI[h.File.Timeline] = append(byTLI[h.File.Timeline], h)
	}
	newest := make(map[uint32]WALHead, len(byTLI))
	for tli, hs := range byTLI {
		// Segment names of one timeline sort in segment order.
		sort.Slice(hs, func(i, j int) bool { return hs[i].File.Name > hs[j].File.Name })
		for _, h := range hs {
			_, err := r.Header(ctx, h.Key)
			switch {
			case err == nil:
				newest[tli] = h
			case storage.IsNotExist(err):
				continue
			case errors.Is(err, ErrIntegrity):
				unknown = append(unknown, UnknownObject{Key: h.Key, Err: err})
				continue
			default:
				return nil, nil, err
			}
			break
		}
	}
	return newest, unknown, nil
}

// ListWALHeads lists every key of HeadKey's form under HeadPrefix (heads),
// and the other keys there (unknown), without reading them: their
// signatures are not checked (WALHeads does that). Expire removes old
// heads from this list.
func (r *Repository) ListWALHeads(ctx context.Context) (heads []WALHead, unknown []UnknownObject, err error) {
	err = r.store.List(ctx, HeadPrefix, func(oi storage.ObjectInfo) error {
		f, err := ParseHeadKey(oi.Key)
		if err != nil {
			unknown = append(unknown, UnknownObject{Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime, Err: err})
			return nil
		}
		heads = append(heads, WALHead{File: f, Key: oi.Key, Size: oi.Size})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list WAL heads: %w", err)
	}
	return heads, unknown, nil
}
