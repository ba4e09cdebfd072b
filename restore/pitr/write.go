package pitr

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How restored files are written. A restore writes every byte of a cluster
// once, in files of up to 1 GiB, and then makes them durable (syncDir). On
// the small virtual machines walvault restores on, the cost is in the
// kernel: system calls, page-cache copies and, at the end, waiting for the
// disk. So:
//
//   - a file is created and written through its raw descriptor (openat on
//     the directory's descriptor, write, close): an *os.File costs four
//     fcntl and a failed epoll_ctl per file to try the poller, which
//     regular files never use;
//   - its mode is given at creation, and fchmod only runs when the umask
//     would take bits away;
//   - its times are set on the descriptor (futimens), not by name;
//   - writeback to the disk is started while the restore goes on: every
//     writebackEvery bytes of a file and when it is complete
//     (sync_file_range SYNC_FILE_RANGE_WRITE, which waits for nothing), so
//     that the final sync finds the data already written instead of
//     starting 1 GB of writes at the end. That and close run on a
//     goroutine of their own (flusher), off the extracting one.
//
// Durability is unchanged: syncDir still makes everything durable before
// the restore reports success; starting writeback early only shortens it.
// An error of that early writeback is reported by the syncfs at the end of
// each archive's extraction (syncFS), on a descriptor opened before the
// first write: a writeback error is recorded on the file system and
// reported to every descriptor opened before it, which one opened later
// (syncDir's) would miss once another process's syncfs had seen it.

// writebackEvery is how many bytes of one file are written before their
// writeback is started: large enough that each call hands the disk a
// sizeable request, small enough that a 1 GiB relation segment does not
// sit dirty until it is complete.
const writebackEvery = 32 << 20

// flushQueue bounds the files (descriptors) waiting for the flusher.
const flushQueue = 64

// flusher starts the writeback of written ranges and closes finished
// files, in the order asked, on its own goroutine.
type flusher struct {
	jobs chan flushJob
	done chan struct{}
	mu   sync.Mutex
	err  error
}

type flushJob struct {
	fd       int
	off, n   int64
	close    bool
	pathname string // for messages, when close
}

func newFlusher() *flusher {
	f := &flusher{jobs: make(chan flushJob, flushQueue), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *flusher) run() {
	defer close(f.done)
	for j := range f.jobs {
		// Only a hint: errors of the writeback it starts are reported
		// by the sync at the end (syncfs or fsync), which waits for it.
		_ = unix.SyncFileRange(j.fd, j.off, j.n, unix.SYNC_FILE_RANGE_WRITE)
		if !j.close {
			continue
		}
		if err := closeFD(j.fd); err != nil {
			f.mu.Lock()
			if f.err == nil {
				f.err = fsErr("write", j.pathname, err)
			}
			f.mu.Unlock()
		}
	}
}

// writeback starts writing n bytes at off of the open file fd.
func (f *flusher) writeback(fd int, off, n int64) {
	f.jobs <- flushJob{fd: fd, off: off, n: n}
}

// closeFile starts the writeback of what fd's file holds after off, and
// closes fd; the flusher owns fd from now on.
func (f *flusher) closeFile(fd int, off int64, pathname string) {
	f.jobs <- flushJob{fd: fd, off: off, n: 0, close: true, pathname: pathname}
}

// wait closes every file handed over and returns the first error.
func (f *flusher) wait() error {
	close(f.jobs)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func closeFD(fd int) error {
	// close is never retried: the descriptor is gone even when it fails.
	return unix.Close(fd)
}

// ignoringEINTR retries a system call interrupted by a signal (the Go
// runtime preempts goroutines with SIGURG).
func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// createAt creates the regular file name (one path component) in the
// directory dirfd with permissions perm, exclusively: O_EXCL never follows
// or overwrites anything already there, a symbolic link included.
func createAt(dirfd int, name string, perm uint32) (int, error) {
	var fd int
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	return fd, err
}

// writeFull writes all of p to fd.
func writeFull(fd int, p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(fd, p[done:])
		if n > 0 {
			done += n
		}
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return done, err
		}
		if n == 0 {
			return done, syscall.EIO
		}
	}
	return done, nil
}

// setTimes sets the access and modification times of the open file fd
// (futimens: utimensat on the descriptor itself, no name to resolve).
func setTimes(fd int, t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return ignoringEINTR(func() error {
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	})
}

// processUmask is the file mode creation mask, read once from
// /proc/self/status (reading it with umask(2) would change it for a
// moment, for every goroutine); -1 when unknown.
var processUmask = sync.OnceValue(func() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return -1
			}
			return int(m)
		}
	}
	return -1
})

// needsChmod says whether a file created with perm must be given perm
// again with fchmod: when the umask takes some of its bits away, or is
// unknown.
func needsChmod(perm uint32) bool { return chmodNeeded(perm, processUmask()) }

func chmodNeeded(perm uint32, umask int) bool { return umask < 0 || perm&uint32(umask) != 0 }

// writeSize is the size of every write(2) of file data (but a file's
// last). The data is copied into a buffer this small first, from the chunk
// it was decompressed into, and written from there. Measured on 1.1 GB
// (pgbench scale 70, Linux 6.18 on a 2-core VM, `perf record`, user+sys
// seconds of restore): writing straight from the 16 MiB chunk buffers, or
// through a 1 MiB buffer, made the kernel's copy into the page cache
// (copy_folio_from_iter_atomic) take 36-41% of the CPU against 22% with
// small writes, for 3.4-3.9 s in all against 2.6-2.9 s with 32-64 KiB
// writes: large aligned writes get large page-cache folios, which on these
// machines cost far more to fill; a small buffer also stays in the CPU's
// cache between the copy into it and the kernel's copy out of it.
const writeSize = 64 << 10

// syncFS makes the file system f is on durable (syncfs(2)) and reports
// the writeback errors since f was opened. Where syncfs is not available
// it does nothing: syncDir then fsyncs every file.
func syncFS(f *os.File, dir string) error {
	err := ignoringEINTR(func() error { return unix.Syncfs(int(f.Fd())) })
	if err == nil || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return fsErr("write to disk under", dir, err)
}
