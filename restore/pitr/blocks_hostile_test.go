package pitr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

const hostileBlockBackup = "20261207T050000Z"

// blockBackupWithForgedID stores two blocks in one pack of a repository
// without encryption and returns a file list of one file holding them in
// which the second block's id is not its content's: what a rewritten
// frame (sealed under the pack's data key, which such a repository keeps
// in the clear) looks like to a restore.
func blockBackupWithForgedID(t *testing.T) (*repotest.Repo, *repo.FileList, [][]byte) {
	t.Helper()
	tr := repotest.New(t, repotest.Plain(), repotest.Signed())
	h, err := tr.NewBlockHasher()
	if err != nil {
		t.Fatal(err)
	}
	blocks := [][]byte{bytes.Repeat([]byte{1}, repo.BlockSize), bytes.Repeat([]byte{2}, 100)}
	pw, err := tr.NewPackWriter(hostileBlockBackup, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	off, n, err := pw.AddFrame(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.PutPack(context.Background(), pw); err != nil {
		t.Fatal(err)
	}
	e := repo.FileEntry{Name: "base/1/1259", Typeflag: '0', Mode: 0o600, Size: repo.BlockSize + 100}
	for i, b := range blocks {
		e.Blocks = append(e.Blocks, repo.BlockRef{ID: h.ID(b), Offset: off, Length: int32(n), Index: uint8(i)})
	}
	e.Blocks[1].ID = h.ID([]byte("the block the writer signed"))
	fl := &repo.FileList{BackupID: hostileBlockBackup, ContentKey: h.Key, Packs: []string{pw.Key()},
		Archives: []repo.FileArchive{{Name: "base.tar", Entries: []repo.FileEntry{e}}}}
	return tr, fl, blocks
}

// openList stores fl with tr's writer and opens it with r, as a restore
// does.
func openList(t *testing.T, tr *repotest.Repo, r *repo.Repository, fl *repo.FileList) *repo.OpenFileList {
	t.Helper()
	if _, err := tr.PutFileList(context.Background(), fl); err != nil {
		t.Fatal(err)
	}
	o, err := r.OpenFileList(context.Background(), fl.BackupID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestBlockArchiveChecksIDs: a block that authenticates but is not the
// one the signed file list names is refused when the tar stream is rebuilt.
func TestBlockArchiveChecksIDs(t *testing.T) {
	tr, fl, _ := blockBackupWithForgedID(t)
	ba := newBlockArchiveReader(context.Background(), tr.Repository, newPackCache(tr.Repository), openList(t, tr, tr.Repository, fl), "base.tar", 2, nil)
	_, err := io.Copy(io.Discard, ba)
	ba.Close()
	if !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("rebuilding an archive with a block not matching its id: %v, want ErrIntegrity", err)
	}
}

// TestDeltaBlocksChecksIDs: the same for the blocks a delta restore writes.
func TestDeltaBlocksChecksIDs(t *testing.T) {
	tr, fl, _ := blockBackupWithForgedID(t)
	h, err := tr.BlockHasherFor(fl.ContentKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "base", "1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "base", "1", "1259"), make([]byte, repo.BlockSize+100), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	e := fl.Archives[0].Entries[0]
	writes := []deltaWrite{{file: e.Name, index: 0, size: repo.BlockSize, ref: e.Blocks[0]}, {file: e.Name, index: 1, size: 100, ref: e.Blocks[1]}}
	err = writeDeltaBlocks(context.Background(), tr.Repository, h, root, dir, fl, writes)
	if !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("delta with a block not matching its id: %v, want ErrIntegrity", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "base", "1", "1259"))
	if !bytes.Equal(got[repo.BlockSize:], make([]byte, 100)) {
		t.Fatal("the forged block was written")
	}
}

// TestBlockArchivePlainNeedsContentKey: in a repository without encryption
// the frames' AEAD proves nothing (the data key is in the pack's head), so
// a restore that cannot check block ids is refused.
func TestBlockArchivePlainNeedsContentKey(t *testing.T) {
	tr, fl, _ := blockBackupWithForgedID(t)
	keys := tr.Keys
	keys.Writer = nil
	reader, err := repo.OpenWithConfig(tr.Store, tr.Config, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	ba := newBlockArchiveReader(context.Background(), reader, newPackCache(reader), openList(t, tr, reader, fl), "base.tar", 1, nil)
	_, err = io.Copy(io.Discard, ba)
	ba.Close()
	if !errors.Is(err, repo.ErrNoIdentity) || !errors.Is(err, repo.ErrNoContentKey) {
		t.Fatalf("restore of a plain repository without the content key: %v, want ErrNoIdentity and ErrNoContentKey", err)
	}
}

// TestDeltaRemoveReplacesLinks: a link in the data directory where the
// backup holds a directory or a file is removed (the link, not what it
// points to), whether it points inside the directory or out of it; a
// link the backup holds stays, and what the backup does not hold goes.
func TestDeltaRemoveReplacesLinks(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	for _, d := range []string{"global", "base/1"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(dir, "global", "pg_control"), filepath.Join(dir, "base", "1", "old"), filepath.Join(outside, "000000010000000000000001")} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"pg_wal":          outside,             // directory in the backup
		"pg_xact":         "global",            // directory, link inside
		"PG_VERSION":      "global/pg_control", // file
		"pg_notify":       "global",            // held by the backup as this link
		"postmaster.opts": filepath.Join(outside, "x"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	keep := map[string]byte{"global": '5', "global/pg_control": '0', "base": '5', "base/1": '5',
		"pg_wal": '5', "pg_xact": '5', "PG_VERSION": '0', "pg_notify": '2'}
	n, err := deltaRemove(root, dir, keep, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pg_wal", "pg_xact", "PG_VERSION", "postmaster.opts", "base/1/old"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it removed", name, err)
		}
	}
	for _, name := range []string{"pg_notify", "global/pg_control"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v, want it kept", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "000000010000000000000001")); err != nil {
		t.Errorf("a file the pg_wal link pointed to: %v, want it untouched", err)
	}
	if n != 5 {
		t.Errorf("removed %d, want 5", n)
	}
}

// TestDeltaOpenBreaksHardLinks: a file of the data directory hard-linked
// to a file outside it is replaced by a fresh one, so that the writes of
// a delta restore never reach the outside file.
func TestDeltaOpenBreaksHardLinks(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(victim, filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "postmaster.opts"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, name := range []string{"PG_VERSION", "postmaster.opts"} {
		f, err := deltaOpen(root, dir, name, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("restored"), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if got, _ := os.ReadFile(victim); string(got) != "outside" {
		t.Fatalf("the file outside holds %q after a delta write to its hard link", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "PG_VERSION")); string(got) != "restored" {
		t.Fatalf("PG_VERSION holds %q", got)
	}
}

// TestDeltaRemoveReplacesTablespaceDirLink: pg_tblspc, left alone with
// its tablespace links, is so only when it is a directory: a link there is
// removed like any other.
func TestDeltaRemoveReplacesTablespaceDirLink(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "base", "1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("base/1", filepath.Join(dir, "pg_tblspc")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := deltaRemove(root, dir, map[string]byte{"base": '5', "base/1": '5', "pg_tblspc": '5'}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "pg_tblspc")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pg_tblspc, a link: %v, want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "base", "1")); err != nil {
		t.Fatalf("what the link pointed to: %v", err)
	}
}

// TestDeltaRemoveTablespace: in a tablespace directory only what the
// backup holds at the top is cleaned: another major version's directory
// (pg_upgrade's) and anything else there stay whole; below the backup's
// own directory, what it does not hold goes, and a link where it holds a
// directory is removed, not followed. In the data directory, an in-place
// tablespace's directory under pg_tblspc is left alone.
func TestDeltaRemoveTablespace(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	for _, p := range []string{"PG_16_202307071/5/16400", "PG_17_202406281/5/16401", "PG_17_202406281/5/99999", "notes", "outside/kept"} {
		full := filepath.Join(dir, p)
		if p == "outside/kept" {
			full = filepath.Join(outside, "kept")
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "PG_17_202406281", "6")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	keep := map[string]byte{"PG_17_202406281": '5', "PG_17_202406281/5": '5', "PG_17_202406281/5/16401": '0', "PG_17_202406281/6": '5'}
	n, err := deltaRemove(root, dir, keep, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"PG_16_202307071/5/16400", "notes", "PG_17_202406281/5/16401"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
	for _, p := range []string{"PG_17_202406281/5/99999", "PG_17_202406281/6"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it removed", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "kept")); err != nil {
		t.Errorf("what the link pointed to: %v", err)
	}
	if n != 2 {
		t.Errorf("removed %d, want 2", n)
	}

	// The data directory: pg_tblspc/16500 is an in-place tablespace.
	pgdata := t.TempDir()
	inPlace := filepath.Join(pgdata, "pg_tblspc", "16500", "PG_17_202406281", "5", "1")
	if err := os.MkdirAll(filepath.Dir(inPlace), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPlace, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	proot, err := os.OpenRoot(pgdata)
	if err != nil {
		t.Fatal(err)
	}
	defer proot.Close()
	if _, err := deltaRemove(proot, pgdata, map[string]byte{"pg_tblspc": '5'}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inPlace); err != nil {
		t.Errorf("in-place tablespace file: %v, want it kept", err)
	}
}
