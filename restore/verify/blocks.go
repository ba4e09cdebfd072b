package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/walvault/walvault/repo"
)

// Block backups (repo/blocks.go): an archive stored as blocks is checked
// through its backup's file list, every block it references read back
// (ranged reads of neighbouring frames), authenticated, decompressed and,
// when this host has the content key, checked against its id. A frame
// shared by several backups is read once; a damaged one is reported for
// every backup whose file list needs it.
//
// Memory. The file list is read entry by entry (repo.OpenFileList), and
// its block references are settled in batches of verifyBatch. What stays
// is one record per frame read (frameCheck): whether it opened, how many
// blocks it holds, and the first 8 bytes of each block's id, so that a
// later backup naming the same frame is checked without reading it again.
// That is about 20 bytes per stored block, however many backups share it
// (TestFrameMemory measures it), and nothing per block per backup.

// blockState is what verify knows of the frames it has read.
type blockState struct {
	mu     sync.Mutex
	cond   *sync.Cond // broadcast when a frame is settled
	packNo map[string]uint32
	frames map[frameKey]*frameCheck
	packs  map[string]*packOnce
	lists  map[string]bool // backups whose file list was counted
}

type frameKey struct {
	pack uint32 // blockState.packNo
	off  int64
}

// frameCheck is the result of reading one frame; the other fields are
// set before done, under blockState.mu.
type frameCheck struct {
	done bool
	err  error
	n    int
	ids  []uint64 // each block's id, first 8 bytes; nil without the content key
}

type packOnce struct {
	once sync.Once
	p    *repo.Pack
	err  error
}

// verifyBatch is the most block references gathered before they are
// settled (read what is new, then judge each).
const verifyBatch = 1 << 15

// maxSpan bounds one ranged read of neighbouring frames.
const maxSpan = 8 << 20

// blockUse is one block reference of the archive being checked.
type blockUse struct {
	fc    *frameCheck
	pack  string
	file  string
	index uint8
	id    uint64
	ref   repo.BlockRef
}

// frameClaim is a frame this archive reads for everyone.
type frameClaim struct {
	pack string
	ref  repo.BlockRef
	fc   *frameCheck
	key  repo.ContentKeyID
}

func idPrefix(id repo.BlockID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

func (s *blockState) init() {
	if s.frames == nil {
		s.cond = sync.NewCond(&s.mu)
		s.packNo = map[string]uint32{}
		s.frames = map[frameKey]*frameCheck{}
		s.packs = map[string]*packOnce{}
		s.lists = map[string]bool{}
	}
}

// openPack opens each pack once, counting it as one object read.
func (v *verifier) openPack(ctx context.Context, key string) (*repo.Pack, error) {
	v.blocks.mu.Lock()
	v.blocks.init()
	po := v.blocks.packs[key]
	if po == nil {
		po = &packOnce{}
		v.blocks.packs[key] = po
	}
	v.blocks.mu.Unlock()
	po.once.Do(func() {
		po.p, po.err = v.r.OpenPack(ctx, key)
		v.done(key)
	})
	return po.p, po.err
}

// settle marks fc read with the frame (or err) and wakes the waiters.
func (v *verifier) settle(fc *frameCheck, frame [][]byte, err error, h *repo.BlockHasher) {
	var ids []uint64
	if err == nil && h != nil {
		ids = make([]uint64, len(frame))
		for i, b := range frame {
			ids[i] = idPrefix(h.ID(b))
		}
	}
	v.blocks.mu.Lock()
	if !fc.done {
		fc.done, fc.err, fc.n, fc.ids = true, err, len(frame), ids
	}
	v.blocks.cond.Broadcast()
	v.blocks.mu.Unlock()
}

// readClaims reads the frames claims names, neighbours of one pack in one
// ranged read, on the verifier's tokens, and settles every one of them
// (with an error when it cannot be read, or when ctx ends).
func (v *verifier) readClaims(ctx context.Context, claims []frameClaim) {
	sort.Slice(claims, func(a, b int) bool {
		if claims[a].pack != claims[b].pack {
			return claims[a].pack < claims[b].pack
		}
		return claims[a].ref.Offset < claims[b].ref.Offset
	})
	var wg sync.WaitGroup
	for i := 0; i < len(claims); {
		j := i + 1
		for j < len(claims) && claims[j].pack == claims[i].pack &&
			claims[j].ref.Offset+int64(claims[j].ref.Length)-claims[i].ref.Offset <= maxSpan {
			j++
		}
		span := claims[i:j]
		i = j
		if !v.acquire(ctx) {
			for _, c := range span {
				v.settle(c.fc, nil, ctx.Err(), nil)
			}
			continue
		}
		wg.Go(func() {
			defer v.release()
			v.readSpan(ctx, span)
		})
	}
	wg.Wait()
}

// readSpan reads the frames of span (one pack, offset order) in one request.
func (v *verifier) readSpan(ctx context.Context, span []frameClaim) {
	key := span[0].pack
	p, err := v.openPack(ctx, key)
	var data []byte
	lo := span[0].ref.Offset
	if err == nil {
		last := span[len(span)-1].ref
		data, err = p.ReadRange(ctx, lo, last.Offset+int64(last.Length)-lo)
	}
	if err != nil {
		for _, c := range span {
			v.settle(c.fc, nil, err, nil)
		}
		return
	}
	hashers := map[repo.ContentKeyID]*repo.BlockHasher{}
	for _, c := range span {
		h, ok := hashers[c.key]
		if !ok {
			h, _ = v.r.BlockHasherFor(c.key) // nil: ids are not checked (frames still authenticate)
			hashers[c.key] = h
		}
		at := c.ref.Offset - lo
		if at < 0 || at+int64(c.ref.Length) > int64(len(data)) || c.ref.Length <= 0 {
			v.settle(c.fc, nil, fmt.Errorf("%w: pack %s: frame at %d outside the range read", repo.ErrIntegrity, key, c.ref.Offset), nil)
			continue
		}
		frame, err := p.OpenFrame(data[at:at+int64(c.ref.Length)], c.ref.Offset)
		v.settle(c.fc, frame, err, h)
	}
}

// blockArchive verifies one archive stored as blocks, reading its file
// list entry by entry.
func (v *verifier) blockArchive(ctx context.Context, j archiveJob) {
	listKey := repo.FileListKey(j.m.ID)
	fl, err := v.r.OpenFileList(ctx, j.m.ID)
	v.blocks.mu.Lock()
	v.blocks.init()
	first := !v.blocks.lists[j.m.ID]
	v.blocks.lists[j.m.ID] = true
	v.blocks.mu.Unlock()
	if first {
		v.done(listKey)
	}
	if err != nil {
		if first {
			v.objectError(ctx, listKey, err)
		}
		return
	}
	defer fl.Close()
	if !fl.HasArchive(j.a.Name) {
		v.problem(listKey, KindMismatch, fmt.Errorf("%w: the file list of backup %s has no archive %s", repo.ErrIntegrity, j.m.ID, j.a.Name))
		return
	}
	// The list's packs by their verifier-wide numbers.
	packNos := make([]uint32, len(fl.Packs))
	v.blocks.mu.Lock()
	for i, p := range fl.Packs {
		n, ok := v.blocks.packNo[p]
		if !ok {
			n = uint32(len(v.blocks.packNo))
			v.blocks.packNo[p] = n
		}
		packNos[i] = n
	}
	v.blocks.mu.Unlock()
	hasher, _ := v.r.BlockHasherFor(fl.ContentKey)
	checkIDs := hasher != nil

	damaged := map[string][]string{} // pack → first few files
	counts := map[string]int{}
	firstErr := map[string]error{}
	var packs []string // in the order damage was found
	var uses []blockUse
	var claims []frameClaim
	// Whatever happens, every frame claimed is settled: other archives
	// may wait for it.
	defer func() {
		for _, c := range claims {
			v.settle(c.fc, nil, context.Canceled, nil)
		}
	}()
	flush := func() {
		v.readClaims(ctx, claims)
		claims = claims[:0]
		v.blocks.mu.Lock()
		for _, u := range uses {
			for !u.fc.done {
				v.blocks.cond.Wait()
			}
			err := u.fc.err
			switch {
			case err != nil:
			case int(u.index) >= u.fc.n:
				err = fmt.Errorf("%w: pack %s: the frame at %d holds %d blocks, not block %d", repo.ErrIntegrity, u.pack, u.ref.Offset, u.fc.n, u.index)
			case checkIDs && u.fc.ids != nil && u.fc.ids[u.index] != u.id:
				err = fmt.Errorf("%w: pack %s: block %d of the frame at %d is not block %s", repo.ErrIntegrity, u.pack, u.index, u.ref.Offset, u.ref.ID)
			}
			if err == nil {
				continue
			}
			if counts[u.pack] == 0 {
				packs = append(packs, u.pack)
				firstErr[u.pack] = err
			}
			counts[u.pack]++
			if len(damaged[u.pack]) < 3 && !contains(damaged[u.pack], u.file) {
				damaged[u.pack] = append(damaged[u.pack], u.file)
			}
		}
		v.blocks.mu.Unlock()
		uses = uses[:0]
	}

	label := j.a.Name != "base.tar"
	it := fl.Entries(j.a.Name, true)
	for ctx.Err() == nil {
		e, err := it.Next()
		if err != nil {
			v.objectError(ctx, listKey, fmt.Errorf("backup %s: %w", j.m.ID, err))
			label = true // not known: the list is the problem
			break
		}
		if e == nil {
			break
		}
		if !label && strings.TrimPrefix(e.Name, "./") == "backup_label" {
			label = true
		}
		for _, b := range e.Blocks {
			if int(b.Pack) >= len(packNos) {
				continue // the list's parser refuses this
			}
			pack := fl.Packs[b.Pack]
			k := frameKey{packNos[b.Pack], b.Offset}
			v.blocks.mu.Lock()
			fc := v.blocks.frames[k]
			if fc == nil {
				fc = &frameCheck{}
				v.blocks.frames[k] = fc
				claims = append(claims, frameClaim{pack: pack, ref: b, fc: fc, key: fl.ContentKey})
			}
			v.blocks.mu.Unlock()
			uses = append(uses, blockUse{fc: fc, pack: pack, file: e.Name, index: b.Index, id: idPrefix(b.ID), ref: b})
			if len(uses) >= verifyBatch {
				flush()
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	flush()
	if !label {
		v.problem(listKey, KindTar, fmt.Errorf("%w: base.tar of backup %s holds no backup_label", repo.ErrIntegrity, j.m.ID))
	}
	sort.Strings(packs)
	for _, key := range packs {
		err := firstErr[key]
		if errors.Is(err, repo.ErrNoIdentity) {
			v.objectError(ctx, key, err)
			return
		}
		v.problem(key, classify(err), fmt.Errorf("%w (%d damaged block(s) needed by backup %s, archive %s, files %s)", err, counts[key], j.m.ID, j.a.Name, strings.Join(damaged[key], ", ")))
	}
}
