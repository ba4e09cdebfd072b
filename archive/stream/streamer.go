package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// Streamer receives WAL from a primary over a physical replication slot and
// keeps it in a repository. Create it with New and call Run once.
type Streamer struct {
	r       *repo.Repository
	opts    Options
	log     *slog.Logger
	clock   Clock
	dial    dialer
	segSize int64
	up      *uploader
	ran     atomic.Bool

	mu           sync.Mutex // guards st, marks, lastSlotWarn
	st           Status
	marks        []lagMark
	lastSlotWarn time.Time

	// Receiver state, owned by Run's goroutine.
	w             *segWriter
	haveEnd       bool   // endTLI/endSeg name where streaming resumes
	endTLI        uint32 // timeline of the newest WAL in the spool
	endSeg        uint64 // segment streaming resumes at (its start)
	received      pgwal.LSN
	flushed       pgwal.LSN
	slotRestart   pgwal.LSN
	lastSentFlush pgwal.LSN
	histories     map[uint32]bool
	readyOnce     sync.Once
}

// lagMark records when WAL up to lsn had been received.
type lagMark struct {
	lsn pgwal.LSN
	at  time.Time
}

const maxLagMarks = 4096

var (
	errBackpressure  = errors.New("spool full: pausing replication until uploads catch up")
	errTimelineEnded = errors.New("the server ended the timeline")
)

// New checks opts and prepares a Streamer for r.
func New(r *repo.Repository, opts Options) (*Streamer, error) {
	if r == nil {
		return nil, errors.New("stream: no repository")
	}
	if opts.Spool == "" {
		return nil, errors.New("stream: a spool directory is required")
	}
	segSize := r.Config.WALSegmentSize
	if opts.Slot == "" {
		opts.Slot = defaultSlot
	}
	if !slotName.MatchString(opts.Slot) {
		return nil, fmt.Errorf("stream: invalid replication slot name %q (lower-case letters, digits and underscores)", opts.Slot)
	}
	if opts.MaxSpool == 0 {
		opts.MaxSpool = defaultMaxSpool
	}
	if opts.MaxSpool < 2*segSize {
		return nil, fmt.Errorf("stream: MaxSpool %d is less than two WAL segments (%d bytes)", opts.MaxSpool, 2*segSize)
	}
	if opts.PartialInterval <= 0 {
		opts.PartialInterval = defaultPartialInterval
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = defaultStatusInterval
	}
	if opts.SlotWarnBytes <= 0 {
		opts.SlotWarnBytes = defaultSlotWarnBytes
	}
	if opts.UploadWorkers <= 0 {
		opts.UploadWorkers = defaultUploadWorkers
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	s := &Streamer{
		r: r, opts: opts, log: opts.Logger, clock: opts.Clock,
		dial: pgDialer(opts.ConnString), segSize: segSize,
		histories: map[uint32]bool{},
	}
	s.up = newUploader(s)
	return s, nil
}

// Status returns a consistent snapshot of the streamer's state.
func (s *Streamer) Status() Status {
	spool := s.up.spoolBytes()
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.SpoolBytes = spool
	if st.ServerWALEnd > st.UploadedLSN && st.UploadedLSN > 0 {
		st.LagBytes = int64(st.ServerWALEnd - st.UploadedLSN)
	}
	if len(s.marks) > 0 && st.ReceivedLSN > st.UploadedLSN {
		st.LagSeconds = now.Sub(s.marks[0].at).Seconds()
	}
	return st
}

// Run streams until ctx is cancelled, then stores everything received and
// returns nil, or an error naming what is left in the spool. It returns
// early only on errors that retrying cannot cure: ErrSlotMissing,
// repo.ErrClusterMismatch, walpush.ErrConflict, ErrSpool.
func (s *Streamer) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("stream: Run called twice")
	}
	if err := os.MkdirAll(s.opts.Spool, 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrSpool, err)
	}
	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		s.up.run(upCtx)
	}()

	err := s.startup(ctx)
	if err == nil {
		err = s.streamLoop(ctx)
	}
	if s.w != nil {
		if serr := s.w.sync(); serr != nil && err == nil {
			err = serr
		}
		s.publishCurrent()
	}
	derr := s.drain()
	upCancel()
	<-upDone
	if s.w != nil {
		s.w.close()
		s.w = nil
	}
	if err != nil {
		return err
	}
	if ferr := s.up.fatal(); ferr != nil {
		return ferr
	}
	return derr
}

// startup queues the spool's files, resumes the segment being received,
// and waits until they are stored or an upload fails (uploads then go on
// while streaming).
func (s *Streamer) startup(ctx context.Context) error {
	files, cur, err := scanSpool(s.opts.Spool, s.segSize)
	if err != nil {
		return err
	}
	for _, f := range files {
		s.up.enqueue(f)
		switch f.kind {
		case itemFull:
			s.haveEnd, s.endTLI, s.endSeg = true, f.tli, f.segno+1
			s.flushed = max(s.flushed, pgwal.SegmentStart(f.segno+1, s.segSize))
		case itemFinalPartial:
			s.haveEnd, s.endTLI, s.endSeg = true, f.tli, f.segno
		case itemHistory:
			s.histories[f.tli] = true
		}
	}
	if cur != nil {
		if s.w, err = openSegWriter(s.opts.Spool, s.segSize, cur.tli, cur.segno); err != nil {
			return err
		}
		s.haveEnd, s.endTLI, s.endSeg = true, cur.tli, cur.segno
		s.flushed = max(s.flushed, s.w.start()+pgwal.LSN(s.w.synced))
		s.publishCurrent()
	}
	s.received = s.flushed
	s.mu.Lock()
	s.st.ReceivedLSN, s.st.FlushedLSN, s.st.Timeline = s.received, s.flushed, s.endTLI
	s.mu.Unlock()
	if len(files) > 0 || cur != nil {
		s.log.Info("uploading the spool before connecting", "files", len(files)+btoi(cur != nil), "spool", s.opts.Spool)
	}
	for !s.up.allDone() && !s.up.errored() {
		select {
		case <-ctx.Done():
			return nil
		case <-s.up.failed:
			return s.up.fatal()
		case <-s.up.progressCh():
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// streamLoop runs replication sessions, reconnecting with backoff, until
// ctx ends or an error that retrying cannot cure.
func (s *Streamer) streamLoop(ctx context.Context) error {
	attempt := 0
	for {
		streamed, err := s.session(ctx)
		s.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if ferr := s.up.fatal(); ferr != nil {
			return ferr
		}
		if isFatal(err) {
			return err
		}
		if streamed {
			attempt = 0
		}
		if errors.Is(err, errBackpressure) {
			s.log.Warn("spool full: stopped receiving until uploads catch up; the slot retains WAL on the primary meanwhile",
				"spool_bytes", s.up.spoolBytes(), "max_spool", s.opts.MaxSpool)
			for s.up.spoolBytes() > s.opts.MaxSpool/2 {
				select {
				case <-ctx.Done():
					return nil
				case <-s.up.failed:
					return s.up.fatal()
				case <-s.up.progressCh():
				}
			}
		} else {
			attempt++
			d := s.opts.Backoff(attempt)
			s.log.Warn("replication connection lost; reconnecting", "err", err, "in", d)
			select {
			case <-ctx.Done():
				return nil
			case <-s.up.failed:
				return s.up.fatal()
			case <-s.clock.After(d):
			}
		}
		s.mu.Lock()
		s.st.Reconnects++
		s.mu.Unlock()
	}
}

// session connects, checks the cluster and the slot, and streams until an
// error. streamed reports whether replication started.
func (s *Streamer) session(ctx context.Context) (streamed bool, err error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		conn.Close(cctx)
		cancel()
	}()
	cl, err := conn.Identify(ctx)
	if err != nil {
		return false, err
	}
	if err := s.r.CheckCluster(cl.SystemIdentifier, cl.Major, cl.WALSegmentSize); err != nil {
		return false, err
	}
	exists, restart, restartTLI, err := conn.ReadSlot(ctx, s.opts.Slot)
	if err != nil {
		return false, err
	}
	if !exists {
		if !s.opts.CreateSlot {
			return false, fmt.Errorf("%w: %q on the server; create it with --create-slot or SELECT pg_create_physical_replication_slot('%s', true)", ErrSlotMissing, s.opts.Slot, s.opts.Slot)
		}
		if err := conn.CreateSlot(ctx, s.opts.Slot); err != nil {
			return false, err
		}
		s.log.Info("created replication slot", "slot", s.opts.Slot)
		if exists, restart, restartTLI, err = conn.ReadSlot(ctx, s.opts.Slot); err != nil {
			return false, err
		} else if !exists {
			return false, fmt.Errorf("replication slot %q vanished after it was created", s.opts.Slot)
		}
	}
	s.slotRestart = restart

	var tli uint32
	var startSeg uint64
	switch {
	case s.haveEnd:
		tli, startSeg = s.endTLI, s.endSeg
	case restart != 0:
		tli, startSeg = cl.Timeline, pgwal.SegNoOf(restart, s.segSize)
		if restartTLI != 0 {
			tli = restartTLI
		}
	default:
		tli, startSeg = cl.Timeline, pgwal.SegNoOf(cl.XLogPos, s.segSize)
	}
	if tli > cl.Timeline {
		return false, fmt.Errorf("the spool holds WAL of timeline %d but the server is on timeline %d: is this a former primary?", tli, cl.Timeline)
	}
	for {
		if err := s.ensureHistory(ctx, conn, tli); err != nil {
			return streamed, err
		}
		// Always from a segment start, as walreceiver does: the spool never
		// has a hole before the first byte received.
		start := pgwal.SegmentStart(startSeg, s.segSize)
		err := conn.StartReplication(ctx, s.opts.Slot, start, tli)
		var eot *endOfTimeline
		if errors.As(err, &eot) {
			s.log.Info("timeline ended before the start position", "timeline", tli, "next", eot.next, "switch", eot.start)
			if err := s.endTimeline(tli, eot.next, eot.start); err != nil {
				return streamed, err
			}
			tli, startSeg = eot.next, pgwal.SegNoOf(eot.start, s.segSize)
			continue
		}
		if err != nil {
			return streamed, err
		}
		streamed = true
		s.mu.Lock()
		s.st.Connected, s.st.Timeline = true, tli
		s.mu.Unlock()
		s.log.Info("streaming", "timeline", tli, "start", start, "slot", s.opts.Slot)
		s.readyOnce.Do(func() {
			if s.opts.Ready != nil {
				s.opts.Ready()
			}
		})
		err = s.receive(ctx, conn, tli)
		if !errors.Is(err, errTimelineEnded) {
			return streamed, err
		}
		next, nstart, err := conn.EndCopy(ctx)
		if err != nil {
			return streamed, err
		}
		s.log.Info("timeline switch", "timeline", tli, "next", next, "switch", nstart)
		if err := s.endTimeline(tli, next, nstart); err != nil {
			return streamed, err
		}
		tli, startSeg = next, pgwal.SegNoOf(nstart, s.segSize)
	}
}

// ensureHistory spools and queues the history file of tli once.
func (s *Streamer) ensureHistory(ctx context.Context, conn replConn, tli uint32) error {
	if tli <= 1 || s.histories[tli] {
		return nil
	}
	content, err := conn.TimelineHistory(ctx, tli)
	if err != nil {
		return err
	}
	name := pgwal.HistoryFileName(tli)
	path, err := writeSpoolFile(s.opts.Spool, name, content)
	if err != nil {
		return err
	}
	s.up.enqueue(spoolFile{kind: itemHistory, tli: tli, path: path, size: int64(len(content))})
	s.histories[tli] = true
	return nil
}

// endTimeline closes the last segment of timeline tli: it stays a partial,
// queued for upload as a streamed partial of its own timeline.
func (s *Streamer) endTimeline(tli, next uint32, switchPoint pgwal.LSN) error {
	if s.w != nil && s.w.tli == tli {
		w := s.w
		s.w = nil
		s.up.clearCurrent()
		path, err := w.finish()
		if err != nil {
			return err
		}
		if w.valid > 0 {
			s.up.enqueue(spoolFile{kind: itemFinalPartial, tli: tli, segno: w.segno, path: path, size: w.valid})
		} else if err := removeSpoolFile(path); err != nil {
			return err
		}
		if end := w.start() + pgwal.LSN(w.valid); end != switchPoint {
			s.log.Warn("last segment of the timeline does not end at the switch point", "timeline", tli, "end", end, "switch", switchPoint)
		}
		s.flushed = max(s.flushed, w.start()+pgwal.LSN(w.synced))
	}
	s.haveEnd, s.endTLI, s.endSeg = true, next, pgwal.SegNoOf(switchPoint, s.segSize)
	return nil
}

type recvResult struct {
	msg message
	err error
}

// receive runs the copy stream of one timeline.
func (s *Streamer) receive(ctx context.Context, conn replConn, tli uint32) error {
	// Not derived from ctx: cancelling a receive sets a deadline on the
	// socket, which would also fail the final status update.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	msgs := make(chan recvResult, 16)
	go func() {
		defer close(msgs)
		for {
			m, err := conn.Receive(rctx)
			select {
			case msgs <- recvResult{m, err}:
			case <-rctx.Done():
				return
			}
			if err != nil || m.kind == msgEndOfTimeline {
				return
			}
		}
	}()
	defer func() {
		rcancel()
		for range msgs {
		}
	}()

	statusT := s.clock.After(s.opts.StatusInterval)
	syncT := s.clock.After(s.opts.PartialInterval)
	for {
		select {
		case <-ctx.Done():
			if err := s.syncSpool(); err != nil {
				return err
			}
			if err := s.sendStatus(conn, false); err != nil {
				s.log.Warn("final status update failed", "err", err)
			}
			return ctx.Err()
		case <-s.up.failed:
			return s.up.fatal()
		case r, ok := <-msgs:
			if !ok {
				return errors.New("replication stream ended")
			}
			if r.err != nil {
				return r.err
			}
			switch r.msg.kind {
			case msgXLogData:
				if err := s.handleXLogData(tli, r.msg); err != nil {
					return err
				}
			case msgKeepalive:
				s.noteServerEnd(r.msg.serverWALEnd)
				if r.msg.replyRequested {
					if s.opts.Synchronous {
						if err := s.syncSpool(); err != nil {
							return err
						}
					}
					if err := s.sendStatus(conn, false); err != nil {
						return err
					}
				}
			case msgEndOfTimeline:
				if err := s.syncSpool(); err != nil {
					return err
				}
				return errTimelineEnded
			}
			if s.opts.Synchronous && len(msgs) == 0 {
				if err := s.syncSpool(); err != nil {
					return err
				}
				if s.reportFlush() > s.lastSentFlush {
					if err := s.sendStatus(conn, false); err != nil {
						return err
					}
				}
			}
			if s.up.spoolBytes() > s.opts.MaxSpool {
				if err := s.syncSpool(); err != nil {
					return err
				}
				if err := s.sendStatus(conn, false); err != nil {
					return err
				}
				return errBackpressure
			}
		case <-syncT:
			syncT = s.clock.After(s.opts.PartialInterval)
			if err := s.syncSpool(); err != nil {
				return err
			}
			if s.reportFlush() > s.lastSentFlush {
				if err := s.sendStatus(conn, false); err != nil {
					return err
				}
			}
		case <-statusT:
			statusT = s.clock.After(s.opts.StatusInterval)
			if err := s.sendStatus(conn, false); err != nil {
				return err
			}
		}
	}
}

// handleXLogData writes received WAL into the spool, segment by segment.
func (s *Streamer) handleXLogData(tli uint32, m message) error {
	pos, data := m.walStart, m.data
	for len(data) > 0 {
		segno := pgwal.SegNoOf(pos, s.segSize)
		off := int64(pos - pgwal.SegmentStart(segno, s.segSize))
		if s.w != nil && (s.w.tli != tli || s.w.segno != segno) {
			return fmt.Errorf("gap in the WAL stream: received %s on timeline %d while %s is incomplete (%d bytes)", pos, tli, s.w.path, s.w.valid)
		}
		if s.w == nil {
			w, err := openSegWriter(s.opts.Spool, s.segSize, tli, segno)
			if err != nil {
				return err
			}
			s.w = w
		}
		n := min(int64(len(data)), s.segSize-off)
		if err := s.w.write(off, data[:n]); err != nil {
			return err
		}
		pos += pgwal.LSN(n)
		data = data[n:]
		if s.w.complete() {
			if err := s.completeSegment(); err != nil {
				return err
			}
		}
	}
	if s.w != nil {
		s.publishCurrent()
	}
	now := s.clock.Now()
	s.received = max(s.received, pos)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.ReceivedLSN = s.received
	s.st.LastReceive = now
	if m.serverWALEnd > s.st.ServerWALEnd {
		s.st.ServerWALEnd = m.serverWALEnd
	}
	if s.received > s.st.UploadedLSN {
		if n := len(s.marks); n > 0 && (n >= maxLagMarks || now.Sub(s.marks[n-1].at) < 100*time.Millisecond) {
			s.marks[n-1].lsn = s.received
		} else {
			s.marks = append(s.marks, lagMark{lsn: s.received, at: now})
		}
	}
	return nil
}

// completeSegment fsyncs the finished segment, gives it its final name and
// queues it.
func (s *Streamer) completeSegment() error {
	w := s.w
	s.w = nil
	s.up.clearCurrent() // before the rename: the uploader must not look for the .partial
	path, err := w.finish()
	if err != nil {
		return err
	}
	s.flushed = max(s.flushed, pgwal.SegmentStart(w.segno+1, s.segSize))
	s.haveEnd, s.endTLI, s.endSeg = true, w.tli, w.segno+1
	s.up.enqueue(spoolFile{kind: itemFull, tli: w.tli, segno: w.segno, path: path, size: s.segSize})
	s.mu.Lock()
	s.st.FlushedLSN = s.flushed
	s.mu.Unlock()
	return nil
}

func (s *Streamer) publishCurrent() {
	w := s.w
	s.up.setCurrent(curSeg{tli: w.tli, segno: w.segno, path: w.path, valid: w.valid, synced: w.synced})
}

// syncSpool fsyncs the segment being received.
func (s *Streamer) syncSpool() error {
	if s.w == nil || s.w.synced == s.w.valid {
		return nil
	}
	if err := s.w.sync(); err != nil {
		return err
	}
	s.flushed = max(s.flushed, s.w.start()+pgwal.LSN(s.w.synced))
	s.haveEnd, s.endTLI, s.endSeg = true, s.w.tli, s.w.segno
	s.publishCurrent()
	s.mu.Lock()
	s.st.FlushedLSN = s.flushed
	s.mu.Unlock()
	return nil
}

// reportFlush is the flush position told to the server: what is fsynced,
// but never behind what the slot already holds.
func (s *Streamer) reportFlush() pgwal.LSN { return max(s.flushed, s.slotRestart) }

func (s *Streamer) sendStatus(conn replConn, reply bool) error {
	flush := s.reportFlush()
	if flush == 0 {
		// Nothing to report yet; a zero flush would read as "all written".
		return nil
	}
	write := max(s.received, flush)
	if err := conn.SendStatus(write, flush, s.clock.Now(), reply); err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	s.lastSentFlush = flush
	s.mu.Lock()
	s.updateSlotLocked()
	s.mu.Unlock()
	return nil
}

func (s *Streamer) noteServerEnd(end pgwal.LSN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if end > s.st.ServerWALEnd {
		s.st.ServerWALEnd = end
	}
	s.updateSlotLocked()
}

// updateSlotLocked recomputes SlotRetainedBytes and warns, at most once a
// minute, when it is large.
func (s *Streamer) updateSlotLocked() {
	if s.lastSentFlush == 0 || s.st.ServerWALEnd <= s.lastSentFlush {
		s.st.SlotRetainedBytes = 0
		return
	}
	s.st.SlotRetainedBytes = int64(s.st.ServerWALEnd - s.lastSentFlush)
	if s.st.SlotRetainedBytes > s.opts.SlotWarnBytes {
		now := s.clock.Now()
		if s.lastSlotWarn.IsZero() || now.Sub(s.lastSlotWarn) >= slotWarnEvery {
			s.lastSlotWarn = now
			s.log.Warn("the replication slot retains much WAL on the primary: a stopped or slow streamer fills the primary's disk (max_slot_wal_keep_size bounds it)",
				"slot", s.opts.Slot, "retained_bytes", s.st.SlotRetainedBytes, "warn_bytes", s.opts.SlotWarnBytes)
		}
	}
}

// noteUpload records that everything before upto is stored.
func (s *Streamer) noteUpload(upto pgwal.LSN) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Uploads++
	s.st.LastUpload = now
	if upto > s.st.UploadedLSN {
		s.st.UploadedLSN = upto
	}
	i := 0
	for i < len(s.marks) && s.marks[i].lsn <= s.st.UploadedLSN {
		i++
	}
	s.marks = s.marks[i:]
}

func (s *Streamer) setConnected(c bool) {
	s.mu.Lock()
	s.st.Connected = c
	s.mu.Unlock()
}

// drain stores what is left, bounded by drainTimeout.
func (s *Streamer) drain() error {
	s.up.setDraining()
	deadline := s.clock.After(drainTimeout)
	for !s.up.allDone() {
		select {
		case <-s.up.failed:
			return s.up.fatal()
		case <-deadline:
			return fmt.Errorf("stream: after %s not everything is uploaded: %s remain in the spool %s and are uploaded at the next start", drainTimeout, s.up.pending(), s.opts.Spool)
		case <-s.up.progressCh():
		}
	}
	return nil
}
