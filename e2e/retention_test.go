package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rpkg "github.com/walvault/walvault/repo"
)

// TestRetention: three backups with commit marks between them; expire
// keeps what the policy promises and removes the rest. Every moment inside
// the remaining window restores exactly (commit-timestamp method), moments
// before it are refused, the storage used drops, verify passes, a keep mark
// survives a stricter policy, locks keep expire and backup apart, and the
// audit trail records every change.
func TestRetention(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	pg.PgbenchInit(2)
	pg.CreateMarks()

	var marks []Mark
	for i := range 3 {
		wv.MustRun("backup", "--fast")
		// A backup's window starts up to a second after its real end
		// (the stop time is rounded up): commit the marks after that.
		time.Sleep(1500 * time.Millisecond)
		marks = append(marks, pg.CommitMarks(10*i+1, 10*i+10, fmt.Sprintf("round %d", i), 100*time.Millisecond)...)
		pg.SwitchAndWaitArchived()
	}
	info := wv.Info()
	if len(info.Backups) != 3 {
		t.Fatalf("%d backups, want 3", len(info.Backups))
	}
	ids := []string{info.Backups[0].ID, info.Backups[1].ID, info.Backups[2].ID}

	// A dry run changes nothing and says what it would do.
	before := fileRepoObjects(t, repo.Dir)
	out := wv.MustRun("expire", "--retain-full", "2")
	if !strings.Contains(out, "dry run") || !strings.Contains(out, ids[0]+"  ") {
		t.Errorf("dry run output does not name the backup it would remove:\n%s", out)
	}
	if after := fileRepoObjects(t, repo.Dir); !maps.EqualFunc(before, after, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("dry run changed the repository")
	}
	// The window rule, asked so that its start falls between the ends of
	// the second and third backups, keeps the same two.
	stop2, _ := time.Parse(time.RFC3339, info.Backups[1].StopTime)
	stop3, _ := time.Parse(time.RFC3339, info.Backups[2].StopTime)
	promise := stop2.Add(stop3.Sub(stop2) / 2)
	days := time.Since(promise).Hours() / 24
	var plan struct {
		Removed []struct {
			ID string `json:"id"`
		} `json:"removed_backups"`
		Short bool `json:"window_short"`
	}
	jout := wv.MustRun("expire", "--retain-days", fmt.Sprintf("%.8f", days), "--json")
	if err := json.Unmarshal([]byte(jout), &plan); err != nil {
		t.Fatalf("expire --json: %v\n%s", err, jout)
	}
	if len(plan.Removed) != 1 || plan.Removed[0].ID != ids[0] || plan.Short {
		t.Errorf("--retain-days %.8f would remove %+v (short %v), want only %s", days, plan.Removed, plan.Short, ids[0])
	}

	// Locks: a live exclusive lock (an expire in progress on another host,
	// signed by a writer of this repository) stops a backup with exit 11
	// naming it; a dead one (expired lease) does not.
	ctx := context.Background()
	other := inProcess(t, repo)
	dead, err := other.Lock(ctx, rpkg.LockExclusive, "expire", rpkg.LockOptions{
		Lease: time.Minute, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	deadFiles := lockFiles(t, repo.Dir)
	if err := dead.Release(ctx); err != nil {
		t.Fatal(err)
	}
	live, err := other.Lock(ctx, rpkg.LockExclusive, "expire", rpkg.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.ChownTree(repo.Dir)
	_, stderr := wv.RunExpect(11, "backup", "--fast", "--lock-wait", "1s")
	if !strings.Contains(stderr, "expire holds an exclusive lock") {
		t.Errorf("locked backup: stderr does not name the holder:\n%s", stderr)
	}
	wv.RunExpect(11, "expire", "--retain-full", "2", "--confirm")
	if err := live.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// The dead lock's object put back, as a crashed holder leaves it.
	for name, data := range deadFiles {
		h.WriteFile(filepath.Join(repo.Dir, "locks", name), data, 0o640)
	}
	h.ChownTree(repo.Dir)

	sizeBefore := repoBytes(t, repo.Dir)
	out = wv.MustRun("expire", "--retain-full", "2", "--confirm")
	t.Logf("expire:\n%s", out)
	for name := range deadFiles {
		if _, err := os.Stat(filepath.Join(repo.Dir, "locks", name)); !os.IsNotExist(err) {
			t.Errorf("expired lock %s left in place: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(repo.Dir, "locks")); len(ents) != 0 {
		t.Errorf("lock objects left after expire: %d", len(ents))
	}
	sizeAfter := repoBytes(t, repo.Dir)
	t.Logf("repository %d bytes before, %d after", sizeBefore, sizeAfter)
	if sizeAfter >= sizeBefore*9/10 {
		t.Errorf("storage used went from %d to %d bytes; removing the oldest backup and its WAL should free more", sizeBefore, sizeAfter)
	}
	info = wv.Info()
	got := []string{}
	for _, b := range info.Backups {
		got = append(got, b.ID)
	}
	if !slices.Equal(got, ids[1:]) {
		t.Fatalf("backups after expire %v, want %v", got, ids[1:])
	}
	headsFollowWAL(t, repo.Dir)
	wv.MustRun("verify")

	// Inside the window: exact. Before it: refused.
	restoreBetween(t, h, wv, marks, 15, "in-window")
	restoreBetween(t, h, wv, marks, 25, "newest")
	target := marks[4].CommitTS.Add(marks[5].CommitTS.Sub(marks[4].CommitTS) / 2)
	_, stderr = wv.RunExpect(10, "restore", "--pgdata", h.Path("too-old"), "--target-time", target.Format(time.RFC3339Nano))
	t.Logf("restore before the window: %s", strings.TrimSpace(stderr))

	// A keep mark survives a stricter policy, and verify sees no gap in
	// what retention removed around it.
	wv.MustRun("keep", ids[1], "--note", "before the upgrade")
	var marked struct {
		Backups []struct {
			ID    string   `json:"id"`
			Keep  bool     `json:"keep"`
			Notes []string `json:"notes"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(wv.MustRun("info", "--json")), &marked); err != nil {
		t.Fatal(err)
	}
	if !marked.Backups[0].Keep || len(marked.Backups[0].Notes) != 1 {
		t.Errorf("info after keep: %+v", marked.Backups)
	}
	wv.MustRun("expire", "--retain-full", "1", "--confirm")
	if n := len(wv.Info().Backups); n != 2 {
		t.Errorf("%d backups after expire --retain-full 1 with one marked keep, want 2", n)
	}
	vout := wv.MustRun("verify")
	if strings.Contains(vout, "GAP") {
		t.Errorf("verify reports a gap after expire kept a marked backup:\n%s", vout)
	}
	wv.MustRun("keep", "--release", ids[1])
	wv.MustRun("expire", "--retain-full", "1", "--confirm")
	if n := len(wv.Info().Backups); n != 1 {
		t.Errorf("%d backups after releasing the mark, want 1", n)
	}
	restoreBetween(t, h, wv, marks, 27, "after-release")

	// Retiring the key: re-encrypt everything to a new recipient with both
	// identities at hand; afterwards the new identity alone reads it all
	// and the old one reads nothing.
	newIdentity := h.Path("new-identity.txt")
	newRecipient := h.Keygen(newIdentity)
	oldKey, err := os.ReadFile(repo.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := os.ReadFile(newIdentity)
	if err != nil {
		t.Fatal(err)
	}
	both := h.Path("both-identities.txt")
	h.WriteFile(both, append(append(oldKey, '\n'), newKey...), 0o600)
	h.Chown(both)
	rotating := wv.With("WALVAULT_AGE_RECIPIENTS="+newRecipient, "WALVAULT_AGE_IDENTITY_FILE="+both)
	// Refused while no identity could read the result.
	wv.With("WALVAULT_AGE_RECIPIENTS="+newRecipient).RunExpect(3, "rekey", "--confirm")
	out = rotating.MustRun("rekey")
	if !strings.Contains(out, "dry run") {
		t.Errorf("rekey without --confirm: %s", out)
	}
	rotating.MustRun("rekey", "--confirm")
	wv.With("WALVAULT_AGE_IDENTITY_FILE=" + newIdentity).MustRun("verify")
	wv.RunExpect(6, "info")
	wv = wv.With("WALVAULT_AGE_RECIPIENTS="+newRecipient, "WALVAULT_AGE_IDENTITY_FILE="+newIdentity)

	// The audit trail has every change, in order.
	var recs []struct {
		Command string `json:"command"`
		Action  string `json:"action"`
		Host    string `json:"host"`
	}
	if err := json.Unmarshal([]byte(wv.MustRun("audit", "--json")), &recs); err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, r := range recs {
		cmds = append(cmds, r.Command)
		if r.Host == "" {
			t.Errorf("audit record without a host: %+v", r)
		}
	}
	want := []string{"init", "backup", "backup", "backup", "expire", "keep", "expire", "keep", "expire", "rekey"}
	if !slices.Equal(cmds, want) {
		t.Errorf("audit trail %v, want %v", cmds, want)
	}
}

// restoreBetween restores to the middle of marks k and k+1 (1-based k) and
// checks exactly marks 1..k are there.
func restoreBetween(t *testing.T, h *Harness, wv *Walvault, marks []Mark, k int, name string) {
	t.Helper()
	before, after := marks[k-1].CommitTS, marks[k].CommitTS
	target := before.Add(after.Sub(before) / 2).Truncate(time.Microsecond)
	dir := h.Path(name)
	wv.MustRun("restore", "--pgdata", dir, "--target-time", target.Format(time.RFC3339Nano), "--target-action", "promote")
	c := h.ClusterAt(name, dir)
	c.Env = wv.Env
	// Do not archive the restored copy's new timeline into the repository:
	// later restores in this test follow the original history.
	c.Configure("archive_mode = off")
	c.Start()
	c.WaitPromoted()
	if got, want := c.MarkIDs(), seq(1, k); !equalInts(got, want) {
		t.Errorf("%s: recovered marks %v, want exactly %v", name, got, want)
	}
	c.CheckBenchInvariants()
	c.Stop("fast")
}

// repoBytes sums the sizes of the files under dir.
func repoBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// lockFiles returns the lock objects of the directory repository at dir.
func lockFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "locks"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, "locks", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	if len(out) == 0 {
		t.Fatal("no lock object written")
	}
	return out
}

// headsFollowWAL checks a directory repository after expire: on every
// timeline, no completeness head is older than the oldest WAL segment left,
// except the newest head, which stays whatever expire removed.
func headsFollowWAL(t *testing.T, dir string) {
	t.Helper()
	tlis, err := os.ReadDir(filepath.Join(dir, "heads"))
	if err != nil || len(tlis) == 0 {
		t.Fatalf("no completeness heads after expire: %v", err)
	}
	for _, tli := range tlis {
		var segs []string
		ents, _ := os.ReadDir(filepath.Join(dir, "wal", tli.Name()))
		for _, e := range ents {
			if len(e.Name()) == 24 {
				segs = append(segs, e.Name())
			}
		}
		heads, _ := os.ReadDir(filepath.Join(dir, "heads", tli.Name()))
		if len(heads) == 0 {
			t.Errorf("timeline %s: no head left", tli.Name())
			continue
		}
		newest := heads[len(heads)-1].Name()
		for _, hd := range heads {
			if hd.Name() != newest && (len(segs) == 0 || hd.Name() < segs[0]) {
				t.Errorf("timeline %s: head %s left below the oldest WAL kept (%v)", tli.Name(), hd.Name(), segs[:min(len(segs), 1)])
			}
		}
		t.Logf("timeline %s: %d heads, newest %s; %d segments from %v", tli.Name(), len(heads), newest, len(segs), segs[:min(len(segs), 1)])
	}
}
