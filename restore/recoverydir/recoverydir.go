// Package recoverydir writes and removes what PostgreSQL's recovery needs
// to reach a walvault repository: the settings restore_command reads and,
// when the server's user cannot read the operator's identity file, a copy
// of it. Both live in a directory outside the data directory, readable only
// by the server's user, so that nothing secret is ever inside PGDATA: not
// in the restored server (pg_read_file), not in its next base backup, not
// in a staging copy.
//
// Write makes the directory and returns the restore_command and the
// recovery_end_command to configure. The end command runs "walvault
// recovery-cleanup", which removes the directory (and the segments
// prefetched into pg_wal) once when recovery ends; an abandoned restore is
// cleaned by running the same command by hand. Clean removes only what
// Write made: a directory without its marker file is refused.
package recoverydir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Names inside the directory.
const (
	// ConfName is the settings file restore_command reads (--config).
	ConfName = "walvault-recovery.conf"
	// KeyName is the copy of the identity file.
	KeyName = "walvault-recovery.key"
	// MarkerName marks a directory Write made; Clean refuses others.
	MarkerName = ".walvault-recovery"
	// Suffix is added to the data directory's path to name the default
	// directory beside it.
	Suffix = ".walvault-recovery"
	// PrefetchDir is where wal-fetch keeps segments it fetched ahead,
	// inside pg_wal (a rename away from where PostgreSQL wants them).
	PrefetchDir = ".walvault-prefetch"
)

// DefaultDir is the directory beside pgdata: /var/lib/postgresql/15/main
// gets /var/lib/postgresql/15/main.walvault-recovery.
func DefaultDir(pgdata string) string {
	return filepath.Clean(pgdata) + Suffix
}

// Settings are the repository settings restore_command needs, written as
// a walvault config file. Empty values are left out.
type Settings struct {
	Repo, S3Endpoint, S3Region string
	S3PathStyle                bool
	// IdentityFile is the identity restore_command reads: the operator's
	// own file (absolute), or "" when Options.IdentityKey is a copy.
	IdentityFile string
	// S3 credentials, written only when the operator asked for a copy.
	S3AccessKey, S3SecretKey, S3SessionToken string
	// Include is a config file read after these settings (absolute): the
	// operator's own, where its S3 credentials already are.
	Include   string
	LogFormat string
}

// Options configure Write.
type Options struct {
	// Dir is the directory to make; it must not be inside PGData.
	Dir string
	// PGData is the data directory recovery runs in.
	PGData string
	// Exe is the walvault program restore_command runs.
	Exe      string
	Settings Settings
	// IdentityKey, when not nil, is written to Dir/KeyName and used as
	// the identity (the operator's file is one the server cannot read).
	IdentityKey []byte
	// Chown gives the directory and its files to UID:GID (when running as
	// root for a server that runs as another user).
	Chown    bool
	UID, GID int
	// Now is the clock for the file's header (default time.Now).
	Now func() time.Time
}

// Recovery is what Write made.
type Recovery struct {
	Dir      string
	ConfPath string
	// KeyPath is the identity copy, "" when none was written.
	KeyPath string
	// RestoreCommand and EndCommand are the values for restore_command and
	// recovery_end_command, '%' already escaped where it is not one of
	// PostgreSQL's placeholders.
	RestoreCommand, EndCommand string
}

// Write makes the recovery directory and returns the commands that use it.
// An existing directory Write made before (a restore run again) is reused
// after its files are removed; any other existing directory that is not
// empty is refused.
func Write(opts Options) (*Recovery, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dir, pgdata := filepath.Clean(opts.Dir), filepath.Clean(opts.PGData)
	if !filepath.IsAbs(dir) || !filepath.IsAbs(pgdata) {
		return nil, fmt.Errorf("recovery directory %q and data directory %q must be absolute", opts.Dir, opts.PGData)
	}
	if within(dir, pgdata) || within(pgdata, dir) {
		return nil, fmt.Errorf("recovery directory %s must be outside the data directory %s (anything in it is copied by the next base backup and readable with pg_read_file)", dir, pgdata)
	}
	conf, err := formatSettings(opts.Settings, dir, opts.IdentityKey != nil, opts.Now())
	if err != nil {
		return nil, err
	}
	if err := prepare(dir); err != nil {
		return nil, err
	}
	if opts.Chown {
		if err := os.Lchown(dir, opts.UID, opts.GID); err != nil {
			return nil, fmt.Errorf("recovery directory %s: %w", dir, err)
		}
	}
	rec := &Recovery{Dir: dir, ConfPath: filepath.Join(dir, ConfName)}
	files := []struct {
		name string
		data []byte
	}{
		{MarkerName, []byte("made by walvault restore for the recovery of " + pgdata + "; walvault recovery-cleanup removes it\n")},
		{ConfName, conf},
	}
	if opts.IdentityKey != nil {
		rec.KeyPath = filepath.Join(dir, KeyName)
		files = append(files, struct {
			name string
			data []byte
		}{KeyName, opts.IdentityKey})
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.data, opts); err != nil {
			return nil, err
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	rec.RestoreCommand, rec.EndCommand = Commands(opts.Exe, dir, pgdata)
	return rec, nil
}

// Commands returns restore_command and recovery_end_command for the
// recovery directory dir of pgdata.
func Commands(exe, dir, pgdata string) (restore, end string) {
	restore = fmt.Sprintf("%s wal-fetch --config %s %%f %%p", Arg(exe), Arg(filepath.Join(dir, ConfName)))
	end = fmt.Sprintf("%s recovery-cleanup --at-recovery-end --recovery-dir %s --pgdata %s", Arg(exe), Arg(dir), Arg(pgdata))
	return restore, end
}

// Arg quotes s for the shell that runs restore_command and escapes '%',
// which PostgreSQL would otherwise take for a placeholder (%f, %p, %r).
func Arg(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	return strings.ReplaceAll(q, "%", "%%")
}

// formatSettings renders the config file restore_command reads.
func formatSettings(s Settings, dir string, keyCopy bool, now time.Time) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by walvault restore at %s for restore_command;\n# removed when recovery ends (walvault recovery-cleanup)\n", now.UTC().Format(time.RFC3339))
	var bad error
	put := func(k, v string) {
		if v == "" || bad != nil {
			return
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			bad = fmt.Errorf("setting %s: a value with a line break or NUL cannot be written to the recovery settings", k)
			return
		}
		fmt.Fprintf(&b, "%s = '%s'\n", k, v)
	}
	put("repo", s.Repo)
	put("s3-endpoint", s.S3Endpoint)
	put("s3-region", s.S3Region)
	if s.S3PathStyle {
		put("s3-path-style", "true")
	}
	if keyCopy {
		put("age-identity-file", filepath.Join(dir, KeyName))
	} else {
		put("age-identity-file", s.IdentityFile)
	}
	put("s3-access-key", s.S3AccessKey)
	put("s3-secret-key", s.S3SecretKey)
	put("s3-session-token", s.S3SessionToken)
	put("log-format", s.LogFormat)
	// Last: the settings above win over the included file's.
	put("include", s.Include)
	return []byte(b.String()), bad
}

// prepare makes dir (0700) or empties one Write made before.
func prepare(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("create the recovery directory: %w (choose another place with --recovery-dir)", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("recovery directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("recovery directory %s exists and is not a directory (a symbolic link is refused too); remove it or choose another with --recovery-dir", dir)
	}
	if _, err := Clean(dir, ""); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create the recovery directory: %w", err)
	}
	return os.Chmod(dir, 0o700)
}

// writeFile creates path (0600), never through an existing file or link.
func writeFile(path string, data []byte, opts Options) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if opts.Chown {
		if err := f.Chown(opts.UID, opts.GID); err != nil {
			f.Close()
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// legacyNames are what walvault restore wrote into the data directory
// before this package existed; Clean removes them too.
var legacyNames = []string{ConfName, KeyName}

// Clean removes the recovery directory dir that Write made, and, when
// pgdata is not empty, the segments prefetched into pgdata/pg_wal and the
// files older walvault versions wrote into pgdata. It returns what it
// removed. A missing dir is not an error; a dir without the marker file,
// or holding files Write did not make, is refused and left alone.
func Clean(dir, pgdata string) (removed []string, err error) {
	if dir != "" {
		removed, err = cleanDir(filepath.Clean(dir))
		if err != nil {
			return removed, err
		}
	}
	if pgdata == "" {
		return removed, nil
	}
	pgdata = filepath.Clean(pgdata)
	prefetch := filepath.Join(pgdata, "pg_wal", PrefetchDir)
	if _, err := os.Lstat(prefetch); err == nil {
		// A prefetcher still running may add a file while this removes
		// them: try a few times.
		for i := 0; ; i++ {
			err = os.RemoveAll(prefetch)
			if err == nil || i == 4 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return removed, fmt.Errorf("remove %s: %w", prefetch, err)
		}
		removed = append(removed, prefetch)
	}
	for _, name := range legacyNames {
		p := filepath.Join(pgdata, name)
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return removed, nil
}

func cleanDir(dir string) ([]string, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: not a walvault recovery directory, left alone", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	known := map[string]bool{MarkerName: true, ConfName: true, KeyName: true}
	marked := false
	var foreign []string
	for _, e := range ents {
		switch {
		case e.Name() == MarkerName:
			marked = true
		case !known[e.Name()]:
			foreign = append(foreign, e.Name())
		}
	}
	if len(ents) == 0 {
		if err := os.Remove(dir); err != nil {
			return nil, fmt.Errorf("remove %s: %w", dir, err)
		}
		return []string{dir}, nil
	}
	if !marked {
		return nil, fmt.Errorf("%s has no %s file: it is not a recovery directory walvault made, left alone", dir, MarkerName)
	}
	if len(foreign) > 0 {
		return nil, fmt.Errorf("%s holds files walvault did not write (%s): left alone; remove them first", dir, strings.Join(foreign, ", "))
	}
	var removed []string
	// The marker last: an interrupted clean can be run again.
	for _, name := range []string{KeyName, ConfName, MarkerName} {
		p := filepath.Join(dir, name)
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove %s: %w", p, err)
		}
	}
	if err := os.Remove(dir); err != nil {
		// The files (the secrets) are gone; the empty directory may stay
		// when its parent is not the server user's to change.
		return removed, fmt.Errorf("the files are removed, but not the empty directory %s: %w", dir, err)
	}
	return append(removed, dir), nil
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
