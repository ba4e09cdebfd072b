package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/walvault/walvault/archive/expire"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// blockTar is a tar stream of files whose blocks change a little with each
// version: block i of file f changes when (i+f+version)%5 == 0.
func blockTar(t *testing.T, version int) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	label := []byte("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n")
	tw.WriteHeader(&tar.Header{Name: "backup_label", Mode: 0o600, Size: int64(len(label)), Typeflag: tar.TypeReg})
	tw.Write(label)
	tw.WriteHeader(&tar.Header{Name: "base/1", Mode: 0o700, Typeflag: tar.TypeDir})
	for f := range 3 {
		const blocks = 40
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("base/1/%d", 16384+f), Mode: 0o600, Size: blocks*repo.BlockSize - 100, Typeflag: tar.TypeReg})
		for i := range blocks {
			v := 0
			if (i+f+version)%5 == 0 {
				v = version
			}
			page := make([]byte, repo.BlockSize)
			for j := 0; j < len(page); j += 32 {
				sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(f<<40|i<<20|v<<8|j/32%8)))
				copy(page[j:], sum[:])
			}
			if i == blocks-1 {
				page = page[:repo.BlockSize-100]
			}
			tw.Write(page)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// storeBlockBackup stores a block backup of data as Run does: pin,
// deduplicate against the newest backup, packs, file list, manifest, unpin.
func storeBlockBackup(ctx context.Context, r *repo.Repository, id string, data []byte) error {
	log := slog.New(slog.DiscardHandler)
	defer r.RemovePin(context.WithoutCancel(ctx), id)
	_, wait, err := previousBlocks(ctx, r, id, time.Now(), log, false)
	if err != nil {
		return err
	}
	prev, _, err := wait()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, err := newBlockWriter(ctx, cancel, r, id, prev, 2, log)
	if err != nil {
		return err
	}
	w.begin("base.tar")
	err = w.write(data)
	if err == nil {
		err = w.end()
	} else {
		w.abort(err)
	}
	info, ferr := w.finish(err == nil)
	if err != nil || ferr != nil {
		return fmt.Errorf("store backup %s: %v %v", id, err, ferr)
	}
	st := w.stats
	return r.PutBackupManifest(ctx, &repo.BackupManifest{ID: id, Timeline: 1, SystemIdentifier: r.Config.SystemIdentifier,
		Archives: []repo.Archive{{Name: "base.tar", Bytes: int64(len(data)), Layout: repo.ArchiveBlocks}},
		FileList: &repo.Chunk{Key: info.Key, Size: info.PlainSize, StoredSize: info.StoredSize, SHA256: info.SHA256}, Blocks: &st})
}

// TestSweepRacesBackups: block backups run while an expire removes every
// backup but the newest and sweeps the packs nothing references, over and
// over, with no lock between them (as when a backup's lock lapsed): the
// pins alone must keep every block a running or kept backup needs. At the
// end every block of every remaining backup reads back and matches its id,
// and packs no backup references were swept.
func TestSweepRacesBackups(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed(), repotest.OnDisk())
	r := tr.Repository
	const backups = 8
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	done := make(chan struct{})
	var backupErr error
	wg.Go(func() {
		defer close(done)
		for v := range backups {
			if err := storeBlockBackup(ctx, r, repo.NewBackupID(start.Add(time.Duration(v)*time.Second)), blockTar(t, v+1)); err != nil {
				backupErr = err
				return
			}
		}
	})
	sweeps, swept := 0, 0
	var expireErr error
	wg.Go(func() {
		for {
			select {
			case <-done:
				if sweeps > 0 {
					return
				}
			default:
			}
			ids, err := r.BackupIDs(ctx)
			if err != nil {
				expireErr = err
				return
			}
			var removed []string
			if len(ids) > 1 {
				removed = ids[:len(ids)-1]
			}
			sp, err := expire.PrepareSweep(ctx, r, removed, time.Now())
			if err != nil {
				expireErr = err
				return
			}
			objs, err := r.BackupObjects(ctx)
			if err != nil {
				expireErr = err
				return
			}
			for _, o := range objs {
				for _, id := range removed {
					if o.ID == id {
						r.Remove(ctx, o.Key)
					}
				}
			}
			for _, k := range sp.Packs {
				if err := r.Remove(ctx, k); err != nil {
					expireErr = err
					return
				}
				swept++
			}
			sweeps++
		}
	})
	wg.Wait()
	if backupErr != nil || expireErr != nil {
		t.Fatalf("backup: %v; expire: %v", backupErr, expireErr)
	}
	t.Logf("%d sweeps removed %d packs", sweeps, swept)

	ids, err := r.BackupIDs(ctx)
	if err != nil || len(ids) == 0 {
		t.Fatalf("backups left: %v %v", ids, err)
	}
	h, err := r.NewBlockHasher()
	if err != nil {
		t.Fatal(err)
	}
	referenced := map[string]bool{}
	for _, id := range ids {
		fl, err := r.FileList(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		// The pieces of its runs (read as FileList expanded the list).
		for _, b := range fl.ListBlocks {
			referenced[fl.Packs[b.Pack]] = true
		}
		for _, a := range fl.Archives {
			for _, e := range a.Entries {
				for _, b := range e.Blocks {
					key := fl.Packs[b.Pack]
					referenced[key] = true
					p, err := r.OpenPack(ctx, key)
					if err != nil {
						t.Fatalf("backup %s, %s: %v", id, e.Name, err)
					}
					sealed, err := p.ReadRange(ctx, b.Offset, int64(b.Length))
					if err != nil {
						t.Fatalf("backup %s, %s: %v", id, e.Name, err)
					}
					plain, err := p.OpenBlock(sealed, b.Offset, b.Index)
					if err != nil || h.ID(plain) != b.ID {
						t.Fatalf("backup %s, %s: block %s: %v", id, e.Name, b.ID, err)
					}
				}
			}
		}
	}
	// A last sweep with nothing running removes every pack no remaining
	// backup references.
	sp, err := expire.PrepareSweep(ctx, r, ids[:len(ids)-1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	packs, _, err := r.Packs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		if !referenced[p.Key] && !contains(sp.Packs, p.Key) {
			t.Errorf("pack %s is referenced by no backup and not swept", p.Key)
		}
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
