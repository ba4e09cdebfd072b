package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/walvault/walvault/storage"
)

// Options tune the retries. The zero value is usable.
type Options struct {
	// Attempts is the total number of tries per operation, the first
	// included. Default 5.
	Attempts int
	// Base is the delay before the second attempt; it doubles for each
	// further attempt up to Max. Each delay is jittered to between half and
	// all of its value. Defaults 200ms and 5s.
	Base, Max time.Duration
	// Sleep waits for d or until ctx is done. Tests replace it to run
	// instantly. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger, if set, receives one Warn record per retry.
	Logger *slog.Logger
}

// Wrap returns s with retries.
func Wrap(s storage.Store, opts Options) storage.Store {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Base <= 0 {
		opts.Base = 200 * time.Millisecond
	}
	if opts.Max <= 0 {
		opts.Max = 5 * time.Second
	}
	if opts.Max < opts.Base {
		opts.Max = opts.Base
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	return &store{s: s, opts: opts}
}

type store struct {
	s    storage.Store
	opts Options
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delay returns the jittered backoff before attempt number next (2, 3, ...).
func (r *store) delay(next int) time.Duration {
	d := r.opts.Base
	for i := 2; i < next && d < r.opts.Max; i++ {
		d *= 2
	}
	d = min(d, r.opts.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// do runs op until it succeeds, fails permanently, or attempts run out.
// before, if set, runs before every attempt after the first.
func (r *store) do(ctx context.Context, name, key string, before func() error, op func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if attempt > 1 && before != nil {
			if berr := before(); berr != nil {
				return fmt.Errorf("%s %s: cannot retry (after %v): %w", name, key, err, berr)
			}
		}
		err = op()
		if err == nil || !retryable(ctx, err) {
			return err
		}
		if attempt >= r.opts.Attempts {
			return fmt.Errorf("%s %s: giving up after %d attempts: %w", name, key, attempt, err)
		}
		d := r.delay(attempt + 1)
		if r.opts.Logger != nil {
			r.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "storage operation failed, retrying",
				slog.String("op", name), slog.String("key", key), slog.String("store", r.s.String()),
				slog.Int("attempt", attempt), slog.Duration("delay", d), slog.Any("err", err))
		}
		if serr := r.opts.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("%s %s: %w (while waiting to retry after: %v)", name, key, serr, err)
		}
	}
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if storage.IsNotExist(err) || storage.IsExist(err) {
		return false
	}
	if fe := (*errFromFn)(nil); errors.As(err, &fe) {
		return false
	}
	return storage.IsTransient(err)
}

func (r *store) Put(ctx context.Context, key string, body io.ReadSeeker, opts storage.PutOptions) error {
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("put %s: body position: %w", key, err)
	}
	rewind := func() error {
		_, err := body.Seek(start, io.SeekStart)
		return err
	}
	return r.do(ctx, "put", key, rewind, func() error {
		return r.s.Put(ctx, key, body, opts)
	})
}

func (r *store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, "get", key, nil, func() error {
		var err error
		rc, err = r.s.Get(ctx, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resumingReader{r: r, ctx: ctx, key: key, rc: rc, length: -1}, nil
}

func (r *store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, "get", key, nil, func() error {
		var err error
		rc, err = r.s.GetRange(ctx, key, offset, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resumingReader{r: r, ctx: ctx, key: key, rc: rc, start: offset, length: length}, nil
}

// resumingReader reads an object and, when reading fails with a transient
// error (a connection cut or a body cut short), opens the rest of it with
// a range request and carries on, up to Attempts-1 times per reader.
// Objects are immutable, and readers verify what they read, so the pieces
// belong together.
type resumingReader struct {
	r      *store
	ctx    context.Context
	key    string
	rc     io.ReadCloser
	start  int64 // offset of the first byte in the object
	length int64 // bytes asked for; -1: to the end
	read   int64 // bytes delivered so far
	resume int   // resumptions so far
	err    error // sticky: resuming failed
}

func (rr *resumingReader) Read(p []byte) (int, error) {
	if rr.err != nil {
		return 0, rr.err
	}
	for {
		n, err := rr.rc.Read(p)
		rr.read += int64(n)
		if err == nil || err == io.EOF || !retryable(rr.ctx, err) || rr.resume+1 >= rr.r.opts.Attempts {
			if err != nil && err != io.EOF && rr.resume > 0 {
				err = fmt.Errorf("%w (after resuming the read %d times)", err, rr.resume)
			}
			return n, err
		}
		if rerr := rr.reopen(err); rerr != nil {
			rr.err = rerr
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// reopen replaces the broken reader with one for the bytes not yet read.
func (rr *resumingReader) reopen(cause error) error {
	rr.resume++
	d := rr.r.delay(rr.resume + 1)
	if rr.r.opts.Logger != nil {
		rr.r.opts.Logger.LogAttrs(rr.ctx, slog.LevelWarn, "reading from storage failed, resuming",
			slog.String("key", rr.key), slog.String("store", rr.r.s.String()), slog.Int64("offset", rr.start+rr.read),
			slog.Int("attempt", rr.resume), slog.Duration("delay", d), slog.Any("err", cause))
	}
	_ = rr.rc.Close()
	rr.rc = io.NopCloser(nil) // closed; Read fails until replaced
	if err := rr.r.opts.Sleep(rr.ctx, d); err != nil {
		return fmt.Errorf("get %s: %w (while waiting to resume after: %v)", rr.key, err, cause)
	}
	length := int64(math.MaxInt64) - (rr.start + rr.read)
	if rr.length >= 0 {
		length = rr.length - rr.read
	}
	rc, err := rr.r.GetRange(rr.ctx, rr.key, rr.start+rr.read, length)
	if err != nil {
		return fmt.Errorf("get %s: resuming at byte %d after %v: %w", rr.key, rr.start+rr.read, cause, err)
	}
	// GetRange wraps rc in a resumingReader of its own: take its reader,
	// so that resumptions are counted once, here.
	rr.rc = rc.(*resumingReader).rc
	return nil
}

func (rr *resumingReader) Close() error { return rr.rc.Close() }

// Stat passes through the Stat method of the backend's reader (a local
// file), which callers use to size buffers.
func (rr *resumingReader) Stat() (fs.FileInfo, error) {
	if st, ok := rr.rc.(interface{ Stat() (fs.FileInfo, error) }); ok && rr.resume == 0 {
		return st.Stat()
	}
	return nil, errors.ErrUnsupported
}

func (r *store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	var oi storage.ObjectInfo
	err := r.do(ctx, "stat", key, nil, func() error {
		var err error
		oi, err = r.s.Stat(ctx, key)
		return err
	})
	return oi, err
}

func (r *store) Delete(ctx context.Context, key string) error {
	return r.do(ctx, "delete", key, nil, func() error {
		return r.s.Delete(ctx, key)
	})
}

// errFromFn carries fn's error through the backend's List untouched by the
// retry decision: fn's errors are never retried, even if marked transient.
type errFromFn struct{ err error }

func (e *errFromFn) Error() string { return e.err.Error() }
func (e *errFromFn) Unwrap() error { return e.err }

func (r *store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	var last string
	delivered := false
	err := r.do(ctx, "list", prefix, nil, func() error {
		return r.s.List(ctx, prefix, func(oi storage.ObjectInfo) error {
			if delivered && oi.Key <= last {
				return nil // already delivered by an earlier attempt
			}
			if err := fn(oi); err != nil {
				return &errFromFn{err}
			}
			last, delivered = oi.Key, true
			return nil
		})
	})
	var fe *errFromFn
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}

func (r *store) String() string { return r.s.String() }
