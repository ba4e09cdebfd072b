package pitr

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walvault/walvault/internal/units"
)

// checkDir accepts a missing or empty directory, or any directory when
// clear is set (its contents are removed later). hint says how to get past
// a refusal.
func checkDir(dir string, clear bool, hint string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fsErr("inspect", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	if clear {
		return nil
	}
	entries, err := readDirNames(dir, 4)
	if err != nil {
		return fsErr("read directory", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: %s holds %s…; %s", ErrDirNotEmpty, dir, strings.Join(entries, ", "), hint)
	}
	return nil
}

func readDirNames(dir string, n int) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(n)
	if err == io.EOF {
		err = nil
	}
	return names, err
}

// checkSpace refuses a restore that clearly cannot fit: less free space on
// a file system than nine tenths of the plaintext bearing down on it (tar
// sizes overstate file sizes a little). What the restore will delete (the
// directories cleared) counts as free.
func checkSpace(dests []destination, cleared func(destination) bool) error {
	type fsNeed struct {
		dirs        []string
		need, avail int64
	}
	byDev := make(map[uint64]*fsNeed)
	counted := make(map[string]bool)
	for _, d := range dests {
		dev, avail, err := freeSpace(d.dir)
		if err != nil {
			return err
		}
		n := byDev[dev]
		if n == nil {
			n = &fsNeed{avail: avail}
			byDev[dev] = n
		}
		n.need += d.archive.Bytes
		if !counted[d.dir] {
			counted[d.dir] = true
			n.dirs = append(n.dirs, d.dir)
			if !d.inPlace && cleared(d) {
				n.avail += diskUsage(d.dir)
			}
		}
	}
	for _, n := range byDev {
		if n.avail < n.need/10*9 {
			return fmt.Errorf("not enough disk space for %s: the backup needs about %s there, the file system has %s free; free space or restore elsewhere (--pgdata, --tablespace-map)",
				strings.Join(n.dirs, ", "), units.Bytes(n.need), units.Bytes(n.avail))
		}
	}
	return nil
}

// freeSpace reports the device and the space available to unprivileged
// users on the file system that dir is (or will be created) on.
func freeSpace(dir string) (uint64, int64, error) {
	p := dir
	for {
		var st syscall.Stat_t
		err := syscall.Stat(p, &st)
		if err == nil {
			var sfs syscall.Statfs_t
			if err := syscall.Statfs(p, &sfs); err != nil {
				return 0, 0, fsErr("statfs", p, err)
			}
			return uint64(st.Dev), int64(sfs.Bavail) * int64(sfs.Bsize), nil
		}
		if !errors.Is(err, syscall.ENOENT) || p == "/" {
			return 0, 0, fsErr("inspect", p, err)
		}
		p = filepath.Dir(p)
	}
}

// diskUsage sums the blocks of the files under dir (errors count as zero:
// this only softens the space check).
func diskUsage(dir string) int64 {
	var sum int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				sum += st.Blocks * 512
			}
		}
		return nil
	})
	return sum
}

// prepareDir makes dir an empty directory PostgreSQL accepts: created with
// mode 0700 when missing (as are missing parents, which it returns), emptied
// when clear, and given mode 0700 unless it already has 0700 or 0750. It is
// for directories the operator named (the data directory, mapped
// tablespaces); prepareNamedDir is for the others.
func prepareDir(dir string, clear bool) (created []string, err error) {
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		created = append(created, p)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fsErr("create directory", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fsErr("open", dir, err)
	}
	defer root.Close()
	if clear {
		entries, err := fs.ReadDir(root.FS(), ".")
		if err != nil {
			return nil, fsErr("read directory", dir, err)
		}
		for _, e := range entries {
			if err := root.RemoveAll(e.Name()); err != nil {
				return nil, fsErr("remove", filepath.Join(dir, e.Name()), err)
			}
		}
	}
	return created, chmodTarget(root, dir)
}

// prepareNamedDir gives a tablespace location the backup names (checked by
// checkNamedLocation: it exists) the mode PostgreSQL accepts, through the
// verified handle: it is never created or cleared.
func prepareNamedDir(d destination) error {
	root, err := openTarget(d)
	if err != nil {
		return err
	}
	defer root.Close()
	return chmodTarget(root, d.dir)
}

// chmodTarget gives the directory root is open on mode 0700 unless it
// already has 0700 or 0750.
func chmodTarget(root *os.Root, dir string) error {
	fi, err := root.Stat(".")
	if err != nil {
		return fsErr("inspect", dir, err)
	}
	if m := fi.Mode().Perm(); m != 0o700 && m != 0o750 {
		if err := root.Chmod(".", 0o700); err != nil {
			return fsErr("chmod", dir, err)
		}
	}
	return nil
}

// appendRecoveryConfig appends the recovery settings to
// postgresql.auto.conf (creating it when the backup has none).
func appendRecoveryConfig(root *os.Root, backupID string, now time.Time, opts Options) error {
	existing, err := root.ReadFile(autoConfFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	block, err := recoveryConfig(backupID, now, opts, existing)
	if err != nil {
		return err
	}
	if len(existing) > 0 && existing[len(existing)-1] != '\n' {
		block = "\n" + block
	}
	f, err := root.OpenFile(autoConfFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(block); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// lookupOwner returns the account to chown to when running as root.
func lookupOwner(name string) (uid, gid int, chown bool, err error) {
	if os.Geteuid() != 0 {
		return 0, 0, false, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, false, fmt.Errorf("running as root, the restored files must belong to the account PostgreSQL runs as, but user %q does not exist: pass it with --owner (%v)", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, false, fmt.Errorf("user %q has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	return uid, gid, true, nil
}

// chownTree gives everything under the directory d is restored into to
// uid:gid, through a Root (openTarget): no symbolic link is followed, not
// even one swapped in for a directory during the walk. With only, just
// those entries at the top are walked (a delta restore's tablespace
// directory, which may hold another major version's directory).
func chownTree(d destination, uid, gid int, only map[string]bool) error {
	root, err := openTarget(d)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return fsErr("chown", filepath.Join(d.dir, filepath.FromSlash(p)), err)
		}
		if only != nil && p != "." && !strings.Contains(p, "/") && !only[p] {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if err := root.Lchown(p, uid, gid); err != nil {
			return fsErr("chown", filepath.Join(d.dir, filepath.FromSlash(p)), err)
		}
		return nil
	})
}

// syncDir makes everything written under dir durable: syncfs(2) on its
// file system, or, where that is not available, fsync of every file and
// directory.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fsErr("open", dir, err)
	}
	err = unix.Syncfs(int(f.Fd()))
	f.Close()
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.ENOSYS) && !errors.Is(err, syscall.EINVAL) {
		return fsErr("sync the file system of", dir, err)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return fsErr("open", p, err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fsErr("fsync", p, err)
		}
		return nil
	})
}

// writeSignal creates recovery.signal and makes it and its directory entry
// durable. It is the last step: its presence says the restore finished.
func writeSignal(root *os.Root, pgdata string, chown bool, uid, gid int) error {
	p := filepath.Join(pgdata, recoverySignal)
	f, err := root.OpenFile(recoverySignal, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fsErr("create", p, err)
	}
	if chown {
		if err := f.Chown(uid, gid); err != nil {
			f.Close()
			return fsErr("chown", p, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fsErr("fsync", p, err)
	}
	if err := f.Close(); err != nil {
		return fsErr("close", p, err)
	}
	d, err := root.Open(".")
	if err != nil {
		return fsErr("open", pgdata, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fsErr("fsync", pgdata, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
