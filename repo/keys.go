package repo

import (
	"fmt"
	"strings"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
)

// Key prefixes of the format.
const (
	WALPrefix    = "wal/"
	BackupPrefix = "backups/"
	manifestName = "backup.json"
	dataDir      = "data/"
)

// WALKey is the key of a WAL file (segment, .history, .partial or .backup):
// wal/<timeline as 8 hex digits>/<file name>.
func WALKey(f pgwal.FileName) string {
	return fmt.Sprintf("%s%08X/%s", WALPrefix, f.Timeline, f.Name)
}

// WALSegmentKey is the key of a full WAL segment.
func WALSegmentKey(tli uint32, segno uint64, segSize int64) string {
	return fmt.Sprintf("%s%08X/%s", WALPrefix, tli, pgwal.SegmentName(tli, segno, segSize))
}

// ParseWALKey returns the WAL file a key names, checking that the key's
// timeline folder agrees with the file name.
func ParseWALKey(key string) (pgwal.FileName, error) { return parseTimelineKey(key, WALPrefix) }

// parseTimelineKey parses prefix + <TTTTTTTT>/<WAL file name>, checking
// that the folder is the file's own timeline.
func parseTimelineKey(key, prefix string) (pgwal.FileName, error) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return pgwal.FileName{}, fmt.Errorf("key %q is not under %s", key, prefix)
	}
	dir, name, ok := strings.Cut(rest, "/")
	if !ok {
		return pgwal.FileName{}, fmt.Errorf("key %q has no timeline folder", key)
	}
	f, err := pgwal.ParseFileName(name)
	if err != nil {
		return f, err
	}
	if dir != fmt.Sprintf("%08X", f.Timeline) {
		return f, fmt.Errorf("key %q: file is on timeline %d but stored under %s", key, f.Timeline, dir)
	}
	return f, nil
}

// BackupIDLayout is the time layout of backup ids.
const BackupIDLayout = "20060102T150405Z"

// NewBackupID names a backup by its start time in UTC, e.g. 20261123T225700Z.
func NewBackupID(t time.Time) string { return t.UTC().Format(BackupIDLayout) }

// ValidBackupID reports whether id has the form NewBackupID produces.
func ValidBackupID(id string) bool {
	_, err := time.Parse(BackupIDLayout, id)
	return err == nil
}

// BackupStart returns the start time backup id names.
func BackupStart(id string) (time.Time, error) { return time.Parse(BackupIDLayout, id) }

// BackupFolder is the prefix of every key of backup id, backups/<id>/:
// reports name a backup's objects by it.
func BackupFolder(id string) string { return BackupPrefix + id + "/" }

// IsBackupKey reports whether key is one of backup id's objects.
func IsBackupKey(id, key string) bool { return strings.HasPrefix(key, BackupFolder(id)) }

// BackupArchiveFolder is the prefix of the chunk keys of one tar stream of
// a backup, backups/<id>/data/<archive>/: reports name an archive by it.
func BackupArchiveFolder(id, archive string) string {
	return BackupFolder(id) + dataDir + archive + "/"
}

// BackupChunkKey is the key of chunk seq of one tar stream of a backup.
func BackupChunkKey(id, archive string, seq int) string {
	return fmt.Sprintf("%s%08d", BackupArchiveFolder(id, archive), seq)
}

// BackupManifestKey is the key of a backup's manifest.
func BackupManifestKey(id string) string { return BackupFolder(id) + manifestName }
