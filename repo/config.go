package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
)

// FormatVersion is the newest repository format this code reads and the
// one it creates when it has a writer key (FormatSigned); without one it
// creates format 1, whose objects are not signed.
const FormatVersion = 2

// Repository formats.
const (
	// FormatUnsigned: objects encrypted (age) but not authenticated:
	// whoever can write the bucket and knows the (public) recipient can
	// plant objects a reader takes for its own.
	FormatUnsigned = 1
	// FormatSigned: every object and the configuration are signed by a
	// writer the repository's root certified (see trust.go).
	FormatSigned = 2
)

// ConfigKey is the key of the repository configuration object.
const ConfigKey = "walvault.json"

// Encryption modes recorded in Config.Encryption.
const (
	EncryptionAge  = "age"
	EncryptionNone = "none"
)

// Config is the repository configuration, stored in plain JSON under
// ConfigKey. It holds no secrets and no recipients: keys come from the local
// configuration of each host, so that write access to the store is not enough
// to redirect new backups to another key.
type Config struct {
	Format int `json:"format"`
	// SystemIdentifier binds the repository to one cluster (pg_control's
	// system identifier), kept as a decimal string: JSON numbers lose
	// precision past 2^53.
	SystemIdentifier string `json:"system_identifier"`
	// PGMajor is the PostgreSQL major version (13, 14, …).
	PGMajor int `json:"pg_major"`
	// WALSegmentSize in bytes.
	WALSegmentSize int64 `json:"wal_segment_size"`
	// Encryption is "age" or "none".
	Encryption string    `json:"encryption"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by,omitempty"`
	// Format 2: the root the repository was created under ("wvroot1…",
	// for messages: readers trust their own identity's root, not this),
	// and the signature of the writer that created it over the rest.
	Root       string `json:"root,omitempty"`
	Writer     string `json:"writer,omitempty"`
	WriterCert []byte `json:"writer_cert,omitempty"`
	Signature  []byte `json:"signature,omitempty"`
}

// configDomain prefixes what a writer signs of walvault.json.
const configDomain = "walvault config v2\x00"

// signedBytes is the configuration without its signature, as signed.
func (c Config) signedBytes() []byte {
	c.Signature = nil
	b, _ := json.Marshal(c)
	return append([]byte(configDomain), b...)
}

// SysID returns the system identifier as a number.
func (c Config) SysID() uint64 {
	v, _ := strconv.ParseUint(c.SystemIdentifier, 10, 64)
	return v
}

// Encrypted reports whether the repository encrypts its objects.
func (c Config) Encrypted() bool { return c.Encryption != EncryptionNone }

// Signed reports whether the repository's objects are signed (format 2).
func (c Config) Signed() bool { return c.Format >= FormatSigned }

// Guarantees says in one sentence what the repository's format promises a
// reader about what it reads (docs/SECURITY.md has the whole story): check
// and verify print it.
func (c Config) Guarantees() string {
	switch {
	case c.Signed():
		return fmt.Sprintf("format %d: encrypted (age) and signed: every object must be signed under its own name by a writer that root %s certified, so an object someone else planted, changed, renamed or copied is refused", c.Format, c.Root)
	case c.Encrypted():
		return fmt.Sprintf("format %d: encrypted (age) but not signed: whoever can write the bucket and knows the public recipient can plant objects walvault reads as its own (docs/SECURITY.md); a repository created by this walvault with writer keys is signed", c.Format)
	}
	return fmt.Sprintf("format %d: neither encrypted nor signed (--no-encryption): whoever can read the bucket reads the backups, and whoever can write it can change them undetected", c.Format)
}

func (c Config) validate() error {
	if c.Format < 1 {
		return fmt.Errorf("%w: %s has format %d", ErrIntegrity, ConfigKey, c.Format)
	}
	if c.Format > FormatVersion {
		return fmt.Errorf("%w: repository format %d is newer than this walvault reads (%d); upgrade walvault", ErrUnsupportedFormat, c.Format, FormatVersion)
	}
	if _, err := strconv.ParseUint(c.SystemIdentifier, 10, 64); err != nil {
		return fmt.Errorf("%w: %s: bad system_identifier %q", ErrIntegrity, ConfigKey, c.SystemIdentifier)
	}
	if c.Encryption != EncryptionAge && c.Encryption != EncryptionNone {
		return fmt.Errorf("%w: %s: unknown encryption %q", ErrUnsupportedFormat, ConfigKey, c.Encryption)
	}
	if !pgwal.ValidSegmentSize(c.WALSegmentSize) {
		return fmt.Errorf("%w: %s: bad wal_segment_size %d", ErrIntegrity, ConfigKey, c.WALSegmentSize)
	}
	if c.Signed() {
		if _, err := crypto.ParseWriterID(c.Writer); err != nil || len(c.Signature) != 64 || len(c.WriterCert) == 0 {
			return fmt.Errorf("%w: %s: format 2 without a valid writer and signature", ErrIntegrity, ConfigKey)
		}
	}
	return nil
}

// Options are the local settings a Repository is opened with.
type Options struct {
	// Recipients encrypt new objects. Needed only for writing.
	Recipients []age.Recipient
	// Identities decrypt objects. Needed only for reading.
	Identities []age.Identity
	// Level is the zstd level for new objects (default zstd.SpeedFastest).
	Level zstd.EncoderLevel
	// Writer signs new objects of a format-2 repository; its
	// certificate's root is trusted for reading too.
	Writer *crypto.WriterKey
	// TrustedRoots are the roots whose writers a reader trusts (from the
	// identity file). A reader with trusted roots refuses a format-1
	// repository unless AllowUnsigned: its walvault.json may have been
	// rewritten to escape the signatures.
	TrustedRoots  []crypto.RootPublicKey
	AllowUnsigned bool
	// ContentKeys name blocks (block backups) on a host without a writer
	// key, or of backups a writer of another root made (before a root
	// rotation): a reader that holds roots (crypto.RootKey.ContentKey)
	// checks block ids with them.
	ContentKeys [][32]byte
}

// Repository is an opened repository: a store plus its configuration and the
// codec that seals and opens objects. Safe for concurrent use.
type Repository struct {
	// store is reached only through this package's methods: repo is the
	// one package that knows object keys.
	store  storage.Store
	Config Config
	opts   Options
	enc    *zstd.Encoder
	dec    *zstd.Decoder
	// workers bounds the goroutines one Seal uses.
	workers int
	// frames recycles compressed frames, bufs sealed objects and
	// decrypted bodies.
	frames, bufs *bufPool
	trust        trust
}

// Open reads the configuration of an existing repository.
func Open(ctx context.Context, store storage.Store, opts Options) (*Repository, error) {
	cfg, err := ReadConfig(ctx, store)
	if err != nil {
		return nil, err
	}
	return newRepository(store, cfg, opts)
}

// OpenWithConfig is Open for a caller that has just read the configuration
// with ReadConfig (to choose keys by it): it saves a second read, a round
// trip to object storage in every wal-push.
func OpenWithConfig(store storage.Store, cfg Config, opts Options) (*Repository, error) {
	return newRepository(store, cfg, opts)
}

// ReadConfig reads and validates walvault.json.
func ReadConfig(ctx context.Context, store storage.Store) (Config, error) {
	rc, err := store.Get(ctx, ConfigKey)
	if err != nil {
		if storage.IsNotExist(err) {
			return Config{}, fmt.Errorf("%w: %s has no %s (run walvault init)", ErrNotInitialized, store, ConfigKey)
		}
		return Config{}, fmt.Errorf("read %s: %w", ConfigKey, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return Config{}, fmt.Errorf("read %s: %w", ConfigKey, err)
	}
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %s is not valid JSON: %v", ErrIntegrity, ConfigKey, err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Init creates the repository with cfg, or, when one exists, checks that it
// matches cfg (same cluster, segment size and encryption mode). created
// reports which happened.
func Init(ctx context.Context, store storage.Store, cfg Config, opts Options) (r *Repository, created bool, err error) {
	cfg.Format = FormatUnsigned
	if w := opts.Writer; w != nil {
		cfg.Format = FormatSigned
		cfg.Root, cfg.Writer, cfg.WriterCert = w.Cert.Root, w.Cert.ID, w.Cert.Marshal()
		cfg.Signature = w.Sign(cfg.signedBytes())
	}
	if err := cfg.validate(); err != nil {
		return nil, false, err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, false, err
	}
	data = append(data, '\n')
	err = store.Put(ctx, ConfigKey, bytes.NewReader(data), storage.PutOptions{IfAbsent: true})
	if err == nil {
		r, err := newRepository(store, cfg, opts)
		return r, true, err
	}
	if !storage.IsExist(err) {
		return nil, false, fmt.Errorf("create %s: %w", ConfigKey, err)
	}
	existing, err := ReadConfig(ctx, store)
	if err != nil {
		return nil, false, err
	}
	if existing.Encryption != cfg.Encryption {
		return nil, false, fmt.Errorf("%w: %s exists with encryption %q, asked for %q; a repository never mixes the two", ErrClusterMismatch, store, existing.Encryption, cfg.Encryption)
	}
	r, err = newRepository(store, existing, opts)
	if err != nil {
		return nil, false, err
	}
	if err := r.CheckCluster(cfg.SysID(), cfg.PGMajor, cfg.WALSegmentSize); err != nil {
		return nil, false, err
	}
	return r, false, nil
}

// ResignConfig signs walvault.json again with this host's writer key (format
// 2), naming the writer's root: the last step of rotating the root key,
// once rekey has signed every object again with a writer the new root
// certified. Readers that trust only the new root then read the whole
// repository. It changes nothing else in the configuration.
func (r *Repository) ResignConfig(ctx context.Context) error {
	if !r.Signed() {
		return nil
	}
	if err := r.canSign(); err != nil {
		return err
	}
	w := r.opts.Writer
	cfg := r.Config
	cfg.Root, cfg.Writer, cfg.WriterCert = w.Cert.Root, w.Cert.ID, w.Cert.Marshal()
	cfg.Signature = w.Sign(cfg.signedBytes())
	if err := cfg.validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := r.store.Put(ctx, ConfigKey, bytes.NewReader(data), storage.PutOptions{}); err != nil {
		return fmt.Errorf("sign %s again: %w", ConfigKey, err)
	}
	r.Config = cfg
	r.trust.mu.Lock()
	r.trust.configDone, r.trust.configErr = false, nil
	r.trust.mu.Unlock()
	return nil
}

func newRepository(store storage.Store, cfg Config, opts Options) (*Repository, error) {
	if opts.Level == 0 {
		opts.Level = zstd.SpeedFastest
	}
	if !cfg.Signed() && !opts.AllowUnsigned && (len(opts.TrustedRoots) > 0 || opts.Writer != nil) {
		return nil, fmt.Errorf("%w: %s says the repository is format 1 (unsigned), but this host holds a format-2 key (a root in its identity file, or a writer key): walvault.json was altered to escape the signatures, or this is another repository. A repository walvault made before format 2 is read with the identity file of its time, without a root key", ErrUntrusted, ConfigKey)
	}
	workers := runtime.GOMAXPROCS(0)
	// Concurrency here bounds how many EncodeAll/DecodeAll calls run at
	// once, each holding its own state: one per core is enough. No zstd
	// content checksum: the header's SHA-256 of the plaintext (and age's
	// authentication) already cover every byte, and the frame checksum
	// cost 7% of wal-push's CPU. Frames with one (objects written before)
	// are still checked when read.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(opts.Level), zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(workers), zstd.WithWindowSize(windowSize))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(workers), zstd.WithDecoderMaxMemory(maxPlainSize),
		// DecodeAll decodes at most cap(dst): callers size dst from the
		// (signed) header, so a forged body declaring more is refused
		// before the decoder allocates it.
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, err
	}
	return &Repository{store: store, Config: cfg, opts: opts, enc: enc, dec: dec, workers: workers,
		trust: trust{certs: map[[32]byte]*crypto.Cert{}},
		// Enough for the objects of a few callers sealing at once (a
		// backup's uploaders, a restore's downloaders), each split
		// into frames.
		frames: newBufPool(4 * workers * maxFrames), bufs: newBufPool(4*workers + 2)}, nil
}

// String names the repository by its store's URL, for messages.
func (r *Repository) String() string { return r.store.String() }

// CheckCluster refuses a cluster other than the one the repository belongs
// to. A zero major or segment size skips that comparison (a caller that does
// not know it, such as wal-push of a .history file).
func (r *Repository) CheckCluster(sysid uint64, major int, segSize int64) error {
	c := r.Config
	if sysid != c.SysID() {
		return fmt.Errorf("%w: %s belongs to the cluster with system identifier %s, this one has %d; use a separate repository per cluster", ErrClusterMismatch, r, c.SystemIdentifier, sysid)
	}
	if major != 0 && c.PGMajor != 0 && major != c.PGMajor {
		return fmt.Errorf("%w: %s holds PostgreSQL %d, this server is PostgreSQL %d; after a major upgrade start a new repository", ErrClusterMismatch, r, c.PGMajor, major)
	}
	if segSize != 0 && segSize != c.WALSegmentSize {
		return fmt.Errorf("%w: %s holds WAL segments of %d bytes, this cluster uses %d", ErrClusterMismatch, r, c.WALSegmentSize, segSize)
	}
	return nil
}

// CanRead reports whether r can open objects: the repository is not
// encrypted, or r was opened with an identity.
func (r *Repository) CanRead() bool {
	return !r.Config.Encrypted() || len(r.opts.Identities) > 0
}

// Close releases the codec's resources.
func (r *Repository) Close() error {
	r.enc.Close()
	r.dec.Close()
	return nil
}

// windowSize is the zstd window. WAL records and tar members reference
// little beyond a megabyte back; a small window costs almost no ratio and
// saves allocating and copying large history buffers in every short-lived
// wal-push process.
const windowSize = 1 << 20
