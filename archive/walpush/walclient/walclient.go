// Package walclient is the client side of walvault's WAL server protocol
// (see archive/walpush): what wal-push, and the small walvault-push
// program, send to a running wal-server and what they read back. It
// imports nothing but the standard library, so a client built on it starts
// in a few milliseconds.
//
// The protocol is one JSON line each way on a fresh Unix socket connection:
//
//	request:  {"v":1,"repo":"s3://bucket/prefix","path":"/abs/pg_wal/000000010000000000000001"}
//	response: {"v":1,"code":0,"error":"","stored":true}
//
// code is the exit status the client must end with (0 success). A server
// that archives to another repository than the request names answers
// CodeOtherRepo, and the client pushes by itself.
package walclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"
)

// ProtocolVersion is the version of the request and response lines.
const ProtocolVersion = 1

// CodeOtherRepo: the server archives to another repository.
const CodeOtherRepo = -1

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
	case resp.Code == CodeOtherRepo:
		return resp, fmt.Errorf("%w: %s", ErrServerUnavailable, resp.Error)
	case resp.Code != 0:
		return resp, &RemoteError{Code: resp.Code, Msg: resp.Error}
	}
	return resp, nil
}
