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
)

// The WAL server keeps one process running beside PostgreSQL with the
// repository open, its compressors warm and its connections to object
// storage alive; archive_command ("walvault wal-push --wal-server SOCKET
// %p") hands it the path over a Unix socket and waits for its answer. What
// a push does is exactly Push's; only the cost of starting a process,
// reading the configuration and warming up is saved on every segment.
//
// The protocol is one JSON line each way on a fresh connection:
//
//	request:  {"v":1,"repo":"s3://bucket/prefix","path":"/abs/pg_wal/000000010000000000000001"}
//	response: {"v":1,"code":0,"error":"","stored":true}
//
// code is the exit status the client must end with (0 success). A server
// that archives to another repository than the request names answers
// codeOtherRepo, and the client pushes by itself.

// ProtocolVersion is the version of the request and response lines.
const ProtocolVersion = 1

// codeOtherRepo: the server archives to another repository.
const codeOtherRepo = -1

// Request is what wal-push sends.
type Request struct {
	V    int    `json:"v"`
	Repo string `json:"repo"`
	Path string `json:"path"`
}

// Response is what the server answers.
type Response struct {
	V      int    `json:"v"`
	Code   int    `json:"code"`
	Error  string `json:"error,omitempty"`
	Stored bool   `json:"stored,omitempty"`
}

// ErrServerUnavailable: no WAL server answered (none listening, it died
// before answering, or it archives elsewhere). The caller pushes by itself.
var ErrServerUnavailable = errors.New("WAL server unavailable")

// RemoteError is a failure the server reported, with the exit status the
// client must end with.
type RemoteError struct {
	Code int
	Msg  string
}

func (e *RemoteError) Error() string { return e.Msg }

// Ask sends path to the server listening on socket and returns its result.
// Any failure to reach it, or a connection lost before the answer, is
// ErrServerUnavailable: the push is idempotent, so pushing again by oneself
// is always safe.
func Ask(ctx context.Context, socket, repoURL, path string) (Response, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrServerUnavailable, err)
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	conn, err := d.DialContext(dctx, "unix", socket)
	cancel()
	if err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrServerUnavailable, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	req, _ := json.Marshal(Request{V: ProtocolVersion, Repo: repoURL, Path: abs})
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrServerUnavailable, err)
	}
	line, err := bufio.NewReader(io.LimitReader(conn, 1<<20)).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		return Response{}, fmt.Errorf("%w: no answer: %v", ErrServerUnavailable, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil || resp.V != ProtocolVersion {
		return Response{}, fmt.Errorf("%w: unreadable answer %q", ErrServerUnavailable, line)
	}
	switch {
	case resp.Code == codeOtherRepo:
		return resp, fmt.Errorf("%w: %s", ErrServerUnavailable, resp.Error)
	case resp.Code != 0:
		return resp, &RemoteError{Code: resp.Code, Msg: resp.Error}
	}
	return resp, nil
}

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
	var req Request
	resp := Response{V: ProtocolVersion}
	switch {
	case json.Unmarshal(line, &req) != nil || req.V != ProtocolVersion:
		resp.Code, resp.Error = codeOtherRepo, fmt.Sprintf("the WAL server speaks protocol %d; update walvault on both sides", ProtocolVersion)
	case req.Repo != repoURL:
		resp.Code, resp.Error = codeOtherRepo, fmt.Sprintf("the WAL server archives to %s, this wal-push to %s", repoURL, req.Repo)
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
	if resp.Code == codeOtherRepo {
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
