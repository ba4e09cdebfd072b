package waltest

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/walvault/walvault/storage"
)

// CountingStore records how many Gets run at once, for tests that check a
// bound on parallel reads. Each Get waits a little so that reads overlap.
type CountingStore struct {
	storage.Store
	mu        sync.Mutex
	now, peak int
}

// Get counts the call while it runs.
func (s *CountingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	s.now++
	s.peak = max(s.peak, s.now)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.now--
		s.mu.Unlock()
	}()
	time.Sleep(2 * time.Millisecond)
	return s.Store.Get(ctx, key)
}

// Peak is the most Gets that ran at once.
func (s *CountingStore) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
