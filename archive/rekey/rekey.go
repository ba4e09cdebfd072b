// Package rekey re-encrypts every object of a repository to the current
// recipients, for retiring a key: once it has run, the old identity is no
// longer needed to read the repository (except older object versions a
// versioned or Object Lock bucket keeps; see docs/SECURITY.md). In a
// format-2 repository it also signs every object, and walvault.json, again
// with this host's writer key: run with a writer key of a new root (and an
// identity file that trusts the old one), it rotates the root.
//
// Each object is read and verified with the configured identities, sealed
// again (same plaintext, same checksum) and stored under the same key in
// one atomic put, so at any moment every object is readable with either the
// old or the new identity, and an interrupted run is finished by running it
// again. Manifests are re-sealed as they are: restore and verify check a
// chunk by its plaintext size and checksum, not by its stored size, so the
// sizes manifests record (which change with the age header) stay valid as
// figures of what was written.
package rekey

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/internal/workpool"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// ErrCannotRead: the configured identities cannot read objects encrypted to
// the new recipients, so rekeying would lock the owner out.
var ErrCannotRead = errors.New("none of the identities can decrypt objects encrypted to the new recipients")

// Options configure Run.
type Options struct {
	// Workers bounds the objects in flight (default 4).
	Workers int
	// Progress, if set, is called after each object with the counts so far.
	Progress func(done, total int64)
	// Change says who rekeys and how long Run waits for the repository's
	// exclusive lock.
	Change repo.ChangeOptions
}

// Result counts what Run did.
type Result struct {
	Objects int64
	Bytes   int64 // plaintext bytes re-encrypted
}

// CheckReadable seals a probe with r's recipients and opens it with r's
// identities.
func CheckReadable(r *repo.Repository) error {
	sealed, _, err := r.Seal("rekey-probe", []byte("walvault rekey probe"))
	if err != nil {
		return err
	}
	if _, _, err := r.Unseal(sealed); err != nil {
		return fmt.Errorf("%w (%v): add the new identity to the identity file first (an age identity file holds several keys, one per line)", ErrCannotRead, err)
	}
	return nil
}

// Count returns how many sealed objects Run would re-encrypt, and their
// stored size (a dry run).
func Count(ctx context.Context, r *repo.Repository) (n, bytes int64, err error) {
	objs, err := r.SealedObjects(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("rekey: %w", err)
	}
	for _, oi := range objs {
		bytes += oi.Size
	}
	return int64(len(objs)), bytes, nil
}

// Run re-encrypts every sealed object of r to r's recipients, under the
// repository's exclusive lock, and records what it did in the audit
// trail, also when it stopped part-way.
func Run(ctx context.Context, r *repo.Repository, opts Options) (Result, error) {
	if !r.Config.Encrypted() {
		return Result{}, fmt.Errorf("repository %s is not encrypted: there is nothing to rekey", r)
	}
	if err := CheckReadable(r); err != nil {
		return Result{}, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	var res Result
	err := r.Change(ctx, repo.LockExclusive, "rekey", opts.Change, func(l *repo.Lock) (repo.Audit, error) {
		var err error
		res, err = run(ctx, r, opts, l.Valid)
		if err == nil {
			// Every object is now signed by this host's writer:
			// walvault.json too, under the writer's root (a root
			// rotation ends here).
			err = r.ResignConfig(ctx)
		}
		action := fmt.Sprintf("re-encrypted %d objects (%s) to the configured recipients", res.Objects, units.Bytes(res.Bytes))
		if r.Signed() {
			action = fmt.Sprintf("re-encrypted and signed again %d objects (%s) to the configured recipients, as writer %s of root %s", res.Objects, units.Bytes(res.Bytes), r.Config.Writer, r.Config.Root)
		}
		if err != nil {
			action += " before stopping on an error"
		}
		return repo.Audit{Action: action}, err
	})
	return res, err
}

func run(ctx context.Context, r *repo.Repository, opts Options, valid func() error) (Result, error) {
	objs, err := r.SealedObjects(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("rekey: %w", err)
	}
	keys := make([]string, len(objs))
	for i, oi := range objs {
		keys[i] = oi.Key
	}
	var (
		res  Result
		done atomic.Int64
		mu   sync.Mutex
	)
	err = workpool.Each(ctx, keys, opts.Workers, func(key string) error {
		n, err := one(ctx, r, key, valid)
		if err != nil {
			return err
		}
		mu.Lock()
		res.Objects++
		res.Bytes += n
		mu.Unlock()
		if opts.Progress != nil {
			opts.Progress(done.Add(1), int64(len(keys)))
		}
		return nil
	})
	return res, err
}

// one re-seals the object under key.
func one(ctx context.Context, r *repo.Repository, key string, valid func() error) (int64, error) {
	if err := valid(); err != nil {
		return 0, err
	}
	// Block backups' packs and file lists have their own envelope.
	if n, ok, err := r.ResealBlockObject(ctx, key); ok {
		if err != nil {
			return 0, fmt.Errorf("rekey: %w", err)
		}
		return n, nil
	}
	plain, h, err := r.Get(ctx, key)
	if storage.IsNotExist(err) {
		return 0, nil // removed meanwhile (a superseded partial)
	}
	if err != nil {
		return 0, fmt.Errorf("rekey: %w", err)
	}
	if err := valid(); err != nil {
		return 0, err
	}
	if _, err := r.PutSum(ctx, key, plain, h.SHA256, storage.PutOptions{}); err != nil {
		return 0, fmt.Errorf("rekey: %w", err)
	}
	return int64(len(plain)), nil
}
