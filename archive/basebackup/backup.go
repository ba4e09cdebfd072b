package basebackup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// ErrWALTimeout reports that the WAL a backup needs did not reach the
// repository in time: WAL archiving is broken or far behind. The backup is
// not recorded.
var ErrWALTimeout = errors.New("WAL needed by the backup was not archived in time")

// ErrTimelineChanged reports that the server switched timelines (was
// promoted) during the backup. The backup is not recorded.
var ErrTimelineChanged = errors.New("timeline changed during the backup")

// Defaults of Options.
const (
	DefaultWALTimeout   = 5 * time.Minute
	DefaultChunkSize    = 16 << 20
	DefaultPollInterval = time.Second
	DefaultHistoryWait  = 5 * time.Second
	maxChunkSize        = 512 << 20
)

// Options configure Run. The zero value of each field means its default.
type Options struct {
	// ConnString is a libpq connection string; "" uses the PG* environment.
	ConnString string
	// Label is the backup label PostgreSQL writes into backup_label
	// (default "walvault <backup id>").
	Label string
	// Fast requests an immediate checkpoint instead of a spread one.
	Fast bool
	// WALTimeout bounds the wait for the WAL from the backup's start to its
	// end to appear in the repository (default 5 minutes).
	WALTimeout time.Duration
	// ChunkSize is the number of bytes of tar stream per object (default
	// 16 MiB). Memory use is about (2×Workers+1)×ChunkSize.
	ChunkSize int
	// Workers is the number of chunks compressed, encrypted and stored at
	// once (default runtime.GOMAXPROCS(0)).
	Workers int
	// MaxRate throttles the server's sending, in kB/s (32 to 1048576; 0 for
	// no limit).
	MaxRate int32
	// Logger receives progress messages (default: discard).
	Logger *slog.Logger
	// Progress, if set, is called from Run's goroutine as data arrives with
	// the bytes received so far and the server's estimate of the total (-1
	// when unknown). The estimate can be exceeded.
	Progress func(done, total int64)
	// Phase, if set, is called from Run's goroutine as the backup moves
	// on: "checkpoint" (the server's checkpoint before it sends data),
	// "backup" (data arrives; Progress follows) and "waiting for WAL".
	Phase func(name string)
	// Now is the clock (default time.Now). The backup id, and the elapsed
	// time added to the server's start time when the stop time has to be
	// estimated, come from it.
	Now func() time.Time
	// PollInterval is how often the WAL wait looks at the repository
	// (default 1s).
	PollInterval time.Duration
	// HistoryWait bounds the wait, after the WAL, for the server's backup
	// history file, which dates the end of the backup on the server's clock
	// (default 5s; negative: look once). It normally arrives with the last
	// segment; a backup from a standby or into a repository fed by
	// walvault stream never gets one and uses an estimate instead. Only a
	// Run that can read the repository (an identity, or no encryption)
	// looks for it at all.
	HistoryWait time.Duration
	// Version is recorded in the manifest (walvault's build version).
	Version string
	// Note, if set, is stored as the backup's first note (a keep mark, an
	// annotation) just before the manifest, so the backup is never listed
	// without it.
	Note *repo.BackupNote
	// Blocks stores the tar streams as deduplicated blocks (repo/blocks.go)
	// when the repository is format 2 and the writer key holds the
	// content key; otherwise, and for format 1, as chunks.
	Blocks bool
	// ReadAll: never ask PostgreSQL 17+ for an incremental backup, even
	// when it summarizes WAL.
	ReadAll bool
	// RefreshAfter, if not 0: when the previous backup uses blocks that a
	// backup stored longer ago than this, the backup stores every block
	// anew (a refresh) instead of deduplicating against it, so that no
	// pack stays referenced for longer than RefreshAfter plus the
	// retention period: erased rows (old versions of pages in packs
	// still shared) leave the repository within that time.
	RefreshAfter time.Duration
	// Change says who takes the backup and how long it waits for the
	// repository's shared lock (an expire holds the exclusive one). Its
	// Logger defaults to Logger.
	Change repo.ChangeOptions
}

func (o *Options) setDefaults() error {
	if o.WALTimeout == 0 {
		o.WALTimeout = DefaultWALTimeout
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.HistoryWait == 0 {
		o.HistoryWait = DefaultHistoryWait
	}
	switch {
	case o.WALTimeout < 0, o.PollInterval < 0:
		return errors.New("negative WAL timeout or poll interval")
	case o.ChunkSize < 0 || o.ChunkSize > maxChunkSize:
		return fmt.Errorf("chunk size %d outside 1..%d", o.ChunkSize, maxChunkSize)
	case o.Workers < 0:
		return fmt.Errorf("negative worker count %d", o.Workers)
	case o.MaxRate != 0 && (o.MaxRate < 32 || o.MaxRate > 1048576):
		return fmt.Errorf("max rate %d kB/s outside 32..1048576", o.MaxRate)
	case strings.ContainsFunc(o.Label, unicode.IsControl):
		// A newline would let a label forge lines of backup_label.
		return fmt.Errorf("backup label %q contains control characters", o.Label)
	}
	return nil
}

// Run takes a base backup of the cluster opts.ConnString reaches and stores
// it in r, under the repository's shared lock, and records it in the audit
// trail. It returns the manifest, which it writes last, after every chunk
// is stored and every WAL segment from the backup's start to its end is in
// the repository. On any error or cancellation no manifest is written:
// chunks already stored stay behind, unreferenced, under the backup's id.
func Run(ctx context.Context, r *repo.Repository, opts Options) (*repo.BackupManifest, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if opts.Change.Logger == nil {
		opts.Change.Logger = opts.Logger
	}
	var m *repo.BackupManifest
	// Shared: backups may overlap each other, never an expire.
	err := r.Change(ctx, repo.LockShared, "backup", opts.Change, func(*repo.Lock) (repo.Audit, error) {
		var err error
		if m, err = run(ctx, r, opts); err != nil {
			return repo.Audit{}, err
		}
		action := "created backup " + m.ID
		if n := opts.Note; n != nil && n.Keep != nil && *n.Keep {
			action += ", marked keep"
		}
		return repo.Audit{Action: action, Details: []string{
			fmt.Sprintf("%s to %s on timeline %d, %d bytes stored as %d", m.StartLSN, m.StopLSN, m.Timeline, m.Bytes, m.StoredBytes)}}, nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func run(ctx context.Context, r *repo.Repository, opts Options) (*repo.BackupManifest, error) {
	log := opts.Logger
	conn, err := replconn.ConnectBulk(ctx, opts.ConnString)
	if err != nil {
		return nil, err
	}
	connOpen := true
	defer func() {
		if connOpen {
			closeConn(conn)
		}
	}()

	cl, err := replconn.Identify(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := r.CheckCluster(cl.SystemIdentifier, cl.Major, cl.WALSegmentSize); err != nil {
		return nil, err
	}
	tz, err := replconn.Show(ctx, conn, "log_timezone")
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		log.Warn("cannot load the server's log_timezone; backup_label times in it may not be understood", "log_timezone", tz, "err", err)
		loc = nil
	}
	began, id, err := newID(ctx, r, opts.Now)
	if err != nil {
		return nil, err
	}
	label := opts.Label
	if label == "" {
		label = "walvault " + id
	}
	log.Info("starting base backup", "id", id, "server_version", cl.ServerVersionNum, "fast", opts.Fast)

	// A block backup pins itself and indexes the previous one's blocks
	// before it starts; from PostgreSQL 17, with summarize_wal on, it
	// asks for an incremental backup against it.
	blocks := opts.Blocks && r.Signed() && r.CanHashBlocks()
	var (
		prev     *repo.BlockIndex
		inc      *incremental
		prevID   string
		waitPrev func() (*repo.BlockIndex, *repo.PriorFiles, error)
	)
	if blocks {
		defer func() {
			// Done or failed: the pin protects nothing any more (a
			// failed backup's packs are orphans expire removes later).
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := r.RemovePin(ctx, id); err != nil {
				log.Warn("cannot remove the backup's pin; expire ignores it after a day", "id", id, "err", err)
			}
		}()
		withPrior := !opts.ReadAll && summarizes(ctx, conn, cl.Major)
		prevID, waitPrev, err = previousBlocks(ctx, r, id, opts.Now(), log, withPrior)
		if err != nil {
			return nil, err
		}
		defer func() {
			if waitPrev != nil {
				x, prior, _ := waitPrev()
				x.Close()
				prior.Close()
			}
			prev.Close() // unless the block writer took it
			if inc != nil {
				inc.prior.Close()
			}
		}()
		if withPrior && prevID != "" {
			// While the previous backup's blocks are indexed.
			reason, damaged, err := prepareIncremental(ctx, conn, r, prevID, cl.Timeline)
			if err != nil {
				return nil, err
			}
			if reason != "" {
				level := slog.LevelInfo
				if damaged {
					level = slog.LevelWarn
				}
				log.Log(ctx, level, "PostgreSQL will not send an incremental backup: reading every block and deduplicating", "previous", prevID, "why", reason)
			} else {
				// Its prior files come with the index, below.
				inc = &incremental{priorID: prevID, sizes: map[string]int64{}}
			}
		}
	} else if opts.Blocks {
		log.Info("storing the backup as chunks: blocks need a format-2 repository and a writer key", "format", r.Config.Format)
	}

	phase(opts, "checkpoint")
	startPos, tss, err := start(ctx, conn, command(cl.Major, label, opts.Fast, opts.MaxRate, inc != nil))
	var pgErr *pgconn.PgError
	if err != nil && inc != nil && errors.As(err, &pgErr) {
		// The server refused after its checkpoint, typically because its
		// WAL summaries do not reach back to the previous backup's start
		// (summarize_wal was off for a while, or they were removed after
		// wal_summary_keep_time). A plain backup, on a new connection,
		// is always possible.
		log.Warn("PostgreSQL refused the incremental backup: reading every block and deduplicating", "previous", prevID, "why", pgErr.Message, "detail", pgErr.Detail)
		inc = nil
		closeConn(conn)
		if conn, err = replconn.ConnectBulk(ctx, opts.ConnString); err != nil {
			connOpen = false
			return nil, err
		}
		startPos, tss, err = start(ctx, conn, command(cl.Major, label, opts.Fast, opts.MaxRate, false))
	}
	if err != nil {
		return nil, err
	}
	refreshed := false
	if waitPrev != nil {
		var prior *repo.PriorFiles
		prev, prior, err = waitPrev()
		waitPrev = nil
		if err != nil {
			prior.Close()
			return nil, err
		}
		if oldest, at, ok := oldestPack(prev.Packs()); ok && opts.RefreshAfter > 0 && opts.Now().Sub(at) > opts.RefreshAfter {
			log.Info("refreshing: the previous backup uses blocks stored longer ago than the refresh period, so this backup stores every block anew and shares none; expire then removes the old packs with the backups that use them",
				"previous", prevID, "oldest_blocks_from", oldest, "refresh_after", opts.RefreshAfter.String())
			prev.Close()
			prior.Close()
			prev, prior, refreshed = nil, nil, true
		}
		switch {
		case inc == nil:
			prior.Close()
		case prior != nil:
			inc.prior = prior
		default:
			// The previous backup's file list turned out unusable
			// (logged), or too old (a refresh), after the server was
			// asked for a backup incremental to it: start again, every
			// block read.
			inc = nil
			closeConn(conn)
			if conn, err = replconn.ConnectBulk(ctx, opts.ConnString); err != nil {
				connOpen = false
				return nil, err
			}
			if startPos, tss, err = start(ctx, conn, command(cl.Major, label, opts.Fast, opts.MaxRate, false)); err != nil {
				return nil, err
			}
		}
	}
	// The server answers once its checkpoint is done and START TIME
	// stamped (and, with PROGRESS, the data directory's size summed).
	started := opts.Now()
	total := int64(0)
	for _, ts := range tss {
		if ts.SizeKB < 0 || total < 0 {
			total = -1
			continue
		}
		total += ts.SizeKB << 10
	}
	log.Info("base backup started", "id", id, "start_lsn", startPos.LSN, "timeline", startPos.Timeline, "tablespaces", len(tss), "estimated_bytes", total)

	phase(opts, "backup")
	var progress func(int64)
	if opts.Progress != nil {
		progress = func(done int64) { opts.Progress(done, total) }
		opts.Progress(0, total)
	}
	up := newUploader(ctx, r, id, opts.ChunkSize, opts.Workers, tss, progress, cl.Major < 15)
	if blocks {
		mr, err := r.WriterReadable()
		if err == nil {
			defer mr.Close()
			up.manifestRepo = mr
			up.blocks, err = newBlockWriter(up.context(), up.fail, r, id, prev, opts.Workers, log)
			prev = nil // the writer closes it, also when it fails
		}
		if err != nil {
			up.fail(err)
			up.close()
			return nil, err
		}
		up.blocks.inc = inc
		if inc != nil {
			log.Info("storing the backup as blocks, incremental: PostgreSQL sends the blocks changed since the previous backup", "id", id, "previous", prevID)
		} else {
			log.Info("storing the backup as blocks", "id", id, "previous", prevID)
		}
	}
	rctx := up.context()
	if cl.Major >= 15 {
		err = streamV15(rctx, conn, up)
	} else {
		err = streamLegacy(rctx, conn, tss, up)
	}
	var stopPos position
	if err == nil {
		stopPos, err = finish(rctx, conn)
	}
	stopped := opts.Now()
	if err == nil {
		// Free the walsender now rather than through the wait for WAL.
		closeConn(conn)
		connOpen = false
	} else {
		up.fail(err)
	}
	if uerr := up.close(); uerr != nil || err != nil {
		return nil, failure(ctx, err, uerr)
	}
	archives, err := up.result()
	if err != nil {
		return nil, err
	}
	log.Info("base backup data stored", "id", id, "stop_lsn", stopPos.LSN, "elapsed", stopped.Sub(began))

	if stopPos.Timeline != startPos.Timeline {
		return nil, fmt.Errorf("%w: started on timeline %d, ended on %d (was the server promoted?)", ErrTimelineChanged, startPos.Timeline, stopPos.Timeline)
	}
	if stopPos.LSN < startPos.LSN {
		return nil, fmt.Errorf("backup ends at %s, before its start %s", stopPos.LSN, startPos.LSN)
	}
	if up.label.text == nil {
		return nil, errors.New("the server sent no base.tar")
	}
	bl, err := parseBackupLabel(up.label.text)
	if err != nil {
		return nil, err
	}
	if bl.StartLSN != startPos.LSN || (bl.StartTimeline != 0 && bl.StartTimeline != startPos.Timeline) {
		return nil, fmt.Errorf("backup_label says start %s on timeline %d, the server said %s on %d", bl.StartLSN, bl.StartTimeline, startPos.LSN, startPos.Timeline)
	}
	startTime, err := pgwal.ParseServerTime(bl.StartTime, loc)
	if err != nil {
		// The server clock is what recovery targets are compared with; the
		// local clock when the server answered is the best remaining guess.
		log.Warn("cannot read the backup start time from backup_label; using the local clock", "err", err)
		startTime = started
	}

	phase(opts, "waiting for WAL")
	if err := waitForWAL(ctx, r, startPos, stopPos, cl.WALSegmentSize, opts, log); err != nil {
		return nil, err
	}

	host, _ := os.Hostname()
	m := &repo.BackupManifest{
		Format:    r.Config.Format,
		ID:        id,
		Label:     label,
		StartTime: startTime.UTC(),
		// The estimate, used unless the server's backup history file is
		// read below. START TIME has whole seconds: the true start lies in
		// [startTime, startTime+1s), so one second plus the time from the
		// server's answer to the start (after its checkpoint) to its
		// answer to the stop reaches past the true end. Counting from
		// before the start would add the whole checkpoint, minutes
		// without --fast.
		StopTime:         startTime.Add(time.Second + stopped.Sub(started)).UTC(),
		StopTimeSource:   repo.StopTimeEstimated,
		LogTimezone:      tz,
		StartLSN:         startPos.LSN,
		StopLSN:          stopPos.LSN,
		Timeline:         startPos.Timeline,
		SystemIdentifier: fmt.Sprint(cl.SystemIdentifier),
		PGVersionNum:     cl.ServerVersionNum,
		WALSegmentSize:   cl.WALSegmentSize,
		Archives:         archives,
		Host:             host,
		Version:          opts.Version,
	}
	for _, a := range archives {
		if a.Layout == repo.ArchiveBlocks {
			m.Bytes += a.Bytes
		}
		for _, c := range a.Chunks {
			m.Bytes += c.Size
			m.StoredBytes += c.StoredSize
		}
	}
	if b := up.blocks; b != nil {
		fl := up.fileList
		m.FileList = &repo.Chunk{Key: fl.Key, Size: fl.PlainSize, StoredSize: fl.StoredSize, SHA256: fl.SHA256}
		st := b.stats
		if b.inc != nil {
			st.IncrementalFrom, st.IncrementalFiles, st.IncrementalBlocks = b.inc.priorID, b.inc.rebuilt, b.inc.sent
			log.Info("incremental backup", "id", id, "previous", b.inc.priorID, "incremental_files", b.inc.rebuilt, "blocks_sent", b.inc.sent)
		}
		if refreshed {
			st.RefreshedFrom = prevID
		}
		m.Blocks = &st
		m.StoredBytes += st.NewBytes + fl.StoredSize
		log.Info("blocks stored", "id", id, "blocks", st.Blocks, "new", st.NewBlocks, "new_bytes", st.NewBytes, "shared", st.SharedBlocks, "shared_bytes", st.SharedBytes, "repeated", st.RepeatedBlocks)
	}
	useBackupHistory(ctx, r, m, opts, log)
	log.Info("backup stop time", "id", id, "stop_time", m.StopTime.Format(time.RFC3339Nano), "source", m.StopTimeSource)
	if opts.Note != nil {
		if err := r.AddBackupNote(ctx, id, *opts.Note); err != nil {
			return nil, err
		}
	}
	if err := r.PutBackupManifest(ctx, m); err != nil {
		return nil, fmt.Errorf("store manifest of backup %s: %w", id, err)
	}
	log.Info("base backup complete", "id", id, "bytes", m.Bytes, "stored_bytes", m.StoredBytes)
	return m, nil
}

func phase(opts Options, name string) {
	if opts.Phase != nil {
		opts.Phase(name)
	}
}

// failure picks the error to report after the stream or the uploads
// failed: the caller's cancellation, else the first error of either side
// (a worker's error cancels the reader, whose own error then only says
// "context canceled").
func failure(ctx context.Context, readErr, firstErr error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("base backup interrupted: %w", err)
	}
	if firstErr != nil {
		return firstErr
	}
	return readErr
}

// newID names the backup after the clock, waiting for the next second when
// the repository already holds anything under that name: backup ids have
// one-second resolution, and chunks of two backups must never share keys.
func newID(ctx context.Context, r *repo.Repository, now func() time.Time) (time.Time, string, error) {
	for attempt := 0; ; attempt++ {
		t := now()
		id := repo.NewBackupID(t)
		taken, err := r.BackupIDUsed(ctx, id)
		if err != nil {
			return t, "", fmt.Errorf("check backup id %s: %w", id, err)
		}
		if !taken {
			return t, id, nil
		}
		if attempt == 2 {
			return t, "", fmt.Errorf("backup id %s is already used in %s", id, r)
		}
		// Ids have one-second resolution: the next second's is free.
		wait := t.Truncate(time.Second).Add(time.Second).Sub(t) + 5*time.Millisecond
		select {
		case <-ctx.Done():
			return t, "", ctx.Err()
		case <-time.After(wait):
		}
	}
}

func closeConn(conn *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// waitForWAL waits until every segment from the one holding start to the
// one holding the last byte before stop is in the repository. That is the
// range the server itself waits for (XLByteToPrevSeg of the stop point):
// with WAIT false the server still switches to a new segment at the end of
// the backup, so a working archiver stores the last one promptly.
func waitForWAL(ctx context.Context, r *repo.Repository, startPos, stopPos position, segSize int64, opts Options, log *slog.Logger) error {
	first := pgwal.SegNoOf(startPos.LSN, segSize)
	last := first
	if stopPos.LSN > startPos.LSN {
		last = pgwal.SegNoOf(stopPos.LSN-1, segSize)
	}
	tli := startPos.Timeline
	deadline := time.NewTimer(opts.WALTimeout)
	defer deadline.Stop()
	next := first
	// The last segment usually arrives within a few hundred milliseconds
	// after the backup stops (the archiver's wal-push takes tens): look
	// often at first (10 ms, doubling), then back off to PollInterval.
	wait := min(10*time.Millisecond, opts.PollInterval)
	for {
		for next <= last {
			found, err := r.HasWALSegment(ctx, tli, next)
			if err != nil {
				return fmt.Errorf("look for WAL segment %s: %w", pgwal.SegmentName(tli, next, segSize), err)
			}
			if !found {
				break
			}
			next++
		}
		if next > last {
			log.Info("WAL of the backup is archived", "first", pgwal.SegmentName(tli, first, segSize), "last", pgwal.SegmentName(tli, last, segSize))
			return nil
		}
		log.Debug("waiting for WAL", "segment", pgwal.SegmentName(tli, next, segSize))
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for WAL segment %s: %w", pgwal.SegmentName(tli, next, segSize), ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w: segment %s (needed from %s to %s) is not in %s after %v: WAL archiving is not working or far behind; check archive_command and pg_stat_archiver (last_failed_wal)",
				ErrWALTimeout, pgwal.SegmentName(tli, next, segSize), pgwal.SegmentName(tli, first, segSize), pgwal.SegmentName(tli, last, segSize), r, opts.WALTimeout)
		case <-time.After(wait):
		}
		wait = min(wait*2, opts.PollInterval)
	}
}

// useBackupHistory takes m's stop time from the backup history file the
// server archived when the backup ended, if r can read it and it arrives
// within opts.HistoryWait; otherwise m keeps its estimate, which readers of
// the repository correct from that file once it is there (catalog.Load). A
// file that does not match m is ignored with a warning.
func useBackupHistory(ctx context.Context, r *repo.Repository, m *repo.BackupManifest, opts Options, log *slog.Logger) {
	if !r.CanRead() {
		log.Info("no identity to read the server's backup history file here: the stop time is estimated, and corrected by readers of the repository")
		return
	}
	file := pgwal.BackupHistoryFileName(m.Timeline, m.StartLSN, m.WALSegmentSize)
	found, err := waitFor(ctx, func() (bool, error) { return r.HasBackupHistory(ctx, m) }, opts.HistoryWait, opts.PollInterval)
	if err != nil || !found {
		if ctx.Err() == nil {
			log.Info("the server's backup history file is not in the repository: the stop time is estimated", "file", file, "waited", max(opts.HistoryWait, 0), "err", err)
		}
		return
	}
	h, err := r.BackupHistory(ctx, m)
	if err == nil {
		err = m.UseBackupHistory(h)
	}
	if err != nil {
		log.Warn("cannot use the server's backup history file: the stop time is estimated", "file", file, "err", err)
	}
}

// waitFor waits up to wait for found to say yes, asking often at first and
// then every poll.
func waitFor(ctx context.Context, found func() (bool, error), wait, poll time.Duration) (bool, error) {
	deadline := time.NewTimer(max(wait, 0))
	defer deadline.Stop()
	pause := min(10*time.Millisecond, poll)
	for {
		ok, err := found()
		if ok || err != nil {
			return ok, err
		}
		if wait <= 0 {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			return false, nil
		case <-time.After(pause):
		}
		pause = min(pause*2, poll)
	}
}

// oldestPack returns the backup that stored the oldest of packs, by its
// id, and when it started; ok is false when no pack key parses.
func oldestPack(packs []string) (id string, at time.Time, ok bool) {
	for _, p := range packs {
		b, _, err := repo.ParsePackKey(p)
		if err != nil || (ok && b >= id) {
			continue
		}
		t, err := repo.BackupStart(b)
		if err != nil {
			continue
		}
		id, at, ok = b, t, true
	}
	return id, at, ok
}
