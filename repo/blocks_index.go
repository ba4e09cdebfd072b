package repo

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// BlockIndex maps block ids to where a backup stored them: what a new
// backup consults to store only blocks the repository does not have.
//
// Its records, indexRecord bytes per block sorted by id, are in a
// temporary file, not in memory: a backup's memory does not grow with the
// size of the database. Memory holds the first id of every group of
// groupRecords records (about 0.5 bytes a block) and the pack keys, once
// each; a lookup reads one group (1.6 KiB) with one pread. The file is
// unlinked as soon as it is created, so a crash leaves nothing behind.
//
// Measured with BenchmarkBlockBackupMemory (10 million blocks, a new file
// list written and stored, the index built from it and every block looked
// up): peak heap 16.8 MiB, 1.7 bytes a block.
//
// A BlockIndex is not safe for concurrent use, and must be closed.
type BlockIndex struct {
	f      *os.File
	n      int
	groups []indexGroup
	packs  []string
	buf    []byte
	cached int // the group in buf, or -1
	err    error
}

// indexGroup is up to groupRecords consecutive records of the file, the
// first of them with id first.
type indexGroup struct {
	first BlockID
	off   int64
	n     int32
}

// indexRecord is one block: id (16), pack (3), frame offset (4), frame
// length (18 bits) and index in the frame (4 bits) in 3.
const indexRecord = 26

// groupRecords is the number of records read by one lookup.
const groupRecords = 64

// BlockLoc is where a block is stored: block Index of the frame at
// Offset, Length bytes long, in Pack.
type BlockLoc struct {
	Pack   string
	Offset int64
	Length int32
	Index  uint8
}

// BlockIndexBuilder gathers block locations into a BlockIndex. It is not
// safe for concurrent use.
type BlockIndexBuilder struct {
	f       *os.File
	w       *bufio.Writer
	n       int
	count   [256]int // records by the first byte of their id
	packs   []string
	packIdx map[string]uint32
	rec     [indexRecord]byte
	err     error
	// keep: Close leaves f open, for FileListIndexPrior.
	keep bool
}

// NewBlockIndexBuilder starts an index in a new temporary file under the
// system's temporary directory ($TMPDIR).
func NewBlockIndexBuilder() (*BlockIndexBuilder, error) {
	f, err := tempFile("block-records")
	if err != nil {
		return nil, err
	}
	return &BlockIndexBuilder{f: f, w: bufio.NewWriterSize(f, 1<<20), packIdx: map[string]uint32{}}, nil
}

// AddFileList adds every block of fl.
func (b *BlockIndexBuilder) AddFileList(fl *FileList) error {
	remap := make([]uint32, len(fl.Packs))
	for i, p := range fl.Packs {
		remap[i] = b.pack(p)
	}
	for _, a := range fl.Archives {
		for _, e := range a.Entries {
			for _, br := range e.Blocks {
				if int(br.Pack) >= len(remap) {
					return fmt.Errorf("%w: file list of backup %s: bad block reference", ErrIntegrity, fl.BackupID)
				}
				if err := b.add(br, remap[br.Pack], fl.BackupID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *BlockIndexBuilder) pack(p string) uint32 {
	j, ok := b.packIdx[p]
	if !ok {
		j = uint32(len(b.packs))
		b.packIdx[p] = j
		b.packs = append(b.packs, p)
	}
	return j
}

// add adds one block stored in the pack numbered pack (of b.packs).
func (b *BlockIndexBuilder) add(br BlockRef, pack uint32, backup string) error {
	if b.err != nil {
		return b.err
	}
	if br.Offset > MaxPackSize || br.Offset < 0 || br.Length > maxSealedFrame || br.Length < 0 || br.Index >= FrameBlocks {
		return fmt.Errorf("%w: file list of backup %s: bad block reference", ErrIntegrity, backup)
	}
	if pack >= 1<<24 {
		return fmt.Errorf("file list of backup %s: more than %d packs", backup, 1<<24)
	}
	r := b.rec[:0]
	r = append(r, br.ID[:]...)
	r = appendUint24(r, pack)
	r = binary.BigEndian.AppendUint32(r, uint32(br.Offset))
	r = appendUint24(r, uint32(br.Length)<<4|uint32(br.Index))
	if _, err := b.w.Write(r); err != nil {
		b.err = fmt.Errorf("block index: write: %w", err)
		return b.err
	}
	b.count[br.ID[0]]++
	b.n++
	return nil
}

// Close drops what the builder gathered (after Finish: nothing).
func (b *BlockIndexBuilder) Close() error {
	if b.f == nil || b.keep {
		return nil
	}
	err := b.f.Close()
	b.f = nil
	return err
}

// bucketBuf is the buffer of each of the 256 buckets records are
// distributed to: 256 of them take 4 MiB.
const bucketBuf = 630 * indexRecord

// maxSortInMemory is the most records of one bucket sorted in memory
// (26 MiB); a larger bucket (ids are keyed hashes, so only a hostile file
// list makes one) is sorted in a mapping of the file.
const maxSortInMemory = 1 << 20

// Finish sorts the records and returns the index; the builder must not
// be used afterwards, and is closed on an error.
//
// The records are distributed by the first byte of their id into 256
// buckets of a second file, and each bucket (1/256 of the records) is
// sorted on its own.
func (b *BlockIndexBuilder) Finish() (*BlockIndex, error) {
	defer b.Close()
	err := b.err
	if err == nil {
		if err = b.w.Flush(); err != nil {
			err = fmt.Errorf("block index: write: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	x := &BlockIndex{packs: b.packs, cached: -1}
	if b.n == 0 {
		return x, nil
	}
	if x.f, err = tempFile("block-index"); err != nil {
		return nil, err
	}
	if err := b.distribute(x.f); err != nil {
		x.Close()
		return nil, err
	}
	b.Close()
	if err := x.sortBuckets(&b.count); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// distribute writes b's records to out, bucket after bucket.
func (b *BlockIndexBuilder) distribute(out *os.File) error {
	var pos [256]int64
	var at int64
	for k, c := range b.count {
		pos[k] = at
		at += int64(c) * indexRecord
	}
	bufs := make([][]byte, 256)
	flush := func(k int) error {
		if _, err := out.WriteAt(bufs[k], pos[k]); err != nil {
			return fmt.Errorf("block index: write: %w", err)
		}
		pos[k] += int64(len(bufs[k]))
		bufs[k] = bufs[k][:0]
		return nil
	}
	in := bufio.NewReaderSize(io.NewSectionReader(b.f, 0, int64(b.n)*indexRecord), 1<<20)
	var rec [indexRecord]byte
	for range b.n {
		if _, err := io.ReadFull(in, rec[:]); err != nil {
			return fmt.Errorf("block index: read back: %w", err)
		}
		k := int(rec[0])
		if bufs[k] == nil {
			bufs[k] = make([]byte, 0, bucketBuf)
		}
		bufs[k] = append(bufs[k], rec[:]...)
		if len(bufs[k]) == bucketBuf {
			if err := flush(k); err != nil {
				return err
			}
		}
	}
	for k := range bufs {
		if len(bufs[k]) > 0 {
			if err := flush(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// sortBuckets sorts each bucket of x's file, drops repeated ids (the first
// location of each is kept), and makes the groups.
func (x *BlockIndex) sortBuckets(count *[256]int) error {
	// Buckets are independent: they are sorted on all cores, each
	// worker with its own memory, and their groups put in order after.
	var offs [256]int64
	var at int64
	for k, c := range count {
		offs[k] = at
		at += int64(c) * indexRecord
	}
	var (
		groups [256][]indexGroup
		kept   [256]int
		errs   [256]error
		next   atomic.Int32
		wg     sync.WaitGroup
	)
	workers := min(runtime.GOMAXPROCS(0), 4)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mem []byte
			var scratch sortScratch
			for {
				k := int(next.Add(1) - 1)
				if k >= len(count) {
					return
				}
				if count[k] > 0 {
					groups[k], kept[k], errs[k] = x.sortBucket(offs[k], count[k], &mem, &scratch)
				}
			}
		}()
	}
	wg.Wait()
	for k := range count {
		if errs[k] != nil {
			return errs[k]
		}
		x.groups = append(x.groups, groups[k]...)
		x.n += kept[k]
	}
	return nil
}

// sortBucket sorts the c records at offset at, drops repeated ids, and
// returns the bucket's groups and the records kept.
func (x *BlockIndex) sortBucket(at int64, c int, mem *[]byte, scratch *sortScratch) ([]indexGroup, int, error) {
	size := int64(c) * indexRecord
	var recs []byte
	var mapped []byte
	if c <= maxSortInMemory {
		if int64(cap(*mem)) < size {
			*mem = make([]byte, size)
		}
		recs = (*mem)[:size]
		if _, err := x.f.ReadAt(recs, at); err != nil {
			return nil, 0, fmt.Errorf("block index: read back: %w", err)
		}
		sortRecords(recs, scratch)
	} else {
		page := int64(os.Getpagesize())
		start := at / page * page
		var err error
		mapped, err = unix.Mmap(int(x.f.Fd()), start, int(at+size-start), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, 0, fmt.Errorf("block index: map %d bytes: %w", at+size-start, err)
		}
		recs = mapped[at-start:]
		sort.Sort(recSorter{recs, make([]byte, indexRecord)})
	}
	out := 0
	for i := 0; i < len(recs); i += indexRecord {
		r := recs[i : i+indexRecord]
		if out > 0 && bytes.Equal(recs[out-indexRecord:out-indexRecord+16], r[:16]) {
			continue
		}
		if out != i {
			copy(recs[out:], r)
		}
		out += indexRecord
	}
	var groups []indexGroup
	for i := 0; i < out; i += groupRecords * indexRecord {
		g := indexGroup{off: at + int64(i), n: int32(min(groupRecords, (out-i)/indexRecord))}
		copy(g.first[:], recs[i:])
		groups = append(groups, g)
	}
	var err error
	if mapped != nil {
		err = unix.Munmap(mapped)
	} else {
		_, err = x.f.WriteAt(recs[:out], at)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("block index: write: %w", err)
	}
	return groups, out / indexRecord, nil
}

// NewBlockIndex indexes the blocks of file lists (none: an empty index).
func NewBlockIndex(lists ...*FileList) (*BlockIndex, error) {
	b, err := NewBlockIndexBuilder()
	if err != nil {
		return nil, err
	}
	for _, fl := range lists {
		if err := b.AddFileList(fl); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b.Finish()
}

// Close releases the index and its file.
func (x *BlockIndex) Close() error {
	if x == nil || x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f, x.n, x.groups, x.cached = nil, 0, nil, -1
	return err
}

// Len is the number of distinct blocks indexed.
func (x *BlockIndex) Len() int { return x.n }

// Packs are the packs the indexed blocks are in (those of the file list's
// runs too).
func (x *BlockIndex) Packs() []string {
	if x == nil {
		return nil
	}
	return x.packs
}

// Err is the first error reading the index's file: a block Lookup could
// not read was reported missing (and is stored again, which costs space,
// never correctness).
func (x *BlockIndex) Err() error { return x.err }

// Lookup returns where the block id is stored.
func (x *BlockIndex) Lookup(id BlockID) (BlockLoc, bool) {
	if x == nil || x.f == nil {
		return BlockLoc{}, false
	}
	// The last group whose first id is at most id.
	g := sort.Search(len(x.groups), func(i int) bool { return bytes.Compare(x.groups[i].first[:], id[:]) > 0 }) - 1
	if g < 0 {
		return BlockLoc{}, false
	}
	if g != x.cached {
		grp := x.groups[g]
		if x.buf == nil {
			x.buf = make([]byte, groupRecords*indexRecord)
		}
		if _, err := x.f.ReadAt(x.buf[:grp.n*indexRecord], grp.off); err != nil {
			if x.err == nil {
				x.err = fmt.Errorf("block index: read: %w", err)
			}
			x.cached = -1
			return BlockLoc{}, false
		}
		x.cached = g
	}
	recs := x.buf[:x.groups[g].n*indexRecord]
	n := len(recs) / indexRecord
	i := sort.Search(n, func(i int) bool { return bytes.Compare(recs[i*indexRecord:i*indexRecord+16], id[:]) >= 0 })
	if i == n {
		return BlockLoc{}, false
	}
	r := recs[i*indexRecord : (i+1)*indexRecord]
	if !bytes.Equal(r[:16], id[:]) {
		return BlockLoc{}, false
	}
	li := uint24(r[23:])
	return BlockLoc{
		Pack:   x.packs[uint24(r[16:])],
		Offset: int64(binary.BigEndian.Uint32(r[19:])),
		Length: int32(li >> 4),
		Index:  uint8(li & 15),
	}, true
}

func appendUint24(b []byte, v uint32) []byte { return append(b, byte(v>>16), byte(v>>8), byte(v)) }

func uint24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// sortScratch is sortRecords' memory, kept from one bucket to the next.
type sortScratch struct {
	keys []recKey
	out  []byte
}

type recKey struct {
	hi, lo uint64
	at     int32
}

// sortRecords sorts records by id: their ids' two halves and positions
// are sorted (an interface sort of 26-byte records spends its time in
// bytes.Compare and copies), then the records are placed in that order.
func sortRecords(recs []byte, s *sortScratch) {
	n := len(recs) / indexRecord
	s.keys = slices.Grow(s.keys[:0], n)
	for i := range n {
		r := recs[i*indexRecord:]
		s.keys = append(s.keys, recKey{binary.BigEndian.Uint64(r), binary.BigEndian.Uint64(r[8:]), int32(i)})
	}
	slices.SortFunc(s.keys, func(a, b recKey) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		return cmp.Compare(a.lo, b.lo)
	})
	s.out = slices.Grow(s.out[:0], len(recs))[:len(recs)]
	for i, k := range s.keys {
		copy(s.out[i*indexRecord:(i+1)*indexRecord], recs[int(k.at)*indexRecord:])
	}
	copy(recs, s.out)
}

type recSorter struct{ b, tmp []byte }

func (s recSorter) Len() int { return len(s.b) / indexRecord }
func (s recSorter) Less(i, j int) bool {
	return bytes.Compare(s.b[i*indexRecord:i*indexRecord+16], s.b[j*indexRecord:j*indexRecord+16]) < 0
}
func (s recSorter) Swap(i, j int) {
	a, b := s.b[i*indexRecord:(i+1)*indexRecord], s.b[j*indexRecord:(j+1)*indexRecord]
	copy(s.tmp, a)
	copy(a, b)
	copy(b, s.tmp)
}
