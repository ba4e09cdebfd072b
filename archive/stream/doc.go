// Package stream is the engine of "walvault stream": it receives WAL from a
// PostgreSQL primary over a physical replication slot, as pg_receivewal
// does, and keeps it in a walvault repository, so that the recovery point
// trails the primary by about PartialInterval (1 s) instead of a segment.
//
// # What it promises
//
//   - Flushed means fsynced in the local spool. The flush position reported
//     to the server (and so the slot's restart position, and for a
//     synchronous standby the commit acknowledgement) never runs ahead of
//     WAL fsynced in the spool. It is never reported as 0: pglogrepl would
//     turn that into the write position.
//   - Received WAL is written at its own offset in <spool>/<segment>.partial.
//     Streaming always starts at a segment boundary (as walreceiver does),
//     so a spool file never has a hole; bytes received again after a
//     reconnect are rewritten in place.
//   - A completed segment is fsynced, renamed to <segment>, and stored under
//     wal/ with wal-push's semantics: an identical object already there is
//     success, a different one is walpush.ErrConflict and stops the
//     streamer (two clusters share the repository, or corruption). Then its
//     streamed partials and its spool file are deleted.
//   - The segment being received is stored every PartialInterval while it
//     grows, as stream/<TLI>/<segment>.<valid bytes> (see repo.StreamPartialKey),
//     older partials of the segment being deleted after each. Uploads are in
//     order: no partial of a segment is stored while an earlier file of the
//     spool is not. Status.UploadedLSN is the position everything before
//     which is in the repository.
//   - Files leave the spool only once stored. At start-up, before
//     connecting, the spool is uploaded (so a spool that outlived its
//     database host is never stranded); if the store fails, streaming starts
//     anyway and uploads keep retrying.
//
// # Faults
//
//   - Connection lost, server restarted: reconnect with Options.Backoff and
//     resume at the start of the segment the spool ends in.
//   - Store unavailable: every upload is retried with backoff for as long
//     as Run lives (Status.UploadErrors counts failures). The spool grows up
//     to MaxSpool; then the streamer stops replicating until it is half
//     empty. Nothing is lost: only spooled WAL is reported flushed, and the
//     slot keeps the rest on the primary (watch SlotRetainedBytes; the
//     primary's max_slot_wal_keep_size bounds it).
//   - Timeline switch (promotion of a cascaded primary, or a spool from an
//     earlier timeline): the history file is stored under wal/, the old
//     timeline's last segment stays a streamed partial of that timeline,
//     and streaming goes on on the next timeline.
//   - Cancellation of Run's context (SIGTERM): stop receiving, fsync, send a
//     last status update, store every complete segment and the last partial
//     within 60 s, and return nil, or an error naming what is left in the
//     spool (it is uploaded at the next start).
//   - Unrecoverable, returned at once: ErrSlotMissing (without CreateSlot),
//     repo.ErrClusterMismatch, walpush.ErrConflict, ErrSpool.
//
// Memory use is bounded whatever the write rate: one segment-sized buffer
// per upload worker plus the partial uploader, and a few received messages.
package stream
