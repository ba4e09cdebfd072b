package stream

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/storage"
)

// fakeClock moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// fakeServer plays a primary: a WAL stream of generated segments (valid
// long page headers, pseudo-random content) that grows when told to, on
// timeline tli, possibly after an earlier timeline that ended at switchAt.
type fakeServer struct {
	segSize int64

	mu          sync.Mutex
	end         pgwal.LSN
	tli         uint32
	switchAt    pgwal.LSN // end of timeline tli-1 (0: no switch)
	slot        bool
	slotRestart pgwal.LSN
	down        bool
	grow        chan struct{}
	conns       []*fakeConn
	starts      []startReq
	statuses    []statusMsg
	chunk       int
}

type startReq struct {
	lsn pgwal.LSN
	tli uint32
}

type statusMsg struct{ write, flush pgwal.LSN }

func newFakeServer(start pgwal.LSN) *fakeServer {
	return &fakeServer{segSize: waltest.SegSize, end: start, tli: 1, slot: true, slotRestart: start, grow: make(chan struct{}), chunk: 50000}
}

// byteAt returns WAL content: segment images per timeline; bytes before
// a switch point are those of the older timeline (as after a promotion).
func (f *fakeServer) content(tli uint32, pos pgwal.LSN, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		segno := pgwal.SegNoOf(pos, f.segSize)
		t := tli
		if f.switchAt != 0 && pos < f.switchAt {
			t = tli - 1
		}
		seg := segImage(t, segno)
		off := int64(pos - pgwal.SegmentStart(segno, f.segSize))
		take := min(int64(n-len(out)), f.segSize-off)
		if f.switchAt != 0 && pos < f.switchAt && pos+pgwal.LSN(take) > f.switchAt {
			take = int64(f.switchAt - pos)
		}
		out = append(out, seg[off:off+take]...)
		pos += pgwal.LSN(take)
	}
	return out
}

var (
	segCacheMu sync.Mutex
	segCache   = map[[2]uint64][]byte{}
)

func segImage(tli uint32, segno uint64) []byte {
	segCacheMu.Lock()
	defer segCacheMu.Unlock()
	k := [2]uint64{uint64(tli), segno}
	if b, ok := segCache[k]; ok {
		return b
	}
	b := waltest.Segment(tli, segno, waltest.SysID, 42)
	segCache[k] = b
	return b
}

// expected is the WAL of segment segno as stored on timeline tli.
func (f *fakeServer) expected(tli uint32, segno uint64) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.content(tli, pgwal.SegmentStart(segno, f.segSize), int(f.segSize))
}

func (f *fakeServer) changedLocked() {
	close(f.grow)
	f.grow = make(chan struct{})
}

func (f *fakeServer) produce(n int64) pgwal.LSN {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.end += pgwal.LSN(n)
	f.changedLocked()
	return f.end
}

func (f *fakeServer) setDown(d bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = d
}

// dropConns breaks every open connection.
func (f *fakeServer) dropConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.broken = true
	}
	f.changedLocked()
}

func (f *fakeServer) openConns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.conns {
		if !c.closed {
			n++
		}
	}
	return n
}

func (f *fakeServer) startReqs() []startReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]startReq(nil), f.starts...)
}

func (f *fakeServer) dial(ctx context.Context) (replConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, replconn.ErrConnect
	}
	c := &fakeConn{srv: f}
	f.conns = append(f.conns, c)
	return c, nil
}

type fakeConn struct {
	srv                       *fakeServer
	tli                       uint32
	pos                       pgwal.LSN
	streaming, broken, closed bool
}

func (c *fakeConn) Identify(ctx context.Context) (replconn.Cluster, error) {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	return replconn.Cluster{SystemIdentifier: waltest.SysID, Timeline: f.tli, XLogPos: f.end, WALSegmentSize: f.segSize, Major: 15, ServerVersionNum: 150018}, nil
}

func (c *fakeConn) ReadSlot(ctx context.Context, slot string) (bool, pgwal.LSN, uint32, error) {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.slot {
		return false, 0, 0, nil
	}
	return true, f.slotRestart, 0, nil
}

func (c *fakeConn) CreateSlot(ctx context.Context, slot string) error {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slot = true
	f.slotRestart = f.end
	return nil
}

func (c *fakeConn) TimelineHistory(ctx context.Context, tli uint32) ([]byte, error) {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	return []byte("1\t" + f.switchAt.String() + "\tno recovery target specified\n"), nil
}

func (c *fakeConn) StartReplication(ctx context.Context, slot string, start pgwal.LSN, tli uint32) error {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, startReq{start, tli})
	if tli < f.tli && start >= f.switchAt {
		return &endOfTimeline{next: f.tli, start: f.switchAt}
	}
	c.tli, c.pos, c.streaming = tli, start, true
	return nil
}

func (c *fakeConn) Receive(ctx context.Context) (message, error) {
	f := c.srv
	for {
		f.mu.Lock()
		grow := f.grow
		if c.broken || c.closed {
			f.mu.Unlock()
			return message{}, errors.New("fake: connection reset by peer")
		}
		limit := f.end
		if c.tli < f.tli {
			limit = f.switchAt
			if c.pos >= limit {
				c.streaming = false
				f.mu.Unlock()
				return message{kind: msgEndOfTimeline}, nil
			}
		}
		if c.pos < limit {
			n := min(int(limit-c.pos), f.chunk)
			m := message{kind: msgXLogData, walStart: c.pos, serverWALEnd: f.end, data: f.content(c.tli, c.pos, n)}
			c.pos += pgwal.LSN(n)
			f.mu.Unlock()
			return m, nil
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return message{}, ctx.Err()
		case <-grow:
		}
	}
}

func (c *fakeConn) SendStatus(write, flush pgwal.LSN, now time.Time, reply bool) error {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.broken || c.closed {
		return errors.New("fake: connection reset by peer")
	}
	f.statuses = append(f.statuses, statusMsg{write, flush})
	if flush > f.slotRestart {
		f.slotRestart = flush
	}
	return nil
}

func (c *fakeConn) EndCopy(ctx context.Context) (uint32, pgwal.LSN, error) {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tli, f.switchAt, nil
}

func (c *fakeConn) Close(ctx context.Context) error {
	f := c.srv
	f.mu.Lock()
	defer f.mu.Unlock()
	c.closed = true
	f.changedLocked()
	return nil
}

var errStoreDown = storage.Transient(errors.New("fake: store unavailable"))

// keys lists every key under prefix.
func keys(t *testing.T, st storage.Store, prefix string) []string {
	t.Helper()
	var out []string
	if err := st.List(context.Background(), prefix, func(oi storage.ObjectInfo) error {
		out = append(out, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

var storageIfAbsent = storage.PutOptions{IfAbsent: true}
