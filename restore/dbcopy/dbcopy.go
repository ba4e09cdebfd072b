package dbcopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walvault/walvault/internal/connstr"
	"github.com/walvault/walvault/restore/scratch"
	"github.com/walvault/walvault/restore/steps"
)

var (
	// ErrExists: the new database name is taken on the target server.
	ErrExists = errors.New("database exists on the target server")
	// ErrNoClient: pg_dump and pg_restore of a usable version are not
	// installed.
	ErrNoClient = errors.New("pg_dump/pg_restore not found")
	// ErrConnect: the target server cannot be reached or refuses the
	// connection.
	ErrConnect = errors.New("cannot connect to the target server")
	// ErrNoDatabase: the recovered cluster has no database of that name.
	ErrNoDatabase = errors.New("no such database in the recovered cluster")
	// ErrPasswordInArgs: the connection string holds a password.
	ErrPasswordInArgs = errors.New("password in the connection string")
)

// Options configure Run.
type Options struct {
	// Database is the database to copy out of the recovered cluster;
	// NewName its name on the target server.
	Database, NewName string
	// Into is the target server: a libpq URL or key=value string, without
	// a password (PGPASSWORD, ~/.pgpass).
	Into string
	// ScratchParent is where the scratch directory is made ("" is $TMPDIR).
	ScratchParent string
	// BinDir holds the server programs of the repository's version; Major
	// is that version.
	BinDir string
	Major  int
	// Account runs the scratch server. DBUser is the role used on it;
	// without it: the cluster's bootstrap superuser, else the first of
	// FallbackRoles and the account's name that exists (scratch.Roles).
	Account       *scratch.Account
	DBUser        string
	FallbackRoles []string
	// Recover writes the recovered cluster into pgdata (pitr.Run with
	// target action promote) and says what it restored, for the output.
	Recover func(ctx context.Context, pgdata string) (string, error)
	// ServerEnv is added to the scratch server's environment: what its
	// restore_command needs that is in no file (S3 credentials).
	ServerEnv []string
	// Steps run on the new database, on the target server, after the
	// copy (the restored-copy mark first, when Mark is set).
	Steps []steps.Step
	// Timeout bounds the wait for recovery (default 1h).
	Timeout time.Duration
	Logger  *slog.Logger
	// Out receives a line per action as it completes (may be nil).
	Out io.Writer
	// Progress shows the recovery and copy phases (may be nil). Lines go
	// to Out only between phases.
	Progress Progress
}

// Progress is what Run reports progress to (internal/progress.Reporter).
type Progress interface {
	Start(phase string, total int64)
	Add(n int64)
	Done()
}

type noProgress struct{}

func (noProgress) Start(string, int64) {}
func (noProgress) Add(int64)           {}
func (noProgress) Done()               {}

// countingWriter reports the bytes written through it.
type countingWriter struct {
	w io.Writer
	p Progress
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.Add(int64(n))
	return n, err
}

// Result says what Run did.
type Result struct {
	Tables   int
	Rows     int64
	NoOwner  bool
	Owner    string
	Duration time.Duration
	// CopyDuration is pg_dump | pg_restore alone.
	CopyDuration time.Duration
}

// Client are the pg_dump and pg_restore programs used.
type Client struct{ PGDump, PGRestore, Version string }

// Preflight checks what can be checked before any work: the target
// connection (and that it carries no password), the new name, the client
// programs. It returns the client programs.
func Preflight(ctx context.Context, opts Options) (*Client, error) {
	if err := noPassword(opts.Into); err != nil {
		return nil, err
	}
	cl, err := FindClient(opts.BinDir, opts.Major)
	if err != nil {
		return nil, err
	}
	conn, err := connectTarget(ctx, opts.Into, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", opts.NewName).Scan(&exists); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConnect, err)
	}
	if exists {
		return nil, fmt.Errorf("%w: %q is already a database on the target server; choose another name with --as (nothing was restored)", ErrExists, opts.NewName)
	}
	return cl, nil
}

// noPassword refuses a connection string that holds a password.
func noPassword(conn string) error {
	if connstr.HasPassword(conn) {
		return fmt.Errorf("%w: --into must not hold the password (it would show in process listings): use PGPASSWORD or ~/.pgpass", ErrPasswordInArgs)
	}
	return nil
}

// withDatabase returns the connection string conn pointing at database db.
func withDatabase(conn, db string) string {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		if u, err := url.Parse(conn); err == nil {
			u.Path = "/" + db
			u.RawPath = ""
			// A dbname query parameter wins over the path in libpq and
			// pgx (pgx also takes "database"): left in, it would send
			// pg_restore into that database, e.g. the live postgres.
			if q := u.Query(); q.Has("dbname") || q.Has("database") {
				q.Del("dbname")
				q.Del("database")
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	// In a key=value string the last value of a keyword wins.
	return strings.TrimSpace(conn) + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"
}

// connectTarget connects to the target server (database db, "" as in the
// connection string).
func connectTarget(ctx context.Context, conn, db string) (*pgx.Conn, error) {
	s := conn
	if db != "" {
		s = withDatabase(conn, db)
	}
	cfg, err := pgx.ParseConfig(s)
	if err != nil {
		return nil, fmt.Errorf("%w: --into cannot be parsed: give a libpq URL or key=value string", ErrConnect)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		msg := err.Error()
		if cfg.Password != "" {
			msg = strings.ReplaceAll(msg, cfg.Password, "********")
		}
		return nil, fmt.Errorf("%w (--into, database %s): %s", ErrConnect, cfg.Database, msg)
	}
	return c, nil
}

var clientVersionRe = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// FindClient finds pg_dump and pg_restore of major or newer: in binDir,
// then /usr/lib/postgresql/<N>/bin for N from major up, then on PATH.
func FindClient(binDir string, major int) (*Client, error) {
	var dirs []string
	if binDir != "" {
		dirs = append(dirs, binDir)
	}
	for n := major; n <= major+10; n++ {
		dirs = append(dirs, filepath.Join("/usr/lib/postgresql", strconv.Itoa(n), "bin"))
	}
	if p, err := exec.LookPath("pg_dump"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	var tried []string
	for _, d := range dirs {
		dump, rest := filepath.Join(d, "pg_dump"), filepath.Join(d, "pg_restore")
		if _, err := os.Stat(dump); err != nil {
			tried = append(tried, d)
			continue
		}
		if _, err := os.Stat(rest); err != nil {
			tried = append(tried, d)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, dump, "--version").Output()
		cancel()
		m := clientVersionRe.FindSubmatch(out)
		if err != nil || m == nil {
			tried = append(tried, d+" (unreadable version)")
			continue
		}
		v, _ := strconv.Atoi(string(m[1]))
		if v < major {
			tried = append(tried, fmt.Sprintf("%s (PostgreSQL %d, older than the repository's %d)", d, v, major))
			continue
		}
		return &Client{PGDump: dump, PGRestore: rest, Version: strconv.Itoa(v)}, nil
	}
	return nil, fmt.Errorf("%w: pg_dump and pg_restore of PostgreSQL %d or newer are needed to copy the database; looked in %s and on PATH; install postgresql-client-%d (Debian/Ubuntu; apt.postgresql.org for versions your release lacks)",
		ErrNoClient, major, strings.Join(tried, ", "), major)
}

// Run copies the database. See the package documentation.
func Run(ctx context.Context, opts Options) (res *Result, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Hour
	}
	if opts.Progress == nil {
		opts.Progress = noProgress{}
	}
	start := time.Now()
	res = &Result{}
	cl, err := Preflight(ctx, opts)
	if err != nil {
		return res, err
	}

	dir, err := os.MkdirTemp(opts.ScratchParent, "walvault-dbcopy-")
	if err != nil {
		return res, fmt.Errorf("scratch directory: %w (choose another place with --scratch)", err)
	}
	log.Info("scratch directory", "dir", dir)
	var sess *scratch.Session
	defer func() {
		// Always: the scratch copy is thrown away, also on failure or
		// interruption.
		if sess != nil {
			_ = sess.Stop()
		} else if n := scratch.ReapStrays(nil); n > 0 {
			log.Info("ended processes left by restore_command", "count", n)
		}
		if rerr := os.RemoveAll(dir); rerr != nil {
			log.Warn("could not remove the scratch directory", "dir", dir, "err", rerr)
		} else {
			fmt.Fprintf(out, "scratch directory %s removed\n", dir)
		}
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted (SIGINT or SIGTERM): the scratch server was stopped and the scratch directory removed: %w", err)
		}
	}()
	if err := opts.Account.Chown(dir); err != nil {
		return res, err
	}
	scratch.BecomeSubreaper() // before restore_command can leave a prefetcher
	pgdata := filepath.Join(dir, "data")
	what, err := opts.Recover(ctx, pgdata)
	if err != nil {
		return res, fmt.Errorf("recover the cluster into the scratch directory %s: %w", dir, err)
	}
	fmt.Fprintln(out, what)
	t := time.Now()
	opts.Progress.Start("recovery", -1)
	sess, err = scratch.Recover(ctx, scratch.SessionOptions{
		Server: scratch.Config{
			BinDir:      opts.BinDir,
			PGData:      pgdata,
			RunDir:      dir,
			Account:     opts.Account,
			ClusterName: "walvault-dbcopy",
			Env:         opts.ServerEnv,
			Logger:      log,
		},
		Wait: scratch.WaitOptions{
			Users:   scratch.Roles(opts.DBUser, pgdata, append(opts.FallbackRoles, opts.Account.Name)...),
			Timeout: opts.Timeout,
		},
		StopTimeout: time.Minute, // the scratch copy is thrown away
	})
	opts.Progress.Done()
	if sess == nil {
		return res, fmt.Errorf("start the recovered server: %w", err)
	}
	if err != nil {
		return res, fmt.Errorf("recovery in the scratch directory did not complete: %w", err)
	}
	srv := sess.Server()
	opts.DBUser = sess.Role()
	fmt.Fprintf(out, "recovery reached the target and the scratch server promoted (%s); connected as role %s\n", time.Since(t).Round(time.Millisecond), opts.DBUser)

	src, err := sourceInfo(ctx, srv, opts)
	if err != nil {
		return res, err
	}
	// Counted here, on the private scratch server: exact, and neither
	// the live server's work nor the time before the steps run on the
	// copy (a count(*) of every table) grows with it.
	if res.Tables, res.Rows, err = countSource(ctx, srv, opts); err != nil {
		return res, fmt.Errorf("count the rows to copy: %w", err)
	}
	target, err := connectTarget(ctx, opts.Into, "")
	if err != nil {
		return res, err
	}
	defer target.Close(context.Background())
	var ownerExists bool
	var targetVersion int
	if err := target.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1), current_setting('server_version_num')::int", src.owner).Scan(&ownerExists, &targetVersion); err != nil {
		return res, fmt.Errorf("%w: %v", ErrConnect, err)
	}
	res.Owner, res.NoOwner = src.owner, !ownerExists
	// The copy belongs to the connecting role, closed to other roles,
	// until the steps ran: a live Odoo runs its scheduled actions (mail,
	// payments) in every database its role owns or opens, and the copy is
	// not neutralized yet. handOver gives it to the original owner at the
	// end.
	create := createDatabaseSQL(opts.NewName, src)
	if _, err := target.Exec(ctx, create); err != nil {
		var exists bool
		if qerr := target.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", opts.NewName).Scan(&exists); qerr == nil && exists {
			return res, fmt.Errorf("%w: %q was created on the target server while walvault recovered the cluster; choose another name with --as", ErrExists, opts.NewName)
		}
		return res, fmt.Errorf("on the target server: %s: %w", create, err)
	}
	created := true
	defer func() {
		if err != nil && created {
			// A half-made copy helps nobody: drop what this run created.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if _, derr := target.Exec(dctx, dropDatabaseSQL(opts.NewName, targetVersion)); derr != nil {
				err = fmt.Errorf("%w\nthe partly copied database %s could not be dropped (%v): drop it by hand", err, opts.NewName, derr)
			} else {
				err = fmt.Errorf("%w\nthe partly copied database %s was dropped", err, opts.NewName)
			}
		}
	}()
	if _, err := target.Exec(ctx, "REVOKE CONNECT ON DATABASE "+pgx.Identifier{opts.NewName}.Sanitize()+" FROM PUBLIC"); err != nil {
		return res, fmt.Errorf("on the target server: close the new database %s to other roles: %w", opts.NewName, err)
	}
	if res.NoOwner {
		fmt.Fprintf(out, "role %s (the owner of %s) does not exist on the target server: the copy belongs to the connecting role (pg_restore --no-owner --no-privileges)\n", src.owner, opts.Database)
	}
	fmt.Fprintf(out, "copying database %s into %s on the target server (pg_dump | pg_restore, PostgreSQL %s client)\n", opts.Database, opts.NewName, cl.Version)
	t = time.Now()
	opts.Progress.Start("copy", -1)
	err = pipe(ctx, cl, srv, opts, res.NoOwner)
	opts.Progress.Done()
	if err != nil {
		return res, err
	}
	res.CopyDuration = time.Since(t)

	fmt.Fprintf(out, "copied %d tables, %d rows in %s\n", res.Tables, res.Rows, res.CopyDuration.Round(time.Millisecond))

	conn, err := connectTarget(ctx, opts.Into, opts.NewName)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.Background())
	if err := steps.RunSteps(ctx, conn, opts.Steps, func(s string) { fmt.Fprintln(out, s) }); err != nil {
		var se *steps.StepError
		if errors.As(err, &se) && se.KeepCopy {
			// The copy is complete and safe: keep it, say which step failed.
			created = false
			if herr := handOver(ctx, target, opts.NewName, src.owner, ownerExists, out); herr != nil {
				return res, fmt.Errorf("%w: step %s failed on the copy %s: %w; the copy is kept; run the step alone with:\n  %s\n%w", steps.ErrStep, se.Step, opts.NewName, se.Err, se.Rerun, herr)
			}
			return res, fmt.Errorf("%w: step %s failed on the copy %s: %w; the copy is kept; run the step alone with:\n  %s", steps.ErrStep, se.Step, opts.NewName, se.Err, se.Rerun)
		}
		if se != nil {
			// Not marked, neutralized or anonymised as asked: a copy
			// that must not stay on a live server (dropped on return).
			return res, fmt.Errorf("%w: step %s failed on the copy %s: %w; the copy is dropped", steps.ErrStep, se.Step, opts.NewName, se.Err)
		}
		return res, err
	}
	// The copy is complete and the steps ran: a failure to hand it over
	// keeps it, closed to other roles.
	created = false
	if err := handOver(ctx, target, opts.NewName, src.owner, ownerExists, out); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// handOver gives the finished copy name to owner (when that role exists
// on the target server) and opens it to connections again, in one
// transaction.
func handOver(ctx context.Context, target *pgx.Conn, name, owner string, ownerExists bool, out io.Writer) error {
	db := pgx.Identifier{name}.Sanitize()
	stmts := []string{"GRANT CONNECT ON DATABASE " + db + " TO PUBLIC"}
	if ownerExists {
		stmts = append(stmts, "ALTER DATABASE "+db+" OWNER TO "+pgx.Identifier{owner}.Sanitize())
	}
	err := pgx.BeginFunc(ctx, target, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("on the target server: %w; the copy %s is kept, owned by the connecting role and closed to other roles; to hand it over run:\n  %s", err, name, strings.Join(stmts, ";\n  "))
	}
	if ownerExists {
		fmt.Fprintf(out, "copy %s handed to its original owner %s and opened to connections\n", name, owner)
	}
	return nil
}

type source struct {
	// provider is pg_database.datlocprovider: c (libc), i (ICU), b
	// (builtin, PostgreSQL 17+); locale its locale (ICU or builtin).
	encoding, collate, ctype, provider, locale, owner string
}

// sourceQuery reads a database's encoding, locale and owner on a server
// of version num (server_version_num): the locale provider came in 15
// (daticulocale), which 17 renamed datlocale when it added the builtin
// provider.
func sourceQuery(num int) string {
	provider := "'c', ''"
	switch {
	case num >= 170000:
		provider = "datlocprovider::text, coalesce(datlocale, '')"
	case num >= 150000:
		provider = "datlocprovider::text, coalesce(daticulocale, '')"
	}
	return `SELECT pg_encoding_to_char(encoding), datcollate, datctype, ` + provider + `, pg_get_userbyid(datdba)
		FROM pg_database WHERE datname = $1`
}

// createDatabaseSQL creates name with src's encoding and locale.
func createDatabaseSQL(name string, src *source) string {
	create := fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s",
		pgx.Identifier{name}.Sanitize(), literal(src.encoding), literal(src.collate), literal(src.ctype))
	switch src.provider {
	case "i":
		create += " LOCALE_PROVIDER icu ICU_LOCALE " + literal(src.locale)
	case "b":
		create += " LOCALE_PROVIDER builtin BUILTIN_LOCALE " + literal(src.locale)
	}
	return create
}

// sourceInfo reads the database's encoding, locale and owner on the
// scratch server.
func sourceInfo(ctx context.Context, srv *scratch.Server, opts Options) (*source, error) {
	conn, err := srv.Connect(ctx, opts.DBUser, "", 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var s source
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return nil, err
	}
	err = conn.QueryRow(ctx, sourceQuery(num), opts.Database).Scan(&s.encoding, &s.collate, &s.ctype, &s.provider, &s.locale, &s.owner)
	if errors.Is(err, pgx.ErrNoRows) {
		var names []string
		if rows, qerr := conn.Query(ctx, "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"); qerr == nil {
			names, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		return nil, fmt.Errorf("%w: %q; at the target it held %s", ErrNoDatabase, opts.Database, strings.Join(names, ", "))
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// dropDatabaseSQL drops name on a server of version num. From 13 on, WITH
// (FORCE) ends the sessions still in it: pg_restore's backend can go on
// with a CREATE INDEX for a while after pg_restore was killed, and a plain
// DROP would fail and leave the half-made copy behind.
func dropDatabaseSQL(name string, num int) string {
	drop := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
	if num >= 130000 {
		drop += " WITH (FORCE)"
	}
	return drop
}

// literal quotes a string as an SQL literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// pipe runs pg_dump -Fc on the scratch server into pg_restore on the target.
func pipe(ctx context.Context, cl *Client, srv *scratch.Server, opts Options, noOwner bool) error {
	dump := exec.CommandContext(ctx, cl.PGDump, "--format=custom", "--no-password",
		"--host", srv.Sock, "--port", strconv.Itoa(srv.Port), "--username", opts.DBUser, "--dbname", opts.Database)
	dump.Env = append(scratch.ServerEnv(), "PGAPPNAME=walvault-dbcopy", "PGSSLMODE=disable")
	args := []string{"--no-password", "--exit-on-error", "--dbname", withDatabase(opts.Into, opts.NewName)}
	if noOwner {
		args = append(args, "--no-owner", "--no-privileges")
	}
	rest := exec.CommandContext(ctx, cl.PGRestore, args...)
	// The target's libpq settings (PGPASSWORD, PGSSLMODE, ~/.pgpass) are
	// the user's: pg_restore keeps this process's environment.
	rest.Env = append(os.Environ(), "PGAPPNAME=walvault-dbcopy")
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	var dumpErr, restErr bytes.Buffer
	dump.Stdout, dump.Stderr = countingWriter{w, opts.Progress}, &dumpErr
	rest.Stdin, rest.Stdout, rest.Stderr = r, &restErr, &restErr
	dump.WaitDelay, rest.WaitDelay = 10*time.Second, 10*time.Second
	if err := rest.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start %s: %w", cl.PGRestore, err)
	}
	r.Close()
	if err := dump.Start(); err != nil {
		w.Close()
		_ = rest.Wait()
		return fmt.Errorf("start %s: %w", cl.PGDump, err)
	}
	// pg_dump's output reaches w through exec's copying goroutine (for
	// the byte count): w closes once Wait has finished that copy, which
	// ends pg_restore's input.
	derr := dump.Wait()
	w.Close()
	rerr := rest.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case derr != nil && rerr != nil:
		return fmt.Errorf("pg_dump of %s on the scratch server: %v: %s\npg_restore into %s on the target server: %v: %s", opts.Database, derr, lastLines(dumpErr.String(), 10),
			opts.NewName, rerr, lastLines(restErr.String(), 10))
	case derr != nil:
		return fmt.Errorf("pg_dump of %s on the scratch server: %v: %s", opts.Database, derr, lastLines(dumpErr.String(), 10))
	case rerr != nil:
		return fmt.Errorf("pg_restore into %s on the target server: %v: %s", opts.NewName, rerr, lastLines(restErr.String(), 10))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// countSource counts the tables of the database on the scratch server and
// their rows, exactly: what pg_dump copies, since nothing else writes there.
func countSource(ctx context.Context, srv *scratch.Server, opts Options) (int, int64, error) {
	conn, err := srv.Connect(ctx, opts.DBUser, opts.Database, 30*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	return countRows(ctx, conn)
}

// countRows counts the tables of a database and their rows exactly.
func countRows(ctx context.Context, conn *pgx.Conn) (int, int64, error) {
	rows, err := conn.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		ORDER BY 1`)
	if err != nil {
		return 0, 0, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, err
	}
	var total int64
	for _, t := range tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return 0, 0, err
		}
		total += n
	}
	return len(tables), total, nil
}
