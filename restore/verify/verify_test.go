package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
)

const segSize = waltest.SegSize

// fixture is a repository with two backups and the WAL of two timelines:
//
//	timeline 1: segments 1–6, and 7 as .partial (promotion at 0/700000)
//	timeline 2: 2.history, segments 7–8, a streamed partial of 9
//	backup b1 on timeline 1 (WAL 2–3), backup b2 on timeline 2 (WAL 8)
type fixture struct {
	tr     *repotest.Repo
	r      *repo.Repository
	dir    string
	b1, b2 *repo.BackupManifest
	keys   map[string]string // what the tests damage, by kind
}

func lsn(segno uint64, off int64) pgwal.LSN {
	return pgwal.SegmentStart(segno, segSize) + pgwal.LSN(off)
}

type tarEntry struct{ name, body string }

func buildTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunkSize cuts backups into small chunks, so tar headers straddle them.
const chunkSize = 1000

func backupArchives(t *testing.T) []repotest.Archive {
	return []repotest.Archive{
		{Name: "base.tar", Data: buildTar(t, tarEntry{"backup_label", "START WAL LOCATION: 0/200028\n"}, tarEntry{"PG_VERSION", "15\n"},
			tarEntry{"base/1/1259", strings.Repeat("h", 5000)})},
		{Name: "16385.tar", Data: buildTar(t, tarEntry{"PG_15_202209061/5/16386", strings.Repeat("t", 3000)})},
		{Name: repo.ServerManifestArchive, Data: []byte(`{"PostgreSQL-Backup-Manifest-Version": 1, "Files": []}` + "\n")},
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tr := repotest.New(t, repotest.OnDisk())
	f := &fixture{tr: tr, r: tr.Repository, dir: tr.Dir, keys: map[string]string{}}
	t0 := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	for n := uint64(1); n <= 6; n++ {
		tr.Write(t, repo.WALSegmentKey(1, n, segSize), waltest.Segment(1, n, waltest.SysID, 1))
	}
	partial := pgwal.SegmentName(1, 7, segSize) + ".partial"
	f.keys["partial"] = "wal/00000001/" + partial
	tr.Write(t, f.keys["partial"], waltest.Segment(1, 7, waltest.SysID, 1))
	f.keys["backup-history"] = "wal/00000001/" + pgwal.BackupHistoryFileName(1, lsn(2, 0x28), segSize)
	tr.Write(t, f.keys["backup-history"], []byte(fmt.Sprintf("START WAL LOCATION: %s\nSTOP WAL LOCATION: %s\nSTART TIME: %s UTC\nSTOP TIME: %s UTC\n",
		lsn(2, 0x28), lsn(3, 0x100), t0.Format(time.DateTime), t0.Add(59*time.Second).Format(time.DateTime))))
	f.keys["history"] = "wal/00000002/00000002.history"
	tr.Write(t, f.keys["history"], []byte(fmt.Sprintf("1\t%s\tno recovery target specified\n", lsn(7, 0))))
	for n := uint64(7); n <= 8; n++ {
		tr.Write(t, repo.WALSegmentKey(2, n, segSize), waltest.Segment(2, n, waltest.SysID, 2))
	}
	f.keys["stream"] = repo.StreamPartialKey(2, pgwal.SegmentName(2, 9, segSize), 0x2000)
	tr.Write(t, f.keys["stream"], waltest.Segment(2, 9, waltest.SysID, 2)[:0x2000])
	f.keys["segment"] = repo.WALSegmentKey(1, 4, segSize)

	f.b1 = &repo.BackupManifest{ID: repo.NewBackupID(t0), Timeline: 1, StartTime: t0, StopTime: t0.Add(time.Minute),
		StartLSN: lsn(2, 0x28), StopLSN: lsn(3, 0x100), SystemIdentifier: fmt.Sprint(waltest.SysID), PGVersionNum: 150018, WALSegmentSize: segSize}
	tr.PutBackup(t, f.b1, chunkSize, backupArchives(t)...)
	t1 := t0.Add(time.Hour)
	f.b2 = &repo.BackupManifest{ID: repo.NewBackupID(t1), Timeline: 2, StartTime: t1, StopTime: t1.Add(time.Minute),
		StartLSN: lsn(8, 0x28), StopLSN: lsn(8, 0x900), SystemIdentifier: fmt.Sprint(waltest.SysID), PGVersionNum: 150018, WALSegmentSize: segSize}
	tr.PutBackup(t, f.b2, chunkSize, backupArchives(t)...)
	f.keys["chunk"] = f.b1.Archives[0].Chunks[1].Key
	f.keys["manifest"] = repo.BackupManifestKey(f.b1.ID)
	return f
}

// snapshot is the content of every file under dir: verify must not change
// any.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[p] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run runs verify and checks that the repository did not change.
func (f *fixture) run(t *testing.T, opts Options) *Report {
	t.Helper()
	return runOn(t, f.r, f.dir, opts)
}

func runOn(t *testing.T, r *repo.Repository, dir string, opts Options) *Report {
	t.Helper()
	before := snapshot(t, dir)
	rep, err := Run(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	after := snapshot(t, dir)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the repository changed during verify:\nbefore %v\nafter  %v", before, after)
	}
	return rep
}

func (f *fixture) path(key string) string { return filepath.Join(f.dir, filepath.FromSlash(key)) }

func (f *fixture) flip(t *testing.T, key string) {
	t.Helper()
	data, err := os.ReadFile(f.path(key))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-20] ^= 0x10
	if err := os.WriteFile(f.path(key), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) remove(t *testing.T, key string) {
	t.Helper()
	if err := os.Remove(f.path(key)); err != nil {
		t.Fatal(err)
	}
}

func findProblem(rep *Report, key string) (Problem, bool) {
	for _, p := range rep.Problems {
		if p.Key == key {
			return p, true
		}
	}
	return Problem{}, false
}

func countObjects(t *testing.T, dir string) int64 {
	var n int64
	for p := range snapshot(t, dir) {
		if filepath.Base(p) != repo.ConfigKey {
			n++
		}
	}
	return n
}

func TestClean(t *testing.T) {
	f := newFixture(t)
	for _, workers := range []int{1, 3, 0} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			var mu sync.Mutex
			var calls, lastDone, lastTotal int64
			rep := f.run(t, Options{Workers: workers, Progress: func(done, total, bytes int64) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				lastDone, lastTotal = done, total
			}})
			if !rep.OK || len(rep.Problems) != 0 || len(rep.Gaps) != 0 || len(rep.Warnings) != 0 {
				t.Fatalf("clean repository: ok=%v problems=%v gaps=%v warnings=%v", rep.OK, rep.Problems, rep.Gaps, rep.Warnings)
			}
			if want := countObjects(t, f.dir); rep.Objects != want || calls != want || lastDone != want || lastTotal != want {
				t.Errorf("objects=%d progress calls=%d last=%d/%d, want %d objects", rep.Objects, calls, lastDone, lastTotal, want)
			}
			if rep.Bytes <= 0 {
				t.Errorf("bytes = %d", rep.Bytes)
			}
			if rep.Recoverable == nil || rep.Recoverable.Timeline != 2 || rep.Recoverable.ToLSN != lsn(9, 0x2000).String() {
				t.Errorf("recoverable = %+v, want up to the streamed partial on timeline 2", rep.Recoverable)
			}
		})
	}
}

func TestFlippedBit(t *testing.T) {
	for _, kind := range []string{"segment", "partial", "history", "backup-history", "chunk", "manifest", "stream"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			key := f.keys[kind]
			f.flip(t, key)
			rep := f.run(t, Options{})
			p, ok := findProblem(rep, key)
			if rep.OK || !ok || p.Kind != KindDamaged || !errors.Is(p.Err, repo.ErrIntegrity) {
				t.Fatalf("flipped bit in %s: ok=%v problems=%v", key, rep.OK, rep.Problems)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	f := newFixture(t)
	key := f.keys["segment"]
	data, err := os.ReadFile(f.path(key))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path(key), data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	rep := f.run(t, Options{})
	if p, ok := findProblem(rep, key); !ok || p.Kind != KindDamaged {
		t.Fatalf("truncated %s: problems=%v", key, rep.Problems)
	}
}

func TestMissingChunk(t *testing.T) {
	f := newFixture(t)
	key := f.keys["chunk"]
	f.remove(t, key)
	rep := f.run(t, Options{Workers: 2})
	p, ok := findProblem(rep, key)
	if rep.OK || !ok || p.Kind != KindMissing || !storage.IsNotExist(p.Err) {
		t.Fatalf("missing chunk %s: problems=%v", key, rep.Problems)
	}
	if len(rep.Problems) != 1 {
		t.Errorf("a missing chunk is one problem, not a tar error as well: %v", rep.Problems)
	}
}

func TestChunkNotMatchingManifest(t *testing.T) {
	f := newFixture(t)
	key := f.keys["chunk"]
	f.remove(t, key)
	f.tr.Write(t, key, make([]byte, 1000)) // a sound object, but not the recorded one
	rep := f.run(t, Options{})
	if p, ok := findProblem(rep, key); !ok || p.Kind != KindMismatch {
		t.Fatalf("replaced chunk %s: problems=%v", key, rep.Problems)
	}
}

func TestBadTar(t *testing.T) {
	for name, base := range map[string][]byte{
		"garbage":   bytes.Repeat([]byte("not a tar "), 300),
		"truncated": buildTar(t, tarEntry{"backup_label", "x"}, tarEntry{"big", strings.Repeat("b", 4000)})[:2500],
		"no label":  buildTar(t, tarEntry{"PG_VERSION", "15\n"}),
	} {
		t.Run(name, func(t *testing.T) {
			tr := repotest.New(t, repotest.OnDisk())
			t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			tr.PutSegment(t, 1, 2, 1)
			m := &repo.BackupManifest{ID: repo.NewBackupID(t0), Timeline: 1, StartTime: t0, StopTime: t0.Add(time.Minute),
				StartLSN: lsn(2, 0x28), StopLSN: lsn(2, 0x100), WALSegmentSize: segSize}
			tr.PutBackup(t, m, chunkSize, repotest.Archive{Name: "base.tar", Data: base})
			rep := runOn(t, tr.Repository, tr.Dir, Options{})
			key := "backups/" + m.ID + "/data/base.tar/"
			if p, ok := findProblem(rep, key); !ok || p.Kind != KindTar || len(rep.Problems) != 1 {
				t.Fatalf("problems=%v, want one tar problem for %s", rep.Problems, key)
			}
		})
	}
}

func TestMissingWALInBackup(t *testing.T) {
	f := newFixture(t)
	key := repo.WALSegmentKey(1, 3, segSize)
	f.remove(t, key)
	rep := f.run(t, Options{})
	if p, ok := findProblem(rep, key); !ok || p.Kind != KindMissing {
		t.Errorf("missing segment %s not named: %v", key, rep.Problems)
	}
	if p, ok := findProblem(rep, f.keys["manifest"]); !ok || p.Kind != KindUnusable || !strings.Contains(p.Error, pgwal.SegmentName(1, 3, segSize)) {
		t.Errorf("backup %s not reported unusable: %v", f.b1.ID, rep.Problems)
	}
	if rep.OK || len(rep.Gaps) != 1 || len(rep.Gaps[0].Unusable) != 1 || rep.Gaps[0].Unusable[0] != f.b1.ID {
		t.Errorf("ok=%v gaps=%+v", rep.OK, rep.Gaps)
	}
	// Restores can still start from the newer backup.
	if rep.Recoverable == nil || rep.Recoverable.FromLSN != f.b2.StopLSN.String() {
		t.Errorf("recoverable = %+v, want from %s", rep.Recoverable, f.b2.StopLSN)
	}
}

func TestGapAfterBackup(t *testing.T) {
	f := newFixture(t)
	f.remove(t, repo.WALSegmentKey(1, 5, segSize))
	rep := f.run(t, Options{})
	if !rep.OK || len(rep.Problems) != 0 {
		t.Fatalf("a gap that only shortens the window is not a problem: %v", rep.Problems)
	}
	if len(rep.Gaps) != 1 {
		t.Fatalf("gaps = %+v, want one", rep.Gaps)
	}
	g := rep.Gaps[0]
	if g.Timeline != 1 || g.From != pgwal.SegmentName(1, 5, segSize) || g.Segments != 1 || g.FromLSN != lsn(5, 0) || g.ToLSN != lsn(6, 0) ||
		fmt.Sprint(g.CutShort) != fmt.Sprint([]string{f.b1.ID}) || g.ResumeBackup != f.b2.ID || g.After.IsZero() {
		t.Errorf("gap = %+v", g)
	}
	for _, want := range []string{"segment " + g.From + " missing", "no restore can pass " + lsn(5, 0).String() + " on timeline 1", "unreachable from backups older than " + f.b2.ID} {
		if !strings.Contains(g.Message, want) {
			t.Errorf("message %q lacks %q", g.Message, want)
		}
	}
}

func TestGapAfterNewestBackup(t *testing.T) {
	f := newFixture(t)
	// Timeline 2's segment 8 holds b2; the next one goes missing while
	// later ones exist.
	f.tr.Write(t, repo.WALSegmentKey(2, 10, segSize), waltest.Segment(2, 10, waltest.SysID, 2))
	rep := f.run(t, Options{})
	// The streamed partial of 9 is not the newest WAL any more: 9 is a gap.
	if len(rep.Gaps) != 1 || rep.Gaps[0].From != pgwal.SegmentName(2, 9, segSize) || !strings.Contains(rep.Gaps[0].Message, "unreachable from every backup") {
		t.Fatalf("gaps = %+v", rep.Gaps)
	}
}

func TestWrongKey(t *testing.T) {
	f := newFixture(t)
	r := f.tr.Open(t, repotest.Keys(repotest.NewIdentity(t)))
	rep := runOn(t, r, f.dir, Options{})
	for _, kind := range []string{"segment", "history", "manifest", "stream"} {
		if p, ok := findProblem(rep, f.keys[kind]); !ok || p.Kind != KindWrongKey || !errors.Is(p.Err, repo.ErrWrongKey) {
			t.Errorf("%s: problem %+v, want wrong-key", f.keys[kind], p)
		}
	}
	if rep.OK {
		t.Error("ok with a wrong key")
	}
}

func TestNoIdentity(t *testing.T) {
	f := newFixture(t)
	r := f.tr.Open(t, repo.Options{})
	if _, err := Run(context.Background(), r, Options{}); !errors.Is(err, repo.ErrNoIdentity) {
		t.Fatalf("err = %v, want ErrNoIdentity", err)
	}
}

func TestOrphanChunks(t *testing.T) {
	f := newFixture(t)
	id := repo.NewBackupID(time.Now().UTC())
	f.tr.Write(t, repo.BackupChunkKey(id, "base.tar", 0), []byte("half a backup"))
	f.tr.Write(t, repo.BackupChunkKey(id, "base.tar", 1), []byte("the other half"))
	rep := f.run(t, Options{})
	if !rep.OK || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "backups/"+id+"/: 2 chunks without a manifest") {
		t.Fatalf("ok=%v problems=%v warnings=%v", rep.OK, rep.Problems, rep.Warnings)
	}
	if want := countObjects(t, f.dir) - 2; rep.Objects != want {
		t.Errorf("objects = %d, want %d (orphans are not read)", rep.Objects, want)
	}
}

func TestSelection(t *testing.T) {
	f := newFixture(t)
	f.flip(t, f.keys["chunk"])
	f.flip(t, f.keys["segment"])
	f.flip(t, f.b2.Archives[0].Chunks[0].Key)

	rep := f.run(t, Options{WALOnly: true})
	if _, ok := findProblem(rep, f.keys["chunk"]); ok || len(rep.Problems) != 1 {
		t.Errorf("wal-only: problems=%v, want the segment only", rep.Problems)
	}
	rep = f.run(t, Options{BackupsOnly: true})
	if _, ok := findProblem(rep, f.keys["segment"]); ok || len(rep.Problems) != 2 {
		t.Errorf("backups-only: problems=%v, want the two chunks only", rep.Problems)
	}
	// b2 needs only segment 8 of timeline 2.
	rep = f.run(t, Options{BackupID: f.b2.ID})
	if len(rep.Problems) != 1 || rep.Problems[0].Key != f.b2.Archives[0].Chunks[0].Key {
		t.Errorf("backup %s: problems=%v, want its chunk only", f.b2.ID, rep.Problems)
	}
	if _, err := Run(context.Background(), f.r, Options{BackupID: "20200101T000000Z"}); !storage.IsNotExist(err) {
		t.Errorf("unknown backup: err = %v", err)
	}
	if _, err := Run(context.Background(), f.r, Options{WALOnly: true, BackupsOnly: true}); err == nil {
		t.Error("WALOnly and BackupsOnly together accepted")
	}
}

func TestCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, f.r, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestMisplacedSegment(t *testing.T) {
	for name, data := range map[string][]byte{
		"other segment": waltest.Segment(1, 5, waltest.SysID, 1),
		"other cluster": waltest.Segment(1, 4, waltest.SysID+1, 1),
		"short":         waltest.Segment(1, 4, waltest.SysID, 1)[:segSize/2],
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			key := f.keys["segment"]
			f.remove(t, key)
			f.tr.Write(t, key, data) // a sound object holding the wrong data
			rep := f.run(t, Options{})
			if p, ok := findProblem(rep, key); !ok || p.Kind != KindDamaged || len(rep.Problems) != 1 {
				t.Fatalf("problems = %v, want %s damaged", rep.Problems, key)
			}
		})
	}
}

func TestBoundedWorkers(t *testing.T) {
	f := newFixture(t)
	// Each Get waits a little, so that reads overlap.
	cs := faulty.Wrap(f.tr.Store)
	cs.Inject(faulty.Fault{Ops: faulty.Get, Delay: 2 * time.Millisecond})
	r := repotest.New(t, repotest.OnStore(cs), repotest.WithIdentity(f.tr.Identity))
	rep := runOn(t, r.Repository, f.dir, Options{Workers: 2})
	if !rep.OK || cs.Peak(faulty.Get) > 2 {
		t.Fatalf("ok=%v peak concurrent reads %d, want at most 2", rep.OK, cs.Peak(faulty.Get))
	}
}

// TestConfigOfAnotherCluster: a walvault.json that names another system
// than the backups (one flipped digit, or the file of another repository)
// is reported on walvault.json itself, and on each manifest, which restore
// refuses; before, verify --backups-only called such a repository OK.
func TestConfigOfAnotherCluster(t *testing.T) {
	f := newFixture(t)
	p := f.path(repo.ConfigKey)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	own, other := fmt.Sprint(waltest.SysID), fmt.Sprint(waltest.SysID+1)
	b = bytes.Replace(b, []byte(`"`+own+`"`), []byte(`"`+other+`"`), 1)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.tr.Open(t, f.tr.Keys)
	rep := runOn(t, r, f.dir, Options{BackupsOnly: true})
	pc, ok := findProblem(rep, repo.ConfigKey)
	if rep.OK || !ok || pc.Kind != KindMismatch || !strings.Contains(pc.Error, own) || !strings.Contains(pc.Error, other) {
		t.Fatalf("walvault.json of another system: ok=%v problems=%v", rep.OK, rep.Problems)
	}
	for _, m := range []*repo.BackupManifest{f.b1, f.b2} {
		if pm, ok := findProblem(rep, repo.BackupManifestKey(m.ID)); !ok || pm.Kind != KindMismatch {
			t.Errorf("manifest of %s naming system %s in a repository of %s: not reported (%v)", m.ID, own, other, rep.Problems)
		}
	}
}

// TestSignedConfigRefused: in a format-2 repository, a walvault.json whose
// signature fails (altered), or whose root the reader does not trust
// (another repository's identity file), is reported as a problem of
// walvault.json itself: damaged, and wrong-key.
func TestSignedConfigRefused(t *testing.T) {
	tr := repotest.New(t, repotest.OnDisk(), repotest.Signed())
	tr.Write(t, repo.WALSegmentKey(1, 1, segSize), waltest.Segment(1, 1, waltest.SysID, 1))

	// Another root: the identity file of another repository.
	other := repotest.NewRoot(t)
	stranger := tr.Open(t, repo.Options{Identities: tr.Keys.Identities, TrustedRoots: []crypto.RootPublicKey{other.Public()}})
	rep := runOn(t, stranger, tr.Dir, Options{})
	if p, ok := findProblem(rep, repo.ConfigKey); rep.OK || !ok || p.Kind != KindWrongKey {
		t.Errorf("reader trusting another root: ok=%v problems=%v, want walvault.json wrong-key", rep.OK, rep.Problems)
	}

	// Altered: one digit of the system identifier.
	p := filepath.Join(tr.Dir, repo.ConfigKey)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	own, other2 := fmt.Sprint(waltest.SysID), fmt.Sprint(waltest.SysID+1)
	b = bytes.Replace(b, []byte(`"`+own+`"`), []byte(`"`+other2+`"`), 1)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep = runOn(t, tr.Open(t, tr.Keys), tr.Dir, Options{})
	if p, ok := findProblem(rep, repo.ConfigKey); rep.OK || !ok || p.Kind != KindDamaged || !strings.Contains(p.Error, "altered") {
		t.Errorf("altered walvault.json: ok=%v problems=%v, want walvault.json damaged", rep.OK, rep.Problems)
	}
}
