//go:build unix

package local

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f, held until f is closed (also when
// the process dies). A file system without locks leaves f unlocked, and
// tryLockFile then never succeeds on it: nothing is removed.
func lockFile(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }

// tryLockFile reports whether f could be locked: no live process holds it.
func tryLockFile(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
