package drill

import (
	"math/rand/v2"
	"time"

	"github.com/walvault/walvault/repo/catalog"
)

// RPO is the recovery point measured by a drill: how much committed work
// before the moment recovered to is missing from the recovered cluster.
// For a time target it is the target minus the newest recovered commit;
// for the latest point (target nil) it is the drill's start minus the
// newest recovered commit, which includes any quiet time of the primary
// before the drill (no commit, nothing to lose) and the repository's lag.
func RPO(target *time.Time, drillStart, newestCommit time.Time) time.Duration {
	if target != nil {
		return target.Sub(newestCommit)
	}
	return drillStart.Sub(newestCommit)
}

// RandomPoint draws a moment uniformly from w (both ends included), in
// whole microseconds (PostgreSQL's precision) and never outside w. A window
// of zero length gives its start.
func RandomPoint(w catalog.Window, rnd *rand.Rand) time.Time {
	from := w.From.Truncate(time.Microsecond)
	if from.Before(w.From) {
		from = from.Add(time.Microsecond)
	}
	span := w.To.Sub(from)
	if span <= 0 {
		return w.From
	}
	steps := int64(span / time.Microsecond)
	return from.Add(time.Duration(rnd.Int64N(steps+1)) * time.Microsecond)
}

// NewRand returns the generator for a seed.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
