package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// checkReport is what `walvault check --json` prints.
type checkReport struct {
	Status string `json:"status"`
	Checks []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Fix     string `json:"fix"`
	} `json:"checks"`
}

// runCheck runs `walvault check --json args...`, expects the Nagios exit
// status that goes with the overall status, and decodes the report.
func runCheck(t *testing.T, w *Walvault, wantExit int, args ...string) checkReport {
	t.Helper()
	stdout, stderr, exit := w.Run(append([]string{"check", "--json"}, args...)...)
	var rep checkReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("check --json %v: exit %d, output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", args, exit, err, stdout, stderr)
	}
	codes := map[string]int{"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
	if exit != codes[rep.Status] {
		t.Errorf("check %v: exit %d but the report says %s", args, exit, rep.Status)
	}
	if exit != wantExit {
		t.Errorf("check %v: exit %d, want %d\n%s", args, exit, wantExit, stdout)
	}
	for _, c := range rep.Checks {
		if c.Status != "OK" && strings.TrimSpace(c.Fix) == "" && !strings.HasPrefix(c.Message, "not ") {
			t.Errorf("check %s is %s without a fix: %s", c.Name, c.Status, c.Message)
		}
	}
	return rep
}

// expect asserts that check name has status and that its message and fix
// mention each of the given substrings (message first, then fix).
func (r checkReport) expect(t *testing.T, name, status string, inMessage, inFix []string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name != name {
			continue
		}
		if c.Status != status {
			t.Errorf("check %s: %s (%s), want %s", name, c.Status, c.Message, status)
		}
		for _, s := range inMessage {
			if !strings.Contains(c.Message, s) {
				t.Errorf("check %s: message does not mention %q: %s", name, s, c.Message)
			}
		}
		for _, s := range inFix {
			if !strings.Contains(c.Fix, s) {
				t.Errorf("check %s: fix does not mention %q: %s", name, s, c.Fix)
			}
		}
		return
	}
	t.Errorf("report has no check %s: %+v", name, r.Checks)
}

// allOK asserts that every check is OK.
func (r checkReport) allOK(t *testing.T) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Status != "OK" {
			t.Errorf("check %s: %s: %s (fix: %s)", c.Name, c.Status, c.Message, c.Fix)
		}
	}
}

// TestCheck runs walvault check against a real server through the states an
// operator meets: no backup yet, a healthy setup (with and without the
// identity, with --archive-test), an old backup, a missing and an idle
// slot, the repository of another cluster, a broken archive_command,
// archive_mode off, and a streamer instead of archive_command.
func TestCheck(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("pg", repo)
	pg.SwitchAndWaitArchived()
	// The archiving host's view: recipients, no identity.
	var archEnv []string
	for _, kv := range repo.Env {
		if !strings.HasPrefix(kv, "WALVAULT_AGE_IDENTITY_FILE=") {
			archEnv = append(archEnv, kv)
		}
	}
	archiver := h.Walvault(append(archEnv, pg.LibpqEnv()...)...)

	{ // no backup
		rep := runCheck(t, archiver, 2)
		rep.expect(t, "backup", "CRITICAL", []string{"no complete backup"}, []string{"backup"})
		rep.expect(t, "archiving", "OK", nil, nil)
		rep.expect(t, "repository", "OK", []string{pg.SystemIdentifier()}, nil)
	}

	wv.MustRun("backup", "--fast")
	{ // healthy
		runCheck(t, archiver, 0).allOK(t)
		rep := runCheck(t, wv, 0) // with the identity: the manifest is read too
		rep.allOK(t)
		rep.expect(t, "recipients", "OK", []string{"identity reads"}, nil)
		rep.expect(t, "backup", "OK", []string{"manifest read"}, nil)
		// The human output: the Nagios status line first.
		stdout, _ := archiver.RunExpect(0, "check")
		t.Logf("check on a healthy setup:\n%s", stdout)
		if !strings.HasPrefix(stdout, "WALVAULT OK") {
			t.Errorf("first line of check: %q, want WALVAULT OK …", strings.SplitN(stdout, "\n", 2)[0])
		}
	}
	{ // a monitoring role: pg_monitor is enough, --archive-test needs pg_switch_wal
		pg.Exec("CREATE ROLE nagios LOGIN IN ROLE pg_monitor")
		monitor := archiver.With("PGUSER=nagios")
		runCheck(t, monitor, 0).allOK(t)
		rep := runCheck(t, monitor, 2, "--archive-test", "--archive-timeout", "10s")
		rep.expect(t, "archive-test", "CRITICAL", []string{"could not switch WAL", "pg_switch_wal"}, []string{"GRANT EXECUTE ON FUNCTION pg_switch_wal()"})
		pg.Exec("GRANT EXECUTE ON FUNCTION pg_switch_wal() TO nagios")
		runCheck(t, monitor, 0, "--archive-test", "--archive-timeout", "60s").allOK(t)
	}
	{ // archive test
		start := time.Now()
		rep := runCheck(t, archiver, 0, "--archive-test", "--archive-timeout", "60s")
		rep.allOK(t)
		rep.expect(t, "archive-test", "OK", []string{"reached the repository"}, nil)
		t.Logf("archive test took %v", time.Since(start))
	}
	{ // old backup
		time.Sleep(1100 * time.Millisecond)
		rep := runCheck(t, archiver, 1, "--max-backup-age", "1s")
		rep.expect(t, "backup", "WARNING", []string{"--max-backup-age"}, []string{"walvault", "backup"})
	}
	{ // wrong identity
		other := h.Path("other-identity.txt")
		h.Keygen(other)
		rep := runCheck(t, archiver.With("WALVAULT_AGE_IDENTITY_FILE="+other), 1)
		rep.expect(t, "recipients", "WARNING", []string{"cannot read"}, []string{"age-identity-file"})
		rep.expect(t, "backup", "WARNING", []string{"cannot be read"}, []string{"verify"})
	}
	{ // slot
		rep := runCheck(t, archiver, 2, "--slot", "walvault")
		rep.expect(t, "slot", "CRITICAL", []string{"does not exist"}, []string{"pg_create_physical_replication_slot('walvault'", "--create-slot"})
		pg.Exec("SELECT pg_create_physical_replication_slot('walvault', true)")
		rep = runCheck(t, archiver, 2, "--slot", "walvault")
		rep.expect(t, "slot", "CRITICAL", []string{"nothing streams"}, []string{"walvault stream", "pg_drop_replication_slot"})
		pg.Exec("SELECT pg_drop_replication_slot('walvault')")
	}
	{ // repository of another cluster
		other := h.InitCluster("other")
		other.Start()
		rep := runCheck(t, repo.Walvault(h, other.LibpqEnv()...), 2)
		rep.expect(t, "repository", "CRITICAL", []string{"not this cluster's repository", pg.SystemIdentifier(), other.SystemIdentifier()}, []string{"init"})
		other.Stop("fast")
	}
	{ // broken archive_command
		broken := suite.walvault + " wal-push --repo file://" + h.Path("no-such-repo") + " %p"
		pg.Exec("ALTER SYSTEM SET archive_command = '" + broken + "'")
		pg.Exec("SELECT pg_reload_conf()")
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		rep := runCheck(t, archiver, 2, "--archive-test", "--archive-timeout", "5s")
		took := time.Since(start)
		rep.expect(t, "archive-test", "CRITICAL", []string{"did not reach the repository within 5s", "archive_command failed", "time(s) meanwhile"}, []string{"wal-push"})
		if took > 30*time.Second {
			t.Errorf("check --archive-test --archive-timeout 5s took %v", took)
		}
		// By now the archiver has failed on the switched segment.
		stdout, _ := archiver.RunExpect(2, "check")
		t.Logf("check with a failing archive_command:\n%s", stdout)
		rep = runCheck(t, archiver, 2)
		rep.expect(t, "archiver", "CRITICAL", []string{"archive_command is failing", "the last for 0000"}, []string{"archive command failed", "wal-push"})

		pg.Exec("ALTER SYSTEM SET archive_command = 'true'")
		pg.Exec("SELECT pg_reload_conf()")
		time.Sleep(500 * time.Millisecond)
		rep = runCheck(t, archiver, 2)
		rep.expect(t, "archiving", "CRITICAL", []string{"does not hand %p to walvault wal-push"},
			[]string{"ALTER SYSTEM SET archive_command", "wal-push", "%p", "pg_reload_conf"})
	}
	{ // archive_mode off
		pg.Exec("ALTER SYSTEM SET archive_mode = 'off'")
		pg.Stop("fast")
		pg.Start()
		rep := runCheck(t, archiver, 2)
		rep.expect(t, "archiving", "CRITICAL", []string{"archive_mode = off", "no walvault stream"},
			[]string{"archive_mode = 'on'", "archive_command", "restart"})
	}
	{ // streamer instead of archive_command
		st := h.StartStream(archiver, "stream", false, "--slot", "walvault", "--create-slot")
		st.WaitStreaming(1, time.Minute)
		rep := runCheck(t, archiver, 0, "--slot", "walvault", "--archive-test", "--archive-timeout", "60s")
		rep.allOK(t)
		rep.expect(t, "archiving", "OK", []string{"walvault stream is connected"}, nil)
		rep.expect(t, "slot", "OK", []string{"active"}, nil)
		st.MustTerminate()
	}
}
