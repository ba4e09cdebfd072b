package stream

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/memstore"
)

const seg = waltest.SegSize

type harness struct {
	t      *testing.T
	srv    *fakeServer
	clock  *fakeClock
	r      *repo.Repository
	store  *faulty.Store // what r writes to
	st     storage.Store // the store under it, for the test's own checks
	up     func()        // set while the store is down
	spool  string
	s      *Streamer
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, start pgwal.LSN, mod func(*Options)) *harness {
	mem := memstore.New()
	fs := faulty.Wrap(mem)
	r := repotest.New(t, repotest.OnStore(fs)).Repository
	h := &harness{t: t, srv: newFakeServer(start), clock: newFakeClock(), r: r, store: fs, st: mem, spool: filepath.Join(t.TempDir(), "spool")}
	opts := Options{
		Spool: h.spool, Clock: h.clock, PartialInterval: time.Second, StatusInterval: 10 * time.Second,
		Backoff: func(int) time.Duration { return time.Second },
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.dial = h.srv.dial
	h.s = s
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.s.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// stop cancels Run and returns its result.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-h.done:
			h.done <- err // for Cleanup
			return err
		case <-deadline:
			h.t.Fatal("Run did not return after cancellation")
		case <-time.After(20 * time.Millisecond):
			h.clock.Advance(time.Second) // retry backoffs, drain deadline
		}
	}
}

// waitFor polls cond, advancing the fake clock by step between polls.
func (h *harness) waitFor(what string, step time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; status %+v", what, h.s.Status())
		}
		time.Sleep(5 * time.Millisecond)
		if step > 0 {
			h.clock.Advance(step)
		}
	}
}

// storeDown makes every operation on the store fail, until storeUp.
func (h *harness) storeDown() { h.up = h.store.Inject(faulty.Fault{Err: errStoreDown}) }

func (h *harness) storeUp() { h.up() }

func (h *harness) segKey(segno uint64) string { return repo.WALSegmentKey(1, segno, seg) }

func (h *harness) has(key string) bool {
	_, err := h.st.Stat(context.Background(), key)
	return err == nil
}

// checkSegment verifies that segment segno is stored and equals the server's.
func (h *harness) checkSegment(tli uint32, segno uint64) {
	h.t.Helper()
	got, _, err := h.r.Get(context.Background(), repo.WALSegmentKey(tli, segno, seg))
	if err != nil {
		h.t.Fatal(err)
	}
	if !bytes.Equal(got, h.srv.expected(tli, segno)) {
		h.t.Fatalf("stored segment %d differs from the server's WAL", segno)
	}
}

// checkPartial verifies the newest streamed partial of segno holds exactly
// valid bytes of the server's WAL, and that it is the only one.
func (h *harness) checkPartial(tli uint32, segno uint64, valid int64) {
	h.t.Helper()
	ps, err := h.r.StreamPartials(context.Background(), tli, pgwal.SegmentName(tli, segno, seg))
	if err != nil {
		h.t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Valid != valid {
		h.t.Fatalf("streamed partials of %d: %+v, want one of %d bytes", segno, ps, valid)
	}
	got, _, err := h.r.Get(context.Background(), ps[0].Key)
	if err != nil {
		h.t.Fatal(err)
	}
	if !bytes.Equal(got, h.srv.expected(tli, segno)[:valid]) {
		h.t.Fatalf("streamed partial of %d differs from the server's WAL", segno)
	}
}

func spoolNames(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// Received WAL crosses segment boundaries in the middle of messages; full
// segments are stored whole and identical, the segment in progress as a
// streamed partial; the spool keeps only the segment in progress.
func TestStreamAcrossSegments(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg)+100, nil)
	end := h.srv.produce(2*seg + seg/2) // the stream starts at the segment start
	h.run()
	h.waitFor("received", 0, func() bool { return h.s.Status().ReceivedLSN == end })
	h.waitFor("uploaded", time.Second, func() bool { return h.s.Status().UploadedLSN == end })
	h.checkSegment(1, 1)
	h.checkSegment(1, 2)
	h.checkPartial(1, 3, int64(end-pgwal.SegmentStart(3, seg)))
	for _, n := range []uint64{1, 2} {
		if ps := keys(t, h.st, repo.StreamPartialKey(1, pgwal.SegmentName(1, n, seg), 0)[:len("stream/00000001/")+24]); len(ps) != 0 {
			t.Errorf("partials of completed segment %d left: %v", n, ps)
		}
	}
	if got, want := spoolNames(t, h.spool), []string{pgwal.SegmentName(1, 3, seg) + ".partial"}; !equal(got, want) {
		t.Errorf("spool = %v, want %v", got, want)
	}
	if starts := h.srv.startReqs(); starts[0].lsn != pgwal.SegmentStart(1, seg) {
		t.Errorf("started at %s, want the segment start", starts[0].lsn)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	// Every reported flush was within what had been received.
	for _, st := range h.srv.statuses {
		if st.flush == 0 || st.flush > end || st.write < st.flush {
			t.Errorf("bad status update %+v", st)
		}
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// A partial is stored once per PartialInterval, and only when the segment
// grew; each new one replaces the previous.
func TestPartialCadence(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), nil)
	h.run()
	name := pgwal.SegmentName(1, 1, seg)
	prefix := "stream/00000001/" + name
	end := h.srv.produce(100_000)
	h.waitFor("received", 0, func() bool { return h.s.Status().ReceivedLSN == end })
	if ks := keys(t, h.st, prefix); len(ks) != 0 {
		t.Fatalf("partial stored before the interval: %v", ks)
	}
	h.clock.Advance(time.Second)
	h.waitFor("first partial", 0, func() bool { return h.s.Status().UploadedLSN == end })
	h.checkPartial(1, 1, 100_000)
	puts := h.store.Calls(faulty.Put)
	for range 3 {
		h.clock.Advance(time.Second)
		time.Sleep(30 * time.Millisecond)
	}
	if n := h.store.Calls(faulty.Put); n != puts {
		t.Fatalf("%d uploads while the segment did not grow", n-puts)
	}
	end = h.srv.produce(50_000)
	h.waitFor("received", 0, func() bool { return h.s.Status().ReceivedLSN == end })
	time.Sleep(30 * time.Millisecond)
	if n := h.store.Calls(faulty.Put); n != puts {
		t.Fatalf("uploaded before the interval")
	}
	h.clock.Advance(time.Second)
	h.waitFor("second partial", 0, func() bool { return h.s.Status().UploadedLSN == end })
	h.checkPartial(1, 1, 150_000)
	if n := h.store.Calls(faulty.Put); n != puts+1 {
		t.Fatalf("%d uploads for one interval, want 1", n-puts)
	}
	if st := h.s.Status(); st.LagSeconds != 0 || st.LagBytes != 0 || st.SpoolBytes != 0 {
		t.Errorf("all uploaded but status %+v", st)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// With the store down the spool fills to MaxSpool, replication pauses (the
// server keeps the rest), and once the store is back everything is stored
// without a gap.
func TestStoreDownBackpressure(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), func(o *Options) { o.MaxSpool = 3 * seg })
	h.storeDown()
	h.run()
	end := h.srv.produce(6*seg + 1234)
	h.waitFor("backpressure", 0, func() bool {
		st := h.s.Status()
		return !st.Connected && st.SpoolBytes > 3*seg && h.srv.openConns() == 0
	})
	st := h.s.Status()
	if st.ReceivedLSN >= end || st.SpoolBytes > 3*seg+int64(h.srv.chunk) {
		t.Fatalf("no backpressure: %+v", st)
	}
	if st.UploadErrors == 0 || st.LagBytes != 0 && st.UploadedLSN != 0 {
		t.Errorf("status while the store is down: %+v", st)
	}
	// While paused the streamer does not read: a while later it still has not.
	h.clock.Advance(5 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := h.s.Status().ReceivedLSN; got != st.ReceivedLSN {
		t.Fatalf("received %s while paused", got)
	}
	h.storeUp()
	h.waitFor("all uploaded", time.Second, func() bool { return h.s.Status().UploadedLSN == end })
	for n := uint64(1); n <= 6; n++ {
		h.checkSegment(1, n)
	}
	h.checkPartial(1, 7, 1234)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// After a dropped connection the streamer reconnects and resumes at the
// start of the segment its spool ends in, without a gap.
func TestReconnectResume(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), nil)
	h.run()
	end := h.srv.produce(seg + seg/3)
	h.waitFor("received", 0, func() bool { return h.s.Status().ReceivedLSN == end })
	h.clock.Advance(time.Second) // fsync and report
	h.srv.dropConns()
	h.srv.setDown(true)
	h.waitFor("disconnected", 0, func() bool { return !h.s.Status().Connected })
	end = h.srv.produce(seg)
	h.clock.Advance(time.Second)
	h.clock.Advance(time.Second)
	h.srv.setDown(false)
	h.waitFor("all uploaded", time.Second, func() bool { return h.s.Status().UploadedLSN == end })
	h.checkSegment(1, 1)
	h.checkSegment(1, 2)
	h.checkPartial(1, 3, int64(end-pgwal.SegmentStart(3, seg)))
	st := h.s.Status()
	if st.Reconnects == 0 {
		t.Error("no reconnect counted")
	}
	starts := h.srv.startReqs()
	if len(starts) < 2 || starts[len(starts)-1].lsn != pgwal.SegmentStart(2, seg) {
		t.Errorf("start requests %v: want the last at the start of segment 2", starts)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// A spool left by an earlier run is uploaded even when PostgreSQL cannot be
// reached, and the streamer keeps trying to connect.
func TestStartupUploadsSpool(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), nil)
	if err := os.MkdirAll(h.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(h.spool, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(pgwal.SegmentName(1, 1, seg), h.srv.expected(1, 1))
	write(pgwal.SegmentName(1, 2, seg)+".partial", h.srv.expected(1, 2)[:777_777])
	write("garbage.tmp", []byte("x"))
	h.srv.setDown(true)
	h.run()
	h.waitFor("spool uploaded", 0, func() bool {
		return h.s.Status().UploadedLSN == pgwal.SegmentStart(2, seg)+777_777
	})
	h.checkSegment(1, 1)
	h.checkPartial(1, 2, 777_777)
	h.waitFor("reconnect attempts", time.Second, func() bool { return h.s.Status().Reconnects >= 2 })
	// Then the server comes back: streaming resumes at segment 2's start.
	h.srv.mu.Lock()
	h.srv.end = pgwal.SegmentStart(3, seg) + 10
	h.srv.mu.Unlock()
	h.srv.setDown(false)
	h.waitFor("caught up", time.Second, func() bool { return h.s.Status().UploadedLSN == pgwal.SegmentStart(3, seg)+10 })
	h.checkSegment(1, 2)
	if starts := h.srv.startReqs(); starts[0].lsn != pgwal.SegmentStart(2, seg) {
		t.Errorf("started at %s, want segment 2's start", starts[0].lsn)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// Cancellation fsyncs and stores everything received, including the last
// partial, before Run returns nil.
func TestShutdownDrains(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), func(o *Options) { o.PartialInterval = time.Hour })
	h.run()
	end := h.srv.produce(seg + 300_000)
	h.waitFor("received", 0, func() bool { return h.s.Status().ReceivedLSN == end })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.checkSegment(1, 1)
	h.checkPartial(1, 2, 300_000)
	if st := h.s.Status(); st.UploadedLSN != end || st.FlushedLSN != end {
		t.Errorf("after shutdown: %+v", st)
	}
	// The last status update told the server everything is flushed.
	if last := h.srv.statuses[len(h.srv.statuses)-1]; last.flush != end {
		t.Errorf("last status update %+v, want flush %s", last, end)
	}
}

// With the store down at shutdown, Run says what is left.
func TestShutdownStoreDown(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), nil)
	h.storeDown()
	h.run()
	end := h.srv.produce(seg + 5)
	h.waitFor("received", 0, func() bool { return h.s.Status().ReceivedLSN == end })
	err := h.stop()
	if err == nil || !strings.Contains(err.Error(), pgwal.SegmentName(1, 1, seg)) {
		t.Fatalf("Run = %v, want an error naming the segment left", err)
	}
}

func TestSlotMissing(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), nil)
	h.srv.slot = false
	h.run()
	select {
	case err := <-h.done:
		h.done <- err
		if !errors.Is(err, ErrSlotMissing) || !strings.Contains(err.Error(), "pg_create_physical_replication_slot") {
			t.Fatalf("Run = %v, want ErrSlotMissing with advice", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}

	h = newHarness(t, pgwal.SegmentStart(1, seg)+5000, func(o *Options) { o.CreateSlot = true })
	h.srv.slot = false
	h.run()
	end := h.srv.produce(10)
	h.waitFor("streaming", time.Second, func() bool { return h.s.Status().UploadedLSN == end })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// A different segment already stored under the name (planted under a
// future name) does not stop the streamer: the segment is stored beside
// it, the conflict counted as an upload error.
func TestConflict(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), nil)
	other := waltest.Segment(1, 1, waltest.SysID, 7)
	if _, err := h.r.Put(context.Background(), h.segKey(1), other, storageIfAbsent); err != nil {
		t.Fatal(err)
	}
	h.run()
	end := h.srv.produce(2*seg + 10)
	h.waitFor("uploaded", time.Second, func() bool { return h.s.Status().UploadedLSN >= pgwal.SegmentStart(2, seg) })
	f, _ := pgwal.ParseFileName(pgwal.SegmentName(1, 1, seg))
	alts, err := h.r.WALAlternates(context.Background(), f)
	if err != nil || len(alts) != 1 {
		t.Fatalf("alternates %v %v", alts, err)
	}
	if h.s.Status().UploadErrors == 0 {
		t.Fatal("conflict not counted")
	}
	_ = end
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// The server ends timeline 1 in the middle of a segment: the history file
// is stored, the last segment of timeline 1 stays a streamed partial, and
// streaming continues on timeline 2 from its segment start.
func TestTimelineSwitch(t *testing.T) {
	h := newHarness(t, pgwal.SegmentStart(1, seg), nil)
	sw := pgwal.SegmentStart(2, seg) + 4000
	h.srv.mu.Lock()
	h.srv.tli, h.srv.switchAt, h.srv.end = 2, sw, sw+seg
	h.srv.mu.Unlock()
	// Streaming starts on timeline 1, where the spool (a partial) is.
	if err := os.MkdirAll(h.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.spool, pgwal.SegmentName(1, 1, seg)+".partial"), h.srv.expected(1, 1)[:1000], 0o600); err != nil {
		t.Fatal(err)
	}
	h.run()
	end := sw + seg
	h.waitFor("uploaded", time.Second, func() bool { return h.s.Status().UploadedLSN == end })
	h.checkSegment(1, 1)
	h.checkPartial(1, 2, 4000)
	h.checkSegment(2, 2)
	h.checkPartial(2, 3, int64(end-pgwal.SegmentStart(3, seg)))
	if !h.has("wal/00000002/00000002.history") {
		t.Error("history file not stored")
	}
	if h.has(h.segKey(2)) {
		t.Error("timeline 1's last segment stored as a full segment")
	}
	if st := h.s.Status(); st.Timeline != 2 {
		t.Errorf("timeline %d", st.Timeline)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}
