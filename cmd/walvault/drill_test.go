package main

import (
	"encoding/xml"
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

// A drill that cannot start still writes its JUnit report, so that a CI
// job shows why.
func TestDrillSetupFailureReport(t *testing.T) {
	t.Setenv("WALVAULT_REPO", "")
	os.Unsetenv("WALVAULT_REPO")
	junit := filepath.Join(t.TempDir(), "drill.xml")
	stdout, _, code := runCLI(t, nil, "drill", "--junit", junit)
	if code != exitConfig {
		t.Errorf("exit %d, want %d", code, exitConfig)
	}
	if !strings.Contains(stdout, "FAIL  drill: no repository") {
		t.Errorf("summary: %q", stdout)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit: %v\n%s", err, b)
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Failures != 1 || len(doc.Suites[0].Cases) != 1 ||
		doc.Suites[0].Cases[0].Failure == nil || !strings.Contains(doc.Suites[0].Cases[0].Failure.Message, "no repository") {
		t.Errorf("junit report: %s", b)
	}
	// No stray temporary file beside it.
	entries, _ := os.ReadDir(filepath.Dir(junit))
	if len(entries) != 1 {
		t.Errorf("directory of the report holds %d entries, want only drill.xml", len(entries))
	}
}
