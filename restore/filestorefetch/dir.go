package filestorefetch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// openDir opens the filestore directory dir to write into, creating it
// and its missing parents (0750, owned as asked: a parent left to root,
// such as <data_dir>/filestore on a fresh host, would keep Odoo out of
// every file below it), each made durable by syncing its parent.
//
// Its path must not go through a symbolic link that another account owns
// (checkLinks): ErrUnsafePath. The deepest existing ancestor is opened as
// an os.Root, checked again to be the directory the path names, and
// everything below is created and opened through Roots, so a link put in
// place meanwhile is never followed out.
func openDir(dir string, opts FetchOptions) (*os.Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore directory %s: %w", dir, err)
	}
	if err := checkLinks(abs); err != nil {
		return nil, err
	}
	base := abs
	var missing []string
	for {
		fi, err := os.Stat(base)
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("create %s: it exists and is not a folder", base)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("inspect %s: %w", base, err)
		}
		parent := filepath.Dir(base)
		if parent == base {
			return nil, fmt.Errorf("inspect %s: %w", base, err)
		}
		missing = append([]string{filepath.Base(base)}, missing...)
		base = parent
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", base, err)
	}
	// The path may have changed between the check and the open: check
	// it again, and that it still leads to the directory opened.
	err = checkLinks(base)
	if err == nil {
		want, err1 := os.Stat(base)
		got, err2 := root.Stat(".")
		if err1 != nil || err2 != nil || !os.SameFile(want, got) {
			err = fmt.Errorf("%w: %s changed while it was being opened (a symbolic link swapped in?)", ErrUnsafePath, base)
		}
	}
	if err != nil {
		root.Close()
		return nil, err
	}
	p := base
	for _, name := range missing {
		p = filepath.Join(p, name)
		err := mkdirIn(root, name, p, opts)
		if err == nil {
			err = syncIn(root, ".", filepath.Dir(p))
		}
		var sub *os.Root
		if err == nil {
			if fi, lerr := root.Lstat(name); lerr != nil || !fi.IsDir() {
				err = fmt.Errorf("%w: %s is no longer the folder just created (a symbolic link swapped in?)", ErrUnsafePath, p)
			} else if sub, err = root.OpenRoot(name); err != nil {
				err = fmt.Errorf("open %s: %w", p, err)
			}
		}
		root.Close()
		if err != nil {
			return nil, err
		}
		root = sub
	}
	return root, nil
}

// checkLinks refuses an absolute path with a component that is a symbolic
// link owned by an account other than root and the running user: that
// account could point it anywhere, and a restore run as root would write
// there as root. Links of root's (a data directory moved to another disk)
// and the caller's own are followed. Components that do not exist end the
// check (they will be created).
func checkLinks(abs string) error {
	euid := os.Geteuid()
	p := "/"
	for _, c := range strings.Split(abs, "/") {
		if c == "" {
			continue
		}
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("inspect %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid == 0 || int(st.Uid) == euid {
			continue
		}
		target, _ := os.Readlink(p)
		return fmt.Errorf("%w: %s is a symbolic link (to %s) owned by uid %d, which decides where walvault, running as uid %d, would write: give the real folder instead, or remove the link",
			ErrUnsafePath, p, target, st.Uid, euid)
	}
	return nil
}
