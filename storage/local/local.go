package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walvault/walvault/storage"
)

const tmpDir = ".tmp"

// The modes of what a Store creates: private to the user (the default), or
// shared with the root directory's group. The modes are set explicitly,
// whatever the process's umask (services often run with 0077).
const (
	privateDirMode  fs.FileMode = 0o700
	privateFileMode fs.FileMode = 0o600
	sharedDirMode               = 0o770 | fs.ModeSetgid
	sharedFileMode  fs.FileMode = 0o640
)

// Store is a storage.Store on a directory. It is safe for concurrent use,
// also by several processes sharing the directory.
type Store struct {
	root     string // absolute, cleaned
	dirMode  fs.FileMode
	fileMode fs.FileMode
	clean    sync.Once
}

var _ storage.Store = (*Store)(nil)

// New opens the store rooted at dir, creating dir (mode 0700) and its
// temporary area if they do not exist. A relative dir is made absolute.
func New(dir string) (*Store, error) {
	s, err := Open(dir)
	if err != nil {
		return nil, err
	}
	if err := s.makeTmpDir(); err != nil {
		return nil, fmt.Errorf("local store %s: %w", s.root, err)
	}
	return s, nil
}

// Open opens the store rooted at dir without creating anything: a
// read-only command on a path that does not exist finds no objects (and
// leaves no directory behind), and the first Put creates dir and its
// temporary area. dir must be a directory if it exists.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("local store: empty directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	s := &Store{root: root, dirMode: privateDirMode, fileMode: privateFileMode}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("local store %s: %w", root, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("local store %s: not a directory", root)
	case SharedMode(fi.Mode()):
		s.dirMode, s.fileMode = sharedDirMode, sharedFileMode
	}
	return s, nil
}

// SharedMode reports whether a root directory of mode m asks for a store
// shared by the members of its group: set-group-ID (what is created below
// it takes its group, not the creator's) and writable by that group, as
// made by `install -d -m 2770 -g GROUP DIR`.
func SharedMode(m fs.FileMode) bool {
	return m.IsDir() && m&fs.ModeSetgid != 0 && m.Perm()&0o020 != 0
}

// Shared reports whether the store creates directories 2770 and files 0640
// (its root is set-group-ID and group-writable) rather than 0700 and 0600.
// It is decided when the store is opened.
func (s *Store) Shared() bool { return s.dirMode == sharedDirMode }

// String returns the store's file:// URL.
func (s *Store) String() string { return "file://" + filepath.ToSlash(s.root) }

// path checks key and returns its file name.
func (s *Store) path(key string) (string, error) {
	if !storage.ValidKey(key) {
		return "", fmt.Errorf("invalid key %q", key)
	}
	if key == tmpDir || strings.HasPrefix(key, tmpDir+"/") {
		return "", fmt.Errorf("invalid key %q: %s/ is reserved by the local store", key, tmpDir)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put stores body under key; see the package comment for how.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, opts storage.PutOptions) (err error) {
	dst, err := s.path(key)
	if err != nil {
		return fmt.Errorf("local put: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("local put %s: %w", key, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}

	s.clean.Do(s.removeDeadTemps)
	tmp, err := os.CreateTemp(filepath.Join(s.root, tmpDir), tmpPattern)
	if errors.Is(err, fs.ErrNotExist) {
		// The first write to a store opened without creating anything.
		if err := s.makeTmpDir(); err != nil {
			return err
		}
		tmp, err = os.CreateTemp(filepath.Join(s.root, tmpDir), tmpPattern)
	}
	if err != nil {
		return err
	}
	// Locked until closed: removeDeadTemps leaves it alone while we live.
	lockFile(tmp)
	tmpName := tmp.Name()
	committed := false
	defer func() {
		_ = tmp.Close()
		if !committed {
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(s.fileMode); err != nil {
		return err
	}
	if _, err := io.Copy(tmp, ctxReader{ctx: ctx, r: body}); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	// The temporary stays open, and so locked, until it is in place.

	dir := filepath.Dir(dst)
	if err := s.mkdirs(dir); err != nil {
		return err
	}
	// Last point at which a cancelled Put can still leave nothing behind.
	if err := ctx.Err(); err != nil {
		return err
	}
	if opts.IfAbsent {
		if err := os.Link(tmpName, dst); err != nil {
			if errors.Is(err, fs.ErrExist) {
				if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
					return conflict(key, err)
				}
				return fmt.Errorf("%w: %s", storage.ErrExist, s.String()+"/"+key)
			}
			return conflictOr(key, err)
		}
		committed = true
		// The object is in place; the temporary's name is garbage.
		_ = os.Remove(tmpName)
	} else {
		if err := os.Rename(tmpName, dst); err != nil {
			if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
				return conflict(key, err) // Linux says EEXIST or EISDIR
			}
			return conflictOr(key, err)
		}
		committed = true
	}
	if err := syncDir(dir); err != nil {
		// The object is visible but may not survive a crash; callers
		// must not rely on it, so report failure.
		return err
	}
	return nil
}

// tmpPattern names temporaries in ROOT/.tmp.
const tmpPattern = "put-*"

// deadTempAge is how old a temporary must be before it may be removed: it
// covers the moment between its creation and its lock (and, in a shared
// store, its mode).
const deadTempAge = time.Second

// removeDeadTemps removes the temporaries of Puts whose process died (a
// crash, kill -9) before they finished: those no process holds locked.
// Errors are ignored: a leftover only costs space, never correctness.
func (s *Store) removeDeadTemps() {
	dir := filepath.Join(s.root, tmpDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if ok, _ := filepath.Match(tmpDirPattern, e.Name()); ok && e.IsDir() {
			// A directory of a mkdir that died before its rename:
			// always empty, and renamed within moments when alive.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) >= deadTempAge {
				_ = os.Remove(p)
			}
			continue
		}
		if ok, _ := filepath.Match(tmpPattern, e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < deadTempAge {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			// In a shared store a Put gives its temporary to the group
			// right after creating it, as it locks it: one the group
			// still may not read, older than that moment, was left by
			// another member's writer that died in between.
			if s.Shared() && errors.Is(err, fs.ErrPermission) && fi.Mode().Perm()&0o040 == 0 {
				_ = os.Remove(p)
			}
			continue
		}
		if tryLockFile(f) {
			_ = os.Remove(p)
		}
		_ = f.Close()
	}
}

// mkdirs creates dir and any missing parents below the root, fsyncing the
// parent of every directory it creates so the new entries are durable.
func (s *Store) mkdirs(dir string) error {
	if dir == s.root {
		return nil
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	rel, err := filepath.Rel(s.root, dir)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := s.mkdirsOnce(rel)
		// A parent replaced by another Put while this one made its
		// child (only where RENAME_NOREPLACE is missing): again.
		if err == nil || attempt == 3 || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
}

func (s *Store) mkdirsOnce(rel string) error {
	p := s.root
	for seg := range strings.SplitSeq(rel, string(filepath.Separator)) {
		parent := p
		p = filepath.Join(p, seg)
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			continue
		}
		err := s.mkdir(p)
		switch {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			// Made by us earlier or by a concurrent Put. If it is a
			// file, the rename below reports the conflict.
		default:
			return conflictOr(rel, err)
		}
	}
	return nil
}

// tmpDirPattern names the directories mkdir prepares in ROOT/.tmp.
const tmpDirPattern = "dir-*"

// mkdir creates the directory p with the store's mode. mkdir(2) applies
// the umask, so the mode must be set afterwards; the directory is made in
// the temporary area, given its mode there and only then renamed into
// place, so that a process that dies between the two never leaves a
// directory of the wrong mode where objects go (in a shared store, one the
// other members could not write to). It returns an error satisfying
// errors.Is(err, fs.ErrExist) when a directory is already at p (one with
// entries, and, where the file system has RENAME_NOREPLACE, an empty one).
func (s *Store) mkdir(p string) (err error) {
	tmp, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), tmpDirPattern)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := os.Chmod(tmp, s.dirMode); err != nil {
		return err
	}
	if s.dirMode&fs.ModeSetgid != 0 {
		// The kernel silently drops set-group-ID when a user outside
		// the directory's group sets it; files made below would then
		// take that user's group, unreadable to the others.
		fi, err := os.Lstat(tmp)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSetgid == 0 {
			return fmt.Errorf("%s: could not make it set-group-ID: only members of the group of a shared repository's directory can write to it (add this user to the group, then restart its services)", p)
		}
	}
	// Never over an existing directory, even an empty one: another Put
	// that made it may be renaming its own child into it this very
	// moment, which would then land in a deleted directory (ENOENT).
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: mkdirs retries a
		// rename that lost that race.
		err = os.Rename(tmp, p)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%w: %s", fs.ErrExist, p)
		}
		return &os.LinkError{Op: "rename", Old: tmp, New: p, Err: err}
	}
	return nil
}

// makeTmpDir creates the temporary area, and the root (mode 0700, with any
// missing parents) if it does not exist yet. The temporary area cannot be
// prepared in itself as other directories are (see mkdir): made once, by
// the repository's first write, it is given its mode right after.
func (s *Store) makeTmpDir() error {
	if err := os.MkdirAll(s.root, privateDirMode); err != nil {
		return err
	}
	p := filepath.Join(s.root, tmpDir)
	if err := os.Mkdir(p, s.dirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chmod(p, s.dirMode)
}

// Get opens the object stored under key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	f, _, err := s.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("local get %s: %w", key, err)
	}
	return f, nil
}

// GetRange opens length bytes of the object starting at offset.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("local get %s: invalid range offset %d length %d", key, offset, length)
	}
	f, _, err := s.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("local get %s: %w", key, err)
	}
	return &sectionReadCloser{Reader: io.NewSectionReader(f, offset, length), f: f}, nil
}

type sectionReadCloser struct {
	io.Reader
	f *os.File
}

func (r *sectionReadCloser) Close() error { return r.f.Close() }

func (s *Store) open(ctx context.Context, key string) (*os.File, fs.FileInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, mapNotExist(err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, storage.ErrNotExist // a directory of other keys
	}
	return f, fi, nil
}

// Stat describes the object stored under key.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("local stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("local stat %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("local stat %s: %w", key, mapNotExist(err))
	}
	if !fi.Mode().IsRegular() {
		return storage.ObjectInfo{}, fmt.Errorf("local stat %s: %w", key, storage.ErrNotExist)
	}
	return storage.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the object stored under key and makes the removal durable.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return fmt.Errorf("local delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("local delete %s: %w", key, mapNotExist(err))
	}
	if fi.IsDir() {
		return fmt.Errorf("local delete %s: %w", key, storage.ErrNotExist)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("local delete %s: %w", key, mapNotExist(err))
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	return nil
}

// List calls fn for every object whose key starts with prefix, in lexical
// key order.
//
// Directory entries are read one directory at a time and sorted by the key
// prefix they stand for: a directory "a" stands for "a/", so it sorts after a
// file "a.b" ('.' < '/') and before "ab", which is the order of the keys below
// it. Only directories that can hold matching keys are read.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	// Start at the deepest directory the prefix names in full.
	startKey := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		startKey = prefix[:i+1]
	}
	if startKey != "" && !storage.ValidKey(strings.TrimSuffix(startKey, "/")) {
		return nil // no valid key can start with this prefix
	}
	if startKey == tmpDir+"/" || strings.HasPrefix(startKey, tmpDir+"/") {
		return nil // reserved; only temporaries live there
	}
	if err := s.walk(ctx, startKey, prefix, fn); err != nil {
		return fmt.Errorf("local list %q: %w", prefix, err)
	}
	return nil
}

type dirEntry struct {
	sortKey string // key of the file, or key prefix ("a/b/") of the directory
	isDir   bool
	entry   fs.DirEntry
}

// walk lists the directory holding the keys that start with dirKey (which is
// "" or ends in "/").
func (s *Store) walk(ctx context.Context, dirKey, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(s.root, filepath.FromSlash(dirKey))
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // nothing stored there (or removed while we walked)
		}
		return err
	}
	list := make([]dirEntry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if dirKey == "" && name == tmpDir {
			continue
		}
		k := dirKey + name
		switch {
		case e.IsDir():
			k += "/"
			// Descend only where matching keys can be.
			if !strings.HasPrefix(k, prefix) && !strings.HasPrefix(prefix, k) {
				continue
			}
			list = append(list, dirEntry{sortKey: k, isDir: true, entry: e})
		case e.Type().IsRegular():
			if strings.HasPrefix(k, prefix) && storage.ValidKey(k) {
				list = append(list, dirEntry{sortKey: k, entry: e})
			}
		}
	}
	slices.SortFunc(list, func(a, b dirEntry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, e := range list {
		if e.isDir {
			if err := s.walk(ctx, e.sortKey, prefix, fn); err != nil {
				return err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := e.entry.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while we listed
			}
			return err
		}
		if err := fn(storage.ObjectInfo{Key: e.sortKey, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// mapNotExist turns "no such file" into storage.ErrNotExist. ENOTDIR counts
// too: a path component being a file means no object can exist there. Every
// other error (permissions, I/O) is returned as it is.
func mapNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", storage.ErrNotExist, err)
	}
	return err
}

func conflictOr(key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
		return conflict(key, err)
	}
	return err
}

func conflict(key string, err error) error {
	return fmt.Errorf("key %q collides with a key or key prefix already stored (a local store cannot hold both \"x\" and \"x/...\"): %w", key, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return d.Close()
}

// ctxReader stops a copy as soon as ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
