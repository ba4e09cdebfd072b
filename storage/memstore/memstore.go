package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/walvault/walvault/storage"
)

// Store is an in-memory storage.Store. The zero value is not usable; call
// New.
type Store struct {
	mu   sync.Mutex
	objs map[string]object
}

// object is one stored object. data is never modified after the Put that
// stored it (an overwrite replaces the object), so readers share it.
type object struct {
	data    []byte
	modTime time.Time
}

// New returns an empty store.
func New() *Store { return &Store{objs: make(map[string]object)} }

var _ storage.Store = (*Store)(nil)

func checkKey(op, key string) error {
	if !storage.ValidKey(key) {
		return fmt.Errorf("memstore %s: invalid key %q", op, key)
	}
	return nil
}

func notExist(op, key string) error {
	return fmt.Errorf("memstore %s %s: %w", op, key, storage.ErrNotExist)
}

// Put stores body from its current position to EOF under key.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, opts storage.PutOptions) error {
	if err := checkKey("put", key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore put %s: %w", key, err)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("memstore put %s: read body: %w", key, err)
	}
	// A Put whose context ended while the body was read stores nothing,
	// as a backend that had not yet acknowledged it would.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore put %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; ok && opts.IfAbsent {
		return fmt.Errorf("memstore put %s: %w", key, storage.ErrExist)
	}
	s.objs[key] = object{data: data, modTime: time.Now()}
	return nil
}

func (s *Store) lookup(ctx context.Context, op, key string) (object, error) {
	if err := checkKey(op, key); err != nil {
		return object{}, err
	}
	if err := ctx.Err(); err != nil {
		return object{}, fmt.Errorf("memstore %s %s: %w", op, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return object{}, notExist(op, key)
	}
	return o, nil
}

// Get opens the whole object.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(o.data)), nil
}

// GetRange opens length bytes from offset, cut short at the object's end.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("memstore get %s: invalid range offset %d length %d", key, offset, length)
	}
	o, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	size := int64(len(o.data))
	start := min(offset, size)
	end := min(start+min(length, size), size) // no overflow for huge lengths
	return io.NopCloser(bytes.NewReader(o.data[start:end])), nil
}

// Stat describes one object.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	o, err := s.lookup(ctx, "stat", key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	return storage.ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

// List calls fn for each object under prefix, in lexical key order.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore list %s: %w", prefix, err)
	}
	s.mu.Lock()
	var infos []storage.ObjectInfo
	for k, o := range s.objs {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.ObjectInfo{Key: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(infos, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, oi := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memstore list %s: %w", prefix, err)
		}
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey("delete", key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore delete %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; !ok {
		return notExist("delete", key)
	}
	delete(s.objs, key)
	return nil
}

// String describes the store for messages.
func (s *Store) String() string { return "mem://" }
