package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walvault/walvault/storage/s3/miniotest"
)

// TestRestoreS3AsRootDefaults is the restore an operator runs in an
// incident, on every default: as root, the identity in a root-only
// directory, S3 credentials from the environment, the server run as the
// postgres user and started without any of walvault's settings in its
// environment (as systemd starts it).
//
//   - Without --copy-s3-credentials, restore copies no credentials: it finds
//     out before downloading anything that the server's user could not read
//     the repository, says so (exit 3) and leaves nothing behind.
//   - With a config file the server's user can read, restore_command
//     includes it: the credentials stay where they were.
//   - With --copy-s3-credentials they are copied beside the data directory,
//     readable only by postgres, and removed when recovery ends.
//
// Each restored directory passes pg_verifybackup -n and holds no secret
// before and after promotion (restored_test.go).
func TestRestoreS3AsRootDefaults(t *testing.T) {
	if os.Geteuid() != 0 || suite.pgUser == nil {
		skipOutsideCI(t, "needs root and a separate PostgreSQL user")
	}
	h := newHarness(t)
	srv := miniotest.Start(t)
	registerSecret("S3 secret key", srv.SecretKey)
	const bucket, prefix = "walvault-e2e", "defaults"
	srv.CreateBucket(t, bucket)
	repo := s3Repo(h, srv, bucket, prefix, srv.Endpoint)
	pg, wv := h.StartArchiving("primary", repo)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")
	pg.CommitMarks(1, 4, "after the backup", 50*time.Millisecond)
	pg.SwitchAndWaitArchived()
	want := pg.MarkIDs()
	pg.Stop("fast")

	key, err := os.ReadFile(repo.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	rootDir := filepath.Join(h.Base, "root-only")
	if err := os.Mkdir(rootDir, 0o700); err != nil { // root:root 0700
		t.Fatal(err)
	}
	rootKey := filepath.Join(rootDir, "walvault.key")
	if err := os.WriteFile(rootKey, key, 0o600); err != nil {
		t.Fatal(err)
	}
	asRoot := repo.Walvault(h).AsCurrentUser().With("WALVAULT_AGE_IDENTITY_FILE=" + rootKey)

	// 1. Credentials only in root's environment: refused before any work.
	dir := h.Path("restored-env")
	_, stderr := asRoot.RunExpect(3, "restore", "--pgdata", dir, "--target-action", "promote")
	for _, w := range []string{"postgres", "--copy-s3-credentials"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("refusal does not mention %q:\n%s", w, stderr)
		}
	}
	for _, p := range []string{dir, dir + ".walvault-recovery"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after the refusal: %v", p, err)
		}
	}

	// 2. The operator's config file, which postgres can read (root:postgres
	//    0640, as the Quick start installs it), holds the credentials:
	//    included, not copied.
	var conf strings.Builder
	for _, kv := range repo.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "AWS_ACCESS_KEY_ID":
			conf.WriteString("s3-access-key = " + v + "\n")
		case "AWS_SECRET_ACCESS_KEY":
			conf.WriteString("s3-secret-key = " + v + "\n")
		case "WALVAULT_REPO", "WALVAULT_S3_ENDPOINT", "WALVAULT_S3_REGION", "WALVAULT_S3_PATH_STYLE":
			conf.WriteString(strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "WALVAULT_")), "_", "-") + " = " + v + "\n")
		}
	}
	confPath := filepath.Join(h.Base, "walvault.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(confPath, 0, int(suite.pgUser.GID)); err != nil {
		t.Fatal(err)
	}
	byConfig := h.Walvault("WALVAULT_CONFIG="+confPath, "WALVAULT_AGE_IDENTITY_FILE="+rootKey).AsCurrentUser()
	dir = h.Path("restored-config")
	out := byConfig.MustRun("restore", "--pgdata", dir, "--target-action", "promote")
	recConf, err := os.ReadFile(filepath.Join(dir+".walvault-recovery", "walvault-recovery.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(recConf), "include = '"+confPath+"'") || strings.Contains(string(recConf), srv.SecretKey) {
		t.Errorf("recovery settings do not include the config file, or copy the secret:\n%s", recConf)
	}
	if !strings.Contains(out, "walvault recovery-cleanup --pgdata") {
		t.Errorf("restore does not say how to clean up an abandoned restore:\n%s", out)
	}
	startAndCheck(t, h, "restored-config", dir, want)

	// 3. Asked to copy them.
	dir = h.Path("restored-copy")
	out = asRoot.MustRun("restore", "--pgdata", dir, "--target-action", "promote", "--copy-s3-credentials")
	recDir := dir + ".walvault-recovery"
	b, err := os.ReadFile(filepath.Join(recDir, "walvault-recovery.conf"))
	if err != nil || !strings.Contains(string(b), srv.SecretKey) {
		t.Errorf("--copy-s3-credentials: settings %v hold no secret", err)
	}
	for _, name := range []string{"", "walvault-recovery.conf", "walvault-recovery.key"} {
		fi, err := os.Stat(filepath.Join(recDir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm()&0o077 != 0 || st.Uid != suite.pgUser.UID {
			t.Errorf("%s: mode %v uid %d; want readable only by the server's user", filepath.Join(recDir, name), fi.Mode().Perm(), st.Uid)
		}
	}
	if !strings.Contains(out, "--copy-s3-credentials") {
		t.Errorf("restore does not say it copied the credentials:\n%s", out)
	}
	startAndCheck(t, h, "restored-copy", dir, want)
}

// startAndCheck starts a restored cluster (the harness gives it none of the
// repository's settings), waits for promotion and checks the marks.
func startAndCheck(t *testing.T, h *Harness, name, dir string, want []int64) {
	t.Helper()
	rc := h.ClusterAt(name, dir)
	rc.Start()
	rc.WaitPromoted()
	if got := rc.MarkIDs(); !equalInts(got, want) {
		t.Errorf("%s: marks %v, want %v", name, got, want)
	}
	rc.Stop("fast")
}

// TestRestoreForceSparesTablespaces: --force clears the data directory
// only. A tablespace directory outside it that holds files survives with a
// clear error, and a directory a running server uses is never touched,
// whatever the flags.
func TestRestoreForceSparesTablespaces(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	ts := h.Mkdir(h.Path("ts1"), 0o700)
	pg.Exec("CREATE TABLESPACE ts1 LOCATION '" + ts + "'")
	pg.Exec("CREATE TABLE ts_rows (id int) TABLESPACE ts1")
	pg.Exec("INSERT INTO ts_rows SELECT generate_series(1, 500)")
	wv.MustRun("backup", "--fast")
	pg.SwitchAndWaitArchived()

	snapshot := func(dir string) map[string]string {
		m := map[string]string{}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				fi, _ := d.Info()
				m[p] = fmt.Sprint(fi.ModTime(), fi.Size())
			}
			return nil
		})
		return m
	}

	// The live server runs on this host with its tablespace at ts: a
	// forced restore into a stale directory must not touch ts.
	dir := h.Mkdir(h.Path("old-restore"), 0o700)
	h.WriteFile(filepath.Join(dir, "stale"), []byte("x"), 0o600)
	before := snapshot(ts)
	_, stderr := wv.RunExpect(5, "restore", "--pgdata", dir, "--force")
	if !strings.Contains(stderr, ts) || !strings.Contains(stderr, "running") {
		t.Errorf("refusal does not name %s and the running server:\n%s", ts, stderr)
	}
	// Even named and confirmed: a running server's tablespace is refused.
	wv.RunExpect(5, "restore", "--pgdata", dir, "--force", "--tablespace-map", ts+"="+ts, "--clear-tablespaces")
	pg.Stop("fast")

	// Stopped now, its tablespace still holds files: --force alone keeps
	// them and says what to do.
	_, stderr = wv.RunExpect(5, "restore", "--pgdata", dir, "--force")
	for _, w := range []string{ts, "--tablespace-map", "--clear-tablespaces", "only the data directory"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("refusal does not mention %q:\n%s", w, stderr)
		}
	}
	if after := snapshot(ts); len(after) == 0 || len(after) != len(before) {
		t.Errorf("the tablespace's files changed: %d before, %d after", len(before), len(after))
	} else {
		for p, v := range before {
			if after[p] != v {
				t.Errorf("%s changed", p)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); err != nil {
		t.Errorf("the data directory was cleared by a refused restore: %v", err)
	}

	// Mapped elsewhere: works, and the old tablespace is left alone.
	newTS := h.Path("ts1-new")
	wv.MustRun("restore", "--pgdata", dir, "--force", "--tablespace-map", ts+"="+newTS, "--target-action", "promote")
	rc := h.ClusterAt("restored", dir)
	rc.Start()
	rc.WaitPromoted()
	if n := rc.QueryString("SELECT count(*)::text FROM ts_rows"); n != "500" {
		t.Errorf("ts_rows has %s rows, want 500", n)
	}
	rc.Stop("fast")
	if after := snapshot(ts); len(after) != len(before) {
		t.Errorf("the old tablespace's files changed: %d before, %d after", len(before), len(after))
	}
}

// TestRecoveryCleanupAbandoned: a restore abandoned before its server ever
// ran is cleaned by one command, which refuses while a server still
// recovers. The data directory's path holds a '%', which restore_command
// and recovery_end_command must escape.
func TestRecoveryCleanupAbandoned(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")
	marks := pg.CommitMarks(1, 3, "after", 50*time.Millisecond)
	pg.SwitchAndWaitArchived()
	pg.Stop("fast")

	dir := h.Path("100%restored")
	recDir := dir + ".walvault-recovery"
	wv.MustRun("restore", "--pgdata", dir)
	if _, err := os.Stat(filepath.Join(recDir, "walvault-recovery.conf")); err != nil {
		t.Fatal(err)
	}
	out := wv.MustRun("recovery-cleanup", "--pgdata", dir)
	if !strings.Contains(out, "removed "+recDir) {
		t.Errorf("recovery-cleanup output:\n%s", out)
	}
	if _, err := os.Lstat(recDir); !os.IsNotExist(err) {
		t.Errorf("%s survived recovery-cleanup: %v", recDir, err)
	}
	wv.MustRun("recovery-cleanup", "--pgdata", dir) // twice is harmless

	// A recovery paused at its target still needs its settings.
	wv.MustRun("restore", "--pgdata", dir, "--force", "--target-lsn", marks[1].LSNAfter)
	rc := h.ClusterAt("restored", dir)
	rc.Start()
	waitFor(t, "recovery to pause at the target", 2*time.Minute, func() (bool, error) {
		var paused bool
		err := rc.tryQueryRow("SELECT pg_is_in_recovery() AND pg_get_wal_replay_pause_state() = 'paused'", nil, &paused)
		return paused, err
	})
	_, stderr := wv.RunExpect(5, "recovery-cleanup", "--pgdata", dir)
	if !strings.Contains(stderr, "recovering") {
		t.Errorf("refusal: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(recDir, "walvault-recovery.conf")); err != nil {
		t.Errorf("settings removed by a refused cleanup: %v", err)
	}
	// Resuming promotes; recovery_end_command removes them (checked by
	// WaitPromoted's hook), with the '%' in the path escaped.
	rc.Exec("SELECT pg_wal_replay_resume()")
	rc.WaitPromoted()
	if got, want := rc.MarkIDs(), seq(1, 2); !equalInts(got, want) {
		t.Errorf("marks %v, want %v", got, want)
	}
	if !strings.Contains(rc.Log(), "recovery-cleanup: removed "+recDir) {
		t.Errorf("the server log does not show recovery_end_command removing %s:\n%s", recDir, rc.LogTail(30))
	}
}
