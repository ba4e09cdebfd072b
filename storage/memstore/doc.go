// Package memstore implements storage.Store in memory, for tests of the
// code above storage: repositories, archiving, restore. It passes the
// conformance suite in storage/storagetest, so a test on a memstore sees
// the same contract as one on a directory or a bucket, without a temporary
// directory or fsyncs.
//
// What it promises, beyond the storage.Store contract:
//   - Nothing is shared between stores: each New is an empty namespace,
//     dropped with the Store.
//   - Put reads the whole body before it stores anything, so a failed or
//     cancelled Put leaves nothing, and readers see the whole object or none.
//   - List calls fn outside the store's lock, on the objects present when
//     it began: fn may Put and Delete.
//   - A key may also be the prefix of other keys ("a/b" and "a/b/c"), as on
//     object stores.
//   - ModTime is the time of the Put on the wall clock.
//
// It keeps no data past the process and is not meant for production use.
package memstore
