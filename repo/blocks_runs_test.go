package repo_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// writeListV2 stores fl (of backup fl.BackupID) as a version-2 list, as a
// block backup does: its runs' pieces that index x (may be nil) holds are
// named again, the others go into a list pack of the backup. It returns
// the stored object, the list's final pack table, and the new pieces.
func writeListV2(t *testing.T, r *repo.Repository, fl *repo.FileList, x *repo.BlockIndex) (repo.ObjectInfo, []string, int) {
	t.Helper()
	ctx := context.Background()
	w, err := repo.NewFileListWriter(fl.BackupID, fl.ContentKey)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	h, err := r.NewRunHasher()
	if err != nil {
		t.Fatal(err)
	}
	packs := slices.Clone(fl.Packs)
	packAt := func(p string) uint32 {
		if i := slices.Index(packs, p); i >= 0 {
			return uint32(i)
		}
		packs = append(packs, p)
		return uint32(len(packs) - 1)
	}
	var pw *repo.PackWriter
	newPieces := 0
	// As a block backup does: a file's new pieces in frames of up to 16.
	w.UseRuns(func(pieces [][]byte, refs []repo.BlockRef) error {
		var frame [][]byte
		var at []int
		flush := func() error {
			if len(frame) == 0 {
				return nil
			}
			if pw == nil {
				var err error
				if pw, err = r.NewListPackWriter(fl.BackupID, 90); err != nil {
					return err
				}
			}
			off, n, err := pw.AddFrame(frame)
			if err != nil {
				return err
			}
			for k, i := range at {
				refs[i] = repo.BlockRef{ID: refs[i].ID, Pack: packAt(pw.Key()), Offset: off, Length: int32(n), Index: uint8(k)}
			}
			frame, at = nil, nil
			return nil
		}
		for i, piece := range pieces {
			refs[i].ID = h.ID(piece)
			if loc, ok := x.Lookup(refs[i].ID); ok {
				refs[i] = repo.BlockRef{ID: refs[i].ID, Pack: packAt(loc.Pack), Offset: loc.Offset, Length: loc.Length, Index: loc.Index}
				continue
			}
			newPieces++
			frame, at = append(frame, slices.Clone(piece)), append(at, i)
			if len(frame) == repo.FrameBlocks {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	}, func(i uint32) string { return packs[i] })
	for _, a := range fl.Archives {
		w.BeginArchive(a.Name)
		for i := range a.Entries {
			if err := w.Add(&a.Entries[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pw != nil {
		if _, err := r.PutPack(ctx, pw); err != nil {
			t.Fatal(err)
		}
	}
	info, err := r.PutFileListFrom(ctx, w, packs)
	if err != nil {
		t.Fatal(err)
	}
	return info, packs, newPieces
}

// runsList is a list with files inline (16 blocks), in one run (17), in
// three runs (600: 256, 256, 88), entries without blocks, and an archive
// without entries.
func runsList(t *testing.T, tr *repotest.Repo) *repo.FileList {
	fl := writePack(t, tr, testBlocks(600, 9))
	big := fl.Archives[0].Entries[1]
	fl.Archives[0].Entries = append(fl.Archives[0].Entries,
		repo.FileEntry{Name: "base/1/16", Typeflag: '0', Mode: 0o600, Size: 16 * repo.BlockSize, Blocks: big.Blocks[200:216]},
		repo.FileEntry{Name: "base/1/17", Typeflag: '0', Mode: 0o600, Size: 17*repo.BlockSize - 3, Blocks: big.Blocks[300:317]},
		repo.FileEntry{Name: "base/1/empty", Typeflag: '0', Mode: 0o600},
	)
	fl.Archives = append(fl.Archives, repo.FileArchive{Name: "16385.tar"}, repo.FileArchive{Name: "16386.tar", Entries: []repo.FileEntry{
		{Name: "PG_15_202209061/5/16390", Typeflag: '0', Mode: 0o600, Size: 300 * repo.BlockSize, Blocks: big.Blocks[1:301]},
	}})
	return fl
}

// sameArchives compares two lists' archives (entries and references).
func sameArchives(a, b *repo.FileList) bool {
	x := repo.FileList{Packs: a.Packs, Archives: a.Archives}
	y := repo.FileList{Packs: b.Packs, Archives: b.Archives}
	return bytes.Equal(x.MarshalBinary(), y.MarshalBinary())
}

// TestFileListRuns: a version-2 list reads back as the list that was
// written (FileList, OpenFileList), with an identity and with a writer
// key alone; its index holds the runs' pieces, so a second list of the
// same files stores no new piece and is a few bytes per run.
func TestFileListRuns(t *testing.T) {
	for _, tc := range encryptedAndPlain {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tr := repotest.New(t, tc.opts...)
			fl := runsList(t, tr)
			v1 := len(fl.MarshalBinary())
			info, packs, fresh := writeListV2(t, tr.Repository, fl, nil)
			// Runs: 1 (17 blocks) + 3 (600) + 2 (300), one piece each.
			if fresh != 6 {
				t.Errorf("%d new pieces, want 6", fresh)
			}
			got, err := tr.FileList(ctx, fl.BackupID)
			if err != nil {
				t.Fatal(err)
			}
			want := *fl
			want.Packs = packs
			if !sameArchives(got, &want) || !slices.Equal(got.Packs, packs) || got.ContentKey != fl.ContentKey {
				t.Fatal("the version-2 list reads back different")
			}
			if len(got.ListBlocks) != 6 {
				t.Errorf("%d list blocks, want 6", len(got.ListBlocks))
			}

			writer := tr.Open(t, repo.Options{Recipients: tr.Keys.Recipients, Writer: tr.Writer})
			o, err := writer.OpenFileList(ctx, fl.BackupID)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range fl.Archives {
				it := o.Entries(a.Name, true)
				for i := 0; ; i++ {
					e, err := it.Next()
					if err != nil {
						t.Fatal(err)
					}
					if e == nil {
						if i != len(a.Entries) {
							t.Errorf("archive %s: %d entries, want %d", a.Name, i, len(a.Entries))
						}
						break
					}
					if e.Name != a.Entries[i].Name || e.Size != a.Entries[i].Size || !slices.Equal(e.Blocks, a.Entries[i].Blocks) && len(e.Blocks)+len(a.Entries[i].Blocks) > 0 {
						t.Errorf("archive %s entry %d: %s differs", a.Name, i, e.Name)
					}
				}
			}
			o.Close()

			x, _, err := writer.FileListIndex(ctx, fl.BackupID)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			for _, br := range got.ListBlocks {
				if _, ok := x.Lookup(br.ID); !ok {
					t.Fatalf("piece %s not indexed", br.ID)
				}
			}

			// The same files in the next backup: every run is named
			// again, none stored.
			next := *fl
			next.BackupID = "20261207T060000Z"
			info2, _, fresh2 := writeListV2(t, writer, &next, x)
			if fresh2 != 0 {
				t.Errorf("the unchanged list stored %d new pieces", fresh2)
			}
			got2, err := tr.FileList(ctx, next.BackupID)
			if err != nil {
				t.Fatal(err)
			}
			if !sameArchives(got2, got) {
				t.Error("the second list reads back different")
			}
			t.Logf("version 1: %d bytes; version 2: %d bytes, then %d", v1, info.PlainSize, info2.PlainSize)
			if info2.PlainSize*4 > int64(v1) {
				t.Errorf("version-2 list of %d bytes against %d in version 1", info2.PlainSize, v1)
			}
		})
	}
}

// TestFileListRunsDamaged: a damaged or missing piece makes the list
// unreadable, naming the pack; rekey keeps the list pack readable by
// writers and by the new identity.
func TestFileListRunsDamaged(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	fl := runsList(t, tr)
	_, packs, _ := writeListV2(t, tr.Repository, fl, nil)
	listPack := packs[len(packs)-1]

	newID := repotest.NewIdentity(t)
	rekeyer := tr.Open(t, repo.Options{Recipients: []age.Recipient{newID.Recipient()}, Identities: []age.Identity{tr.Identity, newID}, Writer: tr.Writer})
	for _, key := range []string{repo.FileListKey(fl.BackupID), listPack, packs[0]} {
		if _, ok, err := rekeyer.ResealBlockObject(ctx, key); !ok || err != nil {
			t.Fatalf("reseal %s: %v %v", key, ok, err)
		}
	}
	reader := tr.Open(t, repo.Options{Identities: []age.Identity{newID}, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	if _, err := reader.FileList(ctx, fl.BackupID); err != nil {
		t.Fatalf("new identity after rekey: %v", err)
	}
	writer := tr.Open(t, repo.Options{Recipients: []age.Recipient{newID.Recipient()}, Writer: tr.Writer})
	if _, err := writer.FileList(ctx, fl.BackupID); err != nil {
		t.Fatalf("writer after rekey: %v", err)
	}
	// A data pack stays closed to writers.
	if _, err := writer.OpenPack(ctx, packs[0]); err == nil {
		t.Error("a writer opened a data pack after rekey")
	}

	raw := tr.Raw(t, listPack)
	bad := slices.Clone(raw)
	bad[len(bad)-5] ^= 1
	tr.SetRaw(t, listPack, bad)
	if _, err := reader.FileList(ctx, fl.BackupID); !errors.Is(err, repo.ErrIntegrity) || !strings.Contains(err.Error(), listPack) {
		t.Errorf("damaged piece: %v", err)
	}
	if err := tr.Store.Delete(ctx, listPack); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.FileList(ctx, fl.BackupID); err == nil || !strings.Contains(err.Error(), listPack) {
		t.Errorf("missing list pack: %v", err)
	}
	tr.SetRaw(t, listPack, raw)
	if _, err := reader.FileList(ctx, fl.BackupID); err != nil {
		t.Errorf("restored list pack: %v", err)
	}
}
