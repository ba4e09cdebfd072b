// Package catalog answers "what can be restored from this repository?": it
// reads the backup manifests, the list of archived WAL files and the timeline
// history files once (Load), and then works on that snapshot without further
// I/O, so that every question is a pure function that tests can drive with a
// synthetic Catalog.
//
// The model follows what PostgreSQL does during archive recovery:
//
//   - A backup is usable only when every WAL segment from its StartLSN to its
//     StopLSN is in the repository (Reach reports this as ok).
//   - From a backup's StopLSN, recovery can continue as long as the next
//     segment exists. A missing segment ends the run: PostgreSQL stops there.
//   - Recovery follows the history of one target timeline. For each segment
//     it reads the file of the newest timeline of that history that had begun
//     by that segment (XLogFileReadAnyTLI), so after a switch point the
//     segments of the child timeline are needed, not those of the parent.
//   - A timeline's history is its .history file. A backup lies on that history
//     when its timeline is on it and forked off no earlier than the backup's
//     end; a backup taken on a branch that was later abandoned cannot follow
//     the other branch.
//
// Times in a Window are not read from WAL records: From is the backup's
// StopTime (on the server's clock, never earlier than the true end of the
// backup, and at most a second later when dated by the server's backup
// history file, which Load reads for manifests that do not already hold its
// time) and To is the upload time (storage ModTime) of the last segment of
// the contiguous run. To is therefore an upper bound of the last commit that
// WAL holds, not the commit itself: a recovery_target_time close to To may
// still find no later commit and end with PostgreSQL's "recovery ended before
// configured recovery target was reached". Catalog only reads the repository;
// it never changes it (corrected stop times live in the loaded manifests
// only).
package catalog
