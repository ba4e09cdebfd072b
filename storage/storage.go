// Package storage defines the object store that a walvault repository lives in,
// and the guarantees every implementation keeps.
//
// A Store is a flat namespace of keys ("wal/00000001/000000010000000000000003")
// mapped to immutable byte strings. Implementations live in sub-packages
// (storage/local, storage/s3); cross-cutting behaviour such as retries is a
// wrapper (storage/retry), never code inside a backend. This package imports
// nothing else of walvault's.
//
// Every implementation must pass the conformance suite in storage/storagetest.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors that callers branch on. Implementations wrap them, so use
// errors.Is.
var (
	// ErrNotExist reports that no object is stored under the key. It is never
	// returned for any other condition (permission, network, corruption).
	ErrNotExist = errors.New("object does not exist")
	// ErrExist reports that Put with IfAbsent found an object already stored
	// under the key. The stored object is left untouched.
	ErrExist = errors.New("object already exists")
)

// RetainedError reports that Delete left an object in place because the
// backend still retains it (S3 Object Lock) until Until.
type RetainedError struct {
	Key   string
	Until time.Time
}

func (e *RetainedError) Error() string {
	return fmt.Sprintf("%s is retained until %s (object lock): not deleted", e.Key, e.Until.UTC().Format(time.RFC3339))
}

// IsNotExist reports whether err means the object is absent.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

// IsExist reports whether err means a conditional Put found an existing object.
func IsExist(err error) bool { return errors.Is(err, ErrExist) }

// TransientError marks an error that may succeed when retried (timeouts,
// connection resets, 5xx answers, throttling). Backends wrap such errors with
// Transient so the retry wrapper can tell them from permanent failures.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient wraps err as retryable. A nil err stays nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// IsTransient reports whether err (or anything it wraps) is marked retryable.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
	// RetainUntil is the end of the object's retention period when the
	// backend enforces one (S3 Object Lock), else zero. Only Stat fills it;
	// List leaves it zero. Until then the backend keeps the object's
	// data whatever Delete does (on a versioned S3 bucket, Delete only
	// hides it behind a delete marker).
	RetainUntil time.Time
}

// Retained reports whether the object is under retention at time now.
func (oi ObjectInfo) Retained(now time.Time) bool {
	return !oi.RetainUntil.IsZero() && now.Before(oi.RetainUntil)
}

// PutOptions modify Put.
type PutOptions struct {
	// IfAbsent makes Put fail with ErrExist when the key already holds an
	// object, without changing it. The check and the write are one atomic
	// step where the backend allows (local: link(2); S3: If-None-Match: *).
	// A backend whose answers can be lost (S3) reports success instead
	// when the object it finds is byte for byte the one being put: that
	// is its own earlier attempt, or an identical copy.
	IfAbsent bool
	// Temporary marks a short-lived object (a lock) that must not be
	// written under retention, even when the backend is configured to
	// retain every other object.
	Temporary bool
}

// Store is an object store. All methods are safe for concurrent use.
//
// Guarantees every implementation keeps:
//   - Put is atomic: a reader sees either no object or the whole object, never
//     a prefix. A Put that fails or whose context is cancelled leaves no
//     object (and no visible temporary) behind. When Put returns nil the
//     object is durable (fsynced / acknowledged by the server).
//   - Get, GetRange, Stat and Delete of a missing key return an error for which
//     IsNotExist is true; no other failure does.
//   - List returns every object whose key starts with prefix, in lexical key
//     order, and never returns temporaries of an unfinished Put.
//   - Delete of a missing key returns an ErrNotExist error; callers that do not
//     care ignore it.
//   - Keys are slash-separated, relative, and never contain "..", a leading
//     slash, or empty segments; implementations reject such keys.
type Store interface {
	// Put stores the content of body under key. body is read from its current
	// position to EOF; the Store may Seek it back to that position to retry.
	Put(ctx context.Context, key string, body io.ReadSeeker, opts PutOptions) error
	// Get opens the whole object. The caller must Close the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes starting at offset. A range running past
	// the end of the object is cut short at the end.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat describes one object.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for each object under prefix in lexical key order. An
	// error returned by fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes the object. An object the backend still retains
	// (ObjectInfo.RetainUntil in the future) is left in place with a
	// *RetainedError, rather than hidden behind a delete marker.
	Delete(ctx context.Context, key string) error
	// String describes the store for messages (a URL without secrets).
	String() string
}

// ValidKey reports whether key is an acceptable object key.
func ValidKey(key string) bool {
	if key == "" || key[0] == '/' || key[len(key)-1] == '/' {
		return false
	}
	start := 0
	for i := 0; i <= len(key); i++ {
		if i == len(key) || key[i] == '/' {
			seg := key[start:i]
			if seg == "" || seg == "." || seg == ".." {
				return false
			}
			start = i + 1
			continue
		}
		if key[i] == 0 || key[i] == '\\' {
			return false
		}
	}
	return true
}
