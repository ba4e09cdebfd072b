package pitr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/walvault/walvault/repo"
)

// Delta restore (Options.Delta): the data directory already holds the
// cluster (damaged, or behind); each block of the backup's files is
// compared, by its keyed hash, with what the directory holds at that place,
// and only the blocks that differ are fetched and written. Files the backup
// does not hold are removed (pg_wal's too: recovery must read the
// repository's WAL, not what an older history left there), missing ones
// created, and every file cut to its size. A link where the backup holds
// a directory or a file (pg_wal on another disk, or one planted by whoever
// controlled the old directory) is removed and replaced, never written
// through. It needs a block backup and the content key (the root key in
// the identity file, or a writer key).
//
// A tablespace is compared in its directory when the cluster's own
// pg_tblspc/<OID> link points there (or the directory is empty or
// missing, as for any restore). There, only the entries the backup holds
// at the top (its PG_<major>_<catversion> directory) are compared and
// cleaned: anything else, such as another major version's directory that
// pg_upgrade left, is never touched. In-place tablespaces (inside the data
// directory, a developer setting) are refused.

// ErrDeltaUnsupported: the backup or the directory does not allow a delta
// restore.
var ErrDeltaUnsupported = errors.New("delta restore not possible")

// checkDelta refuses a delta restore that cannot be done, before anything
// changes. It returns the tablespace directories that the cluster in
// pgdata links to as those very tablespaces (pg_tblspc/<OID>): only those
// are compared in place; any other must be empty or missing, as for a
// restore without --delta.
func checkDelta(r *repo.Repository, pgdata string, b *repo.BackupManifest, dests []destination) (own map[string]bool, err error) {
	for _, d := range dests {
		switch {
		case d.archive.Name == repo.ServerManifestArchive:
		case d.archive.Layout != repo.ArchiveBlocks:
			return nil, fmt.Errorf("%w: backup %s is stored as tar chunks; --delta needs a block backup: restore without --delta (with --force)", ErrDeltaUnsupported, b.ID)
		case d.inPlace:
			return nil, fmt.Errorf("%w: backup %s has the in-place tablespace %s (inside the data directory, allow_in_place_tablespaces), which --delta does not restore: restore without --delta (with --force)", ErrDeltaUnsupported, b.ID, d.archive.Name)
		}
	}
	if !r.CanHashBlocks() {
		return nil, fmt.Errorf("%w: %w: comparing blocks needs the repository's content key: use the identity file that holds the root key (walvault keygen wrote it), or a writer key (--writer-key-file)", ErrDeltaUnsupported, repo.ErrNoIdentity)
	}
	f, err := os.Open(filepath.Join(pgdata, "global", "pg_control"))
	if err != nil {
		return nil, fmt.Errorf("%w: %s holds no cluster to compare with (%v): restore without --delta", ErrDeltaUnsupported, pgdata, err)
	}
	defer f.Close()
	var buf [8]byte
	if _, err := io.ReadFull(f, buf[:]); err != nil {
		return nil, fmt.Errorf("%w: %s/global/pg_control: %v", ErrDeltaUnsupported, pgdata, err)
	}
	// system_identifier is pg_control's first field, in the server's byte
	// order (little-endian on every platform walvault supports).
	sysid := binary.LittleEndian.Uint64(buf[:])
	if strconv.FormatUint(sysid, 10) != r.Config.SystemIdentifier {
		return nil, fmt.Errorf("%w: %s holds the cluster with system identifier %d, the repository's is %s: restore without --delta (with --force) to replace it", repo.ErrClusterMismatch, pgdata, sysid, r.Config.SystemIdentifier)
	}
	own = map[string]bool{}
	for _, d := range dests {
		if d.archive.TablespacePath == "" || d.inPlace {
			continue
		}
		if linked, _ := tablespaceLinkTarget(pgdata, d.archive); linked == d.dir {
			own[d.dir] = true
		}
	}
	return own, nil
}

// tablespaceLinkTarget returns where the data directory's link
// pg_tblspc/<OID> for tablespace archive a points (cleaned), or "" with
// the reason.
func tablespaceLinkTarget(pgdata string, a *repo.Archive) (string, error) {
	oid, err := tablespaceOID(a)
	if err != nil {
		return "", err
	}
	root, err := os.OpenRoot(pgdata)
	if err != nil {
		return "", err
	}
	defer root.Close()
	t, err := root.Readlink(path.Join("pg_tblspc", oid))
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(t) {
		return "", fmt.Errorf("pg_tblspc/%s points to the relative path %s", oid, t)
	}
	return filepath.Clean(t), nil
}

// deltaHint says, for a tablespace directory a delta restore found not
// empty and not linked from the cluster, how to go on.
func deltaHint(pgdata string, d destination) string {
	oid, _ := tablespaceOID(d.archive)
	linked, err := tablespaceLinkTarget(pgdata, d.archive)
	if err != nil {
		return fmt.Sprintf("--delta compares a tablespace in place only where the cluster's link %s/pg_tblspc/%s points, and it has none (%v); restore tablespace %s into an empty directory with --tablespace-map %s=NEWDIR", pgdata, oid, err, d.archive.Name, d.archive.TablespacePath)
	}
	return fmt.Sprintf("--delta compares a tablespace in place only where the cluster's link %s/pg_tblspc/%s points, and that is %s: restore with --tablespace-map %s=%s, or into an empty directory with --tablespace-map %s=NEWDIR", pgdata, oid, linked, d.archive.TablespacePath, linked, d.archive.TablespacePath)
}

// deltaSkip says which members of base.tar (base) or a tablespace archive
// a delta restore leaves alone, as extractArchive does.
func deltaSkip(base bool, name string, e *repo.FileEntry) bool {
	if !base {
		return false
	}
	for _, n := range notRestored {
		if name == n {
			return true
		}
	}
	if e.Typeflag == '2' && path.Dir(name) == "pg_tblspc" {
		return true
	}
	return name == manifestFile
}

// deltaRemove removes from the directory root (dir) what the backup does
// not hold, keep (name → tar type flag), and what is there as another kind
// of file than the backup's: a link where the backup has a directory or a
// file (pg_wal linked to another disk, or a link planted by whoever
// controlled the old directory) is removed, the link itself, and replaced
// by what the backup holds, so that nothing is written through it. Links
// are never followed. In the data directory (base), pg_tblspc's entries
// are left alone; in a tablespace directory, every entry at the top that
// the backup does not hold (another major version's PG_* directory). It
// returns how many were removed.
func deltaRemove(root *os.Root, dir string, keep map[string]byte, base bool) (int, error) {
	var extra []string
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		t, held := keep[p]
		if held {
			switch {
			case t == '5' && d.IsDir(),
				t == '2' && d.Type()&fs.ModeSymlink != 0,
				(t == '0' || t == 0) && d.Type().IsRegular():
				return nil
			}
		}
		leave := false
		switch {
		case !base:
			leave = !held && !strings.Contains(p, "/")
		case p == manifestFile || (p == "pg_tblspc" && d.IsDir()):
			return nil
		default:
			leave = path.Dir(p) == "pg_tblspc"
		}
		if leave {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		extra = append(extra, p)
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return 0, fsErr("read", dir, err)
	}
	for _, p := range extra {
		if err := root.RemoveAll(p); err != nil {
			return 0, fsErr("remove", filepath.Join(dir, p), err)
		}
	}
	return len(extra), nil
}

// deltaOpen opens the file name of the data directory (root) for the
// comparison and the writes, creating it if it is not there. What is there
// as anything but a regular file of one link is removed first: a file
// with other hard links may be the same inode as a file outside the
// directory (linked there by whoever controlled the old directory, or by
// pg_upgrade --link), which a restore running as root must not change; a
// fresh file is written instead.
func deltaOpen(root *os.Root, pgdata, name string, mode os.FileMode) (*os.File, error) {
	if fi, err := root.Lstat(name); err == nil {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || !ok || st.Nlink != 1 {
			if err := root.RemoveAll(name); err != nil {
				return nil, fsErr("remove", filepath.Join(pgdata, name), err)
			}
		}
	}
	f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE, mode)
	if err != nil {
		return nil, fsErr("open", filepath.Join(pgdata, name), err)
	}
	return f, nil
}

// deltaBatch is the most differing blocks gathered before they are
// fetched and written (about 8 MiB of references).
const deltaBatch = 1 << 17

// deltaWrite is one block to fetch and write.
type deltaWrite struct {
	file  string
	index int64
	size  int64 // of the block
	ref   repo.BlockRef
}

func restoreDelta(ctx context.Context, r *repo.Repository, b *repo.BackupManifest, pgdata string, dests []destination, opts Options, res *Result, log *slog.Logger) (tops map[string]map[string]bool, err error) {
	// The list is read entry by entry (twice per archive: what to keep,
	// then what to write), and differing blocks are written in batches,
	// so memory stays bounded whatever the cluster's size.
	fl, err := r.OpenFileList(ctx, b.ID)
	if err != nil {
		return nil, fmt.Errorf("file list of backup %s: %w", b.ID, err)
	}
	defer fl.Close()
	hasher, err := r.BlockHasherFor(fl.ContentKey)
	if err != nil {
		return nil, fmt.Errorf("%w: backup %s: %v", ErrDeltaUnsupported, b.ID, err)
	}
	tops = map[string]map[string]bool{}
	var hasMap bool
	// base.tar first: its backup_label is checked before any tablespace
	// changes.
	order := make([]destination, 0, len(dests))
	for _, d := range dests {
		if d.archive.Name == "base.tar" {
			order = append([]destination{d}, order...)
		} else if d.archive.Name != repo.ServerManifestArchive {
			order = append(order, d)
		}
	}
	var st deltaStats
	for _, d := range order {
		if !fl.HasArchive(d.archive.Name) {
			return nil, fmt.Errorf("%w: the file list of backup %s has no %s", repo.ErrIntegrity, b.ID, d.archive.Name)
		}
		keep, err := deltaArchive(ctx, r, hasher, fl, d, pgdata, &st)
		if err != nil {
			return nil, err
		}
		if d.archive.Name == "base.tar" {
			_, hasMap = keep[tablespaceMapFile]
			continue
		}
		top := map[string]bool{}
		for name := range keep {
			if !strings.Contains(name, "/") {
				top[name] = true
			}
		}
		tops[d.dir] = top
	}
	log.Info("delta restore: compared", "files", st.files, "blocks", st.compared, "differing", st.written, "removed", st.removed)

	// The server's backup_manifest, whole.
	for _, d := range dests {
		if d.archive.Name != repo.ServerManifestArchive {
			continue
		}
		root, err := os.OpenRoot(pgdata)
		if err != nil {
			return nil, fsErr("open", pgdata, err)
		}
		err = root.Remove(manifestFile)
		root.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fsErr("remove", filepath.Join(pgdata, manifestFile), err)
		}
		pr, pw := io.Pipe()
		go func() {
			var err error
			for _, c := range d.archive.Chunks {
				var data []byte
				if data, err = fetchChunk(ctx, r, b.ID, c, nil); err != nil {
					break
				}
				if _, err = pw.Write(data); err != nil {
					break
				}
			}
			pw.CloseWithError(err)
		}()
		err = restoreManifest(pgdata, pr)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			return nil, err
		}
		res.Files++
	}
	res.Files += int(st.files)
	res.Bytes = st.written * repo.BlockSize
	return tops, writeTablespaceMap(pgdata, dests, hasMap)
}

// deltaStats counts what a delta restore did.
type deltaStats struct {
	files, compared, written int64
	removed                  int
}

// deltaArchive brings the directory of d (the data directory for
// base.tar, the tablespace's directory for the others) to what archive
// d.archive of fl holds, and returns its members (name → type flag).
func deltaArchive(ctx context.Context, r *repo.Repository, hasher *repo.BlockHasher, fl *repo.OpenFileList, d destination, pgdata string, st *deltaStats) (map[string]byte, error) {
	base := d.archive.Name == "base.tar"
	var root *os.Root
	var err error
	if base {
		root, err = os.OpenRoot(pgdata)
		if err != nil {
			return nil, fsErr("open", pgdata, err)
		}
	} else if root, err = openTarget(d); err != nil {
		return nil, err
	}
	defer root.Close()

	// each hands the entries the delta restore handles to visit, with
	// their cleaned names.
	each := func(drop bool, visit func(name string, e *repo.FileEntry) error) error {
		it := fl.Entries(d.archive.Name, drop)
		for {
			e, err := it.Next()
			if err != nil {
				return fmt.Errorf("backup %s: %w", fl.BackupID, err)
			}
			if e == nil {
				return nil
			}
			name, err := cleanEntryName(e.Name)
			if err != nil {
				return fmt.Errorf("%w: backup %s: %s: %v", repo.ErrIntegrity, fl.BackupID, d.archive.Name, err)
			}
			if name == "." || deltaSkip(base, name, e) {
				continue
			}
			if err := visit(name, e); err != nil {
				return err
			}
		}
	}

	// What the backup holds.
	keep := map[string]byte{} // name → type flag
	err = each(false, func(name string, e *repo.FileEntry) error {
		if e.Typeflag == '2' {
			if err := checkLinkTarget(name, e.Linkname); err != nil {
				return err
			}
		}
		keep[name] = e.Typeflag
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := keep[backupLabelFile]; base && !ok {
		return nil, fmt.Errorf("%w: base.tar of backup %s has no backup_label; PostgreSQL could not recover from it", repo.ErrIntegrity, fl.BackupID)
	}

	// Remove what the backup does not hold (never following a link).
	removed, err := deltaRemove(root, d.dir, keep, base)
	if err != nil {
		return nil, err
	}
	st.removed += removed

	// Directories, links, and the blocks that differ.
	var writes []deltaWrite
	buf := make([]byte, repo.BlockSize)
	flush := func() error {
		err := writeDeltaBlocks(ctx, r, hasher, root, d.dir, fl.FileList, writes)
		st.written += int64(len(writes))
		writes = writes[:0]
		return err
	}
	err = each(true, func(name string, e *repo.FileEntry) error {
		switch {
		case e.Typeflag == '5':
			if err := root.MkdirAll(name, fileMode(e.Mode)|0o700); err != nil {
				return fsErr("create directory", filepath.Join(d.dir, name), err)
			}
		case e.Typeflag == '2':
			if t, err := root.Readlink(name); err == nil && t == e.Linkname {
				return nil
			}
			root.RemoveAll(name)
			if err := root.Symlink(e.Linkname, name); err != nil {
				return fsErr("create link", filepath.Join(d.dir, name), err)
			}
		case e.IsRegular():
			st.files++
			if err := root.MkdirAll(path.Dir(name), 0o700); err != nil {
				return fsErr("create directory", filepath.Join(d.dir, path.Dir(name)), err)
			}
			f, err := deltaOpen(root, d.dir, name, fileMode(e.Mode))
			if err != nil {
				return err
			}
			for bi, ref := range e.Blocks {
				want := min(e.Size-int64(bi)*repo.BlockSize, repo.BlockSize)
				n, _ := f.ReadAt(buf[:want], int64(bi)*repo.BlockSize)
				st.compared++
				if int64(n) == want && hasher.ID(buf[:want]) == ref.ID {
					continue
				}
				writes = append(writes, deltaWrite{file: name, index: int64(bi), size: want, ref: ref})
			}
			err = f.Truncate(e.Size)
			if err == nil {
				err = f.Chmod(fileMode(e.Mode))
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fsErr("write", filepath.Join(d.dir, name), err)
			}
			if len(writes) >= deltaBatch {
				return flush()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keep, flush()
}

// writeDeltaBlocks fetches the blocks writes names, a pack at a time in
// offset order (neighbouring blocks in one ranged read), and writes each
// where it belongs, syncing every file written. Each block is checked
// against its size and its id (with hasher) before it is written: the
// block is then exactly the one the signed file list names.
func writeDeltaBlocks(ctx context.Context, r *repo.Repository, hasher *repo.BlockHasher, root *os.Root, dir string, fl *repo.FileList, writes []deltaWrite) error {
	sort.Slice(writes, func(i, j int) bool {
		a, b := writes[i].ref, writes[j].ref
		if a.Pack != b.Pack {
			return a.Pack < b.Pack
		}
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		return a.Index < b.Index
	})
	open := map[string]*os.File{}
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	file := func(name string) (*os.File, error) {
		if f := open[name]; f != nil {
			return f, nil
		}
		f, err := root.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return nil, fsErr("open", filepath.Join(dir, name), err)
		}
		open[name] = f
		return f, nil
	}
	cache := newPackCache(r)
	for i := 0; i < len(writes); {
		if err := ctx.Err(); err != nil {
			return err
		}
		j := i + 1
		for j < len(writes) && writes[j].ref.Pack == writes[i].ref.Pack && j-i < maxReadBlocks &&
			writes[j].ref.Offset+int64(writes[j].ref.Length)-writes[i].ref.Offset <= maxReadBytes {
			j++
		}
		rd := &blockRead{pack: fl.Packs[writes[i].ref.Pack]}
		for _, w := range writes[i:j] {
			rd.refs = append(rd.refs, w.ref)
		}
		ba := &blockArchive{ctx: ctx, backupID: fl.BackupID, fl: fl, cache: cache}
		blocks, err := ba.readBlocks(rd, hasher) // the span from the first to the last
		if err != nil {
			return err
		}
		for k, w := range writes[i:j] {
			if int64(len(blocks[k])) != w.size {
				return fmt.Errorf("%w: backup %s: a block of %s holds %d bytes, the file list says %d", repo.ErrIntegrity, fl.BackupID, w.file, len(blocks[k]), w.size)
			}
			f, err := file(w.file)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(blocks[k], w.index*repo.BlockSize); err != nil {
				return fsErr("write", filepath.Join(dir, w.file), err)
			}
		}
		i = j
	}
	for name, f := range open {
		if err := f.Sync(); err != nil {
			return fsErr("sync", filepath.Join(dir, name), err)
		}
	}
	return nil
}
