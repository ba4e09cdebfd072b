package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/walvault/walvault/storage"
)

// Pins protect the blocks a running block backup relies on from expire's
// sweep of unreferenced packs. A backup stores its pin, pins/<backup id>,
// before it reads the previous backup's file list, and removes it once its
// own manifest is stored. The sweep keeps every pack of a backup at least
// as new as the oldest live pin, and every pack the file list a pin names
// as its base references. A pin older than PinLease is stale (its backup
// died): it protects nothing.

// PinPrefix holds the pins.
const PinPrefix = "pins/"

// PinLease is how long a pin protects: longer than any backup runs.
const PinLease = 24 * time.Hour

// Pin is a running block backup's claim.
type Pin struct {
	Backup  string    `json:"backup"`
	Base    string    `json:"base,omitempty"` // the backup it deduplicates against
	Created time.Time `json:"created"`
}

// PinKey is the key of backup id's pin.
func PinKey(id string) string { return PinPrefix + id }

// PutPin stores p (a short-lived object, never under retention).
func (r *Repository) PutPin(ctx context.Context, p Pin) error {
	if !ValidBackupID(p.Backup) || (p.Base != "" && !ValidBackupID(p.Base)) {
		return fmt.Errorf("invalid pin %+v", p)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = r.Put(ctx, PinKey(p.Backup), data, storage.PutOptions{Temporary: true})
	return err
}

// RemovePin removes backup id's pin (gone already is no error).
func (r *Repository) RemovePin(ctx context.Context, id string) error {
	err := r.store.Delete(ctx, PinKey(id))
	if storage.IsNotExist(err) {
		return nil
	}
	return err
}

// Pins reads every pin. A pin that cannot be read is an error: the sweep
// must not guess what it protects.
func (r *Repository) Pins(ctx context.Context) ([]Pin, error) {
	var keys []string
	if err := r.store.List(ctx, PinPrefix, func(oi storage.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	var out []Pin
	for _, k := range keys {
		data, _, err := r.Get(ctx, k)
		if storage.IsNotExist(err) {
			continue // its backup finished meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("pin %s: %w", k, err)
		}
		var p Pin
		if err := json.Unmarshal(data, &p); err != nil || PinKey(p.Backup) != k || (p.Base != "" && !ValidBackupID(p.Base)) {
			return nil, fmt.Errorf("%w: pin %s is not a pin of this format", ErrIntegrity, k)
		}
		out = append(out, p)
	}
	return out, nil
}

// PackObject is a pack held by the repository.
type PackObject struct {
	Key     string
	Backup  string // the backup that wrote it
	Size    int64
	ModTime time.Time
}

// Packs lists every pack; objects under packs/ that are not packs of this
// format are returned apart.
func (r *Repository) Packs(ctx context.Context) (packs []PackObject, unknown []UnknownObject, err error) {
	err = r.store.List(ctx, PackPrefix, func(oi storage.ObjectInfo) error {
		id, _, perr := ParsePackKey(oi.Key)
		if perr != nil {
			unknown = append(unknown, UnknownObject{Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime, Err: perr})
			return nil
		}
		packs = append(packs, PackObject{Key: oi.Key, Backup: id, Size: oi.Size, ModTime: oi.ModTime})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list packs: %w", err)
	}
	return packs, unknown, nil
}

// FileListIDs lists the backups that have a file list (complete or not).
func (r *Repository) FileListIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.store.List(ctx, BackupPrefix, func(oi storage.ObjectInfo) error {
		if id, kind := parseBackupKey(oi.Key); kind == BackupFileListObject {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list file lists: %w", err)
	}
	return ids, nil
}

// IsPackKey reports whether key is under packs/.
func IsPackKey(key string) bool { return strings.HasPrefix(key, PackPrefix) }
