package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestVerify: walvault verify passes on a healthy repository built by a real
// cluster, and names each damaged object (a WAL segment, a backup chunk, the
// backup manifest) with exit 6, changing nothing in the repository.
func TestVerify(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	repo := f.copyRepo(h, "repo")
	wv := repo.Walvault(h)

	out, _ := wv.RunExpect(0, "verify", "--json")
	var rep struct {
		OK       bool `json:"ok"`
		Objects  int  `json:"objects"`
		Problems []struct {
			Key  string `json:"key"`
			Kind string `json:"kind"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if !rep.OK || rep.Objects == 0 || len(rep.Problems) != 0 {
		t.Fatalf("healthy repository: ok=%v objects=%d problems=%v", rep.OK, rep.Objects, rep.Problems)
	}

	// Damage one object of each kind.
	chunks, err := filepath.Glob(filepath.Join(repo.Dir, "backups", f.BackupID, "data", "base.tar", "*"))
	if err != nil || len(chunks) == 0 {
		t.Fatalf("no base.tar chunks under the backup: %v", err)
	}
	sort.Strings(chunks)
	targets := []string{
		walObjectPath(repo, f.MarkSegs[1]),
		chunks[len(chunks)/2],
		filepath.Join(repo.Dir, "backups", f.BackupID, "backup.json"),
	}
	for _, p := range targets {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[objectHeaderLen+(len(b)-objectHeaderLen)/2] ^= 0x04
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := treeDigest(t, repo.Dir)
	stdout, stderr := wv.RunExpect(6, "verify")
	for _, p := range targets {
		key := strings.TrimPrefix(p, repo.Dir+"/")
		if !strings.Contains(stdout+stderr, key) {
			t.Errorf("verify does not name the damaged object %s:\n%s\n%s", key, stdout, stderr)
		}
	}
	if after := treeDigest(t, repo.Dir); after != before {
		t.Error("verify changed the repository")
	}
}

// treeDigest lists every file of dir with its size and contents' length,
// enough to notice any change verify might make.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(p + "\x00" + string(data) + "\x00")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
