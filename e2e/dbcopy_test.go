package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRestoreDatabase: one database brought back beside the live one. Two
// databases in the source cluster; rows of app deleted by mistake at a
// known time. restore --database app --target-time <before the delete>
// --into <the same running cluster> --as app_restored copies app as of
// the target: the deleted rows are back in the copy, the live app is
// untouched, the other database is not copied, the copy keeps app's owner
// and locale, and the scratch directory is gone. While the steps run
// (seen by a trigger on the table the restored-copy mark writes), the copy
// is not yet app's owner's, nor open to it: a live Odoo must not run its
// scheduled actions in a copy that is not neutralized yet. Into a second cluster
// without app's owner role, the copy belongs to the connecting role and
// the output says so. A name that exists is refused before any work
// (nothing downloaded, no scratch directory), and so is a password in
// --into.
func TestRestoreDatabase(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	pg.Exec("CREATE ROLE appowner")
	pg.Exec("CREATE DATABASE app OWNER appowner TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'")
	pg.Exec("CREATE DATABASE other")
	dbExec(t, pg, "app",
		"CREATE TABLE marks (id int PRIMARY KEY, note text NOT NULL)",
		"ALTER TABLE marks OWNER TO appowner",
		"CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL, create_uid int, create_date timestamp, write_uid int, write_date timestamp)",
		// An explicit database ACL (not copied without pg_restore --create).
		"GRANT CONNECT ON DATABASE app TO PUBLIC",
		// What the database looks like to Odoo's role when the mark step writes.
		"CREATE TABLE seen_at_mark (owner name NOT NULL, owner_can_connect bool NOT NULL)",
		`CREATE FUNCTION note_mark() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO seen_at_mark SELECT pg_get_userbyid(datdba),
				CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'appowner') THEN has_database_privilege('appowner', datname, 'CONNECT') ELSE false END
				FROM pg_database WHERE datname = current_database();
			RETURN NULL;
		END $$`,
		"CREATE TRIGGER note_mark AFTER INSERT OR UPDATE ON ir_config_parameter FOR EACH ROW EXECUTE FUNCTION note_mark()")
	dbExec(t, pg, "other", "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)")
	wv.MustRun("backup", "--fast")
	waitPastBackupStop(t, wv)
	times := commitAppMarks(t, pg, "app", 1, 10)
	// The mistake: rows 4..10 deleted, after a pause so that the target
	// falls between the last insert and the delete.
	time.Sleep(200 * time.Millisecond)
	dbExec(t, pg, "app", "DELETE FROM marks WHERE id > 3")
	pg.SwitchAndWaitArchived()
	target := times[9].Add(100 * time.Millisecond).UTC().Format(time.RFC3339Nano)

	scratchParent := h.Mkdir(h.Path("scratch"), 0o700)
	checkScratchEmpty := func(t *testing.T) {
		t.Helper()
		entries, err := os.ReadDir(scratchParent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			t.Errorf("scratch directory left behind in %s: %v", scratchParent, entries)
		}
	}

	t.Run("same cluster", func(t *testing.T) {
		out := wv.MustRun("restore", "--database", "app", "--target-time", target, "--into", pg.URL(), "--as", "app_restored", "--scratch", scratchParent)
		for _, want := range []string{"copied 3 tables, 10 rows", "copy app_restored handed to its original owner appowner", "database app restored as app_restored", "scratch directory"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if got := dbInts(t, pg, "app_restored", "SELECT id::bigint FROM marks ORDER BY id"); !equalInts(got, seq(1, 10)) {
			t.Errorf("the copy holds marks %v, want %v", got, seq(1, 10))
		}
		if got := dbInts(t, pg, "app", "SELECT id::bigint FROM marks ORDER BY id"); !equalInts(got, seq(1, 3)) {
			t.Errorf("the live database holds marks %v, want %v (untouched)", got, seq(1, 3))
		}
		if got := databases(t, pg); strings.Join(got, ",") != "app,app_restored,other,postgres" {
			t.Errorf("databases after the copy: %v (other must not be copied)", got)
		}
		var owner, collate, tableOwner, mark string
		conn := dbConn(t, pg, "app_restored")
		if err := conn.QueryRow(context.Background(), `SELECT pg_get_userbyid(datdba), datcollate FROM pg_database WHERE datname = current_database()`).Scan(&owner, &collate); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(context.Background(), `SELECT tableowner FROM pg_tables WHERE tablename = 'marks'`).Scan(&tableOwner); err != nil {
			t.Fatal(err)
		}
		if owner != "appowner" || tableOwner != "appowner" || collate != "C.UTF-8" {
			t.Errorf("copy owned by %s, marks by %s, collation %s; want appowner, appowner, C.UTF-8", owner, tableOwner, collate)
		}
		if err := conn.QueryRow(context.Background(), `SELECT value FROM ir_config_parameter WHERE key = 'walvault.restored_copy'`).Scan(&mark); err != nil || !strings.Contains(mark, `"database":"app"`) {
			t.Errorf("copy not marked as restored: %q %v", mark, err)
		}
		var markOwner string
		var ownerCould, ownerCan, publicCan bool
		if err := conn.QueryRow(context.Background(), `SELECT owner, owner_can_connect FROM seen_at_mark`).Scan(&markOwner, &ownerCould); err != nil {
			t.Fatalf("the mark step's write was not seen: %v", err)
		}
		if markOwner != "postgres" || ownerCould {
			t.Errorf("during the steps the copy was owned by %s, appowner could connect: %v; want postgres (the connecting role), false", markOwner, ownerCould)
		}
		if err := conn.QueryRow(context.Background(), `SELECT has_database_privilege('appowner', current_database(), 'CONNECT'), has_database_privilege('public', current_database(), 'CONNECT')`).Scan(&ownerCan, &publicCan); err != nil {
			t.Fatal(err)
		}
		if !ownerCan || !publicCan {
			t.Errorf("after the copy: appowner can connect %v, PUBLIC %v; want both", ownerCan, publicCan)
		}
		checkScratchEmpty(t)
	})

	t.Run("name exists", func(t *testing.T) {
		_, stderr := wv.RunExpect(5, "restore", "--database", "app", "--target-time", target, "--into", pg.URL(), "--as", "other", "--scratch", scratchParent)
		if !strings.Contains(stderr, `"other" is already a database on the target server`) || !strings.Contains(stderr, "nothing was restored") {
			t.Errorf("refusal does not say why:\n%s", stderr)
		}
		if strings.Contains(stderr, "restoring archive") {
			t.Errorf("the refused copy restored files first:\n%s", stderr)
		}
		checkScratchEmpty(t)
	})

	t.Run("no such database", func(t *testing.T) {
		// Known only once the cluster is recovered: the scratch directory
		// goes all the same.
		_, stderr := wv.RunExpect(1, "restore", "--database", "nosuch", "--target-time", target, "--into", pg.URL(), "--as", "nosuch_copy", "--scratch", scratchParent)
		if !strings.Contains(stderr, `no such database in the recovered cluster: "nosuch"`) || !strings.Contains(stderr, "app, other, postgres") {
			t.Errorf("error does not name the database and the ones there are:\n%s", stderr)
		}
		checkScratchEmpty(t)
	})

	t.Run("interrupted", func(t *testing.T) {
		cmd, out := wv.Start("restore", "--database", "app", "--target-time", target, "--into", pg.URL(), "--as", "app_interrupted", "--scratch", scratchParent)
		waitFor(t, "the scratch server to start", 2*time.Minute, func() (bool, error) {
			m, err := filepath.Glob(filepath.Join(scratchParent, "walvault-dbcopy-*", "postgres.log"))
			return len(m) > 0, err
		})
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		t.Logf("interrupted restore:\n%s", out)
		if err == nil || !strings.Contains(out.String(), "interrupted (SIGINT or SIGTERM)") {
			t.Errorf("interrupted copy: %v, output does not say it was interrupted:\n%s", err, out)
		}
		checkScratchEmpty(t)
		if got := databases(t, pg); slices.Contains(got, "app_interrupted") {
			t.Errorf("an interrupted copy left database app_interrupted")
		}
		// No server of the scratch directory is left running.
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), scratchParent) {
				t.Errorf("process left running: %s: %q", p, b)
			}
		}
	})

	t.Run("password in --into", func(t *testing.T) {
		_, stderr := wv.RunExpect(2, "restore", "--database", "app", "--target-time", target, "--into", "host=127.0.0.1 password=hunter2", "--scratch", scratchParent)
		if !strings.Contains(stderr, "PGPASSWORD") || strings.Contains(stderr, "hunter2") {
			t.Errorf("password refusal:\n%s", stderr)
		}
	})

	t.Run("second cluster without the owner role", func(t *testing.T) {
		pg2 := h.InitCluster("second")
		pg2.Start()
		out := wv.MustRun("restore", "--database", "app", "--target-time", target, "--into", pg2.URL(), "--scratch", scratchParent)
		name := "app_restored_" + times[9].Add(100*time.Millisecond).UTC().Format("20060102_1504")
		if !strings.Contains(out, "role appowner (the owner of app) does not exist on the target server") || !strings.Contains(out, "restored as "+name) {
			t.Errorf("output:\n%s", out)
		}
		if got := dbInts(t, pg2, name, "SELECT id::bigint FROM marks ORDER BY id"); !equalInts(got, seq(1, 10)) {
			t.Errorf("the copy holds marks %v, want %v", got, seq(1, 10))
		}
		if got := databases(t, pg2); strings.Join(got, ",") != name+",postgres" {
			t.Errorf("databases of the second cluster: %v", got)
		}
		var owner string
		var publicCan bool
		if err := dbConn(t, pg2, name).QueryRow(context.Background(), `SELECT pg_get_userbyid(datdba), has_database_privilege('public', datname, 'CONNECT') FROM pg_database WHERE datname = current_database()`).Scan(&owner, &publicCan); err != nil {
			t.Fatal(err)
		}
		if owner != "postgres" || !publicCan {
			t.Errorf("copy owned by %s, PUBLIC can connect %v; want postgres (the connecting role), true", owner, publicCan)
		}
		checkScratchEmpty(t)
	})
}
