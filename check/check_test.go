package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func testOptions() *Options {
	return &Options{MaxWALAge: 10 * time.Minute, MaxBackupAge: 8 * 24 * time.Hour, Command: "walvault",
		ConfigArgs: "--config /etc/walvault/walvault.conf", Now: func() time.Time { return now }}
}

func healthyPG() *postgresFacts {
	return &postgresFacts{
		Version: "15.18", SystemIdentifier: 7311, Major: 15, SegSize: 16 << 20,
		Settings: map[string]setting{
			"wal_level":       {Value: "replica"},
			"archive_mode":    {Value: "on"},
			"archive_command": {Value: "walvault wal-push --config /etc/walvault/walvault.conf %p"},
			"max_wal_senders": {Value: "10"},
		},
		Archiver:       archiverStats{ArchivedCount: 10, LastArchivedWAL: "00000001000000000000000A", LastArchivedTime: now.Add(-time.Minute)},
		CurrentWALFile: "00000001000000000000000B",
	}
}

// want checks a result's status and that its message and fix hold the
// given substrings.
func want(t *testing.T, r Result, status Status, inMessage, inFix string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %s (%s), want %s", r.Name, r.Status, r.Message, status)
	}
	if !strings.Contains(r.Message, inMessage) {
		t.Errorf("%s: message %q does not mention %q", r.Name, r.Message, inMessage)
	}
	if !strings.Contains(r.Fix, inFix) {
		t.Errorf("%s: fix %q does not mention %q", r.Name, r.Fix, inFix)
	}
	if status != OK && r.Fix == "" {
		t.Errorf("%s: %s without a fix", r.Name, status)
	}
}

func TestOverallStatus(t *testing.T) {
	tests := []struct {
		in   []Status
		want Status
	}{
		{nil, OK},
		{[]Status{OK, OK}, OK},
		{[]Status{OK, Warning}, Warning},
		{[]Status{Warning, Unknown}, Unknown},
		{[]Status{Unknown, Critical, Warning}, Critical},
	}
	for _, tc := range tests {
		var r Report
		for _, s := range tc.in {
			r.add(Result{Name: "x", Status: s, Fix: "do"})
		}
		if r.Status != tc.want {
			t.Errorf("%v: overall %s, want %s", tc.in, r.Status, tc.want)
		}
		if r.Status.ExitCode() != map[Status]int{OK: 0, Warning: 1, Critical: 2, Unknown: 3}[tc.want] {
			t.Errorf("%s: exit code %d", r.Status, r.Status.ExitCode())
		}
	}
	var r Report
	r.add(Result{Name: "x", Status: OK, Fix: "leftover"})
	if r.Checks[0].Fix != "" {
		t.Errorf("an OK result kept its fix")
	}
}

func TestJudgePostgres(t *testing.T) {
	o := testOptions()
	set := func(f *postgresFacts, name, value string, pending bool) *postgresFacts {
		f.Settings[name] = setting{Value: value, PendingRestart: pending}
		return f
	}
	want(t, judgeWALLevel(healthyPG()), OK, "replica", "")
	want(t, judgeWALLevel(set(healthyPG(), "wal_level", "minimal", false)), Critical, "minimal", "wal_level = 'replica'")

	want(t, judgeArchiving(healthyPG(), o), OK, "archive_mode = on", "")
	want(t, judgeArchiving(set(healthyPG(), "archive_timeout", "0", false), o), OK, "archive_timeout = 0, so on a quiet server", "")
	want(t, judgeArchiving(set(healthyPG(), "archive_mode", "off", false), o), Critical, "no walvault stream",
		"ALTER SYSTEM SET archive_mode = 'on'; ALTER SYSTEM SET archive_command = 'walvault wal-push --config /etc/walvault/walvault.conf %p'")
	want(t, judgeArchiving(set(healthyPG(), "archive_mode", "off", true), o), Critical, "waits for a restart", "restart")
	want(t, judgeArchiving(set(healthyPG(), "archive_command", "cp %p /mnt/archive/%f", false), o), Critical,
		"does not hand %p to walvault wal-push", "pg_reload_conf")
	want(t, judgeArchiving(set(healthyPG(), "archive_command", "", false), o), Critical, "archive_command is empty", "archive_command")
	want(t, judgeArchiving(set(healthyPG(), "archive_library", "basic_archive", false), o), Critical, "archive_library = 'basic_archive'", "ALTER SYSTEM RESET archive_library")

	streaming := set(healthyPG(), "archive_mode", "off", false)
	streaming.Senders = []sender{{ApplicationName: "walvault", State: "streaming"}}
	want(t, judgeArchiving(streaming, o), OK, "walvault stream is connected", "")
	bySlot := set(healthyPG(), "archive_mode", "off", false)
	bySlot.Slots = []slot{{Name: "vault", Type: "physical", Active: true}}
	ob := *o
	ob.Slot = "vault"
	want(t, judgeArchiving(bySlot, &ob), OK, "slot vault", "")
	want(t, judgeArchiving(bySlot, o), Critical, "no walvault stream", "archive_mode") // not the configured slot

	standby := healthyPG()
	standby.InRecovery = true
	want(t, judgeArchiving(standby, o), Warning, "standby", "archive_mode = 'always'")

	r, ok := judgeArchiver(healthyPG(), o)
	if !ok {
		t.Fatal("archiver not judged with archive_mode = on")
	}
	want(t, r, OK, "last archived 00000001000000000000000A 1m0s ago", "")
	failing := healthyPG()
	failing.Archiver.FailedCount = 7
	failing.Archiver.LastFailedWAL = "00000001000000000000000B"
	failing.Archiver.LastFailedTime = now.Add(-10 * time.Second)
	r, _ = judgeArchiver(failing, o)
	want(t, r, Critical, "7 failures, the last for 00000001000000000000000B", "walvault wal-push --config /etc/walvault/walvault.conf pg_wal/00000001000000000000000B")
	recovered := healthyPG()
	recovered.Archiver.FailedCount = 2
	recovered.Archiver.LastFailedTime = now.Add(-time.Hour)
	r, _ = judgeArchiver(recovered, o)
	want(t, r, OK, "2 earlier failures", "")
	if _, ok := judgeArchiver(set(healthyPG(), "archive_mode", "off", false), o); ok {
		t.Errorf("archiver judged with archive_mode = off")
	}

	want(t, judgeWALSenders(healthyPG()), OK, "10, 0 in use", "")
	want(t, judgeWALSenders(set(healthyPG(), "max_wal_senders", "0", false)), Critical, "need a replication connection", "max_wal_senders = 5")
	full := set(healthyPG(), "max_wal_senders", "1", false)
	full.Senders = []sender{{ApplicationName: "replica1", State: "streaming"}}
	want(t, judgeWALSenders(full), Warning, "none free", "max_wal_senders = 3")
}

func TestJudgeSlot(t *testing.T) {
	o := testOptions()
	o.Slot = "walvault"
	f := healthyPG()
	want(t, judgeSlot(f, o), Critical, "does not exist", "pg_create_physical_replication_slot('walvault', true)")
	f.Slots = []slot{{Name: "walvault", Type: "physical", Retained: 3 << 30}}
	want(t, judgeSlot(f, o), Critical, "holds 3.0 GiB", "pg_drop_replication_slot('walvault')")
	f.Slots = []slot{{Name: "walvault", Type: "logical", Active: true}}
	want(t, judgeSlot(f, o), Critical, "logical", "--create-slot")
	f.Slots = []slot{{Name: "walvault", Type: "physical", Active: true, Retained: 1 << 20}}
	want(t, judgeSlot(f, o), OK, "active", "")
}

// repoFacts builds listing facts: segments 1..n on timeline 1, each stored
// at the given time, and backups by id.
func repoFacts(segs map[uint64]time.Time, backups ...string) *repositoryFacts {
	f := &repositoryFacts{Where: "file:///r", Config: repo.Config{Format: 1, SystemIdentifier: "7311", PGMajor: 15, WALSegmentSize: 16 << 20, Encryption: "age"}}
	for n, at := range segs {
		name := pgwal.SegmentName(1, n, 16<<20)
		fn, _ := pgwal.ParseFileName(name)
		f.Segments = append(f.Segments, repo.WALObject{File: fn, Key: repo.WALKey(fn), ModTime: at})
		if at.After(f.NewestUpload) {
			f.NewestUpload, f.NewestName = at, name
		}
	}
	f.Backups = backups
	return f
}

func TestJudgeWAL(t *testing.T) {
	o := testOptions()
	old := now.Add(-3 * time.Hour)
	// A quiet server: the newest stored segment is old, but the server
	// still writes the next one; nothing waits.
	quiet := repoFacts(map[uint64]time.Time{9: old, 10: old})
	want(t, judgeWAL(quiet, healthyPG(), o), OK, "no finished segment waits", "")
	// Segments 0xB.. finished, nothing stored for 3 hours.
	pg := healthyPG()
	pg.CurrentWALFile = "00000001000000000000000E"
	want(t, judgeWAL(quiet, pg, o), Critical, "3 finished segment(s) before 00000001000000000000000E", "fix archiving")
	// Still arriving: a backlog, not a failure.
	busy := repoFacts(map[uint64]time.Time{10: now.Add(-5 * time.Second)})
	want(t, judgeWAL(busy, pg, o), OK, "3 finished segment(s) still on their way", "")
	want(t, judgeWAL(repoFacts(nil), pg, o), Critical, "holds no WAL", "pg_switch_wal")
	want(t, judgeWAL(quiet, nil, o), Warning, "position is unknown", "")
}

func TestJudgeContinuity(t *testing.T) {
	o := testOptions()
	before, after := now.Add(-2*time.Hour), now.Add(-time.Minute)
	id := repo.NewBackupID(now.Add(-time.Hour))
	ok := repoFacts(map[uint64]time.Time{1: before, 2: before, 3: after, 4: after, 5: after}, id)
	r, judged := judgeContinuity(ok, o)
	if !judged {
		t.Fatal("continuity not judged")
	}
	want(t, r, OK, "no segment missing from 000000010000000000000003 to 000000010000000000000005", "")
	gap := repoFacts(map[uint64]time.Time{1: before, 3: after, 5: after, 6: after}, id)
	r, _ = judgeContinuity(gap, o)
	want(t, r, Critical, "1 segment(s) missing after backup "+id+", the first 000000010000000000000004", "walvault backup --config")
	// A gap before the backup started does not matter to it.
	oldGap := repoFacts(map[uint64]time.Time{1: before, 3: before, 4: after, 5: after}, id)
	r, _ = judgeContinuity(oldGap, o)
	want(t, r, OK, "no segment missing", "")
	if _, judged := judgeContinuity(repoFacts(map[uint64]time.Time{1: before}), o); judged {
		t.Errorf("continuity judged without a backup")
	}
}

func TestJudgeBackup(t *testing.T) {
	o := testOptions()
	want(t, judgeBackup(repoFacts(nil), o), Critical, "no complete backup", "walvault backup --config /etc/walvault/walvault.conf")
	fresh := repoFacts(nil, repo.NewBackupID(now.Add(-30*24*time.Hour)), repo.NewBackupID(now.Add(-25*time.Hour)))
	want(t, judgeBackup(fresh, o), OK, "started 25h0m0s ago (2 complete)", "")
	old := repoFacts(nil, repo.NewBackupID(now.Add(-9*24*time.Hour)))
	want(t, judgeBackup(old, o), Warning, "more than --max-backup-age 8d0h", "walvault backup")
	unreadable := repoFacts(nil, repo.NewBackupID(now.Add(-time.Hour)))
	unreadable.ManifestErr = repo.ErrWrongKey
	want(t, judgeBackup(unreadable, o), Warning, "cannot be read with the configured identity", "verify --config /etc/walvault/walvault.conf --backup")
	other := repoFacts(nil, repo.NewBackupID(now.Add(-time.Hour)))
	other.Manifest = &repo.BackupManifest{SystemIdentifier: "42"}
	want(t, judgeBackup(other, o), Critical, "system identifier 42", "verify")
}

func TestJudgeRepository(t *testing.T) {
	o := testOptions()
	f := repoFacts(nil)
	want(t, judgeRepository(f, healthyPG(), o), OK, "system identifier 7311, PostgreSQL 15, 16.0 MiB segments", "")
	pg := healthyPG()
	pg.SystemIdentifier, pg.Major = 99, 16
	want(t, judgeRepository(f, pg, o), Critical, "system identifier 7311, this server is 99; it holds PostgreSQL 15, this server runs 16", "init --config /etc/walvault/walvault.conf --repo NEW-URL")
	want(t, judgeRepository(&repositoryFacts{Where: "file:///r", Err: repo.ErrNotInitialized}, pg, o), Critical, "not initialized", "walvault init --config")
	want(t, judgeRepository(&repositoryFacts{Where: "file:///r", Err: repo.ErrUnsupportedFormat}, pg, o), Critical, "unsupported", "upgrade walvault")
	want(t, judgeRepository(&repositoryFacts{Err: errors.New("no repository configured")}, pg, o), Critical, "no repository configured", "repo = ")
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJudgeRecipients(t *testing.T) {
	id, other := repotest.NewIdentity(t), repotest.NewIdentity(t)
	idFile := writeFile(t, "id.txt", id.String()+"\n")
	otherFile := writeFile(t, "other.txt", other.String()+"\n")
	f := repoFacts(nil)
	o := testOptions()

	want(t, judgeRecipients(f, o), Critical, "no age recipients", "age-recipients = age1")
	o.Recipients = "age1notakey"
	want(t, judgeRecipients(f, o), Critical, "age-recipients", "correct the recipients")
	o.Recipients = id.Recipient().String()
	want(t, judgeRecipients(f, o), OK, "1 recipient(s) parse", "")
	o.RecipientsFile = writeFile(t, "recipients.txt", other.Recipient().String()+"\n")
	want(t, judgeRecipients(f, o), OK, "2 recipient(s) parse", "")

	o.RecipientsFile = ""
	o.IdentityFile = idFile
	f.identities, f.identityErr = loadIDs(idFile)
	want(t, judgeRecipients(f, o), OK, "the configured identity reads what they encrypt", "")
	o.IdentityFile = otherFile
	f.identities, f.identityErr = loadIDs(otherFile)
	want(t, judgeRecipients(f, o), Warning, "cannot read what they encrypt", "age-identity-file")

	plain := repoFacts(nil)
	plain.Config.Encryption = repo.EncryptionNone
	want(t, judgeRecipients(plain, testOptions()), OK, "not encrypted", "")
	withKeys := testOptions()
	withKeys.Recipients = id.Recipient().String()
	want(t, judgeRecipients(plain, withKeys), Critical, "says the repository is not encrypted, but this host is configured with age keys", `"encryption": "age"`)
}

func loadIDs(path string) ([]age.Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return age.ParseIdentities(bytes.NewReader(b))
}

// TestRunWithoutServer: with PostgreSQL unreachable, every server check
// says so, and the repository is still judged from its listing, without
// the identity.
func TestRunWithoutServer(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.WithConfig(func(c *repo.Config) {
		c.SystemIdentifier, c.WALSegmentSize, c.CreatedAt = "7311", 16<<20, now
	}))
	tr.Write(t, repo.WALSegmentKey(1, 3, 16<<20), make([]byte, 16<<10))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close() // nothing listens there now

	o := *testOptions()
	o.Now = nil
	o.Store = tr.Store
	o.Recipients = tr.Identity.Recipient().String()
	o.ConnString = "host=127.0.0.1 port=" + itoa(addr.Port) + " user=postgres password=s3cret-pw connect_timeout=5"
	rep := Run(ctx, o)
	byName := map[string]Result{}
	for _, c := range rep.Checks {
		byName[c.Name] = c
	}
	want(t, byName["postgres"], Critical, "cannot connect", "pg-url")
	want(t, byName["wal_level"], Unknown, "not checked", "")
	want(t, byName["repository"], OK, "system identifier 7311", "")
	want(t, byName["recipients"], OK, "1 recipient(s)", "")
	want(t, byName["wal"], OK, "000000010000000000000003", "")
	want(t, byName["backup"], Critical, "no complete backup", "backup")
	if rep.Status != Critical {
		t.Errorf("overall %s, want CRITICAL", rep.Status)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "WALVAULT CRITICAL - postgres: cannot connect") {
		t.Errorf("first line: %q", strings.SplitN(out.String(), "\n", 2)[0])
	}
	if strings.Contains(out.String(), "s3cret-pw") {
		t.Errorf("the report shows the password:\n%s", out.String())
	}
}

func TestJudgeLocks(t *testing.T) {
	o := testOptions()
	f := &repositoryFacts{Where: "s3://bucket/prod"}
	if _, ok := judgeLocks(f, o); ok {
		t.Error("a result without any lock object")
	}
	live := repo.LockInfo{Key: "locks/shared.backup.1.a", Kind: repo.LockShared, Command: "backup", Expires: now.Add(time.Minute)}
	f.Locks = []repo.LockInfo{live, {Key: "locks/exclusive.expire.2.b", Kind: repo.LockExclusive, Command: "expire", Expires: now.Add(-time.Hour)}}
	r, _ := judgeLocks(f, o)
	want(t, r, OK, "backup holds shared lock until 2026-11-24T12:01:00Z", "")
	planted := repo.LockInfo{Key: "locks/exclusive.expire.99999999999.c", Kind: repo.LockExclusive, Command: "expire", Expires: time.Date(5138, 11, 16, 9, 46, 39, 0, time.UTC)}
	f.Locks = append(f.Locks, planted)
	f.MalformedLocks = []string{"locks/garbage"}
	r, _ = judgeLocks(f, o)
	want(t, r, Warning, "2 object(s) under locks/", "delete those objects")
	for _, w := range []string{planted.Key, "5138-11-16", "locks/garbage"} {
		if !strings.Contains(r.Message, w) {
			t.Errorf("message does not mention %s: %s", w, r.Message)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The segment is named from the LSN, the same on every major: at a
// boundary, the segment that starts there (current position) or the one
// before it (a switch point).
func TestSegmentAt(t *testing.T) {
	const seg = 16 << 20
	for _, tc := range []struct {
		lsn, name string
		back      int
		want      string
	}{
		{"0/B000000", "00000001000000000000000A", 0, "00000001000000000000000B"}, // PG 13–16 name the one before
		{"0/B000000", "00000001000000000000000B", 1, "00000001000000000000000A"}, // PG 17+ name the next
		{"0/B000028", "00000002000000000000000B", 0, "00000002000000000000000B"},
		{"1/0", "000000030000000100000000", 1, "0000000300000000000000FF"},
		{"x", "00000001000000000000000B", 0, ""},
		{"0/0", "00000001000000000000000B", 1, ""},
	} {
		if got := segmentAt(tc.lsn, tc.name, seg, pgwal.LSN(tc.back)); got != tc.want {
			t.Errorf("segmentAt(%s, %s, back %d) = %q, want %q", tc.lsn, tc.name, tc.back, got, tc.want)
		}
	}
}

// TestJudgeWriter: the writer check of a format-2 repository, and of a
// format-1 one on a host with format-2 keys.
func TestJudgeWriter(t *testing.T) {
	root, err := crypto.GenerateRootKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := crypto.GenerateRootKey()
	if err != nil {
		t.Fatal(err)
	}
	w, err := root.Issue("db1", now, []string{"age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "writer.key", string(w.Marshal()))
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	signed := func() *repositoryFacts {
		f := repoFacts(nil)
		f.Config.Format, f.Config.Root = repo.FormatSigned, root.Public().String()
		f.writer = w
		return f
	}
	o := testOptions()
	if _, ok := judgeWriter(repoFacts(nil), o); ok {
		t.Error("a format-1 repository on a host without format-2 keys has a writer check")
	}
	o.WriterKeyFile = keyFile
	want(t, mustJudgeWriter(t, signed(), o), OK, `writer "db1"`, "")

	f := signed()
	f.writer = nil
	noKey := testOptions()
	want(t, mustJudgeWriter(t, f, noKey), Critical, "no writer key", "walvault writer issue")
	f.writerErr = errors.New("writer key file /x: line 1: not part of a walvault writer key file")
	want(t, mustJudgeWriter(t, f, o), Critical, "cannot be used", "writer issue")

	f = signed()
	f.configErr = fmt.Errorf("%w: not signed by a trusted writer", repo.ErrIntegrity)
	f.Config.Root = other.Public().String()
	want(t, mustJudgeWriter(t, f, o), Critical, "cannot be verified", "rekey")
	f.configErr = nil
	want(t, mustJudgeWriter(t, f, o), Warning, "rotation is under way", "rekey")

	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, mustJudgeWriter(t, signed(), o), Warning, "0644", "chmod 600")

	f = repoFacts(nil)
	f.unsignedErr = errors.New("format 1 (unsigned), but this host holds a format-2 key")
	want(t, mustJudgeWriter(t, f, o), Critical, "format-2 key", "allow-unsigned-repository")
}

func mustJudgeWriter(t *testing.T, f *repositoryFacts, o *Options) Result {
	t.Helper()
	r, ok := judgeWriter(f, o)
	if !ok {
		t.Fatalf("no writer check for %+v", f.Config)
	}
	return r
}
