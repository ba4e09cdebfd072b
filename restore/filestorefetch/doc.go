// Package filestorefetch brings back the Odoo filestore of a recovered
// database: Referenced reads which files the database's attachments name
// (ir_attachment.store_fname), and Fetch writes exactly those files from
// the repository into <data_dir>/filestore/<db>, each checked against its
// SHA-1, and reports every referenced file the repository does not hold.
//
// Use after the database is recovered (walvault restore), with the
// recovered server running:
//
//	refs, err := filestorefetch.Referenced(ctx, conn)
//	rep, err := filestorefetch.Fetch(ctx, r, refs, "/var/lib/odoo/filestore/newname", filestorefetch.FetchOptions{})
//
// Fetch returns ErrIncomplete (with the full Report) when files are
// missing, so a caller can tell an incomplete filestore from a failure to
// read or write.
//
// Fetch often runs as root in a folder the odoo account can write: it
// follows no symbolic link there. A link another account owns in the
// path of the target folder is ErrUnsafePath; below it everything goes
// through an os.Root, an <xx> folder that is a link is not entered (its
// files are reported as Unusable), and a file is always written to a new
// temporary file and renamed over the name, never through what is there.
package filestorefetch
