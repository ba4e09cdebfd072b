// Package s3 implements storage.Store on an Amazon S3 bucket or an
// S3-compatible service (MinIO, Ceph RGW, Backblaze B2, Wasabi), with
// aws-sdk-go-v2.
//
// Keys are stored as PREFIX/key, or as key at the bucket root when the
// prefix is empty, so the repository can be read with any S3 tool.
//
// What it promises, beyond the storage.Store contract:
//   - Put is one PutObject with a known length; S3 applies it whole or not at
//     all, so a failed or cancelled Put leaves nothing. Objects must fit one
//     PutObject (5 GiB on AWS); walvault's are at most a few tens of MiB.
//   - Put with IfAbsent sends "If-None-Match: *"; 412 PreconditionFailed and
//     409 ConditionalRequestConflict become storage.ErrExist. An IfAbsent Put
//     whose answer was lost may have stored the object, and its retry (the
//     SDK's or the caller's) then finds that very object: Put reads it back
//     and succeeds when it holds exactly the bytes being put; any other
//     content stays ErrExist.
//   - Only NoSuchKey, and the body-less 404 of HeadObject once HeadBucket
//     has not shown the bucket to be missing, become storage.ErrNotExist.
//     NoSuchBucket, AccessDenied and every network failure are errors of
//     their own, so an unreachable repository is never taken for a missing
//     WAL segment. (Without s3:ListBucket, S3 answers 403 for missing keys:
//     that is an error, not "not found".)
//   - 5xx, 429, 408, throttling codes, timeouts, connection resets and
//     truncated bodies (also while reading a Get) are marked
//     storage.Transient. The SDK itself makes up to Options.SDKAttempts
//     (default 3) quick attempts per request; waiting longer is left to the
//     storage/retry wrapper, which keys on the Transient mark.
//   - Request checksums are sent and response checksums validated only when
//     an operation requires them, which S3-compatible servers need.
//   - String never shows credentials.
package s3
