package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/walvault/walvault/storage"
)

// Objects sealed and opened from many goroutines at once, with buffers
// recycled between them, must each come back exactly: a buffer handed out
// twice would mix their contents.
func TestPooledBuffersDoNotMixObjects(t *testing.T) {
	for _, enc := range []string{EncryptionAge, EncryptionNone} {
		t.Run(enc, func(t *testing.T) {
			r, _, _ := newTestRepo(t, enc)
			ctx := context.Background()
			const n = 24
			plains := make([][]byte, n)
			for i := range plains {
				rnd := rand.New(rand.NewPCG(uint64(i), 1))
				// Sizes from one frame to several, part random (stores
				// large) and part repeated (compresses well).
				p := make([]byte, (i%5+1)*700<<10+i)
				for j := range p[:len(p)/3] {
					p[j] = byte(rnd.Uint32())
				}
				for j := len(p) / 3; j < len(p); j++ {
					p[j] = byte(i)
				}
				plains[i] = p
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for round := range 2 {
				for i := range plains {
					wg.Add(1)
					go func() {
						defer wg.Done()
						key := fmt.Sprintf("k/%d-%d", round, i)
						if _, err := r.Put(ctx, key, plains[i], storage.PutOptions{}); err != nil {
							errs <- err
							return
						}
						got, _, err := r.GetInto(ctx, key, 0, make([]byte, 0, i*1000))
						if err != nil {
							errs <- fmt.Errorf("%s: %w", key, err)
							return
						}
						if !bytes.Equal(got, plains[i]) {
							errs <- fmt.Errorf("%s: read back different content", key)
						}
					}()
				}
				wg.Wait()
			}
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestReleasableReader(t *testing.T) {
	rr := newReleasableReader([]byte("hello"))
	b := make([]byte, 2)
	if n, err := rr.Read(b); n != 2 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if off, err := rr.Seek(0, io.SeekStart); off != 0 || err != nil {
		t.Fatalf("Seek = %d, %v", off, err)
	}
	rr.release()
	if _, err := rr.Read(b); !errors.Is(err, errReleased) {
		t.Fatalf("Read after release: %v, want errReleased", err)
	}
	if _, err := rr.Seek(0, io.SeekStart); !errors.Is(err, errReleased) {
		t.Fatalf("Seek after release: %v, want errReleased", err)
	}
}

func TestBufPool(t *testing.T) {
	p := newBufPool(1)
	b := p.get(10)
	if len(b) != 0 || cap(b) < 10 {
		t.Fatalf("get(10): len %d cap %d", len(b), cap(b))
	}
	b = append(b, "0123456789"...)
	p.put(b)
	p.put(make([]byte, 5)) // pool full: dropped
	if c := p.get(4); cap(c) != cap(b) || len(c) != 0 {
		t.Fatalf("get(4) after put: len %d cap %d, want the recycled buffer", len(c), cap(c))
	}
	p.put(make([]byte, 0, 4))
	if c := p.get(100); cap(c) < 100 {
		t.Fatalf("get(100) returned a buffer of cap %d", cap(c))
	}
}
