//go:build !unix

package local

import "os"

func lockFile(*os.File) {}

// tryLockFile never succeeds without file locks: nothing is removed.
func tryLockFile(*os.File) bool { return false }
