package repo

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
)

// BackupManifest describes one complete base backup. It is stored, sealed
// like every other object, under BackupManifestKey(ID), and written only
// after every chunk is stored and every WAL segment from StartLSN to StopLSN
// is in the repository: its presence is what makes a backup usable.
type BackupManifest struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	Label  string `json:"label,omitempty"`
	// StartTime is the server's clock at backup start (START TIME of
	// backup_label, taken after the start checkpoint, whole seconds).
	// StopTime is on the server's clock too, never earlier than the true
	// end of the backup (its consistent point) and, when StopTimeSource is
	// StopTimeFromHistory, at most a second later: see StopTimeSource.
	StartTime time.Time `json:"start_time"`
	StopTime  time.Time `json:"stop_time"`
	// StopTimeSource says where StopTime comes from: StopTimeFromHistory
	// or StopTimeEstimated; "" in manifests written before walvault
	// recorded it, whose StopTime is an estimate that also counts the
	// start checkpoint (minutes late without --fast). Readers correct
	// those on load (see UseBackupHistory).
	StopTimeSource string `json:"stop_time_source,omitempty"`
	// ServerStopTime is STOP TIME of the server's backup history file
	// (whole seconds), when known: the true end lies in
	// [ServerStopTime, ServerStopTime+1s).
	ServerStopTime *time.Time `json:"server_stop_time,omitempty"`
	// LogTimezone is the server's log_timezone at backup time, the zone
	// of the times in backup_label and the backup history file.
	LogTimezone string    `json:"log_timezone,omitempty"`
	StartLSN    pgwal.LSN `json:"start_lsn"`
	StopLSN     pgwal.LSN `json:"stop_lsn"`
	Timeline    uint32    `json:"timeline"`
	// SystemIdentifier as a decimal string (see Config).
	SystemIdentifier string `json:"system_identifier"`
	PGVersionNum     int    `json:"pg_version_num"`
	WALSegmentSize   int64  `json:"wal_segment_size"`
	// Bytes and StoredBytes sum all chunks (plaintext and stored).
	Bytes       int64     `json:"bytes"`
	StoredBytes int64     `json:"stored_bytes"`
	Archives    []Archive `json:"archives"`
	// FileList and Blocks are set for a block backup (repo/blocks.go):
	// its file list object, and what it stored and shared.
	FileList *Chunk      `json:"file_list,omitempty"`
	Blocks   *BlockStats `json:"blocks,omitempty"`
	Host     string      `json:"host,omitempty"`
	Version  string      `json:"walvault_version,omitempty"`
}

// Archive is one tar stream of a backup, in the order the server sent it:
// "base.tar" (the data directory), "<oid>.tar" per tablespace, and
// "backup_manifest" (the server's manifest, not a tar).
type Archive struct {
	Name           string  `json:"name"`
	TablespaceOID  uint32  `json:"tablespace_oid,omitempty"`
	TablespacePath string  `json:"tablespace_path,omitempty"`
	Bytes          int64   `json:"bytes"`
	Chunks         []Chunk `json:"chunks"`
	// Layout is "" for an archive stored as chunks, ArchiveBlocks for
	// one whose members are in the backup's file list.
	Layout string `json:"layout,omitempty"`
}

// Chunk is one object holding a piece of an archive's byte stream.
type Chunk struct {
	Key        string `json:"key"`
	Size       int64  `json:"size"`
	StoredSize int64  `json:"stored_size"`
	SHA256     string `json:"sha256"`
}

// ServerManifestArchive is the name of the archive holding the server's
// backup_manifest.
const ServerManifestArchive = "backup_manifest"

// PutBackupManifest stores m. It refuses to replace an existing manifest
// (an error for which storage.IsExist is true), unless the stored one is m
// itself: a Put whose answer was lost and that was retried finds its own
// manifest, and the backup is complete.
func (r *Repository) PutBackupManifest(ctx context.Context, m *BackupManifest) error {
	m.Format = r.Config.Format
	if !ValidBackupID(m.ID) {
		return fmt.Errorf("invalid backup id %q", m.ID)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	key := BackupManifestKey(m.ID)
	_, err = r.Put(ctx, key, data, storage.PutOptions{IfAbsent: true})
	if !storage.IsExist(err) {
		return err
	}
	h, herr := r.Header(ctx, key)
	if herr != nil {
		return fmt.Errorf("%w; reading the stored one: %v", err, herr)
	}
	if h.PlainSize == int64(len(data)) && h.SHA256 == sha256.Sum256(data) {
		return nil
	}
	return fmt.Errorf("backup %s already has a different manifest: %w", m.ID, err)
}

// BackupManifest reads one backup's manifest.
func (r *Repository) BackupManifest(ctx context.Context, id string) (*BackupManifest, error) {
	if !ValidBackupID(id) {
		return nil, fmt.Errorf("backup id %q is not of the form 20060102T150405Z", id)
	}
	data, _, err := r.Get(ctx, BackupManifestKey(id))
	if err != nil {
		return nil, err
	}
	return parseManifest(id, data)
}

func parseManifest(id string, data []byte) (*BackupManifest, error) {
	var m BackupManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest of backup %s: %v", ErrIntegrity, id, err)
	}
	if m.Format > FormatVersion {
		return nil, fmt.Errorf("%w: backup %s has manifest format %d, newer than this walvault reads (%d)", ErrUnsupportedFormat, id, m.Format, FormatVersion)
	}
	if m.Format < 1 || m.ID != id {
		return nil, fmt.Errorf("%w: manifest of backup %s is inconsistent (format %d, id %q)", ErrIntegrity, id, m.Format, m.ID)
	}
	return &m, nil
}

// BackupIDs lists the ids of complete backups (those with a manifest),
// oldest first, without reading the manifests.
func (r *Repository) BackupIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.store.List(ctx, BackupPrefix, func(oi storage.ObjectInfo) error {
		if id, kind := parseBackupKey(oi.Key); kind == BackupManifestObject {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	sort.Strings(ids)
	return ids, nil
}

// Backups reads every complete backup's manifest, oldest first.
func (r *Repository) Backups(ctx context.Context) ([]*BackupManifest, error) {
	ids, err := r.BackupIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*BackupManifest, 0, len(ids))
	for _, id := range ids {
		m, err := r.BackupManifest(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartLSN < out[j].StartLSN })
	return out, nil
}

// WALObject is a WAL file held by the repository.
type WALObject struct {
	File    pgwal.FileName
	Key     string
	Size    int64
	ModTime time.Time
}

// ListWAL lists the WAL files the repository holds, of every timeline, in
// key order. Objects under wal/ whose keys are not WAL files of this
// format are returned apart, as unknown.
func (r *Repository) ListWAL(ctx context.Context) (wal []WALObject, unknown []UnknownObject, err error) {
	err = r.store.List(ctx, WALPrefix, func(oi storage.ObjectInfo) error {
		f, err := ParseWALKey(oi.Key)
		if err != nil {
			if _, _, aerr := ParseWALAltKey(oi.Key); aerr == nil {
				err = ErrWALAlternate
			}
			unknown = append(unknown, UnknownObject{Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime, Err: err})
			return nil
		}
		wal = append(wal, WALObject{File: f, Key: oi.Key, Size: oi.Size, ModTime: oi.ModTime})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list WAL: %w", err)
	}
	return wal, unknown, nil
}
