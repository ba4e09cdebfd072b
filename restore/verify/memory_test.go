package verify

import (
	"runtime"
	"testing"
)

// TestFrameMemory measures what verify keeps per stored block: one
// frameCheck per frame read, with the first 8 bytes of each block's id,
// in the map of frames. Frames hold 16 blocks of 8 KiB (128 KiB of
// plaintext) when a backup stores a run of new blocks, and as few as one.
// The bound is the one docs/COMMANDS.md states: 24 bytes per block, plus
// 120 per frame.
func TestFrameMemory(t *testing.T) {
	for _, perFrame := range []int{16, 1} {
		perBlock := frameMemory(100_000, perFrame)
		t.Logf("verify keeps %.1f bytes per stored block in frames of %d", perBlock, perFrame)
		if bound := 24.0 + 120.0/float64(perFrame); perBlock > bound {
			t.Errorf("verify keeps %.1f bytes per stored block in frames of %d, more than the %.0f documented", perBlock, perFrame, bound)
		}
	}
}

func frameMemory(frames, perFrame int) float64 {
	var s blockState
	s.init()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range frames {
		ids := make([]uint64, perFrame)
		for k := range ids {
			ids[k] = uint64(i*perFrame + k)
		}
		s.frames[frameKey{pack: uint32(i / 500), off: int64(i%500) * 70_000}] = &frameCheck{done: true, n: perFrame, ids: ids}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s.frames)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(frames*perFrame)
}
