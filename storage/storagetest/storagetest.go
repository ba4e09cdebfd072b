package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/walvault/walvault/storage"
)

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutReadsFromCurrentPosition", testPutFromPosition},
		{"Overwrite", testOverwrite},
		{"IfAbsentExisting", testIfAbsentExisting},
		{"IfAbsentNew", testIfAbsentNew},
		{"IfAbsentConcurrent", testIfAbsentConcurrent},
		{"GetRange", testGetRange},
		{"Stat", testStat},
		{"NotFound", testNotFound},
		{"List", testList},
		{"ListStopsOnError", testListStops},
		{"CancelledPut", testCancelledPut},
		{"InvalidKeys", testInvalidKeys},
		{"Delete", testDelete},
		{"KeyAndKeyPrefix", testKeyAndKeyPrefix},
		{"String", testString},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), storage.PutOptions{}); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b
}

func getRange(t *testing.T, s storage.Store, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.GetRange(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): read: %v", key, off, n, err)
	}
	return b
}

func list(t *testing.T, s storage.Store, prefix string) []storage.ObjectInfo {
	t.Helper()
	var out []storage.ObjectInfo
	err := s.List(t.Context(), prefix, func(oi storage.ObjectInfo) error {
		out = append(out, oi)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func keys(infos []storage.ObjectInfo) []string {
	ks := make([]string, 0, len(infos))
	for _, oi := range infos {
		ks = append(ks, oi.Key)
	}
	return ks
}

func wantNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !storage.IsNotExist(err) {
		t.Errorf("%s: got %v, want an IsNotExist error", what, err)
	}
	if storage.IsExist(err) || storage.IsTransient(err) {
		t.Errorf("%s: not-found error %v also claims exist/transient", what, err)
	}
}

func wantContent(t *testing.T, s storage.Store, key string, want []byte) {
	t.Helper()
	if got := get(t, s, key); !bytes.Equal(got, want) {
		t.Errorf("Get(%q): got %d bytes %s, want %d bytes %s", key, len(got), short(got), len(want), short(want))
	}
}

func short(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("%q...", b[:16])
	}
	return fmt.Sprintf("%q", b)
}

func testRoundTrip(t *testing.T, s storage.Store) {
	cases := []struct {
		name string
		key  string
		data []byte
	}{
		{"empty", "empty", []byte{}},
		{"one byte", "dir/one", []byte{0x42}},
		{"5MiB random", "wal/00000001/000000010000000000000003", randomBytes(1, 5<<20)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			put(t, s, c.key, c.data)
			wantContent(t, s, c.key, c.data)
			oi, err := s.Stat(t.Context(), c.key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if oi.Size != int64(len(c.data)) || oi.Key != c.key {
				t.Errorf("Stat = %+v, want key %q size %d", oi, c.key, len(c.data))
			}
			infos := list(t, s, c.key)
			if len(infos) != 1 || infos[0].Key != c.key || infos[0].Size != int64(len(c.data)) {
				t.Errorf("List(%q) = %+v, want the one object of size %d", c.key, infos, len(c.data))
			}
		})
	}
}

func testPutFromPosition(t *testing.T, s storage.Store) {
	data := []byte("0123456789")
	r := bytes.NewReader(data)
	if _, err := r.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "k", r, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	wantContent(t, s, "k", data[3:])
}

func testOverwrite(t *testing.T, s storage.Store) {
	put(t, s, "k", []byte("first, longer content"))
	put(t, s, "k", []byte("second"))
	wantContent(t, s, "k", []byte("second"))
}

func testIfAbsentExisting(t *testing.T, s storage.Store) {
	orig := randomBytes(2, 4096)
	put(t, s, "k", orig)
	err := s.Put(t.Context(), "k", bytes.NewReader([]byte("other")), storage.PutOptions{IfAbsent: true})
	if !storage.IsExist(err) {
		t.Fatalf("IfAbsent Put on an existing key: got %v, want IsExist", err)
	}
	if storage.IsNotExist(err) || storage.IsTransient(err) {
		t.Errorf("exist error %v also claims not-found/transient", err)
	}
	wantContent(t, s, "k", orig)
}

func testIfAbsentNew(t *testing.T, s storage.Store) {
	data := []byte("new content")
	if err := s.Put(t.Context(), "a/new", bytes.NewReader(data), storage.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent Put on a new key: %v", err)
	}
	wantContent(t, s, "a/new", data)
}

func testIfAbsentConcurrent(t *testing.T, s storage.Store) {
	const n = 8
	const key = "wal/00000001/000000010000000000000004"
	contents := make([][]byte, n)
	for i := range contents {
		contents[i] = randomBytes(uint64(100+i), 256<<10)
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Put(t.Context(), key, bytes.NewReader(contents[i]), storage.PutOptions{IfAbsent: true})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("puts %d and %d both succeeded", winner, i)
			}
			winner = i
		case !storage.IsExist(err):
			t.Errorf("put %d: got %v, want nil or IsExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no IfAbsent put succeeded")
	}
	wantContent(t, s, key, contents[winner])
}

func testGetRange(t *testing.T, s storage.Store) {
	data := randomBytes(3, 1000)
	put(t, s, "obj", data)
	put(t, s, "empty", nil)
	cases := []struct {
		name      string
		key       string
		off, n    int64
		wantStart int
		wantEnd   int
	}{
		{"head", "obj", 0, 10, 0, 10},
		{"middle", "obj", 100, 250, 100, 350},
		{"whole", "obj", 0, 1000, 0, 1000},
		{"last byte", "obj", 999, 1, 999, 1000},
		{"runs past end", "obj", 990, 100, 990, 1000},
		{"zero length", "obj", 10, 0, 10, 10},
		{"starts at end", "obj", 1000, 10, 1000, 1000},
		{"starts beyond end", "obj", 5000, 10, 1000, 1000},
		{"empty object", "empty", 0, 10, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := data[c.wantStart:c.wantEnd]
			if c.key == "empty" {
				want = nil
			}
			got := getRange(t, s, c.key, c.off, c.n)
			if !bytes.Equal(got, want) {
				t.Errorf("GetRange(%d, %d): got %d bytes, want %d", c.off, c.n, len(got), len(want))
			}
		})
	}
}

func testStat(t *testing.T, s storage.Store) {
	put(t, s, "a/b/c", randomBytes(4, 12345))
	oi, err := s.Stat(t.Context(), "a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	if oi.Key != "a/b/c" || oi.Size != 12345 {
		t.Errorf("Stat = %+v, want key a/b/c size 12345", oi)
	}
	if oi.ModTime.IsZero() {
		t.Errorf("Stat: zero ModTime")
	}
}

func testNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, "dir/x", []byte("x"))
	// "dir" is a key prefix, not an object; "dir/x/y" lies below an object.
	for _, key := range []string{"missing", "dir/missing", "dir", "dir/x/y", "other/dir/missing"} {
		t.Run(key, func(t *testing.T) {
			rc, err := s.Get(ctx, key)
			if err == nil {
				rc.Close()
			}
			wantNotExist(t, "Get", err)
			rc, err = s.GetRange(ctx, key, 0, 10)
			if err == nil {
				rc.Close()
			}
			wantNotExist(t, "GetRange", err)
			_, err = s.Stat(ctx, key)
			wantNotExist(t, "Stat", err)
			wantNotExist(t, "Delete", s.Delete(ctx, key))
		})
	}
	wantContent(t, s, "dir/x", []byte("x"))
}

func testList(t *testing.T, s storage.Store) {
	// Keys chosen so that a per-directory walk in name order gets the order
	// wrong: '.' (0x2e) < '/' (0x2f) < '0' (0x30), and "a/c.d" < "a/c/d".
	stored := []string{
		"ab", "a/b", "a.b", "a/c/d", "a/c.d", "a-", "a0", "b",
		"wal/000000010000000000000003", "wal/000000010000000000000002",
		"wal/000000020000000000000001", "wal/00000001.history",
	}
	for i, k := range stored {
		put(t, s, k, randomBytes(uint64(i), i))
	}
	sorted := slices.Clone(stored)
	slices.Sort(sorted)

	infos := list(t, s, "")
	if got := keys(infos); !slices.Equal(got, sorted) {
		t.Fatalf("List(\"\") = %q, want %q", got, sorted)
	}
	for _, oi := range infos {
		if want := int64(slices.Index(stored, oi.Key)); oi.Size != want {
			t.Errorf("List: %s has size %d, want %d", oi.Key, oi.Size, want)
		}
	}

	cases := []struct {
		prefix string
		want   []string
	}{
		{"a", []string{"a-", "a.b", "a/b", "a/c.d", "a/c/d", "a0", "ab"}},
		{"a/", []string{"a/b", "a/c.d", "a/c/d"}},
		{"a/c", []string{"a/c.d", "a/c/d"}},
		{"a/c/", []string{"a/c/d"}},
		{"a.", []string{"a.b"}},
		{"a/b", []string{"a/b"}},
		// Not a segment boundary: "wal/0000000100" is a prefix of
		// "wal/000000010000000000000003".
		{"wal/0000000100", []string{"wal/000000010000000000000002", "wal/000000010000000000000003"}},
		{"wal/00000001", []string{"wal/00000001.history", "wal/000000010000000000000002", "wal/000000010000000000000003"}},
		{"wal/000000010", []string{"wal/000000010000000000000002", "wal/000000010000000000000003"}},
		{"wal/", []string{"wal/00000001.history", "wal/000000010000000000000002", "wal/000000010000000000000003", "wal/000000020000000000000001"}},
		{"wal/000000010000000000000003", []string{"wal/000000010000000000000003"}},
		{"wal/000000010000000000000003/", nil},
		{"c", nil},
		{"zzz/", nil},
		{"../", nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("prefix=%q", c.prefix), func(t *testing.T) {
			if got := keys(list(t, s, c.prefix)); !slices.Equal(got, c.want) {
				t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
			}
		})
	}
}

func testListStops(t *testing.T, s storage.Store) {
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		put(t, s, k, []byte(k))
	}
	stop := errors.New("stop here")
	var seen []string
	err := s.List(t.Context(), "k", func(oi storage.ObjectInfo) error {
		seen = append(seen, oi.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the error returned by fn", err)
	}
	if !slices.Equal(seen, []string{"k1", "k2"}) {
		t.Errorf("List called fn for %q after fn failed", seen)
	}
}

// cancellingReader serves data; after cancelAt bytes it reports reaching
// the middle, waits until the context is cancelled and then fails, like a
// pipe whose producer stopped because of the cancellation.
type cancellingReader struct {
	ctx      context.Context
	data     []byte
	off      int64
	cancelAt int64
	middle   chan struct{} // closed when the reader first reaches cancelAt
	once     sync.Once
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.off >= r.cancelAt {
		r.once.Do(func() { close(r.middle) })
		<-r.ctx.Done()
		return 0, fmt.Errorf("producer stopped: %w", r.ctx.Err())
	}
	end := min(r.cancelAt, int64(len(r.data)), r.off+int64(len(p)))
	n := copy(p, r.data[r.off:end])
	r.off += int64(n)
	return n, nil
}

func (r *cancellingReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = int64(len(r.data)) + offset
	}
	if abs < 0 {
		return 0, errors.New("negative position")
	}
	r.off = abs
	return abs, nil
}

func testCancelledPut(t *testing.T, s storage.Store) {
	for _, ifAbsent := range []bool{false, true} {
		t.Run(fmt.Sprintf("IfAbsent=%v", ifAbsent), func(t *testing.T) {
			key := fmt.Sprintf("cancel/%v", ifAbsent)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			data := randomBytes(5, 3<<20)
			r := &cancellingReader{ctx: ctx, data: data, cancelAt: int64(len(data) / 2), middle: make(chan struct{})}
			done := make(chan error, 1)
			go func() { done <- s.Put(ctx, key, r, storage.PutOptions{IfAbsent: ifAbsent}) }()

			select {
			case <-r.middle:
			case err := <-done:
				t.Fatalf("Put returned %v before reading half its body", err)
			}
			// Half written: nothing may be visible yet.
			if got := keys(list(t, s, "")); len(got) != 0 {
				t.Errorf("List during Put = %q, want nothing", got)
			}
			_, err := s.Stat(t.Context(), key)
			wantNotExist(t, "Stat during Put", err)

			cancel()
			if err := <-done; err == nil {
				t.Fatal("cancelled Put returned nil")
			}
			_, err = s.Stat(t.Context(), key)
			wantNotExist(t, "Stat after cancelled Put", err)
			if got := keys(list(t, s, "")); len(got) != 0 {
				t.Errorf("List after cancelled Put = %q, want nothing", got)
			}
		})
	}
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Put(ctx, "k", bytes.NewReader([]byte("x")), storage.PutOptions{}); err == nil {
			t.Fatal("Put with a cancelled context returned nil")
		}
		_, err := s.Stat(t.Context(), "k")
		wantNotExist(t, "Stat", err)
	})
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, key := range []string{"", "../x", "/x", "a//b", "x/", "a/../b", "a/./b", ".", "..", "a\\b", "a\x00b"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s(%q) succeeded", op, key)
					return
				}
				if storage.IsNotExist(err) || storage.IsExist(err) || storage.IsTransient(err) {
					t.Errorf("%s(%q): %v must not be not-found, exist or transient", op, key, err)
				}
			}
			check("Put", s.Put(ctx, key, bytes.NewReader([]byte("x")), storage.PutOptions{}))
			check("Put IfAbsent", s.Put(ctx, key, bytes.NewReader([]byte("x")), storage.PutOptions{IfAbsent: true}))
			rc, err := s.Get(ctx, key)
			if err == nil {
				rc.Close()
			}
			check("Get", err)
			rc, err = s.GetRange(ctx, key, 0, 1)
			if err == nil {
				rc.Close()
			}
			check("GetRange", err)
			_, err = s.Stat(ctx, key)
			check("Stat", err)
			check("Delete", s.Delete(ctx, key))
		})
	}
	if got := keys(list(t, s, "")); len(got) != 0 {
		t.Errorf("List after invalid puts = %q, want nothing", got)
	}
}

func testDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, "a/k", []byte("data"))
	put(t, s, "a/keep", []byte("keep"))
	if err := s.Delete(ctx, "a/k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx, "a/k")
	wantNotExist(t, "Get after Delete", err)
	_, err = s.Stat(ctx, "a/k")
	wantNotExist(t, "Stat after Delete", err)
	wantNotExist(t, "second Delete", s.Delete(ctx, "a/k"))
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"a/keep"}) {
		t.Errorf("List after Delete = %q, want [a/keep]", got)
	}
	// The key can be stored again, also with IfAbsent.
	if err := s.Put(ctx, "a/k", bytes.NewReader([]byte("again")), storage.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent Put after Delete: %v", err)
	}
	wantContent(t, s, "a/k", []byte("again"))
}

// testKeyAndKeyPrefix stores "x/y" and "x/y/z". Object stores hold both; a
// file-system store cannot, and may refuse the second Put, but must do so
// with an error that is not mistaken for exist/not-found/transient and
// without harming the first object.
func testKeyAndKeyPrefix(t *testing.T, s storage.Store) {
	for _, order := range [][2]string{{"x/y", "x/y/z"}, {"p/q/r", "p/q"}} {
		first, second := order[0], order[1]
		put(t, s, first, []byte(first))
		for _, ifAbsent := range []bool{false, true} {
			// Other bytes the second time: an IfAbsent Put of the very
			// bytes stored may succeed (storage.PutOptions.IfAbsent).
			body := second
			if ifAbsent {
				body += " again"
			}
			err := s.Put(t.Context(), second, bytes.NewReader([]byte(body)), storage.PutOptions{IfAbsent: ifAbsent})
			if err == nil {
				wantContent(t, s, second, []byte(body))
				if ifAbsent {
					t.Errorf("IfAbsent Put(%q) succeeded over an existing object", second)
				}
				continue
			}
			if storage.IsNotExist(err) || storage.IsTransient(err) || (storage.IsExist(err) && !ifAbsent) {
				t.Errorf("Put(%q) with %q stored: %v is misclassified", second, first, err)
			}
			if storage.IsExist(err) && ifAbsent {
				if _, serr := s.Stat(t.Context(), second); serr != nil {
					t.Errorf("IfAbsent Put(%q) reported exist, but Stat says %v", second, serr)
				}
			}
			t.Logf("store refuses %q next to %q: %v", second, first, err)
		}
		wantContent(t, s, first, []byte(first))
	}
}

func testString(t *testing.T, s storage.Store) {
	if s.String() == "" {
		t.Error("String() is empty")
	}
}
