package drill

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoServer: the PostgreSQL server programs of the repository's major
// version are not installed where the drill looks.
var ErrNoServer = errors.New("PostgreSQL server programs not found")

// FindBinDir returns the directory of the server programs (postgres) for
// major: explicit when given, else /usr/lib/postgresql/<major>/bin (Debian
// and Ubuntu, PGDG packages), else the directory of postgres on PATH. The
// server found must be of that major version.
func FindBinDir(explicit string, major int) (dir, version string, err error) {
	var tried []string
	try := func(d string) (string, string, bool, error) {
		p := filepath.Join(d, "postgres")
		if _, err := os.Stat(p); err != nil {
			tried = append(tried, d)
			return "", "", false, nil
		}
		v, m, err := serverVersion(p)
		if err != nil {
			return "", "", false, err
		}
		if major > 0 && m != major {
			return "", "", false, fmt.Errorf("%w: %s is PostgreSQL %s, the repository is of PostgreSQL %d; install postgresql-%d (or give its bin directory with --pg-bindir)",
				ErrNoServer, p, v, major, major)
		}
		return d, v, true, nil
	}
	if explicit != "" {
		d, v, ok, err := try(explicit)
		if err != nil || ok {
			return d, v, err
		}
		return "", "", fmt.Errorf("%w: --pg-bindir %s has no postgres program", ErrNoServer, explicit)
	}
	if d, v, ok, err := try(filepath.Join("/usr/lib/postgresql", strconv.Itoa(major), "bin")); err != nil || ok {
		return d, v, err
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			if d, v, ok, err := try(filepath.Dir(p)); err != nil || ok {
				return d, v, err
			}
		}
	}
	return "", "", fmt.Errorf("%w: looked in %s and on PATH; install the PostgreSQL %d server (Debian/Ubuntu: apt-get install postgresql-%d, from apt.postgresql.org for versions your release lacks) or give its bin directory with --pg-bindir",
		ErrNoServer, strings.Join(tried, ", "), major, major)
}

var versionRe = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// serverVersion runs postgres --version: "postgres (PostgreSQL) 15.18 (Debian …)".
func serverVersion(postgres string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postgres, "--version").Output()
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s --version: %v", ErrNoServer, postgres, err)
	}
	m := versionRe.FindSubmatch(out)
	if m == nil {
		return "", 0, fmt.Errorf("%w: %s --version printed %q", ErrNoServer, postgres, bytes.TrimSpace(out))
	}
	major, _ := strconv.Atoi(string(m[1]))
	v := string(m[1])
	if len(m[2]) > 0 {
		v += "." + string(m[2])
	}
	return v, major, nil
}

// account is who runs the server: nil credential means this process's user.
type account struct {
	name     string
	uid, gid int
	cred     *syscall.Credential
}

// serverAccount returns the account the server runs as: name when this
// process is root (PostgreSQL refuses root), else the current user.
func serverAccount(name string) (*account, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		return &account{name: u.Username, uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as another user, but user %q does not exist: pass one with --owner (%v)", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("--owner %s is root, which PostgreSQL refuses to run as", name)
	}
	return &account{name: u.Username, uid: uid, gid: gid,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}, nil
}

// chown gives path to the account when this process runs as another user.
func (a *account) chown(path string) error {
	if a.cred == nil {
		return nil
	}
	return os.Lchown(path, a.uid, a.gid)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serverEnv is the server's environment: enough to find programs, to
// format times and texts, and to reach S3 (credentials and proxies), but
// nothing that configures libpq or PostgreSQL from outside.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "TZ", name == "LANG", strings.HasPrefix(name, "LC_"),
			strings.HasPrefix(name, "AWS_"), strings.HasPrefix(name, "WALVAULT_"),
			name == "SSL_CERT_FILE", name == "SSL_CERT_DIR",
			strings.EqualFold(name, "HTTP_PROXY"), strings.EqualFold(name, "HTTPS_PROXY"), strings.EqualFold(name, "NO_PROXY"):
			// WALVAULT_CONFIG would make restore_command read another
			// file than the one the drill wrote; the flag wins anyway.
			if name == "WALVAULT_CONFIG" {
				continue
			}
			env = append(env, kv)
		}
	}
	if os.Getenv("PATH") == "" {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	return env
}

// server is one running postmaster started by the drill.
type server struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the postmaster has exited
	waitErr error
	logPath string
	sock    string
	port    int
}

// startServer starts postgres on pgdata. opts are -c NAME=VALUE settings;
// they win over every configuration file.
func startServer(bin, pgdata, logPath string, as *account, opts []string) (*server, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if err := as.chown(logPath); err != nil {
		return nil, err
	}
	args := []string{"-D", pgdata}
	for _, o := range opts {
		args = append(args, "-c", o)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = pgdata
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a terminal's ^C reaches the drill, which
	// stops the server in order, and the whole group can be killed.
	// If the drill dies without cleaning up (SIGKILL, the OOM killer), the
	// kernel tells the server to shut down at once (SIGQUIT).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: as.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s := &server{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// exited reports whether the postmaster has exited.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop shuts the server down: fast shutdown, then immediate, then SIGKILL
// of its whole process group, each bounded. It returns when the postmaster
// has exited.
func (s *server) stop(fast time.Duration) {
	pid := s.cmd.Process.Pid
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, fast}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 10 * time.Second}} {
		if s.exited() {
			break
		}
		if step.sig == syscall.SIGKILL {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		} else {
			_ = syscall.Kill(pid, step.sig)
		}
		select {
		case <-s.done:
		case <-time.After(step.wait):
		}
	}
	// Backends notice the postmaster's death and exit; anything left of
	// the group goes now.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// logTail returns the last n lines of the server log.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	logProblem = regexp.MustCompile(`\b(FATAL|PANIC|ERROR|WARNING):|walvault wal-fetch:|^walvault:|^sh: `)
	// logNoise: the drill's own connection attempts before the server is
	// consistent, and restore_command's answer to PostgreSQL's probes for
	// files that do not exist (future timelines): normal, not the reason.
	logNoise    = regexp.MustCompile(`the database system is (starting up|not yet accepting connections|not accepting connections)|: not in the repository$`)
	restoreFail = regexp.MustCompile(`could not restore file "([0-9A-F]{8,24}(?:\.[a-z]+)?)" from archive`)
)

// logProblems returns the lines of the server log that say what went
// wrong (errors, fatal errors, wal-fetch's messages, the shell's when
// restore_command cannot run at all), at most n, newest
// last; and the WAL file restore_command failed on, if the log names one.
func (s *server) logProblems(n int) (lines []string, failedFile string) {
	f, err := os.Open(s.logPath)
	if err != nil {
		return nil, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if logProblem.MatchString(line) && !logNoise.MatchString(line) {
			lines = append(lines, strings.TrimSpace(line))
			if len(lines) > n {
				lines = lines[1:]
			}
		}
		if m := restoreFail.FindStringSubmatch(line); m != nil {
			failedFile = m[1]
		}
	}
	return lines, failedFile
}
