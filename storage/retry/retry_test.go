package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/local"
	"github.com/walvault/walvault/storage/retry"
	"github.com/walvault/walvault/storage/storagetest"
)

var errInjected = errors.New("injected fault")

// transient is the fault the tests inject unless they say otherwise.
var transient = storage.Transient(errInjected)

// failNext makes the next n calls of op fail transiently. A failing Put
// first reads 3 bytes of the body, as a connection that broke midway would.
func failNext(f *faulty.Store, op faulty.Op, n int) {
	fault := faulty.Fault{Ops: op, Times: n, Err: transient}
	if op == faulty.Put {
		fault.Mode, fault.Cut = faulty.Cut, 3
	}
	f.Inject(fault)
}

// sleeps records requested delays and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newLocal(t *testing.T) storage.Store {
	t.Helper()
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setup(t *testing.T, attempts int) (*faulty.Store, storage.Store, *sleeps) {
	f := faulty.Wrap(newLocal(t))
	sl := &sleeps{}
	return f, retry.Wrap(f, retry.Options{Attempts: attempts, Sleep: sl.sleep}), sl
}

func TestConformanceWithFaults(t *testing.T) {
	// Every third call fails transiently, partway (a Put after reading a
	// byte, a body after a byte, a listing after one object): the wrapped
	// store must still keep every guarantee of the contract.
	storagetest.Run(t, func(t *testing.T) storage.Store {
		f := faulty.Wrap(newLocal(t))
		f.Inject(faulty.Fault{Every: 3, Mode: faulty.Cut, Cut: 1, Err: transient})
		sl := &sleeps{}
		return retry.Wrap(f, retry.Options{Sleep: sl.sleep})
	})
}

func TestRetriesUntilSuccess(t *testing.T) {
	ctx := t.Context()
	data := []byte("0123456789abcdef")
	methods := []struct {
		op   faulty.Op
		call func(s storage.Store) error
	}{
		{faulty.Put, func(s storage.Store) error {
			r := bytes.NewReader(data)
			_, _ = r.Seek(4, io.SeekStart) // Put sends from the current position
			return s.Put(ctx, "k", r, storage.PutOptions{})
		}},
		{faulty.Get, func(s storage.Store) error {
			rc, err := s.Get(ctx, "k")
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil && !bytes.Equal(b, data[4:]) {
				err = fmt.Errorf("Get returned %q", b)
			}
			return err
		}},
		{faulty.GetRange, func(s storage.Store) error {
			rc, err := s.GetRange(ctx, "k", 1, 2)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil && string(b) != "56" {
				err = fmt.Errorf("GetRange returned %q", b)
			}
			return err
		}},
		{faulty.Stat, func(s storage.Store) error {
			oi, err := s.Stat(ctx, "k")
			if err == nil && oi.Size != int64(len(data)-4) {
				err = fmt.Errorf("Stat size %d", oi.Size)
			}
			return err
		}},
		{faulty.List, func(s storage.Store) error {
			return s.List(ctx, "", func(storage.ObjectInfo) error { return nil })
		}},
		{faulty.Delete, func(s storage.Store) error { return s.Delete(ctx, "k") }},
	}
	f, s, sl := setup(t, 3)
	for _, m := range methods {
		t.Run(m.op.String(), func(t *testing.T) {
			failNext(f, m.op, 2)
			before := f.Calls(m.op)
			if err := m.call(s); err != nil {
				t.Fatalf("%v: %v", m.op, err)
			}
			if got := f.Calls(m.op) - before; got != 3 {
				t.Errorf("%v: %d calls, want 3", m.op, got)
			}
		})
	}
	if len(sl.d) != 2*len(methods) {
		t.Errorf("slept %d times, want %d", len(sl.d), 2*len(methods))
	}
}

func TestGivesUp(t *testing.T) {
	f, s, _ := setup(t, 4)
	failNext(f, faulty.Stat, 100)
	_, err := s.Stat(t.Context(), "k")
	if got := f.Calls(faulty.Stat); got != 4 {
		t.Errorf("%d calls, want 4", got)
	}
	if !storage.IsTransient(err) || !errors.Is(err, errInjected) {
		t.Errorf("error %v does not wrap the last transient error", err)
	}
	if err == nil || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("error %q does not say after 4 attempts", err)
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	permanent := errors.New("permission denied")
	cases := []struct {
		name string
		err  error
	}{
		{"permanent", permanent},
		{"not exist", fmt.Errorf("x: %w", storage.ErrNotExist)},
		{"exist", storage.ErrExist},
		// Marked transient by mistake, but still not to be retried.
		{"transient not exist", storage.Transient(storage.ErrNotExist)},
		{"transient canceled", storage.Transient(context.Canceled)},
		{"transient deadline", storage.Transient(fmt.Errorf("op: %w", context.DeadlineExceeded))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, s, sl := setup(t, 5)
			f.Inject(faulty.Fault{Ops: faulty.Get, Err: c.err})
			_, err := s.Get(t.Context(), "k")
			if !errors.Is(err, c.err) {
				t.Errorf("got %v, want %v", err, c.err)
			}
			if n := f.Calls(faulty.Get); n != 1 || len(sl.d) != 0 {
				t.Errorf("%d calls and %d sleeps, want 1 and 0", n, len(sl.d))
			}
		})
	}
	t.Run("real not exist", func(t *testing.T) {
		f, s, _ := setup(t, 5)
		_, err := s.Stat(t.Context(), "missing")
		if !storage.IsNotExist(err) || f.Calls(faulty.Stat) != 1 {
			t.Errorf("got %v after %d calls", err, f.Calls(faulty.Stat))
		}
	})
}

func TestContextStopsRetries(t *testing.T) {
	t.Run("cancelled while waiting", func(t *testing.T) {
		f := faulty.Wrap(newLocal(t))
		failNext(f, faulty.Stat, 100)
		ctx, cancel := context.WithCancel(t.Context())
		s := retry.Wrap(f, retry.Options{Sleep: func(ctx context.Context, d time.Duration) error {
			cancel()
			return ctx.Err()
		}})
		_, err := s.Stat(ctx, "k")
		if !errors.Is(err, context.Canceled) || storage.IsTransient(err) {
			t.Errorf("got %v, want a non-transient context.Canceled", err)
		}
		if n := f.Calls(faulty.Stat); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})
	t.Run("real sleep honours ctx", func(t *testing.T) {
		f := faulty.Wrap(newLocal(t))
		failNext(f, faulty.Stat, 100)
		s := retry.Wrap(f, retry.Options{Base: time.Hour, Max: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := s.Stat(ctx, "k")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestBackoff(t *testing.T) {
	f := faulty.Wrap(newLocal(t))
	failNext(f, faulty.Delete, 100)
	sl := &sleeps{}
	s := retry.Wrap(f, retry.Options{Attempts: 7, Base: 100 * time.Millisecond, Max: time.Second, Sleep: sl.sleep})
	_ = s.Delete(t.Context(), "k")
	ceilings := []time.Duration{100, 200, 400, 800, 1000, 1000}
	if len(sl.d) != len(ceilings) {
		t.Fatalf("slept %v, want %d sleeps", sl.d, len(ceilings))
	}
	for i, d := range sl.d {
		hi := ceilings[i] * time.Millisecond
		if d < hi/2 || d > hi {
			t.Errorf("sleep %d = %v, want within [%v, %v]", i, d, hi/2, hi)
		}
	}
}

func TestPutRewindsBody(t *testing.T) {
	f, s, _ := setup(t, 5)
	failNext(f, faulty.Put, 3) // each failure consumes 3 bytes of the body
	data := []byte("header|payload that must arrive whole")
	r := bytes.NewReader(data)
	_, _ = r.Seek(7, io.SeekStart)
	if err := s.Put(t.Context(), "k", r, storage.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, data[7:]) {
		t.Errorf("stored %q, want %q", got, data[7:])
	}
}

type noSeek struct{ io.Reader }

func (noSeek) Seek(int64, int) (int64, error) { return 0, errors.New("cannot seek") }

func TestPutUnseekableBody(t *testing.T) {
	f, s, _ := setup(t, 5)
	failNext(f, faulty.Put, 1)
	err := s.Put(t.Context(), "k", noSeek{strings.NewReader("x")}, storage.PutOptions{})
	if err == nil || storage.IsTransient(err) {
		t.Errorf("got %v, want a permanent error", err)
	}
	if f.Calls(faulty.Put) != 0 {
		t.Errorf("Put was attempted %d times without a known start position", f.Calls(faulty.Put))
	}
}

func TestListResumes(t *testing.T) {
	f, s, _ := setup(t, 5)
	want := []string{"a", "b", "c", "d", "e"}
	for _, k := range want {
		if err := s.Put(t.Context(), k, strings.NewReader(k), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The first attempts deliver a, b, c and then fail.
	f.Inject(faulty.Fault{Ops: faulty.List, Times: 2, Mode: faulty.Cut, Cut: 3, Err: transient})
	var got []string
	err := s.List(t.Context(), "", func(oi storage.ObjectInfo) error {
		got = append(got, oi.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("fn saw %q, want %q", got, want)
	}
}

func TestListFnErrorIsNotRetried(t *testing.T) {
	f, s, _ := setup(t, 5)
	if err := s.Put(t.Context(), "a", strings.NewReader("a"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	fnErr := storage.Transient(errors.New("consumer failed"))
	err := s.List(t.Context(), "", func(storage.ObjectInfo) error { return fnErr })
	if err != fnErr { //nolint:errorlint // fn's error must come back as it is
		t.Errorf("got %v, want fn's error unchanged", err)
	}
	if n := f.Calls(faulty.List); n != 1 {
		t.Errorf("%d List calls, want 1", n)
	}
}

func TestLogsRetries(t *testing.T) {
	var buf bytes.Buffer
	f := faulty.Wrap(newLocal(t))
	failNext(f, faulty.Stat, 2)
	sl := &sleeps{}
	s := retry.Wrap(f, retry.Options{Sleep: sl.sleep, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	_, _ = s.Stat(t.Context(), "some/key")
	if n := strings.Count(buf.String(), "retrying"); n != 2 {
		t.Errorf("%d log records, want 2:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "key=some/key") {
		t.Errorf("log lacks the key:\n%s", buf.String())
	}
}

var errCut = errors.New("connection reset in the middle of the body")

// TestReadResumesAfterCut: a body cut in the middle is resumed where it
// broke, for Get and GetRange; when the cuts outlast the attempts, Read
// returns the error (never a short read ending in EOF).
func TestReadResumesAfterCut(t *testing.T) {
	ctx := t.Context()
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i*7 + i/256)
	}
	base := newLocal(t)
	if err := base.Put(ctx, "obj", bytes.NewReader(data), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		breaks    int
		open      func(s storage.Store) (io.ReadCloser, error)
		want      []byte
		wantError bool
	}{
		{"Get cut 3 times", 3, func(s storage.Store) (io.ReadCloser, error) { return s.Get(ctx, "obj") }, data, false},
		{"GetRange cut 2 times", 2, func(s storage.Store) (io.ReadCloser, error) { return s.GetRange(ctx, "obj", 1000, 50_000) },
			data[1000:51_000], false},
		{"Get cut more often than attempts", 10, func(s storage.Store) (io.ReadCloser, error) { return s.Get(ctx, "obj") }, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The first breaks opens (Get or GetRange) serve bodies that
			// break off after 12,345 bytes.
			cs := faulty.Wrap(base)
			cs.Inject(faulty.Fault{Ops: faulty.Reads, Times: tc.breaks, Mode: faulty.Cut, Cut: 12_345, Err: storage.Transient(errCut)})
			sl := &sleeps{}
			s := retry.Wrap(cs, retry.Options{Attempts: 5, Sleep: sl.sleep})
			rc, err := tc.open(s)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if tc.wantError {
				if err == nil || !errors.Is(err, errCut) || !storage.IsTransient(err) {
					t.Fatalf("read %d bytes, err %v; want the transient cut error", len(got), err)
				}
				if _, again := rc.Read(make([]byte, 10)); again == nil {
					t.Errorf("Read after a failed resume returned no error")
				}
				if cs.Calls(faulty.Reads) != 5 {
					t.Errorf("%d opens, want 5 (the attempts)", cs.Calls(faulty.Reads))
				}
				return
			}
			if err != nil {
				t.Fatalf("read after %d cuts: %v", tc.breaks, err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d, or the bytes differ", len(got), len(tc.want))
			}
			if cs.Calls(faulty.Reads) != tc.breaks+1 || len(sl.d) != tc.breaks {
				t.Errorf("%d opens and %d waits, want %d and %d", cs.Calls(faulty.Reads), len(sl.d), tc.breaks+1, tc.breaks)
			}
		})
	}
}
