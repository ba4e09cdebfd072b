package repo

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenFileList is a file list read entry by entry, for a restore of any
// size: the object is opened into a temporary file that is mapped, and
// only the pack table and each archive's position are held in memory.
// Entries are parsed again each time an archive is iterated; an iterator
// that drops what it passed (EntryIter's drop) keeps the mapping's
// resident pages to a few MiB.
type OpenFileList struct {
	// FileList has BackupID, ContentKey, Packs and each archive's Name;
	// Entries are read with Entries.
	*FileList
	f    *os.File
	data []byte
}

// OpenFileList reads backup id's file list (as FileList does: with an
// identity or the content key, checked whole, every entry parsed once)
// into an OpenFileList, which must be closed.
func (r *Repository) OpenFileList(ctx context.Context, id string) (*OpenFileList, error) {
	f, data, err := r.mapFileList(ctx, id)
	if err != nil {
		return nil, err
	}
	o := &OpenFileList{f: f, data: data}
	page := os.Getpagesize()
	dropped := 0
	fl, err := parseFileList(data, func(_ *FileList, _ string, _ *FileEntry, done int) error {
		if done-dropped >= 8<<20 {
			end := done / page * page
			unix.Madvise(data[dropped:end], unix.MADV_DONTNEED)
			dropped = end
		}
		return nil
	})
	if err == nil && fl.BackupID != id {
		err = fmt.Errorf("%w: file list of backup %s names backup %q", ErrIntegrity, id, fl.BackupID)
	}
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	unix.Madvise(data, unix.MADV_DONTNEED)
	o.FileList = fl
	return o, nil
}

// FileListPacks returns the packs backup id's file list needs (its
// blocks' and its runs'), reading the list whole (checked as FileList
// checks it) without holding it in memory.
func (r *Repository) FileListPacks(ctx context.Context, id string) ([]string, error) {
	o, err := r.OpenFileList(ctx, id)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return o.Packs, nil
}

// mapFileList reads backup id's file list (with an identity or the
// content key; signature and checksum checked) into a temporary, unlinked
// file and maps it, a version-2 list expanded (walkFileList). The caller
// unmaps data and closes f.
func (r *Repository) mapFileList(ctx context.Context, id string) (*os.File, []byte, error) {
	f, data, err := r.mapStoredFileList(ctx, id)
	if err != nil || data[4] == fileVersion {
		return f, data, err
	}
	defer f.Close()
	defer unix.Munmap(data)
	cr, err := r.withContentKey()
	if err != nil {
		return nil, nil, err
	}
	defer cr.Close()
	ef, edata, err := cr.expandFileList(ctx, id, data)
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s: %w", id, err)
	}
	return ef, edata, nil
}

// mapStoredFileList is mapFileList without the expansion: data is a
// list of version 1 or 2.
func (r *Repository) mapStoredFileList(ctx context.Context, id string) (*os.File, []byte, error) {
	if !ValidBackupID(id) {
		return nil, nil, fmt.Errorf("backup id %q is not of the form 20060102T150405Z", id)
	}
	cr, err := r.withContentKey()
	if err != nil {
		return nil, nil, err
	}
	defer cr.Close()
	f, h, err := cr.getToFile(ctx, FileListKey(id))
	if err != nil {
		return nil, nil, err
	}
	if h.PlainSize < 5 {
		f.Close()
		return nil, nil, fmt.Errorf("%w: backup %s: file list: bad magic", ErrIntegrity, id)
	}
	data, err := mapFile(f, h.PlainSize)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("file list of backup %s: map: %w", id, err)
	}
	fail := func(err error) (*os.File, []byte, error) {
		unix.Munmap(data)
		f.Close()
		return nil, nil, err
	}
	if string(data[:4]) != fileMagic {
		return fail(fmt.Errorf("%w: backup %s: file list: bad magic", ErrIntegrity, id))
	}
	if data[4] != fileVersion && data[4] != fileVersion2 {
		return fail(fmt.Errorf("%w: backup %s: file list version %d, this walvault reads %d and %d", ErrUnsupportedFormat, id, data[4], fileVersion, fileVersion2))
	}
	return f, data, nil
}

// Close unmaps and removes the temporary file.
func (o *OpenFileList) Close() error {
	if o == nil || o.f == nil {
		return nil
	}
	unix.Munmap(o.data)
	err := o.f.Close()
	o.f, o.data = nil, nil
	return err
}

// HasArchive reports whether the list has an archive called name.
func (o *OpenFileList) HasArchive(name string) bool {
	for _, a := range o.Archives {
		if a.Name == name {
			return true
		}
	}
	return false
}

// Entries iterates the entries of archive name (none when there is no
// such archive). With drop, the pages of the mapping it has passed are
// dropped from memory (not from the file) as it goes: give it to the last
// of several iterators over one archive.
func (o *OpenFileList) Entries(name string, drop bool) *EntryIter {
	it := &EntryIter{o: o, drop: drop}
	for i, a := range o.Archives {
		if a.Name == name && i < len(o.spans) {
			sp := o.spans[i]
			it.r = flReader{b: o.data[sp.off:]}
			it.left, it.start, it.dropped = sp.n, sp.off, sp.off
			break
		}
	}
	return it
}

// EntryIter hands out the entries of one archive, in order. It is not
// safe for concurrent use.
type EntryIter struct {
	o       *OpenFileList
	r       flReader
	c       continuation
	e       FileEntry
	blocks  []BlockRef
	left    int
	drop    bool
	start   int
	dropped int
}

// Next returns the next entry, valid (its Blocks too) until the next
// call, or nil at the end.
func (it *EntryIter) Next() (*FileEntry, error) {
	if it.left == 0 {
		return nil, nil
	}
	if it.r.err != nil {
		return nil, it.r.err
	}
	it.e = FileEntry{}
	it.blocks = parseEntry(&it.r, &it.c, &it.e, len(it.o.Packs), it.blocks, true)
	if it.r.err != nil {
		return nil, it.r.err
	}
	it.left--
	if it.drop {
		done := len(it.o.data) - len(it.r.b)
		if page := os.Getpagesize(); done-it.dropped >= 4<<20 {
			lo := (it.dropped + page - 1) / page * page
			if hi := done / page * page; hi > lo {
				unix.Madvise(it.o.data[lo:hi], unix.MADV_DONTNEED)
			}
			it.dropped = done
		}
	}
	return &it.e, nil
}
