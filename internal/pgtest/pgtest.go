// Package pgtest runs throwaway PostgreSQL clusters for tests: initdb into a
// temporary directory, start on a free port of 127.0.0.1 (and a socket in
// the directory), stop and delete on cleanup.
//
// PostgreSQL refuses to run as root, so when the test runs as root every
// server program runs as the "postgres" user, which owns the directory.
// Tests are skipped when no PostgreSQL installation is found; set
// WALVAULT_PG_BINDIR to choose one (default: the newest
// /usr/lib/postgresql/*/bin, else the directory of initdb on PATH).
//
// It is a test helper: it calls t.Fatal on failure and is imported only by
// _test.go files.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Options configure Start.
type Options struct {
	// ArchiveCommand enables archive_mode with this command; "" leaves
	// archiving off unless Archive is set.
	ArchiveCommand string
	// Archive enables archive_mode with an archive_command that copies each
	// file atomically (copy, then rename) into Server.ArchiveDir.
	Archive bool
	// Settings are extra postgresql.conf lines ("log_timezone = 'UTC'").
	Settings []string
	// HBA lines are put before the default pg_hba.conf rules.
	HBA []string
	// BinDir holds the server programs (initdb, pg_ctl, postgres) to run,
	// e.g. MajorBinDir(13); "" means BinDir(). Client programs it lacks
	// (psql) come from BinDir().
	BinDir string
}

// Server is a running throwaway cluster.
type Server struct {
	BinDir  string
	Dir     string // owned by the server's user; holds data/, sock/, log
	DataDir string
	Socket  string
	// ArchiveDir receives archived WAL when Options.Archive is set.
	ArchiveDir string
	Port       int
	// ConnString reaches the server as superuser postgres over TCP.
	ConnString string

	cred *syscall.Credential
}

// BinDir finds the PostgreSQL programs, or returns "".
func BinDir() string {
	if d := os.Getenv("WALVAULT_PG_BINDIR"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(p)
		}
	}
	return ""
}

// MajorBinDir returns the directory of the server programs of a
// PostgreSQL major version: the Debian package's
// /usr/lib/postgresql/<major>/bin, else what scripts/fetch-postgres.sh
// unpacked into $WALVAULT_PG_CACHE/<major>/bin (default
// /var/cache/walvault/pg). It returns "" when neither holds initdb.
func MajorBinDir(major int) string {
	cache := os.Getenv("WALVAULT_PG_CACHE")
	if cache == "" {
		cache = "/var/cache/walvault/pg"
	}
	for _, d := range []string{
		filepath.Join("/usr/lib/postgresql", strconv.Itoa(major), "bin"),
		filepath.Join(cache, strconv.Itoa(major), "bin"),
	} {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// Start creates and starts a cluster, stopped and removed at cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := opts.BinDir
	if bin == "" {
		bin = BinDir()
	}
	if bin == "" {
		t.Skip("PostgreSQL not installed (set WALVAULT_PG_BINDIR)")
	}
	s := &Server{BinDir: bin}
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and there is no postgres user: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "walvault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.Dir = dir
	s.DataDir = filepath.Join(dir, "data")
	s.Socket = filepath.Join(dir, "sock")
	if err := os.Mkdir(s.Socket, 0o700); err != nil {
		t.Fatal(err)
	}
	s.Chown(t, dir)
	s.Chown(t, s.Socket)
	if opts.Archive {
		s.ArchiveDir = filepath.Join(dir, "archive")
		s.Mkdir(t, s.ArchiveDir)
		if opts.ArchiveCommand == "" {
			opts.ArchiveCommand = fmt.Sprintf(`cp %%p "%[1]s/%%f.tmp" && mv "%[1]s/%%f.tmp" "%[1]s/%%f"`, s.ArchiveDir)
		}
	}

	s.Port = freePort(t)
	s.ConnString = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", s.Port)

	s.Run(t, "initdb", "-D", s.DataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C")
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", s.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", s.Socket),
		"wal_level = replica",
		"max_wal_senders = 10",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = on",
	}
	if opts.ArchiveCommand != "" {
		conf = append(conf, "archive_mode = on", "archive_command = '"+strings.ReplaceAll(opts.ArchiveCommand, "'", "''")+"'")
	}
	conf = append(conf, opts.Settings...)
	appendFile(t, filepath.Join(s.DataDir, "postgresql.conf"), strings.Join(conf, "\n")+"\n")
	if len(opts.HBA) > 0 {
		hbaPath := filepath.Join(s.DataDir, "pg_hba.conf")
		old, err := os.ReadFile(hbaPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hbaPath, []byte(strings.Join(opts.HBA, "\n")+"\n"+string(old)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.Run(t, "pg_ctl", "-D", s.DataDir, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start")
	t.Cleanup(func() {
		cmd := s.Command("pg_ctl", "-D", s.DataDir, "-m", "immediate", "-w", "stop")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return s
}

// Command prepares a PostgreSQL program (looked up in BinDir, else in the
// default BinDir()) to run as the server's user, with PGHOST/PGPORT/PGUSER
// set for this server.
func (s *Server) Command(name string, args ...string) *exec.Cmd {
	prog := filepath.Join(s.BinDir, name)
	if _, err := os.Stat(prog); err != nil {
		if def := BinDir(); def != "" {
			prog = filepath.Join(def, name)
		}
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "PGHOST="+s.Socket, "PGPORT="+strconv.Itoa(s.Port), "PGUSER=postgres", "PGDATABASE=postgres")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Dir = s.Dir // the postgres user may not enter the test's working directory
		cmd.Env = append(cmd.Env, "HOME="+s.Dir)
	}
	return cmd
}

// Run runs a PostgreSQL program and returns its standard output, failing
// the test if it fails.
func (s *Server) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := s.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// SQL runs statements with psql in database postgres and returns the
// unaligned, tuples-only output, trimmed.
func (s *Server) SQL(t testing.TB, sql string) string {
	t.Helper()
	return strings.TrimSpace(s.Run(t, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql))
}

// Chown gives path to the server's user (no-op unless running as root).
func (s *Server) Chown(t testing.TB, path string) {
	t.Helper()
	if s.cred == nil {
		return
	}
	if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		t.Fatal(err)
	}
}

// Mkdir creates a directory owned by the server's user.
func (s *Server) Mkdir(t testing.TB, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	s.Chown(t, path)
}

// Log returns the server log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
	return string(b)
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
