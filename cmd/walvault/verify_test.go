package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

func TestVerifyCommand(t *testing.T) {
	r := repotest.New(t, repotest.OnDisk())
	dir := r.Dir
	for n := uint64(1); n <= 3; n++ {
		r.PutSegment(t, 1, n, 1)
	}
	keyFile := r.IdentityFile(t)
	env := map[string]string{"WALVAULT_AGE_IDENTITY_FILE": "", "WALVAULT_REPO": "", "WALVAULT_CONFIG": "", "WALVAULT_WORKERS": ""}
	args := []string{"verify", "--repo", "file://" + dir, "--age-identity-file", keyFile}

	stdout, stderr, code := runCLI(t, env, args...)
	if code != exitOK || !strings.Contains(stdout, ": OK: 3 objects checked") {
		t.Fatalf("clean: code %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	stdout, stderr, code = runCLI(t, env, append(args, "--json")...)
	var out struct {
		OK       bool  `json:"ok"`
		Objects  int64 `json:"objects"`
		Problems []struct{ Key, Kind, Error string }
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != exitOK || !out.OK || out.Objects != 3 || out.Problems == nil {
		t.Fatalf("json: code %d err %v out %+v\nstdout %s\nstderr %s", code, err, out, stdout, stderr)
	}

	key := repo.WALSegmentKey(1, 2, waltest.SegSize)
	p := filepath.Join(dir, filepath.FromSlash(key))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCLI(t, env, args...)
	if code != exitIntegrity || !strings.Contains(stdout, "PROBLEM "+key+": damaged") {
		t.Fatalf("damaged: code %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	if _, stderr, code = runCLI(t, env, "verify", "--repo", "file://"+dir); code != exitConfig {
		t.Errorf("no identity: code %d, want %d (%s)", code, exitConfig, stderr)
	}
	if _, stderr, code = runCLI(t, env, append(args, "--wal-only", "--backups-only")...); code != exitUsage {
		t.Errorf("--wal-only --backups-only: code %d, want %d (%s)", code, exitUsage, stderr)
	}
	if _, stderr, code = runCLI(t, env, append(args, "--backup", "20200101T000000Z")...); code != exitUsage {
		t.Errorf("unknown backup: code %d, want %d (%s)", code, exitUsage, stderr)
	}
}

// TestVerifyFutureFormat: a manifest written by a newer walvault is not
// damage: verify names it and exits 4 (upgrade), as restore and info do.
func TestVerifyFutureFormat(t *testing.T) {
	r := repotest.New(t, repotest.OnDisk())
	dir := r.Dir
	r.PutSegment(t, 1, 1, 1)
	const backupID = "20261123T225700Z"
	r.Write(t, repo.BackupManifestKey(backupID), []byte(`{"format": 99, "id": "`+backupID+`"}`))
	keyFile := r.IdentityFile(t)
	env := map[string]string{"WALVAULT_AGE_IDENTITY_FILE": "", "WALVAULT_REPO": "", "WALVAULT_CONFIG": "", "WALVAULT_WORKERS": ""}
	stdout, stderr, code := runCLI(t, env, "verify", "--repo", "file://"+dir, "--age-identity-file", keyFile)
	if code != exitRepository || !strings.Contains(stdout, repo.BackupManifestKey(backupID)) || !strings.Contains(stdout+stderr, "newer than this walvault reads") {
		t.Fatalf("future manifest: code %d, want %d naming it\nstdout %s\nstderr %s", code, exitRepository, stdout, stderr)
	}
}
