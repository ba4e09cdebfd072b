package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Writer authenticity (repository format 2).
//
// age gives a repository confidentiality, not authenticity: its recipient
// is public, so whoever can write the bucket can write objects walvault
// would take for its own. Format 2 signs every object. The trust anchor
// lives outside the bucket:
//
//   - A root key (Ed25519) is made with the identity and kept with it
//     ("# walvault-root-key: WALVAULT-ROOT-KEY-1…" in the identity file, a
//     comment line age itself ignores). Its public half ("wvroot1…") is
//     what a reader trusts.
//   - The root certifies writers: each host that writes the repository
//     (archive_command, the streamer, backups, filestore push) holds a
//     writer key file with its own Ed25519 key and a certificate, signed by
//     the root, that binds that key to a name. A writer cannot decrypt:
//     the file holds no identity.
//   - Readers verify each object's signature with the key of the writer it
//     names, and that writer's certificate with a root they trust. Whoever
//     has the bucket but neither the root nor a writer key can only make a
//     reader refuse.

const (
	rootSecretPrefix   = "WALVAULT-ROOT-KEY-1"
	rootPublicPrefix   = "wvroot1"
	rootKeyComment     = "# walvault-root-key: "
	trustedRootComment = "# walvault-trusted-root: "
	writerSecretPrefix = "WALVAULT-WRITER-KEY-1"
	writerCertPrefix   = "WALVAULT-WRITER-CERT-1"
	contentKeyPrefix   = "WALVAULT-CONTENT-KEY-1"
	recipientLinePfx   = "age-recipient: "
	certDomain         = "walvault writer certificate v1\x00"
	contentKeyDomain   = "walvault content key v1\x00"
)

var b64 = base64.RawURLEncoding

// ErrUntrusted: a signature or certificate does not chain to a trusted
// root.
var ErrUntrusted = errors.New("not signed by a trusted writer of this repository")

// RootKey is a repository's root signing key. It certifies writers; it is
// kept with the identity, off the database hosts.
type RootKey struct{ priv ed25519.PrivateKey }

// RootPublicKey is the public half of a RootKey: the trust anchor readers
// hold.
type RootPublicKey struct{ pub ed25519.PublicKey }

// GenerateRootKey makes a new root key.
func GenerateRootKey() (*RootKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &RootKey{priv: priv}, nil
}

// String is the secret form, "WALVAULT-ROOT-KEY-1…".
func (k *RootKey) String() string { return rootSecretPrefix + b64.EncodeToString(k.priv.Seed()) }

// Public returns the root's public key.
func (k *RootKey) Public() RootPublicKey {
	return RootPublicKey{pub: k.priv.Public().(ed25519.PublicKey)}
}

// String is "wvroot1…".
func (p RootPublicKey) String() string { return rootPublicPrefix + b64.EncodeToString(p.pub) }

// Equal reports whether p and q are the same key.
func (p RootPublicKey) Equal(q RootPublicKey) bool { return bytes.Equal(p.pub, q.pub) }

// IsZero reports whether p holds no key.
func (p RootPublicKey) IsZero() bool { return len(p.pub) == 0 }

// ParseRootPublicKey parses "wvroot1…".
func ParseRootPublicKey(s string) (RootPublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), rootPublicPrefix)
	if !ok {
		return RootPublicKey{}, fmt.Errorf("root public key %q: want wvroot1…", short(s))
	}
	b, err := b64.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return RootPublicKey{}, fmt.Errorf("root public key %q: not a wvroot1 key", short(s))
	}
	return RootPublicKey{pub: ed25519.PublicKey(b)}, nil
}

func parseRootSecret(s string) (*RootKey, error) {
	rest, ok := strings.CutPrefix(s, rootSecretPrefix)
	if !ok {
		return nil, errors.New("not a WALVAULT-ROOT-KEY-1 key")
	}
	b, err := b64.DecodeString(rest)
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, errors.New("malformed WALVAULT-ROOT-KEY-1 key")
	}
	return &RootKey{priv: ed25519.NewKeyFromSeed(b)}, nil
}

// ContentKey is the secret every writer of a repository shares for naming
// content by a keyed hash (so that a name says nothing about the content to
// the bucket's owner). It is derived from the root, so the root holder can
// hand it to every writer it certifies.
func (k *RootKey) ContentKey() [32]byte {
	return sha256.Sum256(append([]byte(contentKeyDomain), k.priv.Seed()...))
}

// Cert is a writer's certificate: the root's signature over the writer's
// public key and name. It is public; it is stored in the repository and in
// the writer's key file.
type Cert struct {
	Version   int       `json:"v"`
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PublicKey []byte    `json:"public_key"`
	Root      string    `json:"root"`
	Issued    time.Time `json:"issued"`
	Signature []byte    `json:"signature,omitempty"`
}

// WriterID is the identifier of a writer key: the first 8 bytes of the
// SHA-256 of its public key.
type WriterID [8]byte

// String is 16 hex digits.
func (id WriterID) String() string { return hex.EncodeToString(id[:]) }

// ParseWriterID parses 16 hex digits.
func ParseWriterID(s string) (WriterID, error) {
	var id WriterID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("writer id %q: want 16 hex digits", short(s))
	}
	copy(id[:], b)
	return id, nil
}

func writerIDOf(pub ed25519.PublicKey) WriterID {
	sum := sha256.Sum256(pub)
	var id WriterID
	copy(id[:], sum[:8])
	return id
}

// signedBytes is what the root signs: the certificate without its
// signature, in a fixed encoding.
func (c Cert) signedBytes() ([]byte, error) {
	c.Signature = nil
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte(certDomain), b...), nil
}

// ParseCert parses and checks a certificate's own consistency (not its
// signature: Verify does that against a trusted root).
func ParseCert(data []byte) (Cert, error) {
	var c Cert
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("writer certificate: %v", err)
	}
	if c.Version != 1 {
		return c, fmt.Errorf("writer certificate version %d: this walvault reads version 1", c.Version)
	}
	if len(c.PublicKey) != ed25519.PublicKeySize || len(c.Signature) != ed25519.SignatureSize {
		return c, errors.New("writer certificate: malformed key or signature")
	}
	if c.ID != writerIDOf(c.PublicKey).String() {
		return c, errors.New("writer certificate: its id does not match its key")
	}
	if c.Name == "" || len(c.Name) > 64 || !utf8.ValidString(c.Name) || strings.ContainsFunc(c.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return c, errors.New("writer certificate: invalid name")
	}
	return c, nil
}

// Verify checks that one of roots signed c.
func (c Cert) Verify(roots []RootPublicKey) error {
	msg, err := c.signedBytes()
	if err != nil {
		return err
	}
	for _, r := range roots {
		if c.Root == r.String() && ed25519.Verify(r.pub, msg, c.Signature) {
			return nil
		}
	}
	return fmt.Errorf("%w: the certificate of writer %s (%q) is not signed by a root this reader trusts", ErrUntrusted, c.ID, c.Name)
}

// WriterID returns the certificate's writer id.
func (c Cert) WriterID() WriterID {
	id, _ := ParseWriterID(c.ID)
	return id
}

// VerifySignature checks sig over msg with the certified key.
func (c Cert) VerifySignature(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(ed25519.PublicKey(c.PublicKey), msg, sig)
}

// Marshal encodes the certificate as stored in the repository.
func (c Cert) Marshal() []byte {
	b, _ := json.Marshal(c)
	return b
}

// WriterKey is what a host that writes the repository holds: its signing
// key, its certificate, the repository's content key, and the recipients
// it encrypts to. It cannot decrypt anything.
type WriterKey struct {
	priv       ed25519.PrivateKey
	Cert       Cert
	ContentKey [32]byte
	// Recipients are the age recipients ("age1…") written into the key
	// file when it was issued (may be empty).
	Recipients []string
}

// Issue makes a new writer key named name, certified by k.
func (k *RootKey) Issue(name string, now time.Time, recipients []string) (*WriterKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	c := Cert{Version: 1, ID: writerIDOf(pub).String(), Name: name, PublicKey: pub, Root: k.Public().String(), Issued: now.UTC().Truncate(time.Second)}
	msg, err := c.signedBytes()
	if err != nil {
		return nil, err
	}
	c.Signature = ed25519.Sign(k.priv, msg)
	if _, err := ParseCert(c.Marshal()); err != nil {
		return nil, err
	}
	return &WriterKey{priv: priv, Cert: c, ContentKey: k.ContentKey(), Recipients: recipients}, nil
}

// ID is the writer's id.
func (w *WriterKey) ID() WriterID { return w.Cert.WriterID() }

// Root is the root that certified the writer: the one it trusts.
func (w *WriterKey) Root() (RootPublicKey, error) { return ParseRootPublicKey(w.Cert.Root) }

// Sign signs msg.
func (w *WriterKey) Sign(msg []byte) []byte { return ed25519.Sign(w.priv, msg) }

// Marshal is the key file's text.
func (w *WriterKey) Marshal() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# walvault writer key %q (%s), issued %s by root %s\n", w.Cert.Name, w.Cert.ID, w.Cert.Issued.Format(time.RFC3339), w.Cert.Root)
	b.WriteString("# Secret: it signs what this host writes to the repository. It cannot decrypt.\n")
	b.WriteString(writerSecretPrefix + b64.EncodeToString(w.priv.Seed()) + "\n")
	b.WriteString(writerCertPrefix + b64.EncodeToString(w.Cert.Marshal()) + "\n")
	b.WriteString(contentKeyPrefix + b64.EncodeToString(w.ContentKey[:]) + "\n")
	for _, r := range w.Recipients {
		b.WriteString(recipientLinePfx + r + "\n")
	}
	return []byte(b.String())
}

// ParseWriterKey parses a writer key file. Errors never hold key material.
func ParseWriterKey(data []byte) (*WriterKey, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not a walvault writer key file")
	}
	w := &WriterKey{}
	var haveKey, haveCert, haveContent bool
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, writerSecretPrefix):
			b, err := b64.DecodeString(strings.TrimPrefix(line, writerSecretPrefix))
			if err != nil || len(b) != ed25519.SeedSize || haveKey {
				return nil, fmt.Errorf("line %d: malformed or repeated writer key", i+1)
			}
			w.priv, haveKey = ed25519.NewKeyFromSeed(b), true
		case strings.HasPrefix(line, writerCertPrefix):
			b, err := b64.DecodeString(strings.TrimPrefix(line, writerCertPrefix))
			if err != nil || haveCert {
				return nil, fmt.Errorf("line %d: malformed or repeated certificate", i+1)
			}
			c, err := ParseCert(b)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			w.Cert, haveCert = c, true
		case strings.HasPrefix(line, contentKeyPrefix):
			b, err := b64.DecodeString(strings.TrimPrefix(line, contentKeyPrefix))
			if err != nil || len(b) != 32 || haveContent {
				return nil, fmt.Errorf("line %d: malformed or repeated content key", i+1)
			}
			copy(w.ContentKey[:], b)
			haveContent = true
		case strings.HasPrefix(line, recipientLinePfx):
			w.Recipients = append(w.Recipients, strings.TrimSpace(strings.TrimPrefix(line, recipientLinePfx)))
		default:
			return nil, fmt.Errorf("line %d: not part of a walvault writer key file", i+1)
		}
	}
	if !haveKey || !haveCert || !haveContent {
		return nil, errors.New("not a complete walvault writer key file (key, certificate and content key lines)")
	}
	if !bytes.Equal(w.priv.Public().(ed25519.PublicKey), w.Cert.PublicKey) {
		return nil, errors.New("the writer key does not match its certificate")
	}
	root, err := w.Root()
	if err != nil {
		return nil, err
	}
	if err := w.Cert.Verify([]RootPublicKey{root}); err != nil {
		return nil, fmt.Errorf("the certificate's signature does not verify: %w", err)
	}
	return w, nil
}

// LoadWriterKey reads a writer key file.
func LoadWriterKey(path string) (*WriterKey, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("writer key: %w", err)
	}
	w, err := ParseWriterKey(data)
	if err != nil {
		return nil, fmt.Errorf("writer key file %s: %w", path, err)
	}
	return w, nil
}

// WriteWriterKey creates path (O_EXCL, 0600, fsynced) holding w.
func WriteWriterKey(path string, w *WriterKey) error {
	return writeNewFile(path, w.Marshal())
}

// LoadRoots reads the walvault root keys of an identity file (the
// "# walvault-root-key: …" lines keygen writes). An identity file written
// before format 2 has none: the result is empty, not an error.
func LoadRoots(path string) ([]*RootKey, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("load root keys: %w", err)
	}
	var out []*RootKey
	for i, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), rootKeyComment)
		if !ok {
			continue
		}
		k, err := parseRootSecret(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("identity file %s line %d: %v", path, i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// LoadTrustedRoots reads the roots an identity file trusts: the public
// halves of its root keys, and "# walvault-trusted-root: wvroot1…" lines
// (what a copy of the identity made for restore_command holds instead of
// the root's secret).
func LoadTrustedRoots(path string) ([]RootPublicKey, error) {
	keys, err := LoadRoots(path)
	if err != nil {
		return nil, err
	}
	var out []RootPublicKey
	for _, k := range keys {
		out = append(out, k.Public())
	}
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), trustedRootComment)
		if !ok {
			continue
		}
		p, err := ParseRootPublicKey(rest)
		if err != nil {
			return nil, fmt.Errorf("identity file %s line %d: %v", path, i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// WithoutRootSecrets returns an identity file's text with each root key
// line replaced by the line that trusts its public half: what a reader
// needs, without what certifies writers.
func WithoutRootSecrets(data []byte) ([]byte, error) {
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), rootKeyComment)
		if !ok {
			continue
		}
		k, err := parseRootSecret(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		lines[i] = trustedRootComment + k.Public().String()
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// writeNewFile creates path with data, 0600, never over an existing file,
// durable before it returns; on error nothing is left.
func writeNewFile(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
