package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecoverableWindowStartsAfterBackupEnd: the recoverable window must not
// begin before the backup really ended. A recovery target between the two
// is accepted by restore but fails in PostgreSQL ("requested recovery stop
// point is before consistent recovery point") whenever a commit falls in
// between, which under load is nearly always. The backup history file that
// PostgreSQL archives (NAME.backup) holds the server's STOP TIME, truncated
// to the second: the window's start must not be earlier than that.
func TestRecoverableWindowStartsAfterBackupEnd(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	wv := f.Repo.Walvault(h)
	info := wv.Info()
	if info.Recoverable == nil {
		t.Fatal("info reports no recoverable window")
	}
	from, err := time.Parse(time.RFC3339Nano, info.Recoverable.From)
	if err != nil {
		t.Fatal(err)
	}
	labels, _ := filepath.Glob(filepath.Join(f.Repo.Dir, "wal", "00000001", "*.backup"))
	if len(labels) != 1 {
		t.Fatalf("want one archived backup history file, found %v", labels)
	}
	name := filepath.Base(labels[0])
	dest := h.Path(name)
	wv.MustRun("wal-fetch", name, dest)
	b, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	var stop time.Time
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "STOP TIME: "); ok {
			if stop, err = time.Parse("2006-01-02 15:04:05 MST", v); err != nil {
				t.Fatalf("STOP TIME %q: %v", v, err)
			}
		}
	}
	if stop.IsZero() {
		t.Fatalf("%s has no STOP TIME:\n%s", name, b)
	}
	t.Logf("server STOP TIME %s; recoverable window from %s; backup stop_time %s",
		stop.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339Nano), info.Backups[0].StopTime)
	if from.Before(stop) {
		t.Errorf("recoverable window starts at %s, before the server's backup STOP TIME %s (from %s): "+
			"targets in between are accepted but cannot be reached",
			from.UTC().Format(time.RFC3339Nano), stop.UTC().Format(time.RFC3339), name)
	}
}
