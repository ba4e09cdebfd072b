package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOdooSetupAsDocumented: the README's Quick start and its Odoo setup,
// and the RUNBOOK's restore of incident 1, run as those documents print
// them, each command as the user they name, on a directory repository
// shared by the group walvault:
//
//   - root makes the key, the repository directory and the configuration;
//     postgres creates the repository, archives WAL (archive_command, with
//     the server's groups) and takes the backups; odoo pushes the filestore
//     of an Odoo-shaped database into the same repository;
//   - everything in the repository is of the group, directories 2770 and
//     objects 0640, whoever wrote it, under the services' umask;
//   - expire, run as postgres, removes a filestore object odoo wrote and
//     the lock and temporary a killed odoo push left, and odoo pushes again
//     after it;
//   - postgres without the group (a server not restarted after usermod)
//     is refused, saying why, and leaves nothing behind;
//   - root restores, with the RUNBOOK's command, the database and its
//     filestore (the files belong to odoo), giving the server a copy of
//     root's own key; and with the Quick start's, from a key file the
//     server's user owns (0600), which restore does not claim it cannot
//     read, and which the server then reads itself.
//
// Paths are mapped into the test's directory (the test fails on a
// documented path it does not map); the test cluster's PG* environment
// stands for the local socket of a Debian host; `sudo -u USER` is played
// by setpriv with the user's groups and home and, as Debian's sudo resets
// the environment, only the host's environment.
func TestOdooSetupAsDocumented(t *testing.T) {
	pgAcct, odooAcct, gid := sharedRepoAccounts(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) plays sudo in this test: %v", err)
	}
	h := newHarness(t)
	h.PGUser = pgAcct // with the group, as PostgreSQL's service gets it

	// The host: what the documents call /etc/walvault, /var/lib/walvault,
	// /root, /var/lib/odoo and /var/lib/postgresql/15/main.
	etcDir := h.Path("etc-walvault")
	repoDir := h.Path("var-lib-walvault")
	rootDir := h.Path("root")
	mkdirOwned(t, rootDir, 0o700, 0, 0)
	homes := h.Path("homes")
	mkdirOwned(t, homes, 0o755, 0, 0)
	mkdirOwned(t, filepath.Join(homes, "postgres"), 0o700, pgAcct.UID, pgAcct.GID)
	mkdirOwned(t, filepath.Join(homes, "odoo"), 0o700, odooAcct.UID, odooAcct.GID)
	odooData := h.Path("odoo-data") // production's data_dir, odoo's alone
	mkdirOwned(t, odooData, 0o750, odooAcct.UID, odooAcct.GID)
	mkdirOwned(t, filepath.Join(odooData, "filestore"), 0o750, odooAcct.UID, odooAcct.GID)
	odooConf := h.Path("odoo.conf") // /etc/odoo/odoo.conf
	h.WriteFile(odooConf, []byte("[options]\ndb_name = False\ndata_dir = "+odooData+"\n"), 0o644)
	newOdooData := h.Path("newhost-var-lib-odoo") // incident 1's new host
	mkdirOwned(t, newOdooData, 0o750, odooAcct.UID, odooAcct.GID)

	pg := h.InitCluster("primary")
	binDir := filepath.Dir(suite.walvault)
	pg.Env = []string{"PATH=" + binDir + ":" + os.Getenv("PATH")}
	// The test's own needs: exact commit times, and a bound on the
	// documented backup's spread checkpoint.
	pg.Configure("track_commit_timestamp = on", "checkpoint_timeout = 30s")
	pg.Start()

	readme := mdBlock(t, "README.md", "## Quick start")
	odooSetup := mdBlock(t, "README.md", "**Setup on a Debian/Ubuntu Odoo host**")
	disaster := mdBlock(t, "README.md", "Disaster: the server is gone.")
	incident1 := mdBlock(t, "docs/RUNBOOK.md", "## 1. The server is gone")
	wvLine := regexp.MustCompile(`WV="[^"]*"`).FindString(mdText(t, "docs/RUNBOOK.md"))
	if wvLine == "" {
		t.Fatal(`docs/RUNBOOK.md: no WV="…" convention`)
	}

	sh := &docShell{h: h, mapping: []string{
		"/etc/walvault", etcDir,
		"/var/lib/walvault", repoDir,
		"/root/", rootDir + "/",
		"/var/lib/odoo", newOdooData,
	}, hostEnv: append(pg.LibpqEnv(),
		"PATH="+binDir+":"+os.Getenv("PATH"),
		"WALVAULT_ODOO_CONFIG="+odooConf, // /etc/odoo/odoo.conf
	)}
	checkAccountCommands(t, "README.md", readme, odooSetup)
	checkAccountCommands(t, "docs/RUNBOOK.md", incident1)

	// Quick start 1: the key pair, as root.
	qs := shellCommands(readme)
	recipient := strings.TrimSpace(sh.must(t, commandsOfStep(t, qs, 1)))
	if !strings.HasPrefix(recipient, "age1") {
		t.Fatalf("step 1 printed %q, want the recipient", recipient)
	}
	rootKey := filepath.Join(rootDir, "walvault-key.txt")
	registerKeySecret(t, rootKey)
	sh.mapping = append(sh.mapping, "age1...your-recipient...", recipient)

	// 2 and 3: the repository directory, the configuration, init as postgres.
	sh.must(t, commandsOfStep(t, qs, 2))
	sh.must(t, commandsOfStep(t, qs, 3))
	conf := filepath.Join(etcDir, "walvault.conf")
	if fi, err := os.Stat(repoDir); err != nil || fi.Mode() != fs.ModeDir|fs.ModeSetgid|0o770 || fi.Sys().(*syscall.Stat_t).Gid != gid {
		t.Fatalf("repository directory after step 2: %v, %v; want drwxrws--- of the group walvault", fi, err)
	}

	// 4: archiving, as documented, then a restart.
	settings := docSettings(readme, 4)
	if len(settings) != 3 {
		t.Fatalf("Quick start step 4 lists %d settings, want wal_level, archive_mode and archive_command: %q", len(settings), settings)
	}
	for i := range settings {
		settings[i] = sh.mapPaths(t, settings[i])
	}
	pg.Configure(settings...)
	pg.Stop("fast")
	pg.Start()

	// Production: an Odoo-shaped database whose attachments are files in
	// odoo's filestore.
	loadOdoo17(t, pg, "prod")
	site := realFilestore(t, pg, "prod", odooData, odooAcct)
	a := site.attach("A", []byte("invoice A, deleted before the second backup"))
	b := site.attach("B", []byte("invoice B"))
	site.chownFiles(odooAcct)

	// 5 and 6: a backup as postgres, what can be restored as root.
	pg.Exec("CHECKPOINT") // the documented backup's checkpoint is spread: keep it short
	sh.must(t, commandsOfStep(t, qs, 5))
	sh.must(t, commandsOfStep(t, qs, 6))

	// The Odoo setup: odoo's own writer key (step 2, as root), then the
	// filestore, continuously, as odoo.
	sh.must(t, commandsOfStep(t, shellCommands(odooSetup), 2))
	pushLine := onlyCommand(t, "README.md Odoo setup", shellCommands(odooSetup), "sudo -u odoo walvault filestore push")
	push := func() {
		t.Helper()
		p := sh.start(t, pushLine, odooAcct)
		p.waitPasses(t, 1)
		p.stop(t)
	}
	push()
	wantOwned(t, repoDir, "filestore/objects/"+a, odooAcct.UID, gid)
	wantOwned(t, repoDir, "walvault.json", pgAcct.UID, gid)

	// A is deleted in Odoo and collected; a second backup in a later
	// second (start times have whole seconds); C comes after it.
	site.unlink("A")
	site.gc()
	site.chownFiles(odooAcct)
	push()
	time.Sleep(1100 * time.Millisecond)
	pg.Exec("CHECKPOINT")
	sh.must(t, commandsOfStep(t, qs, 5))
	root := &Walvault{h: h, Env: slices.Concat(sh.hostEnv, []string{"WALVAULT_CONFIG=" + conf, "WALVAULT_AGE_IDENTITY_FILE=" + rootKey}), Timeout: 5 * time.Minute}
	waitPastBackupEnd(t, root)
	c := site.attach("C", []byte("invoice C, after the second backup"))
	site.chownFiles(odooAcct)

	// A push killed while it holds its lock (a crash, the OOM killer):
	// the lock and maybe a temporary stay, odoo's.
	lock := killPushHoldingLock(t, sh, pushLine, odooAcct, repoDir, site)
	temps := leftTemporaries(t, repoDir, odooAcct, gid)

	// PostgreSQL not restarted after usermod: postgres without the group
	// may not make directories in the repository, and says why.
	noGroup := *pgAcct
	noGroup.Groups = nil
	// (The settings by environment: walvault.conf is the group's too.)
	stranger := &Walvault{h: h, Env: slices.Concat(sh.hostEnv, []string{"WALVAULT_REPO=file://" + repoDir, "WALVAULT_AGE_RECIPIENTS=" + recipient,
		"WALVAULT_WRITER_KEY_FILE=" + filepath.Join(etcDir, "writer.key")}), As: &noGroup, Timeout: 5 * time.Minute}
	_, stderr, exit := stranger.Run("note", root.Info().Backups[0].ID, "written without the group")
	if exit == 0 || !strings.Contains(stderr, "only members of the group") {
		t.Errorf("a note by postgres without the group: exit %d, want a refusal naming the group:\n%s", exit, stderr)
	}

	// expire as postgres (with an identity it owns): the first backup goes,
	// and with it A's object, which odoo wrote; so do the dead push's lock
	// and temporaries.
	pgKey := h.Path("postgres-key.txt")
	copyFile(t, rootKey, pgKey, 0o600, pgAcct.UID, pgAcct.GID)
	waitFor(t, "the killed push's temporaries to be older than a second", time.Minute, func() (bool, error) {
		for _, p := range temps {
			fi, err := os.Stat(p)
			if err != nil || time.Since(fi.ModTime()) < 1100*time.Millisecond {
				return false, err
			}
		}
		return true, nil
	})
	sh.must(t, wvLine+"\nsudo -u postgres $WV expire --age-identity-file "+pgKey+" --retain-full 1 --filestore-margin 0s --confirm")
	for _, p := range append([]string{filepath.Join(repoDir, "filestore", "objects", a), lock}, temps...) {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there after expire: %v", p, err)
		}
	}
	wantOwned(t, repoDir, "filestore/objects/"+b, odooAcct.UID, gid)
	if n := len(root.Info().Backups); n != 1 {
		t.Errorf("%d backups after expire --retain-full 1", n)
	}
	// odoo carries on where postgres folded its log (and stores C, which
	// the killed pass did not log).
	push()
	wantOwned(t, repoDir, "filestore/objects/"+c, odooAcct.UID, gid)

	// The last commits, only in WAL; then the server is gone.
	pg.CreateMarks()
	marks := pg.CommitMarks(1, 3, "after the last backup", 50*time.Millisecond)
	pg.SwitchAndWaitArchived()
	wantFiles := map[string][]byte{}
	for _, n := range site.referenced(t) {
		wantFiles[n] = site.files[n]
	}
	pg.Stop("fast")
	if _, ok := wantFiles[a]; ok || len(wantFiles) != 6 {
		t.Fatalf("prod references %d files (A among them: %v), want the fixture's 4, B and C", len(wantFiles), ok)
	}
	checkSharedRepo(t, repoDir, gid, map[string]uint32{"wal/": pgAcct.UID, "filestore/objects/": odooAcct.UID})

	// RUNBOOK, incident 1, as root, with root's own key.
	t.Run("runbook incident 1", func(t *testing.T) {
		inHand := h.Path("incident1")
		mkdirOwned(t, inHand, 0o700, 0, 0)
		copyFile(t, rootKey, filepath.Join(inHand, "walvault.key"), 0o600, 0, 0)
		pgdata := h.Path("restored-main")
		ish := sh.with(inHand, "/var/lib/postgresql/15/main", pgdata)
		cmds := shellCommands(incident1)
		restoreLine := onlyCommand(t, "RUNBOOK incident 1", cmds, "$WV restore ")
		script := strings.Join([]string{wvLine,
			onlyCommand(t, "RUNBOOK incident 1", cmds, "install -m 0600 walvault.key "),
			onlyCommand(t, "RUNBOOK incident 1", cmds, "export WALVAULT_AGE_IDENTITY_FILE="),
			onlyCommand(t, "RUNBOOK incident 1", cmds, "$WV info"),
			restoreLine}, "\n")
		ish.must(t, script)
		h.afterRestore(shellWords(t, strings.TrimPrefix(ish.mapPaths(t, restoreLine), "$WV ")))
		restoredFiles := filepath.Join(newOdooData, "filestore", "prod")
		checkFilestore(t, restoredFiles, wantFiles)
		filepath.WalkDir(restoredFiles, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				if st := statT(t, p); st.Uid != odooAcct.UID {
					t.Errorf("%s: uid %d, want odoo's %d", p, st.Uid, odooAcct.UID)
				}
			}
			return err
		})
		rc := h.ClusterAt("restored-main", pgdata)
		rc.Configure("archive_mode = off") // a test copy: no new timeline in the repository
		rc.Start()
		rc.WaitPromoted()
		// Marks only in WAL: restore_command read root's key through
		// the copy restore gave it (postgres cannot read root's).
		if got := rc.MarkIDs(); !equalInts(got, seq(1, 3)) {
			t.Errorf("restored marks %v, want 1..3", got)
		}
		if got := dbInts(t, rc, "prod", "SELECT count(*) FROM ir_attachment WHERE store_fname IS NOT NULL"); len(got) != 1 || got[0] != 6 {
			t.Errorf("restored prod references %v files, want 6", got)
		}
		rc.Stop("fast")
	})

	// README, Quick start, "Disaster": as root, with a key file the
	// server's user owns and only it may read.
	t.Run("quick start disaster", func(t *testing.T) {
		inHand := h.Path("disaster")
		mkdirOwned(t, inHand, 0o755, 0, 0)
		copyFile(t, conf, filepath.Join(inHand, "walvault.conf"), 0o644, 0, 0)
		key := filepath.Join(inHand, "key.txt")
		copyFile(t, rootKey, key, 0o600, pgAcct.UID, pgAcct.GID)
		pgdata := h.Path("restored-qs")
		target := marks[1].CommitTS.UTC().Format("2006-01-02 15:04:05.999999-07")
		dsh := sh.with(inHand, "/var/lib/postgresql/15/main", pgdata, "2026-11-22 10:14:00+01", target)
		restoreLine := onlyCommand(t, "README Disaster", shellCommands(disaster), "walvault restore ")
		stdout, stderr, err := dsh.run(t, restoreLine)
		if err != nil {
			t.Fatalf("%s: %v\n%s\n%s", restoreLine, err, stdout, stderr)
		}
		h.afterRestore(shellWords(t, strings.TrimPrefix(dsh.mapPaths(t, restoreLine), "walvault ")))
		if strings.Contains(stdout+stderr, "cannot read") || strings.Contains(stdout, "a copy of the identity") {
			t.Errorf("restore claims postgres cannot read the key file it owns, or copies it:\n%s\n%s", stdout, stderr)
		}
		recConf, err := os.ReadFile(filepath.Join(pgdata+".walvault-recovery", "walvault-recovery.conf"))
		if err != nil || !strings.Contains(string(recConf), key) {
			t.Errorf("restore_command's settings do not name %s: %v\n%s", key, err, recConf)
		}
		rc := h.ClusterAt("restored-qs", pgdata)
		rc.Configure("archive_mode = off")
		rc.Start()
		rc.WaitPromoted()
		if got := rc.MarkIDs(); !equalInts(got, seq(1, 2)) {
			t.Errorf("restored to %s: marks %v, want 1..2", target, got)
		}
		rc.Stop("fast")
	})
}

// left. A pass that ends before the kill lands is tried again with another
// file.
func killPushHoldingLock(t *testing.T, sh *docShell, line string, odoo *account, repoDir string, site *odooSite) string {
	t.Helper()
	locks := filepath.Join(repoDir, "locks")
	for attempt := 1; attempt <= 5; attempt++ {
		big := make([]byte, 32<<20)
		if _, err := rand.Read(big); err != nil {
			t.Fatal(err)
		}
		name := fname(big)
		p := filepath.Join(site.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, big, 0o640); err != nil {
			t.Fatal(err)
		}
		site.chownFiles(odoo)
		proc := sh.start(t, line, odoo)
		var held string
		writing := false
		deadline := time.Now().Add(5 * time.Minute)
		for !writing && proc.passes() == 0 && time.Now().Before(deadline) {
			if held == "" {
				entries, _ := os.ReadDir(locks)
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), "shared.filestore-push.") {
						held = filepath.Join(locks, e.Name())
					}
				}
			} else {
				entries, _ := os.ReadDir(filepath.Join(repoDir, ".tmp"))
				writing = len(entries) > 0
			}
			if !writing {
				time.Sleep(time.Millisecond)
			}
		}
		_ = proc.cmd.Process.Kill() // holding the lock, or between passes
		<-proc.done
		proc.done <- nil
		if held == "" {
			t.Logf("attempt %d: the pass ended before its lock was seen; again", attempt)
			continue
		}
		if _, err := os.Lstat(held); err != nil {
			t.Logf("attempt %d: the pass released its lock before the kill; again", attempt)
			continue
		}
		if st := statT(t, held); st.Uid != odoo.UID {
			t.Fatalf("lock %s: uid %d, want odoo's", held, st.Uid)
		}
		t.Logf("attempt %d: push killed holding %s", attempt, held)
		return held
	}
	t.Fatal("the push was never caught holding its lock in 5 attempts")
	return ""
}

// leftTemporaries returns what the kill left in ROOT/.tmp, all odoo's: a
// Put's file, 0640, or 0600 when the kill landed before the Put gave it to
// the group (the others cannot lock it then), or an empty directory a
// mkdir prepared there. If the kill left nothing, it makes a file as a
// killed Put leaves it: odoo's, of the group, 0640.
func leftTemporaries(t *testing.T, repoDir string, odoo *account, gid uint32) []string {
	t.Helper()
	dir := filepath.Join(repoDir, ".tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		st := statT(t, p)
		if st.Uid != odoo.UID {
			t.Errorf("temporary %s: uid %d, want odoo's", p, st.Uid)
		}
		t.Logf("the kill left %s, mode %o", p, st.Mode&0o7777)
		out = append(out, p)
	}
	if len(out) == 0 {
		p := filepath.Join(dir, "put-4242")
		copyBytes(t, p, []byte("half an attachment"), 0o640, odoo.UID, gid)
		t.Logf("the kill left no temporary: made %s as a killed Put leaves it", p)
		out = append(out, p)
	}
	return out
}

// ---------------------------------------------------------------------------
// the Odoo database and filestore

// realFilestore gives each attachment of the fixture's database db a file
// in <dataDir>/filestore/<db> named by its content's SHA-1, as Odoo stores
// them, all odoo's; it returns the site for more changes.
func realFilestore(t *testing.T, pg *Cluster, db, dataDir string, odoo *account) *odooSite {
	t.Helper()
	s := &odooSite{t: t, pg: pg, dir: filepath.Join(dataDir, "filestore", db), ids: map[string]int{}, files: map[string][]byte{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pg.ConnectDB(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT id, name FROM ir_attachment WHERE store_fname IS NOT NULL ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	type att struct {
		id   int
		name string
	}
	var atts []att
	for rows.Next() {
		var a att
		if err := rows.Scan(&a.id, &a.name); err != nil {
			t.Fatal(err)
		}
		atts = append(atts, a)
	}
	if err := rows.Err(); err != nil || len(atts) == 0 {
		t.Fatalf("fixture attachments: %d, %v", len(atts), err)
	}
	for _, a := range atts {
		content := []byte(fmt.Sprintf("%s (attachment %d of the Odoo fixture)\n%s", a.name, a.id, strings.Repeat("content ", 100)))
		name := fname(content)
		if _, err := conn.Exec(ctx, "UPDATE ir_attachment SET store_fname = $1, checksum = $2, file_size = $3 WHERE id = $4",
			name, name[3:], len(content), a.id); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(s.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o640); err != nil {
			t.Fatal(err)
		}
		s.files[name] = content
	}
	s.chownFiles(odoo)
	return s
}

// chownFiles gives the filestore to odoo, which writes it in Odoo.
func (s *odooSite) chownFiles(odoo *account) {
	s.t.Helper()
	err := filepath.WalkDir(s.dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(odoo.UID), int(odoo.GID))
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// referenced returns the files the database references now.
func (s *odooSite) referenced(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := s.pg.ConnectDB(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// wantOwned fails unless the repository's object key belongs to uid and
// gid with mode 0640.
func wantOwned(t *testing.T, repoDir, key string, uid, gid uint32) {
	t.Helper()
	st := statT(t, filepath.Join(repoDir, filepath.FromSlash(key)))
	if st.Uid != uid || st.Gid != gid || st.Mode&0o7777 != 0o640 {
		t.Errorf("%s: uid %d gid %d mode %o, want uid %d gid %d mode 640", key, st.Uid, st.Gid, st.Mode&0o7777, uid, gid)
	}
}

// checkSharedRepo fails for anything in the repository that is not of the
// group, a directory 2770 or a file 0640, for a temporary left in .tmp,
// and for a key prefix whose files are not all the given owner's.
func checkSharedRepo(t *testing.T, repoDir string, gid uint32, owners map[string]uint32) {
	t.Helper()
	counts := map[string]int{}
	err := filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st := statT(t, p)
		rel, _ := filepath.Rel(repoDir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case p == repoDir:
		case d.IsDir():
			if st.Mode&0o7777 != 0o2770 || st.Gid != gid {
				t.Errorf("directory %s: mode %o gid %d, want 2770 and the group %d", rel, st.Mode&0o7777, st.Gid, gid)
			}
		default:
			if st.Mode&0o7777 != 0o640 || st.Gid != gid {
				t.Errorf("file %s: mode %o gid %d, want 0640 and the group %d", rel, st.Mode&0o7777, st.Gid, gid)
			}
			if strings.HasPrefix(rel, ".tmp/") {
				t.Errorf("temporary %s left", rel)
			}
			for prefix, uid := range owners {
				if strings.HasPrefix(rel, prefix) {
					counts[prefix]++
					if st.Uid != uid {
						t.Errorf("%s: uid %d, want %d", rel, st.Uid, uid)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for prefix := range owners {
		if counts[prefix] == 0 {
			t.Errorf("no object under %s", prefix)
		}
	}
}
