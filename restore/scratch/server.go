package scratch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// version are not installed where walvault looks.
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

// Account is who runs the server: a nil credential means this process's
// user.
type Account struct {
	Name     string
	uid, gid int
	home     string
	cred     *syscall.Credential
}

// ServerAccount returns the account the server runs as: name when this
// process is root (PostgreSQL refuses root), else the current user.
func ServerAccount(name string) (*Account, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		return &Account{Name: u.Username, uid: os.Geteuid(), gid: os.Getegid(), home: u.HomeDir}, nil
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
	// The user's own groups, as a service manager starts the server: a
	// repository or config file shared through a group must be as
	// readable here as it will be for the real server.
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil && int(g) != gid {
				groups = append(groups, uint32(g))
			}
		}
	}
	if groups == nil {
		groups = []uint32{}
	}
	return &Account{Name: u.Username, uid: uid, gid: gid, home: u.HomeDir,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}, nil
}

// Other reports whether the account is another user than this process's
// (files made for it must be given to it).
func (a *Account) Other() bool { return a.cred != nil }

// IDs returns the account's user and group ids.
func (a *Account) IDs() (uid, gid int) { return a.uid, a.gid }

// Command prepares a command that runs as the account, in "/", with env
// as its whole environment.
func (a *Account) Command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second
	if a.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	}
	return cmd
}

// CanRead reports whether the account can open path for reading, by
// trying it as the account: modes, owners, ACLs and every directory on
// the way are judged by the kernel, not guessed.
func (a *Account) CanRead(path string) error {
	if a.cred == nil {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		return f.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := a.Command(ctx, []string{"PATH=/usr/bin:/bin"}, "/bin/sh", "-c", `exec <"$1"`, "sh", path).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("user %s cannot read %s: %s", a.Name, path, msg)
	}
	return nil
}

// ServiceEnv is the environment a service manager gives a server of the
// account: a fixed PATH, its home, and this process's locale and time
// zone; nothing of this shell's credentials.
func (a *Account) ServiceEnv() []string {
	home := a.home
	if home == "" {
		home = "/"
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "LANG" || name == "TZ" || strings.HasPrefix(name, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

// Chown gives path to the account when this process runs as another user.
func (a *Account) Chown(path string) error {
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

// ServerEnv is the server's environment: enough to find programs, to
// format times and texts, and to reach S3 (credentials and proxies), but
// nothing that configures libpq or PostgreSQL from outside.
func ServerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "TZ", name == "LANG", strings.HasPrefix(name, "LC_"),
			strings.HasPrefix(name, "AWS_"), strings.HasPrefix(name, "WALVAULT_"),
			name == "SSL_CERT_FILE", name == "SSL_CERT_DIR",
			strings.EqualFold(name, "HTTP_PROXY"), strings.EqualFold(name, "HTTPS_PROXY"), strings.EqualFold(name, "NO_PROXY"):
			// WALVAULT_CONFIG would make restore_command read another
			// file than the one restore wrote; the flag wins anyway.
			// WALVAULT_AGE_IDENTITY_FILE would win over the file's
			// identity, which may be a copy the server's user can read
			// where it could not read the original (root's key).
			if name == "WALVAULT_CONFIG" || name == "WALVAULT_AGE_IDENTITY_FILE" {
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

// FindProgram returns bin/name, else name on PATH, else "".
func FindProgram(bin, name string) string {
	if bin != "" {
		p := filepath.Join(bin, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// Config says how to start a server.
type Config struct {
	// BinDir holds postgres (FindBinDir).
	BinDir string
	// PGData is the recovered data directory.
	PGData string
	// RunDir is a directory (mode 0700, owned by Account) for the files of
	// this run: access and ident rules, the server log, the socket (unless
	// its path would be too long for a Unix socket) and, when PGData has
	// none, an empty postgresql.conf.
	RunDir  string
	Account *Account
	// TCP makes the server listen on a free port of 127.0.0.1 (connections
	// over it are still refused by the access rules: the port only
	// identifies the socket); otherwise it listens on no TCP address at
	// all and its socket carries port 5432's name.
	TCP bool
	// Settings are NAME=VALUE server settings, after the ones read from
	// pg_control and before the ones that keep the run private and safe
	// (listening, access rules, archive_mode=off), which nothing overrides.
	Settings []string
	// ClusterName names the server in ps output ("walvault-drill"), and
	// the socket directory when it cannot be in RunDir.
	ClusterName string
	// Env is added to the server's environment (ServerEnv): what its
	// restore_command needs that is not in a file, such as this run's S3
	// credentials.
	Env    []string
	Logger *slog.Logger
}

// Server is one running postmaster on a recovered data directory, reached
// only over a Unix socket in a directory only its account can enter.
type Server struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the postmaster has exited
	waitErr error
	// LogPath is the server log, Sock the socket directory, Port the port
	// (the number in the socket's name; also a TCP port when Config.TCP).
	LogPath string
	Sock    string
	Port    int
	// BinDir is where postgres was started from.
	BinDir    string
	extraDirs []string
	role      string
}

// Role is the database role WaitPromoted connected as: the first of its
// WaitOptions.Users that exists in the cluster.
func (s *Server) Role() string { return s.role }

// Start writes the configuration the private server needs into RunDir and
// starts it. It returns once the postmaster runs; WaitPromoted waits for
// recovery. A server that exits at once for another reason than a taken
// port is returned as is: WaitPromoted says why.
func Start(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := cfg.ClusterName
	if name == "" {
		name = "walvault"
	}
	sock, extra, err := socketDir(cfg.RunDir, name+"-sock-", cfg.Account)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		for _, d := range extra {
			_ = os.RemoveAll(d)
		}
		return nil, err
	}
	files := map[string]string{
		// Only the socket, in a directory only the server's user (and
		// root) can enter; TCP is refused outright.
		"walvault_hba.conf":   "# walvault: local socket only\nlocal all all trust\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n",
		"walvault_ident.conf": "# walvault: no user name maps\n",
	}
	var configFile string
	if _, err := os.Stat(filepath.Join(cfg.PGData, "postgresql.conf")); errors.Is(err, os.ErrNotExist) {
		// Debian and Ubuntu keep the configuration in /etc/postgresql,
		// outside the data directory: the backup has none. The server's
		// defaults do for this run, and the data directory stays as the
		// normal service expects it.
		configFile = filepath.Join(cfg.RunDir, "postgresql.conf")
		files["postgresql.conf"] = "# written by walvault: the data directory holds no postgresql.conf (Debian keeps it in /etc/postgresql)\n"
	}
	for name, text := range files {
		p := filepath.Join(cfg.RunDir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			return fail(err)
		}
		if err := cfg.Account.Chown(p); err != nil {
			return fail(err)
		}
	}
	settings := controlSettings(cfg.BinDir, cfg.PGData)
	// JIT needs memory that is writable and then executable, which
	// hardened services (MemoryDenyWriteExecute=yes) forbid; these
	// servers' queries do not need it.
	settings = append(settings, "jit=off")
	settings = append(settings, cfg.Settings...)
	if configFile != "" {
		settings = append(settings, "config_file="+configFile)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, listen := 5432, "listen_addresses="
		if cfg.TCP {
			if port, err = freePort(); err != nil {
				return fail(err)
			}
			listen = "listen_addresses=127.0.0.1"
		}
		// Last, so that nothing can override them: where it listens, who
		// may connect, and above all that it archives nothing.
		safe := []string{
			listen,
			fmt.Sprintf("port=%d", port),
			"unix_socket_directories=" + sock,
			"unix_socket_permissions=0700",
			"hba_file=" + filepath.Join(cfg.RunDir, "walvault_hba.conf"),
			"ident_file=" + filepath.Join(cfg.RunDir, "walvault_ident.conf"),
			"archive_mode=off",
			"hot_standby=on",
			"synchronous_standby_names=",
			"ssl=off",
			"logging_collector=off",
			"log_destination=stderr",
			"external_pid_file=",
			"cluster_name=" + name,
		}
		srv, err := startPostgres(cfg.BinDir, cfg.PGData, filepath.Join(cfg.RunDir, "postgres.log"), cfg.Account, cfg.Env, append(settings, safe...))
		if err != nil {
			return fail(err)
		}
		srv.Sock, srv.Port, srv.BinDir, srv.extraDirs = sock, port, cfg.BinDir, extra
		if !cfg.TCP {
			log.Info("server started", "pid", srv.cmd.Process.Pid, "socket", sock, "log", srv.LogPath)
			return srv, nil
		}
		// A port taken between freePort and the server's bind makes it
		// exit at once: try another.
		select {
		case <-srv.done:
			lines, _ := srv.LogProblems(5)
			lastErr = fmt.Errorf("the server exited at once: %s", strings.Join(lines, " | "))
			if !strings.Contains(strings.Join(lines, "\n"), "could not bind") {
				return srv, nil // WaitPromoted reports why
			}
			log.Warn("port taken, trying another", "port", port)
			continue
		case <-time.After(300 * time.Millisecond):
		}
		log.Info("server started", "port", port, "pid", srv.cmd.Process.Pid, "log", srv.LogPath)
		return srv, nil
	}
	return fail(lastErr)
}

// maxSocketPath is the longest path of a Unix socket (sun_path holds 108
// bytes with the terminating NUL).
const maxSocketPath = 107

// socketDir makes the directory of the server's socket, mode 0700 and owned
// by the server's account: in runDir, or, when the socket's path would be
// too long there, in a directory of its own under $TMPDIR (else /tmp),
// named prefix*, returned in extra for removal.
func socketDir(runDir, prefix string, as *Account) (dir string, extra []string, err error) {
	const socketName = "/.s.PGSQL.65535"
	dir = filepath.Join(runDir, "sock")
	if len(dir)+len(socketName) <= maxSocketPath {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", nil, err
		}
	} else {
		parent := os.TempDir()
		if len(parent)+len("/"+prefix+"1234567890")+len(socketName) > maxSocketPath {
			parent = "/tmp"
		}
		if dir, err = os.MkdirTemp(parent, prefix); err != nil {
			return "", nil, err
		}
		extra = []string{dir}
	}
	return dir, extra, as.Chown(dir)
}

// startPostgres starts postgres on pgdata. opts are -c NAME=VALUE settings;
// they win over every configuration file.
func startPostgres(bin, pgdata, logPath string, as *Account, env, opts []string) (*Server, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if err := as.Chown(logPath); err != nil {
		return nil, err
	}
	args := []string{"-D", pgdata}
	for _, o := range opts {
		args = append(args, "-c", o)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = pgdata
	cmd.Env = append(ServerEnv(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a terminal's ^C reaches walvault, which
	// stops the server in order, and the whole group can be killed.
	// If walvault dies without cleaning up (SIGKILL, the OOM killer), the
	// kernel tells the server to shut down at once (SIGQUIT).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: as.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{}), LogPath: logPath}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// PID is the postmaster's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Done is closed when the postmaster has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// WaitErr is the postmaster's exit status, once Done is closed.
func (s *Server) WaitErr() error { return s.waitErr }

// Exited reports whether the postmaster has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Stop shuts the server down: fast shutdown (which ends with a checkpoint,
// so the data directory is clean), then immediate, then SIGKILL of its
// whole process group, each bounded. It returns when the postmaster has
// exited, with an error unless the fast shutdown completed normally; and
// removes the socket directory it made outside RunDir.
func (s *Server) Stop(fast time.Duration) error {
	defer func() {
		for _, d := range s.extraDirs {
			_ = os.RemoveAll(d)
		}
	}()
	pid := s.cmd.Process.Pid
	var err error
	if s.Exited() {
		err = fmt.Errorf("the server had already stopped (%v)", s.waitErr)
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, fast}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 10 * time.Second}} {
		if s.Exited() {
			break
		}
		if step.sig != syscall.SIGINT && err == nil {
			err = fmt.Errorf("the server did not finish its fast shutdown within %s; it was stopped with %s", fast, step.sig)
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
	if err == nil && s.waitErr != nil {
		err = fmt.Errorf("the server's shutdown failed: %v", s.waitErr)
	}
	// Backends notice the postmaster's death and exit; anything left of
	// the group goes now.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return err
}

// LogTail returns the last n lines of the server log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogPath)
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

// LogProblems returns the lines of the server log that say what went
// wrong (errors, fatal errors, wal-fetch's messages, the shell's when
// restore_command cannot run at all), at most n, newest
// last; and the WAL file restore_command failed on, if the log names one.
func (s *Server) LogProblems(n int) (lines []string, failedFile string) {
	f, err := os.Open(s.LogPath)
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
