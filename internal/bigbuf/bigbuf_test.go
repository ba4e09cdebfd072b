package bigbuf

import (
	"runtime"
	"testing"
)

func TestGetPut(t *testing.T) {
	before := mapped()
	for _, n := range []int{0, 1, 4096, MinSize - 1, MinSize, MinSize + 1, 16 << 20, 16<<20 + 7} {
		b := Get(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(b), cap(b))
		}
		b = b[:n]
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("Get(%d): byte %d is %d, not zero", n, i, b[i])
			}
			b[i] = byte(i)
		}
		for i := range b {
			if b[i] != byte(i) {
				t.Fatalf("Get(%d): byte %d reads %d after writing %d", n, i, b[i], byte(i))
			}
		}
		if runtime.GOOS == "linux" && n >= MinSize {
			if mapped() != before+1 {
				t.Fatalf("Get(%d): %d buffers mapped, want %d", n, mapped(), before+1)
			}
		}
		Put(b[:0])
		if mapped() != before {
			t.Fatalf("Put after Get(%d): %d buffers mapped, want %d", n, mapped(), before)
		}
	}
}

func TestPutForeignSlice(t *testing.T) {
	before := mapped()
	Put(make([]byte, 4<<20)) // not from Get: left alone
	b := Get(4 << 20)
	Put(b[1:1]) // not the start of the buffer: ignored, still mapped
	if runtime.GOOS == "linux" && mapped() != before+1 {
		t.Fatalf("%d buffers mapped, want %d", mapped(), before+1)
	}
	Put(b)
	if mapped() != before {
		t.Fatalf("%d buffers mapped, want %d", mapped(), before)
	}
}

func TestAligned(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("huge pages are mapped on Linux only")
	}
	for range 4 {
		b := Get(3 << 20)
		if p := uintptrOf(b); p%hugePage != 0 {
			t.Fatalf("buffer at %#x is not 2 MiB-aligned", p)
		}
		if cap(b) != 4<<20 {
			t.Fatalf("cap %d, want whole huge pages (%d)", cap(b), 4<<20)
		}
		defer Put(b)
	}
}
