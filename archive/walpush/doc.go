// Package walpush archives one WAL file (segment, .history, .partial or
// .backup) into a repository: the work behind archive_command.
//
// Promises: the call returns nil only when the file is durably stored (or an
// identical copy already was); a different file under an already archived
// name is ErrConflict and the stored copy is left untouched; a segment from
// another cluster (system identifier, segment size or PostgreSQL major in its
// page header) is refused. Push may also archive other segments that
// PostgreSQL has marked ready, in parallel, so archiving keeps up under heavy
// write load; PostgreSQL's later call for those finds them stored and returns
// at once.
package walpush
