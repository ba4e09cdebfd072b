package pitr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A backup's manifest names where each tablespace lived, and whoever can
// write the repository can write a manifest (issue 14: a forged one named
// a system directory, and restore, as root, created it, gave it to
// postgres and filled it). So a location is the operator's only when the
// operator names it (Options.TablespaceMap): such a directory may be
// created, and cleared with ClearTablespaces. A location only the backup
// names (a "named" destination) is used as it stands, and only when it
//
//   - lies outside SystemDirs,
//   - exists as a directory reached without any symbolic link (every
//     component of the path is opened with O_NOFOLLOW, and the directory
//     the files go into is checked to be the one opened so),
//   - and, when Run runs as root, already belongs to Options.Owner (as a
//     tablespace directory must: PostgreSQL's CREATE TABLESPACE demands it),
//
// and, as before, is empty. Anything else is ErrTablespaceLocation, whose
// message names the location and how to map it.

// SystemDirs are the directories where a tablespace location named only
// by a backup is never restored: "/" itself, and each of these with
// everything below it (configuration, programs, libraries, kernel and
// runtime state, service and job definitions, root's home). Mapping a
// tablespace there with --tablespace-map is the operator's decision and is
// not checked. Read-only.
var SystemDirs = [...]string{
	"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/boot", "/dev", "/proc", "/sys", "/run", "/var/run", "/var/lock",
	"/var/spool", "/root",
}

// systemDir returns the entry of SystemDirs that dir (absolute, clean) is
// or lies in, "/" for the root itself, or "".
func systemDir(dir string) string {
	if dir == "/" {
		return "/"
	}
	for _, s := range SystemDirs {
		if within(dir, s) {
			return s
		}
	}
	return ""
}

// named reports whether d is a tablespace restored where the backup alone
// says (not mapped by the operator, not inside the data directory).
func (d destination) named() bool {
	return d.archive != nil && d.archive.TablespacePath != "" && !d.mapped && !d.inPlace
}

// checkNamedLocation applies the rules above to a named destination.
// owner, uid: the account the files will belong to when chown (root).
func checkNamedLocation(d destination, chown bool, owner string, uid int) error {
	a := d.archive
	mapIt := fmt.Sprintf("restore it elsewhere with --tablespace-map %s=NEWDIR (walvault creates NEWDIR, yours to choose)", a.TablespacePath)
	if sys := systemDir(d.dir); sys != "" {
		return fmt.Errorf("%w: the backup puts tablespace %s at %s, inside the system directory %s, where walvault never restores a tablespace the backup alone names; %s",
			ErrTablespaceLocation, a.Name, d.dir, sys, mapIt)
	}
	f, err := openDirNoFollow(d.dir)
	if err != nil {
		var le *locationError
		switch {
		case errors.As(err, &le) && errors.Is(le.err, fs.ErrNotExist):
			return fmt.Errorf("%w: the backup puts tablespace %s at %s, which does not exist (%s is missing): walvault creates only directories you name; %s, or create %s (empty, owned by %s, mode 0700) and restore again",
				ErrTablespaceLocation, a.Name, d.dir, le.path, mapIt, d.dir, owner)
		case errors.As(err, &le) && le.link:
			return fmt.Errorf("%w: the backup puts tablespace %s at %s, but %s is a symbolic link, which walvault does not follow into a location the backup names; %s (the real directory, if it is meant for this tablespace)",
				ErrTablespaceLocation, a.Name, d.dir, le.path, mapIt)
		case errors.As(err, &le) && le.notDir:
			return fmt.Errorf("%w: the backup puts tablespace %s at %s, but %s is not a directory; %s",
				ErrTablespaceLocation, a.Name, d.dir, le.path, mapIt)
		}
		return fsErr("open", d.dir, err)
	}
	defer f.Close()
	if !chown {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fsErr("inspect", d.dir, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
		return fmt.Errorf("%w: the backup puts tablespace %s at %s, which belongs to uid %d, not to %s: walvault, run as root, restores a tablespace the backup alone names only into a directory prepared for the server's account; if %s is meant for it, chown %s %s and restore again, or %s",
			ErrTablespaceLocation, a.Name, d.dir, st.Uid, owner, d.dir, owner, d.dir, mapIt)
	}
	return nil
}

// locationError says which component of a path stopped openDirNoFollow.
type locationError struct {
	path   string
	link   bool // path is a symbolic link
	notDir bool // path is something else that is not a directory
	err    error
}

func (e *locationError) Error() string { return e.path + ": " + e.err.Error() }
func (e *locationError) Unwrap() error { return e.err }

// openDirNoFollow opens the absolute directory dir, component by component
// from "/", following no symbolic link anywhere in the path. The result is
// an O_PATH handle: it identifies the directory (Stat), nothing more.
func openDirNoFollow(dir string) (*os.File, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%s is not an absolute path", dir)
	}
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open("/", flags, 0)
	if err != nil {
		return nil, &locationError{path: "/", err: err}
	}
	p := "/"
	for _, c := range strings.Split(filepath.Clean(dir), "/") {
		if c == "" {
			continue
		}
		p = filepath.Join(p, c)
		next, err := unix.Openat(fd, c, flags, 0)
		if err != nil {
			le := &locationError{path: p, err: err}
			var st unix.Stat_t
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				if unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
					le.link = st.Mode&unix.S_IFMT == unix.S_IFLNK
					le.notDir = !le.link && st.Mode&unix.S_IFMT != unix.S_IFDIR
				}
			}
			unix.Close(fd)
			return nil, le
		}
		unix.Close(fd)
		fd = next
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// openTarget opens the directory d is restored into. A named location is
// opened as openDirNoFollow allows and the Root checked to be that very
// directory, so that a symbolic link put in its place after the checks
// (by a local account that owns its parent) is never followed.
func openTarget(d destination) (*os.Root, error) {
	root, err := os.OpenRoot(d.dir)
	if err != nil {
		return nil, fsErr("open", d.dir, err)
	}
	if !d.named() {
		return root, nil
	}
	f, err := openDirNoFollow(d.dir)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("%w: tablespace %s at %s: %v", ErrTablespaceLocation, d.archive.Name, d.dir, err)
	}
	defer f.Close()
	want, err1 := f.Stat()
	got, err2 := root.Stat(".")
	if err1 != nil || err2 != nil || !os.SameFile(want, got) {
		root.Close()
		return nil, fmt.Errorf("%w: tablespace %s: %s changed while it was being restored (replaced by a symbolic link?): not written through", ErrTablespaceLocation, d.archive.Name, d.dir)
	}
	return root, nil
}
