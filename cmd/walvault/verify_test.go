package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

func TestVerifyCommand(t *testing.T) {
	r, id, dir := waltest.Repo(t)
	for n := uint64(1); n <= 3; n++ {
		if _, err := r.Put(context.Background(), repo.WALSegmentKey(1, n, waltest.SegSize), waltest.Segment(1, n, waltest.SysID, 1), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
	r, id, dir := waltest.Repo(t)
	ctx := context.Background()
	if _, err := r.Put(ctx, repo.WALSegmentKey(1, 1, waltest.SegSize), waltest.Segment(1, 1, waltest.SysID, 1), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	const backupID = "20261123T225700Z"
	manifest := []byte(`{"format": 99, "id": "` + backupID + `"}`)
	if _, err := r.Put(ctx, repo.BackupManifestKey(backupID), manifest, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WALVAULT_AGE_IDENTITY_FILE": "", "WALVAULT_REPO": "", "WALVAULT_CONFIG": "", "WALVAULT_WORKERS": ""}
	stdout, stderr, code := runCLI(t, env, "verify", "--repo", "file://"+dir, "--age-identity-file", keyFile)
	if code != exitRepository || !strings.Contains(stdout, repo.BackupManifestKey(backupID)) || !strings.Contains(stdout+stderr, "newer than this walvault reads") {
		t.Fatalf("future manifest: code %d, want %d naming it\nstdout %s\nstderr %s", code, exitRepository, stdout, stderr)
	}
}
