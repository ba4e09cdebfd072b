package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIncrementalPG17: PostgreSQL 17 with summarize_wal on sends only the
// blocks its WAL summaries say changed (UPLOAD_MANIFEST, then BASE_BACKUP
// … INCREMENTAL), and walvault rebuilds every relation file's entry from
// the previous backup's file list. A chain of three backups, between
// which relations grow, shrink (TRUNCATE, VACUUM cutting off the end),
// are created, dropped and rewritten, also in a tablespace: each backup
// restores on its own to a point after it, with every table's content
// exactly the primary's (digests), pgbench's invariants, amcheck, and the
// restored directory judged against its backup_manifest (rewritten whole:
// no INCREMENTAL file, no "INCREMENTAL FROM" in backup_label). Then
// summarize_wal is turned off and on again, so the server's summaries no
// longer reach back to the previous backup: the server refuses, walvault
// says so and takes a backup of every block, and the next one is
// incremental again. The newest restored copy, promoted, archives into
// the repository: its first backup is not incremental (another
// timeline). verify passes on the whole repository.
func TestIncrementalPG17(t *testing.T) {
	requireSuite(t)
	bin := majorBin(t, 17)
	h := newHarness(t)
	h.ServerBin = bin
	rp := h.NewFileRepo("repo")
	pg := h.InitCluster("primary")
	pg.Env = rp.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Configure("summarize_wal = on")
	pg.Start()
	wv := rp.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	pg.PgbenchInit(5)
	pg.CreateMarks()
	ts := h.Mkdir(h.Path("ts1"), 0o700)
	pg.Exec("CREATE TABLESPACE ts1 LOCATION '" + ts + "'")
	pg.Exec(`CREATE TABLE grow (id int PRIMARY KEY, v text);
INSERT INTO grow SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
CREATE TABLE shrink (id int, v text) WITH (autovacuum_enabled = off);
INSERT INTO shrink SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 30000) g;
CREATE TABLE emptied (id int, v text);
INSERT INTO emptied SELECT g, md5(g::text) FROM generate_series(1, 10000) g;
CREATE TABLE doomed (id int);
INSERT INTO doomed SELECT generate_series(1, 5000);
CREATE TABLE in_ts (id int PRIMARY KEY, v text) TABLESPACE ts1;
INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 15000) g;
CHECKPOINT`)

	tables := []string{"grow", "shrink", "emptied", "in_ts", "fresh", "pgbench_accounts", "pgbench_branches", "pgbench_tellers"}
	digests := func(c *Cluster) map[string]string { return tableDigests(c, tables) }

	var backups []taken
	next := 1
	backup := func(fast, wantIncremental bool, wantLog string) {
		t.Helper()
		args := []string{"backup"}
		if fast {
			args = append(args, "--fast")
		}
		stdout, stderr := wv.RunExpect(0, args...)
		if got := strings.Contains(stdout, "incremental from "); got != wantIncremental {
			t.Fatalf("backup %d: incremental %v, want %v\n%s\n%s", len(backups)+1, got, wantIncremental, stdout, tail(stderr, 20))
		}
		if wantLog != "" && !strings.Contains(stderr, wantLog) {
			t.Errorf("backup %d: the log does not say %q:\n%s", len(backups)+1, wantLog, tail(stderr, 20))
		}
		waitPastNewestStop(t, wv)
		d, sums := digests(pg), pg.CheckBenchInvariants()
		marks := pg.CommitMarks(next, next+3, "after", 50*time.Millisecond)
		next += 4
		info := wv.Info()
		b := info.Backups[len(info.Backups)-1]
		if (b.IncrementalFrom != "") != wantIncremental {
			t.Errorf("info: backup %s incremental_from %q, want incremental %v", b.ID, b.IncrementalFrom, wantIncremental)
		}
		if wantIncremental && b.IncrementalFrom != backups[len(backups)-1].id {
			t.Errorf("info: backup %s incremental from %q, want the previous backup %s", b.ID, b.IncrementalFrom, backups[len(backups)-1].id)
		}
		t.Logf("backup %s: %d bytes, stored %d (new %d, shared %d), incremental from %q", b.ID, b.Bytes, b.StoredBytes, b.NewBytes, b.SharedBytes, b.IncrementalFrom)
		backups = append(backups, taken{id: b.ID, incremental: wantIncremental, digests: d, sums: sums, marks: marks})
	}

	backup(true, false, "")
	// Between the first and the second: grow, shrink at the end (VACUUM
	// truncates the relation), empty, drop, create, pgbench updates.
	pg.Exec(`INSERT INTO grow SELECT g, md5(g::text) FROM generate_series(20001, 60000) g;
UPDATE grow SET v = 'changed' WHERE id % 1000 = 0;
DELETE FROM shrink WHERE id > 5000;
UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid % 3000 = 0;
UPDATE pgbench_branches SET bbalance = bbalance + 7 * (SELECT count(*) FROM pgbench_accounts WHERE aid % 3000 = 0) WHERE bid = 1;
UPDATE pgbench_tellers SET tbalance = tbalance + 7 * (SELECT count(*) FROM pgbench_accounts WHERE aid % 3000 = 0) WHERE tid = 1;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1, 1, 1, 7 * count(*), now() FROM pgbench_accounts WHERE aid % 3000 = 0;
TRUNCATE emptied;
DROP TABLE doomed;
CREATE TABLE fresh (id int, v text);
INSERT INTO fresh SELECT g, md5(g::text) FROM generate_series(1, 8000) g;
UPDATE in_ts SET v = 'ts-changed' WHERE id % 500 = 0;`)
	pg.Exec("VACUUM shrink")
	if n := pg.QueryString("SELECT (pg_relation_size('shrink') < 30000 * 100)::text"); n != "true" {
		t.Fatalf("VACUUM did not shorten shrink")
	}
	// The default path: a spread checkpoint (two minutes here).
	backup(false, true, "incremental backup")
	// Between the second and the third: more of each, on top of a backup
	// that was itself incremental (its rewritten manifest is the one
	// uploaded).
	pg.Exec(`INSERT INTO emptied SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
INSERT INTO shrink SELECT g, 'back' FROM generate_series(5001, 9000) g;
UPDATE fresh SET v = 'again' WHERE id % 7 = 0;
INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(15001, 40000) g`)
	pg.Exec("VACUUM FULL grow")
	backup(true, true, "incremental backup")

	// Summaries interrupted: the next backup's range is not covered.
	pg.Exec("ALTER SYSTEM SET summarize_wal = off")
	pg.Exec("SELECT pg_reload_conf()")
	pg.Exec("INSERT INTO grow SELECT g, 'gap' FROM generate_series(60001, 61000) g")
	pg.Exec("CHECKPOINT")
	pg.SwitchAndWaitArchived()
	pg.Exec("ALTER SYSTEM SET summarize_wal = on")
	pg.Exec("SELECT pg_reload_conf()")
	backup(true, false, "PostgreSQL refused the incremental backup")
	pg.Exec("UPDATE grow SET v = 'last' WHERE id % 997 = 0")
	backup(true, true, "incremental backup")
	pg.SwitchAndWaitArchived()
	pg.Stop("immediate")
	for _, dir := range []string{pg.DataDir, ts} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}

	for i, b := range backups {
		before, after := b.marks[0].CommitTS, b.marks[1].CommitTS
		target := before.Add(after.Sub(before) / 2).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
		name := "restored-" + b.id
		dir := h.Path(name)
		tsNew := h.Mkdir(h.Path("ts-"+b.id), 0o700)
		wv.MustRun("restore", "--pgdata", dir, "--backup", b.id, "--target-time", target, "--target-action", "promote",
			"--tablespace-map", ts+"="+tsNew)
		label, err := os.ReadFile(filepath.Join(dir, "backup_label"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(label), "INCREMENTAL") {
			t.Errorf("backup %s: restored backup_label still says INCREMENTAL:\n%s", b.id, label)
		}
		if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), "INCREMENTAL.") {
				t.Errorf("backup %s: restored %s", b.id, p)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		rc := h.ClusterAt(name, dir)
		rc.Env = wv.Env
		last := i == len(backups)-1
		if last {
			// The newest copy becomes the primary: it archives into the
			// repository on its new timeline and summarizes WAL.
			rc.ConfigureArchiving(suite.walvault + " wal-push %p")
			rc.Configure("summarize_wal = on")
		} else {
			rc.Configure("archive_mode = off", "summarize_wal = off")
		}
		rc.Start()
		rc.WaitPromoted()
		if got, want := rc.MarkIDs(), seq(1, b.marks[0].ID); !equalInts(got, want) {
			t.Errorf("backup %d (%s): recovered marks %v, want exactly %v", i+1, b.id, got, want)
		}
		got := digests(rc)
		for k, v := range b.digests {
			if got[k] != v {
				t.Errorf("backup %d (%s, incremental %v): table %s restored as %.60s, the primary had %.60s", i+1, b.id, b.incremental, k, got[k], v)
			}
		}
		if s := rc.CheckBenchInvariants(); s != b.sums {
			t.Errorf("backup %d (%s): pgbench sums %+v, the primary had %+v", i+1, b.id, s, b.sums)
		}
		rc.AmCheck()
		if last {
			// The previous backup is of timeline 1, the server of 2:
			// blocks of timeline 1 after the branch point could hide in
			// it, so this backup reads every block.
			wvRC := rp.Walvault(h, rc.LibpqEnv()...)
			stdout, stderr := wvRC.RunExpect(0, "backup", "--fast")
			if strings.Contains(stdout, "incremental from ") || !strings.Contains(stderr, "the server is on timeline 2") {
				t.Errorf("first backup after a promotion: incremental, or the log does not say why not:\n%s\n%s", stdout, tail(stderr, 20))
			}
		}
		rc.Stop("fast")
		checkMajor(t, h, name, 17)
		if i == 0 {
			deltaWithTablespace(t, h, wv, ts, dir, tsNew, backups[0], backups[1], tables)
		}
		for _, d := range []string{dir, tsNew} {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	wv.RunExpect(0, "verify")
}

// tableDigests: every table's content, by name, in a stable order.
func tableDigests(c *Cluster, tables []string) map[string]string {
	d := map[string]string{}
	for _, tb := range tables {
		if c.QueryString("SELECT count(*) FROM pg_class WHERE relname = $1 AND relkind = 'r'", tb) == "0" {
			d[tb] = "absent"
			continue
		}
		d[tb] = c.QueryString(fmt.Sprintf("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM %s t", tb))
	}
	d["doomed"] = c.QueryString("SELECT count(*) FROM pg_class WHERE relname = 'doomed'")
	return d
}

// taken is one backup of TestIncrementalPG17 and what the primary held.
type taken struct {
	id          string
	incremental bool
	digests     map[string]string
	sums        BenchSums
	marks       []Mark // committed after the backup: a target between
}

// deltaWithTablespace brings dir, a copy restored from an older backup
// (since promoted and stopped) with its tablespace in tsNew, to backup
// next with restore --delta. The tablespace directory also holds what
// pg_upgrade leaves (another major version's directory) and a note of the
// operator's: both stay, untouched and owned as they were; a relation
// file the backup does not hold is removed and a damaged block rewritten.
// A tablespace directory the cluster does not link to is refused first
// (exit 5), as it is not empty. Then the way an operator meets it on the
// server itself: the tablespace back at the location the backup names,
// restore run as root (the files given to postgres) without
// --tablespace-map, back to backup prev; what pg_upgrade left still
// keeps its owner.
func deltaWithTablespace(t *testing.T, h *Harness, wv *Walvault, ts, dir, tsNew string, prev, next taken, tables []string) {
	t.Helper()
	links, err := os.ReadDir(filepath.Join(dir, "pg_tblspc"))
	if err != nil || len(links) != 1 {
		t.Fatalf("pg_tblspc of %s: %v %v, want one link", dir, links, err)
	}
	oid := links[0].Name()
	versionDirs, _ := filepath.Glob(filepath.Join(tsNew, "PG_17_*"))
	if len(versionDirs) != 1 {
		t.Fatalf("%s holds %v, want one PG_17_* directory", tsNew, versionDirs)
	}
	dbDirs, _ := filepath.Glob(filepath.Join(versionDirs[0], "*"))
	if len(dbDirs) != 1 {
		t.Fatalf("%s holds %v, want one database directory", versionDirs[0], dbDirs)
	}
	// The largest relation file (in_ts's heap) loses a block.
	var largest string
	var size int64
	files, _ := os.ReadDir(dbDirs[0])
	for _, f := range files {
		if fi, err := f.Info(); err == nil && fi.Size() > size {
			largest, size = filepath.Join(dbDirs[0], f.Name()), fi.Size()
		}
	}
	if size < 3*8192 {
		t.Fatalf("largest file in %s: %s, %d bytes", dbDirs[0], largest, size)
	}
	f, err := os.OpenFile(largest, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 8192), 8192); err != nil {
		t.Fatal(err)
	}
	f.Close()
	stray := filepath.Join(dbDirs[0], "999999")
	leftover := filepath.Join(tsNew, "PG_16_202307071", "16384", "16400")
	note := filepath.Join(tsNew, "README.operator")
	for p, content := range map[string]string{stray: "stray", leftover: "left by pg_upgrade", note: "the operator's"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before, after := next.marks[0].CommitTS, next.marks[1].CommitTS
	target := before.Add(after.Sub(before) / 2).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
	args := []string{"restore", "--delta", "--pgdata", dir, "--backup", next.id, "--target-time", target, "--target-action", "promote"}

	other := h.Mkdir(h.Path("ts-other"), 0o700)
	if err := os.WriteFile(filepath.Join(other, "x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr := wv.RunExpect(5, append(args, "--tablespace-map", ts+"="+other)...)
	if !strings.Contains(stderr, "pg_tblspc/"+oid) || !strings.Contains(stderr, tsNew) {
		t.Errorf("delta restore into a tablespace directory the cluster does not use: the error does not name the link and where it points:\n%s", tail(stderr, 5))
	}

	h.VerifyIgnore = []string{path.Join("pg_tblspc", oid, "PG_16_202307071"), path.Join("pg_tblspc", oid, "README.operator")}
	out := wv.MustRun(append(args, "--tablespace-map", ts+"="+tsNew)...)
	h.VerifyIgnore = nil
	t.Logf("delta restore with a tablespace: %s", out)
	if _, err := os.Lstat(stray); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s, not in the backup: %v, want it removed", stray, err)
	}
	for p, content := range map[string]string{leftover: "left by pg_upgrade", note: "the operator's"} {
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Errorf("%s: %q %v, want it kept as it was", p, got, err)
		}
		for q := p; q != tsNew; q = filepath.Dir(q) {
			var st syscall.Stat_t
			if err := syscall.Lstat(q, &st); err == nil && int(st.Uid) != os.Geteuid() {
				t.Errorf("%s: owned by uid %d after the delta restore, want %d as before", q, st.Uid, os.Geteuid())
			}
		}
	}
	checkDeltaCopy(t, h, wv, "delta-"+next.id, dir, next, tables)

	// The tablespace at the backup's own location (a named location:
	// it exists, belongs to postgres, no link on the way), the cluster's
	// link pointing there; restore as root, no mapping.
	if err := os.Rename(tsNew, ts); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(ts, tsNew) // the caller removes tsNew
	link := filepath.Join(dir, "pg_tblspc", oid)
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, int(h.pgUser().UID), int(h.pgUser().GID)); err != nil {
		t.Fatal(err)
	}
	before, after = prev.marks[0].CommitTS, prev.marks[1].CommitTS
	target = before.Add(after.Sub(before) / 2).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
	h.VerifyIgnore = []string{path.Join("pg_tblspc", oid, "PG_16_202307071"), path.Join("pg_tblspc", oid, "README.operator")}
	out = wv.AsCurrentUser().MustRun("restore", "--delta", "--pgdata", dir, "--backup", prev.id, "--target-time", target, "--target-action", "promote")
	h.VerifyIgnore = nil
	t.Logf("delta restore as root, tablespace at its own location: %s", out)
	leftover, note = filepath.Join(ts, "PG_16_202307071", "16384", "16400"), filepath.Join(ts, "README.operator")
	for _, p := range []string{leftover, filepath.Dir(leftover), filepath.Dir(filepath.Dir(leftover)), note} {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil || int(st.Uid) != os.Geteuid() {
			t.Errorf("%s: %v, owner uid %d after a delta restore as root; want it kept, owned by uid %d as before", p, err, st.Uid, os.Geteuid())
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ts, filepath.Base(versionDirs[0])), &st); err != nil || st.Uid != h.pgUser().UID {
		t.Errorf("%s's PG_17 directory: %v, owner uid %d; want the server's account, %d", ts, err, st.Uid, h.pgUser().UID)
	}
	checkDeltaCopy(t, h, wv, "delta-root-"+prev.id, dir, prev, tables)
}

// checkDeltaCopy starts the cluster a delta restore of backup b left in
// dir (name: its log) and checks it holds exactly what the primary had at
// the target: marks, every table's content, pgbench's invariants, amcheck.
func checkDeltaCopy(t *testing.T, h *Harness, wv *Walvault, name, dir string, b taken, tables []string) {
	t.Helper()
	rc := h.ClusterAt(name, dir)
	rc.Env = wv.Env
	rc.Configure("archive_mode = off", "summarize_wal = off")
	rc.Start()
	rc.WaitPromoted()
	if got, want := rc.MarkIDs(), seq(1, b.marks[0].ID); !equalInts(got, want) {
		t.Errorf("%s: recovered marks %v, want exactly %v", name, got, want)
	}
	got := tableDigests(rc, tables)
	for k, v := range b.digests {
		if got[k] != v {
			t.Errorf("%s: table %s restored as %.60s, the primary had %.60s", name, k, got[k], v)
		}
	}
	if s := rc.CheckBenchInvariants(); s != b.sums {
		t.Errorf("%s: pgbench sums %+v, the primary had %+v", name, s, b.sums)
	}
	rc.AmCheck()
	rc.Stop("fast")
}
