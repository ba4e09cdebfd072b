package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// backupTimesInfo is the part of `walvault info --json` this test reads.
type backupTimesInfo struct {
	Backups []struct {
		ID             string `json:"id"`
		StopTime       string `json:"stop_time"`
		StopTimeSource string `json:"stop_time_source"`
	} `json:"backups"`
	Recoverable *struct {
		From string `json:"from"`
	} `json:"recoverable"`
	StopTimeProblems []string `json:"stop_time_problems"`
}

// TestBackupTimesSpreadCheckpoint is issue 11: a backup without --fast
// waits for a spread checkpoint (checkpoint_completion_target 0.9 of
// checkpoint_timeout), and that wait must not end up in the backup's stop
// time. The window info prints must start no earlier than the server's
// STOP TIME (its backup history file) and at most a second or two later, a
// restore to one second after STOP TIME must recover exactly the commits up
// to it, and a manifest written the old way (stop time counting the
// checkpoint) must be corrected on read rather than refuse that target.
func TestBackupTimesSpreadCheckpoint(t *testing.T) {
	h := newHarness(t)
	rp := h.NewFileRepo("repo")
	pg := h.InitCluster("primary")
	pg.Env = rp.Env
	pg.ConfigureArchiving(suite.walvault + " wal-push %p")
	// The defaults but a short timeout: the backup's checkpoint is spread
	// over 0.9 × 60 s when there are dirty buffers.
	pg.Configure("checkpoint_timeout = 60s")
	pg.Start()
	wv := rp.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")

	pg.PgbenchInit(5)
	pg.CreateMarks()
	// A checkpoint now restarts checkpoint_timeout's clock, so none is
	// running when the backup asks for its own; pgbench then dirties
	// shared_buffers for that one to write.
	pg.Exec("CHECKPOINT")
	bench := pg.StartPgbench(2, 5)
	bench.Wait(t)

	// Marks, one transaction every 100 ms, from before the backup starts
	// until after it ends, so that there are commits on both sides of any
	// target near its end.
	marker := startMarker(t, pg)
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	wv.MustRun("backup", "--label", "spread")
	ended := time.Now()
	time.Sleep(3 * time.Second)
	marks := marker.stop(t)
	pg.SwitchAndWaitArchived()

	// The server's own record of the backup (log_timezone is UTC here).
	names, _ := filepath.Glob(filepath.Join(pg.DataDir, "pg_wal", "*.backup"))
	if len(names) != 1 {
		t.Fatalf("want one backup history file in pg_wal, found %v", names)
	}
	data, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	hist, err := pgwal.ParseBackupHistory(data)
	if err != nil {
		t.Fatalf("%s: %v\n%s", names[0], err, data)
	}
	serverStart, err1 := pgwal.ParseServerTime(hist.StartTime, time.UTC)
	serverStop, err2 := pgwal.ParseServerTime(hist.StopTime, time.UTC)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: %v %v", names[0], err1, err2)
	}
	t.Logf("backup command ran %s to %s (%v); server START TIME %s (checkpoint took about %v), STOP TIME %s",
		began.UTC().Format(time.RFC3339Nano), ended.UTC().Format(time.RFC3339Nano), ended.Sub(began).Round(time.Millisecond),
		hist.StartTime, serverStart.Sub(began).Round(time.Second), hist.StopTime)

	// The window starts in [STOP TIME, STOP TIME + 2 s], and within a
	// second of the command's end: the true end lies in [STOP TIME,
	// STOP TIME + 1 s) and before the command ended, and the window may
	// start up to a second after it.
	checkWindow := func(what string, info backupTimesInfo) time.Time {
		t.Helper()
		if info.Recoverable == nil || len(info.Backups) != 1 {
			t.Fatalf("%s: info shows %d backups, window %v", what, len(info.Backups), info.Recoverable)
		}
		from, err := time.Parse(time.RFC3339Nano, info.Recoverable.From)
		if err != nil {
			t.Fatal(err)
		}
		b := info.Backups[0]
		t.Logf("%s: window from %s; backup stop_time %s from %q", what, info.Recoverable.From, b.StopTime, b.StopTimeSource)
		if from.Before(serverStop) || from.After(serverStop.Add(2*time.Second)) {
			t.Errorf("%s: window starts at %s, want within 2 s after the server's STOP TIME %s", what, from.UTC().Format(time.RFC3339Nano), hist.StopTime)
		}
		if !from.Before(ended.Add(time.Second)) {
			t.Errorf("%s: window starts at %s, more than a second after the backup command ended at %s", what,
				from.UTC().Format(time.RFC3339Nano), ended.UTC().Format(time.RFC3339Nano))
		}
		if b.StopTimeSource != repo.StopTimeFromHistory || len(info.StopTimeProblems) > 0 {
			t.Errorf("%s: stop time from %q, problems %q; want it from the backup history file", what, b.StopTimeSource, info.StopTimeProblems)
		}
		return from
	}
	from := checkWindow("as written", backupTimesInfoOf(t, wv))

	// Issue 11's manifest: the stop time written by walvault before this
	// change, the label's start time plus one second plus the whole run.
	rw := inProcess(t, rp)
	id := backupTimesInfoOf(t, wv).Backups[0].ID
	m, err := rw.BackupManifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	m.StopTime = m.StartTime.Add(time.Second + ended.Sub(began))
	m.StopTimeSource, m.ServerStopTime, m.LogTimezone = "", nil, ""
	manifest := filepath.Join(rp.Dir, filepath.FromSlash(repo.BackupManifestKey(id)))
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	if err := rw.PutBackupManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	h.ChownTree(rp.Dir)
	t.Logf("manifest rewritten the old way: stop_time %s", m.StopTime.UTC().Format(time.RFC3339Nano))
	if got := checkWindow("old manifest", backupTimesInfoOf(t, wv)); !got.Equal(from) {
		t.Errorf("old manifest: window from %s, want %s as before", got.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano))
	}

	// Restore to one second after STOP TIME: before the old stop time,
	// after the true end.
	target := serverStop.Add(time.Second)
	var want []int64
	for _, mk := range marks {
		if !mk.CommitTS.After(target) {
			want = append(want, int64(mk.ID))
		}
	}
	if len(want) == 0 || len(want) == len(marks) {
		t.Fatalf("%d of %d marks committed by the target %s: the test needs some on each side", len(want), len(marks), target.Format(time.RFC3339Nano))
	}
	pg.Stop("fast")
	dir := h.Path("restored")
	wv.MustRun("restore", "--pgdata", dir, "--target-time", target.Format(time.RFC3339Nano), "--target-action", "promote")

	// Walvault.Run has run pg_verifybackup -n on dir (restored_test.go).
	rc := h.ClusterAt("restored", dir)
	rc.Env = rp.Env
	rc.Start()
	rc.WaitPromoted()
	if got := rc.MarkIDs(); !equalInts(got, want) {
		t.Errorf("recovered marks %v, want exactly those committed by %s: %v", got, target.Format(time.RFC3339Nano), want)
	}
	t.Logf("recovered %d of %d marks (to %s)", len(want), len(marks), target.Format(time.RFC3339Nano))
	rc.CheckBenchInvariants()
}

func backupTimesInfoOf(t *testing.T, wv *Walvault) backupTimesInfo {
	t.Helper()
	out := wv.MustRun("info", "--json")
	var info backupTimesInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	return info
}

// marker commits marks in the background, one per transaction.
type marker struct {
	stopc chan struct{}
	done  chan markerResult
}

type markerResult struct {
	marks []Mark
	err   error
}

func startMarker(t *testing.T, c *Cluster) *marker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	conn, err := c.Connect(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	mk := &marker{stopc: make(chan struct{}), done: make(chan markerResult, 1)}
	go func() {
		defer cancel()
		defer conn.Close(context.Background())
		var res markerResult
		defer func() { mk.done <- res }()
		for id := 1; ; id++ {
			select {
			case <-mk.stopc:
				return
			case <-time.After(100 * time.Millisecond):
			}
			m := Mark{ID: id}
			if res.err = conn.QueryRow(ctx, "INSERT INTO marks VALUES ($1, $2) RETURNING xmin::text", id, fmt.Sprint("mark ", id)).Scan(&m.XID); res.err != nil {
				return
			}
			if res.err = conn.QueryRow(ctx, "SELECT pg_xact_commit_timestamp($1::text::xid)", m.XID).Scan(&m.CommitTS); res.err != nil {
				return
			}
			res.marks = append(res.marks, m)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-mk.stopc:
		default:
			close(mk.stopc)
			<-mk.done
		}
	})
	return mk
}

// stop ends the marks and returns them; it fails the test if one failed.
func (mk *marker) stop(t *testing.T) []Mark {
	t.Helper()
	close(mk.stopc)
	res := <-mk.done
	if res.err != nil {
		t.Fatalf("commit marks: %v", res.err)
	}
	return res.marks
}
