package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriterKeySetup: init refuses a writer key it cannot use (missing,
// readable by others, garbage, issued from another identity file) with a
// configuration error naming the file, and creates nothing; check reports
// the writer key of a format-2 repository and goes CRITICAL when this host
// could not write to it.
func TestWriterKeySetup(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg := h.InitCluster("pg")
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)

	key, err := os.ReadFile(repo.WriterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	loose := h.Path("loose-writer.key")
	h.WriteFile(loose, key, 0o640)
	garbage := h.Path("garbage-writer.key")
	h.WriteFile(garbage, []byte("not a key\n"), 0o600)
	otherID := h.Path("other-identity.txt")
	h.Keygen(otherID)
	otherKey := h.WriterKey(otherID, h.Path("other-writer.key"), "other")
	missing := h.Path("no-such-writer.key")

	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"missing", missing, []string{missing, "writer issue"}},
		{"readable by others", loose, []string{loose, "0640", "chmod 600"}},
		{"garbage", garbage, []string{garbage, "writer issue"}},
		{"another root", otherKey, []string{otherKey, "another identity file", repo.IdentityFile}},
	} {
		_, stderr := wv.With("WALVAULT_WRITER_KEY_FILE="+tc.file).RunExpect(3, "init")
		for _, s := range tc.want {
			if !strings.Contains(stderr, s) {
				t.Errorf("init with a writer key %s: stderr does not mention %q:\n%s", tc.name, s, stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(repo.Dir, "walvault.json")); err == nil {
			t.Fatalf("init with a writer key %s created the repository", tc.name)
		}
	}
	// No writer key at all: not a quiet format-1 repository, which every
	// reader holding this root would then refuse.
	noKey := h.Walvault(append(withoutEnv(repo.Env, "WALVAULT_WRITER_KEY_FILE"), pg.LibpqEnv()...)...)
	_, stderr := noKey.RunExpect(3, "init")
	for _, s := range []string{"no writer key", "writer issue", "--allow-unsigned-repository"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("init without a writer key: stderr does not mention %q:\n%s", s, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(repo.Dir, "walvault.json")); err == nil {
		t.Fatal("init without a writer key created the repository")
	}
	wv.MustRun("init")
	pg.SwitchAndWaitArchived()

	// The archiving host: recipients and writer key, no identity.
	archiver := h.Walvault(append(withoutEnv(repo.Env, "WALVAULT_AGE_IDENTITY_FILE"), pg.LibpqEnv()...)...)
	// Another root's writer key against the existing repository: without
	// an identity init cannot compare roots up front, but the repository
	// names its own.
	_, stderr = archiver.With("WALVAULT_WRITER_KEY_FILE="+otherKey).RunExpect(3, "init")
	if !strings.Contains(stderr, otherKey) || !strings.Contains(stderr, "another identity file") {
		t.Errorf("init of an existing repository with another root's writer key:\n%s", stderr)
	}

	wv.MustRun("backup", "--fast")
	rep := runCheck(t, archiver, 0)
	rep.allOK(t)
	rep.expect(t, "writer", "OK", []string{`"e2e-repo"`, "certified by root wvroot1", "roots trusted here"}, nil)
	rep = runCheck(t, wv, 0)
	rep.allOK(t)
	rep.expect(t, "writer", "OK", []string{"(identity file)"}, nil)
	rep.expect(t, "backup", "OK", []string{"manifest read"}, nil)

	noKeyArchiver := archiver.With("WALVAULT_WRITER_KEY_FILE=")
	runCheck(t, noKeyArchiver, 2).expect(t, "writer", "CRITICAL", []string{"no writer key", "refuse to write"}, []string{"walvault writer issue", "writer-key-file"})
	runCheck(t, archiver.With("WALVAULT_WRITER_KEY_FILE="+garbage), 2).expect(t, "writer", "CRITICAL", []string{"cannot be used", garbage}, []string{"writer issue"})
	runCheck(t, archiver.With("WALVAULT_WRITER_KEY_FILE="+otherKey), 2).expect(t, "writer", "CRITICAL", []string{"cannot be verified", `"other"`}, []string{"rekey", "writer issue"})
	runCheck(t, archiver.With("WALVAULT_WRITER_KEY_FILE="+loose), 1).expect(t, "writer", "WARNING", []string{"0640"}, []string{"chmod 600"})
	// What the host says is what wal-push does.
	archiver.With("WALVAULT_WRITER_KEY_FILE=").RunExpect(3, "backup", "--fast")
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
