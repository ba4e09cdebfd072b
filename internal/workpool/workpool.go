// Package workpool runs a function over a list with bounded parallelism.
package workpool

import (
	"context"
	"sync"
)

// Each calls fn for every item, at most workers (at least 1) at a time. It
// stops handing out items after the first error or when ctx is done, waits
// for the calls in flight, and returns the first error, or ctx's.
func Each[T any](ctx context.Context, items []T, workers int, fn func(T) error) error {
	workers = max(workers, 1)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan T)
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	for range workers {
		wg.Go(func() {
			for it := range next {
				if err := fn(it); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, it := range items {
		if failed() || ctx.Err() != nil {
			break
		}
		next <- it
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
