package progress

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

const MiB = 1 << 20

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// terminal is a reporter drawing into a buffer of a terminal whose width
// the test sets.
type terminal struct {
	r     *Reporter
	out   *bytes.Buffer
	clk   *clock
	width int
}

func newTerminal(width int) *terminal {
	t := &terminal{out: &bytes.Buffer{}, clk: newClock(), width: width}
	t.r = newReporter(Options{Out: t.out, Terminal: true, Width: func() int { return t.width }, Now: t.clk.Now})
	return t
}

// frames are the successive contents of the bar's line.
func (t *terminal) frames() []string {
	var out []string
	for _, f := range strings.Split(t.out.String(), "\r") {
		if f = strings.TrimSuffix(strings.TrimSuffix(f, "\n"), clearEOL); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (t *terminal) last() string {
	f := t.frames()
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// TestRateIsRecent: the rate follows a change of speed within the window
// instead of averaging since the start, and the ETA follows the rate.
func TestRateIsRecent(t *testing.T) {
	term := newTerminal(120)
	r, clk := term.r, term.clk
	r.Start("restore", 200*MiB)
	// 10 s at 10 MiB/s, then 6 s at 1 MiB/s, sampled four times a second.
	for i := 0; i < 40; i++ {
		clk.advance(250 * time.Millisecond)
		r.Add(10 * MiB / 4)
		r.tick()
	}
	for i := 0; i < 24; i++ {
		clk.advance(250 * time.Millisecond)
		r.Add(MiB / 4)
		r.tick()
	}
	s := r.snapshotLocked(clk.Now(), false)
	if !s.rateOK || math.Abs(s.rate-MiB) > 1 {
		t.Fatalf("rate %.0f B/s (ok %v), want 1 MiB/s: the last 5 s, not the average since the start (6.6 MiB/s)", s.rate, s.rateOK)
	}
	// 106 MiB done of 200: 94 MiB left at 1 MiB/s.
	if s.done != 106*MiB || s.eta != 94*time.Second {
		t.Fatalf("done %d, ETA %v; want %d and 1m34s", s.done, s.eta, 106*MiB)
	}
	if got := term.last(); !strings.Contains(got, "ETA 1m34s") || !strings.Contains(got, "1.0 MiB/s") || !strings.Contains(got, "53%") {
		t.Fatalf("bar %q lacks the rate, percent or ETA", got)
	}
}

func TestRateNeedsASecond(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(0, 0)
	m.add(t0, 0)
	m.add(t0.Add(500*time.Millisecond), 100)
	if _, ok := m.rate(); ok {
		t.Fatal("a rate from half a second of samples")
	}
	m.add(t0.Add(time.Second), 300)
	if r, ok := m.rate(); !ok || r != 300 {
		t.Fatalf("rate %v %v, want 300", r, ok)
	}
	// Samples closer than minSampleGap are not kept.
	for i := 0; i < 100; i++ {
		m.add(t0.Add(time.Second+time.Duration(i)*time.Millisecond), 300)
	}
	if len(m.samples) != 3 {
		t.Fatalf("%d samples kept, want 3", len(m.samples))
	}
	// A stall: the rate falls to zero once the window has passed.
	for i := 1; i <= 6; i++ {
		m.add(t0.Add(time.Second+time.Duration(i)*time.Second), 300)
	}
	if r, ok := m.rate(); !ok || r != 0 {
		t.Fatalf("rate after a 6 s stall %v %v, want 0", r, ok)
	}
}

// TestBarWidth: the line never reaches the last column, whatever the
// width, and follows a resized terminal.
func TestBarWidth(t *testing.T) {
	term := newTerminal(80)
	r, clk := term.r, term.clk
	r.Start("backup", 3<<30)
	for i := 0; i < 8; i++ {
		clk.advance(250 * time.Millisecond)
		r.Add(100 * MiB)
		r.tick()
	}
	for _, tc := range []struct {
		width  int
		hasBar bool
	}{{80, true}, {200, true}, {52, false}, {30, false}, {10, false}} {
		term.width = tc.width
		clk.advance(250 * time.Millisecond)
		r.tick()
		got := term.last()
		if n := utf8.RuneCountInString(got); n > tc.width-1 {
			t.Errorf("width %d: line of %d columns: %q", tc.width, n, got)
		}
		if strings.Contains(got, "[") != tc.hasBar {
			t.Errorf("width %d: bar shown %v, want %v: %q", tc.width, !tc.hasBar, tc.hasBar, got)
		}
		if tc.width == 200 && !strings.Contains(got, "["+strings.Repeat("=", 9)) {
			t.Errorf("width 200: bar %q", got)
		}
		if tc.width >= 80 && !strings.HasPrefix(got, "backup  [") {
			t.Errorf("width %d: %q", tc.width, got)
		}
	}
	term.width = 80
	clk.advance(250 * time.Millisecond)
	r.tick()
	// 800 MiB in 3.5 s: every sample is inside the 5 s window.
	want := "backup  [====>             ]  800.0 MiB / 3.0 GiB  26%  228.6 MiB/s  ETA 9.9s"
	if got := term.last(); got != want {
		t.Fatalf("bar\n got %q\nwant %q", got, want)
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		pct  float64
		n    int
		want string
	}{
		{0, 10, "[>       ]"},
		{50, 10, "[====>   ]"},
		{99.9, 10, "[=======>]"},
		{100, 10, "[========]"},
	} {
		if got := bar(tc.pct, tc.n); got != tc.want || len(got) != tc.n {
			t.Errorf("bar(%v, %d) = %q, want %q", tc.pct, tc.n, got, tc.want)
		}
	}
}

// TestFinalLine: a phase ends with its figures on a line of their own,
// average rate and time taken instead of the ETA; a wait leaves nothing.
func TestFinalLine(t *testing.T) {
	term := newTerminal(100)
	r, clk := term.r, term.clk
	r.Start("restore", 64*MiB)
	for i := 0; i < 8; i++ {
		clk.advance(250 * time.Millisecond)
		r.Update(int64(i+1)*8*MiB, 64*MiB)
		r.tick()
	}
	r.Start("waiting for WAL", -1)
	if !strings.HasSuffix(term.out.String(), "restore  64.0 MiB / 64.0 MiB  100%  avg 32.0 MiB/s  2.0s"+clearEOL+"\n") {
		t.Fatalf("output ends %q", tail(term.out.String()))
	}
	clk.advance(12 * time.Second)
	r.tick()
	if got := term.last(); got != "waiting for WAL  12s" {
		t.Fatalf("wait shows %q", got)
	}
	r.Close()
	if !strings.HasSuffix(term.out.String(), "\r"+clearEOL) {
		t.Fatalf("the wait's line is not cleared: %q", tail(term.out.String()))
	}
	before := term.out.Len()
	r.Start("late", 1)
	r.Add(1)
	r.tick()
	r.Close()
	if term.out.Len() != before {
		t.Fatal("a closed reporter drew")
	}
}

// A phase too short to be drawn leaves no line behind.
func TestShortPhaseOnTerminal(t *testing.T) {
	term := newTerminal(80)
	term.r.Start("restore", 10)
	term.r.Add(10)
	term.r.Close()
	if term.out.Len() != 0 {
		t.Fatalf("output %q", term.out.String())
	}
}

func TestUnknownTotal(t *testing.T) {
	term := newTerminal(100)
	r, clk := term.r, term.clk
	r.Start("backup", -1)
	for i := 0; i < 8; i++ {
		clk.advance(250 * time.Millisecond)
		r.Add(MiB)
		r.tick()
	}
	got := term.last()
	if got != "backup  8.0 MiB  4.0 MiB/s" {
		t.Fatalf("unknown total: %q", got)
	}
	// A total learned later (the server's estimate) brings the rest.
	r.SetTotal(16 * MiB)
	clk.advance(250 * time.Millisecond)
	r.tick()
	if got := term.last(); !strings.Contains(got, "50%") || !strings.Contains(got, "ETA") || !strings.Contains(got, "[") {
		t.Fatalf("known total: %q", got)
	}
	// Beyond the estimate: 100%, no ETA.
	r.Add(10 * MiB)
	clk.advance(250 * time.Millisecond)
	r.tick()
	if got := term.last(); !strings.Contains(got, "100%") || strings.Contains(got, "ETA") {
		t.Fatalf("beyond the estimate: %q", got)
	}
}

func TestItems(t *testing.T) {
	term := newTerminal(120)
	r, clk := term.r, term.clk
	r.Start("push", 100*MiB)
	r.SetItems(5000, "files")
	r.SetDetail("acme")
	for i := 0; i < 4; i++ {
		clk.advance(250 * time.Millisecond)
		r.Add(10 * MiB)
		r.AddItems(300)
		r.tick()
	}
	if got := term.last(); !strings.HasPrefix(got, "push acme  [") || !strings.Contains(got, "40.0 MiB / 100.0 MiB  1200/5000 files  40%") {
		t.Fatalf("%q", got)
	}
}

// TestLogRecordClearsBar: a log record on the bar's terminal starts at the
// beginning of a clean line, and the bar comes back after it.
func TestLogRecordClearsBar(t *testing.T) {
	term := newTerminal(80)
	r, clk := term.r, term.clk
	log := slog.New(r.Handler(slog.NewTextHandler(term.out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})))
	log.Info("before any bar")
	if got := term.out.String(); got != "level=INFO msg=\"before any bar\"\n" {
		t.Fatalf("%q", got)
	}
	term.out.Reset()
	r.Start("restore", 10*MiB)
	clk.advance(time.Second)
	r.Add(MiB)
	r.tick()
	log.With("archive", "base.tar").Info("restoring archive")
	bar := "\rrestore  [==>                 ]  1.0 MiB / 10.0 MiB  10%  1.0 MiB/s  ETA 9.0s" + clearEOL
	want := bar + "\r" + clearEOL + "level=INFO msg=\"restoring archive\" archive=base.tar\n" + bar
	if got := term.out.String(); got != want {
		t.Fatalf("output\n got %q\nwant %q", got, want)
	}
	r.Close()
	term.out.Reset()
	log.Info("after")
	if got := term.out.String(); got != "level=INFO msg=after\n" {
		t.Fatalf("after Close: %q", got)
	}
}

// logged collects the reporter's log records.
type logged struct {
	r   *Reporter
	clk *clock
	buf *bytes.Buffer
}

func newLogged(interval time.Duration) *logged {
	l := &logged{clk: newClock(), buf: &bytes.Buffer{}}
	l.r = newReporter(Options{Logger: slog.New(slog.NewJSONHandler(l.buf, nil)), Interval: interval, Now: l.clk.Now})
	return l
}

func (l *logged) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogLines(t *testing.T) {
	l := newLogged(10 * time.Second)
	r := l.r
	r.Start("backup", 1000*MiB)
	// 25 s at 20 MiB/s, sampled twice a second.
	for i := 0; i < 50; i++ {
		l.clk.advance(500 * time.Millisecond)
		r.Add(10 * MiB)
		r.tick()
	}
	r.Done()
	recs := l.records(t)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 2 periodic and a final one:\n%s", len(recs), l.buf)
	}
	for i, want := range []struct {
		bytes, elapsed float64
		final          bool
	}{{200 * MiB, 10e9, false}, {400 * MiB, 20e9, false}, {500 * MiB, 25e9, true}} {
		rec := recs[i]
		if rec["msg"] != "progress" || rec["phase"] != "backup" || rec["bytes"] != want.bytes || rec["total_bytes"] != float64(1000*MiB) ||
			rec["elapsed"] != want.elapsed || rec["bytes_per_second"] != float64(20*MiB) || rec["rate"] != "20.0 MiB/s" {
			t.Errorf("record %d: %v", i, rec)
		}
		if _, ok := rec["final"]; ok != want.final {
			t.Errorf("record %d: final %v", i, rec)
		}
	}
	if recs[0]["percent"] != 20.0 || recs[0]["eta"] != float64(40*time.Second) || recs[0]["done"] != "200.0 MiB" {
		t.Errorf("first record %v", recs[0])
	}
	if _, ok := recs[2]["eta"]; ok {
		t.Errorf("final record with an ETA: %v", recs[2])
	}
}

// An operation shorter than the interval logs nothing at all, and neither
// does a phase that began after the last line and ended before the next.
func TestShortOperationLogsNothing(t *testing.T) {
	l := newLogged(10 * time.Second)
	r := l.r
	r.Start("restore", 100)
	for i := 0; i < 18; i++ {
		l.clk.advance(500 * time.Millisecond)
		r.Add(5)
		r.tick()
	}
	r.Start("waiting for WAL", -1)
	l.clk.advance(500 * time.Millisecond)
	r.tick()
	if l.buf.Len() != 0 {
		t.Fatalf("9 s + 0.5 s, interval 10 s: logged %s", l.buf)
	}
	r.Start("checks", -1)
	r.Close()
	if l.buf.Len() != 0 {
		t.Fatalf("logged %s", l.buf)
	}
}

func TestLogLineOfAWait(t *testing.T) {
	l := newLogged(time.Second)
	l.r.Start("waiting for WAL", -1)
	l.r.SetDetail("000000010000000000000007")
	l.clk.advance(time.Second)
	l.r.tick()
	recs := l.records(t)
	if len(recs) != 1 || recs[0]["detail"] != "000000010000000000000007" || recs[0]["elapsed"] != 1e9 {
		t.Fatalf("%v", recs)
	}
	if _, ok := recs[0]["bytes"]; ok {
		t.Fatalf("a wait with byte counts: %v", recs[0])
	}
}

func TestNilReporter(t *testing.T) {
	var r *Reporter
	r.Start("x", 1)
	r.SetItems(1, "files")
	r.SetDetail("d")
	r.Add(1)
	r.AddItems(1)
	r.SetTotal(2)
	r.Update(1, 2)
	r.Done()
	r.Close()
	h := slog.NewTextHandler(&bytes.Buffer{}, nil)
	if r.Handler(h) != slog.Handler(h) {
		t.Fatal("a nil reporter wraps the handler")
	}
	f := r.Update // the method value the backup and restore hooks take
	f(1, 2)
}

// TestConcurrent: counts from many goroutines while the real ticker draws
// (run with -race).
func TestConcurrent(t *testing.T) {
	var out syncBuffer
	r := New(Options{Out: &out, Terminal: true})
	log := slog.New(r.Handler(slog.NewTextHandler(&out, nil)))
	r.Start("push", 8*1000*4096)
	r.SetItems(8*1000, "files")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				r.Add(4096)
				r.AddItems(1)
				if i%250 == 0 {
					log.Info("working", "goroutine", g)
				}
			}
		}()
	}
	wg.Wait()
	if r.done.Load() != 8*1000*4096 || r.items.Load() != 8000 {
		t.Fatalf("counted %d bytes, %d items", r.done.Load(), r.items.Load())
	}
	r.Close()
	r.Close()
	if n := strings.Count(out.String(), "msg=working"); n != 32 {
		t.Fatalf("%d log records, want 32", n)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2900 * time.Millisecond: "2.9s",
		42 * time.Second:        "42s",
		185 * time.Second:       "3m05s",
		7620 * time.Second:      "2h07m",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func tail(s string) string {
	if len(s) > 200 {
		return s[len(s)-200:]
	}
	return s
}

func BenchmarkAdd(b *testing.B) {
	r := newReporter(Options{})
	r.Start("x", -1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Add(4096)
		}
	})
}
