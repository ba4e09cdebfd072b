package stream

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/walvault/walvault/internal/pgwal"
)

// The spool holds, by file name:
//
//	<segment>          a complete segment, fsynced, waiting for upload
//	<segment>.partial  the segment being received (newest timeline), or the
//	                   last segment of an earlier timeline, which is never
//	                   completed; its length is the count of valid bytes
//	<TLI>.history      a timeline history file waiting for upload
//
// Files leave the spool only once stored in the repository.

const partialSuffix = ".partial"

// spoolFile is one file of the spool.
type spoolFile struct {
	kind  itemKind
	tli   uint32
	segno uint64
	path  string
	size  int64
}

func (f spoolFile) less(g spoolFile) int {
	return cmp.Or(cmp.Compare(f.tli, g.tli), cmp.Compare(f.kind.order(), g.kind.order()), cmp.Compare(f.segno, g.segno))
}

// scanSpool lists the spool in upload order (by timeline, history first,
// then by segment), fsyncing every file so that what it finds is durable.
// The newest partial of the newest timeline is returned apart: it is where
// streaming resumes.
func scanSpool(dir string, segSize int64) (files []spoolFile, current *spoolFile, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSpool, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(path) // an unfinished write of ours
			continue
		}
		base, isPartial := strings.CutSuffix(name, partialSuffix)
		fn, perr := pgwal.ParseFileName(base)
		if perr != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrSpool, err)
		}
		f := spoolFile{tli: fn.Timeline, path: path, size: info.Size()}
		switch {
		case fn.Kind == pgwal.KindHistory && !isPartial:
			f.kind = itemHistory
		case fn.Kind == pgwal.KindSegment && isPartial:
			f.kind, f.segno = itemFinalPartial, fn.SegNo(segSize)
			if _, err := os.Stat(filepath.Join(dir, base)); err == nil {
				// The complete segment is there: this is a stale copy.
				os.Remove(path)
				continue
			}
			if f.size > segSize {
				return nil, nil, fmt.Errorf("%w: %s is larger than a segment", ErrSpool, path)
			}
		case fn.Kind == pgwal.KindSegment:
			f.kind, f.segno = itemFull, fn.SegNo(segSize)
			if f.size != segSize {
				return nil, nil, fmt.Errorf("%w: %s is %d bytes, not a whole %d-byte segment", ErrSpool, path, f.size, segSize)
			}
		default:
			continue
		}
		if err := fsyncFile(path); err != nil {
			return nil, nil, err
		}
		files = append(files, f)
	}
	slices.SortFunc(files, spoolFile.less)
	// The last file, when it is a partial, is the segment being received.
	if n := len(files); n > 0 && files[n-1].kind == itemFinalPartial {
		cur := files[n-1]
		current = &cur
		files = files[:n-1]
	}
	return files, current, nil
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSpool, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: fsync %s: %v", ErrSpool, path, err)
	}
	return nil
}

func fsyncDir(dir string) error {
	return fsyncFile(dir)
}

// writeSpoolFile writes data to dir/name durably (temp file, fsync, rename,
// fsync the directory).
func writeSpoolFile(dir, name string, data []byte) (string, error) {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSpool, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("%w: write %s: %v", ErrSpool, path, err)
	}
	return path, fsyncDir(dir)
}

// segWriter is the spool file of the segment being received.
type segWriter struct {
	dir     string
	segSize int64
	tli     uint32
	segno   uint64
	f       *os.File
	path    string
	valid   int64 // bytes [0, valid) hold received WAL
	synced  int64 // bytes [0, synced) are fsynced
}

// openSegWriter opens (or creates) the partial file of a segment. An
// existing file's bytes are taken as received: it was fsynced by scanSpool
// or written by this process.
func openSegWriter(dir string, segSize int64, tli uint32, segno uint64) (*segWriter, error) {
	name := pgwal.SegmentName(tli, segno, segSize)
	path := filepath.Join(dir, name+partialSuffix)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpool, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %v", ErrSpool, err)
	}
	if info.Size() > segSize {
		f.Close()
		return nil, fmt.Errorf("%w: %s is larger than a segment", ErrSpool, path)
	}
	w := &segWriter{dir: dir, segSize: segSize, tli: tli, segno: segno, f: f, path: path, valid: info.Size(), synced: info.Size()}
	if info.Size() == 0 {
		// Make the new name durable before anything is reported flushed.
		if err := fsyncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return w, nil
}

func (w *segWriter) start() pgwal.LSN { return pgwal.SegmentStart(w.segno, w.segSize) }

// write stores data at its offset in the segment. Overlapping bytes (a
// segment received again after a reconnect) are rewritten in place; a gap
// is an error.
func (w *segWriter) write(off int64, data []byte) error {
	if off > w.valid {
		return fmt.Errorf("gap in the WAL stream: %s holds %d bytes, received data at offset %d", w.path, w.valid, off)
	}
	if _, err := w.f.WriteAt(data, off); err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrSpool, w.path, err)
	}
	w.valid = max(w.valid, off+int64(len(data)))
	return nil
}

func (w *segWriter) sync() error {
	if w.synced == w.valid {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("%w: fsync %s: %v", ErrSpool, w.path, err)
	}
	w.synced = w.valid
	return nil
}

func (w *segWriter) complete() bool { return w.valid == w.segSize }

// finish fsyncs and closes the file; a complete segment loses its .partial
// suffix. It returns the file's final path.
func (w *segWriter) finish() (string, error) {
	if err := w.sync(); err != nil {
		return "", err
	}
	if err := w.f.Close(); err != nil {
		return "", fmt.Errorf("%w: close %s: %v", ErrSpool, w.path, err)
	}
	if !w.complete() {
		return w.path, nil
	}
	full := strings.TrimSuffix(w.path, partialSuffix)
	if err := os.Rename(w.path, full); err != nil {
		return "", fmt.Errorf("%w: %v", ErrSpool, err)
	}
	if err := fsyncDir(w.dir); err != nil {
		return "", err
	}
	return full, nil
}

// close releases the file without renaming it.
func (w *segWriter) close() { w.f.Close() }

func removeSpoolFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", ErrSpool, err)
	}
	return nil
}
