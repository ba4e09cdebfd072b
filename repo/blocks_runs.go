package repo

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
)

// File lists of version 2 (docs/FORMAT.md, "File list runs"): the block
// references of a large file are not in the list itself but in runs of
// RunBlocks references, each stored once, content-addressed, as blocks
// ("pieces") of a pack sealed to the content key too. The list names a
// run by its pieces. A backup of files that did not change names the
// runs the previous backup stored: its list holds a few bytes per 2 MiB
// of data instead of 17 bytes per 8 KiB block.
//
// Readers expand a version-2 list into the version-1 encoding (in a
// temporary file, with the pieces' references after the archives: the
// "expanded" form, never stored), so everything that reads file lists
// reads one encoding.

const (
	fileVersion2 = 2
	// expandedVersion marks the expanded form of a version-2 list; it is
	// refused in a stored object.
	expandedVersion = 0x82
	// RunBlocks is the number of block references of one run (2 MiB of
	// data); a file's last run holds the rest.
	RunBlocks = 256
	// inlineBlocks: files of at most this many blocks keep their
	// references in the list.
	inlineBlocks = 16
	// maxRunSize bounds a run's encoding (4 pieces).
	maxRunSize = 4 * BlockSize
	runMagic   = "WVRN"
	runVersion = 1
	// runIDDomain names pieces under their own key: a piece's id never
	// equals a data block's.
	runIDDomain = "walvault run id v1\x00"
)

func newRunHasher(ck [32]byte) *BlockHasher {
	h := newBlockHasher(subKey(ck, runIDDomain))
	h.Key = contentKeyID(ck)
	return h
}

// NewRunHasher returns the hasher that names the pieces of file list runs
// under the content key new backups use.
func (r *Repository) NewRunHasher() (*BlockHasher, error) {
	return r.newHasher(newRunHasher)
}

func (r *Repository) runHasherFor(id ContentKeyID) (*BlockHasher, error) {
	return r.hasherFor(newRunHasher, id, "the file list was written")
}

// hasRuns reports whether a regular file of size bytes has its block
// references in runs.
func hasRuns(size int64) bool { return (size+BlockSize-1)/BlockSize > inlineBlocks }

// encodeRun appends the run of refs (whose Pack packName names) to b: its
// own table of the packs it names, in order of first use, then the
// references as a file list encodes them, indexing that table.
func encodeRun(b []byte, refs []BlockRef, packName func(uint32) string) []byte {
	b = append(b, runMagic...)
	b = append(b, runVersion)
	var local []uint32
	at := func(p uint32) uint32 {
		for i, q := range local {
			if q == p {
				return uint32(i)
			}
		}
		local = append(local, p)
		return uint32(len(local) - 1)
	}
	for _, br := range refs {
		at(br.Pack)
	}
	b = binary.AppendUvarint(b, uint64(len(local)))
	for _, p := range local {
		b = appendString(b, packName(p))
	}
	b = binary.AppendUvarint(b, uint64(len(refs)))
	var c continuation
	for _, br := range refs {
		br.Pack = at(br.Pack)
		b = appendRef(b, br, &c)
	}
	return b
}

// decodeRun reads a run of want references; global maps the list's pack
// keys to their index, which the references get. It hands them to out.
func decodeRun(data []byte, want int, global map[string]uint32, name string, out func(BlockRef) error) error {
	r := &flReader{b: data}
	if len(data) < 5 || string(data[:4]) != runMagic {
		return fmt.Errorf("%w: file list: %s: a run with a bad magic", ErrIntegrity, name)
	}
	if data[4] != runVersion {
		return fmt.Errorf("%w: file list: %s: run version %d, this walvault reads %d", ErrUnsupportedFormat, name, data[4], runVersion)
	}
	r.b = data[5:]
	np := r.count("run pack count", 2)
	local := make([]uint32, 0, np)
	for range np {
		p := r.string("run pack key")
		if r.err != nil {
			break
		}
		g, ok := global[p]
		if !ok {
			r.fail("%s: a run names pack %q, which the list's table lacks", name, p)
			break
		}
		local = append(local, g)
	}
	if n := r.count("run length", 17); r.err == nil && n != want {
		r.fail("%s: a run of %d blocks where %d belong", name, n, want)
	}
	var c continuation
	for range want {
		if r.err != nil {
			break
		}
		var br BlockRef
		parseRef(r, &c, &br, len(local), name)
		if r.err != nil {
			break
		}
		br.Pack = local[br.Pack]
		if err := out(br); err != nil {
			return err
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%s: %d bytes after a run", name, len(r.b))
	}
	return r.err
}

// appendRuns encodes e, a regular file of more than inlineBlocks blocks,
// into w.buf as version 2 does: its head, then its runs, whose pieces are
// stored (w.runs.store) all at once.
func (w *FileListWriter) appendRuns(e *FileEntry) error {
	rw := w.runs
	rw.buf, rw.sizes = rw.buf[:0], rw.sizes[:0]
	for k := 0; k < len(e.Blocks); k += RunBlocks {
		at := len(rw.buf)
		rw.buf = encodeRun(rw.buf, e.Blocks[k:min(k+RunBlocks, len(e.Blocks))], rw.packName)
		if n := len(rw.buf) - at; n > maxRunSize {
			return fmt.Errorf("file list: %s: a run of %d bytes", e.Name, n)
		}
		rw.sizes = append(rw.sizes, len(rw.buf)-at)
	}
	rw.pieces = rw.pieces[:0]
	at := 0
	for _, size := range rw.sizes {
		run := rw.buf[at : at+size]
		for i := 0; i < size; i += BlockSize {
			rw.pieces = append(rw.pieces, run[i:min(i+BlockSize, size)])
		}
		at += size
	}
	rw.refs = slices.Grow(rw.refs[:0], len(rw.pieces))[:len(rw.pieces)]
	clear(rw.refs)
	if err := rw.store(rw.pieces, rw.refs); err != nil {
		return err
	}
	w.buf = appendEntryHead(w.buf[:0], e)
	p := 0
	for _, size := range rw.sizes {
		w.buf = binary.AppendUvarint(w.buf, uint64(size))
		for range (size + BlockSize - 1) / BlockSize {
			w.buf = appendRef(w.buf, rw.refs[p], &w.c)
			p++
		}
	}
	return nil
}

// listVisitor receives a version-2 list as walkFileList reads it: its
// head (BackupID, ContentKey and Packs set), each archive as it begins,
// each entry with all its block references (valid until the next call),
// and at the end the pieces of its runs.
type listVisitor struct {
	head    func(fl *FileList, archives int) error
	archive func(name string, entries int) error
	entry   func(e *FileEntry) error
	pieces  func(list []BlockRef) error
}

// walkFileList reads data, a stored version-2 list of backup id, reading
// its runs (r must hold the content key or an identity), and hands what
// it holds to v.
func (r *Repository) walkFileList(ctx context.Context, id string, data []byte, v listVisitor) error {
	in := &flReader{b: data[5:]}
	fl := &FileList{BackupID: in.string("backup id")}
	copy(fl.ContentKey[:], in.bytes("content key id", len(fl.ContentKey)))
	np := in.count("pack count", 2)
	fl.Packs = make([]string, 0, np)
	global := make(map[string]uint32, np)
	for range np {
		p := in.string("pack key")
		if in.err != nil {
			break
		}
		if _, _, err := ParsePackKey(p); err != nil {
			in.fail("%v", err)
			break
		}
		if _, dup := global[p]; dup {
			in.fail("pack %s listed twice", p)
			break
		}
		global[p] = uint32(len(fl.Packs))
		fl.Packs = append(fl.Packs, p)
	}
	if in.err != nil {
		return in.err
	}
	if fl.BackupID != id {
		return fmt.Errorf("%w: file list of backup %s names backup %q", ErrIntegrity, id, fl.BackupID)
	}
	hasher, err := r.runHasherFor(fl.ContentKey)
	if err != nil {
		if !r.Config.Encrypted() {
			return fmt.Errorf("%w: backup %s is in a repository without encryption, where only ids prove its file list's runs, and checking them needs the content key: %w", ErrNoIdentity, id, err)
		}
		hasher = nil // the pieces' frames authenticate under keys only writers wrapped
	}
	na := in.count("archive count", 2)
	if in.err != nil {
		return in.err
	}
	if err := v.head(fl, na); err != nil {
		return err
	}
	pr := &pieceReader{r: r, packs: fl.Packs, hasher: hasher, opened: map[string]*Pack{}}
	var list, pieces []BlockRef
	var run []byte
	for range na {
		name := in.string("archive name")
		ne := in.count("entry count", 8)
		if in.err != nil {
			break
		}
		if err := v.archive(name, ne); err != nil {
			return err
		}
		var ic continuation
		var e FileEntry
		for range ne {
			blocks := e.Blocks[:0]
			e = FileEntry{}
			parseEntryHead(in, &e)
			if in.err != nil {
				break
			}
			if e.IsRegular() {
				nb := (e.Size + BlockSize - 1) / BlockSize
				if !hasRuns(e.Size) {
					for range nb {
						var br BlockRef
						parseRef(in, &ic, &br, len(fl.Packs), e.Name)
						blocks = append(blocks, br)
					}
				} else {
					nruns := (nb + RunBlocks - 1) / RunBlocks
					if nruns > int64(len(in.b)/(1+17)) {
						in.fail("%s: %d runs cannot fit", e.Name, nruns)
						break
					}
					// Room for a relation segment at once.
					blocks = slices.Grow(blocks, int(min(nb, MaxRelationSegment/BlockSize)))
					for k := range nruns {
						rs := int(in.uvarint("run size", maxRunSize))
						if in.err == nil && rs < 6 {
							in.fail("%s: a run of %d bytes", e.Name, rs)
						}
						pieces = pieces[:0]
						for range (rs + BlockSize - 1) / BlockSize {
							var br BlockRef
							parseRef(in, &ic, &br, len(fl.Packs), e.Name)
							pieces = append(pieces, br)
						}
						if in.err != nil {
							break
						}
						list = append(list, pieces...)
						if run, err = pr.read(ctx, run[:0], pieces, rs); err != nil {
							return fmt.Errorf("file list: run of %s (pieces from the frame at %d of pack %s): %w", e.Name, pieces[0].Offset, fl.Packs[pieces[0].Pack], err)
						}
						want := int(min(RunBlocks, nb-k*RunBlocks))
						err = decodeRun(run, want, global, e.Name, func(br BlockRef) error {
							blocks = append(blocks, br)
							return nil
						})
						if err != nil {
							return fmt.Errorf("%w (the run stored from the frame at %d of pack %s)", err, pieces[0].Offset, fl.Packs[pieces[0].Pack])
						}
					}
				}
			}
			if in.err != nil {
				break
			}
			e.Blocks = blocks
			if err := v.entry(&e); err != nil {
				return err
			}
		}
	}
	if in.err == nil && len(in.b) != 0 {
		in.fail("%d bytes after its end", len(in.b))
	}
	if in.err != nil {
		return in.err
	}
	return v.pieces(list)
}

// expandFileList expands data, a stored version-2 list of backup id, into
// the expanded form (walkFileList). The caller unmaps the returned mapping
// and closes the file.
func (r *Repository) expandFileList(ctx context.Context, id string, data []byte) (*os.File, []byte, error) {
	f, err := tempFile("file-list-expanded")
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	var size int64
	write := func(b []byte) error {
		size += int64(len(b))
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("file list of backup %s: expand: %w", id, err)
		}
		return nil
	}
	var b []byte
	var c continuation
	err = r.walkFileList(ctx, id, data, listVisitor{
		head: func(fl *FileList, archives int) error {
			return write(appendListHead(b[:0], expandedVersion, fl.BackupID, fl.ContentKey, fl.Packs, archives))
		},
		archive: func(name string, entries int) error {
			c = continuation{}
			return write(binary.AppendUvarint(appendString(b[:0], name), uint64(entries)))
		},
		entry: func(e *FileEntry) error {
			b = appendFileEntry(b[:0], e, &c)
			return write(b)
		},
		pieces: func(list []BlockRef) error {
			b = binary.AppendUvarint(b[:0], uint64(len(list)))
			var lc continuation
			for _, br := range list {
				b = appendRef(b, br, &lc)
			}
			return write(b)
		},
	})
	if err != nil {
		return nil, nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, fmt.Errorf("file list of backup %s: expand: %w", id, err)
	}
	m, err := mapFile(f, size)
	if err != nil {
		return nil, nil, fmt.Errorf("file list of backup %s: map: %w", id, err)
	}
	ok = true
	return f, m, nil
}

// pieceReader reads the pieces of runs: each frame once in a row.
type pieceReader struct {
	r      *Repository
	packs  []string
	hasher *BlockHasher
	opened map[string]*Pack
	// The frame read last.
	pack   uint32
	off    int64
	length int32
	frame  [][]byte
	loaded bool
}

// read appends the run of size bytes stored as pieces to dst.
func (p *pieceReader) read(ctx context.Context, dst []byte, pieces []BlockRef, size int) ([]byte, error) {
	for i, br := range pieces {
		want := min(BlockSize, size-i*BlockSize)
		key := p.packs[br.Pack]
		if p.loaded && p.pack == br.Pack && p.off == br.Offset && p.length != br.Length {
			return nil, fmt.Errorf("%w: pack %s: the signed file list gives the frame at %d two lengths, %d and %d", ErrIntegrity, key, br.Offset, p.length, br.Length)
		}
		if !p.loaded || p.pack != br.Pack || p.off != br.Offset {
			pk := p.opened[key]
			if pk == nil {
				var err error
				if pk, err = p.r.OpenPack(ctx, key); err != nil {
					return nil, err
				}
				p.opened[key] = pk
			}
			sealed, err := pk.ReadRange(ctx, br.Offset, int64(br.Length))
			if err != nil {
				return nil, err
			}
			if p.frame, err = pk.OpenFrame(sealed, br.Offset); err != nil {
				return nil, err
			}
			p.pack, p.off, p.length, p.loaded = br.Pack, br.Offset, br.Length, true
		}
		if int(br.Index) >= len(p.frame) {
			return nil, fmt.Errorf("%w: pack %s: the frame at %d holds %d blocks, not block %d", ErrIntegrity, key, br.Offset, len(p.frame), br.Index)
		}
		blk := p.frame[br.Index]
		if len(blk) != want || (p.hasher != nil && p.hasher.ID(blk) != br.ID) {
			return nil, fmt.Errorf("%w: pack %s: block %d of the frame at %d is not the run piece the signed file list names: damaged or replaced", ErrIntegrity, key, br.Index, br.Offset)
		}
		dst = append(dst, blk...)
	}
	return dst, nil
}
