package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// TestSignedRepository: in a format-2 repository every object is signed
// by a certified writer and bound to its key; a reader that trusts the
// root reads them, and whatever someone with only bucket access plants,
// copies, renames or alters is refused.
func TestSignedRepository(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	if tr.Config.Format != repo.FormatSigned || tr.Config.Root != tr.Root.Public().String() {
		t.Fatalf("config %+v", tr.Config)
	}
	tr.Write(t, "wal/00000001/000000010000000000000003", []byte("segment three"))
	tr.Write(t, "wal/00000001/000000010000000000000004", []byte("segment four"))

	// A reader with only the identity and the root (the restore host).
	reader := tr.Open(t, repo.Options{Identities: tr.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	if got, _, err := reader.Get(ctx, "wal/00000001/000000010000000000000003"); err != nil || string(got) != "segment three" {
		t.Fatalf("Get: %q, %v", got, err)
	}
	if h, err := reader.Header(ctx, "wal/00000001/000000010000000000000004"); err != nil || h.Writer != tr.Writer.ID() {
		t.Fatalf("Header: %+v, %v", h, err)
	}

	// Copied under another name: the signature binds the name.
	tr.SetRaw(t, "wal/00000002/000000020000000000000003", tr.Raw(t, "wal/00000001/000000010000000000000003"))
	if _, _, err := reader.Get(ctx, "wal/00000002/000000020000000000000003"); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("copy under another name: %v", err)
	}
	if _, err := reader.Header(ctx, "wal/00000002/000000020000000000000003"); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("copy under another name, header only: %v", err)
	}

	// Forged with the public recipient by someone with their own root.
	forger := repotest.New(t, repotest.Signed(), repotest.WithIdentity(tr.Identity), repotest.WithConfig(func(c *repo.Config) {}))
	forged, _, err := forger.Seal("wal/00000001/000000010000000000000005", []byte("forged"))
	if err != nil {
		t.Fatal(err)
	}
	tr.SetRaw(t, "wal/00000001/000000010000000000000005", forged)
	if _, _, err := reader.Get(ctx, "wal/00000001/000000010000000000000005"); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("forged by another root's writer: %v", err)
	}

	// Forged as an unsigned (format-1) object with the recipient.
	plain := repotest.New(t, repotest.WithIdentity(tr.Identity))
	unsigned, _, err := plain.Seal("wal/00000001/000000010000000000000006", []byte("unsigned"))
	if err != nil {
		t.Fatal(err)
	}
	tr.SetRaw(t, "wal/00000001/000000010000000000000006", unsigned)
	if _, _, err := reader.Get(ctx, "wal/00000001/000000010000000000000006"); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("unsigned object: %v", err)
	}

	// A byte of the signed header changed.
	raw := tr.Raw(t, "wal/00000001/000000010000000000000004")
	raw[9] ^= 1 // the plaintext size
	tr.SetRaw(t, "wal/00000001/000000010000000000000004", raw)
	if _, _, err := reader.Get(ctx, "wal/00000001/000000010000000000000004"); !errors.Is(err, repo.ErrIntegrity) {
		t.Errorf("altered header: %v", err)
	}

	// A reader trusting another root refuses everything.
	other := repotest.NewRoot(t)
	stranger := tr.Open(t, repo.Options{Identities: tr.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{other.Public()}})
	if _, _, err := stranger.Get(ctx, "wal/00000001/000000010000000000000003"); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("reader trusting another root: %v", err)
	}
	// That is nearly always the identity file of another repository: the
	// error says the key is wrong and names both roots.
	_, _, err = stranger.Get(ctx, "wal/00000001/000000010000000000000003")
	if !errors.Is(err, repo.ErrWrongKey) {
		t.Errorf("reader trusting another root: %v, want a wrong key", err)
	}
	for _, w := range []string{"wrong key", tr.Root.Public().String(), other.Public().String(), "identity file"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("reader trusting another root: %v does not mention %q", err, w)
		}
	}

	// Writing needs a writer key.
	noWriter := tr.Open(t, repo.Options{Recipients: tr.Keys.Recipients, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	if _, err := noWriter.Put(ctx, "audit/x", []byte("x"), storage.PutOptions{}); !errors.Is(err, repo.ErrNoWriterKey) {
		t.Errorf("put without a writer key: %v", err)
	}
}

// TestSignedConfig: walvault.json is signed; altering it (another cluster,
// no encryption, back to format 1) makes readers refuse.
func TestSignedConfig(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	tr.Write(t, "audit/a", []byte("record"))
	keys := repo.Options{Identities: tr.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}}

	var cfg map[string]any
	if err := json.Unmarshal(tr.Raw(t, repo.ConfigKey), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["system_identifier"] = "7000000000000000009"
	altered, _ := json.Marshal(cfg)
	tr.SetRaw(t, repo.ConfigKey, altered)
	r := tr.Open(t, keys)
	if _, _, err := r.Get(ctx, "audit/a"); !errors.Is(err, repo.ErrUntrusted) || !strings.Contains(err.Error(), "altered") {
		t.Errorf("altered walvault.json: %v", err)
	}

	// Downgraded to format 1: a reader holding a root refuses it.
	down := []byte(`{"format":1,"system_identifier":"7000000000000000009","pg_major":15,"wal_segment_size":16777216,"encryption":"age"}`)
	tr.SetRaw(t, repo.ConfigKey, down)
	if _, err := repo.Open(ctx, tr.Store, keys); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("walvault.json downgraded to format 1: %v", err)
	}
	keys.AllowUnsigned = true
	if r, err := repo.Open(ctx, tr.Store, keys); err != nil {
		t.Errorf("AllowUnsigned: %v", err)
	} else {
		r.Close()
	}
}

// TestSignedStream: streamed (filestore) objects are signed and bound to
// their name too.
func TestSignedStream(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	data := bytes.Repeat([]byte("attachment "), 50000)
	name := repo.FilestoreNameOf(strings.Repeat("ab", 20))
	var sealed bytes.Buffer
	if err := tr.SealFilestoreObject(&sealed, name, bytes.NewReader(data), int64(len(data)), sha256Sum(data)); err != nil {
		t.Fatal(err)
	}
	if err := tr.PutSealedFilestoreObject(ctx, name, bytes.NewReader(sealed.Bytes())); err != nil {
		t.Fatal(err)
	}
	reader := tr.Open(t, repo.Options{Identities: tr.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	rc, _, err := reader.OpenFilestoreObject(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, err = got.ReadFrom(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read back: %v", err)
	}
	other := repo.FilestoreNameOf(strings.Repeat("cd", 20))
	tr.SetRaw(t, repo.FilestoreObjectKey(other), sealed.Bytes())
	if _, _, err := reader.OpenFilestoreObject(ctx, other); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("stream under another name: %v", err)
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestSignedRepositoryLocks: in a format-2 repository a lock counts only
// when a trusted writer signed it under its own name. A lock planted by
// someone with bucket access (unsigned, a copy of a real lock under a
// longer-lived name, or signed by another repository's writer) is ignored
// and reported, never a wedge; a real one still excludes.
func TestSignedRepositoryLocks(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	other := repotest.New(t, repotest.Signed()) // another repository's writer

	real, err := tr.Lock(ctx, repo.LockShared, "backup", repo.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var realKey string
	locks, _ := tr.Locks(ctx)
	for _, li := range locks {
		realKey = li.Key
	}
	exp := time.Now().Add(repo.DefaultLockLease).Unix()
	planted := map[string][]byte{
		// Unsigned: any bytes.
		fmt.Sprintf("locks/exclusive.expire.%d.0badc0de-1-00000001", exp): []byte("x"),
		// A real lock's bytes copied under an exclusive name.
		fmt.Sprintf("locks/exclusive.expire.%d.0badc0de-1-00000002", exp): tr.Raw(t, realKey),
	}
	// Signed by a writer of another repository, under its own name.
	foreign := fmt.Sprintf("locks/exclusive.rekey.%d.0badc0de-1-00000003", exp)
	other.Write(t, foreign, []byte("{}"))
	planted[foreign] = other.Raw(t, foreign)
	for k, b := range planted {
		tr.SetRaw(t, k, b)
	}
	if err := real.Release(ctx); err != nil {
		t.Fatal(err)
	}

	l, err := tr.Lock(ctx, repo.LockExclusive, "expire", repo.LockOptions{})
	if err != nil {
		t.Fatalf("exclusive lock with planted locks: %v", err)
	}
	ignored := map[string]string{}
	for _, ig := range l.Ignored() {
		ignored[ig.Key] = ig.Reason
	}
	for k := range planted {
		if !strings.Contains(ignored[k], "not signed by a writer of this repository") {
			t.Errorf("planted %s: ignored with %q, want reported as unsigned", k, ignored[k])
		}
	}
	// A signed lock by this repository's writer still excludes.
	if _, err := tr.Lock(ctx, repo.LockShared, "backup", repo.LockOptions{}); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("shared lock while a signed exclusive one is held: %v, want ErrLocked", err)
	}
	l.Release(ctx)
}

// TestSignedRepositoryReplays: an audit or filestore log record copied
// under another name is refused, naming the copy, not read as a second
// event.
// A format-1 repository refuses a copy under another time only.
func TestSignedRepositoryReplays(t *testing.T) {
	t.Run("format2", func(t *testing.T) { testReplays(t, repotest.New(t, repotest.Signed()), true) })
	t.Run("format1", func(t *testing.T) { testReplays(t, repotest.New(t), false) })
}

func testReplays(t *testing.T, tr *repotest.Repo, signed bool) {
	ctx := context.Background()
	if err := tr.AppendAudit(ctx, repo.AuditRecord{Command: "expire"}); err != nil {
		t.Fatal(err)
	}
	key, err := tr.PutFilestoreRecord(ctx, repo.FilestoreRecord{DB: "odoo", Time: time.Now(), Kind: repo.FilestoreSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := tr.AuditRecords(ctx, time.Time{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("audit: %v, %v", recs, err)
	}
	for _, tc := range []struct {
		from, to string
		sameTime bool
		read     func() error
	}{
		{recs[0].Key, recs[0].Key + "0", true, func() error { _, err := tr.AuditRecords(ctx, time.Time{}); return err }},
		{recs[0].Key, repo.AuditPrefix + "29990101T000000.000000000Z-0badc0de", false, func() error { _, err := tr.AuditRecords(ctx, time.Time{}); return err }},
		{key, key + "0", true, func() error { _, err := tr.FilestoreLog(ctx, "odoo"); return err }},
		{key, repo.FilestoreLogKey("odoo", time.Now().Add(time.Hour), "0badc0de"), false, func() error { _, err := tr.FilestoreLog(ctx, "odoo"); return err }},
	} {
		if tc.sameTime && !signed {
			continue // format 1 does not bind the whole name
		}
		tr.SetRaw(t, tc.to, tr.Raw(t, tc.from))
		err := tc.read()
		if !errors.Is(err, repo.ErrIntegrity) || !strings.Contains(err.Error(), tc.to) {
			t.Errorf("%s copied to %s: %v, want an integrity error naming the copy", tc.from, tc.to, err)
		}
		if err := tr.Store.Delete(ctx, tc.to); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGuarantees: check and verify say what a repository's format
// promises; a format-1 repository says what it does not.
func TestGuarantees(t *testing.T) {
	signed := repotest.New(t, repotest.Signed())
	if g := signed.Config.Guarantees(); !strings.Contains(g, "format 2: encrypted (age) and signed") || !strings.Contains(g, signed.Config.Root) {
		t.Errorf("format 2: %q", g)
	}
	if g := repotest.New(t).Config.Guarantees(); !strings.Contains(g, "format 1: encrypted (age) but not signed") || !strings.Contains(g, "plant") {
		t.Errorf("format 1: %q", g)
	}
	if g := repotest.New(t, repotest.Plain()).Config.Guarantees(); !strings.Contains(g, "neither encrypted nor signed") {
		t.Errorf("plain: %q", g)
	}
}
