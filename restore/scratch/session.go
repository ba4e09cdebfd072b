package scratch

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is the one lifecycle of a server walvault runs on a restored
// cluster, shared by restore's post-recovery steps, restore --database and
// drill: start it privately (Start), wait until recovery has reached its
// target and the server has promoted, connecting as the first of the
// candidate roles that exists (WaitPromoted), work on it as that role, and
// stop it, ending whatever restore_command left running.
type Session struct {
	srv         *Server
	log         *slog.Logger
	stopTimeout time.Duration
	wait        WaitOptions
	stopped     bool
	stopErr     error
}

// SessionOptions configure Recover.
type SessionOptions struct {
	// Server is how the server is started.
	Server Config
	// Wait is how long and as whom to wait for promotion (its Users are
	// the candidate roles: Roles).
	Wait WaitOptions
	// StopTimeout bounds the fast shutdown (default 10 minutes).
	StopTimeout time.Duration
}

// Recover starts the server and waits for it to promote (Open, then
// WaitPromoted). The session is returned whenever the server started, also
// with an error (a *NotPromoted, or the context's): the caller decides what
// to keep, reads the log (Session.Server().LogPath) and must Stop it. A
// server that did not start returns a nil session.
func Recover(ctx context.Context, o SessionOptions) (*Session, error) {
	s, err := Open(o)
	if err != nil {
		return nil, err
	}
	return s, s.WaitPromoted(ctx)
}

// Open starts the server: the first half of Recover, for callers that
// need the server (its port) before waiting.
func Open(o SessionOptions) (*Session, error) {
	log := o.Server.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Minute
	}
	BecomeSubreaper()
	srv, err := Start(o.Server)
	if err != nil {
		return nil, err
	}
	return &Session{srv: srv, log: log, stopTimeout: o.StopTimeout, wait: o.Wait}, nil
}

// WaitPromoted waits until recovery has reached its target and the server
// has promoted, as Server.WaitPromoted with the session's WaitOptions.
func (s *Session) WaitPromoted(ctx context.Context) error {
	return s.srv.WaitPromoted(ctx, s.wait)
}

// Server is the running server.
func (s *Session) Server() *Server { return s.srv }

// Role is the role the session connects as (the candidate that answered).
func (s *Session) Role() string { return s.srv.Role() }

// Connect opens a connection to database db ("": the maintenance
// database) as Role.
func (s *Session) Connect(ctx context.Context, db string, timeout time.Duration) (*pgx.Conn, error) {
	return s.srv.Connect(ctx, s.Role(), db, timeout)
}

// Stop stops the server with a fast shutdown (a checkpoint: the data
// directory is then clean for the normal service) and ends the processes
// restore_command left behind (prefetchers). It runs once; later calls
// return the first result.
func (s *Session) Stop() error {
	if s == nil {
		return nil
	}
	if s.stopped {
		return s.stopErr
	}
	s.stopped = true
	s.stopErr = s.srv.Stop(s.stopTimeout)
	if n := ReapStrays(nil); n > 0 {
		s.log.Info("ended processes left by restore_command", "count", n)
	}
	return s.stopErr
}
