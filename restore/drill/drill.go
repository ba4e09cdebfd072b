package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/repo/pgwal"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/walfetch"
)

// ErrFailed: the drill ran and at least one check failed (or the drill was
// cut short in a way no more specific error describes).
var ErrFailed = errors.New("drill failed")

// Dirs are the directories of one drill.
type Dirs struct {
	// Scratch is the drill's own directory (mode 0700, owned by the
	// server's account), removed at the end unless kept.
	Scratch string
	// PGData is the data directory inside Scratch.
	PGData string
}

// Recovery is what the restored server needs to fetch WAL: the
// restore_command and the files it reads.
type Recovery struct {
	RestoreCommand string
	// DataFiles are written into the data directory (pitr's ExtraFiles).
	DataFiles map[string][]byte
	// ScratchFiles are written into the scratch directory, mode 0600 and
	// owned by the server's account: e.g. a copy of the identity file the
	// server's user could not read where it is. They hold secrets and are
	// removed even when the scratch directory is kept.
	ScratchFiles map[string][]byte
}

// Options configure Run.
type Options struct {
	// Target is the time to recover to; nil recovers all archived WAL
	// (the latest point).
	Target *time.Time
	// RandomPoint draws the target from the recoverable window (of
	// BackupID when set) with a generator seeded by Seed.
	RandomPoint bool
	Seed        uint64
	// BackupID restores that backup; "" lets restore choose.
	BackupID string
	// Checks are the custom SQL checks.
	Checks []SQLCheck
	// BinDir holds postgres (FindBinDir); pg_amcheck and pg_controldata
	// are taken from there too, else from PATH.
	BinDir        string
	ServerVersion string
	// ScratchParent is where the scratch directory is made ("" is the
	// system's temporary directory, $TMPDIR).
	ScratchParent string
	// Keep leaves the scratch directory (stopped server, data directory,
	// server log) in place; KeepFailed only when the drill fails.
	Keep, KeepFailed bool
	// Timeout bounds the wait for recovery to reach the target and promote
	// (default 1h). CheckTimeout bounds each check (default 2h).
	Timeout      time.Duration
	CheckTimeout time.Duration
	// OSUser runs the server when the drill runs as root (default
	// "postgres"); otherwise the server runs as the current user.
	OSUser string
	// DBUser is the database role the checks connect as (default: the
	// name of the account the server runs as, which is the role initdb
	// creates).
	DBUser string
	// Recovery returns the restore_command and its files for the dirs.
	Recovery func(Dirs) (Recovery, error)
	// Settings are extra NAME=VALUE server settings (after the drill's own,
	// so they win, except the ones that keep the drill safe).
	Settings []string
	// Workers is restore's download parallelism (0: its default).
	Workers int
	Logger  *slog.Logger
	Now     func() time.Time
}

// lowSettingsHint follows PostgreSQL's complaint about hot standby settings
// lower than the primary's.
const lowSettingsHint = "\nthe drill's server settings are lower than the primary's: raise them with --pg-option NAME=VALUE"

// drill is the state of one Run.
type drill struct {
	opts    Options
	r       *repo.Repository
	rep     *Report
	log     *slog.Logger
	now     func() time.Time
	as      *account
	dirs    Dirs
	srv     *server
	dbUser  string
	secrets []string // scratch files to remove even when kept
	// extraDirs are directories outside Scratch (a socket directory) that
	// cleanup removes in every case.
	extraDirs []string
}

// Run runs a drill. The report is returned whenever the drill got as far
// as starting (even with an error), so that it can be written out; the
// error wraps ErrFailed when a check failed, or is the cause when one is
// known (a restore error such as pitr.ErrTargetOutsideWindow, or a damaged
// WAL object, repo.ErrIntegrity, that stopped recovery).
func Run(ctx context.Context, r *repo.Repository, opts Options) (*Report, error) {
	d := &drill{opts: opts, r: r, log: opts.Logger, now: opts.Now}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.opts.Timeout <= 0 {
		d.opts.Timeout = time.Hour
	}
	if d.opts.CheckTimeout <= 0 {
		d.opts.CheckTimeout = 2 * time.Hour
	}
	if d.opts.OSUser == "" {
		d.opts.OSUser = "postgres"
	}
	if opts.Recovery == nil {
		return nil, errors.New("drill: no recovery setup given")
	}
	start := d.now()
	d.rep = &Report{Passed: true, Started: start, Target: "latest", ServerVersion: opts.ServerVersion}
	as, err := serverAccount(d.opts.OSUser)
	if err != nil {
		return nil, err
	}
	d.as = as
	d.dbUser = opts.DBUser
	if d.dbUser == "" {
		d.dbUser = as.name
	}
	if opts.RandomPoint {
		if err := d.randomTarget(ctx); err != nil {
			return nil, err
		}
	}
	if t := d.opts.Target; t != nil {
		d.rep.TargetTime = t
		d.rep.Target = t.UTC().Format(time.RFC3339Nano)
	}
	becomeSubreaper()
	scratch, err := os.MkdirTemp(opts.ScratchParent, "walvault-drill-")
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	d.dirs = Dirs{Scratch: scratch, PGData: filepath.Join(scratch, "data")}
	d.rep.Scratch = scratch
	d.log.Info("drill", "target", d.rep.Target, "scratch", scratch)

	err = d.run(ctx)
	if err == nil && !d.rep.Passed {
		// The report names them: check names are the user's text, which
		// has no place in an error the CLI classifies.
		err = fmt.Errorf("%w: %d of %d checks failed (the report says which and why)", ErrFailed, len(d.rep.Failed()), len(d.rep.Checks))
	}
	if ctx.Err() != nil {
		d.rep.Add("drill", Fail, 0, "interrupted (SIGINT or SIGTERM): the server was stopped and the scratch directory removed unless kept")
	}
	if err != nil && d.rep.Passed {
		// An error with no failed check yet (interrupted, or the drill
		// could not set itself up): the report must not say it passed.
		d.rep.Add("drill", Fail, 0, err.Error())
	}
	d.cleanup()
	d.rep.Seconds = d.now().Sub(start).Seconds()
	return d.rep, err
}

// randomTarget draws the target from the recoverable window.
func (d *drill) randomTarget(ctx context.Context) error {
	cat, err := catalog.Load(ctx, d.r)
	if err != nil {
		return err
	}
	var w catalog.Window
	ok := false
	if id := d.opts.BackupID; id != "" {
		for _, b := range cat.Backups {
			if b.ID == id {
				w, ok = cat.Reach(b)
			}
		}
		if !ok {
			return fmt.Errorf("%w: backup %s is not in the repository or its WAL is incomplete: no window to draw a random point from", pitr.ErrNoBackup, id)
		}
	} else if w, ok = cat.Recoverable(); !ok {
		return fmt.Errorf("%w: the repository has no usable backup, so no recoverable window to draw a random point from", pitr.ErrNoBackup)
	}
	t := RandomPoint(w, NewRand(d.opts.Seed))
	d.opts.Target = &t
	d.rep.RandomPoint, d.rep.Seed = true, d.opts.Seed
	d.setWindow(w)
	d.log.Info("random point", "target", t.UTC().Format(time.RFC3339Nano), "seed", d.opts.Seed,
		"window_from", w.From.UTC().Format(time.RFC3339Nano), "window_to", w.To.UTC().Format(time.RFC3339Nano),
		"replay", "--target-time "+t.UTC().Format(time.RFC3339Nano))
	return nil
}

func (d *drill) setWindow(w catalog.Window) {
	d.rep.Window = &struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	}{w.From, w.To}
}

func (d *drill) run(ctx context.Context) error {
	if err := d.as.chown(d.dirs.Scratch); err != nil {
		return err
	}
	rec, err := d.opts.Recovery(d.dirs)
	if err != nil {
		return err
	}
	for name, data := range rec.ScratchFiles {
		p := filepath.Join(d.dirs.Scratch, name)
		d.secrets = append(d.secrets, p)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
		if err := d.as.chown(p); err != nil {
			return err
		}
	}
	for name := range rec.DataFiles {
		d.secrets = append(d.secrets, filepath.Join(d.dirs.PGData, name))
	}

	// 1. Restore, as walvault restore does.
	restoreStart := d.now()
	target := pitr.Target{Timeline: "latest"}
	if d.opts.Target != nil {
		target.Time, target.Action = d.opts.Target, "promote"
	}
	res, err := pitr.Run(ctx, d.r, pitr.Options{
		PGData:         d.dirs.PGData,
		BackupID:       d.opts.BackupID,
		Target:         target,
		Owner:          d.as.name,
		RestoreCommand: rec.RestoreCommand,
		ExtraFiles:     rec.DataFiles,
		Workers:        d.opts.Workers,
		Logger:         slog.New(dropArchivingWarning{d.log.Handler()}),
		Now:            d.now,
	})
	if err != nil {
		d.rep.Add("restore", Fail, d.now().Sub(restoreStart), err.Error())
		return fmt.Errorf("restore: %w", err)
	}
	d.rep.Backup = res.Backup.ID
	stop := res.Backup.StopTime
	d.rep.BackupStopTime = &stop
	if d.rep.Window == nil {
		d.setWindow(res.Window)
	}
	d.rep.Add("restore", Pass, d.now().Sub(restoreStart), fmt.Sprintf("backup %s: %d files, %s restored in %s",
		res.Backup.ID, res.Files, units.Bytes(res.Bytes), res.Duration.Round(time.Millisecond)))

	// 2. Start the server and wait for it to promote.
	if err := d.startServer(); err != nil {
		d.rep.Add("server_start", Fail, 0, err.Error())
		return nil
	}
	promoted, err := d.waitPromoted(ctx, restoreStart)
	if err != nil || !promoted {
		return err
	}

	// 3. Checks on the promoted server.
	d.amcheck(ctx)
	d.odooChecks(ctx)
	d.customChecks(ctx)
	return ctx.Err()
}

// startServer writes the configuration the drill's server needs and starts
// it.
func (d *drill) startServer() error {
	scratch, pgdata := d.dirs.Scratch, d.dirs.PGData
	sock, err := d.socketDir()
	if err != nil {
		return err
	}
	files := map[string]string{
		// Only the socket, in a directory only the server's user (and
		// root) can enter; TCP is refused outright.
		"drill_hba.conf":   "# walvault drill: local socket only\nlocal all all trust\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n",
		"drill_ident.conf": "# walvault drill: no user name maps\n",
	}
	if _, err := os.Stat(filepath.Join(pgdata, "postgresql.conf")); errors.Is(err, os.ErrNotExist) {
		// Debian and Ubuntu keep the configuration in /etc/postgresql,
		// outside the data directory: the backup has none. The server's
		// defaults do for a drill.
		files[filepath.Join("data", "postgresql.conf")] = "# written by walvault drill: the backup holds no postgresql.conf (Debian keeps it in /etc/postgresql)\n"
	}
	for name, text := range files {
		p := filepath.Join(scratch, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			return err
		}
		if err := d.as.chown(p); err != nil {
			return err
		}
	}
	settings := controlSettings(d.opts.BinDir, pgdata)
	// JIT needs memory that is writable and then executable, which
	// hardened services (MemoryDenyWriteExecute=yes) forbid; a drill's
	// queries do not need it. --pg-option jit=on turns it back on.
	settings = append(settings, "jit=off")
	settings = append(settings, d.opts.Settings...)
	// Last, so that nothing can override them: where it listens, who may
	// connect, and above all that it archives nothing.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		safe := []string{
			"listen_addresses=127.0.0.1",
			fmt.Sprintf("port=%d", port),
			"unix_socket_directories=" + sock,
			"unix_socket_permissions=0700",
			"hba_file=" + filepath.Join(scratch, "drill_hba.conf"),
			"ident_file=" + filepath.Join(scratch, "drill_ident.conf"),
			"archive_mode=off",
			"hot_standby=on",
			"synchronous_standby_names=",
			"ssl=off",
			"logging_collector=off",
			"log_destination=stderr",
			"external_pid_file=",
			"cluster_name=walvault-drill",
		}
		srv, err := startServer(d.opts.BinDir, pgdata, filepath.Join(scratch, "postgres.log"), d.as, append(settings, safe...))
		if err != nil {
			return err
		}
		srv.sock, srv.port = sock, port
		d.srv = srv
		d.rep.Port = port
		// A port taken between freePort and the server's bind makes it
		// exit at once: try another.
		select {
		case <-srv.done:
			lines, _ := srv.logProblems(5)
			lastErr = fmt.Errorf("the server exited at once: %s", strings.Join(lines, " | "))
			if !strings.Contains(strings.Join(lines, "\n"), "could not bind") {
				return nil // waitPromoted reports why
			}
			d.log.Warn("port taken, trying another", "port", port)
			continue
		case <-time.After(300 * time.Millisecond):
		}
		d.log.Info("server started", "port", port, "pid", srv.cmd.Process.Pid, "log", srv.logPath)
		return nil
	}
	return lastErr
}

// maxSocketPath is the longest path of a Unix socket (sun_path holds 108
// bytes with the terminating NUL).
const maxSocketPath = 107

// socketDir makes the directory of the server's socket, mode 0700 and owned
// by the server's account: in the scratch directory, or, when the socket's
// path would be too long there, in a directory of its own under $TMPDIR
// (else /tmp), removed at cleanup.
func (d *drill) socketDir() (string, error) {
	const socketName = "/.s.PGSQL.65535"
	dir := filepath.Join(d.dirs.Scratch, "sock")
	if len(dir)+len(socketName) <= maxSocketPath {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", err
		}
	} else {
		parent := os.TempDir()
		if len(parent)+len("/walvault-drill-sock-1234567890")+len(socketName) > maxSocketPath {
			parent = "/tmp"
		}
		var err error
		if dir, err = os.MkdirTemp(parent, "walvault-drill-sock-"); err != nil {
			return "", err
		}
		d.extraDirs = append(d.extraDirs, dir)
	}
	return dir, d.as.chown(dir)
}

// waitPromoted waits until the server has left recovery, and records the
// server_start and promote checks, RTO and RPO. It returns false when the
// server did not promote (the checks say why); the error is the cause when
// one is known, or the context's.
func (d *drill) waitPromoted(ctx context.Context, restoreStart time.Time) (bool, error) {
	startedAt := d.now()
	deadline := startedAt.Add(d.opts.Timeout)
	accepting := false
	keep := map[int]bool{d.srv.cmd.Process.Pid: true}
	var lastReplay string
	var lastErr error
	for i := 0; ; i++ {
		reapZombies(keep)
		if d.srv.exited() {
			return false, d.serverDied(ctx, accepting, startedAt)
		}
		if i%10 == 9 {
			// Settings lower than the primary's make recovery pause for
			// good, before the server accepts a connection to ask it.
			if lines, _ := d.srv.logProblems(20); strings.Contains(strings.Join(lines, "\n"), "insufficient parameter settings") {
				name := "promote"
				if !accepting {
					name = "server_start"
				}
				d.rep.Add(name, Fail, d.now().Sub(startedAt), "recovery paused: "+strings.Join(lines, "\n")+
					lowSettingsHint)
				return false, nil
			}
		}
		inRecovery, paused, replay, err := d.probe(ctx)
		if err != nil {
			lastErr = err
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000") {
				// The server runs but refuses the drill's role or has
				// neither postgres nor template1: waiting cannot help.
				d.rep.Add("server_start", Fail, d.now().Sub(startedAt), fmt.Sprintf("connecting as role %q: %v (set the role with --db-user)", d.dbUser, err))
				return false, nil
			}
		}
		if err == nil && paused {
			// Nothing resumes a paused recovery in a drill: PostgreSQL
			// pauses when hot standby settings are lower than the
			// primary's, or at a target with action pause.
			msg := "recovery paused at " + replay + " instead of promoting"
			if lines, _ := d.srv.logProblems(3); len(lines) > 0 {
				msg += ": " + strings.Join(lines, "\n")
			}
			if !accepting {
				d.rep.Add("server_start", Pass, d.now().Sub(startedAt), "accepting connections")
			}
			d.rep.Add("promote", Fail, d.now().Sub(startedAt), msg)
			return false, nil
		}
		if err == nil {
			if !accepting {
				accepting = true
				d.rep.Add("server_start", Pass, d.now().Sub(startedAt), fmt.Sprintf("PostgreSQL %s accepting connections (port %d of 127.0.0.1, socket only)", d.opts.ServerVersion, d.srv.port))
			}
			if replay != "" {
				lastReplay = replay
			}
			if !inRecovery {
				break
			}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if d.now().After(deadline) {
			msg := fmt.Sprintf("still in recovery after %s (--timeout)", d.opts.Timeout)
			if lastReplay != "" {
				msg += "; replayed up to " + lastReplay
			}
			if !accepting {
				msg = fmt.Sprintf("not accepting connections after %s (--timeout): recovery has not reached a consistent state", d.opts.Timeout)
				if lastErr != nil {
					msg += " (" + lastErr.Error() + ")"
				}
				if lines, _ := d.srv.logProblems(3); len(lines) > 0 {
					msg += "; server log: " + strings.Join(lines, " | ")
				}
				d.rep.Add("server_start", Fail, d.now().Sub(startedAt), msg)
				return false, nil
			}
			d.rep.Add("promote", Fail, d.now().Sub(startedAt), msg)
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-d.srv.done:
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The promoted server's first answer ends the RTO.
	conn, err := d.connect(ctx, "", 10*time.Second)
	if err != nil {
		d.rep.Add("promote", Fail, d.now().Sub(startedAt), "promoted, then refused a connection: "+err.Error())
		return false, nil
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		d.rep.Add("promote", Fail, d.now().Sub(startedAt), "promoted, then failed its first query: "+err.Error())
		return false, nil
	}
	rto := d.now().Sub(restoreStart).Seconds()
	d.rep.RTOSeconds = &rto
	reason := "recovery reached the end of the archived WAL and the server promoted"
	if d.opts.Target != nil {
		reason = "recovery reached " + d.rep.Target + " and the server promoted"
	}
	newest, source := newestCommit(ctx, conn)
	if newest != nil {
		rpo := RPO(d.opts.Target, d.rep.Started, *newest).Seconds()
		d.rep.RPOSeconds, d.rep.NewestCommit, d.rep.NewestCommitSource = &rpo, newest, source
		reason += "; newest recovered commit " + newest.UTC().Format(time.RFC3339Nano)
		if d.opts.Target != nil && newest.After(*d.opts.Target) {
			d.rep.Add("promote", Fail, d.now().Sub(startedAt), fmt.Sprintf("recovered a commit at %s, after the target %s", newest.UTC().Format(time.RFC3339Nano), d.rep.Target))
			return true, nil
		}
	} else {
		d.rep.NewestCommitSource = source
	}
	d.rep.Add("promote", Pass, d.now().Sub(startedAt), reason)
	return true, nil
}

// probe asks the server whether it is in recovery and how far it has
// replayed.
func (d *drill) probe(ctx context.Context) (inRecovery, paused bool, replay string, err error) {
	conn, err := d.connect(ctx, "", 2*time.Second)
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

// serverDied records why the server exited before promoting, and returns
// the cause when it is a damaged or unreadable WAL object.
func (d *drill) serverDied(ctx context.Context, accepting bool, startedAt time.Time) error {
	lines, file := d.srv.logProblems(6)
	msg := "the server stopped during recovery"
	if d.srv.waitErr != nil {
		msg += " (" + d.srv.waitErr.Error() + ")"
	}
	if len(lines) > 0 {
		msg += ": " + strings.Join(lines, "\n")
	} else if t := d.srv.logTail(5); t != "" {
		msg += "; server log ends: " + t
	}
	if strings.Contains(strings.Join(lines, "\n"), "insufficient parameter settings") {
		msg += lowSettingsHint
	}
	if d.rep.RandomPoint && strings.Contains(strings.Join(lines, "\n"), "recovery ended before configured recovery target was reached") {
		// The window ends at the upload time of the newest segment, an
		// upper bound of its last commit: a point drawn between that commit
		// and the upload is beyond the last recorded commit, and PostgreSQL
		// refuses to promote there.
		msg += "\nthe random point lies after the newest commit the repository holds: the window's end is the upload time of the newest WAL segment, an upper bound of its last commit; this is not damage, and the end of the window is covered by drills of the latest point"
	}
	var cause error
	if file != "" {
		// restore_command failed on file: ask the repository why, for the
		// exit status (a damaged object is an integrity error).
		if f, err := pgwal.ParseFileName(file); err == nil {
			if _, err := walfetch.Get(ctx, d.r, f); err != nil && !errors.Is(err, walfetch.ErrNotFound) {
				cause = fmt.Errorf("recovery could not restore WAL file %s: %w", file, err)
				msg += "\nwalvault: WAL file " + file + ": " + err.Error()
			}
		}
	}
	name := "promote"
	if !accepting {
		name = "server_start"
	}
	d.rep.Add(name, Fail, d.now().Sub(startedAt), msg)
	return cause
}

// cleanup stops the server, ends stray processes and removes the scratch
// directory (or the secrets in it, when kept).
func (d *drill) cleanup() {
	if d.srv != nil {
		d.srv.stop(time.Minute)
		d.log.Info("server stopped", "port", d.srv.port)
	}
	if n := reapStrays(nil); n > 0 {
		d.log.Info("ended processes left by restore_command", "count", n)
	}
	for _, dir := range d.extraDirs {
		_ = os.RemoveAll(dir)
	}
	if d.dirs.Scratch == "" {
		return
	}
	if d.opts.Keep || d.opts.KeepFailed && !d.rep.Passed {
		for _, p := range d.secrets {
			_ = os.Remove(p)
		}
		d.rep.Kept = true
		d.log.Info("scratch directory kept", "dir", d.dirs.Scratch)
		return
	}
	if err := os.RemoveAll(d.dirs.Scratch); err != nil {
		d.log.Warn("could not remove the scratch directory", "dir", d.dirs.Scratch, "err", err)
	}
}

// dropArchivingWarning passes restore's log records on, except its warning
// that a promoted server archives its new timeline: the drill's server runs
// with archive_mode off, so the warning would only alarm.
type dropArchivingWarning struct{ slog.Handler }

func (h dropArchivingWarning) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && strings.HasPrefix(r.Message, "when the restored server is promoted it archives WAL") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h dropArchivingWarning) WithAttrs(as []slog.Attr) slog.Handler {
	return dropArchivingWarning{h.Handler.WithAttrs(as)}
}

func (h dropArchivingWarning) WithGroup(name string) slog.Handler {
	return dropArchivingWarning{h.Handler.WithGroup(name)}
}
