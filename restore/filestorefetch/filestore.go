package filestorefetch

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/walvault/walvault/internal/workpool"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// ErrIncomplete: the repository lacks files the database references (or
// holds them damaged, or the database names them in a shape walvault does
// not know). Every other file was restored; Report lists which are not.
var ErrIncomplete = errors.New("filestore incomplete")

// ErrUnsafePath: the filestore directory's path goes through a symbolic
// link that another account (not root, not the running user) owns, so
// that account decides where Fetch would write. Nothing was written.
var ErrUnsafePath = errors.New("unsafe filestore path")

// Ref is one file an attachment references.
type Ref struct {
	// StoreFname is ir_attachment.store_fname: "xx/<sha1>".
	StoreFname string `json:"store_fname"`
	// Checksum is ir_attachment.checksum: the SHA-1 of the content (may
	// be empty).
	Checksum string `json:"checksum,omitempty"`
}

// Referenced returns the distinct (store_fname, checksum) pairs of the
// attachments stored in the filestore, sorted.
func Referenced(ctx context.Context, conn *pgx.Conn) ([]Ref, error) {
	rows, err := conn.Query(ctx, `SELECT DISTINCT store_fname, coalesce(checksum, '')
		FROM ir_attachment WHERE store_fname IS NOT NULL AND store_fname <> '' ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("read ir_attachment: %w", err)
	}
	refs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Ref, error) {
		var r Ref
		err := row.Scan(&r.StoreFname, &r.Checksum)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read ir_attachment: %w", err)
	}
	return refs, nil
}

// FetchOptions modify Fetch.
type FetchOptions struct {
	// Workers is how many files are fetched at once (default 2 per CPU,
	// at least 4).
	Workers int
	// UID and GID, when Chown is set, own every file and directory
	// written (run as root to restore for the odoo user).
	Chown    bool
	UID, GID int
}

// Problem is a referenced file that was not restored.
type Problem struct {
	Ref
	Reason string `json:"reason"`
}

// Report is what Fetch did.
type Report struct {
	Referenced int   `json:"referenced"` // distinct store_fname values, malformed ones included
	Fetched    int   `json:"fetched"`
	Present    int   `json:"present"` // already in dir and correct
	Bytes      int64 `json:"bytes"`   // bytes written
	// Missing are files the repository does not hold.
	Missing []Ref `json:"missing,omitempty"`
	// Unusable are references walvault cannot restore: a store_fname not
	// shaped like xx/<sha1>, a checksum that contradicts the name, or an
	// object that fails its integrity check.
	Unusable []Problem `json:"unusable,omitempty"`
}

// Fetch writes the files refs name into dir (created if needed) from the
// repository: each through a temporary file renamed into place, checked
// against its SHA-1. Files already present with the right content are
// left alone. It returns ErrIncomplete when any referenced file could not
// be restored (see Report) and other errors for failures to read the
// repository or write dir.
//
// Fetch often runs as root in a directory other accounts (odoo) can
// write, and what it writes comes from the repository: it never follows a
// symbolic link there. dir itself is refused (ErrUnsafePath) when a
// component of its path is a link owned by anyone but root or the running
// user; everything below it is created and written through an os.Root
// opened on it, and a <xx> folder that is a link (or not a folder) is not
// entered: its files are reported as Unusable.
func Fetch(ctx context.Context, r *repo.Repository, refs []Ref, dir string, opts FetchOptions) (*Report, error) {
	if opts.Workers <= 0 {
		opts.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	rep := &Report{}
	// One file per name; a name with several checksums is judged by the
	// name (the content hash) and the disagreement reported.
	names := make(map[string]Ref)
	var order []string
	malformed := make(map[string]bool)
	for _, ref := range refs {
		name := ref.StoreFname
		if !repo.ValidFilestoreName(name) {
			if !malformed[name] {
				malformed[name] = true
				rep.Unusable = append(rep.Unusable, Problem{Ref: ref, Reason: "store_fname is not shaped like xx/<sha1>"})
			}
			continue
		}
		if ref.Checksum != "" && ref.Checksum != name[3:] {
			rep.Unusable = append(rep.Unusable, Problem{Ref: ref, Reason: "ir_attachment.checksum differs from the file name; restored by name"})
		}
		if _, ok := names[name]; !ok {
			names[name] = ref
			order = append(order, name)
		}
	}
	// Every name counts, so "N of M not restored" never has N > M.
	rep.Referenced = len(order) + len(malformed)
	root, err := openDir(dir, opts)
	if err != nil {
		return rep, err
	}
	defer root.Close()
	var mu, dirMu sync.Mutex
	// The <xx> folders written to: their renames are durable once they
	// are synced, once per folder (at most 256), not once per file.
	touched := map[string]bool{}
	err = workpool.Each(ctx, order, opts.Workers, func(name string) error {
		n, fetched, err := fetchOne(ctx, r, name, root, dir, opts, &dirMu)
		mu.Lock()
		defer mu.Unlock()
		var unsafe *unsafeFolderError
		switch {
		case storage.IsNotExist(err):
			rep.Missing = append(rep.Missing, names[name])
		case errors.Is(err, repo.ErrIntegrity):
			rep.Unusable = append(rep.Unusable, Problem{Ref: names[name], Reason: err.Error()})
		case errors.As(err, &unsafe):
			rep.Unusable = append(rep.Unusable, Problem{Ref: names[name], Reason: unsafe.Error()})
		case err != nil:
			return err
		case fetched:
			rep.Fetched++
			rep.Bytes += n
			touched[name[:2]] = true
		default:
			rep.Present++
		}
		return nil
	})
	// The <xx> folders fetchOne creates are entries of dir.
	touched["."] = true
	for d := range touched {
		if serr := syncIn(root, d, filepath.Join(dir, d)); serr != nil && err == nil {
			err = serr
		}
	}
	sort.Slice(rep.Missing, func(i, j int) bool { return rep.Missing[i].StoreFname < rep.Missing[j].StoreFname })
	sort.Slice(rep.Unusable, func(i, j int) bool { return rep.Unusable[i].StoreFname < rep.Unusable[j].StoreFname })
	if err != nil {
		return rep, fmt.Errorf("restore filestore: %w", err)
	}
	if len(rep.Missing) > 0 || hasBlocking(rep.Unusable) {
		return rep, fmt.Errorf("%w: %d of %d referenced files not restored", ErrIncomplete, len(rep.Missing)+blocking(rep.Unusable), rep.Referenced)
	}
	return rep, nil
}

// hasBlocking: a checksum disagreement alone restored the file.
func hasBlocking(ps []Problem) bool { return blocking(ps) > 0 }

func blocking(ps []Problem) int {
	n := 0
	for _, p := range ps {
		if !strings.HasPrefix(p.Reason, "ir_attachment.checksum differs") {
			n++
		}
	}
	return n
}

// unsafeFolderError: an <xx> folder of the filestore that Fetch does not
// enter.
type unsafeFolderError struct {
	path string
	why  string
}

func (e *unsafeFolderError) Error() string {
	return fmt.Sprintf("%s %s: not entered (walvault follows no link in the filestore); remove it and run again", e.path, e.why)
}

// fetchOne restores one file unless it is present and correct.
func fetchOne(ctx context.Context, r *repo.Repository, name string, root *os.Root, dir string, opts FetchOptions, dirMu *sync.Mutex) (int64, bool, error) {
	xx, sum := name[:2], name[3:]
	dst := filepath.Join(dir, filepath.FromSlash(name))
	sub, err := openFolder(root, xx, dir, false, opts)
	if err != nil {
		return 0, false, err
	}
	if sub != nil {
		defer sub.Close()
		if ok, err := hasContent(sub, sum, dst); err != nil {
			return 0, false, err
		} else if ok {
			return 0, false, nil
		}
	}
	rc, _, err := r.OpenFilestoreObject(ctx, name)
	if err != nil {
		return 0, false, err
	}
	defer rc.Close()
	if sub == nil {
		dirMu.Lock()
		sub, err = openFolder(root, xx, dir, true, opts)
		dirMu.Unlock()
		if err != nil {
			return 0, false, err
		}
		defer sub.Close()
	}
	tmp, tmpName, err := createTemp(sub)
	if err != nil {
		return 0, false, fmt.Errorf("restore %s: %w", name, err)
	}
	defer sub.Remove(tmpName) // gone after the rename
	h := sha1.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if err != nil {
		tmp.Close()
		return 0, false, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		tmp.Close()
		return 0, false, fmt.Errorf("%w: stored content of %s has SHA-1 %s", repo.ErrIntegrity, name, got)
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return 0, false, fmt.Errorf("restore %s: %w", name, err)
	}
	if opts.Chown {
		if err := tmp.Chown(opts.UID, opts.GID); err != nil {
			tmp.Close()
			return 0, false, fmt.Errorf("restore %s: %w", name, err)
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, false, fmt.Errorf("restore %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, false, fmt.Errorf("restore %s: %w", name, err)
	}
	// rename(2) replaces whatever has the name, a link included, and
	// never writes through it.
	if err := sub.Rename(tmpName, sum); err != nil {
		return 0, false, fmt.Errorf("restore %s: %w", name, err)
	}
	return n, true, nil
}

// createTemp creates a new file in root, mode 0600, never opening
// anything already there.
func createTemp(root *os.Root) (*os.File, string, error) {
	for range 10 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, "", err
		}
		name := ".walvault-" + hex.EncodeToString(b[:])
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", errors.New("cannot find a free temporary name")
}

// openFolder opens the <xx> folder of root, creating it (0750, owned as
// asked) when create is set; without create, a missing folder is nil, nil.
// A link or anything else that is not a folder is an *unsafeFolderError.
// The caller serialises calls with create (workers creating the same
// folder).
func openFolder(root *os.Root, xx, dir string, create bool, opts FetchOptions) (*os.Root, error) {
	p := filepath.Join(dir, xx)
	fi, err := root.Lstat(xx)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, nil
		}
		if err := mkdirIn(root, xx, p, opts); err != nil {
			return nil, err
		}
		fi, err = root.Lstat(xx)
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("inspect %s: %w", p, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := root.Readlink(xx)
		return nil, &unsafeFolderError{path: p, why: fmt.Sprintf("is a symbolic link (to %s)", target)}
	case !fi.IsDir():
		return nil, &unsafeFolderError{path: p, why: "is not a folder"}
	}
	// Swapped for a link since the Lstat: a Root does not leave root.
	sub, err := root.OpenRoot(xx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return sub, nil
}

// mkdirIn creates the folder name in root: mode 0750, owned as asked (a
// folder left to root would keep Odoo out of every file below it). One
// created meanwhile by another process is left as it is.
func mkdirIn(root *os.Root, name, p string, opts FetchOptions) error {
	if err := root.Mkdir(name, 0o750); errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	// Lchown first: until then only root can do anything in it, and
	// Chmod resolves inside root whatever name has become.
	if opts.Chown {
		if err := root.Lchown(name, opts.UID, opts.GID); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	if err := root.Chmod(name, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	return nil
}

// hasContent reports whether name in root is a regular file with SHA-1
// sum. Anything else (missing, a link, a FIFO) is not: it is replaced.
func hasContent(root *os.Root, sum, p string) (bool, error) {
	fi, err := root.Lstat(sum)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	// O_NONBLOCK: a FIFO swapped in since the Lstat does not hang us.
	f, err := root.OpenFile(sum, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false, fmt.Errorf("check %s: %w", p, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("check %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// syncIn makes the entries renamed into name (a folder of root) durable.
func syncIn(root *os.Root, name, p string) error {
	d, err := root.Open(name)
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}
