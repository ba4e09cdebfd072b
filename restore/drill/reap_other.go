//go:build !linux

package drill

// Elsewhere than Linux there is no subreaper: processes that
// restore_command detaches (wal-prefetch) end on their own, within
// minutes.
func becomeSubreaper() {}

func reapStrays(map[int]bool) int { return 0 }

func reapZombies(map[int]bool) {}
