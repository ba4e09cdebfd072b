package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/restore/dbcopy"
	"github.com/walvault/walvault/restore/pitr"
)

func TestRestoreStepsUsage(t *testing.T) {
	t.Setenv("WALVAULT_REPO", "")
	os.Unsetenv("WALVAULT_REPO")
	dir := t.TempDir()
	for _, tc := range []struct {
		args    []string
		code    int
		mention string
	}{
		// --db alone (as from a config file shared with filestore push)
		// asks for nothing.
		{[]string{"restore", "--pgdata", dir, "--db", "prod"}, exitConfig, "no repository"},
		{[]string{"restore", "--pgdata", dir, "--as", "staging"}, exitUsage, "--as needs --db NAME"},
		{[]string{"restore", "--pgdata", dir, "--neutralize"}, exitUsage, "--neutralize needs --db NAME"},
		{[]string{"restore", "--pgdata", dir, "--db", "prod", "--as", "x", "--target-action", "pause"}, exitUsage, "--target-action pause cannot be combined with --as"},
		{[]string{"restore", "--pgdata", dir, "--db", "prod", "--neutralize", "--target-action", "shutdown"}, exitUsage, "--target-action shutdown cannot be combined with --neutralize"},
		{[]string{"restore", "--pgdata", dir, "--db", "bad name", "--odoo-filestore", dir}, exitUsage, "Odoo names"},
		{[]string{"restore", "--pgdata", dir, "--db", "prod", "--anonymize-rules", "r.yaml"}, exitUsage, "goes with --anonymize"},
		{[]string{"restore", "--pgdata", dir, "--db", "prod", "--base-url", "https://staging.example.com"}, exitUsage, "--base-url goes with --neutralize"},
		{[]string{"restore", "--pgdata", dir, "--db", "prod", "--neutralize", "--base-url", "staging.example.com"}, exitUsage, "--base-url"},
		{[]string{"restore", "--database", "prod", "--into", "host=/tmp", "--neutralize", "--base-url", "ftp://staging"}, exitUsage, "--base-url"},
		{[]string{"restore", "--pgdata", dir, "--into", "host=/tmp"}, exitUsage, "go with --database"},
		{[]string{"restore", "--database", "prod"}, exitUsage, "--database needs --into"},
		{[]string{"restore", "--database", "prod", "--into", "host=/tmp", "--pgdata", dir}, exitUsage, "not --pgdata"},
		{[]string{"restore", "--database", "prod", "--into", "host=/tmp", "--target-action", "pause"}, exitUsage, "cannot be combined with --database"},
		{[]string{"restore", "--database", "prod", "--into", "host=/tmp", "--as", strings.Repeat("x", 64)}, exitUsage, "at most 63 bytes"},
		{[]string{"restore", "--database", "prod", "--into", "host=/tmp"}, exitConfig, "no repository"},
	} {
		_, stderr, code := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.mention) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want it to mention %q)", tc.args, code, tc.code, stderr, tc.mention)
		}
	}
}

func TestRestoreDatabaseExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{dbcopy.ErrExists, exitConflict},
		{dbcopy.ErrNoClient, exitConfig},
		{dbcopy.ErrConnect, exitPostgres},
		{dbcopy.ErrPasswordInArgs, exitUsage},
	} {
		if got := exitCode(fmt.Errorf("restore --database prod: %w", tc.err)); got != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.code)
		}
	}
}

// TestPostRecoveryMark: only a copy is marked as a restored copy (the
// mark lets odoo neutralize and anonymize run on it without --force); a
// database recovered to serve again under its own name is not, also when
// --as repeats that name.
func TestPostRecoveryMark(t *testing.T) {
	for _, tc := range []struct {
		args []string
		mark bool
	}{
		{[]string{"--db", "prod", "--odoo-filestore", "/var/lib/odoo"}, false},
		{[]string{"--db", "prod", "--as", "prod", "--odoo-filestore", "/var/lib/odoo"}, false},
		{[]string{"--db", "prod", "--as", "staging"}, true},
		{[]string{"--db", "prod", "--neutralize"}, true},
		{[]string{"--db", "prod", "--as", "prod", "--anonymize"}, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		for _, f := range restoreCommand().Flags {
			if err := f.Apply(fs); err != nil {
				t.Fatal(err)
			}
		}
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var target pitr.Target
		post, err := postRecoveryFlags(cli.NewContext(cli.NewApp(), fs, nil), &target)
		if err != nil || post == nil {
			t.Fatalf("%v: %v %v", tc.args, post, err)
		}
		if got := post.plan.Mark != nil; got != tc.mark {
			t.Errorf("%v: mark %v, want %v", tc.args, got, tc.mark)
		}
	}
}
