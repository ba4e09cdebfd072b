package e2e

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// smallRepo is a file repository shared by the tests that only read it or
// damage a copy of it: one base backup of a small cluster, then six marker
// rows, each followed by a WAL switch so that each lands in its own archived
// segment. The cluster is gone; only the repository remains.
type smallRepo struct {
	Repo        *Repo
	SystemID    string
	BackupID    string
	BackupStart time.Time
	Marks       []Mark
	MarkSegs    []string // MarkSegs[i] is the segment that holds Marks[i]
}

var fixture struct {
	once sync.Once
	ok   bool
	repo smallRepo
}

// sharedRepo returns the shared repository, building it on first use.
// Callers must not change it: copy it (copyRepo) to damage it.
func sharedRepo(t *testing.T) *smallRepo {
	t.Helper()
	requireSuite(t)
	fixture.once.Do(func() {
		buildSmallRepo(t)
		fixture.ok = true
	})
	if !fixture.ok {
		t.Fatal("the shared repository could not be built (see the first test that used it)")
	}
	return &fixture.repo
}

func buildSmallRepo(t *testing.T) {
	base := filepath.Join(suite.tmp, "fixture")
	h := &Harness{t: t, Base: base}
	h.Mkdir(base, 0o755)
	repo := h.NewFileRepo("repo")

	pg, wv := h.StartArchiving("fixture-pg", repo)
	pg.PgbenchInit(1)
	pg.CreateMarks()
	// Chunks: the tests built on this fixture damage, forge and count a
	// chunked backup's objects (block backups have TestBlockBackups).
	wv.MustRun("backup", "--fast", "--label", "fixture", "--chunks")
	// The window starts a second after the server's STOP TIME (whole
	// seconds): marks committed in that second would lie before it, and
	// the drill tests draw their points after the window's start.
	waitPastBackupStop(t, wv)
	info := wv.Info()
	if len(info.Backups) != 1 {
		t.Fatalf("fixture: info lists %d backups, want 1", len(info.Backups))
	}
	start, err := time.Parse(time.RFC3339Nano, info.Backups[0].StartTime)
	if err != nil {
		t.Fatalf("fixture: backup start_time %q is not RFC 3339: %v", info.Backups[0].StartTime, err)
	}
	f := smallRepo{Repo: repo, SystemID: pg.SystemIdentifier(), BackupID: info.Backups[0].ID, BackupStart: start}
	for i := 1; i <= 6; i++ {
		f.Marks = append(f.Marks, pg.CommitMarks(i, i, "fixture", 0)...)
		f.MarkSegs = append(f.MarkSegs, pg.SwitchAndWaitArchived())
	}
	pg.Stop("immediate")
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}
	fixture.repo = f
}

// copyRepo copies the shared repository into the test's directory; the
// copy uses the same keys.
func (f *smallRepo) copyRepo(h *Harness, name string) *Repo {
	h.t.Helper()
	r := *f.Repo
	r.Dir = h.Path(name)
	r.URL = "file://" + r.Dir
	r.Env = []string{
		"WALVAULT_REPO=" + r.URL,
		"WALVAULT_AGE_RECIPIENTS=" + r.Recipient,
		"WALVAULT_AGE_IDENTITY_FILE=" + r.IdentityFile,
		"WALVAULT_WRITER_KEY_FILE=" + r.WriterKeyFile,
	}
	h.copyTree(f.Repo.Dir, r.Dir)
	return &r
}

// walObjectPath is where a file repository keeps a WAL file.
func walObjectPath(r *Repo, name string) string {
	return filepath.Join(r.Dir, "wal", name[:8], name)
}
