package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestoreAsRootWithRootsKey: in an incident the identity is often
// root's own file (/root/walvault.key, mode 0600), which the PostgreSQL user
// cannot read. restore run as root then gives restore_command a copy in the
// recovery directory beside the data directory (never inside it), owned by
// that user, so recovery fetches WAL instead of stopping at the backup's
// end; recovery_end_command removes the copy when recovery ends, and with
// post-recovery steps it is gone before restore returns.
func TestRestoreAsRootWithRootsKey(t *testing.T) {
	if os.Geteuid() != 0 || suite.pgUser == nil {
		skipOutsideCI(t, "needs root and a separate PostgreSQL user")
	}
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")
	pg.CommitMarks(1, 5, "after the backup", 50*time.Millisecond) // only in WAL
	pg.SwitchAndWaitArchived()
	want := pg.MarkIDs()
	pg.Stop("fast")

	key, err := os.ReadFile(repo.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	rootKey := filepath.Join(h.Mkdir(h.Path("root-only"), 0o700), "walvault.key")
	if err := os.WriteFile(rootKey, key, 0o600); err != nil { // root:root 0600
		t.Fatal(err)
	}
	asRoot := repo.Walvault(h).AsCurrentUser().With("WALVAULT_AGE_IDENTITY_FILE=" + rootKey)

	dir := h.Path("restored")
	stdout := asRoot.MustRun("restore", "--pgdata", dir, "--target-action", "promote")
	recDir := dir + ".walvault-recovery"
	copyPath := filepath.Join(recDir, "walvault-recovery.key")
	if !strings.Contains(stdout, copyPath) {
		t.Errorf("restore does not say it copied the identity to %s:\n%s", copyPath, stdout)
	}
	fi, err := os.Stat(copyPath)
	if err != nil {
		t.Fatalf("identity copy: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || st.Uid != suite.pgUser.UID {
		t.Errorf("identity copy: mode %v uid %d, want 0600 owned by uid %d", fi.Mode().Perm(), st.Uid, suite.pgUser.UID)
	}
	for _, p := range []string{filepath.Join(dir, "walvault-recovery.key"), filepath.Join(dir, "walvault-recovery.conf")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s is in the data directory: %v", p, err)
		}
	}
	if fi, err := os.Stat(recDir); err != nil || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != suite.pgUser.UID {
		t.Errorf("recovery directory %s: %v, %v; want 0700 owned by the server's user", recDir, fi, err)
	}
	conf, _ := os.ReadFile(filepath.Join(recDir, "walvault-recovery.conf"))
	if !strings.Contains(string(conf), copyPath) || strings.Contains(string(conf), rootKey) {
		t.Errorf("walvault-recovery.conf does not point at the copy:\n%s", conf)
	}
	rc := h.ClusterAt("restored", dir)
	rc.Env = repo.Env
	rc.Start()
	rc.WaitPromoted()
	if got := rc.MarkIDs(); !equalInts(got, want) {
		t.Errorf("restored marks %v, want %v (WAL after the backup not replayed?)", got, want)
	}
	if _, err := os.Lstat(recDir); !os.IsNotExist(err) {
		t.Errorf("the recovery directory is still there after promotion: %v", err)
	}
	rc.Stop("fast")

	// With a post-recovery step, the copy goes once recovery is over.
	dir2 := h.Path("restored-steps")
	stdout = asRoot.MustRun("restore", "--pgdata", dir2, "--db", "postgres", "--as", "postgres_copy")
	if _, err := os.Stat(dir2 + ".walvault-recovery"); !os.IsNotExist(err) {
		t.Errorf("recovery directory left after the post-recovery steps: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "removed "+dir2+".walvault-recovery") {
		t.Errorf("restore does not say it removed the recovery directory:\n%s", stdout)
	}
}
