// Package pitr implements walvault restore: it rebuilds a PostgreSQL data
// directory from a backup in the repository and configures the server to
// recover to a point in time (or a LSN, transaction, restore point, the end
// of the backup, or the end of the archived WAL).
//
// Run works in this order, so that nothing is changed before everything
// that can be checked was checked:
//
//  1. PGData is made absolute and must be empty or missing (with Force,
//     anything goes; the contents are removed in step 3).
//  2. The catalog is loaded and a backup chosen (see Run's Options.Target
//     and chooseBackup): its WAL from start to stop must be in the
//     repository, it must lie on the history of the timeline recovery will
//     follow, and the target must fall inside the window it reaches, else
//     ErrTargetOutsideWindow, whose message shows that window (a time
//     target in the second in which the backup ended, by the server's
//     clock, is left to PostgreSQL: see earliestTimeTarget). An XID or
//     restore point target cannot be placed in the WAL without reading it,
//     so those restore the oldest usable backup, which reaches every point a
//     newer one does. Tablespace directories are checked, a running server
//     on PGData is refused, and free space is compared with the backup size.
//     The manifest comes from whoever can write the repository: a
//     tablespace location only it names (not mapped with TablespaceMap) is
//     used only if it exists, empty, outside SystemDirs, reached without a
//     symbolic link and, as root, owned by Options.Owner; it is never
//     created (ErrTablespaceLocation). Chunk keys must lie in the backup's
//     folder, and base.tar's tablespace_map may name only the manifest's
//     tablespaces.
//  3. The archives are streamed from the repository: chunks are downloaded,
//     decrypted and decompressed by Options.Workers goroutines, checked
//     against the manifest, and fed in order to a tar extractor. base.tar
//     goes into PGData, each tablespace into its mapped (or original)
//     location, and the server's backup_manifest to PGData/backup_manifest.
//     The extractor refuses absolute names, "..", links that leave the
//     directory and anything written through a link; file modes are kept
//     without setuid, setgid and sticky bits.
//  4. tablespace_map is rewritten with the new locations, and
//     pg_tblspc/<oid> made to point there (PostgreSQL recreates those links
//     from tablespace_map at startup anyway). pg_verifybackup can check the
//     restored directory before the server starts (pass -n); it reports
//     tablespace_map as changed when a tablespace was moved.
//  5. postmaster.pid, postmaster.opts and signal files from the backup are
//     removed; a block of recovery settings (restore_command,
//     recovery_end_command and the target) is appended to
//     postgresql.auto.conf. Nothing else is written into PGData: what
//     restore_command reads lives outside it (restore/recoverydir). If running as root, everything is
//     given to Options.Owner. Everything is flushed to disk (syncfs).
//  6. recovery.signal is written last.
//
// If Run fails or its context is cancelled, it returns the error and leaves
// the directories as they are, but without recovery.signal: a half-restored
// cluster does not start a recovery by mistake. Run again with Force to
// start over.
//
// Archiving settings of the restored cluster are left as they were: when
// the restored server is promoted it archives its new timeline wherever its
// configuration says, usually the same repository, which is what a real
// disaster recovery needs (Result.Warnings says so).
//
// ParseTargetTime reads the times users type: RFC 3339 and PostgreSQL's
// timestamptz output, always with a zone.
package pitr
