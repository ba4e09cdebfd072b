package walpush

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// peerUID is the user of the process at the other end of a Unix socket.
func peerUID(raw syscall.RawConn) (int, error) {
	var cred *unix.Ucred
	var serr error
	err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return int(cred.Uid), nil
}
