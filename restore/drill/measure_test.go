package drill

import (
	"testing"
	"time"

	"github.com/walvault/walvault/repo/catalog"
)

func TestRPO(t *testing.T) {
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	newest := time.Date(2026, 11, 22, 10, 13, 58, 500_000_000, time.UTC)
	target := time.Date(2026, 11, 22, 10, 14, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		target *time.Time
		newest time.Time
		want   time.Duration
	}{
		{"time target", &target, newest, 1500 * time.Millisecond},
		{"commit exactly at the target", &target, target, 0},
		{"latest: since the drill started", nil, newest, time.Hour + 46*time.Minute + 1500*time.Millisecond},
		{"latest, other zone", nil, newest.In(time.FixedZone("", 5*3600+1800)), time.Hour + 46*time.Minute + 1500*time.Millisecond},
		{"microseconds", &target, target.Add(-time.Microsecond), time.Microsecond},
	} {
		if got := RPO(tc.target, start, tc.newest); got != tc.want {
			t.Errorf("%s: RPO = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRandomPoint(t *testing.T) {
	from := time.Date(2026, 11, 22, 1, 0, 0, 123_456_789, time.UTC)
	w := catalog.Window{From: from, To: from.Add(10 * time.Second)}
	// The same seed draws the same point: a failure can be replayed.
	if a, b := RandomPoint(w, NewRand(42)), RandomPoint(w, NewRand(42)); !a.Equal(b) {
		t.Errorf("seed 42 drew %v then %v", a, b)
	}
	rnd := NewRand(7)
	const n, buckets = 20000, 10
	var count [buckets]int
	for i := 0; i < n; i++ {
		p := RandomPoint(w, rnd)
		if p.Before(w.From) || p.After(w.To) {
			t.Fatalf("point %v outside %v..%v", p, w.From, w.To)
		}
		if p.Nanosecond()%1000 != 0 {
			t.Fatalf("point %v is not a whole microsecond", p)
		}
		count[int(p.Sub(w.From)*buckets/w.To.Sub(w.From))%buckets]++
	}
	// Uniform: each tenth of the window gets about n/10 draws (±15% is
	// over 10 standard deviations; a draw biased to one end fails).
	for i, c := range count {
		if c < n/buckets*85/100 || c > n/buckets*115/100 {
			t.Errorf("tenth %d of the window drew %d of %d points: not uniform (%v)", i, c, n, count)
		}
	}
	// A window of zero length, or one shorter than a microsecond.
	if p := RandomPoint(catalog.Window{From: from, To: from}, rnd); !p.Equal(from) {
		t.Errorf("empty window: %v, want %v", p, from)
	}
	short := catalog.Window{From: from, To: from.Add(500 * time.Nanosecond)}
	if p := RandomPoint(short, rnd); p.Before(short.From) || p.After(short.To) {
		t.Errorf("short window: %v outside it", p)
	}
	// Both ends can be drawn in a window of one microsecond step.
	ends := map[time.Time]bool{}
	whole := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	tiny := catalog.Window{From: whole, To: whole.Add(time.Microsecond)}
	for i := 0; i < 200; i++ {
		ends[RandomPoint(tiny, rnd)] = true
	}
	if len(ends) != 2 || !ends[tiny.From] || !ends[tiny.To] {
		t.Errorf("window of one microsecond drew %v, want both ends", ends)
	}
}
