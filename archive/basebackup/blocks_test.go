package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// TestBlockWriterFileList: the file list a block backup writes entry by
// entry says, for every block of every file, where content equal to it
// is: new blocks, blocks repeated within a file and across files (zeroed
// pages), blocks of the previous backup, short last blocks, empty files.
func TestBlockWriterFileList(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	r := tr.Repository
	rng := rand.New(rand.NewPCG(7, 7))
	zero := make([]byte, repo.BlockSize)
	files := map[string][]byte{}
	var names []string
	for f := range 400 {
		name := fmt.Sprintf("base/5/%d", 16384+f)
		var data []byte
		for i := range f % 7 {
			b := make([]byte, repo.BlockSize)
			if (f+i)%3 != 0 {
				for j := 0; j < len(b); j += 97 {
					b[j] = byte(rng.IntN(256))
				}
			} else {
				b = zero
			}
			data = append(data, b...)
		}
		if f%5 == 0 {
			data = append(data, []byte("a short last block")...)
		}
		files[name] = data
		names = append(names, name)
	}
	makeTar := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "base/5", Typeflag: tar.TypeDir, Mode: 0o700})
		for _, n := range names {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(files[n]))})
			tw.Write(files[n])
		}
		tw.Close()
		return buf.Bytes()
	}
	run := func(id string, prev *repo.BlockIndex) repo.BlockStats {
		cctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		w, err := newBlockWriter(cctx, cancel, r, id, prev, 2, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		w.begin("base.tar")
		for p := makeTar(); len(p) > 0; {
			n := min(len(p), 10000)
			if err := w.write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.end(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.finish(true); err != nil {
			t.Fatal(err)
		}
		return w.stats
	}
	check := func(id string) {
		t.Helper()
		fl, err := r.FileList(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		packs := map[uint32]*repo.Pack{}
		seen := 0
		for _, e := range fl.Archives[0].Entries {
			if !e.IsRegular() {
				continue
			}
			seen++
			var got []byte
			for _, b := range e.Blocks {
				p := packs[b.Pack]
				if p == nil {
					if p, err = r.OpenPack(ctx, fl.Packs[b.Pack]); err != nil {
						t.Fatal(err)
					}
					packs[b.Pack] = p
				}
				sealed, err := p.ReadRange(ctx, b.Offset, int64(b.Length))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := p.OpenBlock(sealed, b.Offset, b.Index)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, plain...)
			}
			if !bytes.Equal(got, files[e.Name]) {
				t.Fatalf("backup %s: %s reads back %d bytes unlike the %d stored", id, e.Name, len(got), len(files[e.Name]))
			}
		}
		if seen != len(names) {
			t.Fatalf("backup %s lists %d files, want %d", id, seen, len(names))
		}
	}
	const first, second = "20261207T060000Z", "20261207T070000Z"
	st := run(first, nil)
	if st.RepeatedBlocks == 0 || st.NewBlocks == 0 {
		t.Errorf("first backup: %+v", st)
	}
	check(first)
	// Change a few blocks; the rest come from the first backup.
	for _, n := range names[10:20] {
		if len(files[n]) > 0 {
			files[n] = append([]byte("changed"), files[n][7:]...)
		}
	}
	prev, _, err := r.FileListIndex(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	st = run(second, prev)
	if st.SharedBlocks == 0 || st.NewBlocks == 0 || st.NewBlocks > 10 {
		t.Errorf("second backup: %+v", st)
	}
	check(second)
}
