package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
)

// Bad input: damaged, truncated, missing and foreign objects, and nonsense
// on the command line. Each command must exit with its documented code,
// say what is wrong and name the thing, and leave the repository exactly as
// it was. What other files already prove (TestVerify: a flipped WAL
// segment, chunk and manifest under verify; TestDamagedWALFailsRecovery:
// wal-fetch of a flipped, truncated or header-damaged segment and the
// recovery it aborts; TestWrongIdentity: restore and wal-fetch with the
// wrong key; TestCLIErrors: unknown command and flag, malformed LSN and
// time, targets outside the window; TestWALPushIdempotency: wal-push of
// another cluster's segment) is not repeated here.

// badRun is one command against a bad repository or with bad arguments.
type badRun struct {
	args     []string
	exit     int
	mentions []string // substrings of stdout+stderr
	env      []string // more environment (later wins)
}

// expectBad runs each command, checking its exit status, that it explains
// itself, that the repository under dir is unchanged (contents of every
// object), and that a failed restore left no startable data directory.
func expectBad(t *testing.T, h *Harness, w *Walvault, dir string, runs ...badRun) {
	t.Helper()
	for _, run := range runs {
		before := treeDigest(t, dir)
		ww := w
		if len(run.env) > 0 {
			ww = w.With(run.env...)
		}
		stdout, stderr, exit := ww.Run(run.args...)
		line := "walvault " + strings.Join(run.args, " ")
		if exit != run.exit {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", line, exit, run.exit, tail(stdout, 10), tail(stderr, 10))
		}
		if strings.TrimSpace(stderr) == "" {
			t.Errorf("%s: exit %d with nothing on stderr", line, exit)
		}
		for _, m := range run.mentions {
			if !strings.Contains(stdout+stderr, m) {
				t.Errorf("%s: output does not mention %q:\n%s%s", line, m, tail(stdout, 10), tail(stderr, 10))
			}
		}
		if after := treeDigest(t, dir); after != before {
			t.Errorf("%s changed the repository", line)
		}
		if run.args[0] == "restore" && exit != 0 {
			for i, a := range run.args {
				if a == "--pgdata" && i+1 < len(run.args) {
					if _, err := os.Stat(filepath.Join(run.args[i+1], "recovery.signal")); err == nil {
						t.Errorf("%s failed but left a startable data directory (recovery.signal)", line)
					}
				}
			}
		}
	}
}

// flipBit flips one bit in the middle of the object's body (after the
// 48-byte header; walvault.json has none).
func flipBit(t *testing.T, path string, offset int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if offset < 0 {
		offset = objectHeaderLen + (len(b)-objectHeaderLen)/2
	}
	b[offset] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncateFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// inProcess opens a copied file repository with the walvault packages
// themselves, with all of its keys (Repo.Options), to write objects no
// command writes on demand (a streamed partial, a manifest of a future
// format). The caller hands the tree back to the PostgreSQL user with
// ChownTree.
func inProcess(t *testing.T, r *Repo) *repo.Repository {
	t.Helper()
	st, err := local.New(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := repo.Open(context.Background(), st, r.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.Close() })
	return rp
}

// baseChunks returns the paths of the fixture backup's base.tar chunks.
func baseChunks(t *testing.T, r *Repo, id string) []string {
	t.Helper()
	chunks, err := filepath.Glob(filepath.Join(r.Dir, "backups", id, "data", "base.tar", "*"))
	if err != nil || len(chunks) == 0 {
		t.Fatalf("no base.tar chunks under backup %s: %v", id, err)
	}
	sort.Strings(chunks)
	return chunks
}

func rel(r *Repo, path string) string { return strings.TrimPrefix(path, r.Dir+"/") }

// TestBadInputBitFlip: one flipped bit in each kind of object that the
// other tests do not cover is found by verify (exit 6, naming the object)
// and by the command that reads it for a restore (restore exit 6, wal-fetch
// exit 255 so that PostgreSQL aborts recovery).
func TestBadInputBitFlip(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)

	// A timeline history file, pushed as PostgreSQL pushes one: timeline 2
	// forks after everything archived, so the repository stays restorable.
	historyRepo := f.copyRepo(h, "history")
	wv := historyRepo.Walvault(h)
	hist := filepath.Join(h.Mkdir(h.Path("files"), 0o755), "00000002.history")
	h.WriteFile(hist, []byte("1\t0/F0000000\tno recovery target specified\n"), 0o600)
	wv.MustRun("wal-push", hist)
	wv.MustRun("verify") // control: the history file as pushed is fine
	histKey := "wal/00000002/00000002.history"
	flipBit(t, filepath.Join(historyRepo.Dir, histKey), -1)
	expectBad(t, h, wv, historyRepo.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{histKey}},
		badRun{args: []string{"wal-fetch", "00000002.history", h.Path("fetched.history")}, exit: 255, mentions: []string{"00000002.history"}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-history")}, exit: 6, mentions: []string{histKey}},
	)

	// A backup chunk, read by restore (verify's side: TestVerify).
	chunkRepo := f.copyRepo(h, "chunk")
	chunk := baseChunks(t, chunkRepo, f.BackupID)[0]
	flipBit(t, chunk, -1)
	expectBad(t, h, chunkRepo.Walvault(h), chunkRepo.Dir,
		badRun{args: []string{"restore", "--pgdata", h.Path("r-chunk")}, exit: 6, mentions: []string{rel(chunkRepo, chunk)}},
	)

	// The backup manifest, read by restore and info.
	manRepo := f.copyRepo(h, "manifest")
	manKey := repo.BackupManifestKey(f.BackupID)
	flipBit(t, filepath.Join(manRepo.Dir, manKey), -1)
	expectBad(t, h, manRepo.Walvault(h), manRepo.Dir,
		badRun{args: []string{"restore", "--pgdata", h.Path("r-manifest")}, exit: 6, mentions: []string{manKey}},
		badRun{args: []string{"info"}, exit: 6, mentions: []string{manKey}},
	)

	// A streamed partial (walvault stream's newest WAL): the last segment
	// exists only as a prefix under stream/.
	partRepo := f.copyRepo(h, "partial")
	last := f.MarkSegs[len(f.MarkSegs)-1]
	rp := inProcess(t, partRepo)
	segKey := "wal/" + last[:8] + "/" + last
	plain, _, err := rp.Get(context.Background(), segKey)
	if err != nil {
		t.Fatal(err)
	}
	valid := int64(64 << 10)
	partKey := repo.StreamPartialKey(1, last, valid)
	if _, err := rp.Put(context.Background(), partKey, plain[:valid], storage.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(partRepo.Dir, segKey)); err != nil {
		t.Fatal(err)
	}
	h.ChownTree(partRepo.Dir)
	pw := partRepo.Walvault(h)
	pw.MustRun("wal-fetch", last, h.Path("fetched-partial")) // control: the partial serves the segment
	flipBit(t, filepath.Join(partRepo.Dir, partKey), -1)
	expectBad(t, h, pw, partRepo.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{partKey}},
		badRun{args: []string{"wal-fetch", last, h.Path("fetched-partial-2")}, exit: 255, mentions: []string{last}},
	)

	// walvault.json: a bit that breaks the JSON ('{' becomes 'z').
	cfgRepo := f.copyRepo(h, "config")
	flipBit(t, filepath.Join(cfgRepo.Dir, repo.ConfigKey), 0)
	cw := cfgRepo.Walvault(h)
	expectBad(t, h, cw, cfgRepo.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{repo.ConfigKey}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-config")}, exit: 6, mentions: []string{repo.ConfigKey}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[0], h.Path("fetched-config")}, exit: 255, mentions: []string{repo.ConfigKey}},
	)

	// walvault.json: a bit in the system identifier's last digit. The file
	// would then be a valid configuration of another cluster, but its
	// writer's signature (format 2) no longer matches: verify blames it as
	// altered, restore refuses it as damage (exit 6), wal-fetch every
	// segment (255). Another cluster's repository that is properly signed
	// is TestBadInputOtherCluster's (exit 4).
	sysRepo := f.copyRepo(h, "config-sysid")
	sysPath := filepath.Join(sysRepo.Dir, repo.ConfigKey)
	b, err := os.ReadFile(sysPath)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(b), f.SystemID)
	if at < 0 {
		t.Fatalf("%s does not hold the system identifier %s:\n%s", repo.ConfigKey, f.SystemID, b)
	}
	flipBit(t, sysPath, at+len(f.SystemID)-1)
	sw := sysRepo.Walvault(h)
	expectBad(t, h, sw, sysRepo.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{"PROBLEM " + repo.ConfigKey, "altered"}},
		badRun{args: []string{"verify", "--backups-only"}, exit: 6, mentions: []string{"PROBLEM " + repo.ConfigKey, "altered"}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-sysid")}, exit: 6, mentions: []string{repo.ConfigKey, "altered"}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[0], h.Path("fetched-sysid")}, exit: 255, mentions: []string{f.MarkSegs[0], repo.ConfigKey, "altered"}},
	)
}

// TestBadInputTruncatedOrMissing: objects cut short or gone.
func TestBadInputTruncatedOrMissing(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	manKey := repo.BackupManifestKey(f.BackupID)

	truncRepo := f.copyRepo(h, "truncated")
	chunk := baseChunks(t, truncRepo, f.BackupID)[0]
	truncateFile(t, chunk)
	truncateFile(t, filepath.Join(truncRepo.Dir, manKey))
	expectBad(t, h, truncRepo.Walvault(h), truncRepo.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{rel(truncRepo, chunk), manKey}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-trunc")}, exit: 6, mentions: []string{manKey}},
	)

	chunkRepo := f.copyRepo(h, "chunk-missing")
	chunk = baseChunks(t, chunkRepo, f.BackupID)[0]
	if err := os.Remove(chunk); err != nil {
		t.Fatal(err)
	}
	expectBad(t, h, chunkRepo.Walvault(h), chunkRepo.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{rel(chunkRepo, chunk), "missing"}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-chunk")}, exit: 6, mentions: []string{rel(chunkRepo, chunk)}},
	)

	// Without its manifest a backup is unfinished: nothing to restore.
	manRepo := f.copyRepo(h, "manifest-missing")
	if err := os.Remove(filepath.Join(manRepo.Dir, manKey)); err != nil {
		t.Fatal(err)
	}
	expectBad(t, h, manRepo.Walvault(h), manRepo.Dir,
		badRun{args: []string{"restore", "--pgdata", h.Path("r-man")}, exit: 4, mentions: []string{"backup"}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-man2"), "--backup", f.BackupID}, exit: 4, mentions: []string{f.BackupID}},
	)

	cfgRepo := f.copyRepo(h, "config-missing")
	if err := os.Remove(filepath.Join(cfgRepo.Dir, repo.ConfigKey)); err != nil {
		t.Fatal(err)
	}
	segPath := h.Path("seg", f.MarkSegs[0])
	h.Mkdir(filepath.Dir(segPath), 0o755)
	f.Repo.Walvault(h).MustRun("wal-fetch", f.MarkSegs[0], segPath)
	expectBad(t, h, cfgRepo.Walvault(h), cfgRepo.Dir,
		badRun{args: []string{"verify"}, exit: 4, mentions: []string{"walvault init"}},
		badRun{args: []string{"info"}, exit: 4, mentions: []string{"walvault init"}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-cfg")}, exit: 4, mentions: []string{"walvault init"}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[0], h.Path("fetched-cfg")}, exit: 255, mentions: []string{"walvault init"}},
		badRun{args: []string{"wal-push", segPath}, exit: 4, mentions: []string{"walvault init"}},
	)

	// An empty WAL object (a store that lost the body).
	emptyRepo := f.copyRepo(h, "empty-wal")
	if err := os.Truncate(walObjectPath(emptyRepo, f.MarkSegs[1]), 0); err != nil {
		t.Fatal(err)
	}
	expectBad(t, h, emptyRepo.Walvault(h), emptyRepo.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{f.MarkSegs[1]}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[1], h.Path("fetched-empty")}, exit: 255, mentions: []string{f.MarkSegs[1]}},
	)
}

// TestBadInputFutureFormat: a manifest or a repository written by a newer
// walvault is refused with exit 4 and the advice to upgrade, never guessed
// at.
func TestBadInputFutureFormat(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	ctx := context.Background()
	manKey := repo.BackupManifestKey(f.BackupID)

	manRepo := f.copyRepo(h, "manifest")
	rp := inProcess(t, manRepo)
	plain, _, err := rp.Get(ctx, manKey)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(plain, &m); err != nil {
		t.Fatal(err)
	}
	m["format"] = repo.FormatVersion + 1
	future, _ := json.Marshal(m)
	if err := os.Remove(filepath.Join(manRepo.Dir, manKey)); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Put(ctx, manKey, future, storage.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	h.ChownTree(manRepo.Dir)
	newer := "newer than this walvault reads"
	expectBad(t, h, manRepo.Walvault(h), manRepo.Dir,
		badRun{args: []string{"restore", "--pgdata", h.Path("r-man")}, exit: 4, mentions: []string{f.BackupID, newer}},
		badRun{args: []string{"info"}, exit: 4, mentions: []string{f.BackupID, newer}},
		badRun{args: []string{"verify"}, exit: 4, mentions: []string{manKey, newer}},
	)

	cfgRepo := f.copyRepo(h, "config")
	cfgPath := filepath.Join(cfgRepo.Dir, repo.ConfigKey)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["format"] = repo.FormatVersion + 1
	b, _ = json.Marshal(c)
	h.WriteFile(cfgPath, b, 0o644)
	expectBad(t, h, cfgRepo.Walvault(h), cfgRepo.Dir,
		badRun{args: []string{"info"}, exit: 4, mentions: []string{newer, "upgrade"}},
		badRun{args: []string{"verify"}, exit: 4, mentions: []string{newer}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r-cfg")}, exit: 4, mentions: []string{newer}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[0], h.Path("fetched")}, exit: 255, mentions: []string{newer}},
	)
}

// TestBadInputOtherCluster: a repository that belongs to another cluster is
// refused by every writer, and another cluster's segment planted under a
// name of this one is damage to every reader.
func TestBadInputOtherCluster(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	r := f.copyRepo(h, "repo")

	other := h.InitCluster("other")
	otherRepo := *r
	otherRepo.Dir = h.Path("other-repo")
	otherRepo.URL = "file://" + otherRepo.Dir
	// Another host of the same organisation: a writer the same root
	// certified, so that only the cluster tells the two apart.
	otherRepo.WriterKeyFile = h.WriterKey(r.IdentityFile, h.Path("other-writer.key"), "e2e-other")
	otherRepo.Env = []string{"WALVAULT_REPO=" + otherRepo.URL, "WALVAULT_AGE_RECIPIENTS=" + r.Recipient, "WALVAULT_AGE_IDENTITY_FILE=" + r.IdentityFile,
		"WALVAULT_WRITER_KEY_FILE=" + otherRepo.WriterKeyFile}
	other.Env = otherRepo.Env
	other.ConfigureArchiving(suite.walvault + " wal-push %p")
	other.Start()
	otherSys := other.SystemIdentifier()
	otherRepo.Walvault(h, other.LibpqEnv()...).MustRun("init")
	seg := other.SwitchAndWaitArchived()

	// Writers pointed at this repository from the other cluster.
	ow := r.Walvault(h, other.LibpqEnv()...)
	ow.Timeout = 2 * time.Minute // stream must give up, not retry
	spool := h.Mkdir(h.Path("spool"), 0o700)
	expectBad(t, h, ow, r.Dir,
		badRun{args: []string{"init"}, exit: 4, mentions: []string{f.SystemID, otherSys}},
		badRun{args: []string{"backup", "--fast"}, exit: 4, mentions: []string{f.SystemID, otherSys}},
		badRun{args: []string{"stream", "--spool", spool, "--create-slot"}, exit: 4, mentions: []string{f.SystemID, otherSys}},
	)
	other.Stop("fast")

	// The other cluster's segment under the name this repository holds.
	planted := walObjectPath(r, seg)
	if _, err := os.Stat(planted); err != nil {
		t.Fatalf("the fixture does not hold %s, which the other cluster archived: %v", seg, err)
	}
	b, err := os.ReadFile(walObjectPath(&otherRepo, seg))
	if err != nil {
		t.Fatal(err)
	}
	h.WriteFile(planted, b, 0o644)
	expectBad(t, h, r.Walvault(h), r.Dir,
		badRun{args: []string{"wal-fetch", seg, h.Path("fetched")}, exit: 255, mentions: []string{seg, "system " + otherSys, "system " + f.SystemID}},
		badRun{args: []string{"verify", "--wal-only"}, exit: 6, mentions: []string{rel(r, planted)}},
	)
}

// TestBadInputKeys: reading without an identity, or with one that cannot
// be loaded, is a configuration error (exit 3; wal-fetch 255) naming the
// setting; verify with the wrong identity is an integrity failure.
func TestBadInputKeys(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	r := f.copyRepo(h, "repo")
	noID := h.Walvault("WALVAULT_REPO="+r.URL, "WALVAULT_AGE_RECIPIENTS="+r.Recipient)
	garbage := h.Path("garbage-identity.txt")
	h.WriteFile(garbage, []byte("this is not a key\n"), 0o600)
	other := h.Path("other-identity.txt")
	h.Keygen(other)
	// A writing host of a format-2 repository takes its recipients from
	// its writer key unless told others: without one it has neither.
	noRecipients := h.Walvault("WALVAULT_REPO="+r.URL, "WALVAULT_AGE_IDENTITY_FILE="+r.IdentityFile)
	segPath := h.Path("seg", f.MarkSegs[0])
	h.Mkdir(filepath.Dir(segPath), 0o755)
	r.Walvault(h).MustRun("wal-fetch", f.MarkSegs[0], segPath)

	expectBad(t, h, noID, r.Dir,
		badRun{args: []string{"restore", "--pgdata", h.Path("r1")}, exit: 3, mentions: []string{"age-identity-file"}},
		badRun{args: []string{"verify"}, exit: 3, mentions: []string{"age-identity-file"}},
		badRun{args: []string{"info"}, exit: 3, mentions: []string{"age-identity-file"}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[0], h.Path("fetched")}, exit: 255, mentions: []string{"age-identity-file"}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r2")}, exit: 3, mentions: []string{garbage}, env: []string{"WALVAULT_AGE_IDENTITY_FILE=" + garbage}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r3")}, exit: 3, mentions: []string{h.Path("no-such-key.txt")}, env: []string{"WALVAULT_AGE_IDENTITY_FILE=" + h.Path("no-such-key.txt")}},
		// Another repository's identity file: the key is wrong, and the
		// error says so and what to use.
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{"wrong-key", "identity file"}, env: []string{"WALVAULT_AGE_IDENTITY_FILE=" + other}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r4")}, exit: 6, mentions: []string{"wrong key", "identity file"}, env: []string{"WALVAULT_AGE_IDENTITY_FILE=" + other}},
	)
	expectBad(t, h, noRecipients, r.Dir,
		badRun{args: []string{"wal-push", segPath}, exit: 3, mentions: []string{"writer key", "WALVAULT_WRITER_KEY_FILE"}},
		badRun{args: []string{"wal-push", segPath}, exit: 3, mentions: []string{"age1nonsense"}, env: []string{"WALVAULT_AGE_RECIPIENTS=age1nonsense", "WALVAULT_WRITER_KEY_FILE=" + r.WriterKeyFile}},
	)
}

// TestBadInputArguments: nonsense on the command line is a usage error
// (exit 2; wal-fetch 255) that names the bad value, before anything is
// read or written.
func TestBadInputArguments(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	r := f.copyRepo(h, "repo")
	w := r.Walvault(h)
	pg := func(name string) string { return h.Path(name) }
	notWAL := h.Path("files", "not-a-wal-file")
	h.Mkdir(filepath.Dir(notWAL), 0o755)
	h.WriteFile(notWAL, []byte("hello\n"), 0o600)
	expectBad(t, h, w, r.Dir,
		badRun{args: []string{"restore", "--pgdata", pg("a1"), "--target-timeline", "banana"}, exit: 2, mentions: []string{"banana"}},
		badRun{args: []string{"restore", "--pgdata", pg("a2"), "--target-action", "explode"}, exit: 2, mentions: []string{"explode"}},
		badRun{args: []string{"restore", "--pgdata", pg("a3"), "--target-xid", "abc"}, exit: 2, mentions: []string{"abc"}},
		badRun{args: []string{"restore", "--pgdata", pg("a4"), "--target-time", "2026-11-22 10:00:00"}, exit: 2, mentions: []string{"2026-11-22 10:00:00", "zone"}},
		badRun{args: []string{"restore", "--pgdata", pg("a5"), "--target-lsn", "1/2/3"}, exit: 2, mentions: []string{"1/2/3"}},
		badRun{args: []string{"restore", "--pgdata", pg("a6"), "--backup", "last-tuesday"}, exit: 2, mentions: []string{"last-tuesday"}},
		badRun{args: []string{"restore", "--pgdata", pg("a7"), "--backup", "20000101T000000Z"}, exit: 4, mentions: []string{"20000101T000000Z"}},
		badRun{args: []string{"restore", "--pgdata", pg("a8"), "--tablespace-map", "garbage"}, exit: 2, mentions: []string{"garbage"}},
		badRun{args: []string{"restore", "--pgdata", pg("a9"), "--target-lsn", "FFFFFFFF/0"}, exit: 10, mentions: []string{"FFFFFFFF/0"}},
		badRun{args: []string{"restore", "--pgdata", pg("a10"), "--target-inclusive", "maybe"}, exit: 2, mentions: []string{"maybe"}},
		badRun{args: []string{"restore"}, exit: 2, mentions: []string{"--pgdata"}},
		badRun{args: []string{"restore", "--pgdata", pg("a11"), "--bakcup", f.BackupID}, exit: 2, mentions: []string{"bakcup"}},
		badRun{args: []string{"info", "--compress-level", "9"}, exit: 2, mentions: []string{"9"}},
		badRun{args: []string{"verify", "--workers", "-1"}, exit: 2, mentions: []string{"-1"}},
		badRun{args: []string{"verify", "--wal-only", "--backups-only"}, exit: 2},
		badRun{args: []string{"verify", "--backup", "yesterday"}, exit: 2, mentions: []string{"yesterday"}},
		badRun{args: []string{"verify", "--backup", "20000101T000000Z"}, exit: 2, mentions: []string{"20000101T000000Z"}},
		badRun{args: []string{"wal-fetch", "../../etc/passwd", pg("passwd")}, exit: 255, mentions: []string{"../../etc/passwd"}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[0]}, exit: 255},
		// Not a usage error: archive_command always passes a WAL file, and
		// a file that is not one is refused like any other bad file.
		badRun{args: []string{"wal-push", notWAL}, exit: 1, mentions: []string{"not-a-wal-file", "not a valid WAL file"}},
		badRun{args: []string{"check", "--max-wal-age", "soon"}, exit: 2, mentions: []string{"soon"}},
	)
	for _, name := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10", "a11", "passwd"} {
		if empty, err := dirEmptyOrAbsent(pg(name)); err != nil || !empty {
			t.Errorf("a refused command left files in %s", pg(name))
		}
	}
}

// TestBadInputDamagedOlderManifest: one damaged manifest must not block a
// restore that does not need its backup. With the older backup's manifest
// flipped, restore to the latest point uses the newer backup, warns about
// the damaged one by key, and recovers every commit; info lists the
// readable backup, names the damaged one and exits 6; asking for the
// damaged backup by id fails with exit 6 naming it.
func TestBadInputDamagedOlderManifest(t *testing.T) {
	h := newHarness(t)
	r := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("pg", r)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")
	pg.CommitMarks(1, 2, "between", 0)
	pg.SwitchAndWaitArchived()
	wv.MustRun("backup", "--fast")
	pg.CommitMarks(3, 4, "after", 0)
	pg.SwitchAndWaitArchived()
	info := wv.Info()
	if len(info.Backups) != 2 {
		t.Fatalf("want two backups, info lists %d", len(info.Backups))
	}
	pg.Stop("immediate")
	older := repo.BackupManifestKey(info.Backups[0].ID)
	flipBit(t, filepath.Join(r.Dir, older), -1)

	rw := r.Walvault(h)
	expectBad(t, h, rw, r.Dir,
		badRun{args: []string{"restore", "--pgdata", h.Path("r-older"), "--backup", info.Backups[0].ID}, exit: 6, mentions: []string{older}},
		// Retention must not act on a repository it cannot read whole.
		badRun{args: []string{"expire", "--retain-full", "1", "--confirm"}, exit: 6, mentions: []string{older}},
	)
	// info still lists the readable backup (and the window from it),
	// names the damaged one, and exits with its error.
	stdout, stderr := rw.RunExpect(6, "info")
	if !strings.Contains(stdout, info.Backups[1].ID) || !strings.Contains(stdout, info.Backups[0].ID+"  UNREADABLE") ||
		!strings.Contains(stdout, "recoverable: 20") || !strings.Contains(stderr, older) {
		t.Errorf("info with one damaged manifest: want %s listed, %s unreadable, a window, and %s named:\n%s\n%s", info.Backups[1].ID, info.Backups[0].ID, older, stdout, stderr)
	}
	stdout, _ = rw.RunExpect(6, "info", "--json")
	var js struct {
		Backups    []struct{ ID string }
		Unreadable []struct{ ID, Error string } `json:"unreadable_backups"`
	}
	if err := json.Unmarshal([]byte(stdout), &js); err != nil || len(js.Backups) != 1 || js.Backups[0].ID != info.Backups[1].ID ||
		len(js.Unreadable) != 1 || js.Unreadable[0].ID != info.Backups[0].ID || !strings.Contains(js.Unreadable[0].Error, older) {
		t.Errorf("info --json with one damaged manifest (err %v):\n%s", err, stdout)
	}
	before := treeDigest(t, r.Dir)
	dir := h.Path("restored")
	_, stderr = rw.RunExpect(0, "restore", "--pgdata", dir, "--target-action", "promote")
	if !strings.Contains(stderr, older) || !strings.Contains(stderr, info.Backups[1].ID) {
		t.Errorf("restore does not warn about %s or name the backup it used (%s):\n%s", older, info.Backups[1].ID, stderr)
	}
	if treeDigest(t, r.Dir) != before {
		t.Error("restore changed the repository")
	}
	rc := h.ClusterAt("restored", dir)
	rc.Start()
	rc.WaitPromoted()
	if ids := rc.MarkIDs(); !equalInts(ids, seq(1, 4)) {
		t.Errorf("restored marks %v, want 1..4", ids)
	}
}

// TestBadInputNotesAndAudit: a flipped keep mark or audit record is named
// by verify (exit 6); expire refuses to plan without reading every keep
// mark, and audit names the record it cannot read.
func TestBadInputNotesAndAudit(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	r := f.copyRepo(h, "repo")
	w := r.Walvault(h)
	w.MustRun("keep", "--note", "before the upgrade", f.BackupID)
	w.MustRun("audit")
	notes, _ := filepath.Glob(filepath.Join(r.Dir, "backups", f.BackupID, "notes", "*"))
	audits, _ := filepath.Glob(filepath.Join(r.Dir, "audit", "*"))
	if len(notes) != 1 || len(audits) == 0 {
		t.Fatalf("after keep: notes %v, audit records %v; want one note and some records", notes, audits)
	}
	sort.Strings(audits)
	note, record := notes[0], audits[len(audits)-1]
	flipBit(t, note, -1)
	flipBit(t, record, -1)
	expectBad(t, h, w, r.Dir,
		badRun{args: []string{"verify"}, exit: 6, mentions: []string{rel(r, note), rel(r, record)}},
		badRun{args: []string{"expire", "--retain-full", "1", "--confirm"}, exit: 6, mentions: []string{rel(r, note)}},
		badRun{args: []string{"audit"}, exit: 6, mentions: []string{rel(r, record)}},
	)
}

// TestBadInputEncryptionDowngrade: walvault.json is plain JSON, so anyone
// who can write to the bucket can change "encryption" to "none". A host
// configured with age keys must then refuse to write plaintext (or to read
// what it would take as plaintext), not follow the file.
func TestBadInputEncryptionDowngrade(t *testing.T) {
	f := sharedRepo(t)
	h := newHarness(t)
	r := f.copyRepo(h, "repo")
	w := r.Walvault(h)
	seg := f.MarkSegs[len(f.MarkSegs)-1]
	segPath := h.Path("files", seg)
	h.Mkdir(filepath.Dir(segPath), 0o755)
	w.MustRun("wal-fetch", seg, segPath)
	if err := os.Remove(walObjectPath(r, seg)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(r.Dir, repo.ConfigKey)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	downgraded := strings.Replace(string(b), `"encryption": "age"`, `"encryption": "none"`, 1)
	if downgraded == string(b) {
		t.Fatalf("%s does not hold \"encryption\": \"age\":\n%s", repo.ConfigKey, b)
	}
	h.WriteFile(cfgPath, []byte(downgraded), 0o644)
	expectBad(t, h, w, r.Dir,
		badRun{args: []string{"wal-push", segPath}, exit: 3, mentions: []string{repo.ConfigKey, "not encrypted", "age-recipients"}},
		badRun{args: []string{"wal-fetch", f.MarkSegs[0], h.Path("fetched")}, exit: 255, mentions: []string{repo.ConfigKey, "not encrypted"}},
		badRun{args: []string{"restore", "--pgdata", h.Path("r")}, exit: 3, mentions: []string{repo.ConfigKey, "not encrypted"}},
	)
	if _, err := os.Stat(walObjectPath(r, seg)); err == nil {
		t.Errorf("wal-push stored %s in a repository whose walvault.json was downgraded to no encryption", seg)
	}
}
