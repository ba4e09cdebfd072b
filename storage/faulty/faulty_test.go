package faulty_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/memstore"
	"github.com/walvault/walvault/storage/storagetest"
)

var errBoom = errors.New("boom")

func TestConformance(t *testing.T) {
	t.Run("no faults", func(t *testing.T) {
		storagetest.Run(t, func(*testing.T) storage.Store { return faulty.Wrap(memstore.New()) })
	})
	// Hooks that let every call through change nothing either.
	t.Run("hooks", func(t *testing.T) {
		storagetest.Run(t, func(*testing.T) storage.Store {
			s := faulty.Wrap(memstore.New())
			s.Inject(faulty.Fault{
				Before: func(context.Context, faulty.Call) error { return nil },
				After:  func(faulty.Call, error) {},
			})
			return s
		})
	})
}

// fixture is a faulty store over a memstore holding "a/1" = "0123456789",
// "a/2" and "b/1".
func fixture(t *testing.T) (*faulty.Store, *memstore.Store) {
	t.Helper()
	mem := memstore.New()
	for _, k := range []string{"a/1", "a/2", "b/1"} {
		data := k
		if k == "a/1" {
			data = "0123456789"
		}
		if err := mem.Put(t.Context(), k, strings.NewReader(data), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return faulty.Wrap(mem), mem
}

// call runs op on s for key (List: prefix) and returns its error, reading
// a body to the end; got is the body read or the keys listed.
func call(ctx context.Context, s storage.Store, op faulty.Op, key string) (got string, err error) {
	read := func(rc io.ReadCloser, err error) (string, error) {
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	switch op {
	case faulty.Put:
		return "", s.Put(ctx, key, strings.NewReader("new"), storage.PutOptions{})
	case faulty.Get:
		return read(s.Get(ctx, key))
	case faulty.GetRange:
		return read(s.GetRange(ctx, key, 2, 5))
	case faulty.Stat:
		_, err := s.Stat(ctx, key)
		return "", err
	case faulty.List:
		var keys []string
		err := s.List(ctx, key, func(oi storage.ObjectInfo) error {
			keys = append(keys, oi.Key)
			return nil
		})
		return strings.Join(keys, ","), err
	case faulty.Delete:
		return "", s.Delete(ctx, key)
	}
	panic("unknown op")
}

var allOps = []faulty.Op{faulty.Put, faulty.Get, faulty.GetRange, faulty.Stat, faulty.List, faulty.Delete}

func content(t *testing.T, mem *memstore.Store, key string) string {
	t.Helper()
	rc, err := mem.Get(t.Context(), key)
	if storage.IsNotExist(err) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFail: a Fail fault returns its error, wrapped, and leaves the store
// untouched; calls it does not select go through.
func TestFail(t *testing.T) {
	for _, op := range allOps {
		t.Run(op.String(), func(t *testing.T) {
			s, mem := fixture(t)
			s.Inject(faulty.Fault{Ops: op, Key: faulty.Prefix("a/"), Err: storage.Transient(errBoom)})
			_, err := call(t.Context(), s, op, "a/1")
			if !errors.Is(err, errBoom) || !storage.IsTransient(err) {
				t.Fatalf("%v a/1: %v, want the transient injected error", op, err)
			}
			if !strings.Contains(err.Error(), "a/1") {
				t.Errorf("error %q does not name the key", err)
			}
			if got := content(t, mem, "a/1"); got != "0123456789" {
				t.Errorf("a/1 changed to %q", got)
			}
			// Other keys and other operations are not affected.
			if _, err := call(t.Context(), s, op, "b/1"); err != nil {
				t.Errorf("%v b/1: %v", op, err)
			}
			other := faulty.Stat
			if op == faulty.Stat {
				other = faulty.Get
			}
			if _, err := call(t.Context(), s, other, "a/2"); err != nil {
				t.Errorf("%v a/2: %v", other, err)
			}
		})
	}
}

func TestSelection(t *testing.T) {
	cases := []struct {
		name  string
		fault faulty.Fault
		want  string // outcome of calls 1..8: x failed, . went through
	}{
		{"always", faulty.Fault{}, "xxxxxxxx"},
		{"times", faulty.Fault{Times: 2}, "xx......"},
		{"skip", faulty.Fault{Skip: 3}, "...xxxxx"},
		{"skip and times", faulty.Fault{Skip: 3, Times: 2}, "...xx..."},
		{"every", faulty.Fault{Every: 3}, "..x..x.."},
		{"every after skip, times", faulty.Fault{Skip: 1, Every: 2, Times: 2}, "..x.x..."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := fixture(t)
			f := tc.fault
			f.Ops, f.Err = faulty.Stat, errBoom
			s.Inject(f)
			var got []byte
			for range 8 {
				if _, err := s.Stat(t.Context(), "a/1"); err != nil {
					got = append(got, 'x')
				} else {
					got = append(got, '.')
				}
			}
			if string(got) != tc.want {
				t.Errorf("outcomes %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLoseAnswer: the operation happens, the caller gets the error.
func TestLoseAnswer(t *testing.T) {
	cases := []struct {
		op      faulty.Op
		key     string
		wantGot string
		after   string // content of key afterwards
	}{
		{faulty.Put, "a/1", "", "new"},
		{faulty.Put, "c/1", "", "new"},
		{faulty.Delete, "a/1", "", "<none>"},
		{faulty.Get, "a/1", "", "0123456789"},
		{faulty.Stat, "a/1", "", "0123456789"},
		{faulty.List, "a/", "a/1,a/2", ""},
	}
	for _, tc := range cases {
		t.Run(tc.op.String()+" "+tc.key, func(t *testing.T) {
			s, mem := fixture(t)
			s.Inject(faulty.Fault{Ops: tc.op, Mode: faulty.LoseAnswer, Err: errBoom})
			got, err := call(t.Context(), s, tc.op, tc.key)
			if !errors.Is(err, errBoom) {
				t.Fatalf("err = %v, want the injected error", err)
			}
			if got != tc.wantGot {
				t.Errorf("delivered %q, want %q", got, tc.wantGot)
			}
			if tc.op == faulty.List {
				return
			}
			if got := content(t, mem, tc.key); got != tc.after {
				t.Errorf("%s holds %q, want %q", tc.key, got, tc.after)
			}
		})
	}
}

// TestCut: transfers break off after Cut bytes or objects.
func TestCut(t *testing.T) {
	t.Run("Put", func(t *testing.T) {
		s, mem := fixture(t)
		s.Inject(faulty.Fault{Ops: faulty.Put, Mode: faulty.Cut, Cut: 3, Err: errBoom})
		body := strings.NewReader("0123456789")
		if err := s.Put(t.Context(), "c/1", body, storage.PutOptions{}); !errors.Is(err, errBoom) {
			t.Fatalf("Put: %v", err)
		}
		if body.Len() != 7 {
			t.Errorf("Put read %d bytes of the body, want 3", 10-body.Len())
		}
		if got := content(t, mem, "c/1"); got != "<none>" {
			t.Errorf("a cut Put stored %q", got)
		}
	})
	for _, tc := range []struct {
		op   faulty.Op
		cut  int64
		want string
	}{
		{faulty.Get, 4, "0123"},
		{faulty.GetRange, 2, "23"},
		{faulty.Get, 0, ""},
		{faulty.List, 1, "a/1"},
		{faulty.List, 5, "a/1,a/2"}, // fewer objects: fails at the end
	} {
		t.Run(tc.op.String(), func(t *testing.T) {
			s, _ := fixture(t)
			s.Inject(faulty.Fault{Ops: tc.op, Mode: faulty.Cut, Cut: tc.cut, Err: errBoom})
			key := "a/1"
			if tc.op == faulty.List {
				key = "a/"
			}
			got, err := call(t.Context(), s, tc.op, key)
			if !errors.Is(err, errBoom) || got != tc.want {
				t.Errorf("got %q, %v; want %q and the injected error", got, err, tc.want)
			}
		})
	}
	t.Run("body shorter than the cut", func(t *testing.T) {
		s, _ := fixture(t)
		s.Inject(faulty.Fault{Ops: faulty.Get, Mode: faulty.Cut, Cut: 100, Err: errBoom})
		if got, err := call(t.Context(), s, faulty.Get, "a/1"); err != nil || got != "0123456789" {
			t.Errorf("got %q, %v; want the whole body", got, err)
		}
	})
}

// TestHooks: Before runs before the operation and can fail it; After sees
// what the caller gets; both get the call.
func TestHooks(t *testing.T) {
	s, mem := fixture(t)
	var mu sync.Mutex
	var log []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, s)
	}
	errRefused := errors.New("refused by the hook")
	s.Inject(faulty.Fault{Ops: faulty.Put, Key: faulty.Prefix("a/"),
		Before: func(ctx context.Context, c faulty.Call) error {
			note("before " + c.Op.String() + " " + c.Key + " " + string(rune('0'+c.N)))
			if c.Key == "a/3" {
				return errRefused
			}
			return nil
		},
		After: func(c faulty.Call, err error) {
			note("after " + c.Key + " " + errString(err))
		},
	})
	ctx := t.Context()
	if err := s.Put(ctx, "a/1", strings.NewReader("x"), storage.PutOptions{IfAbsent: true}); !storage.IsExist(err) {
		t.Fatalf("Put a/1: %v", err)
	}
	if err := s.Put(ctx, "a/3", strings.NewReader("x"), storage.PutOptions{}); err != errRefused { //nolint:errorlint // the hook's error as it is
		t.Fatalf("Put a/3: %v, want the hook's error", err)
	}
	if err := s.Put(ctx, "b/2", strings.NewReader("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"before Put a/1 1", "after a/1 exist",
		"before Put a/3 2", "after a/3 refused by the hook",
	}
	if !slices.Equal(log, want) {
		t.Errorf("hooks saw\n%q\nwant\n%q", log, want)
	}
	if got := content(t, mem, "a/3"); got != "<none>" {
		t.Errorf("a Put its hook refused stored %q", got)
	}
}

func errString(err error) string {
	switch {
	case err == nil:
		return "ok"
	case storage.IsExist(err):
		return "exist"
	default:
		return err.Error()
	}
}

// TestOrder: the first fault that fails a call decides it; the ones after
// it neither count nor fire.
func TestOrder(t *testing.T) {
	s, _ := fixture(t)
	errFirst, errSecond := errors.New("first"), errors.New("second")
	var seen []int
	s.Inject(faulty.Fault{Ops: faulty.Stat, After: func(c faulty.Call, err error) { seen = append(seen, c.N) }})
	s.Inject(faulty.Fault{Ops: faulty.Stat, Times: 1, Err: errFirst})
	s.Inject(faulty.Fault{Ops: faulty.Stat, Times: 1, Err: errSecond})
	for _, want := range []error{errFirst, errSecond, nil} {
		if _, err := s.Stat(t.Context(), "a/1"); !errors.Is(err, want) {
			t.Errorf("Stat: %v, want %v", err, want)
		}
	}
	if !slices.Equal(seen, []int{1, 2, 3}) {
		t.Errorf("the hook fault saw calls %v, want 1 2 3", seen)
	}
}

func TestRemoveAndReset(t *testing.T) {
	s, _ := fixture(t)
	remove := s.Inject(faulty.Fault{Ops: faulty.Get, Err: errBoom})
	s.Inject(faulty.Fault{Ops: faulty.Stat, Err: errBoom})
	if _, err := call(t.Context(), s, faulty.Get, "a/1"); err == nil {
		t.Fatal("Get went through the fault")
	}
	remove()
	remove() // twice is harmless
	if _, err := call(t.Context(), s, faulty.Get, "a/1"); err != nil {
		t.Fatalf("Get after remove: %v", err)
	}
	if _, err := call(t.Context(), s, faulty.Stat, "a/1"); err == nil {
		t.Fatal("removing one fault removed the other")
	}
	s.Reset()
	if _, err := call(t.Context(), s, faulty.Stat, "a/1"); err != nil {
		t.Fatalf("Stat after Reset: %v", err)
	}
}

func TestCallsAndPeak(t *testing.T) {
	s, _ := fixture(t)
	s.Inject(faulty.Fault{Ops: faulty.Stat, Times: 1, Err: errBoom})
	release := make(chan struct{})
	arrived := make(chan struct{}, 3)
	s.Inject(faulty.Fault{Ops: faulty.Get, Before: func(ctx context.Context, c faulty.Call) error {
		arrived <- struct{}{}
		<-release
		return nil
	}})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _, _ = call(context.Background(), s, faulty.Get, "a/1") })
	}
	for range 3 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("Gets did not arrive")
		}
	}
	close(release)
	wg.Wait()
	for range 2 {
		_, _ = call(t.Context(), s, faulty.Stat, "a/1")
	}
	_, _ = call(t.Context(), s, faulty.Get, "missing")
	if got := s.Calls(faulty.Get); got != 4 {
		t.Errorf("Calls(Get) = %d, want 4", got)
	}
	if got := s.Calls(faulty.Stat); got != 2 {
		t.Errorf("Calls(Stat) = %d (failed calls count), want 2", got)
	}
	if got := s.Calls(faulty.Get | faulty.Stat); got != 6 {
		t.Errorf("Calls(Get|Stat) = %d, want 6", got)
	}
	if got := s.Peak(faulty.Get); got != 3 {
		t.Errorf("Peak(Get) = %d, want 3", got)
	}
	if got := s.Peak(faulty.Stat); got != 1 {
		t.Errorf("Peak(Stat) = %d, want 1", got)
	}
}

func TestDelay(t *testing.T) {
	s, _ := fixture(t)
	s.Inject(faulty.Fault{Ops: faulty.Stat, Delay: 50 * time.Millisecond})
	start := time.Now()
	if _, err := s.Stat(t.Context(), "a/1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Stat took %v, want at least the delay", d)
	}
	// A call whose context ends is not held for the whole delay.
	s.Inject(faulty.Fault{Ops: faulty.Get, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, "a/1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get with a deadline during the delay: %v", err)
	}
}

func TestOpString(t *testing.T) {
	if got := (faulty.Put | faulty.List).String(); got != "Put|List" {
		t.Errorf("String = %q", got)
	}
	if got := faulty.Op(0).String(); got != "none" {
		t.Errorf("String = %q", got)
	}
}

func TestUnwrap(t *testing.T) {
	s, mem := fixture(t)
	if s.Unwrap() != storage.Store(mem) {
		t.Error("Unwrap is not the wrapped store")
	}
	if s.String() != mem.String() {
		t.Error("String differs from the wrapped store's")
	}
}
