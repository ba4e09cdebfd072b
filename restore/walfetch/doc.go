// Package walfetch restores one WAL file from a repository: the work behind
// restore_command.
//
// Promises: Fetch writes the destination only with verified content (the
// object's checksum, and for segments the page header: system identifier,
// segment size and address), through a temporary file renamed into place, so
// PostgreSQL never reads a partial or wrong segment. A file the repository
// does not hold is ErrNotFound and nothing else is: damage, a wrong key or an
// unreachable store are other errors, which the CLI turns into an exit status
// that makes PostgreSQL abort recovery instead of ending it early.
//
// Prefetch downloads the segments that follow into a spool directory, each
// verified and renamed into place whole; Fetch takes a segment from there
// when present.
package walfetch
