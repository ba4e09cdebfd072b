package pitr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckNotInUse(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "live", "main")
	ts := filepath.Join(base, "ts", "live")
	link := filepath.Join(base, "link")
	for _, d := range []string{data, ts} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(base, "live"), link); err != nil {
		t.Fatal(err)
	}
	live := []liveCluster{{pid: 42, dataDir: data, tablespaces: []string{ts}}}
	for _, tc := range []struct {
		dir   string
		inUse bool
	}{
		{data, true},
		{filepath.Join(data, "sub"), true},
		{filepath.Join(base, "live"), true}, // a parent of the live data directory
		{base, true},
		{ts, true},
		{filepath.Join(ts, "PG_15_202209061"), true},
		{filepath.Join(link, "main"), true},             // through a symbolic link
		{filepath.Join(link, "main", "new", "x"), true}, // not yet existing, under a link
		{filepath.Join(base, "restored"), false},
		{filepath.Join(base, "ts", "other"), false},
		{filepath.Join(base, "live2"), false},
	} {
		err := checkNotInUse("dir", tc.dir, live)
		if got := errors.Is(err, ErrInUse); got != tc.inUse {
			t.Errorf("%s: in use = %v (%v), want %v", tc.dir, got, err, tc.inUse)
		}
	}
}

func TestLiveClustersSeesNothingOdd(t *testing.T) {
	// Whatever runs on this machine, every cluster found is a data
	// directory.
	for _, c := range liveClusters() {
		if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err != nil {
			t.Errorf("%s (pid %d) has no PG_VERSION: %v", c.dataDir, c.pid, err)
		}
	}
}
