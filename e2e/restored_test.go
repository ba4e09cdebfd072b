package e2e

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Every successful `walvault restore --pgdata` an end-to-end test runs is
// judged here, whatever the test itself checks (the hooks are in
// Walvault.Run, Cluster.Start and Cluster.WaitPromoted):
//
//   - right after the restore, pg_verifybackup -n accepts the directory
//     (PostgreSQL's own judgement of the restored files; for a version 2
//     manifest, which it cannot read, checkManifest's), unless
//     post-recovery steps already started a server on it;
//   - no file of the data directory or its tablespaces holds a secret the
//     suite knows (age identities, S3 secret keys), before the server
//     starts and again once it has promoted;
//   - once it has promoted, the recovery directory restore made (outside
//     the data directory) is gone, removed by recovery_end_command, and so
//     are the segments prefetched into pg_wal.

// restoredDir is what the suite knows of one restored data directory.
type restoredDir struct {
	recoveryDir string
	tablespaces []string
}

var restored struct {
	mu   sync.Mutex
	dirs map[string]*restoredDir
}

func lookupRestored(pgdata string) *restoredDir {
	restored.mu.Lock()
	defer restored.mu.Unlock()
	return restored.dirs[filepath.Clean(pgdata)]
}

// afterRestore runs the checks on a restore that exited 0.
func (h *Harness) afterRestore(args []string) {
	h.t.Helper()
	if len(args) == 0 || args[0] != "restore" {
		return
	}
	flag := func(name string) (string, bool) {
		for i, a := range args {
			if a == "--"+name && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	pgdata, ok := flag("pgdata")
	if !ok {
		return // restore --database: a scratch directory, removed by walvault
	}
	if !filepath.IsAbs(pgdata) {
		pgdata = filepath.Join(h.Base, pgdata)
	}
	pgdata = filepath.Clean(pgdata)
	rd := &restoredDir{recoveryDir: pgdata + ".walvault-recovery"}
	if d, ok := flag("recovery-dir"); ok {
		rd.recoveryDir = d
	}
	mapped := false
	for i, a := range args {
		if a == "--tablespace-map" && i+1 < len(args) {
			if _, nw, ok := strings.Cut(args[i+1], "="); ok {
				rd.tablespaces = append(rd.tablespaces, nw)
				mapped = true
			}
		}
	}
	if links, err := os.ReadDir(filepath.Join(pgdata, "pg_tblspc")); err == nil {
		for _, l := range links {
			if to, err := os.Readlink(filepath.Join(pgdata, "pg_tblspc", l.Name())); err == nil && filepath.IsAbs(to) {
				rd.tablespaces = append(rd.tablespaces, to)
			}
		}
	}
	restored.mu.Lock()
	if restored.dirs == nil {
		restored.dirs = map[string]*restoredDir{}
	}
	restored.dirs[pgdata] = rd
	restored.mu.Unlock()

	steps := false
	for _, f := range []string{"as", "odoo-filestore", "neutralize", "anonymize"} {
		if _, ok := flag(f); ok {
			steps = true
		}
	}
	for _, a := range args {
		if a == "--neutralize" || a == "--anonymize" {
			steps = true
		}
	}
	h.checkNoSecrets(pgdata, rd)
	if steps {
		// The steps ran a server on it, which promoted: recovery is over.
		h.checkRecoveryOver(pgdata, rd)
		return
	}
	h.verifyBackup(pgdata, mapped, h.VerifyIgnore...)
}

// verifyBackup runs pg_verifybackup -n on a restored data directory,
// leaving out ignore (-i). A tablespace restored elsewhere changes
// tablespace_map, which is expected.
// PostgreSQL 17 and later write version 2 manifests, which the
// pg_verifybackup of this machine (15) cannot read (no later client package
// exists for this Debian release): checkManifest, which does what it does,
// judges those.
func (h *Harness) verifyBackup(pgdata string, mapped bool, ignore ...string) {
	h.t.Helper()
	if mapped {
		ignore = append(ignore, "tablespace_map")
	}
	if b, err := os.ReadFile(filepath.Join(pgdata, "backup_manifest")); err == nil &&
		!bytes.Contains(b, []byte(`"PostgreSQL-Backup-Manifest-Version": 1,`)) {
		if err := checkManifest(pgdata, ignore...); err != nil {
			h.t.Fatalf("restored data directory: %v", err)
		}
		return
	}
	args := []string{"-n"}
	for _, i := range ignore {
		args = append(args, "-i", i)
	}
	out, err := h.tryPG(10*time.Minute, nil, "pg_verifybackup", append(args, pgdata)...)
	if err != nil {
		h.t.Fatalf("pg_verifybackup -n %s: %v\n%s", pgdata, err, tail(out, 30))
	}
}

// checkNoSecrets fails the test when a file of the restored cluster holds a
// secret the suite registered.
func (h *Harness) checkNoSecrets(pgdata string, rd *restoredDir) {
	h.t.Helper()
	suite.mu.Lock()
	secrets := make(map[string]string, len(suite.secrets))
	for k, v := range suite.secrets {
		secrets[k] = v
	}
	suite.mu.Unlock()
	for _, root := range append([]string{pgdata}, rd.tablespaces...) {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking (a running server)
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			for s, what := range secrets {
				if bytes.Contains(b, []byte(s)) {
					h.t.Errorf("%s holds %s", p, what)
				}
			}
			return nil
		})
		if err != nil {
			h.t.Fatalf("scan %s for secrets: %v", root, err)
		}
	}
}

// checkRecoveryOver: once recovery has ended, what restore left for
// restore_command is gone, and the data directory holds no secret.
func (h *Harness) checkRecoveryOver(pgdata string, rd *restoredDir) {
	h.t.Helper()
	for _, p := range []string{rd.recoveryDir, filepath.Join(pgdata, "pg_wal", ".walvault-prefetch")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			h.t.Errorf("%s is still there after recovery ended (recovery_end_command should remove it): %v", p, err)
		}
	}
	h.checkNoSecrets(pgdata, rd)
}

// afterPromoted runs the checks on a restored cluster that has promoted.
func (c *Cluster) afterPromoted() {
	c.h.t.Helper()
	if rd := lookupRestored(c.DataDir); rd != nil {
		c.h.checkRecoveryOver(c.DataDir, rd)
	}
}
