package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCLIErrors: the documented exit codes for mistakes an operator makes,
// each with a message that says what to do. Nothing here needs a server.
func TestCLIErrors(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	wv := f.Repo.Walvault(h)
	info := wv.Info()
	if info.Recoverable == nil {
		t.Fatalf("info reports no recoverable window for a repository with a backup and WAL")
	}
	from, err := time.Parse(time.RFC3339Nano, info.Recoverable.From)
	if err != nil {
		t.Fatalf("recoverable.from %q: %v", info.Recoverable.From, err)
	}

	nonEmpty := h.Mkdir(h.Path("non-empty"), 0o700)
	stray := filepath.Join(nonEmpty, "stray-file")
	h.WriteFile(stray, []byte("left by someone\n"), 0o600)
	missing := h.Path("no-such-wal", "000000010000000000000042")
	deadPort := strconv.Itoa(freePort(t))

	tests := []struct {
		name     string
		w        *Walvault
		args     []string
		exit     int      // -1: any non-zero status
		mentions []string // substrings the message must contain
		absent   []string // paths that must not exist afterwards
	}{
		{name: "missing repo", w: h.Walvault(), args: []string{"info"}, exit: 3, mentions: []string{"repo"}},
		{name: "uninitialized repo", w: h.Walvault("WALVAULT_REPO=file://" + h.Path("empty-repo")),
			args: []string{"info"}, exit: 4},
		{name: "unknown command", w: wv, args: []string{"frobnicate"}, exit: 2, mentions: []string{"frobnicate"}},
		{name: "unknown flag", w: wv, args: []string{"info", "--no-such-flag"}, exit: 2},
		{name: "malformed LSN", w: wv, args: []string{"restore", "--pgdata", h.Path("r1"), "--target-lsn", "zz"},
			exit: 2, mentions: []string{"zz"}, absent: []string{h.Path("r1")}},
		{name: "two targets", w: wv, args: []string{"restore", "--pgdata", h.Path("r2"), "--target-lsn", "0/3000000", "--target-xid", "1000"},
			exit: 2, absent: []string{h.Path("r2")}},
		{name: "malformed time", w: wv, args: []string{"restore", "--pgdata", h.Path("r3"), "--target-time", "yesterday"},
			exit: 2, absent: []string{h.Path("r3")}},
		{name: "restore into a non-empty directory", w: wv, args: []string{"restore", "--pgdata", nonEmpty},
			exit: 5, mentions: []string{nonEmpty}},
		{name: "target before the first backup", w: wv,
			args: []string{"restore", "--pgdata", h.Path("r4"), "--target-time", f.BackupStart.Add(-time.Hour).Format(time.RFC3339)},
			exit: 10, mentions: []string{from.UTC().Format("2006-01-02"), from.UTC().Format("15:04")}, absent: []string{h.Path("r4")}},
		{name: "target after the archived WAL", w: wv,
			args: []string{"restore", "--pgdata", h.Path("r5"), "--target-time", "2099-01-01T00:00:00Z"},
			exit: 10, absent: []string{h.Path("r5")}},
		{name: "wal-push of a missing file", w: wv, args: []string{"wal-push", missing}, exit: -1, mentions: []string{missing}},
		{name: "wal-fetch without arguments", w: wv, args: []string{"wal-fetch"}, exit: 255},
		{name: "backup without a server", w: wv.With("PGHOST=127.0.0.1", "PGPORT="+deadPort, "PGUSER=postgres", "PGCONNECT_TIMEOUT=5"),
			args: []string{"backup"}, exit: 9},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			hh := &Harness{t: t, Base: h.Base}
			w := *tc.w
			w.h = hh
			stdout, stderr, exit := w.Run(tc.args...)
			if exit != tc.exit && !(tc.exit == -1 && exit > 0) {
				t.Errorf("walvault %s: exit %d, want %d\nstdout: %s\nstderr: %s",
					strings.Join(tc.args, " "), exit, tc.exit, stdout, stderr)
			}
			if strings.TrimSpace(stderr) == "" {
				t.Errorf("walvault %s: no message on stderr", strings.Join(tc.args, " "))
			}
			for _, m := range tc.mentions {
				if !strings.Contains(stderr, m) {
					t.Errorf("walvault %s: message does not mention %q:\n%s", strings.Join(tc.args, " "), m, stderr)
				}
			}
			for _, p := range tc.absent {
				if empty, err := dirEmptyOrAbsent(p); err != nil || !empty {
					t.Errorf("walvault %s left files in %s", strings.Join(tc.args, " "), p)
				}
			}
		})
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("restore into a non-empty directory removed its contents: %v", err)
	}

	// --force replaces what the directory holds.
	wv.MustRun("restore", "--pgdata", nonEmpty, "--force", "--target-immediate")
	if _, err := os.Stat(stray); err == nil {
		t.Errorf("restore --force kept %s", stray)
	}
	for _, name := range []string{"PG_VERSION", "backup_label", "recovery.signal"} {
		if _, err := os.Stat(filepath.Join(nonEmpty, name)); err != nil {
			t.Errorf("restore --force: %v", err)
		}
	}

	// Secrets seen so far (TestMain checks the whole suite again at the end).
	if secretCount() == 0 {
		t.Errorf("no secrets registered: the leak check would check nothing")
	}
	for _, leak := range findLeakedSecrets() {
		t.Errorf("secret leaked: %s", leak)
	}
}
