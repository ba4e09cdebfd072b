// Package check answers "is this setup protected right now, and if not,
// what exactly must I change?" for walvault check.
//
// It looks at a live PostgreSQL server over an ordinary SQL connection
// (settings, pg_stat_archiver, pg_stat_replication, replication slots) and
// at the repository, and returns one Result per check with a status on the
// Nagios scale (OK, WARNING, CRITICAL, UNKNOWN), a one-line message and,
// when the status is not OK, the fix: the setting to change or the command
// to run.
//
// It reads the repository without the age identity wherever it can: the
// configuration (walvault.json) is plain JSON, and object keys and their
// storage times say which WAL segments and backups exist and when they
// arrived. Only reading a backup manifest needs the identity; that part is
// done when an identity is configured, and a failure there is a WARNING,
// never an aborted check. Nothing here writes to the repository; the only
// change to the server is the WAL switch that Options.ArchiveTest asks for.
//
// The gathering of facts (SQL, listings) is kept apart from the judging
// (pure functions of those facts and the clock), so the judgements are
// tested without a server.
package check
