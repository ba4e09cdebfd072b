package crypto

import (
	"errors"
	"fmt"
	"os"
	"time"

	"filippo.io/age"
)

// Keygen creates a new X25519 identity and a new repository root key in a
// new file at path, and returns the recipient ("age1…") and the root's
// public key ("wvroot1…"). The file is created with O_EXCL and mode 0600
// (an existing file is never overwritten), holds what age-keygen writes
// plus the root key as a comment line, which age itself ignores:
//
//	# created: <now, RFC 3339>
//	# public key: age1…
//	# walvault root: wvroot1…
//	# walvault-root-key: WALVAULT-ROOT-KEY-1…
//	AGE-SECRET-KEY-1…
//
// and is fsynced together with its directory before Keygen returns. On any
// error after creation the file is removed again.
func Keygen(path string, now time.Time) (recipient string, root RootPublicKey, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", root, fmt.Errorf("keygen: generate identity: %w", err)
	}
	rk, err := GenerateRootKey()
	if err != nil {
		return "", root, fmt.Errorf("keygen: generate root key: %w", err)
	}
	rec := id.Recipient().String()
	content := fmt.Sprintf("# created: %s\n# public key: %s\n# walvault root: %s\n%s%s\n%s\n",
		now.Format(time.RFC3339), rec, rk.Public(), rootKeyComment, rk, id.String())
	if err := writeNewFile(path, []byte(content)); err != nil {
		return "", root, fmt.Errorf("keygen: %w", err)
	}
	return rec, rk.Public(), nil
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
