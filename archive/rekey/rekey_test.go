package rekey

import (
	"context"
	"errors"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
)

func TestRekey(t *testing.T) {
	ctx := context.Background()
	old, oldID, dir := waltest.Repo(t)
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{
		repo.WALSegmentKey(1, 3, waltest.SegSize),
		repo.BackupChunkKey("20261124T100000Z", "base.tar", 0),
		repo.StreamPartialKey(1, "000000010000000000000004", 0x100),
	}
	for i, k := range keys {
		if _, err := old.Put(ctx, k, []byte{byte(i), 1, 2, 3}, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.AppendAudit(ctx, repo.AuditRecord{Command: "init", Action: "created"}); err != nil {
		t.Fatal(err)
	}
	newID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	open := func(rs []age.Recipient, ids ...age.Identity) *repo.Repository {
		r, err := repo.Open(ctx, st, repo.Options{Recipients: rs, Identities: ids})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
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
