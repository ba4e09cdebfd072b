package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends. Without the right to mount (not root, or a
// container without CAP_SYS_ADMIN) the test is skipped, except under CI.
func mountTmpfs(t *testing.T, h *Harness, name string, size int64) string {
	t.Helper()
	dir := h.Mkdir(h.Path(name), 0o755)
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10)+",mode=0755", "tmpfs", dir).CombinedOutput()
	if err != nil {
		why := "cannot mount a tmpfs here: " + err.Error() + ": " + strings.TrimSpace(string(out))
		skipOutsideCI(t, why)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	h.Chown(dir)
	return dir
}

// TestRestoreDiskFull: restoring onto a file system too small for the
// backup fails with a message that names the directory and says the file
// system is full, exits 1 (failure), leaves no recovery.signal, and
// changes nothing in the repository. Two cases: clearly too small (restore
// refuses before writing) and almost big enough (it passes the up-front
// check and runs out of space while writing).
func TestRestoreDiskFull(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	repo := f.copyRepo(h, "repo")
	wv := repo.Walvault(h)
	before := fileRepoObjects(t, repo.Dir)

	info := wv.Info()
	if len(info.Backups) == 0 {
		t.Fatal("the shared repository lists no backup")
	}
	need := info.Backups[0].Bytes
	cases := []struct {
		name string
		size int64
		say  string // what the message must say about the space
	}{
		// restore refuses when less than 9/10 of the backup's bytes are free.
		{"clearly too small", 4 << 20, "not enough disk space"},
		// 92% passes that check; the files alone need more than that.
		{"almost big enough", need * 92 / 100 / 4096 * 4096, "file system is full"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			mnt := mountTmpfs(t, h, "tmpfs-"+strings.ReplaceAll(c.name, " ", "-"), c.size)
			dir := filepath.Join(mnt, "pgdata")
			t.Logf("backup of %d bytes onto a tmpfs of %d bytes", need, c.size)
			_, stderr := wv.RunExpect(1, "restore", "--pgdata", dir)
			if !strings.Contains(stderr, dir) && !strings.Contains(stderr, mnt) {
				t.Errorf("the message does not name the restore directory %s:\n%s", dir, stderr)
			}
			if !strings.Contains(stderr, c.say) {
				t.Errorf("the message does not say %q:\n%s", c.say, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err == nil {
				t.Errorf("a restore that ran out of space left recovery.signal")
			}
			// What it wrote is not mistaken for a restore: a second restore
			// into it is refused, or it is empty.
			if empty, _ := dirEmptyOrAbsent(dir); !empty {
				wv.RunExpect(5, "restore", "--pgdata", dir)
			}
		})
	}

	after := fileRepoObjects(t, repo.Dir)
	if len(after) != len(before) {
		t.Errorf("the repository held %d objects, now %d", len(before), len(after))
	}
	for k, b := range before {
		if !bytes.Equal(after[k], b) {
			t.Errorf("object %s changed", k)
		}
	}
}
