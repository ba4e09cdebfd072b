// Package bigbuf hands out large byte buffers that live outside the Go
// heap, backed by transparent huge pages where the kernel allows.
//
// Memory a process touches for the first time costs a page fault per
// 4 KiB page, and on the virtual machines walvault runs on (cloud VMs,
// Firecracker) a fault costs 15–20 µs: the five 16 MiB chunk buffers of a
// base backup were 20,000 faults, a tenth of its CPU time. Go's heap does
// not ask for huge pages (and the common "madvise" setting of
// /sys/kernel/mm/transparent_hugepage/enabled gives none unless asked), so
// buffers of several megabytes that a process keeps and reuses are mapped
// here, aligned to 2 MiB and marked MADV_HUGEPAGE: the kernel fills them a
// 2 MiB page at a time.
//
// The buffers are outside the Go heap, so the memory limit the runtime is
// given (walvault sets one) does not count them: their callers bound how
// many they keep. On a host whose /sys/kernel/mm/transparent_hugepage/defrag
// is "madvise", a fault in such a buffer may compact memory to find a huge
// page, which can take milliseconds on a fragmented host; when none is
// found the kernel falls back to small pages.
//
// A buffer from Get must be given back with Put exactly once, after every
// slice of it is out of use: Put unmaps it, and a later access crashes the
// process rather than reading someone else's data.
package bigbuf

// MinSize is the smallest request Get maps outside the heap; smaller ones
// are ordinary slices (Put ignores them).
const MinSize = hugePage

const hugePage = 2 << 20

// Get returns an empty slice with room for at least n bytes.
func Get(n int) []byte {
	if n >= MinSize {
		if b := mapHuge(n); b != nil {
			return b
		}
	}
	return make([]byte, 0, n)
}

// Put releases a buffer from Get. Slices that Get did not map (small ones,
// or any other slice) are left to the garbage collector. b may be any
// reslice of the buffer that starts at its first byte.
func Put(b []byte) {
	if cap(b) >= MinSize {
		unmap(b)
	}
}
