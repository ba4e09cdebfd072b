package service

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends state (newline-separated VAR=value assignments, such as
// "READY=1" or "STATUS=streaming 0/5000000") to the service manager, as
// sd_notify(3) does. It reports false with a nil error when the process was
// not started by a service manager that asked for notifications
// ($NOTIFY_SOCKET unset), so callers can call it unconditionally.
//
// $NOTIFY_SOCKET is a datagram socket path, or an abstract socket name
// written with a leading '@'.
func Notify(state string) (bool, error) {
	return notify(os.Getenv("NOTIFY_SOCKET"), state)
}

func notify(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	if socket[0] != '/' && socket[0] != '@' {
		// systemd 254+ may also pass vsock:CID:PORT, for a service manager
		// outside a VM; walvault runs on the host it serves.
		return false, fmt.Errorf("sd_notify: unsupported NOTIFY_SOCKET %q", socket)
	}
	// On Linux the net package turns a leading '@' into the NUL byte of an
	// abstract socket address, exactly systemd's convention.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify %s: %w", socket, err)
	}
	return true, nil
}

// WatchdogInterval returns the watchdog timeout systemd set for this process
// (WatchdogSec= in the unit, passed as $WATCHDOG_USEC), and false when there
// is none or it is meant for another process ($WATCHDOG_PID differs).
func WatchdogInterval() (time.Duration, bool) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, bool) {
	if usec == "" {
		return 0, false
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return 0, false
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p != self {
			return 0, false
		}
	}
	return time.Duration(us) * time.Microsecond, true
}

// RunWatchdog keeps systemd's watchdog fed until ctx is done: every half
// watchdog interval it sends WATCHDOG=1, but only when healthy reports
// true. A daemon whose healthy turns false (or that wedges and stops
// calling anything) therefore misses its pings, and systemd kills and, with
// Restart=on-failure, restarts it. It returns at once when no watchdog is
// set.
//
// healthy should answer "is this process still making progress", not "is
// the primary reachable": a restart does not bring a primary back, and a
// streamer that waits to reconnect is working as intended.
func RunWatchdog(ctx context.Context, healthy func() bool) {
	interval, ok := WatchdogInterval()
	if !ok {
		return
	}
	runWatchdog(ctx, interval/2, os.Getenv("NOTIFY_SOCKET"), healthy)
}

func runWatchdog(ctx context.Context, every time.Duration, socket string, healthy func() bool) {
	ping := func() {
		if healthy() {
			// A failed send is not reported: there is nobody to report it
			// to but systemd itself, which will act on the missed ping.
			_, _ = notify(socket, "WATCHDOG=1")
		}
	}
	ping()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ping()
		}
	}
}
