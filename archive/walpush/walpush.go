package walpush

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// ErrConflict: the repository already holds different content under the name.
var ErrConflict = errors.New("a different file is already archived under this name")

// ErrBadFile: the file is not a WAL file of this cluster's kind.
var ErrBadFile = errors.New("not a valid WAL file")

// Options tune Push.
type Options struct {
	// PushAhead is how many other .ready segments to archive in parallel
	// with the requested one (0 disables).
	PushAhead int
	Logger    *slog.Logger
}

// Result says what happened to the requested file.
type Result struct {
	Name string
	// Stored is false when an identical copy was already archived.
	Stored     bool
	Bytes      int64
	StoredSize int64
	// Ahead lists other segments archived in the same call.
	Ahead []string
	// Conflict, when set, says that the repository held something else
	// under the name and where this file was stored instead (an
	// alternate copy, see repo.PutWALAlternate).
	Conflict string
}

// Push archives the WAL file at path.
func Push(ctx context.Context, r *repo.Repository, path string, opts Options) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := filepath.Base(path)
	f, err := pgwal.ParseFileName(name)
	if err != nil {
		return Result{Name: name}, fmt.Errorf("%w: %s: %v", ErrBadFile, path, err)
	}
	var ahead []string
	if opts.PushAhead > 0 && f.Kind == pgwal.KindSegment {
		ahead = readySegments(filepath.Dir(path), name, opts.PushAhead)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		pushed []string
	)
	for _, a := range ahead {
		wg.Add(1)
		go func(a string) {
			defer wg.Done()
			res, err := pushFile(ctx, r, filepath.Join(filepath.Dir(path), a), log)
			if err != nil {
				// The archiver will ask for this one itself and get the
				// error then; here it is only a head start.
				log.Warn("push-ahead failed", "file", a, "err", err)
				return
			}
			if res.Stored {
				mu.Lock()
				pushed = append(pushed, a)
				mu.Unlock()
			}
		}(a)
	}
	res, err := pushFile(ctx, r, path, log)
	wg.Wait()
	sort.Strings(pushed)
	res.Ahead = pushed
	return res, err
}

func pushFile(ctx context.Context, r *repo.Repository, path string, log *slog.Logger) (Result, error) {
	name := filepath.Base(path)
	res := Result{Name: name}
	f, err := pgwal.ParseFileName(name)
	if err != nil {
		return res, fmt.Errorf("%w: %s: %v", ErrBadFile, path, err)
	}
	data, release, err := readWAL(path)
	if err != nil {
		return res, fmt.Errorf("read WAL file: %w", err)
	}
	defer release()
	res.Bytes = int64(len(data))
	if err := checkContent(r, f, data, filepath.Dir(path)); err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	key := repo.WALKey(f)
	// Hash on one core while the other looks up the stored copy and,
	// when there is none, compresses.
	sumc := make(chan [32]byte, 1)
	go func() { sumc <- sha256.Sum256(data) }()
	sumOf := sync.OnceValue(func() [32]byte { return <-sumc })
	// The hash reads the mapped file: it must be done before release
	// unmaps it, whichever way this function returns.
	defer sumOf()
	same, why, err := r.StoredMatches(ctx, key, int64(len(data)), sumOf)
	switch {
	case err == nil && same:
		// Stored before; its head may not be (a crash in between).
		return res, r.PutWALHead(ctx, f)
	case err == nil:
		return storeAlternate(ctx, r, f, data, sumOf(), why, res, log)
	case !storage.IsNotExist(err):
		return res, err
	}
	info, err := r.PutSumFunc(ctx, key, data, sumOf, storage.PutOptions{IfAbsent: true})
	if storage.IsExist(err) {
		// Another pusher won the race (or an earlier attempt succeeded
		// behind a network error): same content is success.
		same, why, err := r.StoredMatches(ctx, key, int64(len(data)), sumOf)
		if err != nil {
			return res, err
		}
		if !same {
			return storeAlternate(ctx, r, f, data, sumOf(), why, res, log)
		}
		return res, r.PutWALHead(ctx, f)
	}
	if err != nil {
		return res, err
	}
	res.Stored = true
	res.StoredSize = info.StoredSize
	// The head after the segment: a head never names a segment that was
	// not stored.
	return res, r.PutWALHead(ctx, f)
}

// storeAlternate archives a file whose name already holds something else
// (why says what) beside it, as repo.PutWALAlternate does, instead of
// failing: a failure would make PostgreSQL retry this file forever while
// pg_wal fills, which is what an object planted under a future segment's
// name would otherwise achieve. It logs the conflict as an error and
// returns it in the Result; check and verify report the alternate, and
// readers take the copy that verifies. Only when both alternate keys hold
// other content too is it ErrConflict.
func storeAlternate(ctx context.Context, r *repo.Repository, f pgwal.FileName, data []byte, sum [32]byte, why string, res Result, log *slog.Logger) (Result, error) {
	key := repo.WALKey(f)
	alt, err := r.PutWALAlternate(ctx, f, data, sum)
	if errors.Is(err, repo.ErrAlternateTaken) {
		return res, fmt.Errorf("%w: %s in %s: %s, and %v; the stored objects were left untouched — check that two clusters do not share this repository", ErrConflict, f.Name, r, why, err)
	}
	if err != nil {
		return res, err
	}
	res.Stored = true
	res.Conflict = fmt.Sprintf("%s: %s; this file was stored beside it as %s", key, why, alt)
	log.Error("WAL conflict: a different object is already archived under this name; archived this file beside it (walvault check and verify report it; restore uses the copy that verifies)",
		"file", f.Name, "existing", key, "why", why, "stored_as", alt)
	return res, r.PutWALHead(ctx, f)
}

// checkContent refuses files that cannot be this cluster's WAL. walDir is
// the directory the file is in (pg_wal), where the history of its timeline
// is read from when a page carries an older timeline.
func checkContent(r *repo.Repository, f pgwal.FileName, data []byte, walDir string) error {
	switch f.Kind {
	case pgwal.KindSegment, pgwal.KindPartial:
	case pgwal.KindHistory, pgwal.KindBackupHistory:
		if len(data) > 1<<20 || bytes.IndexByte(data, 0) >= 0 {
			return fmt.Errorf("%w: %s is not a text file", ErrBadFile, f.Name)
		}
		return nil
	default:
		return fmt.Errorf("%w: %s", ErrBadFile, f.Name)
	}
	segSize := r.Config.WALSegmentSize
	if int64(len(data)) != segSize {
		return fmt.Errorf("%w: %s is %d bytes, the repository's segments are %d", ErrBadFile, f.Name, len(data), segSize)
	}
	h, err := pgwal.ParseLongPageHeader(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadFile, f.Name, err)
	}
	major, _ := pgwal.MajorFromMagic(h.Magic)
	if err := r.CheckCluster(h.SystemIdentifier, major, int64(h.SegmentSize)); err != nil {
		return err
	}
	if want := pgwal.SegmentStart(f.SegNo(segSize), segSize); h.PageAddr != want {
		return fmt.Errorf("%w: %w: %s starts at %s, its name says %s", ErrBadFile, repo.ErrIntegrity, f.Name, h.PageAddr, want)
	}
	err = pgwal.CheckPages(data, pgwal.PageCheck{Timeline: f.Timeline, SegNo: f.SegNo(segSize), SegSize: segSize, History: localHistory(walDir, f.Timeline)})
	if err != nil {
		return fmt.Errorf("%w: %w: %s: %v", ErrBadFile, repo.ErrIntegrity, f.Name, err)
	}
	return nil
}

// localHistory reads timeline tli's history file next to the segment, as
// PostgreSQL keeps it in pg_wal. Without it (a segment archived from
// elsewhere) older timelines are allowed unjudged: the archiving host cannot
// read the repository's copy (it holds no identity), and refusing would stop
// archiving; readers judge against the repository's history.
func localHistory(walDir string, tli uint32) func() ([]pgwal.HistoryEntry, bool, error) {
	return func() ([]pgwal.HistoryEntry, bool, error) {
		if tli <= 1 {
			return nil, true, nil
		}
		p := filepath.Join(walDir, pgwal.HistoryFileName(tli))
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, false, nil
		}
		entries, err := pgwal.ParseHistory(data)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", ErrBadFile, p, err)
		}
		return entries, true, nil
	}
}

// readySegments lists up to n segments after name that PostgreSQL has marked
// ready for archiving (pg_wal/archive_status/*.ready), oldest first.
func readySegments(walDir, name string, n int) []string {
	entries, err := os.ReadDir(filepath.Join(walDir, "archive_status"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		seg, ok := strings.CutSuffix(e.Name(), ".ready")
		if !ok || seg <= name {
			continue
		}
		if f, err := pgwal.ParseFileName(seg); err != nil || f.Kind != pgwal.KindSegment {
			continue
		}
		out = append(out, seg)
	}
	sort.Strings(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// readWAL maps the file read-only: a WAL segment PostgreSQL hands to
// archive_command is complete and not written any more, and mapping its
// page-cache pages avoids copying 16 MiB into fresh memory in every
// short-lived wal-push process. Small files, and any mapping failure, fall
// back to reading.
func readWAL(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if size := st.Size(); size >= 1<<20 && size <= 1<<30 {
		if m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE); err == nil {
			return m, func() { _ = unix.Munmap(m) }, nil
		}
	}
	data, err := io.ReadAll(f)
	return data, func() {}, err
}
