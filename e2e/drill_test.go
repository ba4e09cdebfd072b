package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walvault/walvault/restore/drill"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// Restore drills (walvault drill) against real PostgreSQL and the built
// binary: a healthy repository with an Odoo-shaped database passes, a
// failing custom check and a damaged WAL object fail with their reason in
// the JUnit report, and no run leaves a server, a port, a process or a
// scratch directory behind, or changes the repository.

// drillReport is the JSON walvault drill --json prints.
type drillReport struct {
	Passed     bool       `json:"passed"`
	Started    time.Time  `json:"started"`
	Target     string     `json:"target"`
	TargetTime *time.Time `json:"target_time"`
	Window     *struct {
		From                 time.Time  `json:"from"`
		To                   time.Time  `json:"to"`
		NewestArchivedCommit *time.Time `json:"newest_archived_commit"`
	} `json:"window"`
	Backup       string     `json:"backup"`
	RTOSeconds   *float64   `json:"rto_seconds"`
	RPOSeconds   *float64   `json:"rpo_seconds"`
	NewestCommit *time.Time `json:"newest_commit"`
	Port         int        `json:"port"`
	Scratch      string     `json:"scratch"`
	Kept         bool       `json:"kept"`
	Seconds      float64    `json:"seconds"`
	Checks       []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"checks"`
}

func (r drillReport) check(t *testing.T, name string) (status, reason string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Reason
		}
	}
	t.Errorf("report has no check %q; it has %+v", name, r.Checks)
	return "", ""
}

// junitDoc is the part of a JUnit XML report CI systems read.
type junitDoc struct {
	XMLName xml.Name `xml:"testsuites"`
	Suites  []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("junit report: %v", err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit report does not parse: %v\n%s", err, b)
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Name != "walvault-drill" {
		t.Fatalf("junit: want one testsuite walvault-drill, got %+v", doc.Suites)
	}
	s := doc.Suites[0]
	failures, skipped := 0, 0
	for _, c := range s.Cases {
		if c.Failure != nil {
			failures++
		}
		if c.Skipped != nil {
			skipped++
		}
	}
	if s.Tests != len(s.Cases) || s.Failures != failures || s.Skipped != skipped {
		t.Errorf("junit counts tests=%d failures=%d skipped=%d, but the cases say %d, %d, %d", s.Tests, s.Failures, s.Skipped, len(s.Cases), failures, skipped)
	}
	return doc
}

// junitFailure returns the failure message and text of testcase name.
func (d junitDoc) failure(t *testing.T, name string) string {
	t.Helper()
	for _, c := range d.Suites[0].Cases {
		if c.Name == name {
			if c.Failure == nil {
				t.Errorf("junit: testcase %s did not fail", name)
				return ""
			}
			if strings.TrimSpace(c.Failure.Message) == "" {
				t.Errorf("junit: testcase %s fails without a message", name)
			}
			return c.Failure.Message + "\n" + c.Failure.Text
		}
	}
	t.Errorf("junit: no testcase %s", name)
	return ""
}

// repoHashes hashes every object of a file repository, with its mode and
// modification time.
func repoHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprintf("%s %v %d", hex.EncodeToString(sum[:]), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameHashes(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	var diff []string
	for k, v := range before {
		if after[k] != v {
			diff = append(diff, "changed or removed: "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "added: "+k)
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("%s changed the repository:\n%s", what, strings.Join(diff, "\n"))
	}
}

// checkDrillLeftNothing: the drill's server is gone, its port free, no
// process refers to its scratch directory, and the directory is gone
// (unless kept).
func checkDrillLeftNothing(t *testing.T, rep drillReport) {
	t.Helper()
	if rep.Scratch == "" || !strings.Contains(filepath.Base(rep.Scratch), "walvault-drill-") {
		t.Fatalf("report names no scratch directory: %q", rep.Scratch)
	}
	if rep.Port > 0 {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(rep.Port))
		if err != nil {
			t.Errorf("port %d still held after the drill: %v", rep.Port, err)
		} else {
			l.Close()
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, rep.Scratch) {
			t.Errorf("process %s still runs after the drill: %s", filepath.Base(filepath.Dir(p)), cmd)
		}
	}
	_, err := os.Stat(rep.Scratch)
	switch {
	case rep.Kept && err != nil:
		t.Errorf("report says the scratch directory %s was kept, but: %v", rep.Scratch, err)
	case !rep.Kept && err == nil:
		t.Errorf("scratch directory %s left behind", rep.Scratch)
	}
}

// createOdooDatabase makes a database with the Odoo 17 columns of the
// tables the drill checks (ir_module_module, res_users, ir_attachment),
// and returns how many attachments are stored in the filestore.
func createOdooDatabase(t *testing.T, pg *Cluster, name string) int {
	t.Helper()
	pg.Exec("CREATE DATABASE " + name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pg.ConnectDB(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		`CREATE TABLE ir_module_module (
			id serial PRIMARY KEY, create_uid integer, write_uid integer,
			website varchar, summary jsonb, name varchar NOT NULL, author varchar, icon varchar,
			state varchar, latest_version varchar, shortdesc jsonb, published_version varchar,
			url varchar, sequence integer, auto_install boolean, to_buy boolean, description jsonb,
			demo boolean, application boolean, license varchar, maintainer varchar, contributors text,
			category_id integer, create_date timestamp without time zone, write_date timestamp without time zone,
			CONSTRAINT ir_module_module_name_uniq UNIQUE (name))`,
		`CREATE TABLE res_users (
			id serial PRIMARY KEY, company_id integer NOT NULL, partner_id integer NOT NULL,
			active boolean DEFAULT true, create_date timestamp without time zone, login varchar NOT NULL,
			password varchar, action_id integer, create_uid integer, write_uid integer, signature text,
			share boolean, write_date timestamp without time zone, totp_secret varchar,
			notification_type varchar NOT NULL, odoobot_state varchar, odoobot_failed boolean,
			sale_team_id integer, karma integer, rank_id integer, next_rank_id integer,
			CONSTRAINT res_users_login_key UNIQUE (login, company_id))`,
		`CREATE TABLE ir_attachment (
			id serial PRIMARY KEY, name varchar NOT NULL, description text, res_model varchar,
			res_field varchar, res_id integer, company_id integer, type varchar NOT NULL, url varchar,
			public boolean, access_token varchar, db_datas bytea, store_fname varchar,
			file_size integer, checksum varchar(40), mimetype varchar, index_content text,
			original_id integer, create_uid integer, create_date timestamp without time zone,
			write_uid integer, write_date timestamp without time zone)`,
		`CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id)`,
		`INSERT INTO ir_module_module (name, state, latest_version, shortdesc, author, license, application, auto_install, create_date, write_date)
			VALUES ('base', 'installed', '17.0.1.3', '{"en_US": "Base"}', 'Odoo S.A.', 'LGPL-3', false, true, now(), now()),
			       ('web', 'installed', '17.0.1.0', '{"en_US": "Web"}', 'Odoo S.A.', 'LGPL-3', false, true, now(), now()),
			       ('account', 'installed', '17.0.1.2', '{"en_US": "Invoicing"}', 'Odoo S.A.', 'LGPL-3', true, false, now(), now()),
			       ('crm', 'uninstalled', '17.0.1.9', '{"en_US": "CRM"}', 'Odoo S.A.', 'LGPL-3', true, false, now(), now())`,
		`INSERT INTO res_users (company_id, partner_id, active, login, password, share, notification_type, create_date, write_date)
			VALUES (1, 1, true, '__system__', NULL, false, 'email', now(), now()),
			       (1, 3, true, 'admin', '$pbkdf2-sha512$600000$drill', false, 'inbox', now(), now()),
			       (1, 7, true, 'portal', NULL, true, 'email', now(), now())`,
		`INSERT INTO ir_attachment (name, res_model, res_id, company_id, type, store_fname, file_size, checksum, mimetype, create_date, write_date)
			SELECT 'invoice-' || i || '.pdf', 'account.move', i, 1, 'binary',
			       substr(md5(i::text), 1, 2) || '/' || md5(i::text) || substr(md5(i::text), 1, 8),
			       1000 + i, md5(i::text) || substr(md5(i::text), 1, 8), 'application/pdf', now(), now()
			FROM generate_series(1, 25) i`,
		`INSERT INTO ir_attachment (name, res_model, res_id, type, db_datas, mimetype, create_date, write_date)
			VALUES ('inline.txt', 'res.partner', 1, 'binary', 'hello', 'text/plain', now(), now()),
			       ('website', 'res.partner', 1, 'url', NULL, NULL, now(), now())`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("odoo database: %v\n%s", err, sql)
		}
	}
	return 25
}

func TestDrill(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	stored := createOdooDatabase(t, pg, "odoo")
	pg.PgbenchInit(1)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast", "--label", "drill")
	marks := pg.CommitMarks(1, 20, "drill", 150*time.Millisecond)
	pg.SwitchAndWaitArchived()
	pg.Stop("fast")
	// The primary is stopped, not gone: the drill must not need it.

	// Drills run as root here (the server then runs as postgres) with
	// the repository in the environment, as a CI job would.
	drill := repo.Walvault(h).AsCurrentUser()
	if suite.pgUser == nil {
		drill = repo.Walvault(h)
	}
	drill.Timeout = 6 * time.Minute

	t.Run("latest", func(t *testing.T) {
		before := repoHashes(t, repo.Dir)
		junit := h.Path("latest.xml")
		start := time.Now()
		stdout, _ := drill.RunExpect(0, "drill", "--json", "--junit", junit)
		elapsed := time.Since(start)
		var rep drillReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("drill --json: %v\n%s", err, stdout)
		}
		if !rep.Passed || rep.Target != "latest" || rep.Backup == "" {
			t.Errorf("report: passed %v, target %q, backup %q", rep.Passed, rep.Target, rep.Backup)
		}
		for _, name := range []string{"restore", "server_start", "promote", "pg_amcheck", "odoo:odoo:res_users", "odoo:odoo:base_installed"} {
			if st, reason := rep.check(t, name); st != "pass" {
				t.Errorf("check %s: %s (%s), want pass", name, st, reason)
			}
		}
		st, reason := rep.check(t, "odoo:odoo:filestore")
		if st != "skip" || !strings.Contains(reason, fmt.Sprintf("%d attachments", stored)) || !strings.Contains(reason, "not checked") {
			t.Errorf("filestore check: %s (%s), want skip counting %d attachments, saying the files were not checked", st, reason, stored)
		}
		for _, c := range rep.Checks {
			if strings.HasPrefix(c.Name, "odoo:postgres") {
				t.Errorf("database postgres is not Odoo's, but got check %s", c.Name)
			}
		}
		// RTO: within the command's own run time. RPO: from the newest
		// recovered commit (the last mark, or a later autovacuum commit)
		// to the drill's start.
		if rep.RTOSeconds == nil || *rep.RTOSeconds <= 0 || *rep.RTOSeconds > elapsed.Seconds() {
			t.Errorf("RTO %v s, want > 0 and at most the drill's %v", rep.RTOSeconds, elapsed)
		}
		last := marks[len(marks)-1].CommitTS
		if rep.NewestCommit == nil || rep.NewestCommit.Before(last.Add(-time.Microsecond)) || rep.NewestCommit.After(rep.Started) {
			t.Errorf("newest recovered commit %v, want between the last mark %v and the drill's start %v", rep.NewestCommit, last, rep.Started)
		}
		if rep.RPOSeconds == nil || *rep.RPOSeconds < 0 || *rep.RPOSeconds > rep.Started.Sub(last).Seconds()+1e-6 {
			t.Errorf("RPO %v s, want between 0 and %v (drill start - last mark)", rep.RPOSeconds, rep.Started.Sub(last).Seconds())
		} else if rep.NewestCommit != nil && absDiff(*rep.RPOSeconds, rep.Started.Sub(*rep.NewestCommit).Seconds()) > 1e-3 {
			t.Errorf("RPO %v s is not drill start %v - newest commit %v", *rep.RPOSeconds, rep.Started, rep.NewestCommit)
		}
		t.Logf("drill latest: RTO %.3f s, RPO %.3f s, whole drill %.3f s", *rep.RTOSeconds, *rep.RPOSeconds, rep.Seconds)
		doc := readJUnit(t, junit)
		if s := doc.Suites[0]; s.Failures != 0 || s.Tests < 7 || s.Skipped != 1 {
			t.Errorf("junit: %d tests, %d failures, %d skipped; want >= 7, 0, 1", s.Tests, s.Failures, s.Skipped)
		}
		checkDrillLeftNothing(t, rep)
		sameHashes(t, "drill", before, repoHashes(t, repo.Dir))

		// The human summary says the same. The scratch directory's path
		// is too long for the server's Unix socket (107 bytes): the socket
		// goes elsewhere, and is removed too.
		longScratch := h.Mkdir(h.Path("scratch-"+strings.Repeat("x", 60)), 0o755)
		socks, _ := filepath.Glob(filepath.Join(os.TempDir(), "walvault-drill-sock-*"))
		stdout, _ = drill.RunExpect(0, "drill", "--scratch", longScratch)
		for _, want := range []string{"walvault drill PASSED", "PASS  pg_amcheck", "PASS  odoo:odoo:base_installed", "SKIP  odoo:odoo:filestore", "RTO:", "RPO:", "backup:  " + rep.Backup} {
			if !strings.Contains(stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, stdout)
			}
		}
		if empty, err := dirEmptyOrAbsent(longScratch); !empty || err != nil {
			t.Errorf("--scratch directory not emptied: %v", err)
		}
		if after, _ := filepath.Glob(filepath.Join(os.TempDir(), "walvault-drill-sock-*")); len(after) > len(socks) {
			t.Errorf("socket directories left behind: %v (before: %v)", after, socks)
		}
		sameHashes(t, "drill", before, repoHashes(t, repo.Dir))
	})

	t.Run("target-time-and-custom-checks", func(t *testing.T) {
		before := repoHashes(t, repo.Dir)
		const k = 12
		target := marks[k-1].CommitTS.Add(marks[k].CommitTS.Sub(marks[k-1].CommitTS) / 2).Truncate(time.Microsecond)
		checks := h.Path("checks.sql")
		h.WriteFile(checks, []byte(fmt.Sprintf(`-- Custom drill checks.
-- check: marks up to the target
SELECT count(*) = %d AND max(id) = %d FROM marks;

-- check: admin can log in
-- database: odoo
SELECT EXISTS (SELECT 1 FROM res_users WHERE login = 'admin' AND active);

-- check: more than a thousand marks
SELECT count(*) > 1000, count(*) FROM marks;
`, k, k)), 0o644)
		junit := h.Path("custom.xml")
		stdout, _ := drill.RunExpect(12, "drill", "--target-time", target.Format(time.RFC3339Nano),
			"--checks", checks, "--json", "--junit", junit, "--keep-scratch")
		var rep drillReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("drill --json: %v\n%s", err, stdout)
		}
		if rep.Passed {
			t.Error("report says passed with a failing check")
		}
		for _, name := range []string{"restore", "promote", "sql:marks up to the target", "sql:admin can log in"} {
			if st, reason := rep.check(t, name); st != "pass" {
				t.Errorf("check %s: %s (%s), want pass", name, st, reason)
			}
		}
		if st, _ := rep.check(t, "sql:more than a thousand marks"); st != "fail" {
			t.Errorf("check 'more than a thousand marks': %s, want fail", st)
		}
		msg := readJUnit(t, junit).failure(t, "sql:more than a thousand marks")
		if !strings.Contains(msg, "none with true") {
			t.Errorf("junit failure does not give the reason: %q", msg)
		}
		// RPO: target - newest recovered commit, which is mark k (or a
		// later commit before the target).
		if rep.TargetTime == nil || !rep.TargetTime.Equal(target) {
			t.Errorf("report target %v, want %v", rep.TargetTime, target)
		}
		markK := marks[k-1].CommitTS
		if rep.NewestCommit == nil || rep.NewestCommit.Before(markK.Add(-time.Microsecond)) || rep.NewestCommit.After(target) {
			t.Errorf("newest recovered commit %v, want between mark %d at %v and the target %v", rep.NewestCommit, k, markK, target)
		}
		if rep.RPOSeconds == nil || *rep.RPOSeconds < 0 || *rep.RPOSeconds > target.Sub(markK).Seconds()+1e-6 {
			t.Errorf("RPO %v s, want between 0 and %v", rep.RPOSeconds, target.Sub(markK).Seconds())
		}
		if rep.RTOSeconds == nil || *rep.RTOSeconds <= 0 {
			t.Errorf("RTO %v", rep.RTOSeconds)
		}
		t.Logf("drill to %s: RTO %.3f s, RPO %.6f s", target.Format(time.RFC3339Nano), *rep.RTOSeconds, *rep.RPOSeconds)
		// --keep-scratch: the stopped data directory and the server log stay, the
		// secrets (repository settings, identity copy) do not.
		if !rep.Kept {
			t.Error("--keep-scratch: report says not kept")
		}
		checkDrillLeftNothing(t, rep)
		for _, gone := range []string{"recovery", "data/walvault-recovery.conf", "data/pg_wal/.walvault-prefetch", "data/postmaster.pid"} {
			if _, err := os.Stat(filepath.Join(rep.Scratch, gone)); err == nil {
				t.Errorf("kept scratch directory still holds %s", gone)
			}
		}
		if _, err := os.Stat(filepath.Join(rep.Scratch, "data", "PG_VERSION")); err != nil {
			t.Errorf("kept scratch directory has no data directory: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(rep.Scratch, "postgres.log")); err == nil {
			recordOutput("drill server log", string(b))
			t.Logf("server log of the kept drill:\n%s", tail(string(b), 40))
		} else {
			t.Errorf("kept scratch directory has no server log: %v", err)
		}
		os.RemoveAll(rep.Scratch)
		sameHashes(t, "drill", before, repoHashes(t, repo.Dir))
	})

	t.Run("damaged-wal", func(t *testing.T) {
		// A copy with one flipped bit in the newest segment, which
		// recovery to the latest point needs. This drill runs as the
		// PostgreSQL user, as the systemd unit does.
		damaged := h.Path("damaged")
		h.copyTree(repo.Dir, damaged)
		segs, _ := filepath.Glob(filepath.Join(damaged, "wal", "00000001", "00000001????????????????"))
		sort.Strings(segs)
		if len(segs) < 3 {
			t.Fatalf("want several archived segments, have %v", segs)
		}
		seg := segs[len(segs)-1]
		flipBit(t, seg, -1)
		before := repoHashes(t, damaged)
		dr := h.Walvault("WALVAULT_REPO=file://"+damaged, "WALVAULT_AGE_IDENTITY_FILE="+repo.IdentityFile)
		dr.Timeout = 6 * time.Minute
		junit := h.Path("damaged.xml")
		stdout, stderr := dr.RunExpect(6, "drill", "--json", "--junit", junit)
		var rep drillReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("drill --json: %v\n%s", err, stdout)
		}
		if rep.Passed {
			t.Error("report says passed on a damaged repository")
		}
		name := filepath.Base(seg)
		doc := readJUnit(t, junit)
		var msg string
		for _, c := range doc.Suites[0].Cases {
			if c.Failure != nil {
				msg += c.Failure.Message + "\n" + c.Failure.Text
			}
		}
		if !strings.Contains(msg, name) || !strings.Contains(msg, "could not restore file") {
			t.Errorf("junit failures do not name the damaged segment %s and the server's error:\n%s", name, msg)
		}
		if !strings.Contains(stderr, name) {
			t.Errorf("stderr does not name the damaged segment %s:\n%s", name, stderr)
		}
		checkDrillLeftNothing(t, rep)
		sameHashes(t, "drill on a damaged repository", before, repoHashes(t, damaged))
	})
}

func absDiff(a, b float64) float64 {
	if a > b {
		return a - b
	}
	return b - a
}

// ConnectDB opens a connection to database db of the cluster.
func (c *Cluster) ConnectDB(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.role(), c.Port, db))
}

// TestDrillRandomPoint: --random-point draws a moment of the recoverable
// window from its seed, reports it with the seed, and recovers to it. The
// draw is from the start of the window to just before the newest commit its
// WAL holds (the window's end is the upload of the newest segment, later
// than that commit, and no time after it can be recovered to).
func TestDrillRandomPoint(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	repo := f.copyRepo(h, "repo")
	wv := repo.Walvault(h)
	info := wv.Info()
	if info.Recoverable == nil {
		t.Fatal("no recoverable window")
	}
	from, err1 := time.Parse(time.RFC3339Nano, info.Recoverable.From)
	to, err2 := time.Parse(time.RFC3339Nano, info.Recoverable.To)
	if err1 != nil || err2 != nil {
		t.Fatalf("window %v %v", err1, err2)
	}
	// The fraction of the drawable part a seed draws: drill.RandomPoint
	// scales the generator's first 64-bit number to it.
	var seed uint64
	var frac float64
	for seed = 1; ; seed++ {
		frac = float64(drill.NewRand(seed).Uint64()) / (1 << 64)
		if frac > 0.35 && frac < 0.55 {
			break
		}
	}
	before := repoHashes(t, repo.Dir)
	stdout, stderr := wv.RunExpect(0, "drill", "--random-point", "--seed", strconv.FormatUint(seed, 10), "--json")
	var rep drillReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("drill --json: %v\n%s", err, stdout)
	}
	if rep.TargetTime == nil {
		t.Fatalf("report has no target time: %s", stdout)
	}
	got := *rep.TargetTime
	if rep.Window == nil || rep.Window.NewestArchivedCommit == nil || !rep.Window.From.Equal(from) || !rep.Window.To.Equal(to) {
		t.Fatalf("report's window %+v; want %v..%v with the newest archived commit", rep.Window, from, to)
	}
	newest := *rep.Window.NewestArchivedCommit
	lastMark := f.Marks[len(f.Marks)-1].CommitTS
	if newest.Before(lastMark) || newest.After(to) {
		t.Errorf("newest archived commit %v: before the last mark's commit %v or after the window's end %v", newest, lastMark, to)
	}
	want := from.Add(time.Duration(frac * float64(newest.Sub(from))))
	if got.Before(from) || !got.Before(newest) || absDiff(got.Sub(want).Seconds(), 0) > 0.01*newest.Sub(from).Seconds()+1e-6 {
		t.Errorf("seed %d drew %v; want about %v (%.2f of %v..%v, before the newest archived commit)", seed, got, want, frac, from, newest)
	}
	if !strings.Contains(stdout, fmt.Sprintf(`"seed":%d`, seed)) || !strings.Contains(stdout, `"random_point":true`) {
		t.Errorf("report does not give the seed and say the point was random: %s", stdout)
	}
	if !strings.Contains(stderr, "--target-time "+got.UTC().Format(time.RFC3339Nano)) {
		t.Errorf("the chosen point is not printed for a replay with --target-time:\n%s", stderr)
	}
	// Exactly the marks committed up to the point are recovered: a check
	// that counts them proves the server stopped there.
	n := 0
	for _, m := range f.Marks {
		if !m.CommitTS.After(got) {
			n++
		}
	}
	checks := h.Path("marks.sql")
	h.WriteFile(checks, []byte(fmt.Sprintf("-- check: marks up to the point\nSELECT count(*) = %d FROM marks\n", n)), 0o644)
	stdout, _ = wv.RunExpect(0, "drill", "--target-time", got.UTC().Format(time.RFC3339Nano), "--checks", checks)
	if !strings.Contains(stdout, "PASS  sql:marks up to the point") {
		t.Errorf("replay with --target-time: %s", stdout)
	}
	t.Logf("seed %d drew %s (%.2f of the window), %d marks before it", seed, got.Format(time.RFC3339Nano), frac, n)

	// Drills that cannot succeed say why, in the report too: a target
	// outside the window (restore's exit 10), missing server programs
	// (exit 3), and server settings lower than the primary's, which make
	// recovery pause for good (exit 12, without waiting for --timeout).
	junit := h.Path("bad.xml")
	badScratch := h.Mkdir(h.Path("bad-scratch"), 0o755)
	wv.RunExpect(10, "drill", "--target-time", "2001-01-01T00:00:00Z", "--junit", junit, "--scratch", badScratch)
	if msg := readJUnit(t, junit).failure(t, "restore"); !strings.Contains(msg, "outside the recoverable window") {
		t.Errorf("target outside the window: junit says %q", msg)
	}
	_, stderr = wv.RunExpect(3, "drill", "--pg-bindir", h.Path("no-such-bin"), "--junit", junit)
	if !strings.Contains(stderr, "no postgres program") || !strings.Contains(readJUnit(t, junit).failure(t, "drill"), "no-such-bin") {
		t.Errorf("missing server programs: %s", stderr)
	}
	start := time.Now()
	wv.RunExpect(12, "drill", "--db-user", "nobody_here", "--timeout", "3m", "--junit", junit, "--scratch", badScratch)
	if msg := readJUnit(t, junit).failure(t, "server_start"); !strings.Contains(msg, `"nobody_here"`) || !strings.Contains(msg, "--db-user") {
		t.Errorf("unknown role: junit says %q", msg)
	}
	if el := time.Since(start); el > 2*time.Minute {
		t.Errorf("an unknown role took %v to be reported", el)
	}
	start = time.Now()
	stdout, _ = wv.RunExpect(12, "drill", "--pg-option", "max_connections=5", "--timeout", "3m", "--junit", junit, "--scratch", badScratch)
	if el := time.Since(start); el > 2*time.Minute {
		t.Errorf("a paused recovery took %v to be reported", el)
	}
	doc := readJUnit(t, junit)
	msg := ""
	for _, c := range doc.Suites[0].Cases {
		if c.Failure != nil {
			msg += c.Failure.Text
		}
	}
	if !strings.Contains(msg, "insufficient parameter settings") || !strings.Contains(msg, "--pg-option") {
		t.Errorf("paused recovery: junit failures %q\n%s", msg, stdout)
	}
	if empty, err := dirEmptyOrAbsent(badScratch); !empty || err != nil {
		entries, _ := os.ReadDir(badScratch)
		t.Errorf("failed drills left scratch directories: %v %v", entries, err)
	}
	if procs := drillProcesses(badScratch); len(procs) > 0 {
		t.Errorf("failed drills left processes: %v", procs)
	}
	checkDrillLeftNothing(t, rep)
	sameHashes(t, "drill", before, repoHashes(t, repo.Dir))
}

// TestDrillInterrupted: SIGTERM in the middle of a drill (a check that
// sleeps) stops the server, ends every process and removes the scratch
// directory; the report says the drill failed.
func TestDrillInterrupted(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	repo := f.copyRepo(h, "repo")
	before := repoHashes(t, repo.Dir)
	checks := h.Path("slow.sql")
	h.WriteFile(checks, []byte("-- check: slow\nSELECT pg_sleep(300) IS NOT NULL\n"), 0o644)
	scratch := h.Mkdir(h.Path("scratch"), 0o755)
	cmd, out := repo.Walvault(h).Start("drill", "--json", "--checks", checks, "--scratch", scratch, "--junit", h.Path("interrupted.xml"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait for the check's query to run: its backend's process title.
	waitFor(t, "the slow check to run", 3*time.Minute, func() (bool, error) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("drill ended (%v) before it was interrupted: %s", err, out.String())
		default:
		}
		return backendRunning(), nil
	})
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("interrupted drill exited 0")
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("drill still running 2 minutes after SIGTERM:\n%s", out.String())
	}
	t.Logf("drill ended %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	text := out.String()
	i := strings.Index(text, "{\"passed\"")
	if i < 0 {
		t.Fatalf("no JSON report after SIGTERM:\n%s", text)
	}
	var rep drillReport
	if err := json.NewDecoder(strings.NewReader(text[i:])).Decode(&rep); err != nil {
		t.Fatalf("report: %v\n%s", err, text)
	}
	if rep.Passed {
		t.Error("an interrupted drill reports passed")
	}
	checkDrillLeftNothing(t, rep)
	if empty, err := dirEmptyOrAbsent(scratch); !empty || err != nil {
		entries, _ := os.ReadDir(scratch)
		t.Errorf("scratch parent not empty after SIGTERM: %v %v", entries, err)
	}
	readJUnit(t, h.Path("interrupted.xml"))
	sameHashes(t, "interrupted drill", before, repoHashes(t, repo.Dir))

	// SIGKILL leaves no time to clean up, but the server must not outlive
	// the drill: the kernel tells it to shut down.
	scratch = h.Mkdir(h.Path("scratch-kill"), 0o755)
	// A killed drill cannot remove a socket directory it had to make
	// outside the scratch directory (when that path is too long): this
	// test removes it.
	sockGlob := filepath.Join(os.TempDir(), "walvault-drill-sock-*")
	socksBefore, _ := filepath.Glob(sockGlob)
	t.Cleanup(func() {
		after, _ := filepath.Glob(sockGlob)
		for _, d := range after {
			if !slices.Contains(socksBefore, d) {
				os.RemoveAll(d)
			}
		}
	})
	cmd, out = repo.Walvault(h).Start("drill", "--checks", checks, "--scratch", scratch)
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	waitFor(t, "the slow check to run", 3*time.Minute, func() (bool, error) {
		select {
		case err := <-ended:
			ended <- err
			t.Fatalf("drill ended (%v) before it was killed: %s", err, out.String())
		default:
		}
		return len(drillProcesses(scratch)) > 0 && backendRunning(), nil
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ended
	waitFor(t, "the server of a killed drill to stop", time.Minute, func() (bool, error) {
		left := drillProcesses(scratch)
		return len(left) == 0, fmt.Errorf("still running: %v", left)
	})
}

// drillProcesses lists the command lines of processes that refer to dir.
func drillProcesses(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if s := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(s, dir) {
			out = append(out, s)
		}
	}
	return out
}

// backendRunning reports whether a drill server's backend runs a query.
func backendRunning() bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if s := string(b); strings.Contains(s, "walvault-drill:") && strings.Contains(s, "SELECT") {
			return true
		}
	}
	return false
}

// TestDrillS3 is the CI example's job against a real MinIO: the identity in
// a 0600 file, the S3 credentials in the environment only, a drill of a
// random point with a JUnit report, run as root. The bucket is unchanged and
// the S3 secret appears in no output.
//
// The primary is quiet for a while after its last commit before its last
// segment is archived, as a real one is until archive_timeout or a full
// segment: the window's end (that upload) lies seconds after the newest
// commit. The seed draws from the last tenth: a drill that drew from the
// whole window picked a moment after the newest commit, which no recovery
// reaches ("recovery ended before configured recovery target was
// reached"), and failed.
func TestDrillS3(t *testing.T) {
	h := newHarness(t)
	srv := miniotest.Start(t)
	const bucket, prefix = "walvault-drill", "odoo/prod"
	srv.CreateBucket(t, bucket)
	repo := s3Repo(h, srv, bucket, prefix, srv.Endpoint)

	pg, wv := h.StartArchiving("primary", repo)
	createOdooDatabase(t, pg, "odoo_prod")
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")
	waitPastBackupStop(t, wv) // marks after the window's start, for --random-point
	var marks []Mark
	for i := 1; i <= 5; i++ {
		marks = append(marks, pg.CommitMarks(i, i, "s3", 0)...)
		if i == 5 {
			time.Sleep(3 * time.Second) // quiet
		}
		pg.SwitchAndWaitArchived()
	}
	pg.Stop("immediate")

	// As the CI job: identity from a secret into a 0600 file, the
	// repository and credentials in the environment.
	var seed uint64
	for seed = 1; ; seed++ {
		if f := float64(drill.NewRand(seed).Uint64()) / (1 << 64); f > 0.9 {
			break
		}
	}
	var env []string
	for _, kv := range repo.Env {
		if !strings.HasPrefix(kv, "WALVAULT_AGE_IDENTITY_FILE=") && !strings.HasPrefix(kv, "WALVAULT_AGE_RECIPIENTS=") {
			env = append(env, kv)
		}
	}
	identity := h.Path("ci-identity.txt")
	key, err := os.ReadFile(repo.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(identity, key, 0o600); err != nil { // root's, as in the job
		t.Fatal(err)
	}
	ci := h.Walvault(env...).AsCurrentUser()
	ci.Timeout = 6 * time.Minute
	before := s3Objects(t, srv, bucket, prefix)
	junit := h.Path("drill.xml")
	stdout, _ := ci.RunExpect(0, "drill", "--random-point", "--seed", strconv.FormatUint(seed, 10), "--junit", junit, "--age-identity-file", identity)
	for _, want := range []string{"walvault drill PASSED", "PASS  odoo:odoo_prod:base_installed", "PASS  pg_amcheck", "random point, seed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	// The point lies before the newest archived commit, which is the last
	// mark's (or a later one of autovacuum's).
	var target, newest time.Time
	for _, line := range strings.Split(stdout, "\n") {
		var err error
		if rest, ok := strings.CutPrefix(line, "target:  "); ok {
			target, err = time.Parse(time.RFC3339Nano, strings.Fields(rest)[0])
		}
		if _, rest, ok := strings.Cut(line, "(newest archived commit "); ok && strings.HasPrefix(line, "window:") {
			newest, err = time.Parse(time.RFC3339Nano, strings.TrimSuffix(strings.Fields(rest)[0], ":"))
		}
		if err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
	if last := marks[len(marks)-1].CommitTS; target.IsZero() || newest.Before(last) || !target.Before(newest) {
		t.Errorf("target %v, newest archived commit %v, last mark committed %v:\n%s", target, newest, last, stdout)
	}
	doc := readJUnit(t, junit)
	if s := doc.Suites[0]; s.Failures != 0 || s.Tests < 6 {
		t.Errorf("junit: %d tests, %d failures", s.Tests, s.Failures)
	}
	after := s3Objects(t, srv, bucket, prefix)
	if len(after) != len(before) {
		t.Errorf("the drill changed the bucket: %d objects before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("the drill changed object %s", k)
		}
	}
	procs := drillProcesses("walvault-drill-")
	if len(procs) > 0 {
		t.Errorf("processes left: %v", procs)
	}
}
