package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/walvault/walvault/repo"
)

// Block backups (repo/blocks.go): an archive stored as blocks is checked
// through its backup's file list, every block it references read back
// (ranged reads of neighbouring blocks), authenticated, decompressed and,
// when this host has the content key, checked against its id. A block
// shared by several backups is read once; a damaged one is reported for
// every backup whose file list needs it.

// blockState is what verify knows of the blocks of one backup set.
type blockState struct {
	mu     sync.Mutex
	lists  map[string]*fileListOnce
	checks map[blockKey]*blockCheck
}

type fileListOnce struct {
	once sync.Once
	fl   *repo.FileList
	err  error
}

type blockKey struct {
	pack  string
	off   int64
	index uint8
}

// blockCheck is the result of one block, set before done is closed.
type blockCheck struct {
	done chan struct{}
	err  error
}

func (v *verifier) fileList(ctx context.Context, id string) (*repo.FileList, error) {
	v.blocks.mu.Lock()
	if v.blocks.lists == nil {
		v.blocks.lists = map[string]*fileListOnce{}
		v.blocks.checks = map[blockKey]*blockCheck{}
	}
	o := v.blocks.lists[id]
	if o == nil {
		o = &fileListOnce{}
		v.blocks.lists[id] = o
	}
	v.blocks.mu.Unlock()
	o.once.Do(func() {
		o.fl, o.err = v.r.FileList(ctx, id)
		v.done(repo.FileListKey(id))
	})
	return o.fl, o.err
}

// maxSpan bounds one ranged read of neighbouring blocks.
const maxSpan = 8 << 20

// checkBlocks reads and checks blocks (in offset order) of one pack and
// records each one's result.
func (v *verifier) checkBlocks(ctx context.Context, key string, refs []repo.BlockRef, hasher *repo.BlockHasher) {
	finish := func(from int, err error) {
		v.blocks.mu.Lock()
		defer v.blocks.mu.Unlock()
		for _, r := range refs[from:] {
			c := v.blocks.checks[blockKey{key, r.Offset, r.Index}]
			if c.err == nil {
				c.err = err
			}
			close(c.done)
		}
	}
	p, err := v.r.OpenPack(ctx, key)
	v.done(key)
	if err != nil {
		finish(0, err)
		return
	}
	for i := 0; i < len(refs); {
		j := i + 1
		for j < len(refs) && refs[j].Offset+int64(refs[j].Length)-refs[i].Offset <= maxSpan {
			j++
		}
		if !v.acquire(ctx) {
			finish(i, ctx.Err())
			return
		}
		last := refs[j-1]
		data, err := p.ReadRange(ctx, refs[i].Offset, last.Offset+int64(last.Length)-refs[i].Offset)
		frames := map[int64][][]byte{}
		ferrs := map[int64]error{}
		v.blocks.mu.Lock()
		for _, r := range refs[i:j] {
			c := v.blocks.checks[blockKey{key, r.Offset, r.Index}]
			c.err = err
			if err == nil {
				at := r.Offset - refs[i].Offset
				frame, seen := frames[r.Offset]
				ferr := ferrs[r.Offset]
				if !seen && ferr == nil {
					if at < 0 || at+int64(r.Length) > int64(len(data)) {
						ferr = fmt.Errorf("%w: pack %s: frame at %d outside the range read", repo.ErrIntegrity, key, r.Offset)
					} else {
						frame, ferr = p.OpenFrame(data[at:at+int64(r.Length)], r.Offset)
					}
					frames[r.Offset], ferrs[r.Offset] = frame, ferr
				}
				switch {
				case ferr != nil:
					c.err = ferr
				case int(r.Index) >= len(frame):
					c.err = fmt.Errorf("%w: pack %s: the frame at %d holds %d blocks, not block %d", repo.ErrIntegrity, key, r.Offset, len(frame), r.Index)
				case hasher != nil && hasher.ID(frame[r.Index]) != r.ID:
					c.err = fmt.Errorf("%w: pack %s: block %d of the frame at %d is not block %s", repo.ErrIntegrity, key, r.Index, r.Offset, r.ID)
				}
			}
			close(c.done)
		}
		v.blocks.mu.Unlock()
		v.release()
		i = j
	}
}

// blockArchive verifies one archive stored as blocks.
func (v *verifier) blockArchive(ctx context.Context, j archiveJob) {
	fl, err := v.fileList(ctx, j.m.ID)
	if err != nil {
		v.objectError(ctx, repo.FileListKey(j.m.ID), err)
		return
	}
	var fa *repo.FileArchive
	for i := range fl.Archives {
		if fl.Archives[i].Name == j.a.Name {
			fa = &fl.Archives[i]
		}
	}
	if fa == nil {
		v.problem(repo.FileListKey(j.m.ID), KindMismatch, fmt.Errorf("%w: the file list of backup %s has no archive %s", repo.ErrIntegrity, j.m.ID, j.a.Name))
		return
	}
	if j.a.Name == "base.tar" && !hasLabel(fa) {
		v.problem(repo.FileListKey(j.m.ID), KindTar, fmt.Errorf("%w: base.tar of backup %s holds no backup_label", repo.ErrIntegrity, j.m.ID))
	}
	// nil without the content key the file list names: ids are not
	// checked then (frames still authenticate).
	hasher, _ := v.r.BlockHasherFor(fl.ContentKey)
	// Blocks by pack, in offset order, each with the first file needing it.
	type use struct {
		ref  repo.BlockRef
		file string
	}
	byPack := map[string][]use{}
	for _, e := range fa.Entries {
		for _, b := range e.Blocks {
			p := fl.Packs[b.Pack]
			byPack[p] = append(byPack[p], use{b, e.Name})
		}
	}
	packs := make([]string, 0, len(byPack))
	for p := range byPack {
		packs = append(packs, p)
	}
	sort.Strings(packs)
	damaged := map[string][]string{} // pack → "file: error" (first few)
	counts := map[string]int{}
	var firstErr = map[string]error{}
	for _, key := range packs {
		if ctx.Err() != nil {
			return
		}
		uses := byPack[key]
		sort.Slice(uses, func(a, b int) bool {
			if uses[a].ref.Offset != uses[b].ref.Offset {
				return uses[a].ref.Offset < uses[b].ref.Offset
			}
			return uses[a].ref.Index < uses[b].ref.Index
		})
		// Claim the blocks no other archive has checked, read them in
		// spans, then collect every block's result.
		var mine []repo.BlockRef
		checks := make([]*blockCheck, len(uses))
		v.blocks.mu.Lock()
		for i, u := range uses {
			k := blockKey{key, u.ref.Offset, u.ref.Index}
			c := v.blocks.checks[k]
			if c == nil {
				c = &blockCheck{done: make(chan struct{})}
				v.blocks.checks[k] = c
				mine = append(mine, u.ref)
			}
			checks[i] = c
		}
		v.blocks.mu.Unlock()
		if len(mine) > 0 {
			v.checkBlocks(ctx, key, mine, hasher)
		}
		for i, u := range uses {
			c := checks[i]
			select {
			case <-c.done:
			case <-ctx.Done():
				return
			}
			if c.err != nil {
				counts[key]++
				if firstErr[key] == nil {
					firstErr[key] = c.err
				}
				if len(damaged[key]) < 3 && !contains(damaged[key], u.file) {
					damaged[key] = append(damaged[key], u.file)
				}
			}
		}
	}
	for _, key := range packs {
		err := firstErr[key]
		if err == nil {
			continue
		}
		if errors.Is(err, repo.ErrNoIdentity) {
			v.objectError(ctx, key, err)
			return
		}
		v.problem(key, classify(err), fmt.Errorf("%w (%d damaged block(s) needed by backup %s, archive %s, files %s)", err, counts[key], j.m.ID, j.a.Name, strings.Join(damaged[key], ", ")))
	}
}

func hasLabel(fa *repo.FileArchive) bool {
	for _, e := range fa.Entries {
		if strings.TrimPrefix(e.Name, "./") == "backup_label" {
			return true
		}
	}
	return false
}
