// Package repo is the walvault repository format: the one place that knows
// object keys, the object envelope (header, compression, encryption), the
// repository configuration and the backup manifest. Both the writing side
// (archive/...) and the reading side (restore/...) import it; neither knows
// how the other works.
//
// The format is a public contract, documented in docs/FORMAT.md. Version 1:
//
//	walvault.json                         repository configuration (plain JSON)
//	wal/<TTTTTTTT>/<WAL file name>        one object per WAL segment, .history,
//	                                      .partial or .backup file
//	backups/<id>/data/<archive>/<NNNNNNNN> chunks of each tar stream of a backup
//	backups/<id>/backup.json              the backup manifest, written last
//
// Every object except walvault.json is an envelope: a 48-byte plaintext
// header (magic "WVLT", format version, codec bytes, plaintext size and
// SHA-256) followed by zstd-compressed data that is age-encrypted unless the
// repository was created without encryption. Readers verify the codec against
// the repository configuration, decrypt (age authenticates), decompress, and
// check size and SHA-256 of the plaintext: a damaged object is never returned
// as data.
//
// A format-2 repository also holds completeness heads (heads.go: an empty
// signed object per archived WAL segment, so that a deleted segment is
// noticed) and, when a writer met something else under a WAL file's name,
// alternate copies beside it (walalt.go); see docs/FORMAT.md.
//
// A Repository keeps its store to itself: callers ask for what they need
// by what it is (BackupObjects, ListWAL, AllStreamPartials, HasWALSegment,
// PutFilestoreObject, …) and remove only objects a listing gave them
// (Remove). Outside this package keys are opaque: they come from its
// listings and key functions, go back to its methods, and name objects in
// reports; nothing else builds or cuts one.
//
// Compatibility promise: a walvault release reads every format version up to
// its own; it refuses, with ErrUnsupportedFormat, a repository or object of a
// newer version rather than guessing.
package repo
