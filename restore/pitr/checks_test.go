package pitr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

func TestCheckSpace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing", "data")
	_, avail, err := freeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	small := []destination{{archive: &repo.Archive{Name: "base.tar", Bytes: 1 << 20}, dir: dir}}
	if err := checkSpace(small, func(destination) bool { return false }); err != nil {
		t.Errorf("1 MiB: %v", err)
	}
	huge := []destination{
		{archive: &repo.Archive{Name: "base.tar", Bytes: avail}, dir: dir},
		{archive: &repo.Archive{Name: "16385.tar", Bytes: avail}, dir: filepath.Join(filepath.Dir(dir), "ts")},
	}
	err = checkSpace(huge, func(destination) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "not enough disk space") || !strings.Contains(err.Error(), "iB") {
		t.Errorf("twice the free space: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB"} {
		if got := units.Bytes(n); got != want {
			t.Errorf("units.Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCheckNotRunning(t *testing.T) {
	dir := t.TempDir()
	if err := checkNotRunning(dir); err != nil {
		t.Errorf("no postmaster.pid: %v", err)
	}
	pidFile := filepath.Join(dir, "postmaster.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"+dir+"\n"), 0o600)
	if err := checkNotRunning(dir); err == nil || !strings.Contains(err.Error(), "running") {
		t.Errorf("live pid: %v", err)
	}
	// A pid far above pid_max belongs to no process.
	os.WriteFile(pidFile, []byte("2147483000\n"), 0o600)
	if err := checkNotRunning(dir); err != nil {
		t.Errorf("stale pid: %v", err)
	}
}

func TestFsErrNamesFullDisk(t *testing.T) {
	err := fsErr("write", "/pg/data/base/1/1259", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/pg/data/base/1/1259") || !strings.Contains(err.Error(), "full") {
		t.Errorf("fsErr = %v", err)
	}
	if err := fsErr("write", "/x", fmt.Errorf("boom")); err.Error() != "write /x: boom" {
		t.Errorf("fsErr = %v", err)
	}
}

func TestRunInPlaceTablespace(t *testing.T) {
	// allow_in_place_tablespaces puts a tablespace under pg_tblspc/ as a
	// directory: it is restored there, and tablespace_map does not list it.
	tr := newTestRepo(t)
	stop := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	m := &repo.BackupManifest{ID: repo.NewBackupID(stop), Timeline: 1, StartTime: stop, StopTime: stop,
		StartLSN: pgwal.LSN(segSize + 0x28), StopLSN: pgwal.LSN(segSize + 0x100)}
	tr.putBackup(t, m, 512, []archiveSpec{
		{name: "base.tar", data: buildTar(t, []entry{{name: "backup_label", body: "x"}, {name: "pg_tblspc/", mode: 0o700}})},
		{name: "16390.tar", tsPath: "pg_tblspc/16390", data: buildTar(t, []entry{{name: "PG_15_1/", mode: 0o700}, {name: "PG_15_1/f", body: "in place"}})},
	})
	tr.putWAL(t, 1, 1, 2)
	opts := Options{PGData: filepath.Join(t.TempDir(), "data"), RestoreCommand: "x", Owner: "root"}
	if _, err := Run(context.Background(), tr.r, opts); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(opts.PGData, "pg_tblspc/16390/PG_15_1/f")); err != nil || string(data) != "in place" {
		t.Errorf("in-place tablespace file: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(opts.PGData, "tablespace_map")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tablespace_map written for an in-place tablespace (%v)", err)
	}
}

func TestRunChownsAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	f := newFixture(t)
	opts := f.options(t)
	opts.Owner = "postgres"
	// Parents that do not exist yet are created for, and given to, the owner.
	opts.PGData = filepath.Join(t.TempDir(), "15", "main")
	if _, err := Run(context.Background(), f.r, opts); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(opts.PGData), opts.PGData, filepath.Join(opts.PGData, "base/1/1259"),
		filepath.Join(opts.PGData, "recovery.signal"), filepath.Join(opts.PGData, "postgresql.auto.conf"),
		filepath.Join(opts.TablespaceMap["/var/lib/postgresql/ts"], "PG_15_202209061/5/16386")} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(fi.Sys().(*syscall.Stat_t).Uid); got != uid {
			t.Errorf("%s: owner %d, want %d", p, got, uid)
		}
	}
}

func TestRunBoundsParallelism(t *testing.T) {
	f := newFixture(t)
	var cs *waltest.CountingStore
	r := waltest.Reopen(t, f.storeDir, f.id, func(st storage.Store) storage.Store {
		cs = &waltest.CountingStore{Store: st}
		return cs
	})
	opts := f.options(t)
	opts.Workers = 2
	if _, err := Run(context.Background(), r, opts); err != nil {
		t.Fatal(err)
	}
	// Gets of the catalog (history files) run one at a time; chunks at most
	// Workers at once.
	if cs.Peak() > opts.Workers || cs.Peak() < 2 {
		t.Errorf("peak of concurrent downloads = %d, want 2 (Workers)", cs.Peak())
	}
}
