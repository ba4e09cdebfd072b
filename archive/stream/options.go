package stream

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
)

// ErrSlotMissing: the replication slot does not exist on the server and
// Options.CreateSlot is off.
var ErrSlotMissing = errors.New("replication slot does not exist")

// ErrSpool wraps failures of the local spool directory (cannot create, write,
// fsync or rename files): the streamer cannot keep its promise without it.
var ErrSpool = errors.New("spool directory unusable")

// Clock is the streamer's source of time, injected so that tests control it.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure a Streamer. Zero values take the documented defaults.
type Options struct {
	// ConnString is a libpq connection string; "" relies on the PG*
	// environment variables.
	ConnString string
	// Slot is the physical replication slot (default "walvault").
	Slot string
	// CreateSlot creates the slot (reserving WAL at once) when it is missing;
	// otherwise a missing slot stops Run with ErrSlotMissing.
	CreateSlot bool
	// Spool is the local directory WAL is written to (and fsynced) before
	// it is reported flushed to the server and uploaded. Required.
	Spool string
	// MaxSpool bounds the bytes of WAL in the spool not yet uploaded; above
	// it the streamer stops receiving until uploads catch up (the slot then
	// retains WAL on the primary). Default 4 GiB, at least two segments.
	MaxSpool int64
	// PartialInterval is how often the segment being received is uploaded
	// while it grows (default 1s).
	PartialInterval time.Duration
	// Synchronous fsyncs and reports the flush position after every batch
	// of received messages, as a synchronous standby must. Otherwise the
	// spool is fsynced every PartialInterval and at each segment end.
	Synchronous bool
	// StatusInterval is the standby status update interval (default 10s).
	StatusInterval time.Duration
	// SlotWarnBytes: warn when the slot retains more WAL than this on the
	// primary (default 1 GiB).
	SlotWarnBytes int64
	// UploadWorkers is the number of parallel full-segment uploads
	// (default 2).
	UploadWorkers int
	// Logger receives operational messages (default: discarded).
	Logger *slog.Logger
	// Clock defaults to the real clock.
	Clock Clock
	// Backoff is the delay before reconnect (and upload retry) attempt n,
	// n ≥ 1. Default: 1s doubling to 30s, jittered.
	Backoff func(attempt int) time.Duration
	// Ready is called once, when the first connection streams.
	Ready func()
}

const (
	defaultSlot            = "walvault"
	defaultMaxSpool        = 4 << 30
	defaultPartialInterval = time.Second
	defaultStatusInterval  = 10 * time.Second
	defaultSlotWarnBytes   = 1 << 30
	defaultUploadWorkers   = 2
	drainTimeout           = 60 * time.Second
	slotWarnEvery          = time.Minute
)

// DefaultBackoff is 1s doubling to 30s, each delay jittered to between half
// and all of its value.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second
	for i := 1; i < attempt && d < 30*time.Second; i++ {
		d *= 2
	}
	d = min(d, 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// Status is a snapshot of the streamer's state.
type Status struct {
	Connected bool
	Timeline  uint32
	// ReceivedLSN: WAL before it has been received and written to the spool.
	ReceivedLSN pgwal.LSN
	// FlushedLSN: WAL before it is fsynced in the spool (what the server is
	// told is flushed).
	FlushedLSN pgwal.LSN
	// UploadedLSN: everything before it is in the repository, as full
	// segments or as the newest streamed partial (0 until known).
	UploadedLSN pgwal.LSN
	// ServerWALEnd is the server's WAL end from its last message.
	ServerWALEnd pgwal.LSN
	LastReceive  time.Time
	LastUpload   time.Time
	// LagBytes is ServerWALEnd - UploadedLSN (0 when either is unknown).
	LagBytes int64
	// LagSeconds is the age of the oldest received WAL not yet uploaded
	// (0 when everything received is uploaded).
	LagSeconds float64
	// SpoolBytes is the WAL in the spool not yet uploaded.
	SpoolBytes                           int64
	Uploads, UploadRetries, UploadErrors uint64
	Reconnects                           uint64
	// SlotRetainedBytes ≈ ServerWALEnd - the last flush position reported,
	// which is where the slot holds WAL on the primary from.
	SlotRetainedBytes int64
}
