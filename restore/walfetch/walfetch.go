package walfetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// ErrNotFound: the repository holds no such file.
var ErrNotFound = errors.New("not in the repository")

// Fetch writes WAL file name from the repository to dest. prefetchDir, when
// not empty, is checked first for a prefetched copy.
func Fetch(ctx context.Context, r *repo.Repository, name, dest, prefetchDir string) (fromPrefetch bool, err error) {
	f, err := pgwal.ParseFileName(name)
	if err != nil {
		return false, err
	}
	if prefetchDir != "" {
		p := filepath.Join(prefetchDir, name)
		if err := os.Rename(p, dest); err == nil {
			return true, nil
		}
	}
	data, err := Get(ctx, r, f)
	if err != nil {
		return false, err
	}
	return false, writeFile(dest, data, false)
}

// Get reads and verifies one WAL file. When writers stored alternate
// copies beside it (repo.PutWALAlternate: they met something else under
// its name), the one copy that verifies is the file; none, or two that
// verify and differ, is repo.ErrIntegrity naming them.
func Get(ctx context.Context, r *repo.Repository, f pgwal.FileName) ([]byte, error) {
	key := repo.WALKey(f)
	alts, err := r.WALAlternates(ctx, f)
	if err != nil {
		return nil, err
	}
	if len(alts) > 0 {
		return getCopies(ctx, r, f, append([]string{key}, alts...))
	}
	data, _, err := r.Get(ctx, key)
	if storage.IsNotExist(err) && f.Kind == pgwal.KindSegment {
		// No full segment: the streaming receiver may hold the newest
		// part of it. Used only at the very end of the WAL.
		data, key, err = getStreamPartial(ctx, r, f)
	}
	if err != nil {
		if storage.IsNotExist(err) {
			return nil, fmt.Errorf("%s (%s): %w", f.Name, key, ErrNotFound)
		}
		return nil, err
	}
	if f.Kind == pgwal.KindSegment || f.Kind == pgwal.KindPartial {
		if err := checkSegment(r, f, data, RepoHistory(ctx, r, f.Timeline)); err != nil {
			return nil, fmt.Errorf("object %s: %w", key, err)
		}
	}
	return data, nil
}

// getCopies reads every copy of f (keys: its key and its alternates) and
// picks the one that verifies.
func getCopies(ctx context.Context, r *repo.Repository, f pgwal.FileName, keys []string) ([]byte, error) {
	var good []repo.WALCopy
	bad := map[string]error{}
	for _, k := range keys {
		data, _, err := r.Get(ctx, k)
		if storage.IsNotExist(err) {
			continue
		}
		if err == nil && (f.Kind == pgwal.KindSegment || f.Kind == pgwal.KindPartial) {
			err = checkSegment(r, f, data, RepoHistory(ctx, r, f.Timeline))
		}
		switch {
		case err == nil:
			good = append(good, repo.WALCopy{Key: k, Data: data})
		case errors.Is(err, repo.ErrIntegrity), errors.Is(err, repo.ErrWrongKey), errors.Is(err, repo.ErrUnsupportedFormat):
			bad[k] = err
		default:
			return nil, err
		}
	}
	if len(good) == 0 && len(bad) == 0 {
		return nil, fmt.Errorf("%s (%s): %w", f.Name, keys[0], ErrNotFound)
	}
	data, _, err := repo.PickWALCopy(f.Name, good, bad)
	return data, err
}

// getStreamPartial returns the largest streamed partial of segment f,
// padded with zeros to the segment size as PostgreSQL expects of a segment
// file (replay ends at the first invalid record).
func getStreamPartial(ctx context.Context, r *repo.Repository, f pgwal.FileName) ([]byte, string, error) {
	p, err := r.LatestStreamPartial(ctx, f)
	if err != nil {
		return nil, repo.WALKey(f), err
	}
	data, _, err := r.Get(ctx, p.Key)
	if err != nil {
		return nil, p.Key, err
	}
	if int64(len(data)) != p.Valid || p.Valid < pgwal.LongPageHeaderSize {
		return nil, p.Key, fmt.Errorf("object %s: %w: holds %d bytes, its key says %d", p.Key, repo.ErrIntegrity, len(data), p.Valid)
	}
	seg := make([]byte, r.Config.WALSegmentSize)
	copy(seg, data)
	return seg, p.Key, nil
}

// checkSegment makes sure the object holds the segment its key names, of
// this repository's cluster: a misplaced object is damage, not data.
// history gives the timeline history of f's timeline, for its pages of
// older timelines (pgwal.CheckPages).
func checkSegment(r *repo.Repository, f pgwal.FileName, data []byte, history func() ([]pgwal.HistoryEntry, bool, error)) error {
	segSize := r.Config.WALSegmentSize
	if int64(len(data)) != segSize {
		return fmt.Errorf("%w: %d bytes, segments are %d", repo.ErrIntegrity, len(data), segSize)
	}
	h, err := pgwal.ParseLongPageHeader(data)
	if err != nil {
		return fmt.Errorf("%w: %v", repo.ErrIntegrity, err)
	}
	if h.SystemIdentifier != r.Config.SysID() {
		return fmt.Errorf("%w: segment of system %d in the repository of system %s", repo.ErrIntegrity, h.SystemIdentifier, r.Config.SystemIdentifier)
	}
	if want := pgwal.SegmentStart(f.SegNo(segSize), segSize); h.PageAddr != want {
		return fmt.Errorf("%w: segment starts at %s, its name says %s", repo.ErrIntegrity, h.PageAddr, want)
	}
	err = pgwal.CheckPages(data, pgwal.PageCheck{Timeline: f.Timeline, SegNo: f.SegNo(segSize), SegSize: segSize, History: history})
	if errors.Is(err, pgwal.ErrPageTimeline) {
		return fmt.Errorf("%w: %w", repo.ErrIntegrity, err)
	}
	return err
}

// RepoHistory returns a pgwal.PageCheck history lookup that reads timeline
// tli's history file from r. In a format-2 repository the history of
// every timeline after the first must be there: its absence is
// repo.ErrIntegrity (deleted), not a reason to judge less. In a format-1
// repository an absent history leaves older timelines unjudged.
func RepoHistory(ctx context.Context, r *repo.Repository, tli uint32) func() ([]pgwal.HistoryEntry, bool, error) {
	return func() ([]pgwal.HistoryEntry, bool, error) {
		if tli <= 1 {
			return nil, true, nil
		}
		hf, _ := pgwal.ParseFileName(pgwal.HistoryFileName(tli))
		key := repo.WALKey(hf)
		data, _, err := r.Get(ctx, key)
		switch {
		case storage.IsNotExist(err) && !r.Signed():
			return nil, false, nil
		case storage.IsNotExist(err):
			return nil, false, fmt.Errorf("%w: %s is missing: the history of timeline %d is needed to check its WAL (deleted from the repository?)", repo.ErrIntegrity, key, tli)
		case err != nil:
			return nil, false, err
		}
		entries, err := pgwal.ParseHistory(data)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", repo.ErrIntegrity, key, err)
		}
		return entries, true, nil
	}
}

// writeFile writes data to path through a temporary file in the same
// directory, so a reader sees the whole file or none.
func writeFile(path string, data []byte, durable bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".walvault-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// NextSegments names the n segments after name on the same timeline.
func NextSegments(name string, n int, segSize int64) []string {
	f, err := pgwal.ParseFileName(name)
	if err != nil || f.Kind != pgwal.KindSegment {
		return nil
	}
	segno := f.SegNo(segSize)
	out := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, pgwal.SegmentName(f.Timeline, segno+uint64(i), segSize))
	}
	return out
}

// staleLock is how old a prefetch lock may be before another prefetcher
// takes over: a prefetcher that died must not block the segment forever.
const staleLock = 2 * time.Minute

// Prefetch downloads the named segments into dir, in parallel, each
// verified before it is renamed into place. dir must exist (wal-fetch makes
// it): a prefetcher still running when recovery has ended, and the
// directory was removed with what recovery left, must not make it again.
// Segments already present or being fetched by another process are skipped;
// a segment the repository does not hold yet ends the run quietly. It
// returns the names it stored.
func Prefetch(ctx context.Context, r *repo.Repository, dir string, names []string, workers int) ([]string, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, err
	}
	if workers < 1 {
		workers = 1
	}
	var (
		mu     sync.Mutex
		stored []string
		first  error
		wg     sync.WaitGroup
		sem    = make(chan struct{}, workers)
	)
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			continue
		}
		f, err := pgwal.ParseFileName(name)
		if err != nil {
			return stored, err
		}
		lock := filepath.Join(dir, name+".lock")
		if !takeLock(lock) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer os.Remove(lock)
			data, err := Get(ctx, r, f)
			if err == nil {
				err = writeFile(filepath.Join(dir, f.Name), data, false)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				stored = append(stored, f.Name)
			} else if !errors.Is(err, ErrNotFound) && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	return stored, first
}

func takeLock(path string) bool {
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return true
		}
		st, serr := os.Stat(path)
		if serr != nil || time.Since(st.ModTime()) < staleLock {
			return false
		}
		os.Remove(path)
	}
	return false
}

// CleanPrefetch removes prefetched segments older than name (recovery has
// moved past them) and leftover temporaries.
func CleanPrefetch(dir, name string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".walvault-") && strings.HasSuffix(n, ".tmp") {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleLock {
				os.Remove(filepath.Join(dir, n))
			}
			continue
		}
		if f, err := pgwal.ParseFileName(n); err == nil && f.Kind == pgwal.KindSegment && n < name && n[:8] == name[:8] {
			os.Remove(filepath.Join(dir, n))
		}
	}
}
