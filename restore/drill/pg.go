package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/walvault/walvault/restore/filestorefetch"
	"github.com/walvault/walvault/restore/scratch"
)

// connect opens a connection to database db ("" is the maintenance
// database: postgres, else template1) over the server's socket.
func (d *drill) connect(ctx context.Context, db string, timeout time.Duration) (*pgx.Conn, error) {
	return d.srv.Connect(ctx, d.dbUser, db, timeout)
}

// newestCommit returns the time of the newest recovered commit: the last
// transaction replay applied (it stays after promotion), else, with
// track_commit_timestamp, the newest commit time the cluster knows (when
// recovery replayed no transaction, the newest in the backup). source says
// which, or why there is none.
func newestCommit(ctx context.Context, conn *pgx.Conn) (*time.Time, string) {
	var replay *time.Time
	var track string
	if err := conn.QueryRow(ctx, "SELECT pg_last_xact_replay_timestamp(), current_setting('track_commit_timestamp')").Scan(&replay, &track); err != nil {
		return nil, "unknown: " + err.Error()
	}
	if replay != nil {
		return replay, "pg_last_xact_replay_timestamp()"
	}
	if track == "on" {
		var ts *time.Time
		if err := conn.QueryRow(ctx, "SELECT (pg_last_committed_xact()).timestamp").Scan(&ts); err == nil && ts != nil {
			return ts, "pg_last_committed_xact()"
		}
	}
	return nil, "no transaction was replayed, and track_commit_timestamp is off: the newest commit's time is unknown"
}

// amcheck runs pg_amcheck --all on the promoted server.
func (d *drill) amcheck(ctx context.Context) {
	prog := scratch.FindProgram(d.opts.BinDir, "pg_amcheck")
	if prog == "" {
		d.rep.Add("pg_amcheck", Skip, 0, "skipped: pg_amcheck not installed (it comes with the PostgreSQL 14+ client programs)")
		return
	}
	start := d.now()
	cctx, cancel := context.WithTimeout(ctx, d.opts.CheckTimeout)
	defer cancel()
	// --install-missing creates the amcheck extension in each database of
	// the scratch copy, which is thrown away.
	cmd := exec.CommandContext(cctx, prog, "--all", "--install-missing", "--no-password",
		"-h", d.srv.Sock, "-p", strconv.Itoa(d.srv.Port), "-U", d.dbUser)
	cmd.Env = append(scratch.ServerEnv(), "PGAPPNAME=walvault-drill", "PGSSLMODE=disable")
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	switch {
	case err == nil:
		d.rep.Add("pg_amcheck", Pass, d.now().Sub(start), "pg_amcheck --all found no corruption in any database")
	case cctx.Err() != nil && ctx.Err() == nil:
		d.rep.Add("pg_amcheck", Fail, d.now().Sub(start), fmt.Sprintf("pg_amcheck did not finish within %s (--check-timeout)", d.opts.CheckTimeout))
	default:
		d.rep.Add("pg_amcheck", Fail, d.now().Sub(start), fmt.Sprintf("pg_amcheck --all: %v: %s", err, lastLines(text, 15)))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// databases lists the databases that accept connections, templates aside.
func (d *drill) databases(ctx context.Context) ([]string, error) {
	conn, err := d.connect(ctx, "", 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// odooChecks checks every database that looks like Odoo's.
func (d *drill) odooChecks(ctx context.Context) {
	start := d.now()
	dbs, err := d.databases(ctx)
	if err != nil {
		d.rep.Add("odoo", Fail, d.now().Sub(start), "cannot list the databases: "+err.Error())
		return
	}
	found := 0
	for _, db := range dbs {
		if ctx.Err() != nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, d.opts.CheckTimeout)
		n := d.odooDatabase(cctx, db)
		cancel()
		found += n
	}
	if found == 0 {
		d.rep.Add("odoo", Skip, d.now().Sub(start), fmt.Sprintf("no database looks like Odoo's (none of %d has ir_module_module)", len(dbs)))
	}
}

// odooDatabase runs the Odoo checks on db if it has ir_module_module; it
// returns 1 if it did, else 0.
func (d *drill) odooDatabase(ctx context.Context, db string) int {
	start := d.now()
	prefix := "odoo:" + db + ":"
	conn, err := d.connect(ctx, db, 10*time.Second)
	if err != nil {
		d.rep.Add(prefix+"connect", Fail, d.now().Sub(start), err.Error())
		return 1
	}
	defer conn.Close(context.Background())
	var isOdoo, hasAttachments bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('ir_module_module') IS NOT NULL, to_regclass('ir_attachment') IS NOT NULL`).Scan(&isOdoo, &hasAttachments); err != nil {
		d.rep.Add(prefix+"connect", Fail, d.now().Sub(start), err.Error())
		return 1
	}
	if !isOdoo {
		return 0
	}

	t := d.now()
	var users int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM res_users").Scan(&users); err != nil {
		d.rep.Add(prefix+"res_users", Fail, d.now().Sub(t), "SELECT count(*) FROM res_users: "+err.Error())
	} else if users == 0 {
		d.rep.Add(prefix+"res_users", Fail, d.now().Sub(t), "res_users has no rows: nobody could log in")
	} else {
		d.rep.Add(prefix+"res_users", Pass, d.now().Sub(t), fmt.Sprintf("%d users", users))
	}

	t = d.now()
	var state *string
	err = conn.QueryRow(ctx, "SELECT state FROM ir_module_module WHERE name = 'base'").Scan(&state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		d.rep.Add(prefix+"base_installed", Fail, d.now().Sub(t), "ir_module_module has no row for module base")
	case err != nil:
		d.rep.Add(prefix+"base_installed", Fail, d.now().Sub(t), "ir_module_module: "+err.Error())
	case state == nil || *state != "installed":
		s := "NULL"
		if state != nil {
			s = *state
		}
		d.rep.Add(prefix+"base_installed", Fail, d.now().Sub(t), "module base is in state "+s+", not installed")
	default:
		d.rep.Add(prefix+"base_installed", Pass, d.now().Sub(t), "module base is installed")
	}

	t = d.now()
	if !hasAttachments {
		d.rep.Add(prefix+"filestore", Fail, d.now().Sub(t), "ir_attachment is missing")
		return 1
	}
	status, msg := d.filestoreCheck(ctx, conn, db)
	d.rep.Add(prefix+"filestore", status, d.now().Sub(t), msg)
	return 1
}

// filestoreCheck checks that every file the recovered database references
// (ir_attachment.store_fname) is in the repository, and downloads a sample
// of them, checked against their SHA-1, into the scratch directory.
func (d *drill) filestoreCheck(ctx context.Context, conn *pgx.Conn, db string) (Status, string) {
	refs, err := filestorefetch.Referenced(ctx, conn)
	if err != nil {
		return Fail, err.Error()
	}
	if d.fsObjects == nil {
		objs, err := d.r.FilestoreObjects(ctx)
		if err != nil {
			return Fail, err.Error()
		}
		dbs, err := d.r.FilestoreDBs(ctx)
		if err != nil {
			return Fail, err.Error()
		}
		d.fsObjects, d.fsDBs = objs, make(map[string]bool)
		for _, name := range dbs {
			d.fsDBs[name] = true
		}
	}
	if len(refs) == 0 {
		return Pass, "no attachment is stored in the filestore"
	}
	if !d.fsDBs[db] {
		return Skip, fmt.Sprintf("%d attachments reference files in the filestore (ir_attachment.store_fname); the files were not checked: the repository holds no filestore of database %s (run walvault filestore push for it)", len(refs), db)
	}
	var missing []string
	for _, ref := range refs {
		if _, ok := d.fsObjects[ref.StoreFname]; !ok {
			missing = append(missing, ref.StoreFname)
		}
	}
	if len(missing) > 0 {
		shown := missing[:min(len(missing), 10)]
		more := ""
		if len(missing) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(missing)-len(shown))
		}
		return Fail, fmt.Sprintf("%d of the %d files the database references are not in the repository: %s%s (restore --odoo-filestore would leave these attachments broken; is walvault filestore push running?)",
			len(missing), len(refs), strings.Join(shown, ", "), more)
	}
	sample := refs
	n := d.opts.FilestoreSample
	if n == 0 {
		return Pass, fmt.Sprintf("all %d files the database references are in the repository (none downloaded: --filestore-sample 0)", len(refs))
	}
	if n > 0 && len(refs) > n {
		sample = make([]filestorefetch.Ref, len(refs))
		copy(sample, refs)
		rand.Shuffle(len(sample), func(i, j int) { sample[i], sample[j] = sample[j], sample[i] })
		sample = sample[:n]
	}
	dir := filepath.Join(d.dirs.Scratch, "filestore", db)
	rep, err := filestorefetch.Fetch(ctx, d.r, sample, dir, filestorefetch.FetchOptions{})
	os.RemoveAll(filepath.Join(d.dirs.Scratch, "filestore"))
	if err != nil {
		detail := err.Error()
		if rep != nil && len(rep.Missing)+len(rep.Unusable) > 0 {
			var ps []string
			for _, m := range rep.Missing {
				ps = append(ps, m.StoreFname+": not in the repository")
			}
			for _, u := range rep.Unusable {
				ps = append(ps, u.StoreFname+": "+u.Reason)
			}
			detail = strings.Join(ps[:min(len(ps), 10)], "; ")
		}
		return Fail, fmt.Sprintf("all %d referenced files are in the repository, but of %d downloaded: %s", len(refs), len(sample), detail)
	}
	return Pass, fmt.Sprintf("all %d files the database references are in the repository; %d downloaded and checked against their SHA-1", len(refs), len(sample))
}

// customChecks runs the check file's queries.
func (d *drill) customChecks(ctx context.Context) {
	for _, c := range d.opts.Checks {
		if ctx.Err() != nil {
			return
		}
		start := d.now()
		st, reason := d.customCheck(ctx, c)
		d.rep.Add("sql:"+c.Name, st, d.now().Sub(start), reason)
	}
}

func (d *drill) customCheck(ctx context.Context, c SQLCheck) (Status, string) {
	db := c.Database
	if db == "" {
		db = DefaultCheckDatabase
	}
	cctx, cancel := context.WithTimeout(ctx, d.opts.CheckTimeout)
	defer cancel()
	conn, err := d.connect(cctx, db, 10*time.Second)
	if err != nil {
		return Fail, fmt.Sprintf("database %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(cctx, c.SQL)
	if err != nil {
		return Fail, err.Error()
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	if len(fields) == 0 {
		rows.Close()
		if err := rows.Err(); err != nil {
			return Fail, err.Error()
		}
		return Fail, "the statement returns no columns; a check is a query whose first column is true when it passes"
	}
	if fields[0].DataTypeOID != pgtype.BoolOID {
		rows.Close()
		if err := rows.Err(); err != nil {
			return Fail, err.Error()
		}
		return Fail, fmt.Sprintf("the first column (%s) is not boolean; a check passes when a row's first column is true", fields[0].Name)
	}
	n := 0
	for rows.Next() {
		n++
		var ok *bool
		vals, err := rows.Values()
		if err != nil {
			return Fail, err.Error()
		}
		if b, isBool := vals[0].(bool); isBool {
			ok = &b
		}
		if ok != nil && *ok {
			rows.Close()
			return Pass, fmt.Sprintf("row %d has true in column %s", n, fields[0].Name)
		}
	}
	if err := rows.Err(); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return Fail, fmt.Sprintf("did not finish within %s (--check-timeout)", d.opts.CheckTimeout)
		}
		return Fail, err.Error()
	}
	if n == 0 {
		return Fail, "the query returned no rows"
	}
	return Fail, fmt.Sprintf("the query returned %d rows, none with true in its first column (%s)", n, fields[0].Name)
}
