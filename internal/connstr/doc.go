// Package connstr inspects PostgreSQL connection strings — libpq URLs
// (postgres://…, postgresql://…) and key=value strings — without
// connecting, reading files or looking at the environment.
//
// It exists so that every option taking a connection string on the command
// line applies one rule: a command line shows in every process listing, so
// a connection string given there must not hold a password (HasPassword).
// The password goes through PGPASSWORD, ~/.pgpass, or a setting that is not
// part of argv.
//
// Promises:
//   - HasPassword never panics and reads a string the way libpq (and pgx,
//     which walvault connects with) reads it: a string from which they would
//     take a password is always reported.
//   - It errs on the side of reporting: a string it cannot read at all (an
//     unterminated quote or bracket, a keyword without '=', all refused by
//     pgx anyway) is reported when it contains the word "password".
package connstr
