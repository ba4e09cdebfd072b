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

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/recoverydir"
	"github.com/walvault/walvault/restore/scratch"
	"github.com/walvault/walvault/restore/walfetch"
	"github.com/walvault/walvault/storage"
)

// ErrNoServer: the PostgreSQL server programs of the repository's major
// version are not installed where the drill looks.
var ErrNoServer = scratch.ErrNoServer

// FindBinDir returns the directory of the server programs for major (see
// scratch.FindBinDir).
func FindBinDir(explicit string, major int) (dir, version string, err error) {
	return scratch.FindBinDir(explicit, major)
}

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
	// Account runs the server.
	Account *scratch.Account
}

// Recovery is what the restored server needs to fetch WAL: the
// restore_command and recovery_end_command, what its environment must add
// (this run's S3 credentials), and the recovery directory outside the data
// directory that holds the files restore_command reads (restore/recoverydir).
// That directory may hold a copy of the identity: it is removed even when
// the scratch directory is kept.
type Recovery struct {
	RestoreCommand, EndCommand string
	Env                        []string
	Dir                        string
}

// Options configure Run.
type Options struct {
	// Target is the time to recover to; nil recovers all archived WAL
	// (the latest point).
	Target *time.Time
	// RandomPoint draws the target from the recoverable window (of
	// BackupID when set), before the newest commit its WAL holds
	// (Drawable), with a generator seeded by Seed.
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
	// DBUser is the database role the checks connect as. Without it: the
	// cluster's bootstrap superuser (read from the restored data
	// directory), else the first of FallbackRoles and the account's name
	// that exists (scratch.Roles).
	DBUser        string
	FallbackRoles []string
	// Recovery returns the restore_command and its files for the dirs.
	Recovery func(Dirs) (Recovery, error)
	// Settings are extra NAME=VALUE server settings (after the drill's own,
	// so they win, except the ones that keep the drill safe).
	Settings []string
	// Workers is restore's download parallelism (0: its default).
	Workers int
	// FilestoreSample is how many of the files an Odoo database
	// references are downloaded and checked against their SHA-1 (a
	// random sample; negative: all); every one is checked to be in the
	// repository.
	FilestoreSample int
	Logger          *slog.Logger
	Now             func() time.Time

	// Progress, if set, is told the drill's phases: "restore" (bytes of the
	// backup), "recovering" (bytes of WAL replayed since the backup's
	// start; the total is known for the latest point), "checks" and
	// "cleanup".
	Progress Progress
}

// lowSettingsHint follows PostgreSQL's complaint about hot standby settings
// lower than the primary's.
const lowSettingsHint = "\nthe drill's server settings are lower than the primary's: raise them with --pg-option NAME=VALUE"

// Progress receives the phases of a drill and their figures;
// *progress.Reporter (internal/progress) is one.
type Progress interface {
	Start(phase string, total int64)
	Update(done, total int64)
	SetDetail(detail string)
}

type noProgress struct{}

func (noProgress) Start(string, int64) {}
func (noProgress) Update(int64, int64) {}
func (noProgress) SetDetail(string)    {}

// replayedBytes reads how much WAL recovery has replayed since start from
// scratch.Probe's "LSN 0/5000060 (last transaction …)".
func replayedBytes(replay string, start pgwal.LSN) (int64, bool) {
	f := strings.Fields(strings.TrimPrefix(replay, "LSN "))
	if len(f) == 0 {
		return 0, false
	}
	lsn, err := pgwal.ParseLSN(f[0])
	if err != nil || lsn < start {
		return 0, false
	}
	return int64(lsn - start), true
}

// drill is the state of one Run.
type drill struct {
	opts   Options
	r      *repo.Repository
	rep    *Report
	log    *slog.Logger
	now    func() time.Time
	as     *scratch.Account
	dirs   Dirs
	sess   *scratch.Session
	srv    *scratch.Server
	dbUser string
	recDir string   // the recovery directory, removed even when kept
	env    []string // added to the server's environment

	// newestArchived is the newest commit of the window's WAL a random
	// point was drawn before (nil for other targets).
	newestArchived *time.Time

	// replayed is told how far recovery has replayed (progress).
	replayed func(replay string)

	// fsObjects are the repository's filestore objects by name, listed
	// once for every Odoo database (nil until then).
	fsObjects map[string]storage.ObjectInfo
	fsDBs     map[string]bool
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
	if d.opts.Progress == nil {
		d.opts.Progress = noProgress{}
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
	as, err := scratch.ServerAccount(d.opts.OSUser)
	if err != nil {
		return nil, err
	}
	d.as = as
	if opts.RandomPoint {
		if err := d.randomTarget(ctx); err != nil {
			return nil, err
		}
	}
	if t := d.opts.Target; t != nil {
		d.rep.TargetTime = t
		d.rep.Target = t.UTC().Format(time.RFC3339Nano)
	}
	scratch.BecomeSubreaper()
	scratch, err := os.MkdirTemp(opts.ScratchParent, "walvault-drill-")
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	d.dirs = Dirs{Scratch: scratch, PGData: filepath.Join(scratch, "data"), Account: d.as}
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
	d.opts.Progress.Start("cleanup", -1)
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
	// The window ends at the upload of its newest WAL, after its newest
	// commit: only moments before that commit can be recovered to.
	newest, at, found, err := newestArchivedXact(ctx, d.r, cat, w)
	if err != nil {
		return fmt.Errorf("random point: %w", err)
	}
	span, ok := Drawable(w, newest)
	if !found || !ok {
		return fmt.Errorf("%w: --random-point: the archived WAL of the window %s holds no commit after the window's start, so recovery to any moment of it would end before reaching its target; drill the latest point instead (without --random-point)",
			pitr.ErrTargetOutsideWindow, w)
	}
	t := RandomPoint(span, NewRand(d.opts.Seed))
	d.opts.Target = &t
	d.newestArchived = &newest
	d.rep.RandomPoint, d.rep.Seed = true, d.opts.Seed
	d.setWindow(w)
	d.rep.Window.NewestArchivedCommit = &newest
	d.log.Info("random point", "target", t.UTC().Format(time.RFC3339Nano), "seed", d.opts.Seed,
		"window_from", w.From.UTC().Format(time.RFC3339Nano), "window_to", w.To.UTC().Format(time.RFC3339Nano),
		"newest_archived_commit", newest.UTC().Format(time.RFC3339Nano), "newest_archived_commit_lsn", at,
		"replay", "--target-time "+t.UTC().Format(time.RFC3339Nano))
	return nil
}

func (d *drill) setWindow(w catalog.Window) {
	d.rep.Window = &ReportWindow{From: w.From, To: w.To}
}

func (d *drill) run(ctx context.Context) error {
	if err := d.as.Chown(d.dirs.Scratch); err != nil {
		return err
	}
	rec, err := d.opts.Recovery(d.dirs)
	if err != nil {
		return err
	}
	d.recDir, d.env = rec.Dir, rec.Env

	// 1. Restore, as walvault restore does.
	restoreStart := d.now()
	target := pitr.Target{Timeline: "latest"}
	if d.opts.Target != nil {
		target.Time, target.Action = d.opts.Target, "promote"
	}
	prog := d.opts.Progress
	prog.Start("restore", -1)
	res, err := pitr.Run(ctx, d.r, pitr.Options{
		PGData:         d.dirs.PGData,
		BackupID:       d.opts.BackupID,
		Target:         target,
		Owner:          d.as.Name,
		RestoreCommand: rec.RestoreCommand,
		EndCommand:     rec.EndCommand,
		Workers:        d.opts.Workers,
		Logger:         slog.New(dropArchivingWarning{d.log.Handler()}),
		Now:            d.now,
		Progress:       prog.Update,
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
	walTotal := int64(-1)
	if d.opts.Target == nil && res.Window.ToLSN > res.Backup.StartLSN {
		walTotal = int64(res.Window.ToLSN - res.Backup.StartLSN)
	}
	prog.Start("recovering", walTotal)
	d.replayed = func(replay string) {
		prog.SetDetail(replay)
		if n, ok := replayedBytes(replay, res.Backup.StartLSN); ok {
			prog.Update(n, walTotal)
		}
	}
	startedAt := d.now()
	if err := d.startServer(startedAt); err != nil {
		d.rep.Add("server_start", Fail, 0, err.Error())
		return nil
	}
	promoted, err := d.waitPromoted(ctx, restoreStart, startedAt)
	if err != nil || !promoted {
		return err
	}

	// 3. Checks on the promoted server.
	prog.Start("checks", -1)
	prog.SetDetail("pg_amcheck")
	d.amcheck(ctx)
	prog.SetDetail("odoo")
	d.odooChecks(ctx)
	prog.SetDetail("custom")
	d.customChecks(ctx)
	return ctx.Err()
}

// startServer starts the drill's private server on the restored data
// directory (scratch.Open: the lifecycle restore's steps and restore
// --database share), set up to wait for promotion as the first of the
// candidate roles that exists.
func (d *drill) startServer(startedAt time.Time) error {
	sess, err := scratch.Open(scratch.SessionOptions{
		Server: scratch.Config{
			BinDir:      d.opts.BinDir,
			PGData:      d.dirs.PGData,
			RunDir:      d.dirs.Scratch,
			Account:     d.as,
			TCP:         true,
			Settings:    d.opts.Settings,
			ClusterName: "walvault-drill",
			Env:         d.env,
			Logger:      d.log,
		},
		Wait: scratch.WaitOptions{
			Users:   scratch.Roles(d.opts.DBUser, d.dirs.PGData, append(d.opts.FallbackRoles, d.as.Name)...),
			Timeout: d.opts.Timeout,
			Now:     d.now,
			OnAccepting: func() {
				d.rep.Add("server_start", Pass, d.now().Sub(startedAt), fmt.Sprintf("PostgreSQL %s accepting connections (port %d of 127.0.0.1, socket only)", d.opts.ServerVersion, d.srv.Port))
			},
			OnReplay: d.replayed,
		},
		StopTimeout: time.Minute, // the scratch copy is thrown away
	})
	if err != nil {
		return err
	}
	d.sess, d.srv = sess, sess.Server()
	d.rep.Port = d.srv.Port
	return nil
}

// waitPromoted waits until the server has left recovery, and records the
// server_start and promote checks, RTO and RPO. It returns false when the
// server did not promote (the checks say why); the error is the cause when
// one is known, or the context's.
func (d *drill) waitPromoted(ctx context.Context, restoreStart, startedAt time.Time) (bool, error) {
	err := d.sess.WaitPromoted(ctx)
	var np *scratch.NotPromoted
	if errors.As(err, &np) {
		return false, d.notPromoted(ctx, np, startedAt)
	}
	if err != nil {
		return false, err
	}
	d.dbUser = d.sess.Role()
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

// notPromoted records why the server did not promote, and returns the
// cause when it is a damaged or unreadable WAL object.
func (d *drill) notPromoted(ctx context.Context, np *scratch.NotPromoted, startedAt time.Time) error {
	name := "promote"
	if !np.Accepting {
		name = "server_start"
	}
	msg := np.Reason
	switch np.Why {
	case scratch.Refused:
		// The server runs but refuses the drill's role or has neither
		// postgres nor template1: waiting cannot help.
		msg += " (set the role with --db-user)"
	case scratch.LowSettings:
		msg += lowSettingsHint
	case scratch.TimedOut:
		msg = strings.Replace(msg, d.opts.Timeout.String(), d.opts.Timeout.String()+" (--timeout)", 1)
	}
	if np.Why == scratch.Died && d.newestArchived != nil && strings.Contains(msg, "recovery ended before configured recovery target was reached") {
		// The point was drawn before a commit the repository's WAL holds:
		// recovery should have reached it.
		msg += "\nthe random point lies before a commit the repository's WAL holds (" + d.newestArchived.UTC().Format(time.RFC3339Nano) +
			"), yet recovery ended before reaching it: the restored server did not replay all of the archived WAL (keep its log with --keep-failed)"
	}
	var cause error
	if file := np.FailedFile; file != "" {
		// restore_command failed on file: ask the repository why, for the
		// exit status (a damaged object is an integrity error).
		if f, err := pgwal.ParseFileName(file); err == nil {
			if _, err := walfetch.Get(ctx, d.r, f); err != nil && !errors.Is(err, walfetch.ErrNotFound) {
				cause = fmt.Errorf("recovery could not restore WAL file %s: %w", file, err)
				msg += "\nwalvault: WAL file " + file + ": " + err.Error()
			}
		}
	}
	d.rep.Add(name, Fail, d.now().Sub(startedAt), msg)
	return cause
}

// cleanup stops the server, ends stray processes and removes the scratch
// directory (or the secrets in it, when kept).
func (d *drill) cleanup() {
	if d.sess != nil {
		_ = d.sess.Stop() // also ends what restore_command left running
		d.log.Info("server stopped", "port", d.srv.Port)
	} else if n := scratch.ReapStrays(nil); n > 0 {
		d.log.Info("ended processes left by restore_command", "count", n)
	}
	if d.dirs.Scratch == "" {
		return
	}
	if d.opts.Keep || d.opts.KeepFailed && !d.rep.Passed {
		if d.recDir != "" {
			if _, err := recoverydir.Clean(d.recDir, d.dirs.PGData); err != nil {
				d.log.Warn("could not remove the recovery directory", "dir", d.recDir, "err", err)
			}
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

// WithoutArchivingWarning wraps h to drop restore's warning that a
// promoted server archives, for other users of a private server that runs
// with archive_mode off (restore --database).
func WithoutArchivingWarning(h slog.Handler) slog.Handler { return dropArchivingWarning{h} }
