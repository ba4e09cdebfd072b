// Package replconn opens physical replication connections to PostgreSQL and
// describes the cluster at the other end.
//
// Connect takes a libpq connection string (URL or key=value DSN) or "" and
// then follows libpq's environment conventions (PGHOST, PGPORT, PGUSER,
// PGPASSWORD, ~/.pgpass, PGSSLMODE…), because that is what operators already
// configure for pg_basebackup. The connection is always a physical
// replication connection (replication=true): the only kind that accepts
// BASE_BACKUP and IDENTIFY_SYSTEM.
//
// Promises:
//   - Every connection failure wraps ErrConnect, so the CLI can map it to one
//     exit code.
//   - No error returned by this package contains a password, whether it came
//     from the connection string, PGPASSWORD or ~/.pgpass: the driver's
//     messages are scrubbed before they leave.
//   - Identify reports the facts a repository is bound to (system identifier,
//     major version, WAL segment size) and refuses a server that reports
//     values walvault cannot work with, instead of panicking later.
//
// The package logs nothing; it returns errors.
package replconn
