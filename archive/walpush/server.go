package walpush

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/walvault/walvault/archive/walpush/walclient"
)

// The WAL server keeps one process running beside PostgreSQL with the
// repository open, its compressors warm and its connections to object
// storage alive; archive_command ("walvault wal-push --wal-server SOCKET
// %p") hands it the path over a Unix socket and waits for its answer. What
// a push does is exactly Push's; only the cost of starting a process,
// reading the configuration and warming up is saved on every segment.
//
// The protocol (one JSON line each way) and its client are in package
// walclient.

// Handler pushes one file for the server and says how it went: the exit
// status a wal-push of its own would have ended with, and its error.
type Handler func(ctx context.Context, path string) (stored bool, code int, err error)

// ServerOptions configure Serve.
type ServerOptions struct {
	// Repo is the repository URL the server archives to; requests naming
	// another are turned away.
	Repo string
	// MaxConcurrent bounds pushes running at once (PostgreSQL's archiver
	// sends one at a time; more come only from several clusters or
	// manual runs).
	MaxConcurrent int
	Logger        *slog.Logger
}

// Listen creates the Unix socket, usable by this user only (umask 077),
// replacing a stale socket file left by a server that died (but never a
// live one).
func Listen(socket string) (net.Listener, error) {
	if conn, err := net.DialTimeout("unix", socket, time.Second); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another WAL server is listening on %s", socket)
	}
	if fi, err := os.Lstat(socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; choose another --socket", socket)
		}
		if err := os.Remove(socket); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	old := syscall.Umask(0o077)
	l, err := net.Listen("unix", socket)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	return l, nil
}

// Serve answers requests on l until ctx ends, then waits for the pushes
// under way. Only connections from processes of this user are served.
func Serve(ctx context.Context, l net.Listener, h Handler, opts ServerOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 2
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	sem := make(chan struct{}, opts.MaxConcurrent)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if err := checkPeer(conn); err != nil {
				log.Warn("WAL server: connection refused", "err", err)
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			serveConn(ctx, conn, h, opts.Repo, log)
		}()
	}
}

func serveConn(ctx context.Context, conn net.Conn, h Handler, repoURL string, log *slog.Logger) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(conn, 64<<10)).ReadBytes('\n')
	if err != nil {
		return
	}
	conn.SetReadDeadline(time.Time{})
	var req walclient.Request
	resp := walclient.Response{V: walclient.ProtocolVersion}
	switch {
	case json.Unmarshal(line, &req) != nil || req.V != walclient.ProtocolVersion:
		resp.Code, resp.Error = walclient.CodeOtherRepo, fmt.Sprintf("the WAL server speaks protocol %d; update walvault on both sides", walclient.ProtocolVersion)
	case req.Repo != repoURL:
		resp.Code, resp.Error = walclient.CodeOtherRepo, fmt.Sprintf("the WAL server archives to %s, this wal-push to %s", repoURL, req.Repo)
	case !filepath.IsAbs(req.Path):
		resp.Code, resp.Error = 2, fmt.Sprintf("WAL server: path %q is not absolute", req.Path)
	default:
		start := time.Now()
		stored, code, err := h(ctx, req.Path)
		resp.Stored, resp.Code = stored, code
		if err != nil {
			resp.Error = err.Error()
			log.Error("wal-push failed", "file", filepath.Base(req.Path), "err", err)
		} else {
			log.Debug("wal-push", "file", filepath.Base(req.Path), "stored", stored, "elapsed", time.Since(start).Round(time.Millisecond))
		}
	}
	if resp.Code == walclient.CodeOtherRepo {
		log.Warn("WAL server: request turned away", "reason", resp.Error)
	}
	b, _ := json.Marshal(resp)
	conn.Write(append(b, '\n'))
}

// checkPeer accepts only processes running as this user: the socket's mode
// already says so, this holds even if the directory's permissions do not.
func checkPeer(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	uid, err := peerUID(raw)
	if err != nil {
		return err
	}
	if uid != os.Getuid() {
		return fmt.Errorf("peer runs as uid %d, the server as %d", uid, os.Getuid())
	}
	return nil
}
