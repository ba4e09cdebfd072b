package workpool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestEach(t *testing.T) {
	var sum, inFlight, peak atomic.Int64
	items := make([]int64, 100)
	for i := range items {
		items[i] = int64(i)
	}
	err := Each(context.Background(), items, 3, func(n int64) error {
		cur := inFlight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		sum.Add(n)
		inFlight.Add(-1)
		return nil
	})
	if err != nil || sum.Load() != 4950 || peak.Load() > 3 {
		t.Errorf("err %v, sum %d, peak %d", err, sum.Load(), peak.Load())
	}

	// One worker, so the count is exact: the producer may already wait
	// to hand item 6 over when item 5 fails (the worker takes it after
	// recording the error), and hands out nothing after that. With more
	// workers, how many items others finish before the failing one
	// records its error depends on the scheduler (13 calls once, under
	// load, against a bound of 10).
	boom := errors.New("boom")
	var calls atomic.Int64
	err = Each(context.Background(), items, 1, func(n int64) error {
		calls.Add(1)
		if n == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() > 7 {
		t.Errorf("err %v after %d calls; want boom, and no item handed out after item 6", err, calls.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Each(ctx, items, 2, func(int64) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
