package e2e

import (
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The `walvault stream` scenarios. archive_mode is off in all but the last:
// the replication stream alone carries WAL into the repository, including
// the WAL each base backup needs.

// streamPrimary starts a primary set up for streaming, initializes the
// repository for it, and returns a walvault runner for both.
func streamPrimary(h *Harness, repo *Repo, conf ...string) (*Cluster, *Walvault) {
	h.t.Helper()
	pg := h.streamCluster("primary", conf...)
	pg.Start()
	wv := repo.Walvault(h, pg.LibpqEnv()...)
	wv.MustRun("init")
	return pg, wv
}

// loadAndBackup fills the cluster with pgbench tables and the marks table
// and takes a base backup, whose WAL only the streamer can deliver.
func loadAndBackup(h *Harness, pg *Cluster, wv *Walvault) {
	h.t.Helper()
	pg.PgbenchInit(2)
	pg.CreateMarks()
	wv.MustRun("backup", "--fast")
}

// TestStreamRPO: the acceptance test. Under pgbench load, with
// marks committed every 50 ms, the primary dies (immediate stop) at a
// random moment; the primary's data directory is deleted; a restore to
// latest must hold a gap-free prefix of the committed marks, the newest
// within 2 s of the last commit.
//
//   - primary-dies: as specified, the streamer outlives the primary by 3 s
//     and is stopped with SIGTERM (it drains its spool).
//   - host-dies: the streamer is SIGKILLed at the same moment as the
//     primary, as when the whole host is lost: what is in the repository at
//     that instant is all there is. This is the RPO the default
//     --partial-interval (1 s) promises.
func TestStreamRPO(t *testing.T) {
	t.Run("primary-dies", func(t *testing.T) { runStreamRPO(t, false) })
	t.Run("host-dies", func(t *testing.T) { runStreamRPO(t, true) })
}

func runStreamRPO(t *testing.T, hostDies bool) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := streamPrimary(h, repo)
	st := h.StartStream(wv, "stream", true, "--create-slot")
	st.WaitStreaming(1, time.Minute)
	loadAndBackup(h, pg, wv)

	bench := pg.StartPgbench(2, 30)
	marks := pg.StartMarkLoop(1, 50*time.Millisecond, false)
	killAfter := 6*time.Second + rand.N(5*time.Second)
	time.Sleep(killAfter)
	if m, err := st.Metrics(); err == nil {
		t.Logf("just before the kill: lag %.3fs, %0.f bytes; %0.f uploads", m["walvault_stream_lag_seconds"],
			m["walvault_stream_lag_bytes"], m["walvault_stream_uploads_total"])
	}
	if hostDies {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); st.Kill() }()
		pg.Stop("immediate")
		wg.Wait()
	} else {
		pg.Stop("immediate")
	}
	t.Logf("primary killed after %v of load", killAfter.Round(time.Millisecond))
	acked, ambiguous := marks.Stop()
	if out, err := bench.WaitEnded(time.Minute); err == nil {
		t.Logf("pgbench ended normally before the kill?\n%s", tail(out, 5))
	}
	if !hostDies {
		time.Sleep(3 * time.Second) // the streamer has lost its primary, and keeps uploading
		checkDrained(t, st, wv)
	}
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	rc := h.restoreLatest(wv, repo.Env, "restored")
	res := checkMarks(t, rc, acked, ambiguous)
	scenario := "primary dies, streamer drains"
	if hostDies {
		scenario = "host dies"
	}
	t.Logf("RPO (%s): %d marks committed, %d recovered, %d lost; the newest recovered committed %.3fs before the last commit",
		scenario, len(acked), res.Recovered, res.Lost, res.LossSeconds)
	if res.LossSeconds > 2 {
		t.Errorf("recovery point %.3fs before the last commit (mark %d at %s; newest recovered commit %s), want ≤ 2s",
			res.LossSeconds, res.LastCommitted.ID, res.LastCommitted.committedBy().Format(time.RFC3339Nano),
			res.NewestTS.Format(time.RFC3339Nano))
	}
	rc.CheckBenchInvariants()
}

// checkDrained stops a streamer whose primary is gone with SIGTERM and
// checks that everything it had received is in the repository: what a
// restore then lacks, the server never sent.
func checkDrained(t *testing.T, st *Streamer, wv *Walvault) {
	t.Helper()
	received, ok := st.Metric("walvault_stream_received_lsn_bytes")
	if !ok {
		t.Fatal("no walvault_stream_received_lsn_bytes")
	}
	st.MustTerminate()
	to, ok := recoverableTo(t, wv)
	t.Logf("streamer received up to %s; repository recoverable to %s", formatLSN(uint64(received)), formatLSN(to))
	if !ok || to < uint64(received) {
		t.Errorf("after SIGTERM the repository reaches %s, less than the %s the streamer had received",
			formatLSN(to), formatLSN(uint64(received)))
	}
}

// TestStreamSynchronousZeroLoss: with --synchronous and the streamer named
// in synchronous_standby_names, a commit returns only once its WAL is
// fsynced in the spool, so after an immediate stop mid-load, a restore to
// latest holds every mark whose INSERT returned success.
func TestStreamSynchronousZeroLoss(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := streamPrimary(h, repo, "synchronous_standby_names = 'walvault'", "synchronous_commit = on")
	st := h.StartStream(wv, "stream", true, "--create-slot", "--synchronous")
	st.WaitStreaming(1, time.Minute)
	waitFor(t, "the streamer to be a synchronous standby", time.Minute, func() (bool, error) {
		var state string
		err := pg.tryQueryRow("SELECT coalesce(max(sync_state), '') FROM pg_stat_replication WHERE application_name = 'walvault'", nil, &state)
		return state == "sync", err
	})
	loadAndBackup(h, pg, wv)

	bench := pg.StartPgbench(2, 30)
	marks := pg.StartMarkLoop(1, 50*time.Millisecond, false)
	killAfter := 5*time.Second + rand.N(5*time.Second)
	time.Sleep(killAfter)
	pg.Stop("immediate")
	acked, ambiguous := marks.Stop()
	_, _ = bench.WaitEnded(time.Minute)
	time.Sleep(3 * time.Second)
	checkDrained(t, st, wv)
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	rc := h.restoreLatest(wv, repo.Env, "restored")
	res := checkMarks(t, rc, acked, ambiguous)
	t.Logf("synchronous: killed after %v; %d marks committed, %d recovered, %d lost (%d of unknown fate)",
		killAfter.Round(time.Millisecond), len(acked), res.Recovered, res.Lost, len(ambiguous))
	if res.Lost != 0 {
		t.Errorf("%d committed marks lost with a synchronous streamer, want 0 (last committed: %d)", res.Lost, res.LastCommitted.ID)
	}
	rc.CheckBenchInvariants()
}

// TestStreamRestartPostgres: PostgreSQL restarts (fast) under the streamer
// mid-load. The streamer reconnects (reconnects_total ≥ 1) and resumes at
// its slot with no gap: one contiguous WAL range, and a restore to latest
// holds every mark committed before the final kill.
func TestStreamRestartPostgres(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := streamPrimary(h, repo)
	st := h.StartStream(wv, "stream", true, "--create-slot")
	st.WaitStreaming(1, time.Minute)
	loadAndBackup(h, pg, wv)

	bench := pg.StartPgbench(2, 60)
	marks := pg.StartMarkLoop(1, 50*time.Millisecond, true)
	time.Sleep(5 * time.Second)
	before := marks.Count()
	h.runPG(2*time.Minute, pg.Env, "pg_ctl", "-D", pg.DataDir, "-l", pg.LogFile, "-o", pg.serverOptions(),
		"-m", "fast", "-w", "-t", "110", "restart")
	t.Logf("PostgreSQL restarted after %d marks", before)
	if out, err := bench.WaitEnded(time.Minute); err == nil {
		t.Fatalf("pgbench survived the restart?\n%s", tail(out, 5))
	}
	bench = pg.StartPgbench(2, 6)
	bench.Wait(t)
	waitFor(t, "marks after the restart", time.Minute, func() (bool, error) { return marks.Count() > before+20, nil })
	acked, ambiguous := marks.Stop()

	st.WaitStreaming(2, time.Minute)
	if n, _ := st.Metric("walvault_stream_reconnects_total"); n < 1 {
		t.Errorf("walvault_stream_reconnects_total = %v after a server restart, want ≥ 1", n)
	}
	flush := st.WaitCaughtUp(wv, pg, 2*time.Minute)
	t.Logf("repository caught up with the primary at %s", formatLSN(flush))
	pg.Stop("immediate")
	st.MustTerminate()

	info := wv.Info()
	if len(info.WAL) != 1 || info.WAL[0].Timeline != 1 {
		t.Errorf("info --json: WAL %+v, want one contiguous range on timeline 1", info.WAL)
	}
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}
	rc := h.restoreLatest(wv, repo.Env, "restored")
	res := checkMarks(t, rc, acked, ambiguous)
	t.Logf("%d marks committed (%d of unknown fate at the restart), %d recovered", len(acked), len(ambiguous), res.Recovered)
	if res.Lost != 0 {
		t.Errorf("%d marks committed before the final kill are missing", res.Lost)
	}
	rc.CheckBenchInvariants()
}

// TestStreamS3Outage: MinIO is down for 30 s under load. The streamer keeps
// receiving into its spool and retries; once MinIO is back (same data, same
// port) it catches up. After the primary dies and the streamer drains, a
// restore to latest reaches within 2 s of the last commit and holds every
// mark committed during the outage.
func TestStreamS3Outage(t *testing.T) {
	h := newHarness(t)
	mc := startMinio(t, h.Path("minio"), "", "", "")
	registerSecret("S3 secret key", mc.Server.SecretKey)
	const bucket, prefix = "walvault-e2e", "clusters/stream"
	mc.Server.CreateBucket(t, bucket)
	identity := h.Path("identity.txt")
	recipient := h.Keygen(identity)
	repo := &Repo{URL: "s3://" + bucket + "/" + prefix, IdentityFile: identity, Recipient: recipient}
	repo.WriterKeyFile = h.WriterKey(identity, h.Path("writer.key"), "e2e-stream")
	repo.Env = []string{
		"WALVAULT_REPO=" + repo.URL,
		"WALVAULT_S3_ENDPOINT=" + mc.Server.Endpoint,
		"WALVAULT_S3_PATH_STYLE=true",
		"WALVAULT_S3_REGION=" + mc.Server.Region,
		"AWS_ACCESS_KEY_ID=" + mc.Server.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + mc.Server.SecretKey,
		"WALVAULT_AGE_RECIPIENTS=" + recipient,
		"WALVAULT_AGE_IDENTITY_FILE=" + identity,
		"WALVAULT_WRITER_KEY_FILE=" + repo.WriterKeyFile,
	}
	pg, wv := streamPrimary(h, repo)
	st := h.StartStream(wv, "stream", true, "--create-slot")
	st.WaitStreaming(1, time.Minute)
	loadAndBackup(h, pg, wv)

	bench := pg.StartPgbench(2, 240)
	marks := pg.StartMarkLoop(1, 50*time.Millisecond, false)
	time.Sleep(3 * time.Second)

	m0, err := st.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	mc.Stop()
	outageStart := time.Now()
	firstInOutage := marks.Count() + 1
	time.Sleep(30 * time.Second)
	m1, err := st.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	lastInOutage := marks.Count()
	t.Logf("during the outage: spool %0.f bytes, lag %.1fs, upload retries %0.f -> %0.f, errors %0.f -> %0.f",
		m1["walvault_stream_spool_bytes"], m1["walvault_stream_lag_seconds"],
		m0["walvault_stream_upload_retries_total"], m1["walvault_stream_upload_retries_total"],
		m0["walvault_stream_upload_errors_total"], m1["walvault_stream_upload_errors_total"])
	if m1["walvault_stream_upload_retries_total"]+m1["walvault_stream_upload_errors_total"] <=
		m0["walvault_stream_upload_retries_total"]+m0["walvault_stream_upload_errors_total"] {
		t.Errorf("no upload retries or errors counted during a 30 s outage")
	}
	if m1["walvault_stream_lag_seconds"] < 20 {
		t.Errorf("lag_seconds %.1f after a 30 s outage, want about 30", m1["walvault_stream_lag_seconds"])
	}
	if marks.Ended() {
		t.Fatalf("the marks stopped during the outage: the primary must not notice it")
	}
	mc = mc.Restart(t)
	t.Logf("MinIO back after %v", time.Since(outageStart).Round(time.Millisecond))
	resumed := time.Now()
	waitFor(t, "the streamer to catch up after the outage", 3*time.Minute, func() (bool, error) {
		m, err := st.Metrics()
		if err != nil {
			return false, err
		}
		return m["walvault_stream_lag_seconds"] < 2 && m["walvault_stream_uploads_total"] > m1["walvault_stream_uploads_total"],
			nil
	})
	t.Logf("caught up %v after MinIO came back", time.Since(resumed).Round(time.Millisecond))
	time.Sleep(3 * time.Second)

	pg.Stop("immediate")
	acked, ambiguous := marks.Stop()
	_, _ = bench.WaitEnded(time.Minute)
	time.Sleep(3 * time.Second)
	st.MustTerminate()
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	rc := h.restoreLatest(wv, repo.Env, "restored")
	res := checkMarks(t, rc, acked, ambiguous)
	t.Logf("S3 outage: marks %d..%d committed during the outage; %d committed, %d recovered, %d lost, %.3fs before the last commit",
		firstInOutage, lastInOutage, len(acked), res.Recovered, res.Lost, res.LossSeconds)
	if res.Recovered < lastInOutage {
		t.Errorf("marks committed during the outage (%d..%d) lost: only %d recovered", firstInOutage, lastInOutage, res.Recovered)
	}
	if res.LossSeconds > 2 {
		t.Errorf("recovery point %.3fs before the last commit, want ≤ 2s", res.LossSeconds)
	}
	rc.CheckBenchInvariants()
}

// TestStreamSIGTERMUnderLoad: SIGTERM under pgbench load: the streamer
// exits 0 within its drain timeout, having stored everything it had
// received before the signal. Started again (the slot exists, so without
// --create-slot), it resumes where it stopped and, once caught up and
// stopped again, the repository restores every committed mark, including
// those committed while it was down.
func TestStreamSIGTERMUnderLoad(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := streamPrimary(h, repo)
	st := h.StartStream(wv, "stream", true, "--create-slot")
	st.WaitStreaming(1, time.Minute)
	loadAndBackup(h, pg, wv)

	bench := pg.StartPgbench(2, 20)
	marks := pg.StartMarkLoop(1, 50*time.Millisecond, false)
	time.Sleep(6 * time.Second)
	received, ok := st.Metric("walvault_stream_received_lsn_bytes")
	if !ok {
		t.Fatal("no walvault_stream_received_lsn_bytes under load")
	}
	exit, took := st.Terminate(90 * time.Second)
	if exit != 0 {
		t.Fatalf("streamer exited %d after SIGTERM under load, want 0\nlog:\n%s", exit, tail(st.Log(), 30))
	}
	if took > 65*time.Second {
		t.Errorf("streamer took %v to exit after SIGTERM, more than its 60 s drain timeout", took)
	}
	to, ok := recoverableTo(t, wv)
	t.Logf("received before SIGTERM: %s; repository recoverable to %s", formatLSN(uint64(received)), formatLSN(to))
	if !ok || to < uint64(received) {
		t.Errorf("after SIGTERM the repository reaches %s, less than the %s received before the signal",
			formatLSN(to), formatLSN(uint64(received)))
	}

	bench.Wait(t) // the primary goes on; the slot keeps the WAL meanwhile
	acked, ambiguous := marks.Stop()
	st2 := h.StartStream(wv, "stream", true) // same spool; the slot exists
	st2.WaitStreaming(1, time.Minute)
	flush := st2.WaitCaughtUp(wv, pg, 2*time.Minute)
	t.Logf("restarted streamer caught up at %s", formatLSN(flush))
	st2.MustTerminate()
	pg.Stop("immediate")
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	rc := h.restoreLatest(wv, repo.Env, "restored")
	res := checkMarks(t, rc, acked, ambiguous)
	t.Logf("%d marks committed, %d recovered", len(acked), res.Recovered)
	if res.Lost != 0 {
		t.Errorf("%d committed marks missing", res.Lost)
	}
	rc.CheckBenchInvariants()
}

// TestStreamSlotMissing: without --create-slot a missing slot is a
// configuration error (exit 3) that names the slot and how to create it;
// --create-slot creates it; a slot dropped while the streamer is stopped
// is not silently recreated.
func TestStreamSlotMissing(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := streamPrimary(h, repo)
	slotNames := func() []string {
		var names string
		pg.QueryRow("SELECT coalesce(string_agg(slot_name, ','), '') FROM pg_replication_slots", nil, &names)
		if names == "" {
			return nil
		}
		return strings.Split(names, ",")
	}
	// name: the spool (and log) name; the second refusal reuses the
	// spool of the streamer that created the slot, as a restart would.
	checkRefused := func(when, name string) {
		t.Helper()
		st := h.StartStream(wv, name, false, "--slot", "wv_e2e")
		exit := st.Wait(time.Minute)
		log := st.Log()
		t.Logf("%s: exit %d\n%s", when, exit, tail(log, 5))
		if exit != 3 {
			t.Errorf("%s: exit %d, want 3 (configuration)", when, exit)
		}
		for _, want := range []string{"wv_e2e", "--create-slot", "pg_create_physical_replication_slot"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s: message does not mention %q:\n%s", when, want, tail(log, 5))
			}
		}
		if s := slotNames(); len(s) != 0 {
			t.Errorf("%s: slots %v exist after the refusal, want none", when, s)
		}
	}

	checkRefused("no slot", "stream-first")

	st := h.StartStream(wv, "stream", false, "--slot", "wv_e2e", "--create-slot")
	st.WaitStreaming(1, time.Minute)
	if s := slotNames(); len(s) != 1 || s[0] != "wv_e2e" {
		t.Fatalf("after --create-slot: slots %v, want [wv_e2e]", s)
	}
	var active bool
	pg.QueryRow("SELECT active FROM pg_replication_slots WHERE slot_name = 'wv_e2e'", nil, &active)
	if !active {
		t.Errorf("slot wv_e2e is not active while the streamer streams")
	}
	st.MustTerminate()
	waitFor(t, "the slot to become inactive", 30*time.Second, func() (bool, error) {
		err := pg.tryQueryRow("SELECT active FROM pg_replication_slots WHERE slot_name = 'wv_e2e'", nil, &active)
		return err == nil && !active, err
	})
	pg.Exec("SELECT pg_drop_replication_slot('wv_e2e')")

	checkRefused("slot dropped", "stream")
}

// TestStreamPromotedTimeline: a cluster restored from the stream's
// repository and promoted (timeline 2) is streamed into the same
// repository by a new streamer with its own slot. A restore to latest
// follows the history onto timeline 2 and holds its marks; the repository
// has timeline 2 WAL and 00000002.history.
func TestStreamPromotedTimeline(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := streamPrimary(h, repo)
	st := h.StartStream(wv, "stream", true, "--create-slot")
	st.WaitStreaming(1, time.Minute)
	loadAndBackup(h, pg, wv)
	pg.CommitMarks(1, 10, "tl1", 20*time.Millisecond)
	st.WaitCaughtUp(wv, pg, time.Minute)
	pg.Stop("immediate")
	st.MustTerminate()
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}

	r1 := h.restoreLatest(wv, repo.Env, "restored-1")
	if got, want := r1.MarkIDs(), seq(1, 10); !equalInts(got, want) {
		t.Fatalf("restored from the stream: marks %v, want %v", got, want)
	}
	if seg := r1.QueryString("SELECT pg_walfile_name(pg_current_wal_lsn())"); !strings.HasPrefix(seg, "00000002") {
		t.Fatalf("promoted cluster writes %s, want timeline 2", seg)
	}
	wv2 := repo.Walvault(h, r1.LibpqEnv()...)
	st2 := h.StartStream(wv2, "stream-tl2", true, "--create-slot")
	st2.WaitStreaming(1, time.Minute)
	if tl, _ := st2.Metric("walvault_stream_timeline"); tl != 2 {
		t.Errorf("walvault_stream_timeline = %v, want 2", tl)
	}
	// Marks on both sides of a segment switch: timeline 2 then has a
	// complete segment under wal/ and a streamed partial after it.
	r1.CommitMarks(101, 105, "tl2", 50*time.Millisecond)
	switched := r1.QueryString("SELECT pg_walfile_name(pg_switch_wal())")
	r1.CommitMarks(106, 110, "tl2", 50*time.Millisecond)
	// Asynchronous: what the primary flushed in its last milliseconds may
	// never have been sent. This test is about timelines, not RPO (see
	// TestStreamRPO), so wait until everything is stored.
	st2.WaitCaughtUp(wv2, r1, time.Minute)
	r1.Stop("immediate")
	time.Sleep(3 * time.Second)
	st2.MustTerminate()
	if _, err := os.Stat(walObjectPath(repo, switched)); err != nil {
		t.Errorf("timeline 2 segment %s, complete before the kill, is not under wal/: %v", switched, err)
	}
	if err := os.RemoveAll(r1.DataDir); err != nil {
		t.Fatal(err)
	}

	if _, err := os.Stat(walObjectPath(repo, "00000002.history")); err != nil {
		t.Errorf("timeline 2's history file is not in the repository: %v", err)
	}
	info := wv.Info()
	var tl2 bool
	for _, w := range info.WAL {
		if w.Timeline == 2 {
			tl2 = true
			if w.To < switched {
				t.Errorf("info --json: timeline 2 WAL ends at %s, before %s", w.To, switched)
			}
		}
	}
	if !tl2 {
		t.Errorf("info --json shows no timeline 2 WAL: %+v", info.WAL)
	}
	if rw := wv.Recoverable(); rw == nil || rw.Timeline != 2 {
		t.Errorf("info --json: recoverable %+v, want it on timeline 2", rw)
	}

	r2 := h.restoreLatest(wv, repo.Env, "restored-2")
	if got, want := r2.MarkIDs(), append(seq(1, 10), seq(101, 110)...); !equalInts(got, want) {
		t.Errorf("latest restore: marks %v, want %v", got, want)
	}
	r2.CheckBenchInvariants()
}

// TestStreamCoexistsWithArchiveCommand: archive_command (wal-push) and the
// streamer store the same segments into one repository. Neither reports a
// conflict or failure, and the repository holds one contiguous range that
// restores.
func TestStreamCoexistsWithArchiveCommand(t *testing.T) {
	h := newHarness(t)
	repo := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", repo)
	st := h.StartStream(wv, "stream", true, "--create-slot")
	st.WaitStreaming(1, time.Minute)
	loadAndBackup(h, pg, wv)

	bench := pg.StartPgbench(2, 8)
	var marks []Mark
	for i := 0; i < 6; i++ {
		marks = append(marks, pg.CommitMarks(10*i+1, 10*i+5, "both", 20*time.Millisecond)...)
		pg.SwitchAndWaitArchived()
	}
	bench.Wait(t)
	pg.SwitchAndWaitArchived()
	st.WaitCaughtUp(wv, pg, 2*time.Minute)

	var failed int64
	var lastFailed string
	pg.QueryRow("SELECT failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver", nil, &failed, &lastFailed)
	if failed != 0 {
		t.Errorf("pg_stat_archiver: %d failures (last %s)\nserver log:\n%s", failed, lastFailed, pg.LogTail(30))
	}
	st.MustTerminate()
	log := st.Log()
	for _, bad := range []string{"level=ERROR", "conflict", "differs", "retrying"} {
		if strings.Contains(strings.ToLower(log), strings.ToLower(bad)) {
			t.Errorf("streamer log contains %q:\n%s", bad, tail(log, 30))
		}
	}
	info := wv.Info()
	if len(info.WAL) != 1 {
		t.Errorf("info --json: WAL %+v, want one contiguous range", info.WAL)
	}
	pg.Stop("immediate")
	if err := os.RemoveAll(pg.DataDir); err != nil {
		t.Fatal(err)
	}
	rc := h.restoreLatest(wv, repo.Env, "restored")
	var want []int64
	for _, m := range marks {
		want = append(want, int64(m.ID))
	}
	if got := rc.MarkIDs(); !equalInts(got, want) {
		t.Errorf("restored marks %v, want %v", got, want)
	}
	rc.CheckBenchInvariants()
}
