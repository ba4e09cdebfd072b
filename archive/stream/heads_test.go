package stream

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/memstore"
)

// In a format-2 repository the streamer signs a completeness head after
// each full segment it stores (none for the streamed partial).
func TestStreamWritesHeads(t *testing.T) {
	mem := memstore.New()
	fs := faulty.Wrap(mem)
	r := repotest.New(t, repotest.OnStore(fs), repotest.Signed()).Repository
	h := &harness{t: t, srv: newFakeServer(pgwal.SegmentStart(1, seg) + 100), clock: newFakeClock(), r: r, store: fs, st: mem, spool: filepath.Join(t.TempDir(), "spool")}
	s, err := New(r, Options{Spool: h.spool, Clock: h.clock, PartialInterval: time.Second, StatusInterval: 10 * time.Second,
		Backoff: func(int) time.Duration { return time.Second }})
	if err != nil {
		t.Fatal(err)
	}
	s.dial = h.srv.dial
	h.s = s
	end := h.srv.produce(2*seg + seg/2)
	h.run()
	h.waitFor("uploaded", time.Second, func() bool { return h.s.Status().UploadedLSN == end })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	heads, _, err := r.WALHeads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := heads[1].File.Name, pgwal.SegmentName(1, 2, seg); got != want {
		t.Fatalf("newest head %q, want %q (the last full segment)", got, want)
	}
}
