package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Harness is one test's working area: a directory that the PostgreSQL user
// owns, and helpers that run commands in it.
type Harness struct {
	t    testing.TB
	Base string
	// ServerBin is where the clusters this harness makes find the server
	// programs (initdb, pg_ctl, postgres); "" means suite.pgBin. Set it
	// before InitCluster or ClusterAt to run another major version. Client
	// programs (pgbench, pg_amcheck) always come from suite.pgBin: they
	// talk to older and newer servers alike.
	ServerBin string
	// PGUser is who runs this harness's PostgreSQL programs and walvault
	// runners; nil means suite.pgUser. Same user, fresher groups: a test
	// that adds the user to a group sets it.
	PGUser *account
	// VerifyIgnore are paths (relative to the data directory, as
	// pg_verifybackup -i takes them) that the check after each restore
	// leaves out: files a test put there on purpose.
	VerifyIgnore []string
}

// pgUser is who runs PostgreSQL for this harness.
func (h *Harness) pgUser() *account {
	if h.PGUser != nil {
		return h.PGUser
	}
	return suite.pgUser
}

// newHarness makes a per-test base directory under os.TempDir. It is not
// t.TempDir: that one's parent is 0700 and root's, which the postgres user
// could not traverse.
func newHarness(t testing.TB) *Harness {
	t.Helper()
	requireSuite(t)
	base, err := os.MkdirTemp("", "walvault-e2e-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{t: t, Base: base}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("WALVAULT_E2E_KEEP") != "" {
			t.Logf("keeping %s", base)
			return
		}
		if err := os.RemoveAll(base); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	h.Chown(base)
	return h
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// Path joins elem onto the base directory.
func (h *Harness) Path(elem ...string) string {
	return filepath.Join(append([]string{h.Base}, elem...)...)
}

// Mkdir makes a directory owned by the PostgreSQL user.
func (h *Harness) Mkdir(path string, mode os.FileMode) string {
	h.t.Helper()
	if err := os.MkdirAll(path, mode); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		h.t.Fatal(err)
	}
	h.Chown(path)
	return path
}

// WriteFile writes a file owned by the PostgreSQL user.
func (h *Harness) WriteFile(path string, data []byte, mode os.FileMode) {
	h.t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		h.t.Fatal(err)
	}
	h.Chown(path)
}

// Chown gives path to the PostgreSQL user when the suite runs as root.
func (h *Harness) Chown(path string) {
	h.t.Helper()
	if suite.pgUser == nil {
		return
	}
	if err := os.Lchown(path, int(suite.pgUser.UID), int(suite.pgUser.GID)); err != nil {
		h.t.Fatal(err)
	}
}

// ChownTree gives a whole tree to the PostgreSQL user.
func (h *Harness) ChownTree(root string) {
	h.t.Helper()
	if suite.pgUser == nil {
		return
	}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(suite.pgUser.UID), int(suite.pgUser.GID))
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// baseEnv is the environment every child process starts from: the test's
// own, less anything that would configure walvault, libpq or AWS from
// outside the test, with HOME pointing into the test's directory.
func (h *Harness) baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "WALVAULT_"), strings.HasPrefix(name, "AWS_"),
			strings.HasPrefix(name, "PG"), strings.HasPrefix(name, "XDG_"),
			name == "HOME":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+h.Base, "LC_ALL=C")
}

// command prepares a command that runs as the given account (nil: the
// current user) with baseEnv plus env.
func (h *Harness) command(ctx context.Context, as *account, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(h.baseEnv(), env...)
	cmd.Dir = h.Base
	cmd.WaitDelay = 5 * time.Second
	if as != nil && (as.UID != uint32(os.Geteuid()) || as.GID != uint32(os.Getegid())) {
		groups := as.Groups
		if groups == nil {
			groups = []uint32{}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: as.UID, Gid: as.GID, Groups: groups},
		}
	}
	return cmd
}

// runPG runs a PostgreSQL program as the PostgreSQL user and returns its
// combined output; it fails the test on a non-zero exit.
func (h *Harness) runPG(timeout time.Duration, env []string, prog string, args ...string) string {
	h.t.Helper()
	out, err := h.tryPG(timeout, env, prog, args...)
	if err != nil {
		h.t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, tail(out, 40))
	}
	return out
}

func (h *Harness) tryPG(timeout time.Duration, env []string, prog string, args ...string) (string, error) {
	return h.tryPGIn(suite.pgBin, timeout, env, prog, args...)
}

// serverBin is the directory of the server programs of this harness's
// clusters.
func (h *Harness) serverBin() string {
	if h.ServerBin != "" {
		return h.ServerBin
	}
	return suite.pgBin
}

// runPGIn is runPG for a program in bin.
func (h *Harness) runPGIn(bin string, timeout time.Duration, env []string, prog string, args ...string) string {
	h.t.Helper()
	out, err := h.tryPGIn(bin, timeout, env, prog, args...)
	if err != nil {
		h.t.Fatalf("%s %s: %v\n%s", filepath.Join(bin, prog), strings.Join(args, " "), err, tail(out, 40))
	}
	return out
}

// tryPGIn runs bin/prog as the PostgreSQL user and returns its combined
// output.
func (h *Harness) tryPGIn(bin string, timeout time.Duration, env []string, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := h.command(ctx, h.pgUser(), env, filepath.Join(bin, prog), args...)
	b, err := cmd.CombinedOutput()
	recordOutput(prog, string(b))
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return string(b), err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every interval until it returns true, and fails the
// test with what (and cond's last error) after timeout.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ---------------------------------------------------------------------------
// walvault

// Walvault runs the built binary with a fixed environment.
type Walvault struct {
	h       *Harness
	Env     []string // WALVAULT_*, AWS_* and libpq variables
	As      *account // nil: the current user
	Timeout time.Duration
}

// Walvault returns a runner that runs as the PostgreSQL user, which is how
// operators deploy it (the repository's files then share one owner with what
// archive_command writes).
func (h *Harness) Walvault(env ...string) *Walvault {
	return &Walvault{h: h, Env: env, As: h.pgUser(), Timeout: 5 * time.Minute}
}

// With returns a copy with more environment variables (later ones win).
func (w *Walvault) With(env ...string) *Walvault {
	c := *w
	c.Env = append(append([]string(nil), w.Env...), env...)
	return &c
}

// AsCurrentUser returns a copy that runs as the test process's own user.
func (w *Walvault) AsCurrentUser() *Walvault {
	c := *w
	c.As = nil
	return &c
}

// Run runs walvault and returns its output and exit status (-1 when it was
// killed by a signal).
func (w *Walvault) Run(args ...string) (stdout, stderr string, exit int) {
	w.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	cmd := w.h.command(ctx, w.As, w.Env, suite.walvault, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err := cmd.Run()
	stdout, stderr = o.String(), e.String()
	line := "walvault " + strings.Join(args, " ")
	recordOutput(line, stdout+stderr)
	exit = 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		w.h.t.Fatalf("%s: %v", line, err)
	}
	if ctx.Err() != nil {
		w.h.t.Fatalf("%s: timed out after %v\nstderr:\n%s", line, w.Timeout, tail(stderr, 30))
	}
	w.h.t.Logf("%s -> exit %d in %v\n  stdout: %s\n  stderr: %s", line, exit,
		time.Since(start).Round(time.Millisecond), tail(stdout, 10), tail(stderr, 15))
	if exit == 0 {
		w.h.afterRestore(args) // restored_test.go
	}
	return stdout, stderr, exit
}

// MustRun runs walvault and fails the test unless it exits 0. It returns stdout.
func (w *Walvault) MustRun(args ...string) string {
	w.h.t.Helper()
	stdout, stderr, exit := w.Run(args...)
	if exit != 0 {
		w.h.t.Fatalf("walvault %s: exit %d, want 0\nstderr:\n%s", strings.Join(args, " "), exit, tail(stderr, 40))
	}
	return stdout
}

// RunExpect runs walvault and fails the test unless it exits with want.
func (w *Walvault) RunExpect(want int, args ...string) (stdout, stderr string) {
	w.h.t.Helper()
	stdout, stderr, exit := w.Run(args...)
	if exit != want {
		w.h.t.Fatalf("walvault %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), exit, want, tail(stdout, 20), tail(stderr, 40))
	}
	return stdout, stderr
}

// Start starts walvault in the background; the caller waits for or kills it.
// Its output is recorded when it ends.
func (w *Walvault) Start(args ...string) (*exec.Cmd, *bytes.Buffer) {
	w.h.t.Helper()
	cmd := w.h.command(context.Background(), w.As, w.Env, suite.walvault, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		w.h.t.Fatal(err)
	}
	w.h.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		recordOutput("walvault "+strings.Join(args, " "), out.String())
	})
	return cmd, &out
}

// Keygen makes an age identity file owned by the PostgreSQL user and returns
// the recipient. The secret key is registered for the leak scan.
func (h *Harness) Keygen(path string) string {
	h.t.Helper()
	w := h.Walvault()
	stdout := w.MustRun("keygen", path)
	recipient := strings.TrimSpace(stdout)
	if !strings.HasPrefix(recipient, "age1") || strings.ContainsAny(recipient, " \n") {
		h.t.Fatalf("keygen printed %q, want only an age1… recipient", stdout)
	}
	fi, err := os.Stat(path)
	if err != nil {
		h.t.Fatalf("keygen wrote no identity file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		h.t.Errorf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	found, root := false, false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "AGE-SECRET-KEY-") {
			registerSecret("identity "+path, line)
			found = true
		}
		if k, ok := strings.CutPrefix(line, "# walvault-root-key: "); ok {
			registerSecret("root key of "+path, k)
			root = true
		}
	}
	if !found || !root {
		h.t.Fatalf("identity file %s lacks its AGE-SECRET-KEY or walvault root key line", path)
	}
	return recipient
}

// WriterKey issues a writer key named name, certified by the root of the
// identity file, into path (owned by the PostgreSQL user, 0600), and
// registers its secret.
func (h *Harness) WriterKey(identity, path, name string) string {
	h.t.Helper()
	h.Walvault().MustRun("writer", "issue", "--age-identity-file", identity, "--name", name, path)
	b, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "WALVAULT-WRITER-KEY-1") || strings.HasPrefix(line, "WALVAULT-CONTENT-KEY-1") {
			registerSecret("writer key "+path, line)
		}
	}
	return path
}

// Info is the JSON that `walvault info --json` prints.
type Info struct {
	Backups []struct {
		ID          string `json:"id"`
		StartTime   string `json:"start_time"`
		StopTime    string `json:"stop_time"`
		StartLSN    string `json:"start_lsn"`
		StopLSN     string `json:"stop_lsn"`
		Timeline    int    `json:"timeline"`
		Bytes       int64  `json:"bytes"`
		StoredBytes int64  `json:"stored_bytes"`
		NewBytes    int64  `json:"new_bytes"`
		SharedBytes int64  `json:"shared_bytes"`
		// IncrementalFrom: PostgreSQL 17+ sent only changed blocks.
		IncrementalFrom string `json:"incremental_from"`
	} `json:"backups"`
	WAL []struct {
		Timeline int    `json:"timeline"`
		From     string `json:"from"`
		To       string `json:"to"`
	} `json:"wal"`
	Recoverable *struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"recoverable"`
}

// Info runs `info --json` and decodes it.
func (w *Walvault) Info() Info {
	w.h.t.Helper()
	out := w.MustRun("info", "--json")
	var info Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		w.h.t.Fatalf("info --json: %v\n%s", err, out)
	}
	return info
}

// ---------------------------------------------------------------------------
// PostgreSQL

// Cluster is one PostgreSQL data directory and the server running on it.
type Cluster struct {
	h       *Harness
	Name    string
	BinDir  string // initdb, pg_ctl and postgres of the cluster's major version
	DataDir string
	Port    int
	LogFile string
	// Env is the server's environment beyond baseEnv: what archive_command
	// and restore_command see.
	Env []string
	// Role is the superuser the harness connects as (default "postgres",
	// the role InitCluster makes; InitClusterAs makes another).
	Role string
}

// role is the role the harness connects to the cluster as.
func (c *Cluster) role() string {
	if c.Role == "" {
		return "postgres"
	}
	return c.Role
}

// InitClusterAs is InitCluster with role as the bootstrap superuser (and
// no role called postgres), as the official Odoo container's
// POSTGRES_USER=odoo makes it.
func (h *Harness) InitClusterAs(name, role string, initdbArgs ...string) *Cluster {
	h.t.Helper()
	c := h.ClusterAt(name, h.Path(name))
	c.Role = role
	h.initdb(c, initdbArgs...)
	return c
}

// InitCluster runs initdb (with data checksums) and configures the server
// to listen on 127.0.0.1 only, on a free port, with its socket in the base
// directory. More settings can be appended with Configure before Start.
func (h *Harness) InitCluster(name string, initdbArgs ...string) *Cluster {
	h.t.Helper()
	c := h.ClusterAt(name, h.Path(name))
	h.initdb(c, initdbArgs...)
	return c
}

func (h *Harness) initdb(c *Cluster, initdbArgs ...string) {
	h.t.Helper()
	args := append([]string{"-D", c.DataDir, "-U", c.role(), "--auth=trust", "--data-checksums",
		"--encoding=UTF8", "--locale=C"}, initdbArgs...)
	h.runPGIn(c.BinDir, 2*time.Minute, nil, "initdb", args...)
	c.Configure(
		"shared_buffers = 32MB",
		"max_connections = 30",
		"log_line_prefix = '%m [%p] '",
		"log_timezone = 'UTC'", // backup_label and .backup times are in it
		"log_checkpoints = on",
	)
}

// ClusterAt describes a data directory made by someone else (walvault
// restore). The server gets its own port and log file.
func (h *Harness) ClusterAt(name, dataDir string) *Cluster {
	c := &Cluster{h: h, Name: name, BinDir: h.serverBin(), DataDir: dataDir, Port: freePort(h.t), LogFile: h.Path(name + ".log")}
	h.t.Cleanup(func() {
		if c.Running() {
			_, _ = h.tryPGIn(c.BinDir, time.Minute, nil, "pg_ctl", "-D", c.DataDir, "-m", "immediate", "-w", "stop")
		}
		if b, err := os.ReadFile(c.LogFile); err == nil {
			recordOutput("server log "+c.Name, string(b))
			if h.t.Failed() {
				h.t.Logf("server log of %s (tail):\n%s", c.Name, tail(string(b), 60))
			}
		}
	})
	return c
}

// Configure appends settings to postgresql.conf (not postgresql.auto.conf,
// which restore writes).
func (c *Cluster) Configure(lines ...string) {
	c.h.t.Helper()
	f, err := os.OpenFile(filepath.Join(c.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		c.h.t.Fatal(err)
	}
}

// StartArchiving starts a new cluster that archives into repo with
// `walvault wal-push %p`, and initializes repo for it. It returns the
// cluster and a walvault runner with the repository's and the cluster's
// settings, as most scenarios begin.
func (h *Harness) StartArchiving(name string, repo *Repo) (*Cluster, *Walvault) {
	h.t.Helper()
	pg := h.InitCluster(name)
	pg.Env = repo.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	return pg, wv
}

// ConfigureArchiving turns on archiving into walvault with the given
// archive_command, plus the settings every scenario needs.
func (c *Cluster) ConfigureArchiving(archiveCommand string) {
	c.Configure(
		"wal_level = replica",
		"archive_mode = on",
		"archive_command = '"+strings.ReplaceAll(archiveCommand, "'", "''")+"'",
		"track_commit_timestamp = on",
		"max_wal_senders = 5",
	)
}

// serverOptions are per-start settings; they override anything a restored
// postgresql.conf says about where to listen.
func (c *Cluster) serverOptions() string {
	return fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", c.Port, c.h.Base)
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.h.t.Helper()
	out, err := c.h.tryPGIn(c.BinDir, 5*time.Minute, c.Env, "pg_ctl", "-D", c.DataDir, "-l", c.LogFile,
		"-o", c.serverOptions(), "-w", "-t", "280", "start")
	if err != nil {
		c.h.t.Fatalf("pg_ctl start %s: %v\n%s\nserver log:\n%s", c.Name, err, out, c.LogTail(60))
	}
}

// TryStart starts the server like Start but returns pg_ctl's error instead
// of failing the test (used where startup is expected to fail).
func (c *Cluster) TryStart() error {
	out, err := c.h.tryPGIn(c.BinDir, 5*time.Minute, c.Env, "pg_ctl", "-D", c.DataDir, "-l", c.LogFile,
		"-o", c.serverOptions(), "-w", "-t", "280", "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	return nil
}

// Stop stops the server with the given mode (smart, fast, immediate).
func (c *Cluster) Stop(mode string) {
	c.h.t.Helper()
	c.h.runPGIn(c.BinDir, 2*time.Minute, nil, "pg_ctl", "-D", c.DataDir, "-m", mode, "-w", "-t", "110", "stop")
}

// Running reports whether a postmaster runs on the data directory.
func (c *Cluster) Running() bool {
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err != nil {
		return false
	}
	_, err := c.h.tryPGIn(c.BinDir, 30*time.Second, nil, "pg_ctl", "-D", c.DataDir, "status")
	return err == nil
}

// LogTail returns the last n lines of the server log.
func (c *Cluster) LogTail(n int) string {
	b, err := os.ReadFile(c.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(string(b), n)
}

// Log returns the whole server log.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.LogFile)
	return string(b)
}

// URL is a libpq URL for the server.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", c.role(), c.Port)
}

// LibpqEnv is the environment that points libpq (and walvault) at the server.
func (c *Cluster) LibpqEnv() []string {
	return []string{"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(c.Port), "PGUSER=" + c.role(), "PGDATABASE=postgres", "PGSSLMODE=disable"}
}

// Connect opens a connection; the caller closes it.
func (c *Cluster) Connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.URL())
}

// Exec runs SQL and fails the test on error.
func (c *Cluster) Exec(sql string, args ...any) {
	c.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := c.Connect(ctx)
	if err != nil {
		c.h.t.Fatalf("connect to %s: %v\nserver log:\n%s", c.Name, err, c.LogTail(30))
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		c.h.t.Fatalf("%s: %s: %v", c.Name, sql, err)
	}
}

// QueryRow runs a query that returns one row and scans it into dest.
func (c *Cluster) QueryRow(sql string, args []any, dest ...any) {
	c.h.t.Helper()
	if err := c.tryQueryRow(sql, args, dest...); err != nil {
		c.h.t.Fatalf("%s: %s: %v\nserver log:\n%s", c.Name, sql, err, c.LogTail(30))
	}
}

func (c *Cluster) tryQueryRow(sql string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

// QueryString returns the single text value of a query.
func (c *Cluster) QueryString(sql string, args ...any) string {
	c.h.t.Helper()
	var s string
	c.QueryRow(sql, args, &s)
	return s
}

// QueryInts returns the first column of every row as int64.
func (c *Cluster) QueryInts(sql string, args ...any) []int64 {
	c.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := c.Connect(ctx)
	if err != nil {
		c.h.t.Fatalf("connect to %s: %v", c.Name, err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		c.h.t.Fatalf("%s: %s: %v", c.Name, sql, err)
	}
	ints, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		c.h.t.Fatalf("%s: %s: %v", c.Name, sql, err)
	}
	return ints
}

// SystemIdentifier returns the cluster's system identifier.
func (c *Cluster) SystemIdentifier() string {
	c.h.t.Helper()
	return c.QueryString("SELECT system_identifier::text FROM pg_control_system()")
}

// SwitchAndWaitArchived switches to a new WAL segment and waits until the
// archiver has archived the segment it closed. It returns that segment.
//
// pg_switch_wal returns the end of its switch record, inside the closed
// segment, or, when nothing was written since the last switch, the
// boundary at the start of the current segment. pg_walfile_name names the
// segment before such a boundary up to PostgreSQL 16 but the segment after
// it (unfinished, so never archived) from 17: the segment is named from the
// byte before the returned position, which is the same on every version.
func (c *Cluster) SwitchAndWaitArchived() string {
	c.h.t.Helper()
	end := parseLSN(c.h.t, c.QueryString("SELECT pg_switch_wal()::text"))
	seg := c.QueryString("SELECT pg_walfile_name($1::text::pg_lsn)", formatLSN(end-1))
	c.WaitArchived(seg)
	return seg
}

// WaitArchived waits until the archiver has archived seg: its
// archive_status file says .done, or pg_stat_archiver reports it or a later
// file on the same timeline (the archiver goes in order).
func (c *Cluster) WaitArchived(seg string) {
	c.h.t.Helper()
	var last, failed string
	var failedCount int64
	done := filepath.Join(c.DataDir, "pg_wal", "archive_status", seg+".done")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(done); err == nil {
			return
		}
		err := c.tryQueryRow(`SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, ''), failed_count
			FROM pg_stat_archiver`, nil, &last, &failed, &failedCount)
		// last may be a segment, or a .backup or .partial file named after
		// one, or a .history file (no segment).
		if err == nil && len(last) >= 24 && last[:8] == seg[:8] && last[:24] >= seg {
			return
		}
		if time.Now().After(deadline) {
			c.h.t.Fatalf("%s: segment %s not archived after 3m: last archived %q, last failed %q, %d failures (err %v)\nserver log:\n%s",
				c.Name, seg, last, failed, failedCount, err, c.LogTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitPromoted waits until the server has finished recovery and accepts
// writes. It fails fast when the server stops.
func (c *Cluster) WaitPromoted() {
	c.h.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for i := 0; ; i++ {
		var inRecovery bool
		err := c.tryQueryRow("SELECT pg_is_in_recovery()", nil, &inRecovery)
		if err == nil && !inRecovery {
			c.afterPromoted() // restored_test.go
			return
		}
		if err != nil && i%20 == 19 && !c.Running() {
			c.h.t.Fatalf("%s stopped during recovery: %v\nserver log:\n%s", c.Name, err, c.LogTail(60))
		}
		if time.Now().After(deadline) {
			c.h.t.Fatalf("%s still in recovery after 4m (err %v)\nserver log:\n%s", c.Name, err, c.LogTail(60))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Major returns the server's major version (13, 14, …).
func (c *Cluster) Major() int {
	c.h.t.Helper()
	var n int
	c.QueryRow("SELECT current_setting('server_version_num')::int / 10000", nil, &n)
	return n
}

// AmCheck runs pg_amcheck on every database, installing amcheck first.
// PostgreSQL 13's amcheck (1.2) has no heap check, which pg_amcheck needs:
// there every B-tree index of every database is checked against its table
// with bt_index_check(index, heapallindexed => true) instead.
func (c *Cluster) AmCheck() {
	c.h.t.Helper()
	if c.Major() < 14 {
		c.amCheckIndexes()
		return
	}
	c.h.runPG(10*time.Minute, nil, "pg_amcheck", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", c.role(),
		"--install-missing", "-a")
}

// amCheckIndexes checks every valid B-tree index of every database that
// accepts connections, with the amcheck extension's bt_index_check.
func (c *Cluster) amCheckIndexes() {
	c.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var dbs []string
	func() {
		conn, err := c.Connect(ctx)
		if err != nil {
			c.h.t.Fatalf("connect to %s: %v", c.Name, err)
		}
		defer conn.Close(context.Background())
		rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
		if err != nil {
			c.h.t.Fatalf("%s: list databases: %v", c.Name, err)
		}
		if dbs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			c.h.t.Fatalf("%s: list databases: %v", c.Name, err)
		}
	}()
	for _, db := range dbs {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.role(), c.Port, url.PathEscape(db)))
		if err != nil {
			c.h.t.Fatalf("connect to %s database %s: %v", c.Name, db, err)
		}
		var checked int
		_, err = conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS amcheck")
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT count(bt_index_check(i.indexrelid, true))
				FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
				WHERE a.amname = 'btree' AND c.relpersistence <> 't' AND i.indisvalid AND i.indisready`).Scan(&checked)
		}
		conn.Close(context.Background())
		if err != nil {
			c.h.t.Fatalf("%s: amcheck of database %s: %v", c.Name, db, err)
		}
		c.h.t.Logf("%s: PostgreSQL %d has no heap check; bt_index_check(heapallindexed) passed on %d B-tree indexes of database %s",
			c.Name, c.Major(), checked, db)
	}
}

// PgbenchInit runs pgbench -i at the given scale.
func (c *Cluster) PgbenchInit(scale int) {
	c.h.t.Helper()
	c.h.runPG(10*time.Minute, nil, "pgbench", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", c.role(),
		"-i", "-q", "-s", strconv.Itoa(scale), "postgres")
}

// Pgbench is a pgbench run in the background.
type Pgbench struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// StartPgbench starts `pgbench -c clients -T seconds` in the background. It
// is bounded by its own -T and by a hard deadline.
func (c *Cluster) StartPgbench(clients, seconds int) *Pgbench {
	c.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+3*time.Minute)
	p := &Pgbench{done: make(chan error, 1)}
	p.cmd = c.h.command(ctx, c.h.pgUser(), nil, filepath.Join(suite.pgBin, "pgbench"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", c.role(),
		"-n", "-c", strconv.Itoa(clients), "-T", strconv.Itoa(seconds), "postgres")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		c.h.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); cancel() }()
	c.h.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Wait waits for pgbench to end and fails the test if it failed.
func (p *Pgbench) Wait(t testing.TB) {
	t.Helper()
	err := <-p.done
	p.done <- err // Cleanup reads it again
	recordOutput("pgbench", p.out.String())
	if err != nil {
		t.Fatalf("pgbench: %v\n%s", err, tail(p.out.String(), 30))
	}
	t.Logf("pgbench:\n%s", tail(p.out.String(), 12))
}

// BenchSums are pgbench's balance sums, which agree in every consistent
// snapshot of the database.
type BenchSums struct {
	Accounts, Branches, Tellers, History, HistoryRows int64
}

// BenchSums reads the sums in one snapshot.
func (c *Cluster) BenchSums() BenchSums {
	c.h.t.Helper()
	var s BenchSums
	c.QueryRow(`SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts),
		(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches),
		(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers),
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		(SELECT count(*) FROM pgbench_history)`, nil,
		&s.Accounts, &s.Branches, &s.Tellers, &s.History, &s.HistoryRows)
	return s
}

// CheckBenchInvariants fails the test unless the pgbench sums agree.
func (c *Cluster) CheckBenchInvariants() BenchSums {
	c.h.t.Helper()
	s := c.BenchSums()
	if s.Accounts != s.Branches || s.Branches != s.Tellers || s.Tellers != s.History {
		c.h.t.Errorf("%s: pgbench invariants broken: %+v", c.Name, s)
	}
	return s
}

// ---------------------------------------------------------------------------
// marks: one row per transaction, with exact commit times

// Mark is one committed marker row.
type Mark struct {
	ID       int
	CommitTS time.Time
	XID      string
	LSNAfter string // pg_current_wal_insert_lsn() right after the commit
}

// CreateMarks creates the marks table.
func (c *Cluster) CreateMarks() {
	c.Exec("CREATE TABLE marks (id int PRIMARY KEY, note text NOT NULL)")
}

// CommitMarks commits rows ids first..last, one transaction each, spaced by
// gap, and returns each with its commit timestamp.
func (c *Cluster) CommitMarks(first, last int, note string, gap time.Duration) []Mark {
	c.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := c.Connect(ctx)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var marks []Mark
	for id := first; id <= last; id++ {
		if id > first {
			time.Sleep(gap)
		}
		var xid string
		if err := conn.QueryRow(ctx, "INSERT INTO marks VALUES ($1, $2) RETURNING xmin::text", id,
			fmt.Sprintf("%s-%d", note, id)).Scan(&xid); err != nil {
			c.h.t.Fatalf("insert mark %d: %v", id, err)
		}
		m := Mark{ID: id, XID: xid}
		if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text,
			pg_xact_commit_timestamp($1::text::xid)`, xid).Scan(&m.LSNAfter, &m.CommitTS); err != nil {
			c.h.t.Fatalf("commit timestamp of mark %d: %v", id, err)
		}
		marks = append(marks, m)
	}
	return marks
}

// MarkIDs returns the ids in the marks table, in order.
func (c *Cluster) MarkIDs() []int64 {
	c.h.t.Helper()
	return c.QueryInts("SELECT id::bigint FROM marks ORDER BY id")
}

// seq returns first..last.
func seq(first, last int) []int64 {
	var s []int64
	for i := first; i <= last; i++ {
		s = append(s, int64(i))
	}
	return s
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// repository inspection

// objectHeaderLen is the plaintext header that starts every object except
// walvault.json; the age body follows it.
const objectHeaderLen = 48

// fileRepoObjects reads every object of a file repository: key -> content.
func fileRepoObjects(t testing.TB, root string) map[string][]byte {
	t.Helper()
	objs := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		objs[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// checkObjectsEncrypted asserts that the repository holds WAL and backup
// objects, that each (but walvault.json) is a header plus an age body, and
// that none contains the plaintext marker.
func checkObjectsEncrypted(t testing.TB, objs map[string][]byte, marker string) {
	t.Helper()
	var wal, backup int
	for key, b := range objs {
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("object %s contains the plaintext marker %q", key, marker)
		}
		if strings.HasSuffix(key, "walvault.json") {
			continue
		}
		switch {
		case strings.Contains(key, "wal/"):
			wal++
		case strings.Contains(key, "backups/"), strings.Contains(key, "packs/"):
			backup++
		}
		if len(b) < objectHeaderLen || string(b[:4]) != "WVLT" {
			t.Errorf("object %s does not start with the WVLT header", key)
			continue
		}
		// Format 2 (version byte 2): 66 fixed bytes, the writer's
		// certificate (its length at 64), a 64-byte signature.
		n := objectHeaderLen
		if b[4] == 2 && len(b) >= 66 {
			n = 66 + int(b[64])<<8 + int(b[65]) + 64
		}
		// A block pack's body is its head ("WVPK", version 1, the data key
		// age-encrypted), then AES-GCM frames (docs/FORMAT.md).
		if strings.Contains(key, "packs/") && n <= len(b) && bytes.HasPrefix(b[n:], []byte("WVPK\x01")) {
			n += 5
		}
		if n > len(b) || !bytes.HasPrefix(b[n:], []byte("age-encryption.org/v1\n")) {
			t.Errorf("object %s: body after the %d-byte header is not age-encrypted (starts %q)",
				key, n, truncate(b[min(n, len(b)):], 24))
		}
	}
	if wal == 0 || backup == 0 {
		t.Errorf("repository has %d WAL and %d backup objects; want both", wal, backup)
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// copyTree copies a directory tree (the file repository) for a test that
// damages it; the copy belongs to the PostgreSQL user.
func (h *Harness) copyTree(src, dst string) {
	h.t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return err
		}
		// Keep modification times: they are the objects' stored times,
		// which walvault may use (as S3's LastModified).
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chtimes(target, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.ChownTree(dst)
}

// dirEmptyOrAbsent reports whether dir does not exist or has no entries.
func dirEmptyOrAbsent(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return len(entries) == 0, err
}
