package catalog

import (
	"context"
	"errors"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// newRepo makes a repository of 16 MiB segments for the catalog tests.
func newRepo(t *testing.T) *repotest.Repo {
	t.Helper()
	return repotest.New(t, repotest.WithConfig(func(c *repo.Config) {
		c.SystemIdentifier, c.WALSegmentSize = "7000000000000000001", segSize
	}))
}

func TestLoad(t *testing.T) {
	ctx := context.Background()
	tr := newRepo(t)
	r := tr.Repository
	put := func(key, data string) {
		t.Helper()
		tr.Write(t, key, []byte(data))
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
	tr := newRepo(t)
	r := tr.Repository
	for i, bid := range []string{"20261122T120000Z", "20261123T120000Z"} {
		b := &repo.BackupManifest{ID: bid, Timeline: 1, StartLSN: pgwal.LSN(uint64(2+i)*segSize + 0x28), StopLSN: pgwal.LSN(uint64(2+i)*segSize + 0x100)}
		if err := r.PutBackupManifest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	damaged := repo.BackupManifestKey("20261122T120000Z")
	data := tr.Raw(t, damaged)
	data[len(data)-10] ^= 1
	tr.SetRaw(t, damaged, data)
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

	wrong := tr.Open(t, repotest.Keys(repotest.NewIdentity(t)))
	if _, _, err := LoadReadable(ctx, wrong); !errors.Is(err, repo.ErrWrongKey) {
		t.Fatalf("no manifest readable: err = %v, want the first manifest's error", err)
	}
	noID := tr.Open(t, repo.Options{})
	if _, _, err := LoadReadable(ctx, noID); !errors.Is(err, repo.ErrNoIdentity) {
		t.Fatalf("no identity: err = %v, want ErrNoIdentity", err)
	}
}
