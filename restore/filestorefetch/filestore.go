package filestorefetch

import (
	"context"
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

	"github.com/jackc/pgx/v5"

	"github.com/walvault/walvault/internal/workpool"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// ErrIncomplete: the repository lacks files the database references (or
// holds them damaged, or the database names them in a shape walvault does
// not know). Every other file was restored; Report lists which are not.
var ErrIncomplete = errors.New("filestore incomplete")

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
	created, err := mkdirOwned(dir, opts)
	if err != nil {
		return rep, err
	}
	var mu, dirMu sync.Mutex
	touched := map[string]bool{}
	// A folder created here (<data_dir>/filestore on a fresh host) is
	// durable once its parent is synced: without that, a power loss can
	// drop the whole tree, every file in it fsynced.
	for _, d := range created {
		touched[filepath.Dir(d)] = true
	}
	err = workpool.Each(ctx, order, opts.Workers, func(name string) error {
		n, fetched, err := fetchOne(ctx, r, name, dir, opts, &dirMu)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case storage.IsNotExist(err):
			rep.Missing = append(rep.Missing, names[name])
		case errors.Is(err, repo.ErrIntegrity):
			rep.Unusable = append(rep.Unusable, Problem{Ref: names[name], Reason: err.Error()})
		case err != nil:
			return err
		case fetched:
			rep.Fetched++
			rep.Bytes += n
			touched[filepath.Dir(filepath.Join(dir, filepath.FromSlash(name)))] = true
		default:
			rep.Present++
		}
		return nil
	})
	// The renames are durable once their folders are synced: once per
	// folder (at most 256, dir and the parents of what mkdirOwned
	// created), not once per file. The xx folders fetchOne creates are
	// entries of dir.
	touched[dir] = true
	for d := range touched {
		if serr := syncDir(d); serr != nil && err == nil {
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

// fetchOne restores one file unless it is present and correct.
func fetchOne(ctx context.Context, r *repo.Repository, name, dir string, opts FetchOptions, dirMu *sync.Mutex) (int64, bool, error) {
	dst := filepath.Join(dir, filepath.FromSlash(name))
	if ok, err := hasContent(dst, name[3:]); err != nil {
		return 0, false, err
	} else if ok {
		return 0, false, nil
	}
	rc, _, err := r.OpenFilestoreObject(ctx, name)
	if err != nil {
		return 0, false, err
	}
	defer rc.Close()
	sub := filepath.Dir(dst)
	dirMu.Lock()
	_, err = mkdirOwned(sub, opts)
	dirMu.Unlock()
	if err != nil {
		return 0, false, err
	}
	tmp, err := os.CreateTemp(sub, ".walvault-*")
	if err != nil {
		return 0, false, fmt.Errorf("restore %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	h := sha1.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if err != nil {
		tmp.Close()
		return 0, false, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != name[3:] {
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
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, false, fmt.Errorf("restore %s: %w", name, err)
	}
	return n, true, nil
}

// hasContent reports whether path holds content with SHA-1 sum.
func hasContent(path, sum string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", path, err)
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("check %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// mkdirOwned creates dir and every missing parent (0750, owned as asked:
// a parent left to root, such as <data_dir>/filestore on a fresh host,
// would keep Odoo out of every file below it) and returns the folders it
// created, topmost first, whose parents the caller must sync. The caller
// serialises calls (workers creating the same folder).
func mkdirOwned(dir string, opts FetchOptions) ([]string, error) {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil, nil
	}
	var created []string
	if parent := filepath.Dir(dir); parent != dir {
		c, err := mkdirOwned(parent, opts)
		if err != nil {
			return nil, err
		}
		created = c
	}
	if err := os.Mkdir(dir, 0o750); errors.Is(err, fs.ErrExist) {
		// A file (or a link to one) where the folder belongs: chmod
		// would change the file and every write below it would fail.
		if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
			return nil, fmt.Errorf("create %s: it exists and is not a folder", dir)
		}
		// Created meanwhile by another process: left as it is, like a
		// folder the first stat finds.
		return created, nil
	} else if err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if opts.Chown {
		if err := os.Chown(dir, opts.UID, opts.GID); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	return append(created, dir), nil
}

// syncDir makes the entries renamed into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
