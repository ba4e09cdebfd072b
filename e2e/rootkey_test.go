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
// data directory, owned by that user, so recovery fetches WAL instead of
// stopping at the backup's end; with post-recovery steps the copy is
// removed once recovery is over.
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
	copyPath := filepath.Join(dir, "walvault-recovery.key")
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
	conf, _ := os.ReadFile(filepath.Join(dir, "walvault-recovery.conf"))
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
	rc.Stop("fast")

	// With a post-recovery step, the copy goes once recovery is over.
	dir2 := h.Path("restored-steps")
	stdout = asRoot.MustRun("restore", "--pgdata", dir2, "--db", "postgres", "--as", "postgres_copy")
	if _, err := os.Stat(filepath.Join(dir2, "walvault-recovery.key")); !os.IsNotExist(err) {
		t.Errorf("identity copy left after the post-recovery steps: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "removed "+filepath.Join(dir2, "walvault-recovery.key")) {
		t.Errorf("restore does not say it removed the identity copy:\n%s", stdout)
	}
}
