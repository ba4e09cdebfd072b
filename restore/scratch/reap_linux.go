package scratch

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// BecomeSubreaper makes orphaned descendants (walvault wal-prefetch
// processes that restore_command started in sessions of their own) this
// process's children instead of init's, so that the caller can find and end
// them: a drill or restore leaves no process behind.
func BecomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// ReapStrays kills and reaps every child of this process except those in
// keep, and returns how many it ended. Call it only when no child the caller
// started itself is still running.
func ReapStrays(keep map[int]bool) int {
	n := 0
	for round := 0; round < 5; round++ {
		kids := children(false)
		found := 0
		for _, pid := range kids {
			if keep[pid] {
				continue
			}
			found++
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		for _, pid := range kids {
			if keep[pid] {
				continue
			}
			var ws unix.WaitStatus
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				if got == pid || err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		n += found
		if found == 0 {
			break
		}
	}
	return n
}

// ReapZombies reaps children that have exited (prefetchers that finished
// while recovery goes on), except those in keep, which their own Wait
// reaps.
func ReapZombies(keep map[int]bool) {
	for _, pid := range children(true) {
		if !keep[pid] {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// children lists the processes whose parent is this process; only the
// exited ones (zombies) when zombies is set.
func children(zombies bool) []int {
	self := os.Getpid()
	var out []int
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range entries {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || zombies && f[0] != "Z" {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == self {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}
