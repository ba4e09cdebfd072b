package repo_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

const blockBackupID = "20261207T050000Z"

// testBlocks returns n blocks of pseudo-random, compressible content, the
// last one short.
func testBlocks(n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([][]byte, n)
	for i := range out {
		size := repo.BlockSize
		if i == n-1 {
			size = 1000
		}
		b := make([]byte, size)
		for j := 0; j < size; j += 64 {
			b[j] = byte(rng.IntN(256))
		}
		out[i] = b
	}
	return out
}

// writePack stores blocks in one pack and returns a file list of one file
// holding them.
func writePack(t *testing.T, tr *repotest.Repo, blocks [][]byte) *repo.FileList {
	t.Helper()
	ctx := context.Background()
	h, err := tr.NewBlockHasher()
	if err != nil {
		t.Fatal(err)
	}
	pw, err := tr.NewPackWriter(blockBackupID, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := repo.FileEntry{Name: "base/1/1259", Typeflag: '0', Mode: 0o600, ModTime: 1765000000}
	// Frames of 1 to FrameBlocks blocks.
	for i, size := 0, 1; i < len(blocks); i, size = i+size, (size+2)%repo.FrameBlocks+1 {
		frame := blocks[i:min(i+size, len(blocks))]
		off, n, err := pw.AddFrame(frame)
		if err != nil {
			t.Fatal(err)
		}
		for k, b := range frame {
			e.Size += int64(len(b))
			e.Blocks = append(e.Blocks, repo.BlockRef{ID: h.ID(b), Pack: 0, Offset: off, Length: int32(n), Index: uint8(k)})
		}
	}
	if _, err := tr.PutPack(ctx, pw); err != nil {
		t.Fatal(err)
	}
	return &repo.FileList{BackupID: blockBackupID, ContentKey: h.Key, Packs: []string{pw.Key()}, Archives: []repo.FileArchive{
		{Name: "base.tar", Entries: []repo.FileEntry{{Name: "base", Typeflag: '5', Mode: 0o700}, e, {Name: "pg_tblspc/16384", Typeflag: '2', Linkname: "/srv/ts"}}},
	}}
}

func readBlocks(t *testing.T, r *repo.Repository, fl *repo.FileList) ([][]byte, error) {
	t.Helper()
	ctx := context.Background()
	var out [][]byte
	packs := map[uint32]*repo.Pack{}
	for _, e := range fl.Archives[0].Entries {
		for _, b := range e.Blocks {
			p := packs[b.Pack]
			if p == nil {
				var err error
				if p, err = r.OpenPack(ctx, fl.Packs[b.Pack]); err != nil {
					return nil, err
				}
				packs[b.Pack] = p
			}
			sealed, err := p.ReadRange(ctx, b.Offset, int64(b.Length))
			if err != nil {
				return nil, err
			}
			plain, err := p.OpenBlock(sealed, b.Offset, b.Index)
			if err != nil {
				return nil, err
			}
			out = append(out, plain)
		}
	}
	return out, nil
}

// TestBlockPackRoundTrip: blocks written to a pack read back, one by one,
// by a reader holding the identity and the root; on the in-memory store and
// on disk, encrypted or not.
func TestBlockPackRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []repotest.Option
	}{
		{"memstore", []repotest.Option{repotest.Signed()}},
		{"local", []repotest.Option{repotest.Signed(), repotest.OnDisk()}},
		{"plain", []repotest.Option{repotest.Signed(), repotest.Plain()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := repotest.New(t, tc.opts...)
			blocks := testBlocks(40, 7)
			fl := writePack(t, tr, blocks)
			if _, err := tr.PutFileList(context.Background(), fl); err != nil {
				t.Fatal(err)
			}
			reader := tr.Open(t, repo.Options{Identities: tr.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
			got, err := reader.FileList(context.Background(), blockBackupID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.MarshalBinary(), fl.MarshalBinary()) {
				t.Fatalf("file list changed on the way")
			}
			read, err := readBlocks(t, reader, got)
			if err != nil {
				t.Fatal(err)
			}
			for i := range blocks {
				if !bytes.Equal(read[i], blocks[i]) {
					t.Fatalf("block %d differs", i)
				}
			}
		})
	}
}

// TestFileListReadableByWriter: a writer (content key, no identity) reads
// file lists, to deduplicate against them, but cannot open a pack; a
// reader with neither cannot read the file list.
func TestFileListReadableByWriter(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	fl := writePack(t, tr, testBlocks(3, 1))
	if _, err := tr.PutFileList(ctx, fl); err != nil {
		t.Fatal(err)
	}
	writer := tr.Open(t, repo.Options{Recipients: tr.Keys.Recipients, Writer: tr.Writer})
	if _, err := writer.FileList(ctx, blockBackupID); err != nil {
		t.Fatalf("writer reads the file list: %v", err)
	}
	if _, err := writer.OpenPack(ctx, fl.Packs[0]); !errors.Is(err, repo.ErrNoIdentity) {
		t.Errorf("writer opens a pack: %v", err)
	}
	other := repotest.NewIdentity(t)
	stranger := tr.Open(t, repo.Options{Identities: []age.Identity{other}, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	if _, err := stranger.FileList(ctx, blockBackupID); !errors.Is(err, repo.ErrWrongKey) {
		t.Errorf("stranger reads the file list: %v", err)
	}
}

// TestBlockTamperDetected: a changed byte in a block, a pack copied under
// another name, or a pack whose data key was replaced are refused.
func TestBlockTamperDetected(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	fl := writePack(t, tr, testBlocks(4, 2))
	reader := tr.Open(t, repo.Options{Identities: tr.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	key := fl.Packs[0]
	orig := tr.Raw(t, key)

	p, err := reader.OpenPack(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(orig)
	damaged[p.DataStart+fl.Archives[0].Entries[1].Blocks[2].Offset+3] ^= 1
	tr.SetRaw(t, key, damaged)
	if _, err := readBlocks(t, reader, fl); !errors.Is(err, repo.ErrIntegrity) {
		t.Errorf("damaged block: %v", err)
	}

	tr.SetRaw(t, key, orig)
	other := repo.PackKey(blockBackupID, 1)
	tr.SetRaw(t, other, orig)
	if _, err := reader.OpenPack(ctx, other); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("pack under another name: %v", err)
	}

	// A forger with the public recipient but no writer key makes its own
	// pack: its signature does not chain to the root.
	forger := repotest.New(t, repotest.Signed(), repotest.WithIdentity(tr.Identity))
	pw, err := forger.NewPackWriter(blockBackupID, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetRaw(t, key, pw.Bytes())
	if _, err := reader.OpenPack(ctx, key); !errors.Is(err, repo.ErrUntrusted) {
		t.Errorf("forged pack: %v", err)
	}
}

// TestBlockRekey: after ResealBlockObject with a new identity, the new
// identity alone reads the file list and every block, and a writer still
// reads the file list.
func TestBlockRekey(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	blocks := testBlocks(5, 4)
	fl := writePack(t, tr, blocks)
	if _, err := tr.PutFileList(ctx, fl); err != nil {
		t.Fatal(err)
	}
	newID := repotest.NewIdentity(t)
	rekeyer := tr.Open(t, repo.Options{Recipients: []age.Recipient{newID.Recipient()}, Identities: []age.Identity{tr.Identity, newID}, Writer: tr.Writer})
	for _, key := range []string{repo.FileListKey(blockBackupID), fl.Packs[0]} {
		if _, ok, err := rekeyer.ResealBlockObject(ctx, key); !ok || err != nil {
			t.Fatalf("reseal %s: %v %v", key, ok, err)
		}
	}
	if _, ok, _ := rekeyer.ResealBlockObject(ctx, "wal/00000001/000000010000000000000001"); ok {
		t.Error("a WAL key taken for a block object")
	}
	reader := tr.Open(t, repo.Options{Identities: []age.Identity{newID}, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	got, err := reader.FileList(ctx, blockBackupID)
	if err != nil {
		t.Fatal(err)
	}
	read, err := readBlocks(t, reader, got)
	if err != nil {
		t.Fatal(err)
	}
	for i := range blocks {
		if !bytes.Equal(read[i], blocks[i]) {
			t.Fatalf("block %d differs after rekey", i)
		}
	}
	old := tr.Open(t, repo.Options{Identities: []age.Identity{tr.Identity}, TrustedRoots: []crypto.RootPublicKey{tr.Root.Public()}})
	if _, err := old.OpenPack(ctx, fl.Packs[0]); !errors.Is(err, repo.ErrWrongKey) {
		t.Errorf("old identity still opens the pack: %v", err)
	}
	writer := tr.Open(t, repo.Options{Recipients: []age.Recipient{newID.Recipient()}, Writer: tr.Writer})
	if _, err := writer.FileList(ctx, blockBackupID); err != nil {
		t.Errorf("writer reads the file list after rekey: %v", err)
	}
}

// TestServerManifestForWriters: the server's backup_manifest of a block
// backup, stored through WriterReadable, is read back by a writer (for
// PostgreSQL 17's UPLOAD_MANIFEST); one sealed to the recipients only (an
// older walvault's) is not, until rekey seals it again; a chunk that is
// not the one the manifest names is refused.
func TestServerManifestForWriters(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed())
	text := []byte("{ \"PostgreSQL-Backup-Manifest-Version\": 2 }\n")
	key := repo.BackupChunkKey(blockBackupID, repo.ServerManifestArchive, 0)
	m := &repo.BackupManifest{ID: blockBackupID}
	store := func(r *repo.Repository) {
		t.Helper()
		info, err := r.Put(ctx, key, text, storage.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m.Archives = []repo.Archive{{Name: repo.ServerManifestArchive, Bytes: int64(len(text)), Chunks: []repo.Chunk{{Key: info.Key, Size: info.PlainSize, SHA256: info.SHA256}}}}
	}
	writer := tr.Open(t, repo.Options{Recipients: tr.Keys.Recipients, Writer: tr.Writer})
	wr, err := tr.WriterReadable()
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	store(wr)
	if got, err := writer.ServerManifest(ctx, m); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("writer reads the manifest stored for writers: %q %v", got, err)
	}
	store(tr.Repository)
	if _, err := writer.ServerManifest(ctx, m); err == nil {
		t.Fatal("writer reads a manifest sealed to the recipients only")
	}
	if _, ok, err := tr.ResealBlockObject(ctx, key); !ok || err != nil {
		t.Fatalf("rekey of the manifest chunk: %v %v", ok, err)
	}
	if got, err := writer.ServerManifest(ctx, m); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("writer reads the manifest after rekey: %q %v", got, err)
	}
	if got, err := tr.ServerManifest(ctx, m); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("an identity reads it: %q %v", got, err)
	}
	m.Archives[0].Chunks[0].SHA256 = strings.Repeat("0", 64)
	if _, err := tr.ServerManifest(ctx, m); !errors.Is(err, repo.ErrIntegrity) {
		t.Errorf("a chunk with another checksum: %v", err)
	}
	m.Archives[0].Chunks[0].Key = repo.BackupChunkKey(blockBackupID, "base.tar", 0)
	if _, err := tr.ServerManifest(ctx, m); !errors.Is(err, repo.ErrIntegrity) {
		t.Errorf("a chunk of another archive: %v", err)
	}
}

// TestBlockIndex: the index finds every block of a file list, and nothing
// else.
func TestBlockIndex(t *testing.T) {
	tr := repotest.New(t, repotest.Signed())
	blocks := testBlocks(50, 3)
	blocks = append(blocks, blocks[4]) // a repeated block
	fl := writePack(t, tr, blocks)
	x, err := repo.NewBlockIndex(fl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if x.Len() != 50 {
		t.Errorf("index holds %d blocks, want 50", x.Len())
	}
	refs := fl.Archives[0].Entries[1].Blocks
	for i, b := range refs[:50] {
		loc, ok := x.Lookup(b.ID)
		if i == 4 && ok && loc.Offset == refs[50].Offset && loc.Index == refs[50].Index { // either copy will do
			b = refs[50]
		}
		if !ok || loc.Pack != fl.Packs[0] || loc.Offset != b.Offset || loc.Length != b.Length || loc.Index != b.Index {
			t.Fatalf("lookup %s: %+v %v", b.ID, loc, ok)
		}
	}
	if _, ok := x.Lookup(repo.BlockID{1, 2, 3}); ok {
		t.Error("found a block never stored")
	}
}

// TestBlockIDNeedsContentKey: block ids are keyed: another root's writers
// name the same content differently, and a host without the key cannot.
func TestBlockIDNeedsContentKey(t *testing.T) {
	a := repotest.New(t, repotest.Signed())
	b := repotest.New(t, repotest.Signed())
	ha, err := a.NewBlockHasher()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.NewBlockHasher()
	if err != nil {
		t.Fatal(err)
	}
	blk := testBlocks(1, 9)[0]
	if ha.ID(blk) == hb.ID(blk) {
		t.Error("two content keys give one id")
	}
	ck := a.Root.ContentKey()
	reader := a.Open(t, repo.Options{Identities: a.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{a.Root.Public()}, ContentKeys: [][32]byte{ck}})
	hr, err := reader.NewBlockHasher()
	if err != nil || hr.ID(blk) != ha.ID(blk) {
		t.Errorf("root holder's id differs from the writer's: %v", err)
	}
	noKey := a.Open(t, repo.Options{Identities: a.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{a.Root.Public()}})
	if _, err := noKey.NewBlockHasher(); !errors.Is(err, repo.ErrNoContentKey) {
		t.Errorf("hasher without the key: %v", err)
	}
}

// FuzzParseFileList: the parser never panics, and what it accepts encodes
// back to the same bytes.
func FuzzParseFileList(f *testing.F) {
	fl := &repo.FileList{BackupID: blockBackupID, Packs: []string{repo.PackKey(blockBackupID, 0)}, Archives: []repo.FileArchive{{Name: "base.tar", Entries: []repo.FileEntry{
		{Name: "PG_VERSION", Typeflag: '0', Size: 3, Blocks: []repo.BlockRef{{ID: repo.BlockID{1}, Offset: 300, Length: 40, Index: 2}}},
		{Name: "base/1/2", Typeflag: '0', Size: 3 * repo.BlockSize, Blocks: []repo.BlockRef{{ID: repo.BlockID{2}, Offset: 300, Length: 40, Index: 3}, {ID: repo.BlockID{3}, Offset: 340, Length: 50}, {ID: repo.BlockID{4}, Offset: 340, Length: 50, Index: 1}}},
		{Name: "base", Typeflag: '5', Mode: 0o700},
	}}}}
	f.Add(fl.MarshalBinary())
	f.Add([]byte("WVFL\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := repo.ParseFileList(data)
		if err != nil {
			return
		}
		if !bytes.Equal(got.MarshalBinary(), data) {
			t.Fatalf("round trip changed %x", data)
		}
	})
}

// FuzzParsePackKey: accepted keys are exactly the ones PackKey makes.
func FuzzParsePackKey(f *testing.F) {
	f.Add(repo.PackKey(blockBackupID, 12))
	f.Add("packs/x/00000001")
	f.Fuzz(func(t *testing.T, key string) {
		id, seq, err := repo.ParsePackKey(key)
		if err != nil {
			return
		}
		if repo.PackKey(id, seq) != key {
			t.Fatalf("%q parsed as %s/%d", key, id, seq)
		}
	})
}
