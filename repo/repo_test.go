package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/memstore"
	"github.com/walvault/walvault/storage/retry"
)

// raw returns the object stored under key, as it is stored.
func raw(t testing.TB, st storage.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// setRaw stores data under key as it is, to damage or plant an object.
func setRaw(t testing.TB, st storage.Store, key string, data []byte) {
	t.Helper()
	if err := st.Put(context.Background(), key, bytes.NewReader(data), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// storedKeys lists the keys under prefix.
func storedKeys(t testing.TB, st storage.Store, prefix string) []string {
	t.Helper()
	var out []string
	if err := st.List(context.Background(), prefix, func(oi storage.ObjectInfo) error {
		out = append(out, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func testConfig(enc string) Config {
	return Config{SystemIdentifier: "7312345678901234567", PGMajor: 15, WALSegmentSize: 16 << 20, Encryption: enc, CreatedAt: time.Unix(0, 0).UTC()}
}

// newIdentity generates an age key pair. The tests of other packages get
// theirs from internal/repotest, which imports this package and so cannot
// serve its tests.
func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newTestRepo makes a repository on an empty in-memory store.
func newTestRepo(t *testing.T, enc string) (*Repository, *memstore.Store, *age.X25519Identity) {
	t.Helper()
	st := memstore.New()
	r, id := newTestRepoOn(t, st, enc)
	return r, st, id
}

// newTestRepoOn makes a repository in st, which must be empty.
func newTestRepoOn(t testing.TB, st storage.Store, enc string) (*Repository, *age.X25519Identity) {
	t.Helper()
	id := newIdentity(t)
	r, created, err := Init(context.Background(), st, testConfig(enc), Options{Recipients: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}})
	if err != nil || !created {
		t.Fatalf("Init: created=%v err=%v", created, err)
	}
	t.Cleanup(func() { r.Close() })
	return r, id
}

func TestObjectRoundTrip(t *testing.T) {
	for _, enc := range []string{EncryptionAge, EncryptionNone} {
		t.Run(enc, func(t *testing.T) {
			r, st, _ := newTestRepo(t, enc)
			big := make([]byte, 3<<20)
			rand.Read(big[:1<<20])       // part random, part zeros
			huge := bytes.Repeat(big, 3) // several zstd frames
			for _, plain := range [][]byte{{}, []byte("x"), big, huge} {
				info, err := r.Put(context.Background(), "k/obj", plain, storage.PutOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if info.PlainSize != int64(len(plain)) {
					t.Fatalf("size %d", info.PlainSize)
				}
				got, h, err := r.Get(context.Background(), "k/obj")
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, plain) || h.Encrypted != (enc == EncryptionAge) {
					t.Fatalf("round trip mismatch (len %d, encrypted %v)", len(got), h.Encrypted)
				}
				hh, err := r.Header(context.Background(), "k/obj")
				if err != nil || hh.PlainSize != h.PlainSize || hh.SHA256 != h.SHA256 || hh.Encrypted != h.Encrypted || hh.Version != h.Version {
					t.Fatalf("Header = %+v, %v; want %+v", hh, err, h)
				}
				if enc == EncryptionAge && len(plain) >= 1<<20 && bytes.Contains(raw(t, st, "k/obj"), plain[:64]) {
					t.Fatal("plaintext visible in stored object")
				}
			}
		})
	}
}

func TestObjectTamperDetected(t *testing.T) {
	for _, enc := range []string{EncryptionAge, EncryptionNone} {
		t.Run(enc, func(t *testing.T) {
			r, st, _ := newTestRepo(t, enc)
			plain := bytes.Repeat([]byte("walvault segment "), 10000)
			if _, err := r.Put(context.Background(), "o", plain, storage.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			orig := raw(t, st, "o")
			// Flip each of a spread of bytes in turn, header and body.
			for _, pos := range []int{0, 4, 5, 9, 20, 47, HeaderSize, HeaderSize + 100, len(orig) / 2, len(orig) - 1} {
				d := append([]byte(nil), orig...)
				pos = min(pos, len(d)-1)
				d[pos] ^= 0x40
				setRaw(t, st, "o", d)
				if _, _, err := r.Get(context.Background(), "o"); err == nil {
					t.Fatalf("flip at %d not detected", pos)
				}
			}
			// Truncation.
			for _, n := range []int{0, 10, HeaderSize, len(orig) - 1} {
				setRaw(t, st, "o", orig[:n])
				_, _, err := r.Get(context.Background(), "o")
				if !errors.Is(err, ErrIntegrity) {
					t.Fatalf("truncated to %d: err = %v, want ErrIntegrity", n, err)
				}
			}
		})
	}
}

func TestPlantedPlaintextRefused(t *testing.T) {
	enc, _, _ := newTestRepo(t, EncryptionAge)
	plainRepo, _, _ := newTestRepo(t, EncryptionNone)
	sealed, _, err := plainRepo.Seal("k", []byte("forged WAL"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := enc.Unseal(sealed); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("plaintext object in encrypted repo: err = %v, want ErrIntegrity", err)
	}
}

func TestWrongKey(t *testing.T) {
	r, st, _ := newTestRepo(t, EncryptionAge)
	if _, err := r.Put(context.Background(), "o", []byte("data"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(context.Background(), st, Options{Identities: []age.Identity{newIdentity(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, _, err := r2.Get(context.Background(), "o"); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("err = %v, want ErrWrongKey", err)
	}
	r3, _ := Open(context.Background(), st, Options{})
	defer r3.Close()
	if _, _, err := r3.Get(context.Background(), "o"); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("err = %v, want ErrNoIdentity", err)
	}
	if _, err := r3.Put(context.Background(), "p", []byte("x"), storage.PutOptions{}); !errors.Is(err, ErrNoRecipients) {
		t.Fatalf("err = %v, want ErrNoRecipients", err)
	}
}

func TestInitBindsCluster(t *testing.T) {
	r, st, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	// Same cluster again: matches.
	if _, created, err := Init(ctx, st, testConfig(EncryptionAge), Options{}); err != nil || created {
		t.Fatalf("re-init: created=%v err=%v", created, err)
	}
	other := testConfig(EncryptionAge)
	other.SystemIdentifier = "1"
	if _, _, err := Init(ctx, st, other, Options{}); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("other cluster: %v", err)
	}
	if _, _, err := Init(ctx, st, testConfig(EncryptionNone), Options{}); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("other encryption: %v", err)
	}
	if err := r.CheckCluster(7312345678901234567, 16, 0); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("other major: %v", err)
	}
	if err := r.CheckCluster(7312345678901234567, 15, 1<<20); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("other segment size: %v", err)
	}
	if err := r.CheckCluster(7312345678901234567, 15, 16<<20); err != nil {
		t.Fatal(err)
	}
}

func TestFutureFormatRefused(t *testing.T) {
	st := memstore.New()
	setRaw(t, st, ConfigKey, []byte(`{"format":3,"system_identifier":"1","pg_major":15,"wal_segment_size":16777216,"encryption":"age"}`))
	if _, err := Open(context.Background(), st, Options{}); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("err = %v, want ErrUnsupportedFormat", err)
	}
	setRaw(t, st, ConfigKey, []byte(`{"format":1,"system_identifier":"1","pg_major":15,"wal_segment_size":2,"encryption":"age"}`))
	if _, err := Open(context.Background(), st, Options{}); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("segment size 2: err = %v, want ErrIntegrity", err)
	}
	if _, err := Open(context.Background(), memstore.New(), Options{}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("err = %v, want ErrNotInitialized", err)
	}
	h := ObjectHeader{Version: 1, PlainSize: 1}.MarshalBinary()
	h[4] = 3
	if _, err := ParseObjectHeader(h); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("object v3: %v", err)
	}
}

func TestManifestAndCatalog(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	m := &BackupManifest{ID: NewBackupID(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)), StartLSN: 0x3000028, StopLSN: 0x3000138, Timeline: 1}
	if err := r.PutBackupManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := r.PutBackupManifest(ctx, m); err != nil {
		t.Fatalf("the same manifest again: %v", err)
	}
	other := *m
	other.StopLSN++
	if err := r.PutBackupManifest(ctx, &other); !storage.IsExist(err) {
		t.Fatalf("a different manifest under the same id: %v", err)
	}
	// Chunks of an unfinished backup are not a backup.
	if _, err := r.Put(ctx, BackupChunkKey("20261123T110000Z", "base.tar", 0), []byte("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	bs, err := r.Backups(ctx)
	if err != nil || len(bs) != 1 || bs[0].ID != "20261123T100000Z" || bs[0].StopLSN != 0x3000138 {
		t.Fatalf("Backups = %+v, %v", bs, err)
	}
	seg := pgwal.SegmentName(1, 3, 16<<20)
	f, _ := pgwal.ParseFileName(seg)
	if _, err := r.Put(ctx, WALKey(f), []byte("w"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ws, unknown, err := r.ListWAL(ctx)
	if err != nil || len(ws) != 1 || ws[0].File.Name != seg || ws[0].Key != "wal/00000001/"+seg || len(unknown) != 0 {
		t.Fatalf("ListWAL = %+v, %+v, %v", ws, unknown, err)
	}
	if WALSegmentKey(1, 3, 16<<20) != ws[0].Key {
		t.Fatal("WALSegmentKey disagrees with WALKey")
	}
}

func TestParseWALKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"wal/00000001/000000010000000000000003":     true,
		"wal/00000002/00000002.history":             true,
		"wal/00000001/000000020000000000000003":     false, // wrong folder
		"wal/00000001/x":                            false,
		"backups/00000001/000000010000000000000003": false,
	} {
		if _, err := ParseWALKey(key); (err == nil) != ok {
			t.Errorf("ParseWALKey(%q) err = %v, want ok=%v", key, err, ok)
		}
	}
}

func FuzzParseObjectHeader(f *testing.F) {
	f.Add(ObjectHeader{Version: 1, Encrypted: true, PlainSize: 16 << 20}.MarshalBinary())
	f.Add([]byte("WVLT"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseObjectHeader(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same 48 bytes.
		if !bytes.Equal(h.MarshalBinary(), b[:HeaderSize]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzUnseal(f *testing.F) {
	r, _ := newTestRepoOn(f, memstore.New(), EncryptionAge)
	sealed, _, _ := r.Seal("k", []byte("seed data for the fuzzer"))
	f.Add(sealed)
	f.Fuzz(func(t *testing.T, b []byte) {
		plain, h, err := r.Unseal(b)
		if err == nil && int64(len(plain)) != h.PlainSize {
			t.Fatal("accepted object with wrong size")
		}
	})
}

func TestStreamPartialKeys(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	seg := pgwal.SegmentName(2, 9, 16<<20)
	f, _ := pgwal.ParseFileName(seg)
	if _, err := r.LatestStreamPartial(ctx, f); !storage.IsNotExist(err) {
		t.Fatalf("no partial yet: %v", err)
	}
	for _, n := range []int64{0x100, 0x2000, 0xA0000} {
		key := StreamPartialKey(2, seg, n)
		p, err := ParseStreamPartialKey(key)
		if err != nil || p.Valid != n || p.File.Name != seg {
			t.Fatalf("round trip %s: %+v %v", key, p, err)
		}
		if _, err := r.Put(ctx, key, make([]byte, n), storage.PutOptions{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := r.LatestStreamPartial(ctx, f)
	if err != nil || p.Valid != 0xA0000 {
		t.Fatalf("latest = %+v, %v", p, err)
	}
	for _, bad := range []string{"stream/00000001/" + seg + ".00000100", "stream/00000002/" + seg + ".100", "stream/00000002/" + seg + ".00000000", "stream/00000002/" + seg + ".0000abcd", "wal/00000002/" + seg} {
		if _, err := ParseStreamPartialKey(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	m := BackupManifest{Format: 1, ID: "20261123T100000Z", StartLSN: 0x3000028, StopLSN: 0x3000138, Timeline: 1,
		Archives: []Archive{{Name: "base.tar", Chunks: []Chunk{{Key: "backups/20261123T100000Z/data/base.tar/00000000", Size: 10}}}}}
	data, _ := json.Marshal(m)
	f.Add(data)
	f.Add([]byte(`{"format":2,"id":"20261123T100000Z"}`))
	f.Add([]byte(`{"format":1,"id":"20261123T100000Z","start_lsn":"zz"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseManifest("20261123T100000Z", b)
		if err != nil {
			return
		}
		if got.ID != "20261123T100000Z" || got.Format < 1 || got.Format > FormatVersion {
			t.Fatalf("accepted inconsistent manifest: %+v", got)
		}
		// Whatever parses survives a round trip.
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseManifest(got.ID, again); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestPlainObjectReadableByZstd: the documented way to read an object by
// hand (strip the 48-byte header, then zstd -d; age -d before it when
// encrypted) works, multi-frame bodies included.
func TestPlainObjectReadableByZstd(t *testing.T) {
	zstdBin, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd command not installed")
	}
	r, _, _ := newTestRepo(t, EncryptionNone)
	plain := bytes.Repeat([]byte("0123456789abcdef walvault "), 600000) // ~15 MiB: four frames
	sealed, _, err := r.Seal("k", plain)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(zstdBin, "-d", "-c")
	cmd.Stdin = bytes.NewReader(sealed[HeaderSize:])
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("zstd -d: %v (got %d bytes, want %d)", err, len(out), len(plain))
	}
}

// answerLost makes the first Put of a key that match store the object and
// then report a transient failure, as a connection dropped before the
// answer does; the repository it returns retries.
func answerLost(t *testing.T, match func(key string) bool) *Repository {
	t.Helper()
	fs := faulty.Wrap(memstore.New())
	r, _ := newTestRepoOn(t, retry.Wrap(fs, retry.Options{Sleep: func(context.Context, time.Duration) error { return nil }}), EncryptionAge)
	var lost atomic.Bool
	fs.Inject(faulty.Fault{Ops: faulty.Put, Key: match, Times: 1, Mode: faulty.LoseAnswer,
		Err:   storage.Transient(errors.New("connection reset before the answer")),
		After: func(faulty.Call, error) { lost.Store(true) }})
	t.Cleanup(func() {
		if !lost.Load() {
			t.Error("no answer was lost")
		}
	})
	return r
}

// TestManifestPutAnswerLost: the manifest is the last object of a backup;
// when its Put is stored but the answer is lost, the retried Put finds it.
// That is success, not "already exists": the backup is complete.
func TestManifestPutAnswerLost(t *testing.T) {
	ctx := context.Background()
	m := &BackupManifest{ID: NewBackupID(time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)), StartLSN: 0x3000028, StopLSN: 0x3000138, Timeline: 1}
	r := answerLost(t, func(key string) bool { return key == BackupManifestKey(m.ID) })
	if err := r.PutBackupManifest(ctx, m); err != nil {
		t.Fatalf("manifest stored, answer lost, retried: %v", err)
	}
	got, err := r.BackupManifest(ctx, m.ID)
	if err != nil || got.StopLSN != m.StopLSN {
		t.Fatalf("stored manifest %+v, %v", got, err)
	}
}

// Objects written before walvault stopped writing zstd content checksums
// carry them; they still read, and damage inside such a frame is still
// caught.
func TestFramesWithChecksumStillRead(t *testing.T) {
	r, st, _ := newTestRepo(t, EncryptionNone)
	withCRC, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(true), zstd.WithWindowSize(windowSize))
	if err != nil {
		t.Fatal(err)
	}
	saved := r.enc
	r.enc = withCRC
	plain := bytes.Repeat([]byte("checksummed frame "), 100000)
	if _, err := r.Put(context.Background(), "k/old", plain, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r.enc = saved
	got, _, err := r.Get(context.Background(), "k/old")
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("object with frame checksums: %v", err)
	}
	// Without the new default, a frame has no checksum: compare sizes.
	if _, err := r.Put(context.Background(), "k/new", plain, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if newLen, oldLen := len(raw(t, st, "k/new")), len(raw(t, st, "k/old")); newLen >= oldLen {
		t.Errorf("new object (%d bytes) not smaller than one with frame checksums (%d)", newLen, oldLen)
	}
	old := raw(t, st, "k/old")
	old[len(old)-2] ^= 0x01 // inside the last frame's checksum
	setRaw(t, st, "k/old", old)
	if _, _, err := r.Get(context.Background(), "k/old"); !errors.Is(err, ErrIntegrity) {
		t.Errorf("damaged frame checksum: %v, want ErrIntegrity", err)
	}
}
