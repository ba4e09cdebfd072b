package repo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/walvault/walvault/storage"
)

// FileListWriter encodes a block backup's file list entry by entry into a
// temporary file, so that a backup's memory does not grow with the number
// of its files and blocks (about 17 bytes a block, encoded, go to disk
// instead: TestFileListWriterMemory). The list it stores
// (PutFileListFrom) is byte for byte what FileList.MarshalBinary encodes.
//
// The temporary files are unlinked as soon as they are created: a crash
// leaves nothing behind. A FileListWriter must be closed.
type FileListWriter struct {
	id       string
	key      ContentKeyID
	f        *os.File
	w        *bufio.Writer
	size     int64 // bytes written to f
	archives []flArchive
	c        continuation
	buf      []byte
	err      error
	// With runs set (UseRuns), the list is written in version 2.
	runs *runWriter
}

// runWriter is how a FileListWriter stores the runs of large files.
type runWriter struct {
	store    func(pieces [][]byte, refs []BlockRef) error
	packName func(i uint32) string
	buf      []byte // the entry's runs, one after the other
	sizes    []int  // their sizes
	pieces   [][]byte
	refs     []BlockRef
}

// UseRuns makes w write its list in version 2: the references of files
// of more than 16 blocks go into runs (blocks_runs.go). As a file's entry
// is added, the pieces of all its runs are handed to store at once, which
// names each piece and fills in its reference (refs[i] for pieces[i])
// before it returns; the pieces are valid during the call only. packName
// returns the key of the pack a block reference's Pack indexes (it grows
// as the backup stores packs).
func (w *FileListWriter) UseRuns(store func(pieces [][]byte, refs []BlockRef) error, packName func(i uint32) string) {
	w.runs = &runWriter{store: store, packName: packName}
}

// flArchive is one archive's place in the temporary file: its entries are
// its size bytes from off.
type flArchive struct {
	name    string
	entries int
	off     int64
	size    int64
}

// tempFile creates a file in a new private directory under $TMPDIR and
// unlinks both at once: the file lives while it is open.
func tempFile(what string) (*os.File, error) {
	dir, err := os.MkdirTemp("", "walvault-blocks-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w (set TMPDIR to a writable directory)", what, err)
	}
	defer os.Remove(dir)
	f, err := os.OpenFile(dir+"/"+what, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (set TMPDIR to a writable directory)", what, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return f, nil
}

// NewFileListWriter starts the file list of backup id, whose block ids
// are made with the content key named key.
func NewFileListWriter(id string, key ContentKeyID) (*FileListWriter, error) {
	if !ValidBackupID(id) {
		return nil, fmt.Errorf("invalid backup id %q", id)
	}
	f, err := tempFile("file-list")
	if err != nil {
		return nil, err
	}
	return &FileListWriter{id: id, key: key, f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// BeginArchive starts the entries of the next archive.
func (w *FileListWriter) BeginArchive(name string) {
	w.archives = append(w.archives, flArchive{name: name, off: w.size})
	w.c = continuation{}
}

// Add encodes the next entry of the current archive. Its blocks must all
// be known.
func (w *FileListWriter) Add(e *FileEntry) error {
	if w.err != nil {
		return w.err
	}
	if len(w.archives) == 0 {
		return errors.New("file list: an entry before any archive")
	}
	if w.runs != nil && e.IsRegular() && hasRuns(e.Size) {
		if err := w.appendRuns(e); err != nil {
			w.err = err
			return err
		}
	} else {
		w.buf = appendFileEntry(w.buf[:0], e, &w.c)
	}
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("file list: write: %w", err)
		return w.err
	}
	w.size += int64(len(w.buf))
	a := &w.archives[len(w.archives)-1]
	a.entries++
	a.size += int64(len(w.buf))
	return nil
}

// Close removes the temporary file.
func (w *FileListWriter) Close() error { return w.f.Close() }

// plain returns a reader of the whole encoded list, given its packs.
func (w *FileListWriter) plain(packs []string) io.Reader {
	version := byte(fileVersion)
	if w.runs != nil {
		version = fileVersion2
	}
	head := appendListHead(nil, version, w.id, w.key, packs, len(w.archives))
	parts := []io.Reader{bytes.NewReader(head)}
	for _, a := range w.archives {
		ah := appendString(nil, a.name)
		ah = binary.AppendUvarint(ah, uint64(a.entries))
		parts = append(parts, bytes.NewReader(ah), io.NewSectionReader(w.f, a.off, a.size))
	}
	return io.MultiReader(parts...)
}

// PutFileListFrom stores the file list w wrote, its blocks in packs (the
// pack numbers of its block references index packs), as PutFileList
// would: the plaintext is read from w's file twice (its checksum, then
// sealed into a second temporary file), never held in memory. A writer
// that UseRuns stores version 2, else version 1.
func (r *Repository) PutFileListFrom(ctx context.Context, w *FileListWriter, packs []string) (ObjectInfo, error) {
	if w.err != nil {
		return ObjectInfo{}, w.err
	}
	if err := w.w.Flush(); err != nil {
		return ObjectInfo{}, fmt.Errorf("file list: write: %w", err)
	}
	return r.putPlainFile(ctx, FileListKey(w.id), func() io.Reader { return w.plain(packs) }, storage.PutOptions{IfAbsent: true})
}

// putPlainFile stores under key the plaintext plain returns (each call a
// new reader of it, read twice: its checksum, then sealed into a
// temporary file), sealed to the content key too.
func (r *Repository) putPlainFile(ctx context.Context, key string, plain func() io.Reader, opts storage.PutOptions) (ObjectInfo, error) {
	hash := sha256.New()
	size, err := io.Copy(hash, plain())
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("%s: read back: %w", key, err)
	}
	var sum [32]byte
	hash.Sum(sum[:0])
	cr, err := r.withContentKey()
	if err != nil {
		return ObjectInfo{}, err
	}
	defer cr.Close()
	out, err := tempFile("file-list-sealed")
	if err != nil {
		return ObjectInfo{}, err
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	err = cr.sealStream(key, bw, plain(), size, sum)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("seal %s: %w", key, err)
	}
	stored, err := out.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("seal %s: %w", key, err)
	}
	if err := r.store.Put(ctx, key, out, opts); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return ObjectInfo{Key: key, PlainSize: size, SHA256: hex.EncodeToString(sum[:]), StoredSize: stored}, nil
}

// getToFile reads, verifies and opens the object under key as Get does,
// the plaintext going (through Open) to a temporary, unlinked file instead
// of memory: the header's signature is checked first, the plaintext's
// size and checksum once it is all written. The caller closes the file.
func (r *Repository) getToFile(ctx context.Context, key string) (*os.File, ObjectHeader, error) {
	rc, h, err := r.Open(ctx, key)
	if err != nil {
		return nil, h, err
	}
	defer rc.Close()
	f, err := tempFile("object")
	if err != nil {
		return nil, h, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	// Write errors are the temporary file's; read errors come from Open's
	// reader, which tells damage (ErrIntegrity) from the storage's.
	var werr error
	_, err = io.Copy(writerFunc(func(p []byte) (int, error) {
		n, err := bw.Write(p)
		if err != nil {
			werr = err
		}
		return n, err
	}), rc)
	if err == nil {
		if err = bw.Flush(); err != nil {
			werr = err
		}
	}
	if werr != nil {
		err = fmt.Errorf("%s: write a temporary file: %w", key, werr)
	}
	if err != nil {
		f.Close()
		return nil, h, err
	}
	return f, h, nil
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// mapFile maps the first size bytes of f (size > 0) read-only.
func mapFile(f *os.File, size int64) ([]byte, error) {
	return unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
}
