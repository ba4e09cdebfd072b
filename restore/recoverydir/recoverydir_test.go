package recoverydir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteAndClean(t *testing.T) {
	base := t.TempDir()
	pgdata := filepath.Join(base, "15", "main")
	if err := os.MkdirAll(filepath.Join(pgdata, "pg_wal", PrefetchDir), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pgdata, "pg_wal", PrefetchDir, "000000010000000000000003"), []byte("wal"), 0o600)
	// What an older walvault left in the data directory.
	os.WriteFile(filepath.Join(pgdata, ConfName), []byte("old"), 0o600)
	os.WriteFile(filepath.Join(pgdata, KeyName), []byte("AGE-SECRET-KEY-1OLD"), 0o600)

	dir := DefaultDir(pgdata + "/")
	if dir != filepath.Join(base, "15", "main.walvault-recovery") {
		t.Fatalf("DefaultDir = %s", dir)
	}
	key := []byte("AGE-SECRET-KEY-1XYZ\n")
	rec, err := Write(Options{
		Dir: dir, PGData: pgdata, Exe: "/usr/bin/walvault",
		Settings:    Settings{Repo: "s3://b/p", S3Endpoint: "http://127.0.0.1:9000", S3PathStyle: true, Include: "/etc/walvault/walvault.conf", LogFormat: "json"},
		IdentityKey: key,
		Now:         func() time.Time { return time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(rec.ConfPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "# written by walvault restore at 2026-12-07T01:00:00Z for restore_command;\n# removed when recovery ends (walvault recovery-cleanup)\n" +
		"repo = 's3://b/p'\ns3-endpoint = 'http://127.0.0.1:9000'\ns3-path-style = 'true'\n" +
		"age-identity-file = '" + filepath.Join(dir, KeyName) + "'\nlog-format = 'json'\ninclude = '/etc/walvault/walvault.conf'\n"
	if string(conf) != want {
		t.Errorf("settings:\n%s\nwant\n%s", conf, want)
	}
	if got, _ := os.ReadFile(rec.KeyPath); string(got) != string(key) {
		t.Errorf("key copy = %q", got)
	}
	for p, want := range map[string]fs.FileMode{dir: fs.ModeDir | 0o700, rec.ConfPath: 0o600, rec.KeyPath: 0o600, filepath.Join(dir, MarkerName): 0o600} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if !strings.Contains(rec.RestoreCommand, "wal-fetch --config '"+filepath.Join(dir, ConfName)+"' %f %p") ||
		!strings.Contains(rec.EndCommand, "recovery-cleanup --at-recovery-end --recovery-dir '"+dir+"' --pgdata '"+pgdata+"'") {
		t.Errorf("commands: %s | %s", rec.RestoreCommand, rec.EndCommand)
	}

	// Written again (a restore run twice): the old files are replaced.
	if _, err := Write(Options{Dir: dir, PGData: pgdata, Exe: "/usr/bin/walvault", Settings: Settings{Repo: "file:///r", IdentityFile: "/home/a/key.txt"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, KeyName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old key copy survived a rewrite without one: %v", err)
	}
	conf, _ = os.ReadFile(filepath.Join(dir, ConfName))
	if !strings.Contains(string(conf), "age-identity-file = '/home/a/key.txt'\n") {
		t.Errorf("settings: %s", conf)
	}

	removed, err := Clean(dir, pgdata)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(pgdata, "pg_wal", PrefetchDir), filepath.Join(pgdata, ConfName), filepath.Join(pgdata, KeyName)} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived Clean: %v", p, err)
		}
	}
	if len(removed) < 4 {
		t.Errorf("removed = %v", removed)
	}
	if _, err := os.Stat(filepath.Join(pgdata, "pg_wal")); err != nil {
		t.Errorf("pg_wal: %v", err)
	}
	// Twice is harmless.
	if _, err := Clean(dir, pgdata); err != nil {
		t.Errorf("second Clean: %v", err)
	}
}

func TestWriteRefusals(t *testing.T) {
	base := t.TempDir()
	pgdata := filepath.Join(base, "data")
	os.MkdirAll(pgdata, 0o700)
	for name, dir := range map[string]string{
		"inside PGDATA":   filepath.Join(pgdata, "rec"),
		"PGDATA itself":   pgdata,
		"parent of it":    base,
		"relative":        "rec",
		"symbolic link":   filepath.Join(base, "link"),
		"foreign content": filepath.Join(base, "foreign"),
	} {
		t.Run(name, func(t *testing.T) {
			switch name {
			case "symbolic link":
				os.Symlink(t.TempDir(), dir)
			case "foreign content":
				os.MkdirAll(dir, 0o700)
				os.WriteFile(filepath.Join(dir, "mine"), []byte("x"), 0o600)
			}
			if _, err := Write(Options{Dir: dir, PGData: pgdata, Exe: "/w", Settings: Settings{Repo: "file:///r"}}); err == nil {
				t.Fatal("no error")
			}
			if name == "foreign content" {
				if b, err := os.ReadFile(filepath.Join(dir, "mine")); err != nil || string(b) != "x" {
					t.Errorf("foreign file changed: %q %v", b, err)
				}
			}
		})
	}
	t.Run("a value with a newline", func(t *testing.T) {
		dir := filepath.Join(base, "nl")
		if _, err := Write(Options{Dir: dir, PGData: pgdata, Exe: "/w", Settings: Settings{Repo: "file:///r\nage-identity-file = /x"}}); err == nil {
			t.Fatal("no error")
		}
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("directory made before the refusal: %v", err)
		}
	})
}

func TestCleanRefusesForeignDirectories(t *testing.T) {
	base := t.TempDir()
	etc := filepath.Join(base, "etc")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, ConfName), []byte("x"), 0o600)
	if _, err := Clean(etc, ""); err == nil {
		t.Error("no error for a directory without the marker")
	}
	if _, err := os.Stat(filepath.Join(etc, ConfName)); err != nil {
		t.Errorf("file removed: %v", err)
	}
	// Marked, but holding something else too.
	os.WriteFile(filepath.Join(etc, MarkerName), nil, 0o600)
	os.WriteFile(filepath.Join(etc, "passwd"), []byte("root"), 0o600)
	if _, err := Clean(etc, ""); err == nil {
		t.Error("no error for a directory with foreign files")
	}
	if _, err := os.Stat(filepath.Join(etc, "passwd")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}

func TestArg(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/pg":     "'/var/lib/pg'",
		"/srv/100%/data":  "'/srv/100%%/data'",
		"/srv/%p%f":       "'/srv/%%p%%f'",
		"/it's":           `'/it'\''s'`,
		"/a b/$(rm -rf)/": "'/a b/$(rm -rf)/'",
	} {
		if got := Arg(in); got != want {
			t.Errorf("Arg(%q) = %s, want %s", in, got, want)
		}
	}
}
