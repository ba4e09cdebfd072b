package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/internal/repotest"
)

// TestMalformedTargetName: a restore point name PostgreSQL cannot be given
// is a malformed argument (exit 2), refused before anything is done.
func TestMalformedTargetName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, name := range []string{"before\nupgrade", "tab\there", strings.Repeat("x", 64)} {
		_, stderr, code := runCLI(t, map[string]string{"WALVAULT_REPO": "file:///nonexistent"}, "restore", "--pgdata", dir, "--target-name", name)
		if code != exitUsage || !strings.Contains(stderr, "restore point name") {
			t.Errorf("--target-name %q: exit %d, want %d (%s)", name, code, exitUsage, stderr)
		}
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the data directory was made: %v", err)
	}
}

// TestReadOnlyCommandsCreateNothing: info, verify and restore on a
// mistyped file repository say it is not initialized and leave no
// directory behind.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	base := t.TempDir()
	repoDir := filepath.Join(base, "does", "not", "exist")
	env := map[string]string{"WALVAULT_REPO": "", "WALVAULT_CONFIG": "", "WALVAULT_AGE_IDENTITY_FILE": ""}
	for _, args := range [][]string{
		{"info"},
		{"verify"},
		{"restore", "--pgdata", filepath.Join(base, "data")},
		{"wal-fetch", "000000010000000000000001", filepath.Join(base, "x")},
	} {
		_, stderr, code := runCLI(t, env, append(args, "--repo", "file://"+repoDir)...)
		if code == exitOK {
			t.Errorf("%v: exit 0", args)
		}
		if args[0] != "wal-fetch" && (code != exitRepository || !strings.Contains(stderr, "not initialized")) {
			t.Errorf("%v: exit %d, want %d saying the repository is not initialized (%s)", args, code, exitRepository, stderr)
		}
		if _, err := os.Lstat(filepath.Join(base, "does")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v made a directory: %v", args, err)
		}
	}
}

// TestIdentityFileModeWarning: an identity file group or others can read
// gets a warning from the commands that read the repository (not from
// wal-fetch, which PostgreSQL runs per segment).
func TestIdentityFileModeWarning(t *testing.T) {
	r := repotest.New(t, repotest.OnDisk())
	dir, key := r.Dir, r.IdentityFile(t)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WALVAULT_REPO": "", "WALVAULT_CONFIG": "", "WALVAULT_AGE_IDENTITY_FILE": ""}
	_, stderr, code := runCLI(t, env, "info", "--repo", "file://"+dir, "--age-identity-file", key)
	if code != exitOK || !strings.Contains(stderr, "warning: identity file "+key+" has mode 0644") {
		t.Errorf("0644: exit %d, stderr %q", code, stderr)
	}
	_, stderr, _ = runCLI(t, env, "wal-fetch", "--repo", "file://"+dir, "--age-identity-file", key, "00000001.history", filepath.Join(t.TempDir(), "x"))
	if strings.Contains(stderr, "warning") {
		t.Errorf("wal-fetch warned: %q", stderr)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, _ = runCLI(t, env, "info", "--repo", "file://"+dir, "--age-identity-file", key); strings.Contains(stderr, "warning") {
		t.Errorf("0600: stderr %q", stderr)
	}
}

// TestConfigInclude: include reads another file where it stands; the first
// value of a setting wins, so the including file's own settings win.
func TestConfigInclude(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "main.conf")
	top := filepath.Join(dir, "recovery.conf")
	os.WriteFile(inc, []byte("repo = file:///from-include\ns3-region = eu-north-1\n"), 0o600)
	os.WriteFile(top, []byte("repo = 'file:///from-top'\ninclude = '"+inc+"'\n"), 0o600)
	vals, err := readConfigFile(top)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range vals {
		if _, ok := got[v.key]; !ok {
			got[v.key] = v.value
		}
	}
	if got["repo"] != "file:///from-top" || got["s3-region"] != "eu-north-1" {
		t.Errorf("values = %v", got)
	}
	for name, body := range map[string]string{
		"relative": "include = main.conf\n",
		"loop":     "include = " + filepath.Join(dir, "loop.conf") + "\n",
		"missing":  "include = " + filepath.Join(dir, "nope.conf") + "\n",
	} {
		p := filepath.Join(dir, name+".conf")
		if name == "loop" {
			p = filepath.Join(dir, "loop.conf")
		}
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := readConfigFile(p); err == nil {
			t.Errorf("%s include: no error", name)
		}
	}
}

// TestPrefetchArgs: the prefetcher gets wal-fetch's own command-line
// options it also has, with their values, derived from the flag
// definitions (no hand-kept list), and never a secret.
func TestPrefetchArgs(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "walvault-recovery.conf")
	if err := os.WriteFile(conf, []byte("s3-region = eu\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := []string{"walvault", "wal-fetch", "--config", conf, "--repo=file:///x", "--s3-path-style", "--prefetch", "3",
		"000000010000000000000001", "/d/RECOVERYXLOG"}
	app := newApp(io.Discard, io.Discard)
	var got []string
	for _, cmd := range app.Commands {
		if cmd.Name == "wal-fetch" {
			cmd.Action = func(c *cli.Context) error {
				got = prefetchArgs(c, argv[1:])
				return nil
			}
		}
	}
	if err := app.Run(argv); err != nil {
		t.Fatal(err)
	}
	// The region comes from the config file, which the prefetcher reads
	// itself; --prefetch is wal-fetch's alone.
	want := "--config=" + conf + " --repo=file:///x --s3-path-style=true"
	if strings.Join(got, " ") != want {
		t.Errorf("prefetchArgs = %q, want %q", got, want)
	}
}
