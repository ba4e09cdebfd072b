// Package walfetch restores one WAL file from a repository: the work behind
// restore_command.
//
// Promises: Fetch writes the destination only with verified content (the
// object's checksum, and for segments the page header: system identifier,
// segment size and address, and every page's timeline against the name and
// the timeline's history), through a temporary file renamed into place, so
// PostgreSQL never reads a partial or wrong segment. A file the repository
// does not hold is ErrNotFound and nothing else is: damage, a wrong key or an
// unreachable store are other errors, which the CLI turns into an exit status
// that makes PostgreSQL abort recovery instead of ending it early.
//
// When writers stored alternate copies of a file beside it (they met
// another object under its name: repo.PutWALAlternate), the copy that
// verifies is the file; copies that verify and differ are refused, naming
// both.
//
// Prefetch downloads the segments that follow into a spool directory, each
// verified and renamed into place whole; Fetch takes a segment from there
// when present.
package walfetch
