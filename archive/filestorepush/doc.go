// Package filestorepush archives an Odoo filestore: every file of
// <data_dir>/filestore/<db> is stored once, as an add-only object named by
// its SHA-1 (shared by all databases), and each pass appends a record of
// which files the filestore held to the database's log, so restore can
// fetch the files of any moment and expire can tell which objects no
// restorable moment needs.
//
// A pass (Push) never re-reads a file it already stored: a local cache
// remembers name, size, mtime and inode of the files the last pass logged.
// Without the cache the repository is the source of truth (one listing of
// the object prefix), and the pass logs a full snapshot. Files are read
// only to check that their SHA-1 equals their name (a mismatch means
// corruption: the file is reported and not stored) and to store them;
// files above a few MiB are streamed, so memory stays bounded whatever
// the attachment sizes.
package filestorepush
