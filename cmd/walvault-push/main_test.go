package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "w.conf")
	os.WriteFile(conf, []byte("# settings\nrepo = s3://b/from-config\nage-recipients = age1x\n"), 0o600)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name               string
		args               []string
		env                map[string]string
		socket, repo, path string
		ok                 bool
	}{
		{"flags", []string{"--wal-server", "/s", "--repo", "file:///r", "pg_wal/1"}, nil, "/s", "file:///r", "pg_wal/1", true},
		{"equals", []string{"--wal-server=/s", "--repo=file:///r", "x"}, nil, "/s", "file:///r", "x", true},
		{"config", []string{"--config", conf, "--wal-server", "/s", "p"}, nil, "/s", "s3://b/from-config", "p", true},
		{"env repo wins over config", []string{"--config", conf, "p"}, map[string]string{"WALVAULT_REPO": "file:///env", "WALVAULT_WAL_SERVER": "/e"}, "/e", "file:///env", "p", true},
		{"flag wins over env", []string{"--repo", "file:///f", "--wal-server", "/s", "p"}, map[string]string{"WALVAULT_REPO": "file:///env"}, "/s", "file:///f", "p", true},
		{"settings with values skipped", []string{"--push-ahead", "3", "--log-level=debug", "--wal-server", "/s", "p"}, nil, "/s", "", "p", true},
		{"no socket", []string{"--repo", "file:///r", "p"}, nil, "", "", "", false},
		{"unknown flag", []string{"--wal-server", "/s", "--s3-path-style", "p"}, nil, "", "", "", false},
		{"two paths", []string{"--wal-server", "/s", "a", "b"}, nil, "", "", "", false},
		{"no path", []string{"--wal-server", "/s"}, nil, "", "", "", false},
		{"flag without value", []string{"p", "--wal-server"}, nil, "", "", "", false},
		{"after --", []string{"--wal-server", "/s", "--", "-odd-name"}, nil, "/s", "", "-odd-name", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env = tt.env
			if env == nil {
				env = map[string]string{}
			}
			socket, repo, path, ok := parse(tt.args, getenv)
			if ok != tt.ok || (ok && (socket != tt.socket || repo != tt.repo || path != tt.path)) {
				t.Errorf("parse(%q) = %q %q %q %v, want %q %q %q %v", tt.args, socket, repo, path, ok, tt.socket, tt.repo, tt.path, tt.ok)
			}
		})
	}
}
