//go:build !linux

package walpush

import (
	"os"
	"syscall"
)

// peerUID cannot be asked here; the socket's mode (0600) is the guard.
func peerUID(syscall.RawConn) (int, error) { return os.Getuid(), nil }
