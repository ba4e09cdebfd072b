// Package expire applies a retention policy to a repository: it removes
// the backups, WAL and leftovers that no kept backup and no moment of the
// promised window needs, and nothing else.
//
// MakePlan decides from a snapshot (Load) without any I/O, so the rules
// can be tested on synthetic repositories; Execute carries a plan out.
// The rules, each of which only ever keeps more:
//
//   - The newest backup is always kept, and so is the newest usable one
//     (whose WAL from start to end is all present).
//   - RetainFull N keeps the newest N backups.
//   - RetainWindow D keeps the newest usable backup that ended at or
//     before now-D and every backup after it, so every moment of the last
//     D days stays restorable (GDPR's storage limitation: no longer).
//   - Every backup newer than a kept one is kept.
//   - A backup marked keep (backup --keep, walvault keep) is kept with the
//     WAL from its start to its end, so it can still become consistent.
//   - WAL from the segment holding the start of the oldest kept backup is
//     kept on every timeline; timeline history files are always kept.
//   - Streamed partials are removed when a full segment supersedes them,
//     when a larger partial of the same segment exists, or when their
//     segment is below the kept WAL.
//   - Objects of a backup that has no manifest (an interrupted backup) are
//     removed once the newest of them is older than OrphanGrace.
//
// Execute removes a backup's manifest first, so it stops being listed
// before any of its chunks go, and WAL oldest first, so an interrupted run
// leaves the kept WAL contiguous; a rerun finishes the job. Objects that
// S3 Object Lock still retains are left in place and reported. The caller
// holds the repository's exclusive lock.
package expire
