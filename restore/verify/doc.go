// Package verify proves that a repository restores: it reads every object
// back and checks it the way a restore would, without writing anything.
//
// Run checks, with a bounded pool of workers:
//
//   - every object decrypts, decompresses and matches the size and SHA-256 of
//     its header (repo.Repository.Get);
//   - every backup manifest parses, every chunk it lists exists and matches
//     the manifest's size and checksum, and the chunks of each tar archive
//     concatenate to a valid tar stream (base.tar holding backup_label). The
//     stream is read through archive/tar and discarded: at most one chunk
//     per worker is held in memory;
//   - WAL segments and .partial files carry the long page header of the
//     segment their name says, of this repository's cluster; timeline
//     history files parse; streamed partials hold as many bytes as their key
//     says;
//   - the WAL is continuous from the oldest backup's start to the newest WAL,
//     following timeline switches as recovery does (repo/catalog). Each
//     gap is reported with the position no restore can pass and the backups
//     it cuts short; WAL missing between a backup's start and stop makes that
//     backup unusable, which is a problem.
//
// Damaged, missing, mismatched or undecryptable objects are Problems, each
// naming its key; gaps that only shorten the recoverable window, and chunks
// without a manifest (interrupted backups), are reported but are not
// problems. Run returns an error only when it cannot do its job at all (no
// identity, storage unreachable, context cancelled); what it finds wrong is
// in the Report.
//
// Promise: Run only lists and reads. It never puts, rewrites or deletes an
// object.
package verify
