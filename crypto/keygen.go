package crypto

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
)

// Keygen creates a new X25519 identity in a new file at path and returns its
// recipient ("age1…"). The file is created with O_EXCL and mode 0600 (an
// existing file is never overwritten), holds what age-keygen writes:
//
//	# created: <now, RFC 3339>
//	# public key: age1…
//	AGE-SECRET-KEY-1…
//
// and is fsynced together with its directory before Keygen returns. On any
// error after creation the file is removed again.
func Keygen(path string, now time.Time) (recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", fmt.Errorf("keygen: generate identity: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("keygen: %s already exists; refusing to overwrite it", path)
		}
		return "", fmt.Errorf("keygen: create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	// The mode passed to OpenFile is reduced by the umask but never widened;
	// set it explicitly so a permissive umask cannot matter either way.
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("keygen: chmod %s: %w", path, err)
	}
	rec := id.Recipient().String()
	content := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", now.Format(time.RFC3339), rec, id.String())
	if _, err := f.WriteString(content); err != nil {
		return "", fmt.Errorf("keygen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("keygen: fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("keygen: close %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("keygen: %w", err)
	}
	return rec, nil
}

// syncDir fsyncs a directory so a newly created entry in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
