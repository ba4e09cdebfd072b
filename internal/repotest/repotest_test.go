package repotest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/memstore"
)

func TestNew(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t)
	if tr.Dir != "" || tr.Identity == nil || !tr.Config.Encrypted() || tr.Config.SysID() != waltest.SysID || tr.Config.WALSegmentSize != waltest.SegSize {
		t.Fatalf("default repository: dir %q, identity %v, config %+v", tr.Dir, tr.Identity, tr.Config)
	}
	seg := tr.PutSegment(t, 1, 3, 7)
	key := repo.WALSegmentKey(1, 3, waltest.SegSize)
	got, _, err := tr.Get(ctx, key)
	if err != nil || !bytes.Equal(got, seg) {
		t.Fatalf("segment read back: %v", err)
	}
	if bytes.Contains(tr.Raw(t, key), seg[:64]) {
		t.Error("stored segment not encrypted")
	}
	// Another key reads nothing; another handle with the keys reads.
	other := tr.Open(t, repotest.Keys(repotest.NewIdentity(t)))
	if _, _, err := other.Get(ctx, key); !errors.Is(err, repo.ErrWrongKey) {
		t.Errorf("other key: %v", err)
	}
	again := repotest.New(t, repotest.OnStore(tr.Store), repotest.WithIdentity(tr.Identity))
	if _, _, err := again.Get(ctx, key); err != nil {
		t.Errorf("second handle: %v", err)
	}
	// Damage through SetRaw is caught.
	raw := tr.Raw(t, key)
	raw[len(raw)-1] ^= 1
	tr.SetRaw(t, key, raw)
	if _, _, err := tr.Get(ctx, key); !errors.Is(err, repo.ErrIntegrity) {
		t.Errorf("damaged object: %v", err)
	}
}

func TestOptions(t *testing.T) {
	plain := repotest.New(t, repotest.Plain(), repotest.WithConfig(func(c *repo.Config) { c.PGMajor = 17 }))
	if plain.Identity != nil || plain.Config.Encrypted() || plain.Config.PGMajor != 17 {
		t.Errorf("plain repository: identity %v, config %+v", plain.Identity, plain.Config)
	}
	// A second handle on a store takes the repository it finds.
	if again := repotest.New(t, repotest.OnStore(plain.Store)); again.Identity != nil || again.Config.PGMajor != 17 {
		t.Errorf("second handle on the plain repository: identity %v, config %+v", again.Identity, again.Config)
	}
	disk := repotest.New(t, repotest.OnDisk())
	if _, err := os.Stat(filepath.Join(disk.Dir, repo.ConfigKey)); err != nil {
		t.Errorf("repository on disk: %v", err)
	}
	fs := faulty.Wrap(memstore.New())
	wrapped := repotest.New(t, repotest.OnStore(fs))
	wrapped.Write(t, "k", []byte("x"))
	if fs.Calls(faulty.Put) != 2 { // walvault.json and k
		t.Errorf("%d Puts through the wrapper, want 2", fs.Calls(faulty.Put))
	}
	// Opening it again writes nothing.
	repotest.New(t, repotest.OnStore(fs), repotest.WithIdentity(wrapped.Identity))
	if fs.Calls(faulty.Put) != 2 {
		t.Errorf("a second handle wrote %d objects", fs.Calls(faulty.Put)-2)
	}
	if got := repotest.IdentityFile(t, wrapped.Identity); got == "" {
		t.Error("no identity file")
	}
}

func TestPutBackup(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t)
	base := bytes.Repeat([]byte("0123456789"), 250)
	m := &repo.BackupManifest{ID: "20260101T000000Z", Timeline: 1, StartLSN: 0x100028, StopLSN: 0x100100}
	tr.PutBackup(t, m, 1000, repotest.Archive{Name: "base.tar", Data: base},
		repotest.Archive{Name: "16385.tar", TablespaceOID: 16385, TablespacePath: "/ts", Data: []byte("ts")})
	got, err := tr.BackupManifest(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Archives) != 2 || len(got.Archives[0].Chunks) != 3 || got.Bytes != int64(len(base)+2) || got.Archives[1].TablespaceOID != 16385 {
		t.Fatalf("manifest %+v", got)
	}
	var back []byte
	for _, c := range got.Archives[0].Chunks {
		plain, _, err := tr.Get(ctx, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, plain...)
	}
	if !bytes.Equal(back, base) {
		t.Error("chunks do not concatenate to the archive")
	}
}
