package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dbConn connects to database db of the cluster.
func dbConn(t testing.TB, c *Cluster, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.role(), c.Port, db))
	if err != nil {
		t.Fatalf("connect to %s/%s: %v", c.Name, db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// dbExec runs statements in database db.
func dbExec(t testing.TB, c *Cluster, db string, sql ...string) {
	t.Helper()
	conn := dbConn(t, c, db)
	for _, s := range sql {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s/%s: %s: %v", c.Name, db, s, err)
		}
	}
	conn.Close(context.Background())
}

// dbInts returns the first column of every row of a query in database db.
func dbInts(t testing.TB, c *Cluster, db, sql string) []int64 {
	t.Helper()
	conn := dbConn(t, c, db)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s/%s: %s: %v", c.Name, db, sql, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("%s/%s: %s: %v", c.Name, db, sql, err)
	}
	return ids
}

// databases lists the cluster's databases, templates aside.
func databases(t testing.TB, c *Cluster) []string {
	t.Helper()
	conn := dbConn(t, c, "postgres")
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// commitAppMarks commits rows first..last into app.marks, one transaction
// each, and returns their commit times.
func commitAppMarks(t testing.TB, c *Cluster, db string, first, last int) []time.Time {
	t.Helper()
	conn := dbConn(t, c, db)
	defer conn.Close(context.Background())
	var times []time.Time
	for id := first; id <= last; id++ {
		if id > first {
			time.Sleep(100 * time.Millisecond)
		}
		var xid string
		if err := conn.QueryRow(context.Background(), "INSERT INTO marks VALUES ($1, 'mark') RETURNING xmin::text", id).Scan(&xid); err != nil {
			t.Fatal(err)
		}
		var ts time.Time
		if err := conn.QueryRow(context.Background(), "SELECT pg_xact_commit_timestamp($1::text::xid)", xid).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		times = append(times, ts)
	}
	return times
}

// waitPastBackupStop waits until the clock has passed the newest backup's
// recorded stop time, which the recoverable window starts from (it is
// rounded up by up to a second): commits after that can be targets.
func waitPastBackupStop(t testing.TB, wv *Walvault) {
	t.Helper()
	info := wv.Info()
	if info.Recoverable == nil {
		t.Fatal("info shows no recoverable window after a backup")
	}
	stop, err := time.Parse(time.RFC3339Nano, info.Recoverable.From)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backup's stop time to pass", time.Minute, func() (bool, error) {
		return time.Now().After(stop.Add(10 * time.Millisecond)), nil
	})
}

// controlState is "Database cluster state" of pg_controldata.
func controlState(t testing.TB, h *Harness, dir string) string {
	t.Helper()
	out := h.runPG(time.Minute, []string{"LC_ALL=C"}, "pg_controldata", dir)
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Database cluster state" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("pg_controldata %s has no cluster state:\n%s", dir, out)
	return ""
}

// TestRestoreSteps: restore with post-recovery steps. --db app --as
// app_restored recovers to a time between two commits, renames the
// database, marks it as a restored copy and stops the server cleanly, so
// that it starts normally afterwards on the same directory with exactly
// the rows committed by the target. Steps with --target-action pause are
// refused before anything is written, and a failing step (renaming onto a
// database that exists) stops the server and keeps the data directory,
// saying which step failed and how to rerun it.
func TestRestoreSteps(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	pg.Exec("CREATE DATABASE app")
	pg.Exec("CREATE DATABASE other")
	dbExec(t, pg, "app",
		"CREATE TABLE marks (id int PRIMARY KEY, note text NOT NULL)",
		// The Odoo table the restored copy is marked in.
		"CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL, create_uid int, create_date timestamp, write_uid int, write_date timestamp)",
		"INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', 'abc')")
	wv.MustRun("backup", "--fast")
	waitPastBackupStop(t, wv)
	times := commitAppMarks(t, pg, "app", 1, 10)
	pg.SwitchAndWaitArchived()
	const k = 6
	target := times[k-1].Add(times[k].Sub(times[k-1]) / 2).UTC().Format(time.RFC3339Nano)
	pg.Stop("fast")

	t.Run("as", func(t *testing.T) {
		dir := h.Path("restored-as")
		restore, owner := wv, []string(nil)
		if suite.pgUser != nil {
			// As root: the server runs as --owner.
			restore, owner = wv.AsCurrentUser(), []string{"--owner", suite.pgUser.Name}
		}
		out := restore.MustRun(append([]string{"restore", "--pgdata", dir, "--target-time", target, "--db", "app", "--as", "app_restored"}, owner...)...)
		for _, want := range []string{"server promoted", "database app marked as a restored copy", "database app renamed to app_restored", "fast shutdown"} {
			if !strings.Contains(out, want) {
				t.Errorf("restore output lacks %q:\n%s", want, out)
			}
		}
		if st := controlState(t, h, dir); st != "shut down" {
			t.Errorf("cluster state after restore %q, want shut down (a clean stop)", st)
		}
		for _, name := range []string{"recovery.signal", "walvault-recovery.conf", "postmaster.pid"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("%s left in the data directory", name)
			}
		}
		if _, err := os.Stat(dir + ".walvault-recovery"); err == nil {
			t.Errorf("the recovery directory %s.walvault-recovery is left after the steps", dir)
		}
		rc := h.ClusterAt("restored-as", dir)
		rc.Start()
		if got := databases(t, rc); strings.Join(got, ",") != "app_restored,other,postgres" {
			t.Errorf("databases after restore --as: %v", got)
		}
		if got := dbInts(t, rc, "app_restored", "SELECT id::bigint FROM marks ORDER BY id"); !equalInts(got, seq(1, k)) {
			t.Errorf("recovered marks %v, want exactly %v", got, seq(1, k))
		}
		var raw string
		if err := dbConn(t, rc, "app_restored").QueryRow(context.Background(), "SELECT value FROM ir_config_parameter WHERE key = 'walvault.restored_copy'").Scan(&raw); err != nil {
			t.Fatalf("restored copy not marked: %v", err)
		}
		var info struct {
			Database, Backup, Target string
		}
		if err := json.Unmarshal([]byte(raw), &info); err != nil || info.Database != "app" || info.Backup == "" || !strings.Contains(info.Target, "time ") {
			t.Errorf("walvault.restored_copy = %s (%v)", raw, err)
		}
		if inRec := rc.QueryString("SELECT pg_is_in_recovery()::text"); inRec != "false" {
			t.Errorf("restored server in recovery: %s", inRec)
		}
		rc.Stop("fast")
	})

	t.Run("pause refused", func(t *testing.T) {
		dir := h.Path("restored-pause")
		_, stderr := wv.RunExpect(2, "restore", "--pgdata", dir, "--target-time", target, "--target-action", "pause", "--db", "app", "--as", "x")
		if !strings.Contains(stderr, "--target-action pause cannot be combined with --as") {
			t.Errorf("refusal does not say why:\n%s", stderr)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("the refused restore made %s", dir)
		}
	})

	t.Run("failing step", func(t *testing.T) {
		dir := h.Path("restored-fail")
		_, stderr := wv.RunExpect(1, "restore", "--pgdata", dir, "--target-time", target, "--db", "app", "--as", "other")
		for _, want := range []string{"step rename failed", `database "other" already exists`, "is kept", `ALTER DATABASE "app" RENAME TO "other"`, dir} {
			if !strings.Contains(stderr, want) {
				t.Errorf("failure message lacks %q:\n%s", want, stderr)
			}
		}
		if st := controlState(t, h, dir); st != "shut down" {
			t.Errorf("cluster state after the failed step %q, want shut down", st)
		}
		rc := h.ClusterAt("restored-fail", dir)
		rc.Start()
		if got := dbInts(t, rc, "app", "SELECT id::bigint FROM marks ORDER BY id"); !equalInts(got, seq(1, k)) {
			t.Errorf("kept directory: marks %v, want %v", got, seq(1, k))
		}
		rc.Stop("fast")
	})
}
