package repo

import (
	"bytes"
	"errors"
	"sync"
)

// bufPool recycles the transient buffers of sealing and opening objects
// (compressed frames, sealed objects, decrypted bodies). Memory a process
// touches for the first time costs a page fault per 4 KiB page, and on
// virtual machines that back guest memory lazily a fault costs tens of
// microseconds: a base backup that allocated these buffers afresh for every
// 16 MiB chunk spent a fifth of its time in faults. A channel, unlike a
// sync.Pool, keeps its buffers across the frequent collections that the
// memory limit causes; it holds at most cap(free) of them, so the memory
// it keeps is bounded.
type bufPool struct {
	free chan []byte
}

func newBufPool(n int) *bufPool { return &bufPool{free: make(chan []byte, n)} }

// get returns an empty buffer with room for at least n bytes.
func (p *bufPool) get(n int) []byte {
	select {
	case b := <-p.free:
		if cap(b) >= n {
			return b[:0]
		}
		// Too small for this one: let it go, the sizes a process uses
		// settle quickly on the largest.
	default:
	}
	return make([]byte, 0, n)
}

// put offers b for reuse; the caller must not touch it afterwards.
func (p *bufPool) put(b []byte) {
	if cap(b) == 0 {
		return
	}
	select {
	case p.free <- b[:0]:
	default:
	}
}

// releasableReader reads a pooled buffer for Store.Put. An HTTP transport
// may go on reading a request body after the request has returned (Go's
// RoundTrip closes bodies in a separate goroutine); once release returns,
// every further read fails, so a buffer given back to the pool and refilled
// can never be sent under the old key.
type releasableReader struct {
	mu       sync.Mutex
	r        *bytes.Reader
	released bool
}

func newReleasableReader(b []byte) *releasableReader {
	return &releasableReader{r: bytes.NewReader(b)}
}

func (rr *releasableReader) Read(p []byte) (int, error) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.released {
		return 0, errReleased
	}
	return rr.r.Read(p)
}

func (rr *releasableReader) Seek(off int64, whence int) (int64, error) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.released {
		return 0, errReleased
	}
	return rr.r.Seek(off, whence)
}

// release waits for a read in progress and ends the reader.
func (rr *releasableReader) release() {
	rr.mu.Lock()
	rr.released = true
	rr.mu.Unlock()
}

var errReleased = errors.New("object body read after its upload returned")
