package repo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/walvault/walvault/crypto"
)

// Writer authenticity (format 2). Every object is signed by a writer
// (crypto.WriterKey) over its key, size and plaintext SHA-256, and carries
// the writer's certificate; every reader checks the certificate against a
// root it trusts (crypto.RootPublicKey: from the identity file on the
// restore side, from the writer key's certificate on a writing host) and
// the signature with the certified key. Whoever has the bucket but neither
// the root nor a writer key can only plant objects readers refuse. Nothing
// else in the bucket is needed to check an object: deleting anything can
// make a reader refuse, never accept.

// ErrNoWriterKey: writing to a format-2 repository needs a writer key.
var ErrNoWriterKey = errors.New("no writer key")

// ErrUntrusted: an object or the configuration is not signed by a writer a
// root this reader trusts has certified (forged, planted, copied from
// elsewhere or renamed). Callers treat it as damage (it wraps ErrIntegrity).
var ErrUntrusted = fmt.Errorf("%w: %w", ErrIntegrity, crypto.ErrUntrusted)

// trust is a repository's view of its writers: the certificates it has
// checked against its roots, by their SHA-256.
type trust struct {
	mu         sync.Mutex
	certs      map[[32]byte]*crypto.Cert
	configDone bool
	configErr  error
}

// roots are the roots this reader trusts.
func (r *Repository) roots() []crypto.RootPublicKey {
	out := append([]crypto.RootPublicKey(nil), r.opts.TrustedRoots...)
	if w := r.opts.Writer; w != nil {
		if root, err := w.Root(); err == nil {
			out = append(out, root)
		}
	}
	return out
}

// Signed reports whether the repository signs its objects (format 2).
func (r *Repository) Signed() bool { return r.Config.Signed() }

// canSign refuses a write to a format-2 repository without a writer key.
func (r *Repository) canSign() error {
	if r.Signed() && r.opts.Writer == nil {
		return fmt.Errorf("%w: %s is a format-2 repository, whose objects are signed: give this host a writer key (walvault writer issue; --writer-key-file or WALVAULT_WRITER_KEY_FILE)", ErrNoWriterKey, r)
	}
	return nil
}

// sign fills h's signature fields for an object stored under key (nothing
// in a format-1 repository).
func (r *Repository) sign(key string, h *ObjectHeader) {
	if !r.Signed() {
		return
	}
	w := r.opts.Writer
	h.Version = signedVersion
	h.Writer = w.ID()
	h.SignedAt = time.Now().UTC()
	h.Cert = w.Cert.Marshal()
	h.Signature = make([]byte, 64)
	b := h.MarshalBinary()
	h.Signature = w.Sign(signedMessage(key, b[:len(b)-64]))
}

// verifyHeader checks the header of the object read under key: in a
// format-2 repository a signature over this key by a writer whose
// certificate a trusted root signed, in a format-1 repository no signature
// at all (a signed object there, or an unsigned one in format 2, is out of
// place: refused). raw starts with the header's bytes as stored.
func (r *Repository) verifyHeader(ctx context.Context, key string, h ObjectHeader, raw []byte) error {
	if !r.Signed() {
		if h.Version >= signedVersion {
			return fmt.Errorf("%w: a signed (format-2) object in a format-1 repository", ErrIntegrity)
		}
		return nil
	}
	if h.Version < signedVersion {
		return fmt.Errorf("%w: an unsigned object in a format-2 repository (planted, or walvault.json was altered)", ErrUntrusted)
	}
	if err := r.VerifyConfig(ctx); err != nil {
		return err
	}
	cert, err := r.checkCert(h.Cert)
	if err != nil {
		return err
	}
	if cert.WriterID() != h.Writer {
		return fmt.Errorf("%w: the header names writer %s but carries the certificate of %s", ErrUntrusted, h.Writer, cert.ID)
	}
	n := h.Size()
	if !cert.VerifySignature(signedMessage(key, raw[:n-64]), h.Signature) {
		return fmt.Errorf("%w: the signature of writer %s (%q) does not match this object under this name (altered, or copied from another name)", ErrUntrusted, cert.ID, cert.Name)
	}
	return nil
}

// checkCert parses a certificate and checks it against the trusted roots,
// once per distinct certificate.
func (r *Repository) checkCert(data []byte) (*crypto.Cert, error) {
	sum := sha256.Sum256(data)
	r.trust.mu.Lock()
	c, ok := r.trust.certs[sum]
	r.trust.mu.Unlock()
	if ok {
		return c, nil
	}
	roots := r.roots()
	if len(roots) == 0 {
		return nil, fmt.Errorf("%w: %s is a format-2 repository, whose objects are signed, and this host trusts no root: use the identity file walvault keygen made for it (its walvault-root-key line) or a writer key", ErrNoIdentity, r)
	}
	parsed, err := crypto.ParseCert(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUntrusted, untrustedDetail(err))
	}
	if err := parsed.Verify(roots); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUntrusted, untrustedDetail(err))
	}
	r.trust.mu.Lock()
	r.trust.certs[sum] = &parsed
	r.trust.mu.Unlock()
	return &parsed, nil
}

// VerifyConfig checks, once, that a trusted writer signed walvault.json
// (format 2): its cluster, segment size and encryption mode are then the
// ones the repository was created with.
func (r *Repository) VerifyConfig(ctx context.Context) error {
	if !r.Signed() {
		return nil
	}
	r.trust.mu.Lock()
	done, cached := r.trust.configDone, r.trust.configErr
	r.trust.mu.Unlock()
	if done {
		return cached
	}
	err := r.verifyConfig()
	if err == nil || errors.Is(err, ErrIntegrity) || errors.Is(err, ErrNoIdentity) {
		r.trust.mu.Lock()
		r.trust.configDone, r.trust.configErr = true, err
		r.trust.mu.Unlock()
	}
	return err
}

func (r *Repository) verifyConfig() error {
	cert, err := r.checkCert(r.Config.WriterCert)
	if err != nil {
		if errors.Is(err, ErrUntrusted) && !r.trustsRoot(r.Config.Root) {
			return r.wrongRoot()
		}
		return fmt.Errorf("%s: %w", ConfigKey, err)
	}
	if cert.ID != r.Config.Writer || !cert.VerifySignature(r.Config.signedBytes(), r.Config.Signature) {
		return fmt.Errorf("%w: %s is not what writer %s (%q) signed: it was altered", ErrUntrusted, ConfigKey, cert.ID, cert.Name)
	}
	return nil
}

// trustsRoot reports whether root (as walvault.json names it) is one this
// reader trusts.
func (r *Repository) trustsRoot(root string) bool {
	for _, t := range r.roots() {
		if t.String() == root {
			return true
		}
	}
	return false
}

// wrongRoot is the error for a walvault.json whose root this reader does
// not trust at all. Nearly always the operator gave the identity file (or
// writer key) of another repository, so it is a wrong key (ErrWrongKey),
// and says so first; a walvault.json replaced by someone else reads the
// same and is refused all the same (ErrUntrusted).
func (r *Repository) wrongRoot() error {
	trusted := make([]string, 0, len(r.roots()))
	for _, t := range r.roots() {
		trusted = append(trusted, t.String())
	}
	return &wrongRootError{msg: fmt.Sprintf("wrong key: %s says the repository's writers are certified by root %s, and this host trusts only %s: use the identity file walvault keygen made for this repository (its walvault-root-key line), or a writer key of that root. If that is the one given, %s was replaced, and nothing in the repository is to be trusted",
		ConfigKey, r.Config.Root, strings.Join(trusted, ", "), ConfigKey)}
}

// wrongRootError is both a wrong key and untrusted, with its own message.
type wrongRootError struct{ msg string }

func (e *wrongRootError) Error() string   { return e.msg }
func (e *wrongRootError) Unwrap() []error { return []error{ErrWrongKey, ErrUntrusted} }

// untrustedDetail is err's message without crypto's own "not signed by a
// trusted writer" prefix, which ErrUntrusted already says.
func untrustedDetail(err error) string {
	return strings.TrimPrefix(err.Error(), crypto.ErrUntrusted.Error()+": ")
}
