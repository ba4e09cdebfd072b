package filestorepush

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walvault/walvault/internal/workpool"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// ErrMismatch: a file's content does not hash to its name. Push reports
// such files (Report.Mismatched) and goes on with the others.
var ErrMismatch = errors.New("filestore file does not match its name (SHA-1)")

// StreamThreshold is the file size above which a file is streamed (hashed,
// then sealed to a temporary file) instead of read into memory.
const StreamThreshold = 8 << 20

// SnapshotEvery is how many delta records a database's log gets before the
// next pass writes a full snapshot again.
const SnapshotEvery = 200

// Options configure one pass.
type Options struct {
	// DB is the Odoo database the filestore belongs to.
	DB string
	// Dir is the filestore directory, <data_dir>/filestore/<db>.
	Dir string
	// StateDir holds the local cache of this database and repository.
	StateDir string
	// RepoID identifies the repository (see Cache.Repo).
	RepoID string
	// Workers is how many files are read and stored at once (default
	// 2 per CPU, at least 4: the work is mostly waiting on storage).
	Workers int
	// TempDir receives the sealed copies of large files (default os.TempDir).
	TempDir string
	Logger  *slog.Logger
	// Progress receives how far the upload has come (nil: nowhere).
	Progress Progress
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Change says who pushes and how long a pass waits for the
	// repository's shared lock (an expire holds the exclusive one). Its
	// Logger defaults to Logger.
	Change repo.ChangeOptions
}

// Progress is told how far a pass has come; internal/progress's Reporter
// is one.
type Progress interface {
	Start(phase string, total int64)
	SetItems(total int64, unit string)
	Add(n int64)
	AddItems(n int64)
	Done()
}

type noProgress struct{}

func (noProgress) Start(string, int64)    {}
func (noProgress) SetItems(int64, string) {}
func (noProgress) Add(int64)              {}
func (noProgress) AddItems(int64)         {}
func (noProgress) Done()                  {}

// Report is what a pass did.
type Report struct {
	DB    string `json:"db"`
	Files int    `json:"files"` // files shaped like attachments
	// Skipped counts entries not shaped like xx/<sha1> (checklist/ …).
	Skipped int `json:"skipped"`
	// Unchanged files were known stored from the cache; Known from the
	// repository listing (no cache).
	Unchanged int `json:"unchanged"`
	Known     int `json:"already_stored"`
	// Uploaded files were stored by this pass; Existing were found stored
	// by another pass or database when uploading.
	Uploaded    int   `json:"uploaded"`
	Existing    int   `json:"existing"`
	Bytes       int64 `json:"bytes"`        // plaintext bytes uploaded
	StoredBytes int64 `json:"stored_bytes"` // their stored size
	// Mismatched are files whose SHA-1 is not their name: not stored.
	Mismatched []string `json:"mismatched,omitempty"`
	// Vanished files were deleted between the scan and their upload.
	Vanished int `json:"vanished"`
	// Record is the log record written: "" when nothing changed and no
	// snapshot was due.
	Record  string `json:"record,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Added   int    `json:"added"`
	Removed int    `json:"removed"`
	// CacheNote says why the cache was not used ("" when it was).
	CacheNote string        `json:"cache_note,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
}

// Push runs one pass over the filestore: scan, store the files the
// repository lacks, append a log record of what changed, save the cache.
// When some files fail to store, the record lists the others and Push
// returns the first error.
//
// The pass runs under the repository's shared lock "filestore-push", so
// that an expire, which takes the exclusive one, never sees it half done;
// it fails when the lock was lost before it ended.
func Push(ctx context.Context, r *repo.Repository, o Options) (*Report, error) {
	if o.Change.Logger == nil {
		o.Change.Logger = o.Logger
	}
	var rep *Report
	err := r.Change(ctx, repo.LockShared, "filestore-push", o.Change, func(l *repo.Lock) (repo.Audit, error) {
		var err error
		if rep, err = push(ctx, r, o); err != nil {
			return repo.Audit{}, err
		}
		return repo.Audit{}, l.Valid()
	})
	return rep, err
}

func push(ctx context.Context, r *repo.Repository, o Options) (*Report, error) {
	if !repo.ValidFilestoreDB(o.DB) {
		return nil, fmt.Errorf("database name %q: Odoo names are letters, digits, '_', '.' and '-'", o.DB)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Workers <= 0 {
		o.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if o.Progress == nil {
		o.Progress = noProgress{}
	}
	start := o.Now()
	rep := &Report{DB: o.DB}
	entries, skipped, err := Scan(o.Dir)
	if err != nil {
		return nil, err
	}
	rep.Files, rep.Skipped = len(entries), skipped

	cache, note := LoadCache(o.StateDir, CacheOwner(o.RepoID, o.DB))
	logKeys, err := r.FilestoreLogKeys(ctx, o.DB)
	if err != nil {
		return nil, err
	}
	mark := LogMark{Records: len(logKeys)}
	if len(logKeys) > 0 {
		mark.Newest = logKeys[len(logKeys)-1]
	}
	if cache != nil && cache.Log != mark {
		// The log is not the one the cache was written against: a delta
		// from the cache could miss what the other records changed.
		cache, note = nil, "the database's filestore log changed since the cache was written (another pusher of this database, a pass that stopped before saving its cache, a restored state directory, or expire)"
	}
	rep.CacheNote = note
	var stored map[string]storage.ObjectInfo
	if cache == nil {
		// The repository is the truth: one listing instead of a request
		// per file.
		stored, err = r.FilestoreObjects(ctx)
		if err != nil {
			return nil, err
		}
	}
	present := make(map[string]FileStat, len(entries))
	var todo []Entry
	for _, e := range entries {
		switch {
		case cache != nil && cache.Files[e.Name] == e.FileStat:
			rep.Unchanged++
			present[e.Name] = e.FileStat
		case stored != nil && stored[e.Name].Key != "":
			rep.Known++
			present[e.Name] = e.FileStat
		default:
			todo = append(todo, e)
			if old, ok := cacheFiles(cache)[e.Name]; ok {
				// Stored by an earlier pass, changed on disk since: still
				// present unless this pass finds it gone, whatever else
				// becomes of it (an upload error, a mismatch, a cancelled
				// pass must not log it removed, and so let expire delete
				// the object the database references). The old stat makes
				// the next pass look at it again.
				present[e.Name] = old
			}
		}
	}

	var (
		mu                 sync.Mutex
		uploaded, existing atomic.Int64
		bytesUp, storedUp  atomic.Int64
		vanished           atomic.Int64
		firstErr           error
	)
	if len(todo) > 0 {
		var total int64
		for _, e := range todo {
			total += e.Size
		}
		o.Logger.Info("storing filestore files", "db", o.DB, "files", len(todo), "bytes", total)
		o.Progress.Start("filestore "+o.DB, total)
		o.Progress.SetItems(int64(len(todo)), "files")
		defer o.Progress.Done()
	}
	werr := workpool.Each(ctx, todo, o.Workers, func(e Entry) error {
		n, sn, existed, err := storeFile(ctx, r, filepath.Join(o.Dir, filepath.FromSlash(e.Name)), e, o.TempDir)
		o.Progress.Add(e.Size)
		o.Progress.AddItems(1)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, ErrMismatch):
			rep.Mismatched = append(rep.Mismatched, e.Name)
			o.Logger.Warn("filestore file does not match its name: not stored (corrupted? compare with the database's checksum)", "db", o.DB, "file", e.Name, "err", err)
			return nil
		case errors.Is(err, errVanished):
			if gone := folderGone(o.Dir, e.Name); gone != nil {
				if firstErr == nil {
					firstErr = gone
				}
				return gone
			}
			vanished.Add(1)
			delete(present, e.Name)
			return nil
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
			// Keep going with the others unless the context ended:
			// they can still be stored and logged.
			return ctx.Err()
		}
		present[e.Name] = e.FileStat
		if existed {
			existing.Add(1)
		} else {
			uploaded.Add(1)
			bytesUp.Add(n)
			storedUp.Add(sn)
		}
		return nil
	})
	if firstErr == nil && werr != nil {
		firstErr = werr
	}
	rep.Uploaded, rep.Existing = int(uploaded.Load()), int(existing.Load())
	rep.Bytes, rep.StoredBytes, rep.Vanished = bytesUp.Load(), storedUp.Load(), int(vanished.Load())

	// The record: what is present and stored now, against what the log
	// held after the last pass.
	rec := repo.FilestoreRecord{DB: o.DB, Time: start}
	deltas := 0
	if cache == nil || cache.Deltas >= SnapshotEvery {
		rec.Kind = repo.FilestoreSnapshot
		for n := range present {
			rec.Added = append(rec.Added, n)
		}
	} else {
		rec.Kind = repo.FilestoreDelta
		for n := range present {
			if _, ok := cache.Files[n]; !ok {
				rec.Added = append(rec.Added, n)
			}
		}
		for n := range cache.Files {
			if _, ok := present[n]; !ok {
				rec.Removed = append(rec.Removed, n)
			}
		}
		deltas = cache.Deltas
	}
	if rec.Kind == repo.FilestoreSnapshot || len(rec.Added)+len(rec.Removed) > 0 {
		// Log what is stored even when the pass was cancelled: the
		// objects are there, and the next pass then need not upload them.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		key, err := r.PutFilestoreRecord(lctx, rec)
		cancel()
		if err != nil {
			return rep, errors.Join(firstErr, err)
		}
		rep.Record, rep.Kind, rep.Added, rep.Removed = key, rec.Kind, len(rec.Added), len(rec.Removed)
		mark.Records++
		mark.Newest = max(mark.Newest, key)
		if rec.Kind == repo.FilestoreDelta {
			deltas++
		}
	}
	if err := SaveCache(o.StateDir, &Cache{Repo: CacheOwner(o.RepoID, o.DB), Deltas: deltas, Log: mark, Files: present}); err != nil {
		return rep, errors.Join(firstErr, err)
	}
	rep.Duration = o.Now().Sub(start)
	return rep, firstErr
}

// storeFile checks that the file at path hashes to its name and stores it
// unless the repository holds it. It returns the plaintext and stored
// sizes and whether the object existed already.
func storeFile(ctx context.Context, r *repo.Repository, path string, e Entry, tempDir string) (int64, int64, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted since the scan (Odoo's garbage collection): only this
		// open may say so; a missing file anywhere else (a repository's
		// directory, $TMPDIR) is a failure.
		return 0, 0, false, fmt.Errorf("%w: %s", errVanished, path)
	}
	if err != nil {
		return 0, 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, false, err
	}
	size := fi.Size()
	want := e.Name[3:]
	if size <= StreamThreshold {
		data := make([]byte, size, size+1)
		if _, err := io.ReadFull(f, data); err != nil {
			return 0, 0, false, fmt.Errorf("read %s: %w", path, err)
		}
		if got := sha1.Sum(data); hex.EncodeToString(got[:]) != want {
			return 0, 0, false, fmt.Errorf("%w: %s has SHA-1 %x", ErrMismatch, path, got)
		}
		info, err := r.PutFilestoreObject(ctx, e.Name, data, sha256.Sum256(data))
		if storage.IsExist(err) {
			return 0, 0, true, nil
		}
		if err != nil {
			return 0, 0, false, err
		}
		return size, info.StoredSize, false, nil
	}
	// Large: hash first, then seal to a temporary file (bounded memory;
	// the store may need to seek back to retry).
	h1, h256 := sha1.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(h1, h256), f); err != nil {
		return 0, 0, false, fmt.Errorf("read %s: %w", path, err)
	}
	if got := hex.EncodeToString(h1.Sum(nil)); got != want {
		return 0, 0, false, fmt.Errorf("%w: %s has SHA-1 %s", ErrMismatch, path, got)
	}
	if found, err := r.HasFilestoreObject(ctx, e.Name); err == nil && found {
		return 0, 0, true, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, false, err
	}
	tmp, err := os.CreateTemp(tempDir, "walvault-filestore-*")
	if err != nil {
		return 0, 0, false, fmt.Errorf("temporary file for %s: %w", e.Name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := r.SealFilestoreObject(tmp, e.Name, f, size, [32]byte(h256.Sum(nil))); err != nil {
		return 0, 0, false, fmt.Errorf("seal %s: %w", path, err)
	}
	sn, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, 0, false, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, 0, false, err
	}
	err = r.PutSealedFilestoreObject(ctx, e.Name, tmp)
	if storage.IsExist(err) {
		return 0, 0, true, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	return size, sn, false, nil
}

// errVanished: a file of the scan was deleted before it was read.
var errVanished = errors.New("file vanished since the scan")

// folderGone says why a file missing from dir did not vanish: dir, or
// the xx folder the scan found it in, is gone (an unmounted NFS share, a
// mount point left empty). Logging every file still to store as removed
// would let expire delete what the database references. Odoo deletes
// files, never their folders.
func folderGone(dir, name string) error {
	for _, d := range []string{dir, filepath.Join(dir, name[:2])} {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("filestore %s went away during the pass (unmounted?): %w", dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("filestore %s went away during the pass (unmounted?): %s is not a folder", dir, d)
		}
	}
	return nil
}

func cacheFiles(c *Cache) map[string]FileStat {
	if c == nil {
		return nil
	}
	return c.Files
}
