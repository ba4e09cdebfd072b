package scratch

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// quoteDSN quotes a value for a key=value connection string.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// ConnString is the key=value connection string of database db on the
// server, as role user, over its socket.
func (s *Server) ConnString(user, db, appName string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable application_name=%s",
		quoteDSN(s.Sock), s.Port, quoteDSN(user), quoteDSN(db), quoteDSN(appName))
}

// Connect opens a connection to database db ("" is the maintenance
// database: postgres, else template1) as role user over the server's
// socket.
func (s *Server) Connect(ctx context.Context, user, db string, timeout time.Duration) (*pgx.Conn, error) {
	dbs := []string{db}
	if db == "" {
		dbs = []string{"postgres", "template1"}
	}
	var err error
	for _, name := range dbs {
		var cfg *pgx.ConnConfig
		cfg, err = pgx.ParseConfig(s.ConnString(user, name, "walvault"))
		if err != nil {
			return nil, err
		}
		cfg.ConnectTimeout = timeout
		cfg.Fallbacks = nil
		var conn *pgx.Conn
		cctx, cancel := context.WithTimeout(ctx, timeout)
		conn, err = pgx.ConnectConfig(cctx, cfg)
		cancel()
		if err == nil {
			return conn, nil
		}
		if !strings.Contains(err.Error(), "does not exist") {
			return nil, err
		}
	}
	return nil, err
}

// Probe asks the server whether it is in recovery, whether recovery is
// paused, and how far it has replayed ("LSN x (last transaction t)").
func (s *Server) Probe(ctx context.Context, user string) (inRecovery, paused bool, replay string, err error) {
	conn, err := s.Connect(ctx, user, "", 2*time.Second)
	if err != nil {
		return false, false, "", err
	}
	defer conn.Close(context.Background())
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var lsn, ts *string
	err = conn.QueryRow(qctx, `SELECT pg_is_in_recovery(), pg_is_in_recovery() AND pg_is_wal_replay_paused(),
		pg_last_wal_replay_lsn()::text,
		to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`).Scan(&inRecovery, &paused, &lsn, &ts)
	if err != nil {
		return false, false, "", err
	}
	if lsn != nil {
		replay = "LSN " + *lsn
		if ts != nil {
			replay += " (last transaction " + *ts + ")"
		}
	}
	return inRecovery, paused, replay, nil
}

// Why a server did not promote.
type Why int

const (
	// Died: the server stopped during recovery (NotPromoted.FailedFile
	// names the WAL file restore_command failed on, when the log says).
	Died Why = iota + 1
	// Paused: recovery paused (a target with action pause, or settings
	// lower than the primary's) and nothing will resume it.
	Paused
	// LowSettings: recovery paused or stopped because the server's hot
	// standby settings are lower than the primary's.
	LowSettings
	// Refused: the server refused the role (or has no maintenance
	// database): waiting cannot help.
	Refused
	// TimedOut: still in recovery, or not yet accepting connections, when
	// the wait's time ran out.
	TimedOut
)

// NotPromoted is WaitPromoted's error when the server did not leave
// recovery. Accepting says whether it had accepted connections (a drill
// tells a failed start from a failed promotion by it).
type NotPromoted struct {
	Why        Why
	Accepting  bool
	Reason     string
	FailedFile string
	// Err is the connection error behind Refused.
	Err error
}

func (e *NotPromoted) Error() string { return e.Reason }
func (e *NotPromoted) Unwrap() error { return e.Err }

// WaitOptions configure WaitPromoted.
type WaitOptions struct {
	// Users are the roles to connect as, in order (Roles): when one does
	// not exist the next is tried. The one that answered is Server.Role
	// afterwards.
	Users []string
	// Timeout bounds the wait.
	Timeout time.Duration
	// OnAccepting is called once, when the server first answers.
	OnAccepting func()
	Now         func() time.Time

	// OnReplay, if set, is called after each answer during recovery with
	// how far it has replayed, as Probe describes it.
	OnReplay func(replay string)
}

// WaitPromoted waits until the server has left recovery. It returns nil
// once it has; a *NotPromoted when it cannot (it stopped, recovery paused,
// the role is refused, or Timeout passed); or the context's error.
func (s *Server) WaitPromoted(ctx context.Context, o WaitOptions) error {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	deadline := now().Add(o.Timeout)
	accepting := false
	keep := map[int]bool{s.cmd.Process.Pid: true}
	var lastReplay string
	var lastErr error
	tried := 0
	for i := 0; ; i++ {
		ReapZombies(keep)
		if s.Exited() {
			return s.died(accepting)
		}
		if i%10 == 9 {
			// Settings lower than the primary's make recovery pause for
			// good, before the server accepts a connection to ask it.
			if lines, _ := s.LogProblems(20); strings.Contains(strings.Join(lines, "\n"), "insufficient parameter settings") {
				return &NotPromoted{Why: LowSettings, Accepting: accepting, Reason: "recovery paused: " + strings.Join(lines, "\n")}
			}
		}
		if len(o.Users) == 0 {
			return &NotPromoted{Why: Refused, Reason: "no database role to connect as: pass --db-user"}
		}
		user := o.Users[tried]
		inRecovery, paused, replay, err := s.Probe(ctx, user)
		if err != nil {
			lastErr = err
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "28000" && strings.Contains(pgErr.Message, "does not exist") && tried+1 < len(o.Users) {
				tried++ // that role does not exist in this cluster: the next
				continue
			}
			if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000") {
				reason := fmt.Sprintf("connecting as role %q: %v", user, err)
				if tried > 0 {
					reason = fmt.Sprintf("none of the roles %s could connect (the last: %v); name one with --db-user", strings.Join(o.Users, ", "), err)
				}
				return &NotPromoted{Why: Refused, Accepting: accepting, Err: err, Reason: reason}
			}
		}
		if err == nil {
			s.role = user
		}
		if err == nil {
			if !accepting {
				accepting = true
				if o.OnAccepting != nil {
					o.OnAccepting()
				}
			}
			if paused {
				// Nothing resumes a paused recovery here: PostgreSQL
				// pauses when hot standby settings are lower than the
				// primary's, or at a target with action pause.
				msg := "recovery paused at " + replay + " instead of promoting"
				if lines, _ := s.LogProblems(3); len(lines) > 0 {
					msg += ": " + strings.Join(lines, "\n")
				}
				return &NotPromoted{Why: Paused, Accepting: true, Reason: msg}
			}
			if replay != "" {
				lastReplay = replay
				if o.OnReplay != nil {
					o.OnReplay(replay)
				}
			}
			if !inRecovery {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if now().After(deadline) {
			msg := fmt.Sprintf("still in recovery after %s", o.Timeout)
			if lastReplay != "" {
				msg += "; replayed up to " + lastReplay
			}
			if !accepting {
				msg = fmt.Sprintf("not accepting connections after %s: recovery has not reached a consistent state", o.Timeout)
				if lastErr != nil {
					msg += " (" + lastErr.Error() + ")"
				}
				if lines, _ := s.LogProblems(3); len(lines) > 0 {
					msg += "; server log: " + strings.Join(lines, " | ")
				}
			}
			return &NotPromoted{Why: TimedOut, Accepting: accepting, Reason: msg}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// died says why the server exited before promoting.
func (s *Server) died(accepting bool) error {
	lines, file := s.LogProblems(6)
	msg := "the server stopped during recovery"
	if s.waitErr != nil {
		msg += " (" + s.waitErr.Error() + ")"
	}
	if len(lines) > 0 {
		msg += ": " + strings.Join(lines, "\n")
	} else if t := s.LogTail(5); t != "" {
		msg += "; server log ends: " + t
	}
	why := Died
	if strings.Contains(strings.Join(lines, "\n"), "insufficient parameter settings") {
		why = LowSettings
	}
	return &NotPromoted{Why: why, Accepting: accepting, Reason: msg, FailedFile: file}
}

// controlSettings reads the settings that hot standby needs at least as
// high as on the primary from the restored pg_control (pg_controldata), so
// that recovery does not pause with "insufficient parameter settings" on a
// host whose configuration (or lack of one) differs.
func controlSettings(bin, pgdata string) []string {
	prog := FindProgram(bin, "pg_controldata")
	if prog == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, pgdata)
	cmd.Env = append(ServerEnv(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	names := map[string]string{
		"max_connections setting":      "max_connections",
		"max_worker_processes setting": "max_worker_processes",
		"max_wal_senders setting":      "max_wal_senders",
		"max_prepared_xacts setting":   "max_prepared_transactions",
		"max_locks_per_xact setting":   "max_locks_per_transaction",
	}
	var settings []string
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if name, ok := names[strings.TrimSpace(k)]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
				settings = append(settings, fmt.Sprintf("%s=%d", name, n))
			}
		}
	}
	return settings
}
