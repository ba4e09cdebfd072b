// Package repotest builds walvault repositories for tests: on an in-memory
// store (storage/memstore) or a temporary directory, with a fresh age key
// pair or none, a fixed configuration the tests can change, and the
// writes tests repeat (a WAL segment, a backup cut into chunks with its
// manifest, raw access to stored objects).
//
// It is the one place tests make repositories and age keys; WAL file
// content comes from internal/waltest, faults from storage/faulty. Like
// those it is a test helper: it calls t.Fatal on failure and is imported
// only by _test.go files.
package repotest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
	"github.com/walvault/walvault/storage/memstore"
	"github.com/walvault/walvault/storage/s3"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// PGMajor is the PostgreSQL major version of the test cluster. Its system
// identifier and segment size are waltest.SysID and waltest.SegSize.
const PGMajor = 15

// CreatedAt is the creation time recorded in test repositories.
var CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config is the configuration of a test repository unless an option
// changes it: the test cluster, encrypted with age.
func Config() repo.Config {
	return repo.Config{
		SystemIdentifier: strconv.FormatUint(waltest.SysID, 10), PGMajor: PGMajor,
		WALSegmentSize: waltest.SegSize, Encryption: repo.EncryptionAge, CreatedAt: CreatedAt,
	}
}

// Repo is an open test repository.
type Repo struct {
	*repo.Repository
	// Store is the store the repository lives in, as given to repo.Init
	// (a wrapper the test passed with OnStore included). Tests read and
	// damage objects through it.
	Store storage.Store
	// Dir is the store's directory (OnDisk), else "".
	Dir string
	// Identity reads and Keys open the repository; nil and empty when it
	// is not encrypted.
	Identity *age.X25519Identity
	Keys     repo.Options
	// Root and Writer are set for a signed (format-2) repository: the
	// root key the test holds, and the writer key Keys signs with.
	Root   *crypto.RootKey
	Writer *crypto.WriterKey
}

// Option changes how New makes a repository.
type Option func(*settings)

type settings struct {
	store    storage.Store
	onDisk   bool
	identity *age.X25519Identity
	config   repo.Config
	signed   bool
	root     *crypto.RootKey
}

// OnDisk keeps the repository in a temporary directory (storage/local),
// for tests that look at or damage its files.
func OnDisk() Option { return func(s *settings) { s.onDisk = true } }

// OnStore makes the repository in st, or opens the one st holds whatever
// its configuration (a second handle, as another walvault process has;
// give it the keys with WithIdentity). st may be a wrapper such as a
// faulty.Store.
func OnStore(st storage.Store) Option { return func(s *settings) { s.store = st } }

// Plain makes a repository without encryption, and no keys.
func Plain() Option { return func(s *settings) { s.config.Encryption = repo.EncryptionNone } }

// WithIdentity uses id instead of a fresh key pair (another handle on a
// repository with the same keys).
func WithIdentity(id *age.X25519Identity) Option { return func(s *settings) { s.identity = id } }

// Signed makes a format-2 repository: its objects are signed by a writer
// key a fresh root certified, which Keys also trust for reading.
func Signed() Option { return func(s *settings) { s.signed = true } }

// WithRoot is Signed with an existing root (another handle on a signed
// repository, or a second writer of it).
func WithRoot(root *crypto.RootKey) Option {
	return func(s *settings) { s.signed, s.root = true, root }
}

// WithConfig changes the configuration (cluster, segment size, ...).
func WithConfig(change func(*repo.Config)) Option {
	return func(s *settings) { change(&s.config) }
}

// New makes a test repository, by default encrypted to a fresh key pair on
// an empty in-memory store. The repository is closed when the test ends.
func New(t testing.TB, opts ...Option) *Repo {
	t.Helper()
	s := settings{config: Config()}
	for _, o := range opts {
		o(&s)
	}
	tr := &Repo{Store: s.store}
	switch {
	case tr.Store != nil:
	case s.onDisk:
		tr.Dir = t.TempDir()
		st, err := local.New(tr.Dir)
		if err != nil {
			t.Fatal(err)
		}
		tr.Store = st
	default:
		tr.Store = memstore.New()
	}
	ctx := context.Background()
	cfg, err := repo.ReadConfig(ctx, tr.Store)
	exists := err == nil
	switch {
	case errors.Is(err, repo.ErrNotInitialized):
		cfg = s.config
	case err != nil:
		t.Fatal(err)
	}
	if cfg.Encrypted() {
		tr.Identity = s.identity
		if tr.Identity == nil {
			tr.Identity = NewIdentity(t)
		}
		tr.Keys = Keys(tr.Identity)
	}
	if exists && cfg.Signed() && s.root == nil {
		t.Fatal("repotest: the store holds a signed repository: open it with WithRoot")
	}
	if s.signed || (exists && cfg.Signed()) {
		tr.Root = s.root
		if tr.Root == nil {
			tr.Root = NewRoot(t)
		}
		tr.Writer = NewWriter(t, tr.Root, "test-writer")
		tr.Keys.Writer = tr.Writer
		tr.Keys.TrustedRoots = []crypto.RootPublicKey{tr.Root.Public()}
	}
	var r *repo.Repository
	if exists {
		r, err = repo.OpenWithConfig(tr.Store, cfg, tr.Keys)
	} else {
		r, _, err = repo.Init(ctx, tr.Store, cfg, tr.Keys)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tr.Repository = r
	return tr
}

// NewRoot generates a repository root key.
func NewRoot(t testing.TB) *crypto.RootKey {
	t.Helper()
	k, err := crypto.GenerateRootKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewWriter issues a writer key named name under root.
func NewWriter(t testing.TB, root *crypto.RootKey, name string) *crypto.WriterKey {
	t.Helper()
	w, err := root.Issue(name, CreatedAt, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// NewIdentity generates an age X25519 key pair.
func NewIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Keys are the options that write to and read with id.
func Keys(id *age.X25519Identity) repo.Options {
	return repo.Options{Recipients: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}}
}

// Open opens another handle on the repository with opts (other keys, or
// none), closed when the test ends.
func (tr *Repo) Open(t testing.TB, opts repo.Options) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), tr.Store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Write seals data and stores it under key (Put, failing the test on error).
func (tr *Repo) Write(t testing.TB, key string, data []byte) repo.ObjectInfo {
	t.Helper()
	info, err := tr.Repository.Put(context.Background(), key, data, storage.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// PutSegment stores a full WAL segment of the test cluster (waltest.Segment
// with seed; the repository must have waltest.SegSize segments) and
// returns it.
func (tr *Repo) PutSegment(t testing.TB, tli uint32, segno, seed uint64) []byte {
	t.Helper()
	data := waltest.Segment(tli, segno, tr.Config.SysID(), seed)
	tr.Write(t, repo.WALSegmentKey(tli, segno, waltest.SegSize), data)
	return data
}

// Archive is one archive of a backup PutBackup stores.
type Archive struct {
	Name           string
	TablespaceOID  uint32
	TablespacePath string
	Data           []byte
}

// PutBackup stores each archive cut into chunks of chunkSize bytes (small
// chunks put tar headers across chunk boundaries), adds the archives and
// their sizes to m, and stores m as the backup's manifest, last, as a
// backup does.
func (tr *Repo) PutBackup(t testing.TB, m *repo.BackupManifest, chunkSize int, archives ...Archive) {
	t.Helper()
	for _, a := range archives {
		ar := repo.Archive{Name: a.Name, TablespaceOID: a.TablespaceOID, TablespacePath: a.TablespacePath, Bytes: int64(len(a.Data))}
		for seq, off := 0, 0; off < len(a.Data); seq, off = seq+1, off+chunkSize {
			part := a.Data[off:min(off+chunkSize, len(a.Data))]
			info := tr.Write(t, repo.BackupChunkKey(m.ID, a.Name, seq), part)
			sum := sha256.Sum256(part)
			ar.Chunks = append(ar.Chunks, repo.Chunk{Key: info.Key, Size: int64(len(part)), StoredSize: info.StoredSize, SHA256: hex.EncodeToString(sum[:])})
			m.StoredBytes += info.StoredSize
		}
		m.Archives = append(m.Archives, ar)
		m.Bytes += ar.Bytes
	}
	if err := tr.PutBackupManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// Raw returns the object stored under key as it is stored (sealed).
func (tr *Repo) Raw(t testing.TB, key string) []byte {
	t.Helper()
	rc, err := tr.Store.Get(context.Background(), key)
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

// SetRaw stores data under key as it is, bypassing the envelope: to damage
// an object or plant one.
func (tr *Repo) SetRaw(t testing.TB, key string, data []byte) {
	t.Helper()
	if err := tr.Store.Put(context.Background(), key, bytes.NewReader(data), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// IdentityFile writes the repository's identity to a new file of mode 0600
// (what --age-identity-file names) and returns its path.
func (tr *Repo) IdentityFile(t testing.TB) string {
	t.Helper()
	if tr.Identity == nil {
		t.Fatal("repotest: IdentityFile of a repository without encryption")
	}
	return IdentityFile(t, tr.Identity)
}

// IdentityFile writes id to a new file of mode 0600 and returns its path.
func IdentityFile(t testing.TB, id *age.X25519Identity) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(p, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// OnMinIO puts the repository in a bucket of a local MinIO server that the
// test starts (miniotest), as benchmarks that compare stores do.
func OnMinIO(tb testing.TB) Option {
	tb.Helper()
	srv := miniotest.Start(tb)
	srv.CreateBucket(tb, "bench")
	st, err := s3.New(context.Background(), s3.Options{Bucket: "bench", Endpoint: srv.Endpoint, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		tb.Fatal(err)
	}
	return OnStore(st)
}

// ForSegment makes the repository's cluster the one that wrote the
// segment whose long page header is h.
func ForSegment(h pgwal.LongPageHeader) Option {
	return WithConfig(func(c *repo.Config) {
		c.SystemIdentifier = strconv.FormatUint(h.SystemIdentifier, 10)
		c.WALSegmentSize = int64(h.SegmentSize)
	})
}
