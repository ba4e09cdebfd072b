package repo

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
)

// MaxRelationSegment is the largest relation segment file PostgreSQL
// writes with its default build (RELSEG_SIZE 131072 blocks of 8 KiB).
const MaxRelationSegment = 1 << 30

// PriorFiles says where the blocks of each regular file of an older
// backup are, for an incremental backup that takes a file's unchanged
// blocks from it (PostgreSQL 17's INCREMENTAL files). Only files of whole
// blocks, at most a relation segment, are kept: the others are never sent
// incrementally. The blocks themselves stay in a temporary file (26 bytes
// each, as in a BlockIndex); memory holds a name and a span per file.
//
// It is not safe for concurrent use, and must be closed.
type PriorFiles struct {
	f     *os.File
	files map[string]priorSpan
	packs []string
	buf   []byte
}

type priorSpan struct {
	first int64 // record number of the file's first block
	n     int32
}

// PriorBlock is one block of a prior file: its id and where it is.
type PriorBlock struct {
	ID BlockID
	BlockLoc
}

func priorKey(archive, name string) string { return archive + "\x00" + name }

// Len returns the number of files held.
func (p *PriorFiles) Len() int {
	if p == nil {
		return 0
	}
	return len(p.files)
}

// Blocks returns the blocks of file name of archive, in order, reusing
// dst; ok is false when the prior backup has no such file.
func (p *PriorFiles) Blocks(archive, name string, dst []PriorBlock) (blocks []PriorBlock, ok bool, err error) {
	if p == nil {
		return dst[:0], false, nil
	}
	sp, ok := p.files[priorKey(archive, name)]
	if !ok {
		return dst[:0], false, nil
	}
	n := int(sp.n) * indexRecord
	if cap(p.buf) < n {
		p.buf = make([]byte, n)
	}
	buf := p.buf[:n]
	if _, err := p.f.ReadAt(buf, sp.first*indexRecord); err != nil {
		return dst[:0], false, fmt.Errorf("prior file list: read: %w", err)
	}
	dst = slices.Grow(dst[:0], int(sp.n))
	for r := buf; len(r) >= indexRecord; r = r[indexRecord:] {
		var b PriorBlock
		copy(b.ID[:], r[:16])
		pi := uint24(r[16:])
		if int(pi) >= len(p.packs) {
			return dst[:0], false, fmt.Errorf("%w: prior file list: bad pack index", ErrIntegrity)
		}
		li := uint24(r[23:])
		b.BlockLoc = BlockLoc{Pack: p.packs[pi], Offset: int64(binary.BigEndian.Uint32(r[19:])), Length: int32(li >> 4), Index: uint8(li & 15)}
		dst = append(dst, b)
	}
	return dst, true, nil
}

// Close removes the temporary file.
func (p *PriorFiles) Close() error {
	if p == nil || p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// WriterReadable returns another handle on r whose objects are also
// encrypted to, and readable with, the content key, as file lists are: a
// block backup stores the server's backup_manifest through it, so that
// the next backup, on a writer, can hand it to PostgreSQL 17 for an
// incremental backup. It must be closed.
func (r *Repository) WriterReadable() (*Repository, error) { return r.withContentKey() }

// maxServerManifest bounds a server manifest read back (about 150 bytes a
// file: a million files take 150 MB).
const maxServerManifest = 512 << 20

// ServerManifest reads the server's backup_manifest stored with backup m,
// with an identity or, when it was stored WriterReadable, with the content
// key. Every chunk must be the one m names, of the size and checksum m
// says.
func (r *Repository) ServerManifest(ctx context.Context, m *BackupManifest) ([]byte, error) {
	var a *Archive
	for i := range m.Archives {
		if m.Archives[i].Name == ServerManifestArchive {
			a = &m.Archives[i]
		}
	}
	if a == nil {
		return nil, fmt.Errorf("backup %s holds no %s", m.ID, ServerManifestArchive)
	}
	if a.Bytes < 0 || a.Bytes > maxServerManifest {
		return nil, fmt.Errorf("%w: backup %s: %s of %d bytes", ErrIntegrity, m.ID, ServerManifestArchive, a.Bytes)
	}
	cr, err := r.withContentKey()
	if err != nil {
		return nil, err
	}
	defer cr.Close()
	out := make([]byte, 0, a.Bytes)
	for seq, c := range a.Chunks {
		if c.Key != BackupChunkKey(m.ID, a.Name, seq) {
			return nil, fmt.Errorf("%w: backup %s: chunk %d of %s is named %q", ErrIntegrity, m.ID, seq, a.Name, c.Key)
		}
		data, h, err := cr.Get(ctx, c.Key)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != c.Size || hex.EncodeToString(h.SHA256[:]) != c.SHA256 || int64(len(out)+len(data)) > a.Bytes {
			return nil, fmt.Errorf("%w: backup %s: %s is not the chunk its manifest names", ErrIntegrity, m.ID, c.Key)
		}
		out = append(out, data...)
	}
	if int64(len(out)) != a.Bytes {
		return nil, fmt.Errorf("%w: backup %s: %s holds %d bytes, its manifest says %d", ErrIntegrity, m.ID, a.Name, len(out), a.Bytes)
	}
	return out, nil
}
