package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage/local"
	"github.com/walvault/walvault/storage/s3/miniotest"
)

// The hostile-bucket suite's world: one PostgreSQL 15 primary archiving
// into two repositories at once (a directory and a MinIO prefix), with a
// base backup, marker rows over several segments, a timeline switch, an
// Odoo-style filestore and a note; then one pristine snapshot per
// repository that every case starts from.

// hsWorld is built once per run of TestHostileSuite.
type hsWorld struct {
	t        *testing.T
	h        *Harness
	truth    string // every file archive_command was given, by name
	odooData string
	files    map[string][]byte // filestore name -> content referenced by prod
	tl2      *Cluster          // the promoted server, timeline 2, still running (prod's rows)
	// held are segments of timeline 2 written after the snapshot, archived
	// only into truth: wal-push cases push them, oldest first.
	held    []string
	heldUse int
	// marks and the segment each committed in.
	seg         map[int]string
	tl2First    string // first segment of timeline 2
	latestWant  []int64
	timeWant    []int64
	targetTime  string
	attacker    *crypto.WriterKey // a writer of the attacker's own root
	backends    []*hsBackend
	outsideBase string // attacker-chosen directories live here: nothing may be written in them
	seq         int
}

// hsBackend is one repository of the world.
type hsBackend struct {
	name      string
	repo      *Repo
	bucket    hsBucket
	backupID  string // the newest backup
	keptID    string // an older backup marked keep
	recipient []age.Recipient
	cfg       repo.Config
	state     string // filestore push state dir
	// baselines measured on the pristine repository
	expireDeletes map[string]bool
	auditCount    int
}

func (w *hsWorld) wv(b *hsBackend) *Walvault {
	return b.repo.Walvault(w.h, w.tl2.LibpqEnvOr()...)
}

// LibpqEnvOr is LibpqEnv for a cluster that may be nil.
func (c *Cluster) LibpqEnvOr() []string {
	if c == nil {
		return nil
	}
	return c.LibpqEnv()
}

func (w *hsWorld) next(what string) string {
	w.seq++
	return fmt.Sprintf("%s-%d", what, w.seq)
}

// archiveScript writes the archive_command both repositories get: the file
// is first kept in truth (the suite's record of what was archived), then,
// unless the hold flag exists, pushed into each repository. Settings are
// exported in the script, not given as arguments: argv is visible to all.
func (w *hsWorld) archiveScript() string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\nset -e\n")
	fmt.Fprintf(&b, "cp \"$1\" %q/\"$2\".tmp\nmv %q/\"$2\".tmp %q/\"$2\"\n", w.truth, w.truth, w.truth)
	fmt.Fprintf(&b, "[ -e %q ] && exit 0\n", w.h.Path("hold"))
	for _, be := range w.backends {
		b.WriteString("(\n")
		for _, kv := range be.repo.Env {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(&b, "  export %s=%q\n", k, v)
		}
		fmt.Fprintf(&b, "  exec %q wal-push --push-ahead 0 \"$1\"\n)\n", suite.walvault)
	}
	path := w.h.Path("archive.sh")
	w.h.WriteFile(path, []byte(b.String()), 0o700)
	return path
}

func newHostileWorld(t *testing.T) *hsWorld {
	if os.Geteuid() != 0 || suite.pgUser == nil {
		skipOutsideCI(t, "the hostile suite needs root (restore and filestore restore run as root) and a separate PostgreSQL user")
	}
	if _, err := lookupAccount("odoo"); err != nil {
		skipOutsideCI(t, "the hostile suite needs an odoo user")
	}
	h := newHarness(t)
	w := &hsWorld{t: t, h: h, seg: map[int]string{}, files: map[string][]byte{}}
	w.truth = h.Mkdir(h.Path("truth"), 0o755)
	w.outsideBase = h.Mkdir(h.Path("outside"), 0o755)

	// WALVAULT_HOSTILE_BACKENDS=dir (or minio) runs one repository only,
	// for work on the suite itself; both run otherwise.
	only := os.Getenv("WALVAULT_HOSTILE_BACKENDS")
	if only == "" || strings.Contains(only, "dir") {
		dirRepo := h.NewFileRepo("repo")
		w.backends = append(w.backends, &hsBackend{name: "dir", repo: dirRepo, bucket: &hsDirBucket{t: t, h: h, root: dirRepo.Dir}})
	}
	if only == "" || strings.Contains(only, "minio") {
		srv := miniotest.Start(t)
		const bucket = "walvault-hostile"
		srv.CreateBucket(t, bucket)
		client, err := srv.Client()
		if err != nil {
			t.Fatal(err)
		}
		s3r := s3Repo(h, srv, bucket, "clusters/hostile", srv.Endpoint)
		w.backends = append(w.backends, &hsBackend{name: "minio", repo: s3r, bucket: &hsS3Bucket{t: t, c: client, bucket: bucket, prefix: "clusters/hostile"}})
	}
	if len(w.backends) == 0 {
		t.Fatalf("WALVAULT_HOSTILE_BACKENDS=%q names neither dir nor minio", only)
	}
	var err error
	attID := h.Path("attacker-identity.txt")
	h.Keygen(attID)
	w.attacker, err = crypto.LoadWriterKey(h.WriterKey(attID, h.Path("attacker-writer.key"), "attacker"))
	if err != nil {
		t.Fatal(err)
	}

	pg := h.InitCluster("primary")
	pg.ConfigureArchiving(w.archiveScript() + " %p %f")
	pg.Start()
	for _, b := range w.backends {
		b.repo.Walvault(h, pg.LibpqEnv()...).MustRun("init")
		b.recipient, err = crypto.ParseRecipients(b.repo.Recipient)
		if err != nil {
			t.Fatal(err)
		}
	}
	pg.CreateMarks()
	// An older backup, marked keep: expire must keep it whatever the
	// policy says, and its keep mark is an add-only note.
	for _, b := range w.backends {
		wv := b.repo.Walvault(h, pg.LibpqEnv()...)
		// Chunks: the suite's cases damage, copy and forge a chunked
		// backup's objects (block backups: TestBlockBackups).
		wv.MustRun("backup", "--fast", "--label", "old", "--chunks")
		waitPastBackupStop(t, wv)
		b.keptID = wv.Info().Backups[0].ID
		wv.MustRun("keep", b.keptID, "--note", "hostile suite: kept")
	}
	w.odooData = h.Mkdir(h.Path("odoo-data"), 0o755)
	h.Mkdir(filepath.Join(w.odooData, "filestore"), 0o755)
	site := newOdooSite(t, h, pg, w.odooData)
	for i, c := range []string{"invoice A", "invoice B", "invoice C", "invoice D"} {
		name := site.attach(fmt.Sprintf("F%d", i), []byte(c))
		w.files[name] = []byte(c)
	}
	h.ChownTree(w.odooData)
	for _, b := range w.backends {
		wv := b.repo.Walvault(h, pg.LibpqEnv()...)
		b.state = h.Mkdir(h.Path("state-"+b.name), 0o700)
		wv.MustRun("filestore", "push", "--data-dir", w.odooData, "--db", "prod", "--state-dir", b.state)
		wv.MustRun("backup", "--fast", "--label", "hostile", "--chunks")
		waitPastBackupStop(t, wv)
		info := wv.Info()
		if len(info.Backups) != 2 {
			t.Fatalf("%s: %d backups, want 2", b.name, len(info.Backups))
		}
		for _, bk := range info.Backups {
			if bk.ID > b.backupID {
				b.backupID = bk.ID
			}
		}
		wv.MustRun("note", b.backupID, "hostile suite: the newest backup")
	}

	// Timeline 1: marks 1..3, then a restore point, then 4..5 that
	// timeline 2 will not have.
	var marks []Mark
	for i := 1; i <= 5; i++ {
		if i == 4 {
			pg.Exec("SELECT pg_create_restore_point('hs-rp')")
		}
		marks = append(marks, pg.CommitMarks(i, i, "tl1", 0)...)
		w.seg[i] = pg.SwitchAndWaitArchived()
		if i == 3 {
			for _, b := range w.backends {
				b.bucket.Snapshot("early")
			}
		}
	}
	before, after := marks[1].CommitTS, marks[2].CommitTS
	w.targetTime = before.Add(after.Sub(before) / 2).UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	w.timeWant = seq(1, 2)
	pg.Stop("immediate")

	// Timeline 2: restored to the restore point from the directory
	// repository and promoted; it archives into both with the same script.
	dir := h.Path("tl2")
	w.backends[0].repo.Walvault(h).MustRun("restore", "--pgdata", dir, "--target-name", "hs-rp", "--target-action", "promote")
	w.tl2 = h.ClusterAt("tl2", dir)
	w.tl2.Env = w.backends[0].repo.Env
	w.tl2.Start()
	w.tl2.WaitPromoted()
	w.tl2First = w.tl2.QueryString("SELECT pg_walfile_name(pg_current_wal_lsn())")
	if !strings.HasPrefix(w.tl2First, "00000002") {
		t.Fatalf("promoted server writes %s, want timeline 2", w.tl2First)
	}
	for i := 101; i <= 103; i++ {
		w.tl2.CommitMarks(i, i, "tl2", 0)
		w.seg[i] = w.tl2.SwitchAndWaitArchived()
	}
	w.latestWant = append(seq(1, 3), seq(101, 103)...)
	if got := w.tl2.MarkIDs(); !equalInts(got, w.latestWant) {
		t.Fatalf("timeline 2 holds marks %v, want %v", got, w.latestWant)
	}

	// Held segments: real WAL of timeline 2 the repositories do not have.
	h.WriteFile(h.Path("hold"), nil, 0o644)
	for i := 201; i <= 212; i++ {
		w.tl2.CommitMarks(i, i, "held", 0)
		w.held = append(w.held, w.tl2.SwitchAndWaitArchived())
	}
	for _, b := range w.backends {
		b.bucket.Snapshot("pristine")
		var cfg repo.Config
		if err := json.Unmarshal(b.bucket.Get(repo.ConfigKey), &cfg); err != nil {
			t.Fatal(err)
		}
		b.cfg = cfg
	}
	for _, b := range w.backends {
		t.Logf("world: %s repository: backup %s", b.name, b.backupID)
	}
	t.Logf("world: marks by segment %v; timeline 2 from %s; held %v", w.seg, w.tl2First, w.held)
	return w
}

// walKey is the key of a WAL file (docs/FORMAT.md).
func walKey(name string) string { return "wal/" + name[:8] + "/" + name }

// headKey is the key of a full segment's completeness head (docs/FORMAT.md).
func headKey(seg string) string { return "heads/" + seg[:8] + "/" + seg }

// nextSegment is the name of the segment after seg on the same timeline
// (16 MiB segments: 256 per log file).
func nextSegment(seg string) string {
	tli, logno, segno := seg[:8], seg[8:16], seg[16:24]
	l, _ := strconv.ParseUint(logno, 16, 32)
	s, _ := strconv.ParseUint(segno, 16, 32)
	s++
	if s == 0x100 {
		s, l = 0, l+1
	}
	return fmt.Sprintf("%s%08X%08X", tli, l, s)
}

func (w *hsWorld) truthOf(name string) []byte {
	data, err := os.ReadFile(filepath.Join(w.truth, name))
	if err != nil {
		w.t.Fatalf("truth of %s: %v", name, err)
	}
	return data
}

// seal makes an object as an attacker can with the recipient alone:
// either unsigned (a format-1 object) or signed by a writer of the
// attacker's own root.
func (w *hsWorld) seal(b *hsBackend, ownRoot bool, key string, plain []byte) []byte {
	w.t.Helper()
	cfg := b.cfg
	opts := repo.Options{Recipients: b.recipient}
	if ownRoot {
		opts.Writer = w.attacker
	} else {
		cfg.Format = repo.FormatUnsigned
	}
	rp, err := repo.OpenWithConfig(nil, cfg, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rp.Close()
	data, _, err := rp.Seal(key, plain)
	if err != nil {
		w.t.Fatal(err)
	}
	return append([]byte(nil), data...)
}

// manifest reads the backend's real backup manifest (an attacker rebuilds
// the same from the listing and the plaintext object headers; the suite
// reads it for brevity).
func (w *hsWorld) manifest(b *hsBackend) *repo.BackupManifest {
	w.t.Helper()
	dir := w.h.Path(w.next("manifest-" + b.name))
	for _, k := range []string{repo.ConfigKey, repo.BackupManifestKey(b.backupID)} {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(p, b.bucket.SnapshotGet("pristine", k), 0o600); err != nil {
			w.t.Fatal(err)
		}
	}
	st, err := local.New(dir)
	if err != nil {
		w.t.Fatal(err)
	}
	ids, err := crypto.LoadIdentities(b.repo.IdentityFile)
	if err != nil {
		w.t.Fatal(err)
	}
	roots, err := crypto.LoadTrustedRoots(b.repo.IdentityFile)
	if err != nil {
		w.t.Fatal(err)
	}
	rp, err := repo.Open(context.Background(), st, repo.Options{Identities: ids, TrustedRoots: roots})
	if err != nil {
		w.t.Fatal(err)
	}
	defer rp.Close()
	m, err := rp.BackupManifest(context.Background(), b.backupID)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// ---------------------------------------------------------------------------
// running walvault and PostgreSQL without failing the test: every outcome
// is classified, none is fatal.

// run runs walvault as the PostgreSQL user (asRoot: as root) with the
// backend's settings, records its output for the secret scan, and returns
// stdout+stderr and the exit status.
func (w *hsWorld) run(b *hsBackend, asRoot bool, args ...string) (string, int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	as := w.h.pgUser()
	if asRoot {
		as = nil
	}
	cmd := w.h.command(ctx, as, append(append([]string(nil), b.repo.Env...), w.tl2.LibpqEnvOr()...), suite.walvault, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	recordOutput("walvault "+strings.Join(args, " "), out.String())
	exit := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		return fmt.Sprintf("cannot run walvault: %v", err), -1
	}
	if ctx.Err() != nil {
		return "timed out after 4m (wedged): " + out.String(), -1
	}
	w.t.Logf("[%s] walvault %s -> exit %d: %s", b.name, strings.Join(args, " "), exit, tail(out.String(), 4))
	return out.String(), exit
}

// recovered is what a restored server did.
type recovered struct {
	promoted bool
	marks    []int64
	log      string
	why      string // not promoted: how it ended
}

// startRestored starts a restored data directory (archiving off: a
// restored copy must not write into the repositories under test) and
// waits until it promotes, stops, or stays in recovery for 2 minutes.
func (w *hsWorld) startRestored(b *hsBackend, dir string) recovered {
	c := w.h.ClusterAt(w.next("restored"), dir)
	logStart := 0
	opts := c.serverOptions() + " -c archive_mode=off"
	out, err := w.h.tryPGIn(c.BinDir, 3*time.Minute, b.repo.Env, "pg_ctl", "-D", dir, "-l", c.LogFile, "-o", opts, "-w", "-t", "150", "start")
	defer func() {
		if c.Running() {
			w.h.tryPGIn(c.BinDir, time.Minute, nil, "pg_ctl", "-D", dir, "-m", "immediate", "-w", "stop")
		}
		os.RemoveAll(dir)
		os.RemoveAll(dir + ".walvault-recovery")
	}()
	var r recovered
	if err != nil {
		r.why = fmt.Sprintf("server did not start: %v %s", err, tail(out, 3))
		r.log = c.Log()[logStart:]
		return r
	}
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; ; i++ {
		var inRecovery bool
		err := c.tryQueryRow("SELECT pg_is_in_recovery()", nil, &inRecovery)
		if err == nil && !inRecovery {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			conn, err := c.Connect(ctx)
			if err == nil {
				rows, qerr := conn.Query(ctx, "SELECT id::bigint FROM marks WHERE id < 200 ORDER BY id")
				if qerr == nil {
					for rows.Next() {
						var id int64
						if rows.Scan(&id) == nil {
							r.marks = append(r.marks, id)
						}
					}
					rows.Close()
				}
				conn.Close(context.Background())
			}
			cancel()
			r.promoted = true
			break
		}
		if err != nil && i%10 == 9 && !c.Running() {
			r.why = "server stopped during recovery"
			break
		}
		if time.Now().After(deadline) {
			r.why = "server still in recovery after 2m (wedged)"
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.log = c.Log()
	return r
}

// outsideClean reports what was written into the attacker-chosen
// directories.
func (w *hsWorld) outsideWrites() []string {
	var found []string
	filepath.WalkDir(w.outsideBase, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != w.outsideBase && !strings.HasSuffix(p, "/target") && !(d.IsDir() && strings.HasPrefix(filepath.Base(p), "case-")) {
			found = append(found, p)
		}
		return nil
	})
	return found
}
