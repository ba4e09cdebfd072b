package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
)

// What the repository holds, as its callers need it: typed listings,
// existence checks and removal. Callers never build or cut object keys;
// a key they hold came from here, and they hand it back (Remove) or show
// it in a report.

// UnknownObject is an object under one of the format's prefixes whose key
// the format does not define: nothing of walvault's wrote it, and nothing
// reads it.
type UnknownObject struct {
	Key     string
	Size    int64
	ModTime time.Time
	// Err says why the key is not one of the format's.
	Err error
}

// BackupObjectKind says what an object under backups/ is.
type BackupObjectKind int

const (
	// UnknownBackupObject is a key the format does not define, under a
	// backup id or not.
	UnknownBackupObject BackupObjectKind = iota
	// BackupManifestObject is backups/<id>/backup.json.
	BackupManifestObject
	// BackupChunkObject is a chunk, backups/<id>/data/….
	BackupChunkObject
	// BackupNoteObject is a keep mark or an annotation, backups/<id>/notes/….
	BackupNoteObject
	// BackupFileListObject is a block backup's file list,
	// backups/<id>/files (repo/blocks.go).
	BackupFileListObject
)

// BackupObject is an object under backups/.
type BackupObject struct {
	// ID is the backup the object belongs to; empty when the key is not
	// under a valid backup id (then Kind is UnknownBackupObject).
	ID      string
	Kind    BackupObjectKind
	Key     string
	Size    int64
	ModTime time.Time
}

// parseBackupKey classifies a key under backups/.
func parseBackupKey(key string) (id string, kind BackupObjectKind) {
	rest, ok := strings.CutPrefix(key, BackupPrefix)
	if !ok {
		return "", UnknownBackupObject
	}
	id, name, _ := strings.Cut(rest, "/")
	if !ValidBackupID(id) {
		return "", UnknownBackupObject
	}
	switch {
	case name == manifestName:
		return id, BackupManifestObject
	case strings.HasPrefix(name, dataDir):
		return id, BackupChunkObject
	case strings.HasPrefix(name, notesDir):
		return id, BackupNoteObject
	case name == fileListName:
		return id, BackupFileListObject
	}
	return id, UnknownBackupObject
}

// BackupObjects lists every object under backups/ in key order, complete
// backups or not, each classified.
func (r *Repository) BackupObjects(ctx context.Context) ([]BackupObject, error) {
	var out []BackupObject
	err := r.store.List(ctx, BackupPrefix, func(oi storage.ObjectInfo) error {
		id, kind := parseBackupKey(oi.Key)
		out = append(out, BackupObject{ID: id, Kind: kind, Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	return out, nil
}

var errFound = errors.New("found")

// BackupIDUsed reports whether the repository holds any object of backup
// id (a chunk, a note or its manifest): a new backup must not reuse it.
// Errors are the store's.
func (r *Repository) BackupIDUsed(ctx context.Context, id string) (bool, error) {
	used := false
	err := r.store.List(ctx, BackupFolder(id), func(storage.ObjectInfo) error {
		used = true
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return false, err
	}
	return used, nil
}

// BackupStoredAt returns when backup id's manifest was stored: when the
// backup completed, on the store's clock.
func (r *Repository) BackupStoredAt(ctx context.Context, id string) (time.Time, error) {
	oi, err := r.store.Stat(ctx, BackupManifestKey(id))
	if err != nil {
		return time.Time{}, err
	}
	return oi.ModTime, nil
}

// AuditObjects lists the objects of the audit trail in key order, without
// reading them (AuditRecords reads them).
func (r *Repository) AuditObjects(ctx context.Context) ([]storage.ObjectInfo, error) {
	out, err := r.list(ctx, AuditPrefix)
	if err != nil {
		return nil, fmt.Errorf("list audit trail: %w", err)
	}
	return out, nil
}

// sealedPrefixes hold every sealed object: all but walvault.json and the
// locks.
var sealedPrefixes = []string{WALPrefix, BackupPrefix, StreamPrefix, AuditPrefix, FilestorePrefix, PackPrefix}

// SealedObjects lists every sealed object, known keys or not: WAL, backups,
// streamed partials, the audit trail, the Odoo filestore and block packs,
// in that order and each in key order. It is what rekey re-encrypts.
func (r *Repository) SealedObjects(ctx context.Context) ([]storage.ObjectInfo, error) {
	var out []storage.ObjectInfo
	for _, p := range sealedPrefixes {
		objs, err := r.list(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

func (r *Repository) list(ctx context.Context, prefix string) ([]storage.ObjectInfo, error) {
	var out []storage.ObjectInfo
	err := r.store.List(ctx, prefix, func(oi storage.ObjectInfo) error {
		out = append(out, oi)
		return nil
	})
	return out, err
}

// HasWAL reports whether the repository holds WAL file f. Errors are the
// store's (they name the key).
func (r *Repository) HasWAL(ctx context.Context, f pgwal.FileName) (bool, error) {
	return r.exists(ctx, WALKey(f))
}

// HasWALSegment reports whether the repository holds the full segment
// segno of timeline tli. Errors are the store's (they name the key).
func (r *Repository) HasWALSegment(ctx context.Context, tli uint32, segno uint64) (bool, error) {
	return r.exists(ctx, WALSegmentKey(tli, segno, r.Config.WALSegmentSize))
}

func (r *Repository) exists(ctx context.Context, key string) (bool, error) {
	_, err := r.store.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case storage.IsNotExist(err):
		return false, nil
	}
	return false, err
}

// Remove deletes the object under key. key must be one this package
// handed out in a listing (BackupObjects, ListWAL, AllStreamPartials,
// FilestoreObjects, FilestoreLog, …): callers that plan removals from
// listings, as retention does, hold keys but never build them. The error
// is the store's: storage.IsNotExist when the object is already gone, a
// *storage.RetainedError when S3 Object Lock still retains it.
func (r *Repository) Remove(ctx context.Context, key string) error {
	return r.store.Delete(ctx, key)
}
