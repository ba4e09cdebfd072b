package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRunbookAsDocumented: docs/RUNBOOK.md's transcripts. Each section's
// walvault commands run as the runbook prints them (the text taken from
// the markdown, its system paths mapped into the test's directory and the
// documented --target-time replaced by a moment of the test), as the user
// it names, on real servers in the state the incident presupposes; the
// other lines (systemctl, install, mv, psql …) are played by the harness
// where the story needs them. One story, so that the incidents share one
// repository and its history:
//
//   - host A: PostgreSQL 15 archiving into a directory repository shared
//     by the group walvault (/etc/walvault/walvault.conf, peer
//     authentication on the local socket as Debian sets it up), an
//     Odoo-shaped database prod owned by the role odoo, its filestore
//     pushed by odoo, a nightly backup;
//   - "Before anything happens": check, info, a drill, a kept backup and a
//     restore point; then a module upgrade breaks prod;
//   - 4: prod as of the restore point beside the broken one, with its
//     filestore, and the swap (the runbook's SQL, run as written);
//   - 3: invoices deleted at a known moment, brought back beside the live
//     prod, neutralized;
//   - 6: a staging copy of an earlier moment on a staging host:
//     neutralized, at its own address, anonymised, with the files it still
//     references;
//   - 5: on a clean host, the audit trail, info, verify and a restore to the
//     moment before an intrusion;
//   - 1: host A is lost with a file odoo had not pushed yet: host B restores
//     prod and its filestore (exit 13 names that file), becomes the
//     primary, is checked and backed up;
//   - 2: host B's disk fails: a restore given up (recovery-cleanup), then
//     the restore to the end of the archived WAL, pg_amcheck as written,
//     the filestore brought back;
//   - "After any restore": check and a new base backup on the new timeline;
//   - 7: host B's cluster damaged in place (a page of account_move
//     overwritten, res_partner's file deleted, an invoice written since
//     the backup): its last WAL archived, then the delta restore rewrites
//     only the blocks that differ and recovery brings back every invoice.
//
// The last subtest is the drift guard: every walvault command of the
// runbook must have been run here.
func TestRunbookAsDocumented(t *testing.T) {
	pgAcct, odooAcct, gid := sharedRepoAccounts(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) plays sudo in this test: %v", err)
	}
	h := newHarness(t)
	h.PGUser = pgAcct // with the group, as PostgreSQL's service gets it
	rb := readRunbook(t)
	binDir := filepath.Dir(suite.walvault)

	// What the runbook's conventions presuppose, shared by every host:
	// /etc/walvault/walvault.conf naming the repository (a directory
	// that survives the hosts, as the runbook's incident 1 allows), the
	// recipients in it, the identity kept off the hosts.
	etcDir := h.Path("etc-walvault")
	mkdirOwned(t, etcDir, 0o751, 0, pgAcct.GID)
	repoDir := h.Path("var-lib-walvault")
	mkdirOwned(t, repoDir, fs.ModeSetgid|0o770, pgAcct.UID, gid) // install -d -o postgres -g walvault -m 2770
	homes := h.Path("homes")
	mkdirOwned(t, homes, 0o755, 0, 0)
	mkdirOwned(t, filepath.Join(homes, "postgres"), 0o700, pgAcct.UID, pgAcct.GID)
	mkdirOwned(t, filepath.Join(homes, "odoo"), 0o700, odooAcct.UID, odooAcct.GID)
	vault := h.Path("vault") // the password manager
	mkdirOwned(t, vault, 0o700, 0, 0)
	identity := filepath.Join(vault, "walvault.key")
	root := &Walvault{h: h, Timeout: 5 * time.Minute}
	recipient := strings.TrimSpace(root.MustRun("keygen", identity))
	registerKeySecret(t, identity)
	conf := filepath.Join(etcDir, "walvault.conf")
	// Each user that writes has its own writer key (README, Quick start
	// and Odoo setup): postgres's named in walvault.conf, odoo's on its
	// command line (filestore-prod.conf for the service).
	pgWriterKey, odooWriterKey := filepath.Join(etcDir, "writer.key"), filepath.Join(etcDir, "writer-odoo.key")
	issueWriterKeys := func(host string) {
		t.Helper()
		for _, k := range []struct {
			path, name string
			owner      *account
		}{{pgWriterKey, host, pgAcct}, {odooWriterKey, host + "-odoo", odooAcct}} {
			root.MustRun("writer", "issue", "--age-identity-file", identity, "--name", k.name, k.path)
			if err := os.Chown(k.path, int(k.owner.UID), int(k.owner.GID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	issueWriterKeys("hostA")
	copyBytes(t, conf, []byte("repo = file://"+repoDir+"\nage-recipients = "+recipient+"\nwriter-key-file = "+pgWriterKey+"\n"), 0o640, 0, gid)
	reader := root.With("WALVAULT_CONFIG="+conf, "WALVAULT_AGE_IDENTITY_FILE="+identity) // the test's own look at the repository

	newHost := func(name string) *rbHost {
		return newRBHost(t, h, name, binDir, odooAcct, []string{
			"/etc/walvault", etcDir,
			"/var/lib/walvault", repoDir,
			"/usr/lib/postgresql/15/bin", suite.pgBin,
		})
	}

	// Host A: the production server.
	a := newHost("hostA")
	p1 := h.InitCluster("hostA-main")
	debianAccess(t, p1)
	p1.Env = []string{"PATH=" + binDir + ":" + os.Getenv("PATH")}
	p1.Configure(
		"wal_level = replica",
		"archive_mode = on",
		"archive_command = 'walvault wal-push --config "+conf+" %p'",
		"max_wal_senders = 5",
		// The test's own needs: exact commit times, and documented
		// backups (no --fast) whose spread checkpoint is short.
		"track_commit_timestamp = on",
		"checkpoint_timeout = 30s",
		"checkpoint_completion_target = 0.1",
	)
	p1.Start()
	a.serve(p1)
	asPostgres := func(host *rbHost) *Walvault {
		return h.Walvault("WALVAULT_CONFIG="+conf, "PGHOST="+h.Base, "PGPORT="+host.port)
	}
	asPostgres(a).MustRun("init")

	// prod: the Odoo fixture, owned by the role odoo as the Debian package
	// makes it; invoices; the filestore, pushed by odoo (the
	// walvault-filestore@prod service, one pass at a time here).
	p1.Exec("CREATE ROLE odoo LOGIN CREATEDB")
	p1.Exec("CREATE DATABASE prod OWNER odoo")
	p1.ExecDB("prod", "SET ROLE odoo;\n"+odoo17SQL+`
		CREATE TABLE account_move (id serial PRIMARY KEY, name varchar, state varchar NOT NULL,
			amount_total numeric, create_date timestamp, write_date timestamp);
		INSERT INTO account_move (id, name, state, amount_total, create_date, write_date)
			SELECT i, 'INV/2026/' || i, 'posted', i * 10.5, now(), now() FROM generate_series(4700, 4710) i;`)
	liveIdentity := queryString(t, p1, "prod", `SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('database.secret', 'database.uuid')`)
	live := openOdooDB(t, p1, "prod")
	originals := odooOriginals(live)
	live.conn.Close(context.Background()) // prod is renamed in incident 4
	site := realFilestore(t, p1, "prod", a.odooData, odooAcct)
	invoice := site.attach("INV-4700", []byte("invoice 4700, a PDF"))
	site.chownFiles(odooAcct)
	push := func(host *rbHost) {
		t.Helper()
		w := &Walvault{h: h, As: odooAcct, Env: []string{"WALVAULT_CONFIG=" + conf, "WALVAULT_WRITER_KEY_FILE=" + odooWriterKey, "HOME=" + filepath.Join(homes, "odoo")}, Timeout: 5 * time.Minute}
		w.MustRun("filestore", "push", "--db", "prod", "--data-dir", host.odooData)
	}
	push(a)
	// The nightly backup (walvault-backup@main.timer).
	asPostgres(a).MustRun("backup", "--fast")
	waitPastBackupEnd(t, reader)

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.Fatalf("stopped after %q failed: the incidents that follow build on it", name)
		}
	}
	restorePoint := rb.restorePoint(t)
	var preUpgrade map[string][]byte // files prod referenced before the upgrade
	var preUpgradeModules string

	step("before anything happens", func(t *testing.T) {
		const sec = "Before anything happens"
		a.keyIn(t, identity)
		defer a.keyOut(t)
		out, _ := a.must(t, rb, rb.cmd(t, sec, "check"))
		if !strings.HasPrefix(out, "WALVAULT OK") {
			t.Errorf("check on a healthy host: %s", out)
		}
		out, _ = a.must(t, rb, rb.cmd(t, sec, "info"))
		if backups := reader.Info().Backups; len(backups) != 1 || !strings.Contains(out, backups[0].ID) {
			t.Errorf("info does not list the nightly backup %v:\n%s", backups, out)
		}
		a.sh.mapping = append(a.sh.mapping, "/tmp/drill.xml", h.Path("drill.xml"))
		a.must(t, rb, rb.cmd(t, sec, "drill "))
		junit := readJUnit(t, h.Path("drill.xml"))
		cases := map[string]string{}
		for _, c := range junit.Suites[0].Cases {
			switch {
			case c.Failure != nil:
				cases[c.Name] = "fail"
			case c.Skipped != nil:
				cases[c.Name] = "skip"
			default:
				cases[c.Name] = "pass"
			}
		}
		for _, name := range []string{"restore", "promote", "pg_amcheck", "odoo:prod:res_users", "odoo:prod:filestore"} {
			if cases[name] != "pass" {
				t.Errorf("drill: %s is %q, want pass (all: %v)", name, cases[name], cases)
			}
		}
		p1.Exec("CHECKPOINT") // the documented backup's checkpoint is spread: little to write
		a.must(t, rb, rb.cmd(t, sec, "backup --keep"))
		// A restore point, as the runbook's psql line makes it.
		p1.Exec("SELECT pg_create_restore_point($1)", restorePoint)
	})

	step("the upgrade fails", func(t *testing.T) {
		preUpgrade = referencedFiles(t, p1, "prod", site)
		preUpgradeModules = queryString(t, p1, "prod", `SELECT string_agg(name || ' ' || latest_version, ', ' ORDER BY name) FROM ir_module_module`)
		// odoo -u all: versions bumped, a column half added, an asset
		// file written, the invoice's attachment gone.
		dbExec(t, p1, "prod",
			"SET ROLE odoo",
			"UPDATE ir_module_module SET latest_version = '17.0.9.9.9'",
			"ALTER TABLE res_partner ADD COLUMN x_half_upgraded varchar")
		site.attachTo("upgrade-asset", "ir.ui.view", []byte("an asset the failed upgrade wrote"))
		site.unlink("INV-4700")
		site.gc()
		site.chownFiles(odooAcct)
		push(a)
		p1.SwitchAndWaitArchived()
	})

	step("4 failed module upgrade", func(t *testing.T) {
		const sec = "4. "
		a.keyIn(t, identity)
		defer a.keyOut(t)
		out, _ := a.must(t, rb, rb.cmd(t, sec, "restore --database prod --target-name "))
		if !strings.Contains(out, "handed to its original owner odoo") {
			t.Errorf("the copy is not handed to odoo:\n%s", out)
		}
		if got := queryString(t, p1, "prod_before_upgrade", `SELECT string_agg(name || ' ' || latest_version, ', ' ORDER BY name) FROM ir_module_module`); got != preUpgradeModules {
			t.Errorf("modules of the copy: %s, want those before the upgrade: %s", got, preUpgradeModules)
		}
		if _, ok := preUpgrade[invoice]; !ok {
			t.Fatalf("the invoice's file %s was not referenced before the upgrade", invoice)
		}
		checkFilestore(t, filepath.Join(a.odooData, "filestore", "prod_before_upgrade"), preUpgrade)

		// The swap, with the runbook's SQL.
		p1.Exec("ALTER DATABASE prod RENAME TO prod_failed_upgrade")
		p1.Exec("ALTER DATABASE prod_before_upgrade RENAME TO prod")
		store := filepath.Join(a.odooData, "filestore")
		rename(t, filepath.Join(store, "prod"), filepath.Join(store, "prod_failed_upgrade"))
		rename(t, filepath.Join(store, "prod_before_upgrade"), filepath.Join(store, "prod"))
		unmark, restoreIdentity := rb.swapSQL(t)
		dbExec(t, p1, "prod", unmark)
		for _, stmt := range queryStrings(t, p1, "prod_failed_upgrade", restoreIdentity) {
			dbExec(t, p1, "prod", stmt)
		}
		if got := queryString(t, p1, "prod", `SELECT count(*)::text FROM ir_config_parameter WHERE key LIKE 'walvault.%'`); got != "0" {
			t.Errorf("after the runbook's DELETE prod still holds %s walvault.* parameters: %v", got,
				queryStrings(t, p1, "prod", `SELECT key FROM ir_config_parameter WHERE key LIKE 'walvault.%'`))
		}
		if got := queryString(t, p1, "prod", `SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('database.secret', 'database.uuid')`); got != liveIdentity {
			t.Errorf("prod after the swap has uuid and secret %q, want production's %q", got, liveIdentity)
		}
		if got := queryString(t, p1, "prod", `SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'prod'`); got != "odoo" {
			t.Errorf("prod after the swap belongs to %s, want odoo", got)
		}
		checkFilestore(t, filepath.Join(store, "prod"), preUpgrade)
		push(a) // the filestore service carries on with the restored files
	})

	// Invoices 4711 and 4712 deleted by mistake; good work before and
	// after; the staging copy's moment ("last night"); the moment before
	// an intrusion, then the intruder's changes.
	var t3, t6, t5 time.Time
	step("the day's work, a mistake and an intrusion", func(t *testing.T) {
		dbExec(t, p1, "prod", "INSERT INTO account_move (id, name, state, amount_total, create_date, write_date) VALUES (4711, 'INV/2026/4711', 'posted', 1200, now(), now()), (4712, 'INV/2026/4712', 'posted', 80.5, now(), now())")
		t3 = serverNow(t, p1)
		dbExec(t, p1, "prod", "DELETE FROM account_move WHERE id IN (4711, 4712)")
		dbExec(t, p1, "prod", "INSERT INTO account_move (id, name, state, amount_total, create_date, write_date) VALUES (4713, 'INV/2026/4713', 'posted', 99, now(), now())")
		t6 = serverNow(t, p1)
		dbExec(t, p1, "prod", "INSERT INTO account_move (id, name, state, amount_total, create_date, write_date) VALUES (4714, 'INV/2026/4714', 'draft', 15, now(), now())")
		t5 = serverNow(t, p1)
		dbExec(t, p1, "prod", "UPDATE res_users SET password = 'owned' WHERE login = 'admin'")
		site.attach("ransom-note", []byte("all your files are encrypted"))
		site.chownFiles(odooAcct)
		push(a)
		p1.SwitchAndWaitArchived()
	})

	step("3 records deleted", func(t *testing.T) {
		const sec = "3. "
		a.keyIn(t, identity)
		defer a.keyOut(t)
		a.must(t, rb, rb.cmd(t, sec, "info"))
		out, _ := a.must(t, rb, rb.cmd(t, sec, "restore --database prod ").at(t, t3))
		if !strings.Contains(out, "handed to its original owner odoo") {
			t.Errorf("the copy is not handed to odoo:\n%s", out)
		}
		if got := dbInts(t, p1, "prod_1013", "SELECT id::bigint FROM account_move WHERE id >= 4711 ORDER BY id"); !equalInts(got, []int64{4711, 4712}) {
			t.Errorf("the copy holds invoices %v from 4711 on, want 4711 and 4712 (deleted after the target)", got)
		}
		if got := dbInts(t, p1, "prod", "SELECT id::bigint FROM account_move WHERE id >= 4711 ORDER BY id"); !equalInts(got, []int64{4713, 4714}) {
			t.Errorf("the live prod holds invoices %v from 4711 on, want 4713 and 4714 (untouched)", got)
		}
		cp := openOdooDB(t, p1, "prod_1013")
		cp.expect("the copy's active crons", `SELECT cron_name FROM ir_cron WHERE active ORDER BY id`, "Base: Auto-vacuum internal data")
		cp.expect("the copy is neutralized", `SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'`, "true")
		if got := cp.one(`SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('database.secret', 'database.uuid')`); sharesIdentity(got, liveIdentity) {
			t.Errorf("the copy shares production's uuid or secret: %s", got)
		}
		live := openOdooDB(t, p1, "prod")
		live.expect("the live prod's active crons", `SELECT count(*)::text FROM ir_cron WHERE active`, "5")
		live.conn.Close(context.Background())
		cp.conn.Close(context.Background())
		p1.Exec("DROP DATABASE prod_1013") // dropdb prod_1013
	})

	step("6 staging copy", func(t *testing.T) {
		const sec = "6. "
		s := newHost("staging")
		pgdata, data := h.Path("staging-srv-pg-staging"), h.Path("staging-srv-odoo-staging")
		s.sh.mapping = append(s.sh.mapping, "/srv/pg/staging", pgdata, "/srv/odoo-staging", data)
		s.keyIn(t, identity)
		defer s.keyOut(t)
		c := rb.cmd(t, sec, "restore --pgdata /srv/pg/staging ").at(t, t6)
		out, _ := s.must(t, rb, c)
		h.afterRestore(c.args(t, s.sh))
		for _, want := range []string{"step neutralize done", "step anonymize done", "step odoo filestore done"} {
			if !strings.Contains(out, want) {
				t.Errorf("restore's output lacks %q:\n%s", want, out)
			}
		}
		// Started as the runbook's pg_ctl line says (the port is the
		// harness's).
		sc := h.ClusterAt("staging", pgdata)
		sc.Configure(rb.pgCtlSettings(t, sec)...)
		sc.Start()
		defer sc.Stop("fast")
		if got := sc.QueryString("SHOW archive_mode"); got != "off" {
			t.Errorf("the staging server runs with archive_mode = %s: it archives its timeline into production's repository", got)
		}
		if got := databases(t, sc); !slices.Contains(got, "staging") || slices.Contains(got, "prod") {
			t.Errorf("staging server's databases: %v", got)
		}
		st := openOdooDB(t, sc, "staging")
		st.expect("invoices from 4711 on at the target", `SELECT string_agg(id::text, ',' ORDER BY id) FROM account_move WHERE id >= 4711`, "4713")
		st.expect("active crons", `SELECT cron_name FROM ir_cron WHERE active ORDER BY id`, "Base: Auto-vacuum internal data")
		st.expect("base url", `SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('web.base.url', 'web.base.url.freeze')`, "https://staging.example.com True")
		st.expect("the kept login", `SELECT login FROM res_users WHERE id = 2`, "admin")
		if got := st.one(`SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('database.secret', 'database.uuid')`); sharesIdentity(got, liveIdentity) {
			t.Errorf("staging shares production's uuid or secret: %s", got)
		}
		checkNoOriginals(t, "staging: ", sc.dumpData("staging"), originals)
		files := referencedFiles(t, sc, "staging", site)
		if len(files) == 0 || len(files) >= len(referencedFiles(t, p1, "prod", site)) {
			t.Errorf("staging references %d files: want some, and fewer than prod (anonymisation drops personal attachments)", len(files))
		}
		checkFilestore(t, filepath.Join(data, "filestore", "staging"), files)
	})

	step("5 ransomware", func(t *testing.T) {
		const sec = "5. "
		c := newHost("clean")
		c.keyIn(t, identity)
		defer c.keyOut(t)
		// Retention as it was: the backup kept before the upgrade is in
		// the audit trail, and in info with its note.
		out, _ := c.must(t, rb, rb.cmd(t, sec, "audit "))
		if !strings.Contains(out, "marked keep") {
			t.Errorf("the audit trail lacks the kept backup:\n%s", out)
		}
		out, _ = c.must(t, rb, rb.cmd(t, sec, "info"))
		if !strings.Contains(out, "keep  before upgrade of prod to 17.0+e 2026-11-22") {
			t.Errorf("info does not show the kept backup with its note:\n%s", out)
		}
		c.must(t, rb, rb.cmd(t, sec, "verify"))
		c.pgdata = h.Path("clean-main")
		c.sh.mapping = append(c.sh.mapping, "/var/lib/postgresql/15/main", c.pgdata)
		rc := rb.cmd(t, sec, "restore --pgdata ").at(t, t5)
		c.must(t, rb, rc)
		h.afterRestore(rc.args(t, c.sh))
		pc := h.ClusterAt("clean-main", c.pgdata)
		pc.Configure("archive_mode = off") // a fresh prefix, the runbook says: none here
		pc.Start()
		defer pc.Stop("fast")
		db := openOdooDB(t, pc, "prod")
		db.expect("admin's password at the target", `SELECT (password = 'owned')::text FROM res_users WHERE login = 'admin'`, "false")
		db.expect("invoices from 4711 on", `SELECT string_agg(id::text, ',' ORDER BY id) FROM account_move WHERE id >= 4711`, "4713,4714")
		checkFilestore(t, filepath.Join(c.odooData, "filestore", "prod"), referencedFiles(t, pc, "prod", site))
		if got := db.one(`SELECT count(*)::text FROM ir_attachment WHERE name = 'ransom-note.pdf'`); got != "0" {
			t.Errorf("the intruder's attachment is in the restored prod")
		}
	})

	// The last work on host A, and a file odoo wrote after the filestore
	// service's last pass; then host A is gone.
	var unpushed string
	var p2 *Cluster
	b := newHost("hostB")
	step("1 server gone", func(t *testing.T) {
		const sec = "1. "
		dbExec(t, p1, "prod", "INSERT INTO account_move (id, name, state, amount_total, create_date, write_date) VALUES (4715, 'INV/2026/4715', 'posted', 42, now(), now())")
		unpushed = site.attach("after-the-last-pass", []byte("a scan attached a minute before the fire"))
		site.chownFiles(odooAcct)
		want := referencedFiles(t, p1, "prod", site) // everything prod references…
		delete(want, unpushed)                       // …but the file never pushed
		p1.SwitchAndWaitArchived()
		p1.Stop("immediate")

		b.pgdata = h.Path("hostB-main")
		b.sh.mapping = append(b.sh.mapping, "/var/lib/postgresql/15/main", b.pgdata)
		b.keyIn(t, identity) // install -m 0600 walvault.key /root/walvault.key
		// Host A's writer keys went with it: host B issues its own, as
		// the runbook says.
		for _, k := range []string{pgWriterKey, odooWriterKey} {
			if err := os.Remove(k); err != nil {
				t.Fatal(err)
			}
		}
		script := []rbCommand{
			rb.shellLine(t, sec, "export WALVAULT_AGE_IDENTITY_FILE="),
			rb.walvaultLine(t, sec, "walvault writer issue ", "/etc/walvault/writer.key "),
			rb.walvaultLine(t, sec, "walvault writer issue ", "/etc/walvault/writer-odoo.key "),
			rb.shellLine(t, sec, "for k in main-stream "),
			rb.cmd(t, sec, "info"),
		}
		b.must(t, rb, script...)
		rc := rb.cmd(t, sec, "restore --pgdata ")
		out, stderr, exit := b.run(t, rb, append(script[:1:1], rc)...)
		if exit != 13 {
			t.Fatalf("restore with a referenced file never pushed: exit %d, want 13 (filestore incomplete)\n%s\n%s", exit, out, stderr)
		}
		if !strings.Contains(out+stderr, "missing (not in the repository): "+unpushed) {
			t.Errorf("restore does not name the missing file %s:\n%s\n%s", unpushed, out, stderr)
		}
		h.afterRestore(rc.args(t, b.sh))
		if _, err := os.Stat(filepath.Join(b.pgdata, "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("restore left its server running after exit 13: %v", err)
		}
		for _, k := range []string{"main-stream", "main-backup", "main-wal-server", "filestore-prod", "main-postgres"} {
			if _, err := os.Stat(filepath.Join(etcDir, k+".key")); err != nil {
				t.Errorf("the runbook's step 2 issued no writer key for %s: %v", k, err)
			}
		}
		restored := filepath.Join(b.odooData, "filestore", "prod")
		checkFilestore(t, restored, want)
		checkOwner(t, restored, odooAcct)

		// systemctl start postgresql: it archives its new timeline.
		p2 = h.ClusterAt("hostB-main", b.pgdata)
		p2.Env = p1.Env
		p2.Start()
		p2.WaitPromoted()
		b.serve(p2)
		if got := dbInts(t, p2, "prod", "SELECT id::bigint FROM account_move WHERE id >= 4711 ORDER BY id"); !equalInts(got, []int64{4713, 4714, 4715}) {
			t.Errorf("the recovered prod holds invoices %v from 4711 on, want 4713..4715 (the last work)", got)
		}
		// The new timeline's history file reaches the repository: a
		// restore to a moment of timeline 2 from the older backups follows
		// the timeline through it.
		p2.SwitchAndWaitArchived()
		if _, err := os.Stat(filepath.Join(repoDir, "wal", "00000002", "00000002.history")); err != nil {
			t.Errorf("timeline 2's history file is not in the repository: %v", err)
		}
		// Odoo shows the attachment as missing; its record is removed.
		p2.ExecDB("prod", "DELETE FROM ir_attachment WHERE store_fname = $1", unpushed)
		delete(site.files, unpushed)

		// 5. A new timeline: checked, and a fresh base backup.
		out, _ = b.must(t, rb, rb.cmd(t, sec, "check"))
		if !strings.HasPrefix(out, "WALVAULT OK") {
			t.Errorf("check on the recovered server: %s", out)
		}
		p2.Exec("CHECKPOINT")
		b.must(t, rb, rb.cmd(t, sec, "backup"))
		if info := reader.Info(); info.Backups[len(info.Backups)-1].Timeline != 2 {
			t.Errorf("the newest backup is on timeline %d, want 2", info.Backups[len(info.Backups)-1].Timeline)
		}
		b.keyOut(t) // rm /root/walvault.key
	})

	var p3 *Cluster
	step("2 disk corrupted", func(t *testing.T) {
		const sec = "2. "
		dbExec(t, p2, "prod", "INSERT INTO account_move (id, name, state, amount_total, create_date, write_date) VALUES (4716, 'INV/2026/4716', 'posted', 7, now(), now())")
		p2.SwitchAndWaitArchived()
		p2.Stop("fast") // systemctl stop odoo postgresql
		rename(t, b.pgdata, b.pgdata+".damaged")
		b.keyIn(t, identity)
		defer b.keyOut(t)
		rc := rb.cmd(t, sec, "restore --pgdata ")

		// A restore given up: recovery-cleanup removes what restore left
		// for restore_command (root's key among it); the directory goes.
		b.must(t, rb, rc)
		h.afterRestore(rc.args(t, b.sh))
		rec := b.pgdata + ".walvault-recovery"
		if _, err := os.Stat(rec); err != nil {
			t.Fatalf("restore left no recovery directory for the server: %v", err)
		}
		b.must(t, rb, rb.cmd(t, sec, "recovery-cleanup "))
		if _, err := os.Lstat(rec); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there after recovery-cleanup: %v", rec, err)
		}
		if err := os.RemoveAll(b.pgdata); err != nil {
			t.Fatal(err)
		}

		// Again, to the end: systemctl start postgresql replays the WAL.
		b.must(t, rb, rc)
		h.afterRestore(rc.args(t, b.sh))
		p3 = h.ClusterAt("hostB-main-restored", b.pgdata)
		p3.Env = p1.Env
		p3.Start()
		p3.WaitPromoted()
		b.serve(p3)
		if got := dbInts(t, p3, "prod", "SELECT id::bigint FROM account_move WHERE id >= 4711 ORDER BY id"); !equalInts(got, []int64{4713, 4714, 4715, 4716}) {
			t.Errorf("after the restore prod holds invoices %v from 4711 on, want 4713..4716", got)
		}
		p3.SwitchAndWaitArchived()
		if _, err := os.Stat(filepath.Join(repoDir, "wal", "00000003", "00000003.history")); err != nil {
			t.Errorf("timeline 3's history file is not in the repository: %v", err)
		}
		b.must(t, rb, rb.shellLine(t, sec, "sudo -u postgres /usr/lib/postgresql/15/bin/pg_amcheck "))

		// The filestore, which sat on the same disk.
		store := filepath.Join(b.odooData, "filestore")
		rename(t, filepath.Join(store, "prod"), filepath.Join(store, "prod.damaged"))
		b.must(t, rb, rb.cmd(t, sec, "filestore restore "))
		checkFilestore(t, filepath.Join(store, "prod"), referencedFiles(t, p3, "prod", site))
		checkOwner(t, filepath.Join(store, "prod"), odooAcct)
	})

	// "After any restore": walvault check, then a new base backup (the
	// runbook's commands of incident 1, step 5).
	step("after any restore", func(t *testing.T) {
		out, _ := b.must(t, rb, rb.cmd(t, "1. ", "check"))
		if !strings.HasPrefix(out, "WALVAULT OK") {
			t.Errorf("check after the restore: %s", out)
		}
		p3.Exec("CHECKPOINT")
		b.must(t, rb, rb.cmd(t, "1. ", "backup"))
		if info := reader.Info(); info.Backups[len(info.Backups)-1].Timeline != 3 {
			t.Errorf("the newest backup is on timeline %d, want 3", info.Backups[len(info.Backups)-1].Timeline)
		}
	})

	step("7 damaged in place", func(t *testing.T) {
		const sec = "7. "
		dbExec(t, p3, "prod", "INSERT INTO account_move (id, name, state, amount_total, create_date, write_date) VALUES (4717, 'INV/2026/4717', 'posted', 3, now(), now())")
		moves := queryString(t, p3, "prod", "SELECT pg_relation_filepath('account_move')")
		partners := queryString(t, p3, "prod", "SELECT pg_relation_filepath('res_partner')")
		nPartners := queryString(t, p3, "prod", "SELECT count(*)::text FROM res_partner")
		b.keyIn(t, identity)
		defer b.keyOut(t)
		// systemctl stop odoo; the invoice's WAL reaches the repository;
		// systemctl stop postgresql.
		out, _ := b.must(t, rb, rb.cmd(t, sec, "check --archive-test"))
		if !strings.HasPrefix(out, "WALVAULT OK") {
			t.Errorf("check --archive-test: %s", out)
		}
		p3.Stop("fast")
		// The damage: account_move's first page overwritten, res_partner's
		// file gone.
		f, err := os.OpenFile(filepath.Join(b.pgdata, moves), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 8192), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(b.pgdata, partners)); err != nil {
			t.Fatal(err)
		}

		rc := rb.cmd(t, sec, "restore --delta ")
		_, stderr := b.must(t, rb, rc)
		h.afterRestore(rc.args(t, b.sh))
		// Only what differs was written: the log counts the blocks.
		m := regexp.MustCompile(`delta restore: compared.* blocks=(\d+) differing=(\d+)`).FindStringSubmatch(stderr)
		if m == nil {
			t.Errorf("the delta restore logged no comparison:\n%s", tail(stderr, 30))
		} else if compared, differing := mustAtoi(t, m[1]), mustAtoi(t, m[2]); differing == 0 || differing >= compared {
			t.Errorf("delta restore: %d of %d blocks differed, want some (the damage) and fewer than all", differing, compared)
		} else {
			t.Logf("delta restore rewrote %d of %d blocks", differing, compared)
		}
		p4 := h.ClusterAt("hostB-main-delta", b.pgdata)
		p4.Env = p1.Env
		p4.Start()
		defer p4.Stop("fast")
		p4.WaitPromoted()
		b.serve(p4)
		if got := dbInts(t, p4, "prod", "SELECT id::bigint FROM account_move WHERE id >= 4711 ORDER BY id"); !equalInts(got, []int64{4713, 4714, 4715, 4716, 4717}) {
			t.Errorf("after the delta restore prod holds invoices %v from 4711 on, want 4713..4717", got)
		}
		if got := queryString(t, p4, "prod", "SELECT count(*)::text FROM res_partner"); got != nPartners {
			t.Errorf("after the delta restore res_partner holds %s rows, want %s", got, nPartners)
		}
		b.must(t, rb, rb.shellLine(t, sec, "sudo -u postgres /usr/lib/postgresql/15/bin/pg_amcheck "))
	})

	t.Run("every runbook command ran", func(t *testing.T) {
		rb.ledger.check(t, rb.text)
	})
}

// ---------------------------------------------------------------------------
// the runbook

// runbookDoc is docs/RUNBOOK.md as the transcripts read it.
type runbookDoc struct {
	text     string
	sections []mdSection
	prelude  []string // root's shell before any section: the conventions
	ledger   runbookLedger
}

func readRunbook(t *testing.T) *runbookDoc {
	t.Helper()
	rb := &runbookDoc{text: mdText(t, runbookFile)}
	rb.sections = mdSections(rb.text)
	for _, block := range codeBlocks(rb.sections[0].Body) {
		for _, c := range shellCommands(block) {
			rb.prelude = append(rb.prelude, normalizeCommand(c.Text))
		}
	}
	if !slices.ContainsFunc(rb.prelude, func(s string) bool { return strings.HasPrefix(s, `WV="`) }) {
		t.Fatalf(`%s: its conventions set no WV="…" in a code block: %q`, runbookFile, rb.prelude)
	}
	return rb
}

// rbCommand is one command of the runbook, picked for a transcript.
type rbCommand struct {
	line runbookLine // as the runbook prints it; Section "" for a line the guard does not count
	text string      // what runs: line.Text, with a test moment for its --target-time
}

// section returns the section whose heading starts with key.
func (rb *runbookDoc) section(t *testing.T, key string) mdSection {
	t.Helper()
	var found []mdSection
	for _, s := range rb.sections {
		if s.Heading != "" && strings.HasPrefix(s.Heading, key) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d sections start with %q, want 1", runbookFile, len(found), key)
	}
	return found[0]
}

// cmd returns the walvault command of section key whose arguments (what
// follows $WV) start with args. Who runs it, and with what before $WV, is
// the runbook's to say: the transcript runs it as written.
func (rb *runbookDoc) cmd(t *testing.T, key, args string) rbCommand {
	t.Helper()
	sec := rb.section(t, key)
	lines, _ := runbookInvocations("## " + sec.Heading + "\n" + sec.Body)
	var found []runbookLine
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l.Text, "$WV "); ok && strings.HasPrefix(rest, args) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s, %q: %d commands run $WV %s…, want 1: %q", runbookFile, sec.Heading, len(found), args, found)
	}
	return rbCommand{line: found[0], text: found[0].Text}
}

// shellLine returns the other command of section key's code blocks that
// starts with prefix: shell state (export) or a check the transcript runs
// as written (pg_amcheck).
func (rb *runbookDoc) shellLine(t *testing.T, key, prefix string) rbCommand {
	t.Helper()
	sec := rb.section(t, key)
	var found []string
	for _, block := range codeBlocks(sec.Body) {
		for _, c := range shellCommands(block) {
			if cmd := normalizeCommand(c.Text); strings.HasPrefix(cmd, prefix) {
				found = append(found, cmd)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s, %q: %d commands start with %q, want 1: %q", runbookFile, sec.Heading, len(found), prefix, found)
	}
	return rbCommand{text: found[0]}
}

// walvaultLine returns the walvault command of section key that does not
// run through $WV (as root, on the host's own files), starting with prefix
// and containing part.
func (rb *runbookDoc) walvaultLine(t *testing.T, key, prefix, part string) rbCommand {
	t.Helper()
	sec := rb.section(t, key)
	lines, _ := runbookInvocations("## " + sec.Heading + "\n" + sec.Body)
	var found []runbookLine
	for _, l := range lines {
		if strings.HasPrefix(l.Text, prefix) && strings.Contains(l.Text, part) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s, %q: %d commands start with %q and contain %q, want 1: %q", runbookFile, sec.Heading, len(found), prefix, part, found)
	}
	return rbCommand{line: found[0], text: found[0].Text}
}

var targetTimeArg = regexp.MustCompile(`--target-time '[^']*'`)

// at replaces the documented --target-time (a moment of 2026 in the
// runbook) with when, a moment of the test; nothing else changes.
func (c rbCommand) at(t *testing.T, when time.Time) rbCommand {
	t.Helper()
	if n := len(targetTimeArg.FindAllString(c.text, -1)); n != 1 {
		t.Fatalf("%q has %d --target-time '…' arguments, want 1", c.text, n)
	}
	c.text = targetTimeArg.ReplaceAllLiteralString(c.text, "--target-time '"+when.UTC().Format("2006-01-02 15:04:05.999999-07")+"'")
	return c
}

// args returns the walvault arguments of a `$WV …` command, paths mapped
// (for the suite's checks of a restored directory).
func (c rbCommand) args(t *testing.T, sh *docShell) []string {
	t.Helper()
	_, rest, ok := strings.Cut(c.text, "$WV ")
	if !ok {
		t.Fatalf("%q does not run $WV", c.text)
	}
	return shellWords(t, sh.mapPaths(t, rest))
}

// restorePoint is the name the runbook's psql line gives the restore
// point before risky work; incident 4 recovers to it.
func (rb *runbookDoc) restorePoint(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`pg_create_restore_point\('([^']+)'\)`).FindAllStringSubmatch(rb.section(t, "Before anything happens").Body, -1)
	if len(m) != 1 {
		t.Fatalf("%s: %d pg_create_restore_point calls before anything happens, want 1", runbookFile, len(m))
	}
	if c := rb.cmd(t, "4. ", "restore --database prod --target-name "); !strings.Contains(c.text, "--target-name "+m[0][1]+" ") {
		t.Fatalf("%s: incident 4 restores to another name than the restore point %q: %s", runbookFile, m[0][1], c.text)
	}
	return m[0][1]
}

// swapSQL returns the SQL of incident 4's swap: the DELETE that unmarks
// the copy, and the query that writes production's uuid and secret back.
func (rb *runbookDoc) swapSQL(t *testing.T) (unmark, restoreIdentity string) {
	t.Helper()
	body := rb.section(t, "4. ").Body
	m := regexp.MustCompile(`psql -d prod -c "(DELETE FROM ir_config_parameter [^"]+)"`).FindStringSubmatch(body)
	n := regexp.MustCompile(`(?s)psql -d prod_failed_upgrade -Atc "(.+?)" \| sudo -u postgres psql -d prod\n`).FindStringSubmatch(body)
	if m == nil || n == nil {
		t.Fatalf("%s: incident 4's swap lacks the DELETE of the copy's marks (%v) or the copy of production's uuid and secret (%v)", runbookFile, m != nil, n != nil)
	}
	return m[1], n[1]
}

// pgCtlSettings returns the -c settings of section key's pg_ctl line, as
// postgresql.conf lines (the port is the harness's).
func (rb *runbookDoc) pgCtlSettings(t *testing.T, key string) []string {
	t.Helper()
	line := rb.shellLine(t, key, "sudo -u postgres /usr/lib/postgresql/15/bin/pg_ctl ").text
	m := regexp.MustCompile(`-o '([^']*)'`).FindStringSubmatch(line)
	if m == nil {
		return nil
	}
	var out []string
	w := strings.Fields(m[1])
	for i := 0; i < len(w); i++ {
		if w[i] == "-c" && i+1 < len(w) {
			k, v, _ := strings.Cut(w[i+1], "=")
			out = append(out, k+" = '"+v+"'")
			i++
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// hosts

// rbHost is one machine of the story: root's shell on it, where the
// runbook's paths are, and the environment of its processes (PGHOST and
// PGPORT stand for its local socket, WALVAULT_ODOO_CONFIG for
// /etc/odoo/odoo.conf).
type rbHost struct {
	name     string
	root     string // /root
	odooData string // /var/lib/odoo, odoo.conf's data_dir
	pgdata   string // /var/lib/postgresql/15/main
	port     string
	sh       *docShell
}

func newRBHost(t *testing.T, h *Harness, name, binDir string, odoo *account, mapping []string) *rbHost {
	t.Helper()
	host := &rbHost{name: name, root: h.Path(name + "-root"), odooData: h.Path(name + "-var-lib-odoo")}
	mkdirOwned(t, host.root, 0o700, 0, 0)
	mkdirOwned(t, host.odooData, 0o750, odoo.UID, odoo.GID)
	mkdirOwned(t, filepath.Join(host.odooData, "filestore"), 0o750, odoo.UID, odoo.GID)
	// The Debian package's odoo.conf: the local socket as the role odoo.
	odooConf := h.Path(name + "-odoo.conf")
	copyBytes(t, odooConf, []byte("[options]\ndb_host = False\ndb_port = False\ndb_user = odoo\ndb_password = False\ndata_dir = "+host.odooData+"\n"), 0o640, 0, odoo.GID)
	host.sh = &docShell{h: h,
		mapping: append(slices.Clone(mapping),
			"/root/", host.root+"/",
			"/var/lib/odoo", host.odooData),
		hostEnv: []string{
			"PATH=" + binDir + ":" + os.Getenv("PATH"),
			"PGHOST=" + h.Base, // the clusters' socket directory
			"WALVAULT_ODOO_CONFIG=" + odooConf,
		},
		env: []string{"HOME=" + host.root},
	}
	return host
}

// serve makes c the host's PostgreSQL: its local socket is the default.
func (host *rbHost) serve(c *Cluster) {
	host.port = fmt.Sprint(c.Port)
	host.sh.hostEnv = append(slices.DeleteFunc(host.sh.hostEnv, func(kv string) bool { return strings.HasPrefix(kv, "PGPORT=") }), "PGPORT="+host.port)
}

// keyIn copies the identity in for the incident, as /root/walvault.key
// (root's, 0600); keyOut removes it afterwards.
func (host *rbHost) keyIn(t *testing.T, identity string) {
	t.Helper()
	copyFile(t, identity, filepath.Join(host.root, "walvault.key"), 0o600, 0, 0)
}

func (host *rbHost) keyOut(t *testing.T) {
	t.Helper()
	if err := os.Remove(filepath.Join(host.root, "walvault.key")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Error(err)
	}
}

// run runs the commands, after the runbook's conventions, in one root
// shell on the host, and records the walvault commands among them as
// run. The exit status is the shell's: the first command that fails.
func (host *rbHost) run(t *testing.T, rb *runbookDoc, cmds ...rbCommand) (stdout, stderr string, exit int) {
	t.Helper()
	script := slices.Clone(rb.prelude)
	for _, c := range cmds {
		script = append(script, c.text)
		if c.line.Text != "" {
			rb.ledger.record(c.line)
		}
	}
	stdout, stderr, err := host.sh.run(t, strings.Join(script, "\n"))
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout, stderr, exit
}

// must is run, failing the test unless every command succeeds.
func (host *rbHost) must(t *testing.T, rb *runbookDoc, cmds ...rbCommand) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, exit := host.run(t, rb, cmds...)
	if exit != 0 {
		var texts []string
		for _, c := range cmds {
			texts = append(texts, c.text)
		}
		t.Fatalf("on %s, the runbook's\n  %s\nexits %d\nstdout:\n%s\nstderr:\n%s", host.name, strings.Join(texts, "\n  "), exit, tail(stdout, 30), tail(stderr, 30))
	}
	return stdout, stderr
}

// debianAccess gives a cluster Debian's access rules: peer authentication
// on the local socket, so that a command run as root connects as the role
// root (which does not exist) unless it says otherwise. TCP on 127.0.0.1,
// where the harness connects, stands for password authentication (the
// runbook's PGPASSWORD=…).
func debianAccess(t *testing.T, c *Cluster) {
	t.Helper()
	hba := `# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 peer
local   replication  all                 peer
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
`
	c.h.WriteFile(filepath.Join(c.DataDir, "pg_hba.conf"), []byte(hba), 0o600)
}

// ---------------------------------------------------------------------------
// checks

// referencedFiles returns the files database db of c references, with the
// content the site gave them.
func referencedFiles(t *testing.T, c *Cluster, db string, site *odooSite) map[string][]byte {
	t.Helper()
	names := queryStrings(t, c, db, "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL")
	out := map[string][]byte{}
	for _, n := range names {
		content, ok := site.files[n]
		if !ok {
			t.Fatalf("%s references %s, a file the test never wrote", db, n)
		}
		out[n] = content
	}
	return out
}

// checkOwner fails for every file or folder under dir that is not odoo's.
func checkOwner(t *testing.T, dir string, odoo *account) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			if st := statT(t, p); st.Uid != odoo.UID {
				t.Errorf("%s: uid %d, want odoo's %d", p, st.Uid, odoo.UID)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sharesIdentity reports whether a copy's "secret uuid" shares either
// with production's.
func sharesIdentity(copy, live string) bool {
	for _, v := range strings.Fields(live) {
		if strings.Contains(copy, v) {
			return true
		}
	}
	return false
}

// serverNow returns the server's clock, then pauses: a recovery target of
// that moment includes every commit before and none after.
func serverNow(t *testing.T, c *Cluster) time.Time {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	var ts time.Time
	c.QueryRow("SELECT clock_timestamp()", nil, &ts)
	time.Sleep(100 * time.Millisecond)
	return ts
}

func queryStrings(t *testing.T, c *Cluster, db, sql string) []string {
	t.Helper()
	conn := dbConn(t, c, db)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s/%s: %s: %v", c.Name, db, sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s/%s: %s: %v", c.Name, db, sql, err)
	}
	return out
}

func queryString(t *testing.T, c *Cluster, db, sql string) string {
	t.Helper()
	out := queryStrings(t, c, db, sql)
	if len(out) != 1 {
		t.Fatalf("%s/%s: %s: %d rows, want 1", c.Name, db, sql, len(out))
	}
	return out[0]
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
