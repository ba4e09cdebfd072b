package pitr

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/walvault/walvault/repo"
)

// extractor unpacks one tar stream into a directory. It trusts nothing in
// the stream: every name must be relative and stay inside the directory,
// nothing is written through a symbolic link, and symbolic links may only
// point inside the directory (see checkLinkTarget). All writes go through an
// os.Root as a second line of defence.
type extractor struct {
	root *os.Root
	dir  string // the directory root is opened on, for messages
	// skip returns true for entries that must not be restored.
	skip func(name string, hdr *tar.Header) bool

	buf      []byte
	symlinks map[string]bool        // symbolic links created
	dirs     map[string]bool        // directories known to exist
	dirModes map[string]os.FileMode // modes to give directories at the end
	seen     map[string]bool        // regular files written
	// subDirs holds each directory files were written to, opened once
	// through root: creating a file in it is one openat on its
	// descriptor, where a path from the top costs an openat and a close
	// per component (a restore writes thousands of files, and system
	// calls are dear on virtual machines).
	subDirs map[string]*os.File
	// flush starts the writeback of written files and closes them (see
	// write.go); made by extract.
	flush *flusher

	files int
	bytes int64
}

func newExtractor(root *os.Root, dir string) *extractor {
	return &extractor{
		root: root, dir: dir,
		symlinks: make(map[string]bool),
		dirs:     map[string]bool{".": true},
		dirModes: make(map[string]os.FileMode),
		seen:     make(map[string]bool),
		subDirs:  make(map[string]*os.File),
	}
}

// maxSubDirs bounds the directories kept open at once.
const maxSubDirs = 128

// dirFD returns a descriptor of dir (slash-separated, inside x.root),
// opened once. Opening it walks dir inside x.root, which refuses symbolic
// links leading out; entries are never created inside a link
// (checkParents).
func (x *extractor) dirFD(dir string) (int, error) {
	if d, ok := x.subDirs[dir]; ok {
		return int(d.Fd()), nil
	}
	if len(x.subDirs) >= maxSubDirs {
		x.closeSubDirs()
	}
	d, err := x.root.Open(dir)
	if err != nil {
		return -1, err
	}
	x.subDirs[dir] = d
	return int(d.Fd()), nil
}

func (x *extractor) closeSubDirs() {
	for n, d := range x.subDirs {
		d.Close()
		delete(x.subDirs, n)
	}
}

// errBadTar marks a tar stream that is malformed or hostile; such an error
// is an integrity failure of the backup.
var errBadTar = errors.New("unsafe or malformed tar entry")

// extract unpacks the tar stream r.
func (x *extractor) extract(r io.Reader) (err error) {
	// Opened before the first write: syncfs on it reports every
	// writeback error of the file system since it was opened, and the
	// writeback of the files starts while they are written (flusher),
	// before a descriptor opened at the end would be.
	syncf, err := x.root.Open(".")
	if err != nil {
		return x.fsErr("open", ".", err)
	}
	defer syncf.Close()
	x.flush = newFlusher()
	defer func() {
		// Every file is closed before the directories are: a file's
		// descriptor never outlives the extraction.
		if ferr := x.flush.wait(); err == nil {
			err = ferr
		}
		x.closeSubDirs()
		if err == nil {
			err = x.finish()
		}
		if err == nil {
			err = syncFS(syncf, x.dir)
		}
	}()
	tr := tar.NewReader(r)
	x.buf = make([]byte, writeSize)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue // the directory itself
		}
		if x.skip != nil && x.skip(name, hdr) {
			continue
		}
		if err := x.checkParents(name); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = x.mkdir(name, fileMode(hdr.Mode))
		case tar.TypeReg:
			err = x.writeFile(name, hdr, tr)
		case tar.TypeSymlink:
			err = x.symlink(name, hdr.Linkname)
		default:
			return fmt.Errorf("%w: %q has tar type %q; a PostgreSQL base backup holds only directories, files and symbolic links", errBadTar, hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cleanEntryName returns the slash-separated relative name of a tar entry,
// refusing absolute names and any ".." component.
func cleanEntryName(raw string) (string, error) {
	name := raw
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	name = strings.TrimSuffix(name, "/")
	if name == "" || name == "." {
		return ".", nil
	}
	if strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: entry name %q is absolute or contains NUL", errBadTar, raw)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: entry name %q contains \"..\"", errBadTar, raw)
		}
	}
	name = path.Clean(name)
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("%w: entry name %q leaves the target directory", errBadTar, raw)
	}
	return name, nil
}

// checkParents refuses an entry inside a symbolic link created earlier, or
// one that replaces such a link: writing through a link is how a hostile
// archive escapes the directory.
func (x *extractor) checkParents(name string) error {
	if x.symlinks[name] {
		return fmt.Errorf("%w: %q appears twice (first as a symbolic link)", errBadTar, name)
	}
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if x.symlinks[p] {
			return fmt.Errorf("%w: %q lies inside the symbolic link %q", errBadTar, name, p)
		}
	}
	return nil
}

// checkLinkTarget accepts a symbolic link target that resolves inside the
// directory: relative, with ".." only as leading components, and not
// climbing above the directory from where the link is. Because no entry is
// ever created inside a link (checkParents), the directory holding a link
// is a real directory, so the leading ".." components resolve exactly as
// written; the remaining components descend, through real directories or
// links that satisfy the same rule.
func checkLinkTarget(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return fmt.Errorf("%w: symbolic link %q points to %q; only relative links inside the directory are restored", errBadTar, name, target)
	}
	leading := true
	for _, part := range strings.Split(target, "/") {
		if part == ".." {
			if !leading {
				return fmt.Errorf("%w: symbolic link %q points to %q: \"..\" after another component is refused", errBadTar, name, target)
			}
			continue
		}
		leading = false
	}
	if !filepath.IsLocal(path.Join(path.Dir(name), target)) {
		return fmt.Errorf("%w: symbolic link %q points to %q, outside the directory", errBadTar, name, target)
	}
	return nil
}

// fileMode keeps the permission bits of a tar mode: never setuid, setgid or
// sticky.
func fileMode(m int64) os.FileMode { return os.FileMode(m) & os.ModePerm }

func (x *extractor) mkdirParents(name string) error {
	dir := path.Dir(name)
	if x.dirs[dir] {
		return nil
	}
	if err := x.root.MkdirAll(dir, 0o700); err != nil {
		return x.fsErr("create directory", dir, err)
	}
	for d := dir; d != "." && !x.dirs[d]; d = path.Dir(d) {
		x.dirs[d] = true
	}
	return nil
}

func (x *extractor) mkdir(name string, mode os.FileMode) error {
	if err := x.mkdirParents(name); err != nil {
		return err
	}
	if !x.dirs[name] {
		if err := x.root.Mkdir(name, 0o700); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return x.fsErr("create directory", name, err)
			}
			fi, lerr := x.root.Lstat(name)
			if lerr != nil || !fi.IsDir() {
				return fmt.Errorf("%w: directory %q collides with an existing non-directory", errBadTar, name)
			}
		}
		x.dirs[name] = true
	}
	if mode != 0o700 {
		x.dirModes[name] = mode
	} else {
		delete(x.dirModes, name)
	}
	return nil
}

func (x *extractor) writeFile(name string, hdr *tar.Header, tr io.Reader) error {
	if err := x.mkdirParents(name); err != nil {
		return err
	}
	dirfd, err := x.dirFD(path.Dir(name))
	if err != nil {
		return x.fsErr("open directory", path.Dir(name), err)
	}
	perm := uint32(fileMode(hdr.Mode))
	fd, err := createAt(dirfd, path.Base(name), perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %q appears twice", errBadTar, name)
		}
		return x.fsErr("create", name, err)
	}
	// From here on fd goes to the flusher, which closes it, whatever
	// happens.
	var written, flushed int64
	defer func() { x.flush.closeFile(fd, flushed, x.path(name)) }()
	for {
		// Fill the buffer (reads stop short at chunk boundaries), so
		// that every write but the last is writeSize bytes.
		n := 0
		var rerr error
		for n < len(x.buf) && rerr == nil {
			var k int
			k, rerr = tr.Read(x.buf[n:])
			n += k
		}
		if n > 0 {
			w, err := writeFull(fd, x.buf[:n])
			written += int64(w)
			x.bytes += int64(w)
			if err != nil {
				return x.fsErr("write", name, err)
			}
			if written-flushed >= writebackEvery {
				x.flush.writeback(fd, flushed, written-flushed)
				flushed = written
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr // from the archive reader
		}
	}
	if needsChmod(perm) {
		if err := ignoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
			return x.fsErr("chmod", name, err)
		}
	}
	if !hdr.ModTime.IsZero() {
		if err := setTimes(fd, hdr.ModTime); err != nil {
			return x.fsErr("set times of", name, err)
		}
	}
	x.files++
	x.seen[name] = true
	return nil
}

func (x *extractor) symlink(name, target string) error {
	if err := checkLinkTarget(name, target); err != nil {
		return err
	}
	if x.dirs[name] || x.seen[name] {
		return fmt.Errorf("%w: %q appears twice", errBadTar, name)
	}
	if err := x.mkdirParents(name); err != nil {
		return err
	}
	if err := x.root.Symlink(target, name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %q appears twice", errBadTar, name)
		}
		return x.fsErr("create symbolic link", name, err)
	}
	x.symlinks[name] = true
	return nil
}

// finish gives directories their modes, deepest first, so that a directory
// without write permission is set after everything inside it was written.
func (x *extractor) finish() error {
	names := make([]string, 0, len(x.dirModes))
	for n := range x.dirModes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] > names[j] })
	for _, n := range names {
		if err := x.root.Chmod(n, x.dirModes[n]); err != nil {
			return x.fsErr("chmod", n, err)
		}
	}
	return nil
}

func (x *extractor) fsErr(op, name string, err error) error {
	return fsErr(op, x.path(name), err)
}

// path is the file system path of the entry name.
func (x *extractor) path(name string) string {
	return filepath.Join(x.dir, filepath.FromSlash(name))
}

// fsErr wraps a file system error, spelling out a full disk.
func fsErr(op, p string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%s %s: the file system is full (free space there or restore elsewhere): %w", op, p, err)
	}
	if errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%s %s: disk quota exceeded: %w", op, p, err)
	}
	return fmt.Errorf("%s %s: %w", op, p, err)
}

// onlyWriter hides ReadFrom so io.CopyBuffer uses the buffer given.
type onlyWriter struct{ io.Writer }

// tarError turns an error from reading a tar stream into one that says
// which archive is damaged. Errors of the chunk reader (fetch, integrity)
// pass through unchanged.
func tarError(archive string, err error) error {
	switch {
	case errors.Is(err, errBadTar):
		return fmt.Errorf("%w: archive %s: %v", repo.ErrIntegrity, archive, err)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, tar.ErrInsecurePath):
		return fmt.Errorf("%w: archive %s is not a valid tar stream: %v", repo.ErrIntegrity, archive, err)
	}
	return err
}
