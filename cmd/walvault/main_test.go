package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/archive/basebackup"
	"github.com/walvault/walvault/archive/stream"
	"github.com/walvault/walvault/archive/walpush"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/storage"
)

func TestParseConfig(t *testing.T) {
	in := "# comment\n\nrepo = file:///var/lib/walvault\n  s3-region='eu-west-3'\nage-identity-file = \"/etc/walvault/key.txt\"\nlabel = a=b\n"
	got, err := parseConfig("test.conf", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []configValue{{"repo", "file:///var/lib/walvault", 3}, {"s3-region", "eu-west-3", 4}, {"age-identity-file", "/etc/walvault/key.txt", 5}, {"label", "a=b", 6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{"novalue\n", " = x\n", "two words = x\n"} {
		if _, err := parseConfig("bad.conf", strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "bad.conf line 1") {
			t.Errorf("%q: err = %v, want one naming the file and line", bad, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("repo = file:///x\n# c\nx='y'\n")
	f.Fuzz(func(t *testing.T, s string) {
		vals, err := parseConfig("f", strings.NewReader(s))
		if err != nil {
			return
		}
		for _, v := range vals {
			if v.key == "" || strings.ContainsAny(v.key, " \t") {
				t.Fatalf("bad key %q accepted", v.key)
			}
		}
	})
}

func TestExitCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, exitOK},
		{errors.New("boom"), exitFailure},
		{usagef("bad"), exitUsage},
		{configf("missing"), exitConfig},
		{wrap(repo.ErrNoIdentity), exitConfig},
		{wrap(repo.ErrNotInitialized), exitRepository},
		{wrap(repo.ErrClusterMismatch), exitRepository},
		{wrap(repo.ErrUnsupportedFormat), exitRepository},
		{wrap(pitr.ErrNoBackup), exitRepository},
		{wrap(stream.ErrSlotMissing), exitConfig},
		{wrap(walpush.ErrConflict), exitConflict},
		{wrap(pitr.ErrDirNotEmpty), exitConflict},
		{wrap(pitr.ErrDeltaUnsupported), exitConflict},
		{wrap(fmt.Errorf("%w: %w", pitr.ErrDeltaUnsupported, repo.ErrNoIdentity)), exitConfig},
		{wrap(repo.ErrIntegrity), exitIntegrity},
		{wrap(repo.ErrWrongKey), exitIntegrity},
		{wrap(storage.Transient(errors.New("503"))), exitStorage},
		{wrap(basebackup.ErrWALTimeout), exitTimeout},
		{wrap(pitr.ErrTargetOutsideWindow), exitTarget},
	} {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k)
		}
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"walvault"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestSecretFlagsRefused(t *testing.T) {
	_, stderr, code := runCLI(t, nil, "info", "--s3-secret-key=hunter2")
	if code != exitUsage || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "WALVAULT_S3_SECRET_KEY") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
}

// pgURLEnv leaves the connection to each test's arguments.
var pgURLEnv = map[string]string{"WALVAULT_PG_URL": "", "WALVAULT_CONFIG": "", "WALVAULT_ODOO_DB": "", "WALVAULT_ODOO_CONFIG": "", "PGPASSWORD": ""}

// TestPgURLPasswordRefused: a password in --pg-url on the command line
// would show in process listings: refused before any work, exit 2 like
// restore --into, and the message says where the password goes instead.
func TestPgURLPasswordRefused(t *testing.T) {
	sock := t.TempDir() // no server: a run that got past the check would fail to connect (exit 9)
	url := "postgres://odoo:hunter2@/prod?host=" + sock
	kv := "host=" + sock + " user=odoo password=hunter2 dbname=prod"
	for _, args := range [][]string{
		{"odoo", "neutralize", "--db", "prod", "--pg-url", url},
		{"odoo", "neutralize", "--db", "prod", "--pg-url=" + url},
		{"odoo", "neutralize", "--db", "prod", "-pg-url", url},
		{"odoo", "anonymize", "--db", "prod", "-pg-url=" + kv},
		{"odoo", "neutralize", "--db", "prod", "--pg-url", "postgres://odoo@/prod?host=" + sock + "&password=hunter2"},
		{"filestore", "restore", "--db", "prod", "--pg-url", kv},
		{"backup", "--pg-url", url},
		{"init", "--pg-url", kv},
	} {
		_, stderr, code := runCLI(t, pgURLEnv, args...)
		if code != exitUsage || strings.Contains(stderr, "hunter2") {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr)
			continue
		}
		for _, want := range []string{"--pg-url", "process listings", "WALVAULT_PG_URL", "pg-url in the config file", "PGPASSWORD", "~/.pgpass"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%v: stderr %q does not say %q", args, stderr, want)
			}
		}
	}
}

// TestPgURLPasswordOutsideArgv: the same connection string from the
// environment or the config file is not in argv and is used; so is a
// --pg-url without a password. Each run gets past the check to the
// connection, which fails: there is no server (exit 9, not 2).
func TestPgURLPasswordOutsideArgv(t *testing.T) {
	sock := t.TempDir()
	url := "postgres://odoo:hunter2@/prod?host=" + sock
	conf := filepath.Join(t.TempDir(), "walvault.conf")
	if err := os.WriteFile(conf, []byte("pg-url = "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withEnv := func(k, v string) map[string]string {
		m := map[string]string{}
		for ek, ev := range pgURLEnv {
			m[ek] = ev
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"environment, URL", withEnv("WALVAULT_PG_URL", url), []string{"odoo", "neutralize", "--db", "prod"}},
		{"environment, key=value", withEnv("WALVAULT_PG_URL", "host="+sock+" user=odoo password=hunter2"), []string{"odoo", "neutralize", "--db", "prod"}},
		{"config file", pgURLEnv, []string{"odoo", "neutralize", "--db", "prod", "--config", conf}},
		{"config file from the environment", withEnv("WALVAULT_CONFIG", conf), []string{"odoo", "neutralize", "--db", "prod"}},
		{"URL without a password", pgURLEnv, []string{"odoo", "neutralize", "--db", "prod", "--pg-url", "postgres://odoo@/prod?host=" + sock + "&passfile=/nonexistent"}},
		{"key=value without a password", withEnv("PGPASSWORD", "hunter2"), []string{"odoo", "neutralize", "--db", "prod", "--pg-url=host=" + sock + " user=odoo"}},
	} {
		_, stderr, code := runCLI(t, tc.env, tc.args...)
		if code != exitPostgres || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, sock) {
			t.Errorf("%s: exit %d, want %d, a connection attempt to %s (stderr %q)", tc.name, code, exitPostgres, sock, stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("WALVAULT_REPO", "")
	os.Unsetenv("WALVAULT_REPO")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"no-such-command"}, exitUsage},
		{[]string{"wal-push"}, exitUsage},
		{[]string{"info", "--no-such-flag"}, exitUsage},
		{[]string{"info"}, exitConfig},
		{[]string{"wal-fetch", "000000010000000000000001"}, exitFetchAbort},
		{[]string{"wal-fetch", "--no-such-flag", "000000010000000000000001", "/tmp/x"}, exitFetchAbort},
		{[]string{"wal-fetch", "--config", "/nonexistent/walvault.conf", "000000010000000000000001", "/tmp/x"}, exitFetchAbort},
		{[]string{"wal-fetch", "000000010000000000000001", "/tmp/x"}, exitFetchAbort}, // no repository configured
		{[]string{"restore", "--pgdata", "/tmp/x", "--target-lsn", "zz"}, exitUsage},
		{[]string{"restore", "--pgdata", "/tmp/x", "--target-lsn", "0/1", "--target-xid", "5"}, exitUsage},
		{[]string{"restore", "--pgdata", "/tmp/x", "--target-action", "explode"}, exitUsage},
		{[]string{"restore", "--pgdata", "/tmp/x", "--backup", "last-tuesday"}, exitUsage},
		{[]string{"backup", "--progress-interval", "0s"}, exitUsage},
		{[]string{"drill", "--progress-interval", "-1s"}, exitUsage},
	} {
		_, stderr, code := runCLI(t, nil, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
		}
	}
}

func TestConfigFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "walvault.conf")
	if err := os.WriteFile(conf, []byte("repo = file://"+dir+"/from-file\nbogus-setting = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, nil, "info", "--config", conf)
	if code != exitConfig || !strings.Contains(stderr, "bogus-setting") {
		t.Fatalf("unknown key: code %d stderr %q", code, stderr)
	}
	if err := os.WriteFile(conf, []byte("repo = file://"+dir+"/from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file is used when nothing else sets repo…
	_, stderr, code = runCLI(t, map[string]string{"WALVAULT_REPO": ""}, "info", "--config", conf)
	if code != exitRepository || !strings.Contains(stderr, "from-file") {
		t.Fatalf("file: code %d stderr %q", code, stderr)
	}
	// …and the environment wins over it.
	_, stderr, code = runCLI(t, map[string]string{"WALVAULT_REPO": "file://" + dir + "/from-env"}, "info", "--config", conf)
	if code != exitRepository || !strings.Contains(stderr, "from-env") {
		t.Fatalf("env: code %d stderr %q", code, stderr)
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote("/a b/it's"); got != `'/a b/it'\''s'` {
		t.Fatal(got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4GiB": 4 << 30, "512MiB": 512 << 20, "1G": 1 << 30, "1073741824": 1 << 30, " 2 KiB ": 2048, "1GB": 1e9} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1", "1.5G", "ten"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// TestEncryptionDowngradeRefused: a repository whose walvault.json says
// "none" is refused by a host configured with age keys, for writing and
// for reading; without keys configured it is used as before.
func TestEncryptionDowngradeRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"format": 1, "system_identifier": "7000000000000000001", "pg_major": 15, "wal_segment_size": 16777216, "encryption": "none", "created_at": "2026-11-23T22:57:00Z"}`
	if err := os.WriteFile(filepath.Join(dir, "walvault.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	id := repotest.NewIdentity(t)
	keyFile := repotest.IdentityFile(t, id)
	env := map[string]string{"WALVAULT_AGE_IDENTITY_FILE": "", "WALVAULT_AGE_RECIPIENTS": "", "WALVAULT_AGE_RECIPIENTS_FILE": "", "WALVAULT_REPO": "", "WALVAULT_CONFIG": ""}
	repoArg := "--repo=file://" + dir
	for _, args := range [][]string{
		{"info", repoArg, "--age-identity-file", keyFile},
		{"info", repoArg, "--age-recipients", id.Recipient().String()},
		{"verify", repoArg, "--age-identity-file", keyFile},
	} {
		_, stderr, code := runCLI(t, env, args...)
		if code != exitConfig || !strings.Contains(stderr, "not encrypted") {
			t.Errorf("%v: exit %d, want %d refusing the unencrypted repository (%s)", args, code, exitConfig, stderr)
		}
	}
	if _, stderr, code := runCLI(t, env, "info", repoArg); code != exitOK {
		t.Errorf("info of an unencrypted repository without keys configured: exit %d (%s)", code, stderr)
	}
}

// TestDaysFlags: --block-refresh-days and --retain-days take days, with
// fractions, from 0 to 36500; anything else is refused before any work
// (no repository is configured here: a run past the check would exit 3).
func TestDaysFlags(t *testing.T) {
	for _, tc := range []struct {
		days float64
		want time.Duration
	}{{30, 720 * time.Hour}, {0.00001, 864 * time.Millisecond}, {0, 0}} {
		if got, err := daysFlag("block-refresh-days", tc.days); err != nil || got != tc.want {
			t.Errorf("daysFlag(%g) = %v, %v; want %v", tc.days, got, err, tc.want)
		}
	}
	env := map[string]string{"WALVAULT_REPO": "", "WALVAULT_CONFIG": ""}
	for _, args := range [][]string{
		{"backup", "--block-refresh-days", "-1"},
		{"backup", "--block-refresh-days", "NaN"},
		{"backup", "--block-refresh-days", "40000"},
		{"expire", "--retain-days", "NaN"},
	} {
		_, stderr, code := runCLI(t, env, args...)
		if code != exitUsage || !strings.Contains(stderr, args[1]) || !strings.Contains(stderr, "from 0 to 36500") {
			t.Errorf("walvault %s: exit %d, %q; want exit %d naming the flag and the range", strings.Join(args, " "), code, stderr, exitUsage)
		}
	}
}
