package pitr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrInUse: a directory the restore would write is the data directory or a
// tablespace of a running PostgreSQL server, or overlaps one.
var ErrInUse = errors.New("directory in use by a running PostgreSQL server")

// liveCluster is a running server's data directory and the directories its
// tablespaces live in.
type liveCluster struct {
	pid         int
	dataDir     string
	tablespaces []string
}

// liveClusters finds the PostgreSQL servers running on this host: every
// process called postgres (or postmaster) whose working directory is a data
// directory (the postmaster and its children chdir there). Processes of
// other users are invisible without privileges; checkNotRunning's
// postmaster.pid test covers those for PGData itself.
func liveClusters() []liveCluster {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []liveCluster
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		if name := strings.TrimSpace(string(comm)); name != "postgres" && name != "postmaster" {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !filepath.IsAbs(cwd) || seen[cwd] {
			continue
		}
		if _, err := os.Stat(filepath.Join(cwd, "PG_VERSION")); err != nil {
			continue
		}
		seen[cwd] = true
		out = append(out, liveCluster{pid: pid, dataDir: cwd, tablespaces: tablespaceDirs(cwd)})
	}
	return out
}

// tablespaceDirs resolves the links in dataDir/pg_tblspc.
func tablespaceDirs(dataDir string) []string {
	ents, err := os.ReadDir(filepath.Join(dataDir, "pg_tblspc"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dataDir, "pg_tblspc", e.Name())
		if e.Type()&fs.ModeSymlink == 0 {
			continue // an in-place tablespace lives inside dataDir
		}
		if to, err := filepath.EvalSymlinks(p); err == nil {
			out = append(out, to)
		}
	}
	return out
}

// resolved is dir with symbolic links resolved as far as it exists: a path
// that reaches a live cluster through a link must be caught too.
func resolved(dir string) string {
	var rest []string
	p := dir
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return dir
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// checkNotInUse refuses when dir (what) is, contains or lies inside the
// data directory or a tablespace of a running server: clearing or filling
// it would destroy a live cluster. Nothing a restore is told can override
// this.
func checkNotInUse(what, dir string, live []liveCluster) error {
	d := resolved(dir)
	for _, c := range live {
		if within(d, c.dataDir) || within(c.dataDir, d) {
			return fmt.Errorf("%w: %s %s overlaps the data directory %s of the server running as pid %d; stop that server, or restore somewhere else",
				ErrInUse, what, dir, c.dataDir, c.pid)
		}
		for _, ts := range c.tablespaces {
			if within(d, ts) || within(ts, d) {
				return fmt.Errorf("%w: %s %s overlaps %s, a tablespace of the server running on %s (pid %d); restore the tablespace elsewhere with --tablespace-map OLD=NEW",
					ErrInUse, what, dir, ts, c.dataDir, c.pid)
			}
		}
	}
	return nil
}

// checkNotRunning refuses a data directory a live postmaster runs on, as
// its postmaster.pid says (that also catches servers of other users that
// liveClusters cannot see).
func checkNotRunning(pgdata string) error {
	data, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return nil
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return nil
	}
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w: a PostgreSQL server (pid %d, from %s) seems to be running on %s: stop it first (if that process is not PostgreSQL, remove the stale postmaster.pid)", ErrInUse, pid, filepath.Join(pgdata, "postmaster.pid"), pgdata)
	}
	return nil
}
