package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreOdooSteps: the Odoo steps of restore. Post-recovery, restore
// --db prod --as prod_t1 --odoo-filestore DIR brings back exactly the files
// prod referenced at the target into DIR/filestore/prod_t1 (the folder
// follows the new name); --neutralize --base-url URL --anonymize leave the
// Odoo 17 fixture's copy neutralized, at its own address, with its own
// database.uuid and database.secret, and without any original personal
// value. restore --database prod --target-time T --odoo-filestore DIR
// copies prod with the files it referenced at T into DIR/filestore/<new
// name>; restore --database odoo17 --into <the live cluster> --neutralize
// neutralizes the copy, gives it its own uuid and secret, and leaves the
// live database as it was. A recovered production keeps its own.
func TestRestoreOdooSteps(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	wv.MustRun("backup", "--fast")
	waitPastBackupStop(t, wv)

	loadOdoo17(t, pg, "odoo17")
	live := openOdooDB(t, pg, "odoo17")
	originals := odooOriginals(live)
	if len(originals) < 80 {
		t.Fatalf("only %d original values collected: the anonymisation check could not fail", len(originals))
	}
	// Production's identity (database.uuid, database.secret): a copy must
	// get its own, a recovered production must keep it.
	liveIdentity := live.one(`SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('database.secret', 'database.uuid')`)
	identity := func(d *odooDB) string {
		return d.one(`SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('database.secret', 'database.uuid')`)
	}
	odooData := h.Mkdir(h.Path("odoo-data"), 0o755)
	h.Mkdir(filepath.Join(odooData, "filestore"), 0o755)
	site := newOdooSite(t, h, pg, odooData)
	// The tables a restored copy is marked in and anonymize looks for.
	site.exec(`CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL,
		create_uid int, create_date timestamp, write_uid int, write_date timestamp)`)
	site.exec(`CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL, state varchar)`)
	state := h.Mkdir(h.Path("filestore-state"), 0o700)
	push := func() {
		wv.MustRun("filestore", "push", "--data-dir", odooData, "--db", "prod", "--state-dir", state)
	}
	a := site.attach("A", []byte("invoice A"))
	b := site.attach("B", []byte("invoice B"))
	// An employee's CV: a personal record's attachment, which an
	// anonymised copy must not receive.
	cv := site.attachTo("CV", "res.partner", []byte("curriculum vitae of a real person"))
	atT1 := map[string][]byte{a: site.files[a], b: site.files[b], cv: site.files[cv]}
	push()
	t1 := site.now()
	site.attach("C", []byte("invoice C, after the target"))
	push()
	site.exec(`CREATE TABLE later ()`)
	pg.SwitchAndWaitArchived()

	restored := func(name string) *Cluster {
		t.Helper()
		c := h.ClusterAt(name, h.Path(name))
		// A test copy: its new timeline must not reach the repository.
		c.Configure("archive_mode = off")
		c.Start()
		return c
	}

	// A disaster recovery (the database keeps its name, no neutralize or
	// anonymise) is production again: not marked as a copy, or odoo
	// neutralize would run on it without --force.
	t.Run("recovery not marked", func(t *testing.T) {
		dr := h.Mkdir(h.Path("dr-data"), 0o755)
		h.Chown(dr)
		out := wv.MustRun("restore", "--pgdata", h.Path("dr"), "--target-time", t1, "--db", "prod", "--odoo-filestore", dr)
		if strings.Contains(out, "marked") || !strings.Contains(out, "step odoo filestore done") {
			t.Errorf("a recovery with --odoo-filestore alone: the database must not be marked (nor tried):\n%s", out)
		}
		// The copies below are marked in this table (see "neutralize and
		// anonymize"); the recovered production database must not be.
		drc := restored("dr")
		db := openOdooDB(t, drc, "prod")
		db.expect("walvault rows in the recovered database", `SELECT count(*)::text FROM ir_config_parameter WHERE key LIKE 'walvault.%'`, "0")
		if got := identity(openOdooDB(t, drc, "odoo17")); got != liveIdentity {
			t.Errorf("the recovered production database's uuid and secret changed: %s, was %s", got, liveIdentity)
		}
		checkFilestore(t, filepath.Join(dr, "filestore", "prod"), atT1)
	})

	t.Run("filestore", func(t *testing.T) {
		out := wv.MustRun("restore", "--pgdata", h.Path("fs"), "--target-time", t1, "--db", "prod", "--as", "prod_t1", "--odoo-filestore", odooData)
		if !strings.Contains(out, "step odoo filestore done") {
			t.Errorf("output:\n%s", out)
		}
		checkFilestore(t, filepath.Join(odooData, "filestore", "prod_t1"), atT1)
		c := restored("fs")
		if got := databases(t, c); !strings.Contains(strings.Join(got, ","), "prod_t1") {
			t.Errorf("databases %v", got)
		}
	})

	t.Run("neutralize and anonymize", func(t *testing.T) {
		out := wv.MustRun("restore", "--pgdata", h.Path("staging"), "--db", "odoo17", "--as", "staging", "--neutralize", "--base-url", "https://staging.example.test",
			"--anonymize", "--keep-login", "admin")
		for _, want := range []string{"step neutralize done", "step anonymize done", "database odoo17 renamed to staging"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		c := restored("staging")
		db := openOdooDB(t, c, "staging")
		db.expect("active crons", `SELECT cron_name FROM ir_cron WHERE active ORDER BY id`, "Base: Auto-vacuum internal data")
		db.expect("neutralized flag", `SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'`, "true")
		db.expect("marked", `SELECT count(*)::text FROM ir_config_parameter WHERE key IN ('walvault.restored_copy', 'walvault.anonymized')`, "2")
		db.expect("base url", `SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('web.base.url', 'web.base.url.freeze')`,
			"https://staging.example.test True")
		if got := identity(db); got == liveIdentity || strings.Contains(got, strings.Fields(liveIdentity)[0]) || strings.Contains(got, strings.Fields(liveIdentity)[1]) {
			t.Errorf("the renamed copy shares production's uuid or secret: %s, production %s", got, liveIdentity)
		}
		dump := strings.ToLower(c.dumpData("staging"))
		for _, v := range originals {
			if strings.Contains(dump, strings.ToLower(v)) {
				t.Errorf("original %q survives in the anonymised copy", v)
			}
		}
	})

	// Anonymise runs before the filestore step: the CV's record no longer
	// references its file, so the staging filestore never receives it;
	// and a filestore step that fails cannot leave the copy un-anonymised.
	t.Run("anonymized copy with its filestore", func(t *testing.T) {
		out := wv.MustRun("restore", "--pgdata", h.Path("anon"), "--target-time", t1, "--db", "prod", "--as", "prod_anon",
			"--odoo-filestore", odooData, "--anonymize")
		ia, ifs := strings.Index(out, "step anonymize done"), strings.Index(out, "step odoo filestore done")
		if ia < 0 || ifs < 0 || ifs < ia {
			t.Errorf("want anonymize, then the filestore:\n%s", out)
		}
		checkFilestore(t, filepath.Join(odooData, "filestore", "prod_anon"), map[string][]byte{a: site.files[a], b: site.files[b]})
	})

	t.Run("copy with its filestore", func(t *testing.T) {
		wv.MustRun("restore", "--database", "prod", "--target-time", t1, "--into", pg.URL(), "--as", "prod_copy", "--odoo-filestore", odooData)
		checkFilestore(t, filepath.Join(odooData, "filestore", "prod_copy"), atT1)
		if got := dbInts(t, pg, "prod_copy", "SELECT count(*) FROM ir_attachment WHERE store_fname IS NOT NULL"); len(got) != 1 || got[0] != 3 {
			t.Errorf("the copy references %v files, want 3", got)
		}
	})

	t.Run("copy neutralized", func(t *testing.T) {
		wv.MustRun("restore", "--database", "odoo17", "--into", pg.URL(), "--as", "odoo17_copy", "--neutralize")
		cp := openOdooDB(t, pg, "odoo17_copy")
		cp.expect("copy: active crons", `SELECT cron_name FROM ir_cron WHERE active ORDER BY id`, "Base: Auto-vacuum internal data")
		live.expect("live: active crons", `SELECT count(*)::text FROM ir_cron WHERE active`, "5")
		live.expect("live: not marked", `SELECT count(*)::text FROM ir_config_parameter WHERE key IN ('walvault.restored_copy', 'database.is_neutralized')`, "0")
		if got := identity(cp); got == liveIdentity || strings.Contains(got, strings.Fields(liveIdentity)[0]) || strings.Contains(got, strings.Fields(liveIdentity)[1]) {
			t.Errorf("the copy shares production's uuid or secret: %s, production %s", got, liveIdentity)
		}
		if got := identity(live); got != liveIdentity {
			t.Errorf("production's uuid and secret changed: %s, was %s", got, liveIdentity)
		}
	})
}
