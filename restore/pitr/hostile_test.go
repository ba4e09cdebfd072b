package pitr

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// Issue 14: whoever can write the repository can write a manifest (with the
// public recipient) naming any tablespace location. These tests forge such
// backups and check that restore refuses before it changes anything.

// forgedBackup stores a backup whose tablespace 16400 lives at tsPath and
// whose base.tar holds tablespaceMap (if not empty) as tablespace_map.
func forgedBackup(t *testing.T, tsPath, tablespaceMap string) *testRepo {
	t.Helper()
	tr := newTestRepo(t)
	stop := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	m := &repo.BackupManifest{ID: repo.NewBackupID(stop), Timeline: 1, StartTime: stop, StopTime: stop,
		StartLSN: pgwal.LSN(segSize + 0x28), StopLSN: pgwal.LSN(segSize + 0x100)}
	base := []entry{{name: "backup_label", body: "x"}}
	if tablespaceMap != "" {
		base = append(base, entry{name: "tablespace_map", body: tablespaceMap})
	}
	archives := []repotest.Archive{{Name: "base.tar", Data: buildTar(t, base)}}
	if tsPath != "" {
		archives = append(archives, repotest.Archive{Name: "16400.tar", TablespaceOID: 16400, TablespacePath: tsPath,
			Data: buildTar(t, []entry{{name: "PG_15_1/", mode: 0o700}, {name: "PG_15_1/evil.conf", body: "[Service]\nExecStart=/bin/sh -c pwned\n"}})})
	}
	tr.PutBackup(t, m, 4096, archives...)
	tr.putWAL(t, 1, 1)
	return tr
}

func hostileOptions(t *testing.T) Options {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return Options{PGData: filepath.Join(t.TempDir(), "data"), RestoreCommand: "walvault wal-fetch %f %p",
		Owner: u.Username, Target: Target{Immediate: true}}
}

func TestRunRefusesTablespaceLocations(t *testing.T) {
	tmp := t.TempDir()
	mk := func(p string) string {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	real := mk(filepath.Join(tmp, "real"))
	mk(filepath.Join(real, "ts"))
	if err := os.Symlink(real, filepath.Join(tmp, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mk(filepath.Join(tmp, "real2")), filepath.Join(tmp, "ts-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		mentions   []string
		mustNotBe  string // a path that must not exist afterwards
	}{
		{"system directory", "/etc/walvault-pwned", []string{"/etc/walvault-pwned", "system directory /etc", "--tablespace-map /etc/walvault-pwned=NEWDIR"}, "/etc/walvault-pwned"},
		{"systemd runtime units", "/run/systemd/system", []string{"/run/systemd/system", "system directory /run"}, ""},
		{"dot-dot into /etc", "/tmp/../etc/cron.d/walvault-pwned", []string{"/etc/cron.d/walvault-pwned", "system directory /etc"}, "/etc/cron.d/walvault-pwned"},
		{"root's home", "/root/.config/systemd/user", []string{"system directory /root"}, "/root/.config/systemd/user"},
		{"missing", filepath.Join(tmp, "missing", "ts"), []string{filepath.Join(tmp, "missing", "ts"), filepath.Join(tmp, "missing") + " is missing", "--tablespace-map"}, filepath.Join(tmp, "missing")},
		{"symbolic link in the path", filepath.Join(tmp, "link", "ts"), []string{filepath.Join(tmp, "link") + " is a symbolic link", "--tablespace-map"}, ""},
		{"symbolic link itself", filepath.Join(tmp, "ts-link"), []string{filepath.Join(tmp, "ts-link") + " is a symbolic link"}, ""},
		{"a file", filepath.Join(tmp, "file"), []string{filepath.Join(tmp, "file") + " is not a directory"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := forgedBackup(t, tc.path, "")
			opts := hostileOptions(t)
			_, err := Run(context.Background(), tr.r, opts)
			if !errors.Is(err, ErrTablespaceLocation) {
				t.Fatalf("err = %v, want ErrTablespaceLocation", err)
			}
			for _, w := range tc.mentions {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal does not mention %q: %v", w, err)
				}
			}
			if tc.mustNotBe != "" {
				if _, err := os.Lstat(tc.mustNotBe); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after the refusal (%v)", tc.mustNotBe, err)
				}
			}
			if _, err := os.Lstat(opts.PGData); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory was created before the refusal (%v)", err)
			}
			if entries, _ := os.ReadDir(real); len(entries) != 1 {
				t.Errorf("%s was written to: %v", real, entries)
			}
			if entries, _ := os.ReadDir(filepath.Join(real, "ts")); len(entries) != 0 {
				t.Errorf("%s/ts was written through the link: %v", real, entries)
			}
		})
	}
}

// A location the backup names is used as it stands when it exists, empty,
// and belongs to the server's account; mapped by the operator, even a
// refused one is restored (and created) where the operator says.
func TestRunNamedTablespaceLocation(t *testing.T) {
	ts := filepath.Join(t.TempDir(), "ts")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := forgedBackup(t, ts, "16400 "+ts+"\n")
	opts := hostileOptions(t)
	if _, err := Run(context.Background(), tr.r, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ts, "PG_15_1", "evil.conf")); err != nil {
		t.Errorf("tablespace not restored into its existing location: %v", err)
	}
	if fi, _ := os.Stat(ts); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}

	tr = forgedBackup(t, "/etc/walvault-pwned", "")
	opts = hostileOptions(t)
	mapped := filepath.Join(t.TempDir(), "new", "ts")
	opts.TablespaceMap = map[string]string{"/etc/walvault-pwned": mapped}
	if _, err := Run(context.Background(), tr.r, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mapped, "PG_15_1", "evil.conf")); err != nil {
		t.Errorf("mapped tablespace not restored: %v", err)
	}
	if _, err := os.Lstat("/etc/walvault-pwned"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/walvault-pwned exists (%v)", err)
	}
}

// As root, a location the backup names must already belong to the server's
// account: an empty directory of root's (or anyone else's) is not handed
// over to it.
func TestRunNamedLocationOwnerAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	parent := t.TempDir()
	os.Chmod(parent, 0o755)
	ts := filepath.Join(parent, "ts")
	if err := os.Mkdir(ts, 0o700); err != nil { // root's
		t.Fatal(err)
	}
	tr := forgedBackup(t, ts, "")
	opts := hostileOptions(t)
	opts.Owner = "postgres"
	_, err = Run(context.Background(), tr.r, opts)
	if !errors.Is(err, ErrTablespaceLocation) || !strings.Contains(err.Error(), "belongs to uid 0, not to postgres") || !strings.Contains(err.Error(), "chown postgres "+ts) {
		t.Fatalf("err = %v", err)
	}
	if fi, _ := os.Stat(ts); fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("%s changed owner", ts)
	}
	if err := os.Chown(ts, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), tr.r, opts); err != nil {
		t.Fatalf("owned by postgres: %v", err)
	}
}

// Chunk keys become file names in a directory repository.
func TestPlanRefusesChunkOutsideBackup(t *testing.T) {
	f := newFixture(t)
	for _, key := range []string{
		repo.BackupFolder(f.backup.ID) + "../../walvault.json",
		repo.BackupFolder(f.backup.ID) + "data/base.tar/./00000001",
		repo.BackupFolder("20200101T000000Z") + "data/base.tar/00000000",
		"/etc/shadow",
	} {
		b := *f.backup
		b.Archives = append([]repo.Archive(nil), f.backup.Archives...)
		b.Archives[0].Chunks = append([]repo.Chunk(nil), b.Archives[0].Chunks...)
		b.Archives[0].Chunks[0].Key = key
		if _, err := plan("/srv/pg", &b, nil); !errors.Is(err, repo.ErrIntegrity) {
			t.Errorf("chunk key %q: err = %v, want ErrIntegrity", key, err)
		}
	}
}

// tablespace_map in base.tar becomes links PostgreSQL makes at startup:
// it may name only the manifest's tablespaces.
func TestRunRefusesUnlistedTablespaceMapLine(t *testing.T) {
	for _, tc := range []struct{ name, tsPath, tsMap string }{
		{"beside a real tablespace", "/orig/ts", "16400 /orig/ts\n16401 /etc/systemd/system\n"},
		{"without any tablespace", "", "16401 /etc/systemd/system\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := forgedBackup(t, tc.tsPath, tc.tsMap)
			opts := hostileOptions(t)
			if tc.tsPath != "" {
				opts.TablespaceMap = map[string]string{tc.tsPath: filepath.Join(t.TempDir(), "ts")}
			}
			_, err := Run(context.Background(), tr.r, opts)
			if !errors.Is(err, repo.ErrIntegrity) || !strings.Contains(err.Error(), "16401") {
				t.Fatalf("err = %v, want ErrIntegrity naming 16401", err)
			}
			if _, err := os.Stat(filepath.Join(opts.PGData, recoverySignal)); !errors.Is(err, os.ErrNotExist) {
				t.Error("recovery.signal written")
			}
		})
	}
}

// A line for an in-place tablespace says where the manifest says.
func TestRunRewritesInPlaceTablespaceMapLine(t *testing.T) {
	tr := newTestRepo(t)
	stop := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	m := &repo.BackupManifest{ID: repo.NewBackupID(stop), Timeline: 1, StartTime: stop, StopTime: stop,
		StartLSN: pgwal.LSN(segSize + 0x28), StopLSN: pgwal.LSN(segSize + 0x100)}
	tr.PutBackup(t, m, 512,
		repotest.Archive{Name: "base.tar", Data: buildTar(t, []entry{{name: "backup_label", body: "x"}, {name: "tablespace_map", body: "16390 /etc/x\n"}, {name: "pg_tblspc/", mode: 0o700}})},
		repotest.Archive{Name: "16390.tar", TablespacePath: "pg_tblspc/16390", Data: buildTar(t, []entry{{name: "PG_15_1/", mode: 0o700}})},
	)
	tr.putWAL(t, 1, 1, 2)
	opts := hostileOptions(t)
	if _, err := Run(context.Background(), tr.r, opts); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(opts.PGData, "tablespace_map")); string(data) != "16390 pg_tblspc/16390\n" {
		t.Errorf("tablespace_map = %q", data)
	}
}

// openTarget follows no link to a named location, even one put there after
// the checks.
func TestOpenTargetRefusesLink(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "ts")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d := destination{archive: &repo.Archive{Name: "16400.tar", TablespacePath: dir}, dir: dir}
	root, err := openTarget(d)
	if err != nil {
		t.Fatal(err)
	}
	root.Close()
	other := filepath.Join(tmp, "other")
	if err := os.Rename(dir, other); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := openTarget(d); !errors.Is(err, ErrTablespaceLocation) {
		t.Errorf("through a link: %v, want ErrTablespaceLocation", err)
	}
	if err := chownTree(d, os.Getuid(), os.Getgid(), nil); !errors.Is(err, ErrTablespaceLocation) {
		t.Errorf("chownTree through a link: %v, want ErrTablespaceLocation", err)
	}
	// Mapped by the operator, the path is the operator's: followed.
	d.mapped = true
	if root, err := openTarget(d); err != nil {
		t.Errorf("mapped: %v", err)
	} else {
		root.Close()
	}
}

func TestSystemDir(t *testing.T) {
	for dir, want := range map[string]string{
		"/": "/", "/etc": "/etc", "/etc/systemd/system": "/etc", "/usr/lib/systemd": "/usr", "/lib64/x": "/lib64",
		"/run/systemd/system": "/run", "/var/run/x": "/var/run", "/var/spool/cron": "/var/spool", "/root": "/root",
		"/var/lib/postgresql/ts": "", "/srv/ts": "", "/etcetera": "", "/tmp/x": "", "/var/lib/run": "", "/home/pg/ts": "",
	} {
		if got := systemDir(dir); got != want {
			t.Errorf("systemDir(%q) = %q, want %q", dir, got, want)
		}
	}
}
