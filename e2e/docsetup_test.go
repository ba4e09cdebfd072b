package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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
// by setpriv with the user's groups and home.
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
	}, env: append(pg.LibpqEnv(),
		"PATH="+binDir+":"+os.Getenv("PATH"),
		"WALVAULT_ODOO_CONFIG="+odooConf, // /etc/odoo/odoo.conf
		"WALVAULT_E2E_HOMES="+homes,
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

	// The Odoo setup: the filestore, continuously, as odoo.
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
	root := &Walvault{h: h, Env: slices.Concat(sh.env, []string{"WALVAULT_CONFIG=" + conf, "WALVAULT_AGE_IDENTITY_FILE=" + rootKey}), Timeout: 5 * time.Minute}
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
	stranger := &Walvault{h: h, Env: slices.Concat(sh.env, []string{"WALVAULT_REPO=file://" + repoDir, "WALVAULT_AGE_RECIPIENTS=" + recipient}), As: &noGroup, Timeout: 5 * time.Minute}
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

// ---------------------------------------------------------------------------
// accounts

// sharedGroup is the group of the README's shared repository.
const sharedGroup = "walvault"

// sharedRepoAccounts returns postgres and odoo, both members of the group
// walvault, and the group's id. .ci/run makes them; run as root elsewhere,
// the test makes what is missing (and leaves it: it is what the README
// asks of an Odoo host).
func sharedRepoAccounts(t *testing.T) (pg, odoo *account, gid uint32) {
	t.Helper()
	if os.Geteuid() != 0 || suite.pgUser == nil {
		skipOutsideCI(t, "needs root and a postgres user: walvault runs as root, postgres and odoo")
	}
	var missing []string
	if _, err := user.LookupGroup(sharedGroup); err != nil {
		missing = append(missing, "groupadd --system "+sharedGroup)
	}
	if _, err := user.Lookup("odoo"); err != nil {
		missing = append(missing, "useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin odoo")
	}
	for _, name := range []string{"postgres", "odoo"} {
		if !inGroup(name, sharedGroup) {
			missing = append(missing, "usermod -aG "+sharedGroup+" "+name)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("the accounts of the README's Odoo setup are missing; .ci/run should have run: %s", strings.Join(missing, "; "))
		}
		for _, c := range missing {
			if out, err := exec.Command("sh", "-c", c).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c, err, out)
			}
			t.Logf("made on this machine for the README's Odoo setup (left in place): %s", c)
		}
	}
	g, err := user.LookupGroup(sharedGroup)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	if pg, err = lookupAccount("postgres"); err != nil {
		t.Fatal(err)
	}
	if odoo, err = lookupAccount("odoo"); err != nil {
		t.Fatal(err)
	}
	return pg, odoo, uint32(n)
}

func inGroup(name, group string) bool {
	a, err := lookupAccount(name)
	g, err2 := user.LookupGroup(group)
	if err != nil || err2 != nil {
		return false
	}
	for _, id := range append([]uint32{a.GID}, a.Groups...) {
		if strconv.FormatUint(uint64(id), 10) == g.Gid {
			return true
		}
	}
	return false
}

// checkAccountCommands fails when a documented block creates groups or
// users, or changes memberships, other than sharedRepoAccounts provides:
// the test does not run those commands, it relies on their effect.
func checkAccountCommands(t *testing.T, file string, blocks ...string) {
	t.Helper()
	known := map[string]bool{
		"groupadd --system walvault":    true,
		"usermod -aG walvault postgres": true,
		"usermod -aG walvault odoo":     true,
	}
	for _, block := range blocks {
		for _, c := range shellCommands(block) {
			for _, part := range strings.Split(c.Text, "&&") {
				part = strings.TrimSpace(part)
				if isAccountCommand(part) && !known[part] {
					t.Errorf("%s: %q: the test (sharedRepoAccounts) and .ci/run do not make this account change", file, part)
				}
			}
		}
	}
}

func isAccountCommand(cmd string) bool {
	for _, p := range []string{"groupadd ", "useradd ", "usermod ", "adduser ", "gpasswd "} {
		if strings.HasPrefix(cmd, p) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// the documents

func mdText(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mdBlock returns the first fenced code block after the first line of the
// markdown file (relative to the module root) that contains marker.
func mdBlock(t *testing.T, file, marker string) string {
	t.Helper()
	text := mdText(t, file)
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("%s: no %q: the test runs the commands that follow it", file, marker)
	}
	rest := text[i:]
	open := strings.Index(rest, "\n```")
	if open < 0 {
		t.Fatalf("%s: no code block after %q", file, marker)
	}
	rest = rest[open+4:]
	rest = rest[strings.IndexByte(rest, '\n')+1:]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		t.Fatalf("%s: the code block after %q does not end", file, marker)
	}
	return rest[:end+1]
}

// docCommand is one shell command of a documented block.
type docCommand struct {
	Step int    // the "# N." comment above it; 0 before the first
	Text string // with its continuation lines and here-document
}

var (
	stepHeading = regexp.MustCompile(`^# (\d+)\.`)
	hereDoc     = regexp.MustCompile(`<<-?'?(\w+)'?`)
	settingLine = regexp.MustCompile(`^#\s+(\w+ = .+)$`)
)

// shellCommands splits a block into its commands, leaving out comments.
func shellCommands(block string) []docCommand {
	var out []docCommand
	step := 0
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := stepHeading.FindStringSubmatch(line); m != nil {
			step, _ = strconv.Atoi(m[1])
			continue
		}
		if s := strings.TrimSpace(line); s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		text := line
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			text += "\n" + lines[i]
		}
		if m := hereDoc.FindStringSubmatch(text); m != nil {
			for i+1 < len(lines) {
				i++
				text += "\n" + lines[i]
				if lines[i] == m[1] {
					break
				}
			}
		}
		out = append(out, docCommand{Step: step, Text: text})
	}
	return out
}

// commandsOfStep returns the commands of step n as one script, less the
// account commands (checkAccountCommands vouches for those).
func commandsOfStep(t *testing.T, cmds []docCommand, n int) string {
	t.Helper()
	var lines []string
	for _, c := range cmds {
		if c.Step == n && !isAccountCommand(c.Text) {
			lines = append(lines, c.Text)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no commands in step %d", n)
	}
	return strings.Join(lines, "\n")
}

// onlyCommand returns the one command that starts with prefix.
func onlyCommand(t *testing.T, what string, cmds []docCommand, prefix string) string {
	t.Helper()
	var found []string
	for _, c := range cmds {
		if strings.HasPrefix(c.Text, prefix) {
			found = append(found, c.Text)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d commands start with %q, want 1: %q", what, len(found), prefix, found)
	}
	return found[0]
}

// docSettings returns the "name = value" lines of the comment of step n
// (postgresql.conf settings).
func docSettings(block string, n int) []string {
	var out []string
	step := 0
	for _, line := range strings.Split(block, "\n") {
		if m := stepHeading.FindStringSubmatch(line); m != nil {
			step, _ = strconv.Atoi(m[1])
			continue
		}
		if m := settingLine.FindStringSubmatch(line); m != nil && step == n {
			out = append(out, m[1])
		}
	}
	return out
}

// shellWords splits a command line into words: blanks, backslash-newlines
// and single quotes, which is all the documented commands use.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	s = strings.ReplaceAll(s, "\\\n", " ")
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case !quoted && (r == '"' || r == '$' || r == '`' || r == '\\'):
			t.Fatalf("shellWords: %q needs a real shell", s)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// ---------------------------------------------------------------------------
// running them

// docShell runs documented commands with bash, as root, with the
// documents' paths mapped into the test's directory.
type docShell struct {
	h       *Harness
	mapping []string // documented text, replacement, …
	env     []string
	dir     string // working directory; "" is the harness's base
}

// with returns a copy working in dir with more mappings.
func (d *docShell) with(dir string, mapping ...string) *docShell {
	c := *d
	c.dir = dir
	c.mapping = append(append([]string(nil), d.mapping...), mapping...)
	return &c
}

// mapPaths applies the mapping and fails on a system path left over: the
// test must never touch the host's own /etc, /var or /root.
func (d *docShell) mapPaths(t *testing.T, s string) string {
	t.Helper()
	var erase []string
	for i := 0; i < len(d.mapping); i += 2 {
		erase = append(erase, d.mapping[i], "")
	}
	rest := strings.NewReplacer(erase...).Replace(s)
	for _, p := range []string{"/etc/", "/var/", "/root/", "/srv/", "/usr/local/", "/home/"} {
		if strings.Contains(rest, p) {
			t.Fatalf("a documented path under %s is not mapped into the test's directory:\n%s", p, s)
		}
	}
	return strings.NewReplacer(d.mapping...).Replace(s)
}

// sudoStandIn plays `sudo -u USER COMMAND…`: COMMAND runs as USER with the
// groups the system gives it (initgroups, as sudo and systemd do) and its
// home; the environment is kept.
const sudoStandIn = `set -euo pipefail
sudo() {
	if [ "$#" -lt 3 ] || [ "$1" != -u ]; then
		echo "the test's sudo runs only: sudo -u USER COMMAND..." >&2
		return 2
	fi
	local user=$2
	shift 2
	setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups env HOME="$WALVAULT_E2E_HOMES/$user" "$@"
}
`

func (d *docShell) run(t *testing.T, script string) (stdout, stderr string, err error) {
	t.Helper()
	script = d.mapPaths(t, script)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := d.h.command(ctx, nil, d.env, "bash", "-c", sudoStandIn+script)
	if d.dir != "" {
		cmd.Dir = d.dir
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err = cmd.Run()
	recordOutput("documented commands: "+script, o.String()+e.String())
	t.Logf("$ %s\n  -> %v in %v\n  stdout: %s\n  stderr: %s", script, err, time.Since(start).Round(time.Millisecond), tail(o.String(), 10), tail(e.String(), 15))
	return o.String(), e.String(), err
}

// must runs script and fails the test unless it succeeds; it returns stdout.
func (d *docShell) must(t *testing.T, script string) string {
	t.Helper()
	stdout, stderr, err := d.run(t, script)
	if err != nil {
		t.Fatalf("documented commands failed: %v\n%s\nstderr:\n%s", err, d.mapPaths(t, script), tail(stderr, 40))
	}
	return stdout
}

// docProcess is a documented walvault command running in the background.
type docProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
	line string
}

// start runs a documented `sudo -u USER walvault …` line in the background,
// as as (USER, with its groups), without a shell: it must be signalled.
func (d *docShell) start(t *testing.T, line string, as *account) *docProcess {
	t.Helper()
	words := shellWords(t, d.mapPaths(t, line))
	if len(words) < 4 || words[0] != "sudo" || words[1] != "-u" || words[2] != as.Name || words[3] != "walvault" {
		t.Fatalf("%q is not `sudo -u %s walvault …`", line, as.Name)
	}
	env := append(append([]string(nil), d.env...), "HOME="+filepath.Join(d.h.Path("homes"), as.Name))
	cmd := d.h.command(context.Background(), as, env, suite.walvault, words[4:]...)
	p := &docProcess{cmd: cmd, out: &lockedBuffer{}, done: make(chan error, 1), line: line}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-p.done:
			p.done <- err
		default:
			_ = cmd.Process.Kill()
		}
		recordOutput("walvault "+strings.Join(words[4:], " "), p.out.String())
	})
	return p
}

// passes counts the filestore passes the process reported.
func (p *docProcess) passes() int { return strings.Count(p.out.String(), "filestore prod: ") }

func (p *docProcess) waitPasses(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d filestore passes of %s", n, p.line), 5*time.Minute, func() (bool, error) {
		if p.passes() >= n {
			return true, nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s ended before %d passes: %v\n%s", p.line, n, err, p.out.String())
		default:
		}
		return false, nil
	})
}

// stop sends SIGTERM, which ends the continuous push after its pass: it
// must exit 0, and every pass that found a change must have logged it.
func (p *docProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-p.done
	p.done <- err
	t.Logf("%s after SIGTERM: %v\n%s", p.line, err, tail(p.out.String(), 10))
	if err != nil {
		t.Fatalf("%s: %v after SIGTERM, want exit 0\n%s", p.line, err, p.out.String())
	}
	if !strings.Contains(p.out.String(), "logged ") {
		t.Errorf("%s: no pass logged a change:\n%s", p.line, p.out.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// killPushHoldingLock starts the documented push and kills it (SIGKILL)
// while it holds its shared repository lock, as a crash or the OOM killer
// would: once it writes a temporary, storing a new 32 MiB file (or when it
// ends its pass, then nothing is left to kill). It returns the lock object
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

// ---------------------------------------------------------------------------
// files

func mkdirOwned(t *testing.T, p string, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	copyBytes(t, dst, b, mode, uid, gid)
}

func copyBytes(t *testing.T, dst string, b []byte, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dst, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

func statT(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// registerKeySecret registers an identity file's secret key for the
// suite's leak scan.
func registerKeySecret(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "AGE-SECRET-KEY-") {
			registerSecret("identity "+path, line)
			return
		}
	}
	t.Fatalf("%s holds no AGE-SECRET-KEY line", path)
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
