package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// suite is the state that TestMain prepares once for every test.
var suite struct {
	walvault string   // path of the built walvault binary
	pgBin    string   // directory of the PostgreSQL server binaries
	pgUser   *account // who runs PostgreSQL; nil: the current user
	skipWhy  string   // non-empty: the environment cannot run these tests
	tmp      string   // suite-wide scratch directory (binary, fixtures)

	mu      sync.Mutex
	secrets map[string]string // secret text -> what it is
	outputs []capturedOutput  // every output the suite captured
}

// account is a local user that commands can run as.
type account struct {
	Name     string
	UID, GID uint32
	// Groups are its supplementary groups, as initgroups(3) gives them to
	// a login or a service (a repository shared through a group needs
	// them); nil runs commands with none.
	Groups []uint32
}

// lookupAccount reads a local user and its groups from the system's
// databases, as a service manager does when it starts a service as it.
func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cannot parse uid %q or gid %q of user %s", u.Uid, u.Gid, name)
	}
	a := &account{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Groups: []uint32{}}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of user %s: %w", name, err)
	}
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil && uint32(g) != a.GID {
			a.Groups = append(a.Groups, uint32(g))
		}
	}
	return a, nil
}

type capturedOutput struct {
	what string // command line or log file name
	text string
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "walvault-e2e-suite-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	suite.tmp = tmp
	defer os.RemoveAll(tmp)
	// The server's user must be able to run the binary and read fixtures.
	if err := os.Chmod(tmp, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	if why := setupEnvironment(); why != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "e2e: cannot run in CI:", why)
			return 1
		}
		suite.skipWhy = why
	} else if bin := os.Getenv("WALVAULT_E2E_BINARY"); bin != "" {
		// A prebuilt binary, e.g. a release build under test.
		suite.walvault = bin
	} else if err := buildWalvault(filepath.Join(tmp, "bin")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	code := m.Run()
	if leaks := findLeakedSecrets(); len(leaks) > 0 {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: secrets appeared in captured output:")
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "  ", l)
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// setupEnvironment finds PostgreSQL and the user to run it as. It returns
// why the suite cannot run, or "".
func setupEnvironment() string {
	suite.pgBin = os.Getenv("WALVAULT_PG_BIN")
	if suite.pgBin == "" {
		suite.pgBin = "/usr/lib/postgresql/15/bin"
	}
	for _, prog := range []string{"initdb", "pg_ctl", "postgres", "pgbench", "pg_amcheck", "pg_resetwal"} {
		if _, err := os.Stat(filepath.Join(suite.pgBin, prog)); err != nil {
			return fmt.Sprintf("PostgreSQL program %s not found in %s (set WALVAULT_PG_BIN)", prog, suite.pgBin)
		}
	}
	if os.Geteuid() != 0 {
		return ""
	}
	a, err := lookupAccount("postgres")
	if err != nil {
		return "running as root and there is no usable postgres user to run PostgreSQL as: " + err.Error()
	}
	suite.pgUser = a
	return ""
}

// buildWalvault builds ./cmd/walvault into dir (unless WALVAULT_E2E_BINARY
// names a prebuilt one). WALVAULT_E2E_RACE=1 builds it
// with the race detector, which is slow but finds races under real load.
func buildWalvault(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	out := filepath.Join(dir, "walvault")
	args := []string{"build", "-o", out}
	if os.Getenv("WALVAULT_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/walvault")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ".." // the module root; tests run in the package directory
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/walvault: %v\n%s", err, b)
	}
	// walvault-push beside it, where it looks for walvault.
	push := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "walvault-push"), "./cmd/walvault-push")
	push.Dir = ".."
	if b, err := push.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/walvault-push: %v\n%s", err, b)
	}
	suite.walvault = out
	return nil
}

// requireSuite skips (or, under CI, fails) a test that cannot run here.
func requireSuite(t testing.TB) {
	t.Helper()
	if suite.skipWhy != "" {
		t.Skip(suite.skipWhy)
	}
}

// registerSecret records text that must never appear in any output.
func registerSecret(what, text string) {
	text = strings.TrimSpace(text)
	if len(text) < 8 {
		return
	}
	suite.mu.Lock()
	defer suite.mu.Unlock()
	if suite.secrets == nil {
		suite.secrets = map[string]string{}
	}
	suite.secrets[text] = what
}

// recordOutput keeps output for the end-of-suite secret scan.
func recordOutput(what, text string) {
	if text == "" {
		return
	}
	suite.mu.Lock()
	defer suite.mu.Unlock()
	suite.outputs = append(suite.outputs, capturedOutput{what: what, text: text})
}

// secretCount is how many secrets the leak scan looks for.
func secretCount() int {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	return len(suite.secrets)
}

// findLeakedSecrets scans every captured output for every registered secret.
func findLeakedSecrets() []string {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	var leaks []string
	for secret, what := range suite.secrets {
		for _, o := range suite.outputs {
			if strings.Contains(o.text, secret) {
				leaks = append(leaks, fmt.Sprintf("%s found in output of %s", what, o.what))
			}
		}
	}
	return leaks
}

// skipOutsideCI skips t for why, except under CI (CI set), where the end-to-end
// tests must not skip: there it fails.
func skipOutsideCI(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why + " (under CI this is a failure, not a skip)")
	}
	t.Skip(why)
}
