package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// writeFileList stores fl through a FileListWriter.
func writeFileList(t testing.TB, r *repo.Repository, fl *repo.FileList) repo.ObjectInfo {
	t.Helper()
	w, err := repo.NewFileListWriter(fl.BackupID, fl.ContentKey)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, a := range fl.Archives {
		w.BeginArchive(a.Name)
		for i := range a.Entries {
			if err := w.Add(&a.Entries[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	info, err := r.PutFileListFrom(context.Background(), w, fl.Packs)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// encryptedAndPlain are the two kinds of signed repositories block tests
// run on.
var encryptedAndPlain = []struct {
	name string
	opts []repotest.Option
}{{"encrypted", []repotest.Option{repotest.Signed()}}, {"plain", []repotest.Option{repotest.Signed(), repotest.Plain()}}}

// TestFileListWriter: a file list written entry by entry is stored as
// MarshalBinary encodes it, reads back with FileList, and indexes (by a
// writer, with the content key only) as NewBlockIndex indexes it.
func TestFileListWriter(t *testing.T) {
	for _, tc := range encryptedAndPlain {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tr := repotest.New(t, tc.opts...)
			fl := writePack(t, tr, testBlocks(70, 4))
			// A second archive, its blocks repeating the first's.
			fl.Archives = append(fl.Archives, repo.FileArchive{Name: "16384.tar", Entries: []repo.FileEntry{
				{Name: "PG_15_202209061/5/16390", Typeflag: '0', Mode: 0o600, Size: 3 * repo.BlockSize, Blocks: fl.Archives[0].Entries[1].Blocks[10:13]},
			}})
			want := fl.MarshalBinary()
			info := writeFileList(t, tr.Repository, fl)
			if sum := sha256.Sum256(want); info.SHA256 != hex.EncodeToString(sum[:]) || info.PlainSize != int64(len(want)) {
				t.Errorf("stored %d bytes, sha256 %s; MarshalBinary makes %d, %x", info.PlainSize, info.SHA256, len(want), sum)
			}
			got, err := tr.FileList(ctx, fl.BackupID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.MarshalBinary(), want) {
				t.Error("the file list read back differs")
			}
			writer := tr.Open(t, repo.Options{Recipients: tr.Keys.Recipients, Writer: tr.Writer})
			x, key, err := writer.FileListIndex(ctx, fl.BackupID)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			if key != fl.ContentKey || x.Len() != 70 {
				t.Errorf("index of %d blocks under %s, want 70 under %s", x.Len(), key, fl.ContentKey)
			}
			for _, b := range fl.Archives[0].Entries[1].Blocks {
				loc, ok := x.Lookup(b.ID)
				if !ok || loc.Pack != fl.Packs[0] || loc.Offset != b.Offset || loc.Length != b.Length || loc.Index != b.Index {
					t.Fatalf("lookup %s: %+v %v", b.ID, loc, ok)
				}
			}

			// Read entry by entry, as a restore does: every archive's
			// entries as FileList has them, from two iterators at once.
			o, err := writer.OpenFileList(ctx, fl.BackupID)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if o.BackupID != fl.BackupID || o.ContentKey != fl.ContentKey || !slices.Equal(o.Packs, fl.Packs) || !o.HasArchive("16384.tar") || o.HasArchive("nope.tar") {
				t.Errorf("opened list: %s %s %q", o.BackupID, o.ContentKey, o.Packs)
			}
			for _, a := range got.Archives {
				one, two := o.Entries(a.Name, false), o.Entries(a.Name, true)
				for i := 0; ; i++ {
					e1, err1 := one.Next()
					e2, err2 := two.Next()
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					if i == len(a.Entries) {
						if e1 != nil || e2 != nil {
							t.Errorf("archive %s: more than its %d entries", a.Name, i)
						}
						break
					}
					for _, e := range []*repo.FileEntry{e1, e2} {
						if e == nil || e.Name != a.Entries[i].Name || e.Size != a.Entries[i].Size || !slices.Equal(e.Blocks, a.Entries[i].Blocks) {
							t.Fatalf("archive %s entry %d: %+v, want %+v", a.Name, i, e, a.Entries[i])
						}
					}
				}
			}
			if e, err := o.Entries("nope.tar", false).Next(); e != nil || err != nil {
				t.Errorf("an archive the list lacks: %v %v", e, err)
			}
		})
	}
}

// TestFileListIndexRefusesDamage: a file list damaged in its body is
// refused by FileListIndex, as by FileList.
func TestFileListIndexRefusesDamage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range encryptedAndPlain {
		t.Run(tc.name, func(t *testing.T) {
			tr := repotest.New(t, tc.opts...)
			fl := writePack(t, tr, testBlocks(20, 5))
			writeFileList(t, tr.Repository, fl)
			key := repo.FileListKey(fl.BackupID)
			orig := tr.Raw(t, key)
			damaged := bytes.Clone(orig)
			damaged[len(damaged)-20] ^= 1
			tr.SetRaw(t, key, damaged)
			if _, _, err := tr.FileListIndex(ctx, fl.BackupID); !errors.Is(err, repo.ErrIntegrity) {
				t.Errorf("damaged file list: %v", err)
			}
			if _, err := tr.OpenFileList(ctx, fl.BackupID); !errors.Is(err, repo.ErrIntegrity) {
				t.Errorf("damaged file list opened: %v", err)
			}
			tr.SetRaw(t, key, orig[:len(orig)-1])
			if _, _, err := tr.FileListIndex(ctx, fl.BackupID); !errors.Is(err, repo.ErrIntegrity) {
				t.Errorf("truncated file list: %v", err)
			}
			if _, err := tr.OpenFileList(ctx, fl.BackupID); !errors.Is(err, repo.ErrIntegrity) {
				t.Errorf("truncated file list opened: %v", err)
			}
		})
	}
}

// BenchmarkBlockBackupMemory feeds 10 million synthetic blocks (80 GB of
// pages, in 1 GiB relation segments) through what a block backup holds
// per block: the new backup's file list (FileListWriter, then stored
// with PutFileListFrom) and the previous backup's block index (built
// from the stored list by FileListIndex, then every block looked up in
// file order). It reports the peak of the Go heap (HeapInuse, sampled
// after every segment and phase) and its bytes per block. Run with
//
//	go test -run '^$' -bench BlockBackupMemory -benchtime 1x ./repo/
//
// Measured (2 cores shared with other jobs, Go 1.26, $TMPDIR on disk,
// 63 s): peak HeapInuse 16.8 MiB, peak Sys 33.3 MiB, peak RSS of the
// test process 36.8 MiB; 1.7 bytes of heap a block over the start (the
// index's groups, 0.5, and the generator's 1 GiB segment of references,
// 5 MiB); the file list takes 17.2 bytes a block. Temporary files at the
// peak: the index's records twice while it is sorted (52 bytes a block),
// the new list and its sealed copy (35), the previous list (17).
//
// Then it reads the stored list as a restore does (OpenFileList, two
// iterators over the archive: one plans, the other writes and drops the
// mapped pages it passed). Measured (same machine, 34 s in all): peak
// HeapInuse while restoring 24.3 MiB, 2.4 bytes a block over the start,
// peak VmRSS 41.6 MiB: the list itself (172 MB) stays in a temporary file.
func BenchmarkBlockBackupMemory(b *testing.B) {
	const blocks = 10_000_000
	const segment = 1 << 30 / repo.BlockSize
	ctx := context.Background()
	tr := repotest.New(b, repotest.Signed(), repotest.OnDisk())
	const id = "20261207T060000Z"
	var peak, peakSys uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		peakSys = max(peakSys, ms.Sys)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	for range b.N {
		h, err := tr.NewBlockHasher()
		if err != nil {
			b.Fatal(err)
		}
		w, err := repo.NewFileListWriter(id, h.Key)
		if err != nil {
			b.Fatal(err)
		}
		var packs []string
		rng := rand.New(rand.NewPCG(1, 2))
		w.BeginArchive("base.tar")
		e := repo.FileEntry{Typeflag: '0', Mode: 0o600, ModTime: 1765000000}
		pack, off := -1, int64(0)
		for n, f := 0, 0; n < blocks; f++ {
			k := min(segment, blocks-n)
			e.Name = fmt.Sprintf("base/16384/%d", 16384+f)
			e.Size = int64(k) * repo.BlockSize
			e.Blocks = e.Blocks[:0]
			for i := range k {
				if (n+i)%repo.FrameBlocks == 0 {
					off += 20000
					if pack < 0 || off > 16<<20 {
						pack++
						off = 0
						packs = append(packs, repo.PackKey(id, pack))
					}
				}
				var br repo.BlockRef
				binary.LittleEndian.PutUint64(br.ID[:], rng.Uint64())
				binary.LittleEndian.PutUint64(br.ID[8:], rng.Uint64())
				br.Pack, br.Offset, br.Length, br.Index = uint32(pack), off, 20000, uint8((n+i)%repo.FrameBlocks)
				e.Blocks = append(e.Blocks, br)
			}
			if err := w.Add(&e); err != nil {
				b.Fatal(err)
			}
			n += k
			sample()
		}
		e.Blocks = nil
		info, err := tr.PutFileListFrom(ctx, w, packs)
		if err != nil {
			b.Fatal(err)
		}
		w.Close()
		sample()
		x, _, err := tr.FileListIndex(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		sample()
		rng = rand.New(rand.NewPCG(1, 2))
		var id repo.BlockID
		for i := range blocks {
			binary.LittleEndian.PutUint64(id[:], rng.Uint64())
			binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
			if _, ok := x.Lookup(id); !ok {
				b.Fatalf("block %d not found", i)
			}
			if i%segment == 0 {
				sample()
			}
		}
		sample()
		if x.Len() != blocks {
			b.Errorf("index of %d blocks", x.Len())
		}
		x.Close()
		b.ReportMetric(float64(info.PlainSize)/blocks, "list-bytes/block")

		// A restore's reading: the list opened, then each archive's
		// entries read twice at once (one iterator plans the reads,
		// the other writes the tar stream and drops what it passed).
		runtime.GC()
		var rpeak, rrss uint64
		rsample := func() {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			rpeak = max(rpeak, ms.HeapInuse)
			rrss = max(rrss, vmRSS(b))
		}
		o, err := tr.OpenFileList(ctx, "20261207T060000Z") // id is a block id here
		if err != nil {
			b.Fatal(err)
		}
		rsample()
		plan, write := o.Entries("base.tar", false), o.Entries("base.tar", true)
		var planned, written int
		for {
			pe, err := plan.Next()
			if err != nil {
				b.Fatal(err)
			}
			we, err := write.Next()
			if err != nil {
				b.Fatal(err)
			}
			if pe == nil || we == nil {
				if pe != we {
					b.Fatal("the two iterators disagree on the end")
				}
				break
			}
			if pe.Name != we.Name || len(pe.Blocks) != len(we.Blocks) || pe.Blocks[len(pe.Blocks)-1] != we.Blocks[len(we.Blocks)-1] {
				b.Fatalf("the iterators disagree at %s", pe.Name)
			}
			planned += len(pe.Blocks)
			written += len(we.Blocks)
			rsample()
		}
		o.Close()
		if planned != blocks || written != blocks {
			b.Errorf("restore read %d and %d blocks, want %d", planned, written, blocks)
		}
		b.ReportMetric(float64(rpeak-min(rpeak, base))/blocks, "restore-heap-bytes/block")
		b.ReportMetric(float64(rpeak)/(1<<20), "restore-peak-heap-MiB")
		b.ReportMetric(float64(rrss)/(1<<20), "restore-peak-rss-MiB")
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakSys)/(1<<20), "peak-sys-MiB")
	b.ReportMetric(float64(peak-min(peak, base))/blocks, "heap-bytes/block")
	// The process's peak resident set (the test binary's, all of it).
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				var kb float64
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
				b.ReportMetric(kb/1024, "peak-rss-MiB")
			}
		}
	}
}

// vmRSS is the process's resident memory (VmRSS), mapped files included.
func vmRSS(tb testing.TB) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}
