// Package walpush archives one WAL file (segment, .history, .partial or
// .backup) into a repository: the work behind archive_command.
//
// Promises: the call returns nil only when the file is durably stored (or an
// identical copy already was, judged by the signed header in a format-2
// repository). A different object under the name is left untouched and the
// file is stored beside it as an alternate copy (repo.PutWALAlternate;
// Result.Conflict says so, and it is logged as an error): nothing planted
// under a future name can make archive_command fail forever. ErrConflict
// only when both alternate names are taken too. A segment from another
// cluster (system identifier, segment size or PostgreSQL major in its page
// header), or whose page headers do not fit its name (page address, page
// timelines against the name and pg_wal's history file), is refused. In a
// format-2 repository each segment's signed completeness head is stored
// after it (repo.PutWALHead). Push may also archive other segments that
// PostgreSQL has marked ready, in parallel, so archiving keeps up under heavy
// write load; PostgreSQL's later call for those finds them stored and returns
// at once.
package walpush
