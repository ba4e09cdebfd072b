package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

// odooSite is an Odoo-shaped database "prod" with its filestore, changed
// the way Odoo changes them: an attachment writes its file then its row;
// deleting a row leaves the file and a checklist marker, and a later
// garbage collection removes unreferenced files.
type odooSite struct {
	t     *testing.T
	pg    *Cluster
	dir   string // <data_dir>/filestore/prod
	ids   map[string]int
	files map[string][]byte // content by store_fname
}

func newOdooSite(t *testing.T, h *Harness, pg *Cluster, dataDir string) *odooSite {
	pg.Exec("CREATE DATABASE prod")
	s := &odooSite{t: t, pg: pg, dir: filepath.Join(dataDir, "filestore", "prod"), ids: map[string]int{}, files: map[string][]byte{}}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Odoo 17's ir_attachment (odoo/addons/base/models/ir_attachment.py).
	s.exec(`CREATE TABLE ir_attachment (
		id serial PRIMARY KEY, name varchar NOT NULL, res_model varchar, res_field varchar,
		res_id integer, company_id integer, type varchar NOT NULL, url varchar(1024),
		public boolean, access_token varchar, db_datas bytea, store_fname varchar,
		file_size integer, checksum varchar(40), mimetype varchar, index_content text,
		original_id integer, description text, create_uid integer,
		create_date timestamp without time zone, write_uid integer,
		write_date timestamp without time zone)`)
	s.exec(`CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id)`)
	s.exec(`CREATE INDEX ir_attachment_store_fname_idx ON ir_attachment (store_fname)`)
	// Attachments kept in the database or as URLs have no file.
	s.exec(`INSERT INTO ir_attachment (name, type, db_datas, res_model, res_id, create_date, write_date)
		VALUES ('inline.txt', 'binary', 'hello', 'res.partner', 1, now(), now())`)
	s.exec(`INSERT INTO ir_attachment (name, type, url, create_date, write_date)
		VALUES ('website', 'url', 'https://example.com', now(), now())`)
	return s
}

func (s *odooSite) exec(sql string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := s.pg.ConnectDB(ctx, "prod")
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		s.t.Fatalf("%v\n%s", err, sql)
	}
}

func fname(content []byte) string {
	sum := sha1.Sum(content)
	h := hex.EncodeToString(sum[:])
	return h[:2] + "/" + h
}

// attach stores content as attachment key: file first, then the row.
func (s *odooSite) attach(key string, content []byte) string {
	s.t.Helper()
	return s.attachTo(key, "account.move", content)
}

// attachTo is attach for a record of the given model (res.partner: a
// personal record, whose attachments anonymisation drops).
func (s *odooSite) attachTo(key, model string, content []byte) string {
	s.t.Helper()
	name := fname(content)
	p := filepath.Join(s.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if err := os.WriteFile(p, content, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.files[name] = content
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := s.pg.ConnectDB(ctx, "prod")
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var id int
	err = conn.QueryRow(ctx, `INSERT INTO ir_attachment (name, res_model, res_id, company_id, type, public, store_fname, file_size, checksum, mimetype, create_uid, create_date, write_uid, write_date)
		VALUES ($1, $5, 1, 1, 'binary', false, $2, $3, $4, 'application/pdf', 2, now() at time zone 'UTC', 2, now() at time zone 'UTC') RETURNING id`,
		key+".pdf", name, len(content), name[3:], model).Scan(&id)
	if err != nil {
		s.t.Fatal(err)
	}
	s.ids[key] = id
	return name
}

// unlink deletes attachment key's row and marks its file for the GC.
func (s *odooSite) unlink(key string) {
	s.t.Helper()
	var name string
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := s.pg.ConnectDB(ctx, "prod")
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `DELETE FROM ir_attachment WHERE id = $1 RETURNING store_fname`, s.ids[key]).Scan(&name); err != nil {
		s.t.Fatal(err)
	}
	marker := filepath.Join(s.dir, "checklist", name)
	os.MkdirAll(filepath.Dir(marker), 0o755)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// gc is Odoo's _gc_file_store: files marked and no longer referenced go.
func (s *odooSite) gc() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := s.pg.ConnectDB(ctx, "prod")
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	root := filepath.Join(s.dir, "checklist")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name, _ := filepath.Rel(root, p)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM ir_attachment WHERE store_fname = $1`, name).Scan(&n); err != nil {
			s.t.Fatal(err)
		}
		if n == 0 {
			os.Remove(filepath.Join(s.dir, name))
		}
		return os.Remove(p)
	})
}

// now is the server's clock after the last commit, then a pause, so that
// a recovery target of now includes everything before and nothing after.
func (s *odooSite) now() string {
	s.t.Helper()
	var ts time.Time
	s.pg.QueryRow(`SELECT clock_timestamp()`, nil, &ts)
	time.Sleep(100 * time.Millisecond)
	return ts.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

// checkFilestore fails unless dir holds exactly the files want, intact.
func checkFilestore(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := map[string]bool{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatalf("walk %s: %v", dir, err)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got[rel] = true
		}
		return nil
	})
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: referenced file missing: %v", dir, err)
			continue
		}
		if string(b) != string(content) {
			t.Errorf("%s/%s: content differs", dir, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected file %s", dir, name)
		}
	}
}

// waitPastBackupEnd waits until the newest backup's recorded end (rounded
// up to cover backup_label's whole seconds) is past, so that the next
// commits are inside the recoverable window.
func waitPastBackupEnd(t *testing.T, wv *Walvault) {
	t.Helper()
	info := wv.Info()
	end, err := time.Parse(time.RFC3339, info.Backups[len(info.Backups)-1].StopTime)
	if err != nil {
		t.Fatal(err)
	}
	end = end.Add(time.Second) // info shows whole seconds
	if d := time.Until(end); d > 0 {
		if d > 5*time.Second {
			t.Fatalf("backup ends %s from now", d)
		}
		time.Sleep(d + 10*time.Millisecond)
	}
}

type filestoreRepoCase struct {
	repo *Repo
	// hasObject says whether the repository holds key (relative).
	hasObject func(t *testing.T, key string) bool
	// removeObject deletes key (relative) behind walvault's back.
	removeObject func(t *testing.T, key string)
}

func TestFilestoreFile(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	runFilestore(t, h, filestoreRepoCase{
		repo: repo,
		hasObject: func(t *testing.T, key string) bool {
			_, err := os.Stat(filepath.Join(repo.Dir, key))
			return err == nil
		},
		removeObject: func(t *testing.T, key string) {
			if err := os.Remove(filepath.Join(repo.Dir, key)); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestFilestoreS3(t *testing.T) {
	h := newHarness(t)
	srv := miniotest.Start(t)
	registerSecret("S3 secret key", srv.SecretKey)
	const bucket, prefix = "walvault-e2e", "clusters/odoo"
	srv.CreateBucket(t, bucket)
	client, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	runFilestore(t, h, filestoreRepoCase{
		repo: s3Repo(h, srv, bucket, prefix, srv.Endpoint),
		hasObject: func(t *testing.T, key string) bool {
			_, err := client.StatObject(context.Background(), bucket, prefix+"/"+key, minio.StatObjectOptions{})
			return err == nil
		},
		removeObject: func(t *testing.T, key string) {
			if err := client.RemoveObject(context.Background(), bucket, prefix+"/"+key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// runFilestore: attachments added and deleted over time with Odoo's
// deferred deletion, a push after each change; the database restored to
// several moments, and filestore restore brings exactly the files each
// moment references. Then expire drops the backup before the last one:
// the objects only that older window referenced go, the rest restore;
// and an object removed from the repository is reported missing.
func runFilestore(t *testing.T, h *Harness, rc filestoreRepoCase) {
	pg, wv := h.StartArchiving("primary", rc.repo)

	// walvault runs as the server's user: it reads the filestore and
	// writes the restored ones beside it.
	odooData := h.Mkdir(h.Path("odoo-data"), 0o755)
	h.Mkdir(filepath.Join(odooData, "filestore"), 0o755)
	site := newOdooSite(t, h, pg, odooData)
	state := h.Mkdir(h.Path("filestore-state"), 0o700)
	push := func() string {
		return wv.MustRun("filestore", "push", "--data-dir", odooData, "--db", "prod", "--state-dir", state)
	}
	wv.MustRun("backup", "--fast", "--label", "first")
	waitPastBackupEnd(t, wv)

	// 1. Two invoices.
	a := site.attach("A", []byte("invoice A "+strings.Repeat("lorem ipsum ", 200)))
	b := site.attach("B", []byte("invoice B"))
	// A file Odoo never wrote (damaged on disk): reported, not stored.
	bad := "ee/" + strings.Repeat("e", 40)
	os.MkdirAll(filepath.Join(site.dir, "ee"), 0o755)
	os.WriteFile(filepath.Join(site.dir, bad), []byte("bit rot"), 0o644)
	out := push()
	if !strings.Contains(out, bad) {
		t.Errorf("push did not report %s, whose content does not match its name:\n%s", bad, out)
	}
	t1 := site.now()

	// 2. A third; A's row deleted (file stays until the GC).
	c := site.attach("C", make([]byte, 200<<10)) // 200 KiB of zeros
	site.unlink("A")
	push()
	t2 := site.now()

	// 3. The GC removes A's file.
	site.gc()
	push()

	// 4. A's content attached again (same name), B deleted and collected.
	site.attach("A2", site.files[a])
	site.unlink("B")
	site.gc()
	push()
	t4 := site.now()
	if rc.hasObject(t, "filestore/objects/"+bad) {
		t.Errorf("the damaged file %s was stored", bad)
	}

	// A second backup, then E. Backup start times have whole seconds:
	// start it in a later second than the last pass, as it would be in
	// practice (expire's default margin is an hour).
	time.Sleep(1100 * time.Millisecond)
	wv.MustRun("backup", "--fast", "--label", "second")
	waitPastBackupEnd(t, wv)
	e := site.attach("E", []byte("invoice E"))
	push()
	t5 := site.now()
	// Recovery to a time stops at the first commit after it: make one.
	site.exec(`CREATE TABLE later ()`)
	pg.SwitchAndWaitArchived()

	restoreAt := func(name, target string) *Cluster {
		t.Helper()
		dir := h.Path(name)
		wv.MustRun("restore", "--pgdata", dir, "--target-time", target, "--target-action", "promote", "--copy-s3-credentials")
		c := h.ClusterAt(name, dir)
		c.Env = wv.Env
		// A test restore: its new timeline must not reach the repository.
		c.Configure("archive_mode = off")
		c.Start()
		c.WaitPromoted()
		return c
	}
	restoreFiles := func(c *Cluster, as string, want int) (string, string) {
		t.Helper()
		return wv.RunExpect(want, "filestore", "restore", "--db", "prod", "--as", as, "--data-dir", odooData,
			"--pg-url", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/prod?sslmode=disable", c.Port))
	}
	for _, m := range []struct {
		name, at string
		want     []string
	}{
		{"t1", t1, []string{a, b}},
		{"t2", t2, []string{b, c}},
		{"t4", t4, []string{a, c}},
	} {
		rcl := restoreAt("restored-"+m.name, m.at)
		restoreFiles(rcl, "prod_"+m.name, 0)
		want := map[string][]byte{}
		for _, n := range m.want {
			want[n] = site.files[n]
		}
		checkFilestore(t, filepath.Join(odooData, "filestore", "prod_"+m.name), want)
		// A second run finds everything in place.
		out, _ := restoreFiles(rcl, "prod_"+m.name, 0)
		if !strings.Contains(out, fmt.Sprintf("%d already present", len(m.want))) {
			t.Errorf("second filestore restore at %s: %s", m.name, out)
		}
		rcl.Stop("fast")
	}

	// Expire the first backup: B was referenced only before the second
	// backup's start; A (attached again) and C still are.
	out = wv.MustRun("expire", "--retain-full", "1", "--filestore-margin", "0s")
	if !strings.Contains(out, "would remove 1 objects") || !rc.hasObject(t, "filestore/objects/"+b) {
		t.Errorf("expire dry run:\n%s", out)
	}
	wv.MustRun("expire", "--retain-full", "1", "--filestore-margin", "0s", "--confirm")
	if rc.hasObject(t, "filestore/objects/"+b) {
		t.Errorf("expire kept %s, which no moment after the kept backup references", b)
	}
	for _, n := range []string{a, c, e} {
		if !rc.hasObject(t, "filestore/objects/"+n) {
			t.Errorf("expire removed %s, still referenced", n)
		}
	}
	rcl := restoreAt("restored-t5", t5)
	restoreFiles(rcl, "prod_t5", 0)
	checkFilestore(t, filepath.Join(odooData, "filestore", "prod_t5"), map[string][]byte{a: site.files[a], c: site.files[c], e: site.files[e]})

	// An object lost from the repository: the others restore, the lost
	// one is listed, and the exit code says "incomplete".
	rc.removeObject(t, "filestore/objects/"+c)
	out, _ = restoreFiles(rcl, "prod_lost", 13)
	if !strings.Contains(out, "missing (not in the repository): "+c) {
		t.Errorf("filestore restore did not list %s as missing:\n%s", c, out)
	}
	checkFilestore(t, filepath.Join(odooData, "filestore", "prod_lost"), map[string][]byte{a: site.files[a], e: site.files[e]})
	rcl.Stop("fast")

	info := wv.MustRun("filestore", "info")
	if !strings.Contains(info, "filestore objects: 2 ") || !strings.Contains(info, "prod") {
		t.Errorf("filestore info: want 2 objects (A and E) and database prod:\n%s", info)
	}
	if info := wv.MustRun("info"); !strings.Contains(info, "filestore objects: 2 ") {
		t.Errorf("info shows no filestore:\n%s", info)
	}
}

// TestFilestoreContinuous: push --interval stores files as they appear and
// ends cleanly, exit 0, on SIGTERM.
func TestFilestoreContinuous(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg := h.InitCluster("primary")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	pg.Stop("fast")

	fsDir := h.Mkdir(h.Path("filestore"), 0o755)
	write := func(content string) string {
		name := fname([]byte(content))
		os.MkdirAll(filepath.Join(fsDir, name[:2]), 0o755)
		if err := os.WriteFile(filepath.Join(fsDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	stored := func(name string) func() (bool, error) {
		return func() (bool, error) {
			_, err := os.Stat(filepath.Join(repo.Dir, "filestore", "objects", name))
			return err == nil, err
		}
	}
	first := write("first attachment")
	cmd, out := wv.Start("filestore", "push", "--filestore", fsDir, "--db", "prod",
		"--state-dir", h.Mkdir(h.Path("state"), 0o700), "--interval", "200ms")
	waitFor(t, "the first file stored", time.Minute, stored(first))
	second := write("second attachment")
	waitFor(t, "a file added later stored", time.Minute, stored(second))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("push --interval after SIGTERM: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "logged "); n < 2 {
		t.Errorf("%d passes logged a record, want 2 or more:\n%s", n, out.String())
	}
}
