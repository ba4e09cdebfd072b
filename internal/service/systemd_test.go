package service

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listenNotify opens a unixgram socket as systemd does for NOTIFY_SOCKET
// and returns the name to put in the variable.
func listenNotify(t *testing.T, name string) (*net.UnixConn, string) {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, name
}

// receive reads one datagram, or returns "" after wait.
func receive(t *testing.T, conn *net.UnixConn, wait time.Duration) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return ""
		}
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name   string
		socket func(t *testing.T) string
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify.sock") }},
		{"abstract", func(t *testing.T) string {
			return fmt.Sprintf("@walvault-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, name := listenNotify(t, tt.socket(t))
			t.Setenv("NOTIFY_SOCKET", name)
			const state = "READY=1\nSTATUS=streaming 0/3000000"
			sent, err := Notify(state)
			if err != nil || !sent {
				t.Fatalf("Notify: sent=%v err=%v", sent, err)
			}
			if got := receive(t, conn, 5*time.Second); got != state {
				t.Errorf("received %q, want %q", got, state)
			}
		})
	}
}

func TestNotifyWithoutServiceManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET: sent=%v err=%v, want false, nil", sent, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, socket := range []string{
		filepath.Join(t.TempDir(), "nobody-listens.sock"),
		"vsock:2:1234",
		"relative.sock",
	} {
		if sent, err := notify(socket, "READY=1"); sent || err == nil {
			t.Errorf("notify(%q): sent=%v err=%v, want an error", socket, sent, err)
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	const self = 4242
	tests := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"60000000", "", 60 * time.Second, true},
		{"60000000", "4242", 60 * time.Second, true},
		{"60000000", "4243", 0, false}, // meant for another process (a parent that forked us)
		{"60000000", "x", 0, false},
		{"", "4242", 0, false},
		{"0", "", 0, false},
		{"-5", "", 0, false},
		{"abc", "", 0, false},
	}
	for _, tt := range tests {
		got, ok := watchdogInterval(tt.usec, tt.pid, self)
		if got != tt.want || ok != tt.ok {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v; want %v, %v", tt.usec, tt.pid, got, ok, tt.want, tt.ok)
		}
	}

	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d, ok := WatchdogInterval(); d != 30*time.Second || !ok {
		t.Errorf("WatchdogInterval from the environment = %v, %v; want 30s, true", d, ok)
	}
}

// RunWatchdog pings while healthy, stays silent while not (so systemd
// restarts the daemon), and returns when its context ends.
func TestRunWatchdog(t *testing.T) {
	conn, name := listenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	t.Setenv("NOTIFY_SOCKET", name)
	t.Setenv("WATCHDOG_USEC", "40000") // pings every 20ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { RunWatchdog(ctx, healthy.Load); close(done) }()

	for i := range 3 {
		if got := receive(t, conn, 5*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d while healthy: got %q, want WATCHDOG=1", i, got)
		}
	}

	healthy.Store(false)
	// A ping decided just before the switch may still be in the socket.
	for receive(t, conn, 300*time.Millisecond) != "" {
	}
	if got := receive(t, conn, 200*time.Millisecond); got != "" {
		t.Errorf("got %q while unhealthy, want silence", got)
	}

	healthy.Store(true)
	if got := receive(t, conn, 5*time.Second); got != "WATCHDOG=1" {
		t.Errorf("after recovering: got %q, want WATCHDOG=1", got)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog did not return after cancel")
	}
}

func TestRunWatchdogWithoutWatchdog(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	done := make(chan struct{})
	go func() {
		RunWatchdog(context.Background(), func() bool { t.Error("healthy called without a watchdog"); return true })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog without WATCHDOG_USEC did not return at once")
	}
}
