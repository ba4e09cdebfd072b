package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
)

// BlockIndex maps block ids to where a backup stored them: what a new
// backup consults to store only blocks the repository does not have. It
// is compact: indexRecord bytes per block in one sorted array (10 million
// blocks, 80 GB of pages, take 260 MB), plus the pack keys once each.
type BlockIndex struct {
	recs  []byte
	packs []string
}

// indexRecord is one block: id (16), pack (3), frame offset (4), frame
// length (18 bits) and index in the frame (4 bits) in 3.
const indexRecord = 26

// BlockLoc is where a block is stored: block Index of the frame at
// Offset, Length bytes long, in Pack.
type BlockLoc struct {
	Pack   string
	Offset int64
	Length int32
	Index  uint8
}

// NewBlockIndex indexes the blocks of file lists (none: an empty index).
func NewBlockIndex(lists ...*FileList) (*BlockIndex, error) {
	x := &BlockIndex{}
	packIdx := map[string]uint32{}
	n := 0
	for _, fl := range lists {
		for _, a := range fl.Archives {
			for _, e := range a.Entries {
				n += len(e.Blocks)
			}
		}
	}
	x.recs = make([]byte, 0, n*indexRecord)
	for _, fl := range lists {
		remap := make([]uint32, len(fl.Packs))
		for i, p := range fl.Packs {
			j, ok := packIdx[p]
			if !ok {
				j = uint32(len(x.packs))
				packIdx[p] = j
				x.packs = append(x.packs, p)
			}
			remap[i] = j
		}
		for _, a := range fl.Archives {
			for _, e := range a.Entries {
				for _, b := range e.Blocks {
					if int(b.Pack) >= len(remap) || b.Offset > MaxPackSize || b.Offset < 0 || b.Length > maxSealedFrame || b.Length < 0 || b.Index >= FrameBlocks {
						return nil, fmt.Errorf("%w: file list of backup %s: bad block reference", ErrIntegrity, fl.BackupID)
					}
					if remap[b.Pack] >= 1<<24 {
						return nil, fmt.Errorf("file list of backup %s: more than %d packs", fl.BackupID, 1<<24)
					}
					x.recs = append(x.recs, b.ID[:]...)
					x.recs = appendUint24(x.recs, remap[b.Pack])
					x.recs = binary.BigEndian.AppendUint32(x.recs, uint32(b.Offset))
					x.recs = appendUint24(x.recs, uint32(b.Length)<<4|uint32(b.Index))
				}
			}
		}
	}
	sort.Sort(recSorter{x.recs, make([]byte, indexRecord)})
	// Drop repeated ids (the first location of each is kept).
	out := x.recs[:0]
	for i := 0; i < len(x.recs); i += indexRecord {
		r := x.recs[i : i+indexRecord]
		if len(out) > 0 && bytes.Equal(out[len(out)-indexRecord:len(out)-indexRecord+16], r[:16]) {
			continue
		}
		out = append(out, r...)
	}
	x.recs = out
	return x, nil
}

// Len is the number of distinct blocks indexed.
func (x *BlockIndex) Len() int { return len(x.recs) / indexRecord }

// Lookup returns where the block id is stored.
func (x *BlockIndex) Lookup(id BlockID) (BlockLoc, bool) {
	n := x.Len()
	i := sort.Search(n, func(i int) bool { return bytes.Compare(x.recs[i*indexRecord:i*indexRecord+16], id[:]) >= 0 })
	if i == n {
		return BlockLoc{}, false
	}
	r := x.recs[i*indexRecord : (i+1)*indexRecord]
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
