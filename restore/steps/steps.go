// Package steps is the post-recovery phase of walvault restore, and the
// one list of steps restore --database runs on its copy too. Once the data
// directory is written, Run starts the recovered server privately
// (scratch.Recover: the lifecycle drill and restore --database share),
// waits until recovery has reached its target and the server has promoted,
// renames the database when asked, runs the steps Plan puts in their one
// order (mark the copy, neutralize, anonymise, then the Odoo filestore),
// and stops the server with a fast shutdown, so that the directory is
// ready for the normal service.
//
// When something fails after the server started, the server is stopped and
// the data directory kept as it is: the error (a *StepError for a step)
// says which step failed and how to run it again alone.
package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walvault/walvault/restore/odoo"
	"github.com/walvault/walvault/restore/scratch"
)

// Step is one thing done on the recovered database. Run gets a connection
// to it (under its final name) and must leave it usable.
type Step struct {
	// Name is what the output and errors call the step ("neutralize").
	Name string
	// Rerun is the command that runs this step alone on the restored copy
	// once its server runs normally.
	Rerun string
	Run   func(ctx context.Context, conn *pgx.Conn) error
	// KeepCopy (restore --database): when this step fails, the copy is
	// fit to keep on the live server (the steps that make it safe ran
	// before); otherwise a failure drops it.
	KeepCopy bool
}

// ErrStep: a step failed (the *StepError says which).
var ErrStep = errors.New("post-recovery step failed")

// StepError is a failed step: the server was stopped and the data
// directory kept.
type StepError struct {
	Step     string
	Rerun    string
	PGData   string
	KeepCopy bool // the failed step's Step.KeepCopy
	Err      error
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %s failed: %v\nthe recovered server was stopped; the data directory %s is kept as it is (recovered, promoted, earlier steps done)", e.Step, e.Err, e.PGData)
	if e.Rerun != "" {
		msg += "; start it and run this step alone with:\n  " + e.Rerun
	}
	return msg
}

func (e *StepError) Unwrap() []error { return []error{ErrStep, e.Err} }

// Plan is what the post-recovery phase does to a database. Steps puts it
// in the one order walvault uses everywhere (restore --pgdata, restore
// --database): mark the copy (which also gives it its own identity), so
// that nothing after can mistake it for production; neutralize, before
// anyone can start Odoo on it; anonymise, before its filestore is fetched,
// so the files of attachments it dropped are never fetched; the filestore
// last (minutes long; its failure leaves a copy fit to keep).
type Plan struct {
	// Mark, when set, is recorded in the database (odoo.MarkRestoredCopy).
	// Mark only a copy (renamed, neutralized or anonymised): the mark lets
	// odoo neutralize and anonymize run without --force, so a database
	// recovered to be production again must not carry it.
	Mark *odoo.RestoredCopy
	// Neutralize, Anonymize and Filestore are the steps asked for (nil:
	// not asked).
	Neutralize, Anonymize, Filestore *Step
}

// MarkStepName names the mark step; Run runs it before renaming, on the
// database's original name.
const MarkStepName = "mark restored copy"

// Steps returns the plan's steps in order. Messages of the mark step go to
// out.
func (p Plan) Steps(out io.Writer) []Step {
	if out == nil {
		out = io.Discard
	}
	var list []Step
	if p.Mark != nil {
		info := p.Mark // read when the step runs: the backup is known by then
		list = append(list, Step{Name: MarkStepName, Run: func(ctx context.Context, conn *pgx.Conn) error {
			db := conn.Config().Database
			if info.RestoredAt.IsZero() {
				info.RestoredAt = time.Now().UTC()
			}
			err := odoo.MarkRestoredCopy(ctx, conn, *info)
			switch {
			case errors.Is(err, odoo.ErrNotOdoo):
				fmt.Fprintf(out, "  database %s is not an Odoo database: not marked as a restored copy\n", db)
				return nil
			case err != nil:
				return err
			}
			fmt.Fprintf(out, "  database %s marked as a restored copy (ir_config_parameter %s)\n", db, odoo.RestoredCopyKey)
			return nil
		}})
	}
	for _, st := range []*Step{p.Neutralize, p.Anonymize} {
		if st != nil {
			list = append(list, *st)
		}
	}
	if p.Filestore != nil {
		fs := *p.Filestore
		// A copy is neutralized and anonymised by now: restore --database
		// keeps it on the live server when only its files are missing.
		fs.KeepCopy = true
		list = append(list, fs)
	}
	return list
}

// Options configure Run.
type Options struct {
	// PGData is the restored data directory, set up to recover with
	// action promote.
	PGData string
	// BinDir holds the server programs (scratch.FindBinDir).
	BinDir  string
	Account *scratch.Account
	// DBUser is the role to connect as. Without it: the cluster's
	// bootstrap superuser (read from PGData), else the first of
	// FallbackRoles (odoo.conf's db_user) and the account's name that
	// exists (scratch.Roles).
	DBUser        string
	FallbackRoles []string
	// Database is the database the steps work on; As, when set, its new
	// name.
	Database, As string
	// Steps run on the database under its final name, in order
	// (Plan.Steps).
	Steps []Step
	// Timeout bounds the wait for recovery (default 1h); StopTimeout the
	// fast shutdown (default 10 min).
	Timeout, StopTimeout time.Duration
	// ServerEnv is added to the recovered server's environment: what its
	// restore_command needs that is in no file (S3 credentials).
	ServerEnv []string
	// ArchiveTimeline: the cluster is recovered to serve again, archiving
	// (not a copy). The private server promotes with archiving off, so
	// PostgreSQL does not mark the new timeline's history file for
	// archiving as it does when archiving is on; Run marks it, and the
	// normal service archives it with its first segments. Without it the
	// repository never gets the file: a restore to a moment of the new
	// timeline from an older backup cannot follow the timeline, and a later
	// promotion may take the same timeline number again.
	ArchiveTimeline bool

	Logger *slog.Logger
	// Out, when set, receives each line of Result.Done as it happens
	// (steps may print their own reports in between).
	Out io.Writer
}

// FinalName is the database's name once the steps ran: As when set, else
// Database.
func (o *Options) FinalName() string {
	if o.As != "" {
		return o.As
	}
	return o.Database
}

// Result says what Run did, one line per action, in order.
type Result struct {
	// Promoted: recovery completed and the server promoted (the restore's
	// recovery settings and restore_command are no longer needed).
	Promoted bool
	Done     []string
	out      io.Writer
}

func (r *Result) done(line string) {
	r.Done = append(r.Done, line)
	if r.out != nil {
		fmt.Fprintln(r.out, "  "+line)
	}
}

// Run runs the post-recovery phase. See the package documentation.
func Run(ctx context.Context, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Hour
	}
	res := &Result{out: opts.Out}
	runDir, err := os.MkdirTemp("", "walvault-restore-")
	if err != nil {
		return res, fmt.Errorf("run directory for the recovered server: %w", err)
	}
	keepRunDir := false
	defer func() {
		if !keepRunDir {
			_ = os.RemoveAll(runDir)
		}
	}()
	if err := opts.Account.Chown(runDir); err != nil {
		return res, err
	}
	log.Info("waiting for recovery to reach the target and the server to promote", "pgdata", opts.PGData)
	start := time.Now()
	sess, err := scratch.Recover(ctx, scratch.SessionOptions{
		Server: scratch.Config{
			BinDir:      opts.BinDir,
			PGData:      opts.PGData,
			RunDir:      runDir,
			Account:     opts.Account,
			ClusterName: "walvault-restore",
			Env:         opts.ServerEnv,
			Logger:      log,
		},
		Wait: scratch.WaitOptions{
			Users:   scratch.Roles(opts.DBUser, opts.PGData, append(opts.FallbackRoles, opts.Account.Name)...),
			Timeout: opts.Timeout,
		},
		StopTimeout: opts.StopTimeout,
	})
	if sess == nil {
		return res, fmt.Errorf("start the recovered server: %w", err)
	}
	defer func() { _ = sess.Stop() }()
	logPath := sess.Server().LogPath
	if err != nil {
		_ = sess.Stop()
		keepRunDir = true
		if ctx.Err() != nil {
			return res, fmt.Errorf("interrupted while the server recovered: it was stopped, the data directory %s is kept (start it normally to finish recovery); server log: %s", opts.PGData, logPath)
		}
		return res, fmt.Errorf("recovery did not complete: %w\nthe server was stopped; the data directory %s is kept; the server log of this run is %s", err, opts.PGData, logPath)
	}
	res.Promoted = true
	res.done(fmt.Sprintf("recovery reached the target and the server promoted (%s); connected as role %s", time.Since(start).Round(time.Millisecond), sess.Role()))
	if opts.ArchiveTimeline {
		marked, err := markHistoryForArchiving(opts.PGData, opts.Account)
		if err != nil {
			log.Warn("could not mark the new timeline's history file for archiving: archive it with walvault wal-push, as the server's user, once the server runs", "pgdata", opts.PGData, "err", err)
		}
		if len(marked) > 0 {
			res.done(fmt.Sprintf("new timeline history %s queued (archive_status .ready): the server archives it once it runs with archiving on", strings.Join(marked, ", ")))
		}
	}

	fail := func(step, rerun string, err error) (*Result, error) {
		if serr := sess.Stop(); serr != nil {
			log.Warn("stopping the recovered server", "err", serr)
		}
		keepRunDir = true
		return res, &StepError{Step: step, Rerun: rerun, PGData: opts.PGData, Err: fmt.Errorf("%w (server log of this run: %s)", err, logPath)}
	}
	if opts.Database != "" {
		if err := run(ctx, sess, opts, res); err != nil {
			var se *StepError
			if errors.As(err, &se) {
				return fail(se.Step, se.Rerun, se.Err)
			}
			return fail("connect", "", err)
		}
	}
	if err := sess.Stop(); err != nil {
		keepRunDir = true
		return res, fmt.Errorf("stopping the recovered server: %w\nthe data directory %s is kept; start it normally, PostgreSQL recovers from its WAL; server log: %s", err, opts.PGData, logPath)
	}
	res.done("server stopped with a fast shutdown (checkpoint written): the data directory is ready for the normal service")
	return res, nil
}

// historyFile is the name of a timeline history file in pg_wal.
var historyFile = regexp.MustCompile(`^[0-9A-F]{8}\.history$`)

// markHistoryForArchiving gives each timeline history file of pgdata's
// pg_wal that has no archive status (it was written while archiving was
// off) the archive_status/<name>.ready PostgreSQL's archiver looks for,
// owned by account, and returns their names. Files restored from the
// repository during recovery have their .done already.
func markHistoryForArchiving(pgdata string, account *scratch.Account) ([]string, error) {
	wal := filepath.Join(pgdata, "pg_wal")
	entries, err := os.ReadDir(wal)
	if err != nil {
		return nil, err
	}
	var marked []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !historyFile.MatchString(e.Name()) {
			continue
		}
		status := filepath.Join(wal, "archive_status", e.Name())
		if fileExists(status+".done") || fileExists(status+".ready") {
			continue
		}
		f, err := os.OpenFile(status+".ready", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return marked, err
		}
		if err := f.Close(); err != nil {
			return marked, err
		}
		if account != nil {
			if err := account.Chown(status + ".ready"); err != nil {
				return marked, err
			}
		}
		marked = append(marked, e.Name())
	}
	return marked, nil
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// run renames the database and runs the steps; its errors are *StepError
// but for connection failures.
func run(ctx context.Context, sess *scratch.Session, opts Options, res *Result) error {
	// The maintenance database, unless it is the one to rename (a
	// database cannot be renamed from a connection to itself).
	maintDB := ""
	if opts.Database == "postgres" {
		maintDB = "template1"
	}
	maint, err := sess.Connect(ctx, maintDB, 30*time.Second)
	if err != nil {
		return err
	}
	defer maint.Close(context.Background())
	var exists bool
	if err := maint.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", opts.Database).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		var names []string
		rows, err := maint.Query(ctx, "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
		if err == nil {
			names, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		return &StepError{Step: "find database", Err: fmt.Errorf("database %q is not in the recovered cluster (it holds %v); check --db", opts.Database, names)}
	}

	db := opts.Database
	rest := opts.Steps
	if len(rest) > 0 && rest[0].Name == MarkStepName {
		// Marked under its original name, before anything else.
		if err := runStepsOn(ctx, sess, rest[:1], res, db); err != nil {
			return err
		}
		rest = rest[1:]
	}
	if opts.As != "" && opts.As != db {
		rerun := "psql -d postgres -c " + shellQuote(fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", pgx.Identifier{db}.Sanitize(), pgx.Identifier{opts.As}.Sanitize()))
		if err := Rename(ctx, maint, db, opts.As); err != nil {
			return &StepError{Step: "rename", Rerun: rerun, Err: err}
		}
		res.done(fmt.Sprintf("database %s renamed to %s", db, opts.As))
		db = opts.As
	}
	return runStepsOn(ctx, sess, rest, res, db)
}

// runStepsOn runs steps on database db.
func runStepsOn(ctx context.Context, sess *scratch.Session, steps []Step, res *Result, db string) error {
	if len(steps) == 0 {
		return nil
	}
	conn, err := sess.Connect(ctx, db, 30*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return RunSteps(ctx, conn, steps, func(s string) { res.done(s) })
}

// RunSteps runs steps in order on conn, calling done after each; the
// first failure is returned as a *StepError (without PGData).
func RunSteps(ctx context.Context, conn *pgx.Conn, steps []Step, done func(string)) error {
	for _, s := range steps {
		start := time.Now()
		if err := s.Run(ctx, conn); err != nil {
			return &StepError{Step: s.Name, Rerun: s.Rerun, KeepCopy: s.KeepCopy, Err: err}
		}
		done(fmt.Sprintf("step %s done (%s)", s.Name, time.Since(start).Round(time.Millisecond)))
	}
	return nil
}

// Rename renames database from to to, through conn (connected to another
// database). It refuses when to exists or when anyone is still connected to
// from after a few seconds (a session just closed, such as the one that
// marked the copy, takes a moment to end).
func Rename(ctx context.Context, conn *pgx.Conn, from, to string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", to).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("database %q already exists in the recovered cluster: choose another name with --as", to)
	}
	var others int
	for i := 0; ; i++ {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`, from).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			break
		}
		if i == 100 {
			return fmt.Errorf("%d sessions are still connected to database %q after 10s: it cannot be renamed while in use", others, from)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", pgx.Identifier{from}.Sanitize(), pgx.Identifier{to}.Sanitize())); err != nil {
		return fmt.Errorf("ALTER DATABASE %s RENAME TO %s: %w", pgx.Identifier{from}.Sanitize(), pgx.Identifier{to}.Sanitize(), err)
	}
	return nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
