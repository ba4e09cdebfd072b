// Package dbcopy brings one database back beside the live one: it recovers
// the whole cluster to the target in a scratch directory, starts it
// privately (package scratch), and copies that one database into a running
// server under a new name with pg_dump -Fc | pg_restore (a pipe, no
// temporary file), then removes the scratch directory — always, also when
// something fails or the context is cancelled (SIGINT, SIGTERM).
//
// Unlike restoring a cluster with only some databases' files (the other
// databases left as zeroed files that cannot be opened), the result is an
// ordinary database in the running server, next to the one it is a copy
// of, with the original's encoding and locale, owned by the original's
// owner when that role exists there.
//
// A live Odoo runs its scheduled actions (mail, payments) in every
// database its role owns or can open, so the copy is not the original
// owner's while it is made: it is created by and belongs to the connecting
// role, with CONNECT revoked from PUBLIC, until the copy and the steps
// (mark, neutralize, anonymise, filestore) are done; then, in one
// transaction, CONNECT goes back to PUBLIC and the original owner, when
// that role exists, gets the database. The tables and rows reported are
// counted exactly on the scratch server, before the copy, so that no
// count delays the steps or loads the live server.
//
// What it checks before any work: the target server is reachable, the new
// name is free there (ErrExists), pg_dump and pg_restore of the
// repository's major version or newer are installed (ErrNoClient), and the
// connection string carries no password (it would show in process
// listings: PGPASSWORD or ~/.pgpass carry it).
package dbcopy
