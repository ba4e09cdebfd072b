package bigbuf

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	mu   sync.Mutex
	live = map[unsafe.Pointer]uintptr{} // mapped buffers: start → length
)

// mapHuge maps n bytes rounded up to whole huge pages at a 2 MiB-aligned
// address (a huge page can only back an aligned range), or returns nil
// when the mapping fails.
func mapHuge(n int) []byte {
	size := (uintptr(n) + hugePage - 1) &^ (hugePage - 1)
	raw, err := unix.MmapPtr(-1, 0, nil, size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	head := (hugePage - uintptr(raw)%hugePage) % hugePage
	p := unsafe.Add(raw, head)
	if head > 0 {
		_ = unix.MunmapPtr(raw, head)
	}
	if tail := hugePage - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, size), tail)
	}
	b := unsafe.Slice((*byte)(p), size)
	// A hint: with huge pages disabled the kernel keeps small ones.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	mu.Lock()
	live[p] = size
	mu.Unlock()
	return b[:0]
}

func unmap(b []byte) {
	p := unsafe.Pointer(unsafe.SliceData(b))
	mu.Lock()
	size, ok := live[p]
	delete(live, p)
	mu.Unlock()
	if ok {
		_ = unix.MunmapPtr(p, size)
	}
}

// mapped reports how many buffers are mapped (for tests).
func mapped() int {
	mu.Lock()
	defer mu.Unlock()
	return len(live)
}
