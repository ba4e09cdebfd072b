// Package scratch starts a private PostgreSQL server on a data directory
// that walvault has just restored, waits until recovery has reached its
// target and the server has promoted, and stops it again. walvault drill
// checks the recovered cluster through it, walvault restore runs its
// post-recovery steps (renaming a database, Odoo's neutralization) on it,
// and restore --database copies one database out of it.
//
// What it promises:
//   - The server is reachable only over a Unix socket in a directory of
//     mode 0700 owned by the server's account; TCP connections are refused
//     (Config.TCP only gives it a port number of its own).
//   - It never archives: archive_mode=off is set last, so no setting given
//     by the caller or found in the data directory can turn it back on.
//   - It runs as the current user, or, when walvault runs as root, as the
//     account given (PostgreSQL refuses root).
//   - It dies with walvault: if walvault is killed, the kernel sends the
//     postmaster SIGQUIT. Stop ends it in order (fast shutdown, which
//     writes a checkpoint, so the data directory is ready for the normal
//     service), then harder, always bounded.
//   - Processes restore_command leaves behind (wal-prefetch) are found and
//     ended with ReapStrays once the server has stopped (Linux).
package scratch
