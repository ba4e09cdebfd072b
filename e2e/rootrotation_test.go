package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestRootRotation rotates a repository's root through the CLI as
// docs/SECURITY.md, "Root rotation", describes, while PostgreSQL archives:
// (a) keygen of a new identity, (b) a writer key of the new root installed
// over the old one and archiving switched to the new recipient, (c) the
// old identity file with the new one appended for the readers, (d) rekey
// with it and the new writer key, (e) the new identity alone. Then the
// server is lost and restored to the end of its WAL with only the new
// identity: pg_verifybackup passes (Walvault.Run), every committed row is
// back; and the old identity alone is refused.
func TestRootRotation(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("pg", repo)
	pg.CreateMarks()
	pg.CommitMarks(1, 3, "old root", 0)
	wv.MustRun("backup", "--fast")
	pg.CommitMarks(4, 5, "old root, after the backup", 0)
	pg.SwitchAndWaitArchived()

	// (a) A new root, in a new identity file.
	newID := h.Path("repo-identity-2027.txt")
	newRecipient := h.Keygen(newID)

	// (b) The writer's key replaced in place by one of the new root, and
	// archiving encrypting to the new recipient.
	newKey := h.WriterKey(newID, h.Path("writer-2027.key"), "e2e-repo-2027")
	b, err := os.ReadFile(newKey)
	if err != nil {
		t.Fatal(err)
	}
	h.WriteFile(repo.WriterKeyFile, b, 0o600)
	var env []string
	for _, kv := range pg.Env {
		if !strings.HasPrefix(kv, "WALVAULT_AGE_RECIPIENTS=") {
			env = append(env, kv)
		}
	}
	pg.Env = append(env, "WALVAULT_AGE_RECIPIENTS="+newRecipient)
	pg.Stop("fast")
	pg.Start()
	// Writing goes on under the new root before rekey.
	pg.CommitMarks(6, 7, "new writer, before rekey", 0)
	pg.SwitchAndWaitArchived()
	writer := h.Walvault(append(append([]string(nil), pg.Env...), pg.LibpqEnv()...)...).With("WALVAULT_AGE_IDENTITY_FILE=")
	// A writing host that trusts only the new root cannot verify what
	// the old one signed until rekey: check says so, and what to run.
	stdout, _ := writer.RunExpect(2, "check")
	if !strings.Contains(stdout, "CRITICAL  writer") || !strings.Contains(stdout, "walvault rekey") {
		t.Errorf("check during the rotation does not point at rekey:\n%s", stdout)
	}

	// (c) Readers: the old identity file with the new one appended.
	rotating := h.Path("repo-identity-rotating.txt")
	old, err := os.ReadFile(repo.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	h.WriteFile(rotating, append(append(old, '\n'), mustRead(t, newID)...), 0o600)
	reader := wv.With("WALVAULT_AGE_IDENTITY_FILE="+rotating, "WALVAULT_AGE_RECIPIENTS="+newRecipient)
	reader.MustRun("verify")

	// (d) rekey: dry run, then for real.
	reader.MustRun("rekey", "--age-identity-file", rotating, "--writer-key-file", repo.WriterKeyFile)
	reader.MustRun("rekey", "--age-identity-file", rotating, "--writer-key-file", repo.WriterKeyFile, "--confirm")

	// (e) The new identity alone.
	onlyNew := wv.With("WALVAULT_AGE_IDENTITY_FILE="+newID, "WALVAULT_AGE_RECIPIENTS="+newRecipient)
	onlyNew.MustRun("verify")
	rep := runCheck(t, writer.With("WALVAULT_AGE_IDENTITY_FILE="+newID), 0)
	rep.expect(t, "writer", "OK", []string{`"e2e-repo-2027"`}, nil)
	pg.CommitMarks(8, 9, "after the rotation", 0)
	pg.SwitchAndWaitArchived()
	_, stderr := wv.RunExpect(6, "verify") // the old identity and root alone
	t.Logf("verify with only the retired identity:\n%s", stderr)

	// The server is lost; restore with only the new identity.
	pg.Stop("immediate")
	dir := h.Path("restored")
	onlyNew.MustRun("restore", "--pgdata", dir, "--target-action", "promote")
	rc := h.ClusterAt("restored", dir)
	rc.Env = onlyNew.Env
	rc.Configure("archive_mode = off")
	rc.Start()
	rc.WaitPromoted()
	if got := rc.MarkIDs(); !equalInts(got, seq(1, 9)) {
		t.Errorf("restored marks %v, want 1..9", got)
	}
	rc.Stop("fast")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
