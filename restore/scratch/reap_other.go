//go:build !linux

package scratch

// Elsewhere than Linux there is no subreaper: processes that
// restore_command detaches (wal-prefetch) end on their own, within
// minutes.
func BecomeSubreaper() {}

func ReapStrays(map[int]bool) int { return 0 }

func ReapZombies(map[int]bool) {}
