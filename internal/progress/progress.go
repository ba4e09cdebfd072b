package progress

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval = 10 * time.Second
	// drawEvery bounds the bar's redraws: at most four a second.
	drawEvery = 250 * time.Millisecond
	// sampleEvery is how often the rate is sampled when logging.
	sampleEvery = 500 * time.Millisecond
	// rateWindow is how far back the rate looks.
	rateWindow = 5 * time.Second
)

// Options configure a Reporter.
type Options struct {
	// Out receives the bar when Terminal is true (the terminal's stream,
	// usually stderr).
	Out io.Writer
	// Terminal draws a bar on Out; otherwise progress goes to Logger.
	Terminal bool
	// Width returns the terminal's width in columns, asked at every
	// redraw so that a resized window is followed (default: 80).
	Width func() int
	// Logger receives the periodic lines when Terminal is false (default:
	// discard).
	Logger *slog.Logger
	// Interval is the time between log lines, and the time an operation
	// must last before it logs any (default 10 s).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Reporter collects the figures of a running operation and shows them.
// Its methods are safe for concurrent use.
type Reporter struct {
	opts Options

	done, total, items, itemsTotal atomic.Int64

	mu       sync.Mutex
	phase    string
	unit     string // of items ("" when items are not counted)
	detail   string
	began    time.Time // the reporter's start
	phaseAt  time.Time
	rate     rateMeter
	drawn    bool // a bar of this phase is on the screen
	lastLog  time.Time
	logged   bool // a line of this phase was logged
	closed   bool
	stop     chan struct{}
	finished chan struct{}
}

// New starts a reporter: a goroutine redraws the bar or logs until Close.
func New(opts Options) *Reporter {
	r := newReporter(opts)
	every := sampleEvery
	if opts.Terminal {
		every = drawEvery
	}
	r.stop, r.finished = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.tick()
			}
		}
	}()
	return r
}

// newReporter makes a reporter without its goroutine: tests call tick.
func newReporter(opts Options) *Reporter {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	r := &Reporter{opts: opts}
	r.began = opts.Now()
	r.lastLog = r.began
	r.total.Store(-1)
	r.itemsTotal.Store(-1)
	return r
}

// Start begins a phase named phase ("backup", "restore", "waiting for
// WAL") of total bytes (negative: unknown), ending the previous one. The
// counters start from zero.
func (r *Reporter) Start(phase string, total int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.endLocked()
	now := r.opts.Now()
	r.phase, r.unit, r.detail, r.phaseAt = phase, "", "", now
	r.done.Store(0)
	r.total.Store(total)
	r.items.Store(0)
	r.itemsTotal.Store(-1)
	r.rate = rateMeter{}
	r.rate.add(now, 0)
	r.drawn, r.logged = false, false
}

// SetItems counts items (files, objects) in the phase besides bytes:
// total of them (negative: unknown), called unit ("files").
func (r *Reporter) SetItems(total int64, unit string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.unit = unit
	r.mu.Unlock()
	r.itemsTotal.Store(total)
}

// SetDetail sets a short text shown after the phase's name (the check a
// drill runs, the LSN recovery waits for); "" removes it.
func (r *Reporter) SetDetail(s string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.detail = s
	r.mu.Unlock()
}

// Add counts n more bytes done.
func (r *Reporter) Add(n int64) {
	if r != nil {
		r.done.Add(n)
	}
}

// AddItems counts n more items done.
func (r *Reporter) AddItems(n int64) {
	if r != nil {
		r.items.Add(n)
	}
}

// SetTotal changes the phase's total bytes (negative: unknown).
func (r *Reporter) SetTotal(total int64) {
	if r != nil {
		r.total.Store(total)
	}
}

// Update sets the bytes done so far and the total (negative: unknown), for
// code that reports cumulative figures.
func (r *Reporter) Update(done, total int64) {
	if r != nil {
		r.done.Store(done)
		r.total.Store(total)
	}
}

// Done ends the phase: its final figures stay on the terminal, or are
// logged when the phase logged a line before.
func (r *Reporter) Done() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLocked()
}

// Close ends the current phase and stops the reporter. Call it before
// writing anything else to the terminal.
func (r *Reporter) Close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.endLocked()
	r.closed = true
	r.mu.Unlock()
	if r.stop != nil {
		close(r.stop)
		<-r.finished
	}
}

// tick samples the counters and redraws or logs when it is time.
func (r *Reporter) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.phase == "" {
		return
	}
	now := r.opts.Now()
	s := r.snapshotLocked(now, false)
	if r.opts.Terminal {
		r.drawLocked(s)
		return
	}
	if now.Sub(r.lastLog) < r.opts.Interval {
		return
	}
	r.lastLog, r.logged = now, true
	r.opts.Logger.LogAttrs(context.Background(), slog.LevelInfo, "progress", s.attrs()...)
}

// endLocked shows the final figures of the current phase, if any.
func (r *Reporter) endLocked() {
	if r.phase == "" {
		return
	}
	s := r.snapshotLocked(r.opts.Now(), true)
	switch {
	case r.opts.Terminal && r.drawn && s.hasCounts():
		w := r.width()
		io.WriteString(r.opts.Out, "\r"+fit(s.line(w), w)+clearEOL+"\n")
	case r.opts.Terminal && r.drawn:
		// A wait has nothing worth keeping on the screen.
		io.WriteString(r.opts.Out, "\r"+clearEOL)
	case !r.opts.Terminal && r.logged:
		r.opts.Logger.LogAttrs(context.Background(), slog.LevelInfo, "progress", s.attrs()...)
	}
	r.phase, r.drawn, r.logged = "", false, false
}

func (r *Reporter) snapshotLocked(now time.Time, final bool) snapshot {
	done := r.done.Load()
	r.rate.add(now, done)
	s := snapshot{
		phase: r.phase, detail: r.detail, unit: r.unit,
		done: done, total: r.total.Load(), items: r.items.Load(), itemsTotal: r.itemsTotal.Load(),
		elapsed: now.Sub(r.phaseAt), final: final, eta: -1,
	}
	if final {
		if sec := s.elapsed.Seconds(); sec > 0 {
			s.rate, s.rateOK = float64(done)/sec, true
		}
		return s
	}
	s.rate, s.rateOK = r.rate.rate()
	if s.rateOK && s.rate > 0 && s.total > 0 && done < s.total {
		s.eta = time.Duration(float64(s.total-done) / s.rate * float64(time.Second))
	}
	return s
}

const clearEOL = "\x1b[K"

func (r *Reporter) width() int {
	if r.opts.Width == nil {
		return 80
	}
	if w := r.opts.Width(); w > 0 {
		return w
	}
	return 80
}

func (r *Reporter) drawLocked(s snapshot) {
	w := r.width()
	io.WriteString(r.opts.Out, "\r"+fit(s.line(w), w)+clearEOL)
	r.drawn = true
}

// Handler wraps h, the handler of a logger that writes to the same
// terminal as the bar: each record clears the bar, is written, and the bar
// is drawn again below it. When not on a terminal it returns h.
func (r *Reporter) Handler(h slog.Handler) slog.Handler {
	if r == nil || !r.opts.Terminal {
		return h
	}
	return &clearingHandler{r: r, h: h}
}

type clearingHandler struct {
	r *Reporter
	h slog.Handler
}

func (c *clearingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return c.h.Enabled(ctx, l)
}

func (c *clearingHandler) Handle(ctx context.Context, rec slog.Record) error {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.drawn {
		return c.h.Handle(ctx, rec)
	}
	io.WriteString(r.opts.Out, "\r"+clearEOL)
	err := c.h.Handle(ctx, rec)
	if !r.closed && r.phase != "" {
		r.drawLocked(r.snapshotLocked(r.opts.Now(), false))
	}
	return err
}

func (c *clearingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &clearingHandler{r: c.r, h: c.h.WithAttrs(as)}
}

func (c *clearingHandler) WithGroup(name string) slog.Handler {
	return &clearingHandler{r: c.r, h: c.h.WithGroup(name)}
}
