package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDrillFilestore: a drill on an Odoo database whose filestore is
// archived checks that every file the recovered database references is in
// the repository and downloads a sample checked against its SHA-1; a file
// missing from the repository, or a damaged one, fails the drill, with the
// file named in the JUnit report.
func TestDrillFilestore(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	createOdooDatabase(t, pg, "odoo")

	// Real files for the 25 stored attachments (ids 1..25 of account.move).
	dataDir := h.Mkdir(h.Path("odoo-data"), 0o755)
	var names []string
	for i := 1; i <= 25; i++ {
		content := []byte(fmt.Sprintf("%%PDF-1.4 invoice %d\n%s", i, strings.Repeat("x", 100*i)))
		sum := sha1.Sum(content)
		hexsum := hex.EncodeToString(sum[:])
		name := hexsum[:2] + "/" + hexsum
		dir := h.Mkdir(filepath.Join(dataDir, "filestore", "odoo", hexsum[:2]), 0o755)
		h.WriteFile(filepath.Join(dir, hexsum), content, 0o644)
		names = append(names, name)
		pg.ExecDB("odoo", "UPDATE ir_attachment SET store_fname = $1, checksum = $2, file_size = $3 WHERE res_model = 'account.move' AND res_id = $4",
			name, hexsum, len(content), i)
	}
	wv.MustRun("filestore", "push", "--data-dir", dataDir, "--db", "odoo", "--no-progress")
	wv.MustRun("backup", "--fast")
	pg.SwitchAndWaitArchived()
	pg.Stop("fast")

	drill := repo.Walvault(h).AsCurrentUser()
	if suite.pgUser == nil {
		drill = repo.Walvault(h)
	}
	drill.Timeout = 6 * time.Minute
	run := func(want int, args ...string) (drillReport, junitDoc) {
		t.Helper()
		junit := h.Path(fmt.Sprintf("drill-%d.xml", time.Now().UnixNano()))
		stdout, _ := drill.RunExpect(want, append([]string{"drill", "--json", "--junit", junit}, args...)...)
		var rep drillReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("drill --json: %v\n%s", err, stdout)
		}
		checkDrillLeftNothing(t, rep)
		return rep, readJUnit(t, junit)
	}

	rep, _ := run(0)
	if st, reason := rep.check(t, "odoo:odoo:filestore"); st != "pass" || !strings.Contains(reason, "all 25 files") || !strings.Contains(reason, "20 downloaded") {
		t.Errorf("filestore check on a healthy repository: %s (%s), want pass with 25 files, 20 downloaded", st, reason)
	}
	rep, _ = run(0, "--filestore-sample", "-1")
	if st, reason := rep.check(t, "odoo:odoo:filestore"); st != "pass" || !strings.Contains(reason, "25 downloaded") {
		t.Errorf("filestore check, every file: %s (%s)", st, reason)
	}

	// One object damaged: found when every file is downloaded.
	damaged := filepath.Join(repo.Dir, "filestore", "objects", names[3])
	b, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatalf("the filestore object of %s: %v", names[3], err)
	}
	orig := append([]byte(nil), b...)
	b[len(b)-5] ^= 0xff
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, doc := run(12, "--filestore-sample", "-1")
	if st, reason := rep.check(t, "odoo:odoo:filestore"); st != "fail" || !strings.Contains(reason, names[3]) {
		t.Errorf("filestore check with a damaged object: %s (%s), want fail naming %s", st, reason, names[3])
	}
	assertJUnitFailure(t, doc, "odoo:odoo:filestore", names[3])
	if err := os.WriteFile(damaged, orig, 0o600); err != nil {
		t.Fatal(err)
	}

	// One object gone: every reference is checked, even without download.
	gone := filepath.Join(repo.Dir, "filestore", "objects", names[7])
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	rep, doc = run(12, "--filestore-sample", "0")
	if st, reason := rep.check(t, "odoo:odoo:filestore"); st != "fail" || !strings.Contains(reason, names[7]) || !strings.Contains(reason, "1 of the 25") {
		t.Errorf("filestore check with a missing object: %s (%s), want fail naming %s", st, reason, names[7])
	}
	assertJUnitFailure(t, doc, "odoo:odoo:filestore", names[7])
}

func assertJUnitFailure(t *testing.T, doc junitDoc, name, inMessage string) {
	t.Helper()
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if c.Name != name {
				continue
			}
			if c.Failure == nil || !strings.Contains(c.Failure.Message+c.Failure.Text, inMessage) {
				t.Errorf("junit case %s: failure %+v, want one naming %s", name, c.Failure, inMessage)
			}
			return
		}
	}
	t.Errorf("junit report has no case %s", name)
}
