package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pitrCase is what differs between the file and the S3 run of the
// point-in-time recovery scenario.
type pitrCase struct {
	repo *Repo
	// configFile: archive_command carries --config FILE and the server's
	// environment has no walvault settings; otherwise the server runs with
	// the repository's environment.
	configFile bool
	// formatTarget renders the target time as restore receives it.
	formatTarget func(c *Cluster, t time.Time) string
	// restoreAsRoot runs restore as the current user with --owner postgres
	// (only meaningful when the suite runs as root).
	restoreAsRoot bool
	// pgURLFlag passes the connection as --pg-url instead of libpq variables.
	pgURLFlag bool
	// checkWindowStart also restores to the end of the backup and checks that
	// the recoverable window does not start before the last transaction that
	// backup holds.
	checkWindowStart bool
	// objects lists the repository's objects for the encryption check.
	objects func(t testing.TB) map[string][]byte
}

// TestPITRFile: point-in-time recovery through a file repository, with
// archive_command configured by a config file and the target in
// PostgreSQL's own timestamptz text.
func TestPITRFile(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	runPITR(t, h, pitrCase{
		repo:             repo,
		configFile:       true,
		checkWindowStart: true,
		formatTarget: func(c *Cluster, ts time.Time) string {
			// Exactly what the server prints, in a zone with a half-hour offset.
			var s string
			c.QueryRow("SELECT to_char($1::timestamptz AT TIME ZONE 'Asia/Kolkata', 'YYYY-MM-DD HH24:MI:SS.US') || '+05:30'",
				[]any{ts}, &s)
			return s
		},
		objects: func(t testing.TB) map[string][]byte { return fileRepoObjects(t, repo.Dir) },
	})
}

// runPITR is scenario 1: a base backup taken under pgbench load, marker rows
// committed one per transaction, the primary destroyed, and a restore to a
// time strictly between two markers. The recovered cluster must hold exactly
// the markers committed up to the target, keep pgbench's invariants and pass
// pg_amcheck. It returns the walvault runner it configured.
func runPITR(t *testing.T, h *Harness, pc pitrCase) *Walvault {
	repo := pc.repo
	secret := "SECRET-MARK-" + randomHex(8)

	pg := h.InitCluster("primary")
	wv := repo.Walvault(h)
	var archiveCommand string
	if pc.configFile {
		cfg := h.WriteConfig(repo, "walvault.conf")
		archiveCommand = suite.walvault + " wal-push --config " + cfg + " %p"
		// The operator's own commands read the same file, via WALVAULT_CONFIG.
		wv = h.Walvault("WALVAULT_CONFIG=" + cfg)
	} else {
		archiveCommand = suite.walvault + " wal-push %p"
		pg.Env = repo.Env
	}
	pg.ConfigureArchiving(archiveCommand)
	pg.Start()
	if pc.pgURLFlag {
		wv.MustRun("init", "--pg-url", pg.URL())
		wv.MustRun("init", "--pg-url", pg.URL()) // re-running against a matching repository succeeds
	} else {
		wv = wv.With(pg.LibpqEnv()...)
		wv.MustRun("init")
		wv.MustRun("init")
	}
	pgURL := []string(nil)
	if pc.pgURLFlag {
		pgURL = []string{"--pg-url", pg.URL()}
	}

	pg.PgbenchInit(5)
	pg.CreateMarks()

	// A base backup under load.
	bench := pg.StartPgbench(2, 20)
	time.Sleep(2 * time.Second)
	wv.MustRun(append([]string{"backup", "--fast", "--label", "under-load"}, pgURL...)...)
	info := wv.Info()
	if len(info.Backups) != 1 {
		t.Fatalf("info lists %d backups after one backup, want 1: %+v", len(info.Backups), info.Backups)
	}
	if b := info.Backups[0]; b.ID == "" || b.StartLSN == "" || b.StopLSN == "" || b.Timeline != 1 || b.Bytes <= 0 || b.StoredBytes <= 0 {
		t.Errorf("backup entry incomplete: %+v", b)
	}

	// Markers, one per transaction, ~150 ms apart, while pgbench may still run.
	marks := pg.CommitMarks(1, 30, secret, 150*time.Millisecond)
	bench.Wait(t)
	primarySums := pg.CheckBenchInvariants()
	pg.SwitchAndWaitArchived()

	const k = 15 // recover marks 1..k
	before, after := marks[k-1].CommitTS, marks[k].CommitTS
	if !after.After(before) {
		t.Fatalf("marks %d and %d have commit times %v and %v", k, k+1, before, after)
	}
	target := before.Add(after.Sub(before) / 2).Truncate(time.Microsecond)
	targetText := pc.formatTarget(pg, target)
	t.Logf("target %s between commit %d at %s and %d at %s", targetText, k,
		before.Format(time.RFC3339Nano), k+1, after.Format(time.RFC3339Nano))

	// Disaster.
	pg.Stop("immediate")
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	restoreDir := h.Path("restored")
	restore := wv
	args := []string{"restore", "--pgdata", restoreDir, "--target-time", targetText, "--target-action", "promote"}
	if strings.HasPrefix(pc.repo.URL, "s3://") {
		// The credentials are in this shell's environment only: the
		// server's restore_command gets a copy when asked.
		args = append(args, "--copy-s3-credentials")
	}
	if pc.restoreAsRoot && suite.pgUser != nil {
		restore = wv.AsCurrentUser()
		args = append(args, "--owner", suite.pgUser.Name)
	}
	restore.MustRun(args...)
	if _, err := os.Stat(filepath.Join(restoreDir, "recovery.signal")); err != nil {
		t.Errorf("restore wrote no recovery.signal: %v", err)
	}
	autoConf, _ := os.ReadFile(filepath.Join(restoreDir, "postgresql.auto.conf"))
	t.Logf("postgresql.auto.conf after restore:\n%s", autoConf)
	if !strings.Contains(string(autoConf), "restore_command") {
		t.Errorf("postgresql.auto.conf has no restore_command")
	}

	rc := h.ClusterAt("restored", restoreDir)
	rc.Env = wv.Env
	rc.Start()
	rc.WaitPromoted()

	if got, want := rc.MarkIDs(), seq(1, k); !equalInts(got, want) {
		t.Errorf("recovered marks %v, want exactly %v", got, want)
	}
	sums := rc.CheckBenchInvariants()
	if sums.HistoryRows == 0 {
		t.Errorf("no pgbench history recovered: the backup ran under load, so some must be")
	}
	if sums.HistoryRows > primarySums.HistoryRows {
		t.Errorf("recovered %d pgbench history rows, more than the primary's %d", sums.HistoryRows, primarySums.HistoryRows)
	}
	t.Logf("primary sums %+v, recovered %+v", primarySums, sums)
	rc.AmCheck()

	checkObjectsEncrypted(t, pc.objects(t), secret)
	if pc.checkWindowStart {
		checkWindowStart(t, h, wv)
	}
	return wv
}

// checkWindowStart restores the backup to its consistent end and pauses
// there: the last transaction replayed then committed before the backup
// ended, so the recoverable window must not start before it. If it does, a
// target in between is accepted by restore but PostgreSQL stops at a commit
// before the consistent point and fails with "requested recovery stop point
// is before consistent recovery point". Under pgbench load commits are
// milliseconds apart, so this is a close bound.
func checkWindowStart(t *testing.T, h *Harness, wv *Walvault) {
	t.Helper()
	info := wv.Info()
	if info.Recoverable == nil {
		t.Fatal("info shows no recoverable window")
	}
	from, err := time.Parse(time.RFC3339Nano, info.Recoverable.From)
	if err != nil {
		t.Fatal(err)
	}
	dir := h.Path("backup-end")
	wv.MustRun("restore", "--pgdata", dir, "--backup", info.Backups[0].ID, "--target-immediate", "--target-action", "pause")
	c := h.ClusterAt("backup-end", dir)
	c.Env = wv.Env
	c.Start()
	waitFor(t, "replay to pause at the end of the backup", 2*time.Minute, func() (bool, error) {
		var state string
		err := c.tryQueryRow("SELECT pg_get_wal_replay_pause_state()", nil, &state)
		return state == "paused", err
	})
	var last time.Time
	c.QueryRow("SELECT pg_last_xact_replay_timestamp()", nil, &last)
	t.Logf("last transaction in the backup committed at %s; recoverable window from %s",
		last.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano))
	if from.Before(last) {
		t.Errorf("recoverable window starts at %s, before the backup's last transaction (committed %s): "+
			"targets in between are accepted but PostgreSQL cannot stop there",
			from.UTC().Format(time.RFC3339Nano), last.UTC().Format(time.RFC3339Nano))
	}
	c.Stop("immediate")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
