package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWALPushIdempotency covers the archive_command contract: PostgreSQL
// may push a segment again after a crash (same bytes: success), a different
// file under an archived name must be refused without touching the stored
// one, a segment of another cluster must be refused, "not found" must be
// quick and exit 1, and history and backup-label files round-trip exactly.
func TestWALPushIdempotency(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	repo := f.copyRepo(h, "repo")
	wv := repo.Walvault(h)
	dir := h.Mkdir(h.Path("files"), 0o755)

	// A real segment of this cluster, as PostgreSQL would push it again.
	seg := f.MarkSegs[1]
	segPath := filepath.Join(dir, seg)
	wv.MustRun("wal-fetch", seg, segPath)
	segBytes, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(segBytes) != 16<<20 {
		t.Fatalf("fetched segment is %d bytes, want 16 MiB", len(segBytes))
	}
	stored := walObjectPath(repo, seg)
	before, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}
	wv.MustRun("wal-push", segPath)
	wv.MustRun("wal-push", segPath)

	// Same name, different content.
	conflict := filepath.Join(h.Mkdir(h.Path("conflict"), 0o755), seg)
	changed := bytes.Clone(segBytes)
	changed[len(changed)/2] ^= 0xff
	h.WriteFile(conflict, changed, 0o600)
	// Stored beside the archived one, loudly, never a failure PostgreSQL
	// would retry forever (issue 14).
	_, stderr := wv.RunExpect(0, "wal-push", conflict)
	if !strings.Contains(stderr, seg) || !strings.Contains(stderr, "WAL conflict") {
		t.Errorf("conflicting wal-push: message does not name %s:\n%s", seg, stderr)
	}
	if alts, _ := filepath.Glob(stored + "~*"); len(alts) != 1 {
		t.Errorf("conflicting wal-push: copies stored beside %s: %v", stored, alts)
	}
	after, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the stored object %s changed after pushes of the same name", stored)
	}

	// A segment of another cluster. pg_resetwal -l makes the other cluster
	// write a real segment under a name this repository does not hold, so
	// the only thing wrong with it is whose it is.
	other := h.InitCluster("other")
	const otherName = "0000000100000000000000F0"
	h.runPG(time.Minute, nil, "pg_resetwal", "-l", otherName, "-D", other.DataDir)
	otherSeg := filepath.Join(other.DataDir, "pg_wal", otherName)
	if _, err := os.Stat(otherSeg); err != nil {
		t.Fatalf("pg_resetwal wrote no %s: %v", otherName, err)
	}
	_, stderr = wv.RunExpect(4, "wal-push", otherSeg)
	if !strings.Contains(strings.ToLower(stderr), "system identifier") {
		t.Errorf("wal-push of another cluster's segment: message does not mention the system identifier:\n%s", stderr)
	}
	if _, err := os.Stat(walObjectPath(repo, otherName)); err == nil {
		t.Errorf("another cluster's segment was stored")
	}

	// Not found: exit 1, quickly.
	start := time.Now()
	wv.RunExpect(1, "wal-fetch", "0000000100000000000000EE", filepath.Join(dir, "absent"))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("wal-fetch of a missing segment took %v; PostgreSQL probes many missing names", d)
	}
	wv.RunExpect(1, "wal-fetch", "00000063.history", filepath.Join(dir, "absent.history"))

	// History and backup-label files round-trip byte for byte.
	var history strings.Builder
	for tli := 1; tli < 9; tli++ {
		fmt.Fprintf(&history, "%d\t0/%X\tno recovery target specified\n", tli, 0x3000000+tli*0x1000000)
	}
	label := "START WAL LOCATION: 0/77000028 (file 000000010000000000000077)\n" +
		"STOP WAL LOCATION: 0/77000100 (file 000000010000000000000077)\n" +
		"CHECKPOINT LOCATION: 0/77000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n" +
		"START TIME: 2026-01-01 00:00:00 UTC\nLABEL: e2e\nSTART TIMELINE: 1\n" +
		"STOP TIME: 2026-01-01 00:00:01 UTC\nSTOP TIMELINE: 1\n"
	for name, content := range map[string]string{
		"00000009.history":                         history.String(),
		"000000010000000000000077.00000028.backup": label,
	} {
		p := filepath.Join(dir, name)
		h.WriteFile(p, []byte(content), 0o600)
		wv.MustRun("wal-push", p)
		wv.MustRun("wal-push", p) // again: identical, fine
		back := filepath.Join(dir, "fetched-"+name)
		wv.MustRun("wal-fetch", name, back)
		got, err := os.ReadFile(back)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("%s did not round-trip: got %q, want %q", name, got, content)
		}
	}
}
