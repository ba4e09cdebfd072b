// Package basebackup takes PostgreSQL base backups into a walvault
// repository: the engine of "walvault backup".
//
// Run opens a physical replication connection, runs BASE_BACKUP (no WAL, no
// server-side wait, with a tablespace map and a server backup manifest),
// and streams every archive the server sends ("base.tar", "<oid>.tar" per
// tablespace, and "backup_manifest") into the repository as a sequence of
// chunks: pieces of ChunkSize bytes of the archive's byte stream, each
// compressed, encrypted and stored by a bounded pool of workers. Restore
// concatenates an archive's chunks in order; a tar archive so rebuilt is a
// complete tar file (walvault appends the end-of-archive blocks PostgreSQL
// leaves to the client).
//
// Promises:
//   - The repository's backup manifest is written last, and only after
//     every chunk is stored, the server has ended the backup on the timeline
//     it started on, and every WAL segment from the start to the end of the
//     backup is in the repository (waiting up to WALTimeout; ErrWALTimeout
//     otherwise). A failed or cancelled Run never writes it, so restore
//     cannot pick up a partial backup. Chunks stored before a failure are
//     left behind without a manifest.
//   - Memory stays bounded by about (2×Workers+1)×ChunkSize plus what the
//     codec needs per worker, whatever the size of the cluster.
//   - The manifest's times are on the server's clock: StartTime is
//     backup_label's START TIME, and StopTime is never earlier than the
//     true end of the backup, so a recovery target at or after StopTime is
//     reachable from it. When Run can read the repository (an identity, or
//     no encryption), StopTime is the STOP TIME of the backup history file
//     the server archives plus one second, at most a second late.
//     Otherwise it is an estimate: START TIME plus one second plus the
//     time, on the local clock, from the server's answer to the start
//     (after its checkpoint) to its answer to the stop. That is late by up
//     to a second plus network delays, and early only if the server took
//     more than about a second between stamping START TIME and answering
//     (it sums the data directory's size first, for the progress total).
//     Readers of the repository replace the estimate with the history
//     file's time once that file is there (repo/catalog). StopTimeSource
//     records which.
//
// PostgreSQL 15 and later send one copy stream framed by a type byte per
// message (DecodeCopyMessage); 13 and 14 send one copy stream per
// tablespace and one for the manifest. Both are read here; older servers,
// which cannot send a manifest, are refused.
package basebackup
