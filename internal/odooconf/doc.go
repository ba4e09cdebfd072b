// Package odooconf reads Odoo's server configuration file (odoo.conf) for
// what walvault needs from it: how Odoo connects to PostgreSQL and where its
// data directory (and so each database's filestore) is.
//
// The file is the INI file Odoo reads with Python's configparser: settings
// live in the [options] section, '#' and ';' start comment lines, a value
// continues on indented lines, and "False" or "None" mean "not set" (Odoo
// writes every unset option that way). Inline comments are not comments:
// "db_password = a#b" is the password "a#b", as Odoo reads it.
//
// Promises:
//   - Parse never panics and accepts anything Odoo itself would start with;
//     unknown options are kept (Options) but not interpreted.
//   - The database password is never part of a string this package builds
//     (ConnString) or an error it returns: callers set it on the driver's
//     config (ConnConfig), so it never reaches argv or a log line.
//
// The package does no I/O beyond reading the file and looking up the odoo
// user's home for the default data directory.
package odooconf
