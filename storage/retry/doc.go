// Package retry wraps a storage.Store so that operations failing with a
// transient error (storage.IsTransient) are tried again after an exponential,
// jittered backoff.
//
// What it promises:
//   - Only errors marked transient by the backend are retried. Not-found,
//     exist, invalid-key and context errors are returned at once, as are
//     errors of a cancelled or expired context.
//   - Put seeks the body back to the position it had when Put was called
//     before each new attempt, so every attempt sends the same bytes.
//   - Get and GetRange retry opening the object. When reading the returned
//     reader fails transiently (a connection cut, a body cut short of its
//     length), it opens the rest of the object with a range request and
//     carries on, up to Attempts-1 times per reader; the bytes delivered
//     are those of one object, as objects are immutable. After that, or on
//     any other error, Read returns the error, every time it is called.
//   - List resumes after the last key it delivered, so fn sees every key
//     once, in order, even when a page fails midway.
//   - When all attempts fail, the error says "after N attempts" and still
//     wraps the last error, so storage.IsTransient stays true for it.
//
// A retried Put with IfAbsent may find the object its own earlier attempt
// stored (the first answer was lost). The S3 store compares the stored
// bytes then and succeeds for its own object; a retried Delete may report
// storage.ErrNotExist for an object its first attempt removed.
package retry
