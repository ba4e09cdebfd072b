package rekey

import (
	"context"
	"errors"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

func TestRekey(t *testing.T) {
	ctx := context.Background()
	old := repotest.New(t)
	oldID := old.Identity
	keys := []string{
		repo.WALSegmentKey(1, 3, waltest.SegSize),
		repo.BackupChunkKey("20261124T100000Z", "base.tar", 0),
		repo.StreamPartialKey(1, "000000010000000000000004", 0x100),
	}
	for i, k := range keys {
		old.Write(t, k, []byte{byte(i), 1, 2, 3})
	}
	if err := old.AppendAudit(ctx, repo.AuditRecord{Command: "init", Action: "created"}); err != nil {
		t.Fatal(err)
	}
	newID := repotest.NewIdentity(t)
	open := func(rs []age.Recipient, ids ...age.Identity) *repo.Repository {
		return old.Open(t, repo.Options{Recipients: rs, Identities: ids})
	}

	// New recipients that no configured identity can read: refused, and
	// nothing is rewritten.
	if _, err := Run(ctx, open([]age.Recipient{newID.Recipient()}, oldID), Options{}); !errors.Is(err, ErrCannotRead) {
		t.Fatalf("rekey to an unreadable recipient: %v, want ErrCannotRead", err)
	}
	if _, _, err := open(nil, oldID).Get(ctx, keys[0]); err != nil {
		t.Fatalf("object changed by a refused rekey: %v", err)
	}

	res, err := Run(ctx, open([]age.Recipient{newID.Recipient()}, oldID, newID), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 4 {
		t.Errorf("rekeyed %d objects, want 4", res.Objects)
	}
	onlyNew, onlyOld := open(nil, newID), open(nil, oldID)
	for i, k := range keys {
		data, _, err := onlyNew.Get(ctx, k)
		if err != nil || data[0] != byte(i) {
			t.Errorf("%s with the new identity: %v", k, err)
		}
		if _, _, err := onlyOld.Get(ctx, k); !errors.Is(err, repo.ErrWrongKey) {
			t.Errorf("%s still readable with the retired identity: %v", k, err)
		}
	}
	// The record that was there, re-encrypted, and the rekey's own.
	if recs, err := onlyNew.AuditRecords(ctx, time.Time{}); err != nil || len(recs) != 2 || recs[1].Command != "rekey" {
		t.Errorf("audit records with the new identity: %v, %v", recs, err)
	}
}

// TestRekeyRotatesRoot: rekey run with a writer key of a new root signs
// every object and walvault.json again, so that a reader holding only the
// new identity and trusting only the new root reads the whole repository,
// and one that trusts only the retired root refuses it.
func TestRekeyRotatesRoot(t *testing.T) {
	ctx := context.Background()
	old := repotest.New(t, repotest.Signed())
	keys := []string{
		repo.WALSegmentKey(1, 3, waltest.SegSize),
		repo.BackupChunkKey("20261124T100000Z", "base.tar", 0),
	}
	for i, k := range keys {
		old.Write(t, k, []byte{byte(i), 1, 2, 3})
	}
	newID, newRoot := repotest.NewIdentity(t), repotest.NewRoot(t)
	newWriter := repotest.NewWriter(t, newRoot, "db1-2027")

	// The rotating host reads with both identities, trusts the old root
	// (its identity file) and the new one (its writer key's certificate).
	rotating := old.Open(t, repo.Options{
		Recipients:   []age.Recipient{newID.Recipient()},
		Identities:   []age.Identity{old.Identity, newID},
		TrustedRoots: []crypto.RootPublicKey{old.Root.Public()},
		Writer:       newWriter,
	})
	if _, err := Run(ctx, rotating, Options{}); err != nil {
		t.Fatal(err)
	}

	cfg, err := repo.ReadConfig(ctx, old.Store)
	if err != nil || cfg.Root != newRoot.Public().String() || cfg.Writer != newWriter.Cert.ID {
		t.Fatalf("walvault.json after the rotation: root %s writer %s (%v), want %s and %s", cfg.Root, cfg.Writer, err, newRoot.Public(), newWriter.Cert.ID)
	}
	reader := func(root *crypto.RootKey, id *age.X25519Identity) *repo.Repository {
		r, err := repo.OpenWithConfig(old.Store, cfg, repo.Options{Identities: []age.Identity{id}, TrustedRoots: []crypto.RootPublicKey{root.Public()}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	onlyNew := reader(newRoot, newID)
	for i, k := range keys {
		if data, _, err := onlyNew.Get(ctx, k); err != nil || data[0] != byte(i) {
			t.Errorf("%s with only the new identity and root: %v", k, err)
		}
	}
	if recs, err := onlyNew.AuditRecords(ctx, time.Time{}); err != nil || len(recs) != 1 || recs[0].Command != "rekey" {
		t.Errorf("audit records with only the new root: %v, %v", recs, err)
	}
	if _, _, err := reader(old.Root, old.Identity).Get(ctx, keys[0]); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("a reader that trusts only the retired root: %v, want ErrUntrusted", err)
	}
}
