package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStepsWithoutPostgresRole: the official Odoo container setup
// (POSTGRES_USER=odoo) leaves a cluster whose only superuser is odoo, with
// no postgres role. restore's post-recovery steps, restore --database and
// drill connect to the server they start as the cluster's bootstrap
// superuser, read from the restored files, without being told; --db-user
// names another role, and a role that does not exist is a clear failure.
func TestStepsWithoutPostgresRole(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg := h.InitClusterAs("primary", "odoo")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	if n := pg.QueryString("SELECT count(*)::text FROM pg_roles WHERE rolname = 'postgres'"); n != "0" {
		t.Fatalf("the cluster has a postgres role")
	}
	loadOdoo17(t, pg, "prod")
	wv.MustRun("backup", "--fast")
	pg.ExecDB("prod", "UPDATE res_partner SET name = name || ' (after backup)' WHERE id = (SELECT min(id) FROM res_partner)")
	pg.SwitchAndWaitArchived()

	// Post-recovery steps on a restored data directory.
	dir := h.Path("staging")
	out := wv.MustRun("restore", "--pgdata", dir, "--db", "prod", "--as", "staging", "--neutralize")
	for _, want := range []string{"connected as role odoo", "renamed to staging", "neutralized staging"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore with steps: output lacks %q:\n%s", want, out)
		}
	}
	rc := h.ClusterAt("staging", dir)
	rc.Role = "odoo"
	rc.Start()
	if n := dbInts(t, rc, "staging", "SELECT count(*)::bigint FROM res_partner WHERE name LIKE '% (after backup)'"); len(n) != 1 || n[0] != 1 {
		t.Errorf("staging: the change after the backup is missing: %v", n)
	}
	rc.Stop("fast")

	// One database into the running server.
	out = wv.MustRun("restore", "--database", "prod", "--into", pg.URL(), "--as", "prod_copy", "--scratch", h.Mkdir(h.Path("scratch"), 0o700))
	if !strings.Contains(out, "connected as role odoo") {
		t.Errorf("restore --database: output does not name the role:\n%s", out)
	}
	if n := dbInts(t, pg, "prod_copy", "SELECT count(*)::bigint FROM res_partner WHERE name LIKE '% (after backup)'"); len(n) != 1 || n[0] != 1 {
		t.Errorf("prod_copy: %v", n)
	}

	// The drill.
	var rep drillReport
	stdout, _ := wv.RunExpect(0, "drill", "--json")
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.Passed {
		t.Errorf("drill: %v\n%s", err, stdout)
	}

	// A role named explicitly is used alone.
	_, stderr := wv.RunExpect(1, "restore", "--pgdata", h.Path("nosuch"), "--db", "prod", "--as", "x", "--db-user", "nosuch", "--timeout", (2 * time.Minute).String())
	if !strings.Contains(stderr, `role "nosuch"`) {
		t.Errorf("--db-user nosuch: %s", stderr)
	}
}
