package progress

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/walvault/walvault/internal/units"
)

// snapshot is what one redraw or log line shows.
type snapshot struct {
	phase, detail, unit string
	done, total         int64
	items, itemsTotal   int64
	elapsed             time.Duration
	rate                float64 // bytes per second: recent, or the phase's average when final
	rateOK              bool
	eta                 time.Duration // -1: unknown
	final               bool
}

// hasCounts tells whether the phase moves bytes or items (a wait does not).
func (s snapshot) hasCounts() bool {
	return s.done > 0 || s.total > 0 || s.items > 0 || s.itemsTotal > 0
}

func (s snapshot) percent() (float64, bool) {
	if s.total <= 0 {
		return 0, false
	}
	// The server's estimate of a backup's size can be exceeded.
	return math.Min(100, 100*float64(s.done)/float64(s.total)), true
}

// line is the bar's text for a terminal width columns wide.
func (s snapshot) line(width int) string {
	head := s.phase
	if s.detail != "" {
		head += " " + s.detail
	}
	var rest []string
	if s.done > 0 || s.total > 0 {
		amount := units.Bytes(s.done)
		if s.total > 0 {
			amount += " / " + units.Bytes(s.total)
		}
		rest = append(rest, amount)
	}
	if s.unit != "" {
		n := fmt.Sprint(s.items)
		if s.itemsTotal >= 0 {
			n += "/" + fmt.Sprint(s.itemsTotal)
		}
		rest = append(rest, n+" "+s.unit)
	}
	pct, pctOK := s.percent()
	if pctOK {
		rest = append(rest, fmt.Sprintf("%.0f%%", math.Floor(pct)))
	}
	if s.rateOK && s.done > 0 {
		r := units.Bytes(int64(s.rate)) + "/s"
		if s.final {
			r = "avg " + r
		}
		rest = append(rest, r)
	}
	switch {
	case s.final || !s.hasCounts():
		rest = append(rest, duration(s.elapsed))
	case s.eta >= 0:
		rest = append(rest, "ETA "+duration(s.eta))
	}
	text := strings.Join(rest, "  ")
	// The bar takes what room is left, between 10 and 40 columns; it is
	// dropped on a narrow terminal rather than squeezed.
	if pctOK && !s.final {
		room := width - 1 - utf8.RuneCountInString(head) - len(text) - 6
		if room >= 10 {
			return head + "  " + bar(pct, min(room, 40)) + "  " + text
		}
	}
	if text == "" {
		return head
	}
	return head + "  " + text
}

// bar draws pct in n columns, brackets included.
func bar(pct float64, n int) string {
	inner := n - 2
	full := int(pct / 100 * float64(inner))
	if full >= inner {
		return "[" + strings.Repeat("=", inner) + "]"
	}
	return "[" + strings.Repeat("=", full) + ">" + strings.Repeat(" ", inner-full-1) + "]"
}

// fit cuts s to width-1 columns: writing into the last column makes some
// terminals wrap, and a wrapped bar is not redrawn in place.
func fit(s string, width int) string {
	if width < 2 || utf8.RuneCountInString(s) < width {
		return s
	}
	return string([]rune(s)[:width-1])
}

// duration formats d for people: "42s", "3m05s", "2h07m".
func duration(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	sec := int64(d.Round(time.Second) / time.Second)
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm%02ds", sec/60, sec%60)
	}
	return fmt.Sprintf("%dh%02dm", sec/3600, sec%3600/60)
}

// attrs are the figures of a log line.
func (s snapshot) attrs() []slog.Attr {
	as := []slog.Attr{slog.String("phase", s.phase)}
	if s.detail != "" {
		as = append(as, slog.String("detail", s.detail))
	}
	if s.hasCounts() {
		as = append(as, slog.Int64("bytes", s.done), slog.String("done", units.Bytes(s.done)))
		if s.total >= 0 {
			as = append(as, slog.Int64("total_bytes", s.total), slog.String("total", units.Bytes(s.total)))
		}
		if pct, ok := s.percent(); ok {
			as = append(as, slog.Float64("percent", math.Floor(pct*10)/10))
		}
		if s.unit != "" {
			as = append(as, slog.Int64(s.unit, s.items))
			if s.itemsTotal >= 0 {
				as = append(as, slog.Int64(s.unit+"_total", s.itemsTotal))
			}
		}
		if s.rateOK {
			as = append(as, slog.Int64("bytes_per_second", int64(s.rate)), slog.String("rate", units.Bytes(int64(s.rate))+"/s"))
		}
		if s.eta >= 0 {
			as = append(as, slog.Duration("eta", s.eta.Round(time.Second)))
		}
	}
	as = append(as, slog.Duration("elapsed", s.elapsed.Round(time.Millisecond)))
	if s.final {
		as = append(as, slog.Bool("final", true))
	}
	return as
}

// rateMeter measures the rate over the last rateWindow from samples of a
// cumulative count.
type rateMeter struct {
	samples []sample
}

type sample struct {
	t time.Time
	n int64
}

// minSampleGap keeps bursts of redraws (one per log record) from filling
// the window with samples.
const minSampleGap = 100 * time.Millisecond

func (m *rateMeter) add(t time.Time, n int64) {
	if k := len(m.samples); k > 0 && t.Sub(m.samples[k-1].t) < minSampleGap {
		return
	}
	m.samples = append(m.samples, sample{t, n})
	// Keep one sample at or before the window's start, so that the rate
	// always spans the whole window once the phase is that old.
	cut := 0
	for cut+1 < len(m.samples) && !m.samples[cut+1].t.After(t.Add(-rateWindow)) {
		cut++
	}
	if cut > 0 {
		m.samples = append(m.samples[:0], m.samples[cut:]...)
	}
}

// rate returns the count per second over the window; ok is false until
// the samples span a second.
func (m *rateMeter) rate() (float64, bool) {
	if len(m.samples) < 2 {
		return 0, false
	}
	first, last := m.samples[0], m.samples[len(m.samples)-1]
	dt := last.t.Sub(first.t)
	if dt < time.Second {
		return 0, false
	}
	return math.Max(0, float64(last.n-first.n)/dt.Seconds()), true
}
