package repo

import "errors"

// Sentinel errors callers branch on (the CLI maps them to exit codes).
var (
	// ErrNotInitialized: the store holds no walvault.json.
	ErrNotInitialized = errors.New("repository is not initialized")
	// ErrUnsupportedFormat: the repository or an object uses a newer format.
	ErrUnsupportedFormat = errors.New("unsupported repository format")
	// ErrClusterMismatch: the repository belongs to another PostgreSQL cluster.
	ErrClusterMismatch = errors.New("repository belongs to a different cluster")
	// ErrIntegrity: an object is damaged, truncated, tampered with, or does
	// not match its recorded size or checksum.
	ErrIntegrity = errors.New("object failed integrity check")
	// ErrWrongKey: no configured age identity can decrypt the object, or
	// (format 2) this host does not trust the repository's root: its
	// identity file is another repository's.
	ErrWrongKey = errors.New("no identity can decrypt the object (wrong key?)")
	// ErrNoIdentity: reading an encrypted repository without an identity.
	ErrNoIdentity = errors.New("no age identity configured")
	// ErrNoRecipients: writing to an encrypted repository without recipients.
	ErrNoRecipients = errors.New("no age recipients configured")
)
