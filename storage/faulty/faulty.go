package faulty

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/walvault/walvault/storage"
)

// Op is a set of Store operations.
type Op uint8

// The operations of storage.Store, as bits of an Op.
const (
	Put Op = 1 << iota
	Get
	GetRange
	Stat
	List
	Delete

	// Reads are the operations that return a body.
	Reads = Get | GetRange
	// AllOps is every operation; a Fault with Ops zero means it too.
	AllOps = Put | Get | GetRange | Stat | List | Delete
)

var opNames = []string{"Put", "Get", "GetRange", "Stat", "List", "Delete"}

func (o Op) String() string {
	var names []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Mode is how a firing Fault with an Err fails the call.
type Mode uint8

const (
	// Fail returns Err without calling the wrapped store.
	Fail Mode = iota
	// LoseAnswer calls the wrapped store and then returns Err whatever it
	// answered, as when a connection drops before the answer arrives: the
	// operation may well have happened. A body Get or GetRange opened is
	// closed; List delivers every object to fn first.
	LoseAnswer
	// Cut fails partway, as a connection that breaks mid-transfer: Put
	// reads Cut bytes of the body and returns Err, storing nothing; Get and
	// GetRange return a body that yields at most Cut bytes and then Err;
	// List delivers at most Cut objects to fn and then returns Err. Stat
	// and Delete fail as with Fail.
	Cut
)

// Call is one call to the Store, as hooks see it.
type Call struct {
	Op Op
	// Key is the object's key, or the prefix for List.
	Key string
	// N counts the calls the Fault matched so far, this one included.
	N int
}

// Fault is one injected behaviour. The zero value of each selecting field
// matches everything.
type Fault struct {
	// Ops are the operations it applies to; zero means AllOps.
	Ops Op
	// Key, when set, selects the calls whose key (List: prefix) it accepts.
	// It runs under the Store's lock: it must not call the Store.
	Key func(key string) bool

	// Skip lets the first Skip matching calls through.
	Skip int
	// Every, when positive, fires on every Every-th matching call after
	// Skip only.
	Every int
	// Times, when positive, is how many calls the fault fires on; then it
	// stays in place, inert. Zero means no limit.
	Times int

	// Err is the error a firing call fails with (wrapped with the
	// operation and key; errors.Is and storage.IsTransient see through).
	// Without Err the fault is a hook and the call goes through.
	Err error
	// Mode is how the call fails; see Mode.
	Mode Mode
	// Cut is where Mode Cut breaks off: bytes (Put, Get, GetRange) or
	// objects (List).
	Cut int64

	// Delay, when positive, holds a firing call this long (or until its
	// context ends) before it goes on, so that calls overlap.
	Delay time.Duration
	// Before, when set, runs when the fault fires, before the operation
	// (before Err takes effect). A non-nil error fails the call with that
	// error instead. It runs outside the Store's lock: it may block, and
	// call the Store.
	Before func(ctx context.Context, c Call) error
	// After, when set, runs when a call the fault fired on returns, with
	// the error the caller gets (nil on success; a body that Mode Cut
	// breaks off fails later, when read).
	After func(c Call, err error)
}

// Prefix selects the keys that start with p.
func Prefix(p string) func(string) bool {
	return func(key string) bool { return strings.HasPrefix(key, p) }
}

// Store is a storage.Store that injects faults into calls to the Store it
// wraps. Create it with Wrap.
type Store struct {
	inner storage.Store

	mu       sync.Mutex
	faults   []*fault
	calls    map[Op]int
	inFlight map[Op]int
	peak     map[Op]int
}

type fault struct {
	Fault
	matched, fired int
}

// Wrap returns s with no faults injected.
func Wrap(s storage.Store) *Store {
	return &Store{inner: s, calls: map[Op]int{}, inFlight: map[Op]int{}, peak: map[Op]int{}}
}

var _ storage.Store = (*Store)(nil)

// Unwrap returns the wrapped store, for checks that must not meet a fault.
func (s *Store) Unwrap() storage.Store { return s.inner }

// Inject adds f after the faults already in place and returns a function
// that removes it. Faults are consulted in the order they were injected;
// every one that matches a call counts it, and the first one that fires
// with an Err (or whose Before fails) decides the call: the faults after
// it do not see it.
func (s *Store) Inject(f Fault) (remove func()) {
	if f.Ops == 0 {
		f.Ops = AllOps
	}
	ff := &fault{Fault: f}
	s.mu.Lock()
	s.faults = append(s.faults, ff)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, g := range s.faults {
			if g == ff {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
				return
			}
		}
	}
}

// Reset removes every fault. Counts stay.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Calls is how many calls of ops the Store received, failed ones included.
func (s *Store) Calls(ops Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for op, c := range s.calls {
		if op&ops != 0 {
			n += c
		}
	}
	return n
}

// Peak is the most calls of one operation of ops that were in flight at
// once (a Get counts until Get returns, not until its body is closed).
func (s *Store) Peak(ops Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for op, p := range s.peak {
		if op&ops != 0 {
			n = max(n, p)
		}
	}
	return n
}

// fired is one fault firing on one call.
type fired struct {
	f    *fault
	call Call
}

// plan is what happens to one call.
type plan struct {
	s     *Store
	op    Op
	hooks []fired
	mode  Mode  // how the call fails, or passThrough
	cut   int64 // where Mode Cut breaks off
	err   error // the error it fails with
}

// passThrough is the mode of a call no fault fails.
const passThrough Mode = 255

// begin counts a call and decides, under the lock, which faults fire on it;
// then it runs their Before hooks.
func (s *Store) begin(ctx context.Context, op Op, key string) *plan {
	p := &plan{s: s, op: op, mode: passThrough}
	s.mu.Lock()
	s.calls[op]++
	s.inFlight[op]++
	s.peak[op] = max(s.peak[op], s.inFlight[op])
	for _, f := range s.faults {
		if f.Ops&op == 0 || (f.Key != nil && !f.Key(key)) {
			continue
		}
		f.matched++
		n := f.matched - f.Skip
		if n <= 0 || (f.Every > 0 && n%f.Every != 0) || (f.Times > 0 && f.fired >= f.Times) {
			continue
		}
		f.fired++
		p.hooks = append(p.hooks, fired{f: f, call: Call{Op: op, Key: key, N: f.matched}})
		if f.Err != nil {
			p.mode, p.cut = f.Mode, f.Cut
			p.err = fmt.Errorf("faulty %v %s: %w", op, key, f.Err)
			break
		}
	}
	s.mu.Unlock()
	for _, h := range p.hooks {
		if h.f.Delay > 0 {
			sleep(ctx, h.f.Delay)
		}
		if h.f.Before == nil {
			continue
		}
		if err := h.f.Before(ctx, h.call); err != nil {
			p.mode, p.err = Fail, err
			break
		}
	}
	return p
}

// sleep waits for d or until ctx ends; the operation then sees ctx's error.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// end reports the caller's error to the After hooks and returns it.
func (p *plan) end(err error) error {
	p.s.mu.Lock()
	p.s.inFlight[p.op]--
	p.s.mu.Unlock()
	for _, h := range p.hooks {
		if h.f.After != nil {
			h.f.After(h.call, err)
		}
	}
	return err
}

// Put stores body under key unless a fault decides otherwise.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, opts storage.PutOptions) error {
	p := s.begin(ctx, Put, key)
	switch p.mode {
	case passThrough:
		return p.end(s.inner.Put(ctx, key, body, opts))
	case LoseAnswer:
		_ = s.inner.Put(ctx, key, body, opts)
		return p.end(p.err)
	case Cut:
		_, _ = io.CopyN(io.Discard, body, p.cut)
		return p.end(p.err)
	default:
		return p.end(p.err)
	}
}

// Get opens the object unless a fault decides otherwise.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p := s.begin(ctx, Get, key)
	return p.read(func() (io.ReadCloser, error) { return s.inner.Get(ctx, key) })
}

// GetRange opens a range of the object unless a fault decides otherwise.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p := s.begin(ctx, GetRange, key)
	return p.read(func() (io.ReadCloser, error) { return s.inner.GetRange(ctx, key, offset, length) })
}

func (p *plan) read(open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	switch p.mode {
	case passThrough:
		rc, err := open()
		return rc, p.end(err)
	case LoseAnswer:
		if rc, err := open(); err == nil {
			rc.Close()
		}
		return nil, p.end(p.err)
	case Cut:
		rc, err := open()
		if err != nil {
			return nil, p.end(err)
		}
		return &cutReader{ReadCloser: rc, left: p.cut, err: p.err}, p.end(nil)
	default:
		return nil, p.end(p.err)
	}
}

// cutReader yields left bytes of its body and then fails with err.
type cutReader struct {
	io.ReadCloser
	left int64
	err  error
}

func (c *cutReader) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.ReadCloser.Read(b)
	c.left -= int64(n)
	return n, err
}

// Stat describes the object unless a fault decides otherwise.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	p := s.begin(ctx, Stat, key)
	switch p.mode {
	case passThrough:
		oi, err := s.inner.Stat(ctx, key)
		return oi, p.end(err)
	case LoseAnswer:
		_, _ = s.inner.Stat(ctx, key)
		return storage.ObjectInfo{}, p.end(p.err)
	default:
		return storage.ObjectInfo{}, p.end(p.err)
	}
}

// List lists the objects under prefix unless a fault decides otherwise.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	p := s.begin(ctx, List, prefix)
	switch p.mode {
	case passThrough:
		return p.end(s.inner.List(ctx, prefix, fn))
	case LoseAnswer:
		if err := s.inner.List(ctx, prefix, fn); err != nil {
			return p.end(err)
		}
		return p.end(p.err)
	case Cut:
		var n int64
		err := s.inner.List(ctx, prefix, func(oi storage.ObjectInfo) error {
			if n == p.cut {
				return p.err
			}
			n++
			return fn(oi)
		})
		if err == nil {
			err = p.err // fewer objects than Cut: fail at the end
		}
		return p.end(err)
	default:
		return p.end(p.err)
	}
}

// Delete removes the object unless a fault decides otherwise.
func (s *Store) Delete(ctx context.Context, key string) error {
	p := s.begin(ctx, Delete, key)
	switch p.mode {
	case passThrough:
		return p.end(s.inner.Delete(ctx, key))
	case LoseAnswer:
		_ = s.inner.Delete(ctx, key)
		return p.end(p.err)
	default:
		return p.end(p.err)
	}
}

// String describes the wrapped store.
func (s *Store) String() string { return s.inner.String() }
