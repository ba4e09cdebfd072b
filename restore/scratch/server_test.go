package scratch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindBinDir(t *testing.T) {
	empty := t.TempDir()
	_, _, err := FindBinDir(empty, 15)
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), empty) {
		t.Errorf("--pg-bindir without postgres: %v", err)
	}
	// No PostgreSQL 99 anywhere: the error says what to install.
	t.Setenv("PATH", empty)
	_, _, err = FindBinDir("", 99)
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "apt-get install postgresql-99") || !strings.Contains(err.Error(), "/usr/lib/postgresql/99/bin") {
		t.Errorf("no server: %v", err)
	}

	real := "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(real, "postgres")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs PostgreSQL 15 in %s", real)
		}
		t.Skip("PostgreSQL 15 not installed")
	}
	dir, version, err := FindBinDir("", 15)
	if err != nil || dir != real || !strings.HasPrefix(version, "15.") {
		t.Errorf("FindBinDir(15) = %q, %q, %v", dir, version, err)
	}
	// The server found must be of the repository's version.
	_, _, err = FindBinDir(real, 13)
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "repository is of PostgreSQL 13") || !strings.Contains(err.Error(), "postgresql-13") {
		t.Errorf("15's server for a 13 repository: %v", err)
	}
}

func TestLogProblems(t *testing.T) {
	log := `2026-11-24 02:15:08.000 UTC [1] LOG:  starting point-in-time recovery to 2026-11-24 02:15:51.920579+00
walvault wal-fetch: 00000002.history (wal/00000002/00000002.history): not in the repository
2026-11-24 02:15:08.069 UTC [21896] FATAL:  the database system is starting up
2026-11-24 02:15:08.309 UTC [21917] FATAL:  the database system is not yet accepting connections
walvault wal-fetch: object wal/00000001/000000010000000000000004: object failed integrity check
2026-11-24 02:15:08.633 UTC [21817] FATAL:  could not restore file "000000010000000000000004" from archive: child process exited with exit code 255
2026-11-24 02:15:08.700 UTC [21810] LOG:  startup process (PID 21817) exited with exit code 1
sh: 1: /root/go/bin/walvault: Permission denied
`
	p := filepath.Join(t.TempDir(), "postgres.log")
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{LogPath: p}
	lines, file := s.LogProblems(5)
	if file != "000000010000000000000004" {
		t.Errorf("failed file %q", file)
	}
	want := []string{
		"walvault wal-fetch: object wal/00000001/000000010000000000000004: object failed integrity check",
		`2026-11-24 02:15:08.633 UTC [21817] FATAL:  could not restore file "000000010000000000000004" from archive: child process exited with exit code 255`,
		"sh: 1: /root/go/bin/walvault: Permission denied",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if lines, _ := s.LogProblems(1); len(lines) != 1 || lines[0] != want[2] {
		t.Errorf("at most 1, newest: %q", lines)
	}
}
