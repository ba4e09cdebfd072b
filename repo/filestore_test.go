package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/storage/faulty"
)

func TestFilestoreNames(t *testing.T) {
	sha := "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	good := FilestoreNameOf(sha)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{good, true},
		{"db/" + sha, false},                  // folder is not the hash's start
		{"da/" + strings.ToUpper(sha), false}, // Odoo writes lowercase
		{"da/" + sha[:39], false},             // short
		{"dab/" + sha, false},                 // the old three-digit layout
		{"checklist/da/" + sha, false},        // deferred-deletion marker
		{"da/" + sha + ".tmp", false},
	} {
		if got := ValidFilestoreName(tc.name); got != tc.ok {
			t.Errorf("ValidFilestoreName(%q) = %v", tc.name, got)
		}
	}
	if n, ok := ParseFilestoreObjectKey(FilestoreObjectKey(good)); !ok || n != good {
		t.Errorf("object key round trip: %q %v", n, ok)
	}
	for db, ok := range map[string]bool{"odoo": true, "prod-2024.copy_1": true, "": false, "-x": false, "a/b": false, "a b": false, "..": false, strings.Repeat("a", 64): false} {
		if ValidFilestoreDB(db) != ok {
			t.Errorf("ValidFilestoreDB(%q) != %v", db, ok)
		}
	}
	at := time.Date(2026, 11, 24, 5, 0, 0, 123, time.UTC)
	db, tm, err := ParseFilestoreLogKey(FilestoreLogKey("prod", at, "0a0b"))
	if err != nil || db != "prod" || !tm.Equal(at) {
		t.Errorf("log key round trip: %q %v %v", db, tm, err)
	}
}

func TestFilestoreRecordFold(t *testing.T) {
	a, b, c := FilestoreNameOf(strings.Repeat("a", 40)), FilestoreNameOf(strings.Repeat("b", 40)), FilestoreNameOf(strings.Repeat("c", 40))
	state := map[string]bool{}
	recs := []FilestoreRecord{
		{Kind: FilestoreSnapshot, Added: []string{a, b}},
		{Kind: FilestoreDelta, Added: []string{c}, Removed: []string{a}},
		{Kind: FilestoreDelta, Added: []string{c}, Removed: []string{a}}, // applied twice: no change
	}
	for _, r := range recs {
		r.Apply(state)
	}
	if len(state) != 2 || !state[b] || !state[c] {
		t.Fatalf("state %v", state)
	}
	(FilestoreRecord{Kind: FilestoreSnapshot, Added: []string{a}}).Apply(state)
	if len(state) != 1 || !state[a] {
		t.Fatalf("a snapshot replaces the state: %v", state)
	}
}

func TestFilestoreRecordStore(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	a := FilestoreNameOf(strings.Repeat("a", 40))
	t0 := time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)
	for i, rec := range []FilestoreRecord{
		{DB: "prod", Time: t0, Kind: FilestoreSnapshot, Added: []string{a}},
		{DB: "prod", Time: t0.Add(time.Minute), Kind: FilestoreDelta, Removed: []string{a}},
		{DB: "prod2", Time: t0, Kind: FilestoreSnapshot},
	} {
		if _, err := r.PutFilestoreRecord(ctx, rec); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := r.PutFilestoreRecord(ctx, FilestoreRecord{DB: "prod", Time: t0, Kind: "delta", Added: []string{"../x"}}); err == nil {
		t.Fatal("a record with a bad name was stored")
	}
	recs, err := r.FilestoreLog(ctx, "prod")
	if err != nil || len(recs) != 2 || recs[0].Kind != FilestoreSnapshot || recs[1].Removed[0] != a {
		t.Fatalf("log: %+v %v", recs, err)
	}
	dbs, err := r.FilestoreDBs(ctx)
	if err != nil || strings.Join(dbs, ",") != "prod,prod2" {
		t.Fatalf("dbs %v %v", dbs, err)
	}
}

func FuzzParseFilestoreRecord(f *testing.F) {
	good, _ := MarshalFilestoreRecord(FilestoreRecord{DB: "prod", Time: time.Unix(1, 0), Kind: FilestoreDelta,
		Added: []string{FilestoreNameOf(strings.Repeat("a", 40))}, Removed: []string{FilestoreNameOf(strings.Repeat("b", 40))}})
	f.Add(good)
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"db":"x","kind":"snapshot","removed":["aa/aaaa"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseFilestoreRecord(data)
		if err != nil {
			return
		}
		again, err := MarshalFilestoreRecord(rec)
		if err != nil {
			t.Fatalf("a parsed record does not marshal: %v", err)
		}
		rec2, err := ParseFilestoreRecord(again)
		if err != nil || rec2.DB != rec.DB || rec2.Kind != rec.Kind || len(rec2.Added) != len(rec.Added) || len(rec2.Removed) != len(rec.Removed) {
			t.Fatalf("round trip: %+v vs %+v (%v)", rec, rec2, err)
		}
	})
}

func FuzzParseFilestoreLogKey(f *testing.F) {
	f.Add(FilestoreLogKey("prod", time.Unix(5, 7), "abcd"))
	f.Add("filestore/db/x/log/-")
	f.Fuzz(func(t *testing.T, key string) {
		db, tm, err := ParseFilestoreLogKey(key)
		if err != nil {
			return
		}
		if !ValidFilestoreDB(db) || !strings.HasPrefix(key, FilestoreLogPrefix(db)+tm.UTC().Format(filestoreLogTimeFormat)+"-") {
			t.Fatalf("%q parsed as %q %v", key, db, tm)
		}
	})
}

func TestSealStreamOpen(t *testing.T) {
	for _, enc := range []string{EncryptionAge, EncryptionNone} {
		t.Run(enc, func(t *testing.T) {
			r, st, _ := newTestRepo(t, enc)
			ctx := context.Background()
			plain := make([]byte, 3<<20+17)
			rand.Read(plain[:1<<20]) // part random, part compressible
			var sealed bytes.Buffer
			if err := r.sealStream("k", &sealed, bytes.NewReader(plain), int64(len(plain)), sha256.Sum256(plain)); err != nil {
				t.Fatal(err)
			}
			// The in-memory reader opens it too: one envelope.
			got, _, err := r.Unseal(sealed.Bytes())
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("Unseal of a streamed object: %v", err)
			}
			setRaw(t, st, "k", sealed.Bytes())
			rc, h, err := r.Open(ctx, "k")
			if err != nil || h.PlainSize != int64(len(plain)) {
				t.Fatal(err)
			}
			got, err = io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("Open: %v", err)
			}
			// Data that does not match the announced checksum is refused.
			if err := r.sealStream("k", io.Discard, bytes.NewReader(plain[1:]), int64(len(plain)), sha256.Sum256(plain)); !errors.Is(err, ErrIntegrity) {
				t.Fatalf("short data: %v", err)
			}
			// A damaged object fails on read, never as a clean EOF.
			bad := bytes.Clone(sealed.Bytes())
			bad[len(bad)/2] ^= 1
			setRaw(t, st, "bad", bad)
			rc, _, err = r.Open(ctx, "bad")
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("damaged object read: %v", err)
			}
		})
	}
}

func TestOpenTellsReadFailureFromDamage(t *testing.T) {
	r, st, id := newTestRepo(t, EncryptionAge)
	plain := make([]byte, 1<<20)
	rand.Read(plain)
	var sealed bytes.Buffer
	if err := r.sealStream("k", &sealed, bytes.NewReader(plain), int64(len(plain)), sha256.Sum256(plain)); err != nil {
		t.Fatal(err)
	}
	setRaw(t, st, "k", sealed.Bytes())
	for _, tc := range []struct {
		name string
		keep int64
	}{
		{"in the data", int64(sealed.Len() / 2)},
		// age.Decrypt reads its header inside Open.
		{"in the age header", HeaderSize + 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Get answers with a body that fails after keep bytes, as a
			// dropped connection does.
			cut := faulty.Wrap(st)
			cut.Inject(faulty.Fault{Ops: faulty.Get, Mode: faulty.Cut, Cut: tc.keep, Err: errors.New("connection reset by peer")})
			cr, err := OpenWithConfig(cut, r.Config, Options{Identities: []age.Identity{id}})
			if err != nil {
				t.Fatal(err)
			}
			defer cr.Close()
			rc, _, err := cr.Open(context.Background(), "k")
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if err == nil || errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "connection reset") {
				t.Fatalf("a read failure came out as %v", err)
			}
		})
	}
}

// TestPutFilestoreRecordAnswerLost: a record whose put was stored but whose
// answer was lost is found by the retried put, and that is success (as for
// backup manifests, TestManifestPutAnswerLost): the pass's cache is then
// saved against the log as it is.
func TestPutFilestoreRecordAnswerLost(t *testing.T) {
	r := answerLost(t, faulty.Prefix(FilestoreLogPrefix("prod")))
	rec := FilestoreRecord{DB: "prod", Time: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Kind: FilestoreSnapshot, Added: []string{FilestoreNameOf(strings.Repeat("a", 40))}}
	key, err := r.PutFilestoreRecord(context.Background(), rec)
	if err != nil || key == "" {
		t.Fatalf("record stored, answer lost, retried: %q %v", key, err)
	}
	recs, err := r.FilestoreLog(context.Background(), "prod")
	if err != nil || len(recs) != 1 || recs[0].Key != key {
		t.Fatalf("log after the retried put: %+v %v", recs, err)
	}
}
