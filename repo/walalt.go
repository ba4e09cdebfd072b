package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
)

// Conflicting WAL copies. When the repository already holds an object
// under a WAL file's name that is not what a writer is archiving (planted
// under a future segment's name, damaged, or written by another cluster),
// failing would stop archiving for good: PostgreSQL retries the same file
// forever, pg_wal fills and the primary stops. So the writer stores its
// copy beside the other as an alternate, wal/<tli>/<name>~<hash> (hash: the
// first 16 hex digits of the plaintext's SHA-256, or all 64 when that key
// is taken by something else), reports the conflict, and readers pick the
// copy that verifies.

// ErrWALAlternate marks, in ListWAL's unknown objects, an alternate copy of
// a WAL file: a conflict some writer met (see WALConflicts).
var ErrWALAlternate = errors.New("a conflicting copy of a WAL file, stored beside it")

// ErrAlternateTaken: both alternate keys of a copy hold something else.
var ErrAlternateTaken = errors.New("both alternate keys of the WAL file hold other content")

const altSep = "~"

// WALAltKey is the key of an alternate copy of WAL file f whose plaintext
// has SHA-256 sum; long selects the 64-digit form.
func WALAltKey(f pgwal.FileName, sum [32]byte, long bool) string {
	h := hex.EncodeToString(sum[:])
	if !long {
		h = h[:16]
	}
	return WALKey(f) + altSep + h
}

// ParseWALAltKey returns the WAL file an alternate's key names and its
// hash suffix (16 or 64 lower-case hex digits).
func ParseWALAltKey(key string) (pgwal.FileName, string, error) {
	main, h, ok := strings.Cut(key, altSep)
	if !ok {
		return pgwal.FileName{}, "", fmt.Errorf("key %q is not an alternate WAL copy (no %q)", key, altSep)
	}
	if len(h) != 16 && len(h) != 64 {
		return pgwal.FileName{}, "", fmt.Errorf("key %q: alternate suffix of %d characters, want 16 or 64 hex digits", key, len(h))
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return pgwal.FileName{}, "", fmt.Errorf("key %q: alternate suffix %q is not lower-case hex", key, h)
		}
	}
	f, err := ParseWALKey(main)
	if err != nil {
		return f, "", err
	}
	return f, h, nil
}

// WALConflicts returns the keys of the alternate WAL copies among the
// unknown objects ListWAL returned: each is a conflict a writer met and
// stored beside. check and verify report them as failures.
func WALConflicts(unknown []UnknownObject) []string {
	var out []string
	for _, u := range unknown {
		if errors.Is(u.Err, ErrWALAlternate) {
			out = append(out, u.Key)
		}
	}
	return out
}

// StoredMatches judges, by authenticated content where the repository
// allows it, whether the object under key holds plaintext of size bytes
// with SHA-256 sum (called only once the object is read, so a caller can
// hash meanwhile). Format 2: the header a trusted writer signed under this
// key (one that does not verify is no match: why says so). Format 1 with
// an identity: the object decrypted and checked. Format 1 without: only
// the header as stored, which cannot be authenticated (a format-1 limit).
// The error is for what says nothing about the object (storage, not found).
func (r *Repository) StoredMatches(ctx context.Context, key string, size int64, sum func() [32]byte) (match bool, why string, err error) {
	var h ObjectHeader
	if !r.Signed() && r.CanRead() {
		_, h, err = r.Get(ctx, key)
	} else {
		h, err = r.Header(ctx, key)
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrIntegrity), errors.Is(err, ErrWrongKey), errors.Is(err, ErrUnsupportedFormat):
		return false, fmt.Sprintf("the stored object does not verify (%v)", err), nil
	default:
		return false, "", err
	}
	if h.PlainSize != size || h.SHA256 != sum() {
		return false, fmt.Sprintf("the stored object holds other content (%d bytes, SHA-256 %s…)", h.PlainSize, h.SHA256Hex()[:16]), nil
	}
	return true, "", nil
}

// PutWALAlternate stores data (plaintext with SHA-256 sum) beside the
// object under WALKey(f) as an alternate copy and returns its key. A copy
// already there with the same content is success.
func (r *Repository) PutWALAlternate(ctx context.Context, f pgwal.FileName, data []byte, sum [32]byte) (string, error) {
	for _, long := range []bool{false, true} {
		key := WALAltKey(f, sum, long)
		_, err := r.PutSum(ctx, key, data, sum, storage.PutOptions{IfAbsent: true})
		if err == nil {
			return key, nil
		}
		if !storage.IsExist(err) {
			return "", err
		}
		match, _, err := r.StoredMatches(ctx, key, int64(len(data)), func() [32]byte { return sum })
		if err != nil {
			return "", err
		}
		if match {
			return key, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrAlternateTaken, WALKey(f))
}

// WALAlternates lists the alternate copies of WAL file f.
func (r *Repository) WALAlternates(ctx context.Context, f pgwal.FileName) ([]string, error) {
	var out []string
	err := r.store.List(ctx, WALKey(f)+altSep, func(oi storage.ObjectInfo) error {
		if g, _, err := ParseWALAltKey(oi.Key); err == nil && g == f {
			out = append(out, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list copies of %s: %w", WALKey(f), err)
	}
	return out, nil
}

// WALCopy is one copy of a WAL file a reader found.
type WALCopy struct {
	Key  string
	Data []byte
}

// PickWALCopy chooses among the copies of one WAL file, given those that
// verified (signature, checks of the content) and why the others did not:
// one verified copy, or several identical ones, is the file; none, or
// verified copies that differ, is ErrIntegrity naming them all.
func PickWALCopy(name string, good []WALCopy, bad map[string]error) ([]byte, string, error) {
	if len(good) == 0 {
		var why []string
		for k, err := range bad {
			why = append(why, fmt.Sprintf("%s: %v", k, err))
		}
		sort.Strings(why)
		return nil, "", fmt.Errorf("%w: no copy of %s verifies: %s", ErrIntegrity, name, strings.Join(why, "; "))
	}
	for _, c := range good[1:] {
		if !bytes.Equal(c.Data, good[0].Data) {
			var keys []string
			for _, c := range good {
				keys = append(keys, c.Key)
			}
			return nil, "", fmt.Errorf("%w: copies of %s that both verify differ: %s; walvault cannot tell which one PostgreSQL wrote (two clusters or two primaries archiving to this repository?): keep the right one and remove the other", ErrIntegrity, name, strings.Join(keys, " and "))
		}
	}
	return good[0].Data, good[0].Key, nil
}
