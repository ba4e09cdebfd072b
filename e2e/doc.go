// Package e2e holds walvault's end-to-end tests. They build the real
// walvault binary once and drive it the way an operator and PostgreSQL do:
// a real PostgreSQL 15 cluster archives WAL through `walvault wal-push`,
// `walvault backup` takes base backups over a replication connection, and
// `walvault restore` followed by a real server start replays WAL through
// `walvault wal-fetch` to a recovery target. The assertions are about the
// recovered data (exact rows at a target time, pgbench invariants,
// pg_amcheck) and about the documented exit codes, never about internals.
//
// Requirements: PostgreSQL 15 server binaries (initdb, pg_ctl, postgres,
// pgbench, pg_amcheck, pg_resetwal) in /usr/lib/postgresql/15/bin or
// $WALVAULT_PG_BIN; for TestVersions, the servers of PostgreSQL 13, 14, 16,
// 17 and 18 that scripts/fetch-postgres.sh installs; a MinIO binary for the
// S3 scenarios (see storage/s3/miniotest); mount(2) for the disk-full test.
// Without them the tests skip, unless CI is set, in which case they fail.
//
// Knobs: WALVAULT_E2E_BINARY tests a prebuilt binary instead of building
// ./cmd/walvault; WALVAULT_E2E_RACE=1 builds it with the race detector;
// WALVAULT_E2E_KEEP=1 keeps a failed test's directory (clusters, repository,
// server logs) for inspection.
//
// PostgreSQL refuses to run as root. When the tests run as root, every
// PostgreSQL program and every walvault command that a server would run
// (archive_command, restore_command) runs as the "postgres" system user, and
// each test works in a directory that user owns.
package e2e
