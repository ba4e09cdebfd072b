package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
)

func TestLoad(t *testing.T) {
	ctx := context.Background()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := repo.Init(ctx, st, repo.Config{
		SystemIdentifier: "7000000000000000001", PGMajor: 15, WALSegmentSize: segSize,
		Encryption: repo.EncryptionAge, CreatedAt: time.Now(),
	}, repo.Options{Recipients: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	put := func(key, data string) {
		t.Helper()
		if _, err := r.Put(ctx, key, []byte(data), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []uint64{2, 3} {
		put(repo.WALSegmentKey(1, n, segSize), "segment")
	}
	put(repo.WALSegmentKey(2, 3, segSize), "segment")
	put("wal/00000002/00000002.history", "1\t0/3000100\tno recovery target specified\n")
	b := &repo.BackupManifest{ID: "20261122T120000Z", Timeline: 1, StartLSN: pgwal.LSN(2*segSize + 0x28), StopLSN: pgwal.LSN(2*segSize + 0x100)}
	if err := r.PutBackupManifest(ctx, b); err != nil {
		t.Fatal(err)
	}

	c, err := Load(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Backups) != 1 || len(c.WAL) != 4 || c.SegSize != segSize {
		t.Fatalf("catalog: %d backups, %d WAL files, segment size %d", len(c.Backups), len(c.WAL), c.SegSize)
	}
	if h := c.Timelines[2]; len(h) != 1 || h[0].Timeline != 1 || h[0].SwitchLSN != pgwal.LSN(0x3000100) {
		t.Errorf("history of timeline 2: %+v", h)
	}
	w, ok := c.Reach(c.Backups[0])
	if !ok || w.ToLSN != pgwal.LSN(4*segSize) || w.Timeline != 2 {
		t.Errorf("Reach = %v, %v; want to 0/4000000 on timeline 2", w, ok)
	}

	// A damaged history file is an integrity error, never skipped.
	put("wal/00000003/00000003.history", "not a history\n")
	if _, err := Load(ctx, r); !errors.Is(err, repo.ErrIntegrity) {
		t.Errorf("Load with a bad history file: %v, want ErrIntegrity", err)
	}
}

// TestLoadReadable: a damaged manifest is left out and reported, the other
// backups stay; when no manifest can be read, the error is returned as
// Load returns it.
func TestLoadReadable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	cfg := repo.Config{SystemIdentifier: "7000000000000000001", PGMajor: 15, WALSegmentSize: segSize, Encryption: repo.EncryptionAge, CreatedAt: time.Now()}
	r, _, err := repo.Init(ctx, st, cfg, repo.Options{Recipients: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, bid := range []string{"20261122T120000Z", "20261123T120000Z"} {
		b := &repo.BackupManifest{ID: bid, Timeline: 1, StartLSN: pgwal.LSN(uint64(2+i)*segSize + 0x28), StopLSN: pgwal.LSN(uint64(2+i)*segSize + 0x100)}
		if err := r.PutBackupManifest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	damaged := filepath.Join(dir, filepath.FromSlash(repo.BackupManifestKey("20261122T120000Z")))
	data, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 1
	if err := os.WriteFile(damaged, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, r); !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("Load: err = %v, want the integrity error", err)
	}
	c, skipped, err := LoadReadable(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Backups) != 1 || c.Backups[0].ID != "20261123T120000Z" || len(skipped) != 1 || skipped[0].ID != "20261122T120000Z" || !errors.Is(skipped[0].Err, repo.ErrIntegrity) {
		t.Fatalf("backups %v, skipped %v", c.Backups, skipped)
	}

	wrong, err := repo.Open(ctx, st, repo.Options{Identities: []age.Identity{other}})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if _, _, err := LoadReadable(ctx, wrong); !errors.Is(err, repo.ErrWrongKey) {
		t.Fatalf("no manifest readable: err = %v, want the first manifest's error", err)
	}
	noID, err := repo.Open(ctx, st, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer noID.Close()
	if _, _, err := LoadReadable(ctx, noID); !errors.Is(err, repo.ErrNoIdentity) {
		t.Fatalf("no identity: err = %v, want ErrNoIdentity", err)
	}
}
