package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walvault/walvault/restore/drill"
)

func TestDrillExitCodes(t *testing.T) {
	if got := exitCode(fmt.Errorf("drill: %w: 1 of 7 checks failed: sql:x", drill.ErrFailed)); got != exitDrill || exitDrill != 12 {
		t.Errorf("a failed check: exit %d, want 12", got)
	}
	if got := exitCode(fmt.Errorf("drill: %w: not found", drill.ErrNoServer)); got != exitConfig {
		t.Errorf("no server programs: exit %d, want %d", got, exitConfig)
	}
}

func TestDrillUsage(t *testing.T) {
	t.Setenv("WALVAULT_REPO", "")
	os.Unsetenv("WALVAULT_REPO")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.sql")
	if err := os.WriteFile(bad, []byte("SELECT 1;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		code    int
		mention string
	}{
		{[]string{"drill", "--target-time", "yesterday"}, exitUsage, "--target-time"},
		{[]string{"drill", "--target-time", "2026-11-22T10:00:00Z", "--random-point"}, exitUsage, "not both"},
		{[]string{"drill", "--backup", "last-tuesday"}, exitUsage, "--backup"},
		{[]string{"drill", "--timeout", "0s"}, exitUsage, "--timeout"},
		{[]string{"drill", "--pg-option", "shared_buffers"}, exitUsage, "NAME=VALUE"},
		{[]string{"drill", "--checks", bad}, exitUsage, "line 1"},
		{[]string{"drill", "--checks", filepath.Join(dir, "missing.sql")}, exitConfig, "missing.sql"},
		{[]string{"drill", "--junit", filepath.Join(dir, "no", "such", "dir.xml")}, exitConfig, "--junit"},
		{[]string{"drill"}, exitConfig, "no repository"},
	} {
		_, stderr, code := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.mention) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want it to mention %q)", tc.args, code, tc.code, stderr, tc.mention)
		}
	}
}
