package filestorepush

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/memstore"
)

// addFile writes content the way Odoo does and returns its store_fname.
func addFile(t *testing.T, dir string, content []byte) string {
	t.Helper()
	sum := sha1.Sum(content)
	name := repo.FilestoreNameOf(hex.EncodeToString(sum[:]))
	writeFile(t, dir, name, content)
	return name
}

// writeFile writes content under the store_fname name, whatever its hash.
func writeFile(t *testing.T, dir, name string, content []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanSkipsWhatIsNotAnAttachment(t *testing.T) {
	dir := t.TempDir()
	a := addFile(t, dir, []byte("invoice"))
	os.MkdirAll(filepath.Join(dir, "checklist", a[:2]), 0o755)
	os.WriteFile(filepath.Join(dir, "checklist", a), nil, 0o644)
	os.WriteFile(filepath.Join(dir, a[:2], "notes.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "stray"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dir, "zz"), 0o755)
	es, skipped, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name != a || es[0].Size != 7 || es[0].Ino == 0 {
		t.Fatalf("entries %+v", es)
	}
	if skipped != 4 { // checklist/, notes.txt, stray, zz/
		t.Fatalf("skipped %d, want 4", skipped)
	}
}

func TestPushPasses(t *testing.T) {
	tr := repotest.New(t)
	r, st := tr.Repository, tr.Store
	ctx := context.Background()
	dir, state := t.TempDir(), t.TempDir()
	opts := Options{DB: "prod", Dir: dir, StateDir: state, RepoID: "r1", Workers: 3}
	var names []string
	for i := range 20 {
		names = append(names, addFile(t, dir, bytes.Repeat([]byte{byte(i)}, 100*i+1)))
	}
	big := addFile(t, dir, bytes.Repeat([]byte("big attachment "), StreamThreshold/15+1000))
	names = append(names, big)

	rep, err := Push(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Uploaded != 21 || rep.Kind != repo.FilestoreSnapshot || rep.Added != 21 {
		t.Fatalf("first pass %+v", rep)
	}
	for _, n := range names {
		rc, _, err := r.Open(ctx, repo.FilestoreObjectKey(n))
		if err != nil {
			t.Fatal(n, err)
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		rc.Close()
		if sum := sha1.Sum(b.Bytes()); err != nil || hex.EncodeToString(sum[:]) != n[3:] {
			t.Fatalf("%s stored wrong: %v", n, err)
		}
	}

	// Nothing changed: no file is read, no record written.
	rep, err = Push(ctx, r, opts)
	if err != nil || rep.Unchanged != 21 || rep.Uploaded+rep.Existing != 0 || rep.Record != "" {
		t.Fatalf("idle pass %+v %v", rep, err)
	}

	// Odoo's GC removes one, a new one arrives, one is corrupted on disk.
	os.Remove(filepath.Join(dir, filepath.FromSlash(names[0])))
	added := addFile(t, dir, []byte("new attachment"))
	bad := repo.FilestoreNameOf(strings.Repeat("e", 40))
	os.MkdirAll(filepath.Join(dir, "ee"), 0o755)
	os.WriteFile(filepath.Join(dir, filepath.FromSlash(bad)), []byte("rot"), 0o644)
	rep, err = Push(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != repo.FilestoreDelta || rep.Added != 1 || rep.Removed != 1 || rep.Uploaded != 1 || len(rep.Mismatched) != 1 || rep.Mismatched[0] != bad {
		t.Fatalf("delta pass %+v", rep)
	}
	if _, err := st.Stat(ctx, repo.FilestoreObjectKey(bad)); !storage.IsNotExist(err) {
		t.Fatalf("a file not matching its name was stored: %v", err)
	}

	// The log folds to exactly what the filestore holds (minus the bad file).
	recs, err := r.FilestoreLog(ctx, "prod")
	if err != nil || len(recs) != 2 {
		t.Fatalf("log %d records, %v", len(recs), err)
	}
	state1 := map[string]bool{}
	for _, rec := range recs {
		rec.Apply(state1)
	}
	want := append(append([]string{}, names[1:]...), added)
	if len(state1) != len(want) {
		t.Fatalf("fold has %d names, want %d", len(state1), len(want))
	}
	for _, n := range want {
		if !state1[n] {
			t.Fatalf("fold lacks %s", n)
		}
	}

	// Cache lost: the repository listing is the truth; nothing re-sent,
	// a snapshot is logged.
	os.Remove(filepath.Join(state, cacheFile))
	rep, err = Push(ctx, r, opts)
	if err != nil || rep.Known != len(want) || rep.Uploaded != 0 || rep.Kind != repo.FilestoreSnapshot {
		t.Fatalf("pass without cache %+v %v", rep, err)
	}

	// A second database with a shared file: stored once.
	dir2 := t.TempDir()
	addFile(t, dir2, []byte("new attachment"))
	rep, err = Push(ctx, r, Options{DB: "prod2", Dir: dir2, StateDir: t.TempDir(), RepoID: "r1"})
	if err != nil || rep.Known != 1 || rep.Uploaded != 0 {
		t.Fatalf("second database %+v %v", rep, err)
	}
}

func TestCacheRoundTrip(t *testing.T) {
	c := &Cache{Repo: "abc", Deltas: 3, Log: LogMark{Records: 4, Newest: "filestore/db/x/log/k"}, Files: map[string]FileStat{
		repo.FilestoreNameOf(strings.Repeat("a", 40)): {Size: 5, MtimeNs: -1, Ino: 9},
		repo.FilestoreNameOf(strings.Repeat("b", 40)): {},
	}}
	got, err := ParseCache(MarshalCache(c))
	if err != nil || got.Repo != c.Repo || got.Deltas != 3 || got.Log != c.Log || len(got.Files) != 2 || got.Files[repo.FilestoreNameOf(strings.Repeat("a", 40))] != (FileStat{5, -1, 9}) {
		t.Fatalf("%+v %v", got, err)
	}
	dir := t.TempDir()
	if err := SaveCache(dir, c); err != nil {
		t.Fatal(err)
	}
	if got, note := LoadCache(dir, "abc"); got == nil {
		t.Fatalf("load: %s", note)
	}
	if got, _ := LoadCache(dir, "other"); got != nil {
		t.Fatal("a cache of another repository was used")
	}
}

func FuzzParseCache(f *testing.F) {
	f.Add(MarshalCache(&Cache{Repo: "x", Files: map[string]FileStat{repo.FilestoreNameOf(strings.Repeat("a", 40)): {1, 2, 3}}}))
	f.Add([]byte(cacheMagic + "\nrepo x\ndeltas 1\nlog 0 \nzz 1 2 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCache(data)
		if err != nil {
			return
		}
		c2, err := ParseCache(MarshalCache(c))
		if err != nil || c2.Repo != c.Repo || c2.Deltas != c.Deltas || c2.Log != c.Log || fmt.Sprint(c2.Files) != fmt.Sprint(c.Files) {
			t.Fatalf("round trip: %+v vs %+v (%v)", c, c2, err)
		}
	})
}

// A stored file that changes on disk (bit rot) is not logged as removed:
// expire must keep the good object the database still references.
func TestPushKeepsStoredFileThatRots(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	dir, state := t.TempDir(), t.TempDir()
	opts := Options{DB: "prod", Dir: dir, StateDir: state, RepoID: "r1"}
	name := addFile(t, dir, []byte("invoice 42"))
	addFile(t, dir, []byte("invoice 43"))
	if _, err := Push(ctx, r, opts); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.WriteFile(p, []byte("invoice 4X"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	os.Chtimes(p, future, future)
	rep, err := Push(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Mismatched) != 1 || rep.Removed != 0 {
		t.Fatalf("pass after rot: %+v, want 1 mismatched and nothing removed", rep)
	}
	if !loggedState(t, r, "prod")[name] {
		t.Fatalf("the log says %s is gone while it is still on disk (rotten)", name)
	}
}

// A storage error that wraps "not exist" is a failure, not a file that
// vanished from the filestore.
func TestPushStorageErrorIsNotAVanishedFile(t *testing.T) {
	ctx := context.Background()
	// Every Put fails as a missing directory would.
	st := faulty.Wrap(memstore.New())
	broken := repotest.New(t, repotest.OnStore(st)).Repository
	st.Inject(faulty.Fault{Ops: faulty.Put, Err: fmt.Errorf("local put: %w", fs.ErrNotExist)})
	dir := t.TempDir()
	addFile(t, dir, []byte("invoice"))
	rep, err := Push(ctx, broken, Options{DB: "prod", Dir: dir, StateDir: t.TempDir(), RepoID: "r1"})
	if err == nil {
		t.Fatalf("push to a store that cannot write succeeded: %+v", rep)
	}
	if rep != nil && rep.Vanished != 0 {
		t.Fatalf("storage error counted as a vanished file: %+v", rep)
	}
}

// TestPushStaleCache: a cache that no longer matches the database's log (a
// state directory rolled back with a VM snapshot, a pass that stopped
// between its record and its cache, another pusher) must not be used. With
// it, a file deleted and then brought back (the snapshot restored the
// filestore too) would count as unchanged, no record would say it is
// present again, and expire could delete the object it is stored in.
func TestPushStaleCache(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	dir, state := t.TempDir(), t.TempDir()
	opts := Options{DB: "prod", Dir: dir, StateDir: state, RepoID: "r1"}
	content := []byte("the attachment that comes back")
	y := addFile(t, dir, content)
	addFile(t, dir, []byte("one that stays"))
	if _, err := Push(ctx, r, opts); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(state, cacheFile))
	if err != nil {
		t.Fatal(err)
	}
	yPath := filepath.Join(dir, filepath.FromSlash(y))
	st, err := os.Stat(yPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(yPath); err != nil {
		t.Fatal(err)
	}
	if rep, err := Push(ctx, r, opts); err != nil || rep.Removed != 1 {
		t.Fatalf("pass after the delete: %+v %v", rep, err)
	}
	// The rollback: the old cache and the file, with its old stat.
	if err := os.WriteFile(filepath.Join(state, cacheFile), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, y, content)
	if err := os.Chtimes(yPath, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	rep, err := Push(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CacheNote == "" {
		t.Errorf("a cache older than the log was used: %+v", rep)
	}
	if !loggedState(t, r, "prod")[y] {
		t.Errorf("the log does not list %s, present again on disk: expire could delete it", y)
	}
}

// A filestore that goes away mid-pass fails the pass: its files did not
// vanish, and logging them removed would let expire delete objects the
// database references.
func TestPushFilestoreGoneIsNotVanishedFiles(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mountPoint bool // the empty mount point stays
	}{{"folder gone", false}, {"empty mount point", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tr := repotest.New(t)
			r := tr.Repository
			dir := filepath.Join(t.TempDir(), "prod")
			a, b := addFile(t, dir, []byte("invoice 1")), addFile(t, dir, []byte("invoice 2"))
			opts := Options{DB: "prod", Dir: dir, StateDir: t.TempDir(), RepoID: "r1", Workers: 1}
			if _, err := Push(ctx, r, opts); err != nil {
				t.Fatal(err)
			}
			// Both changed on disk: the next pass reads them again.
			later := time.Unix(1_000_000_000, 0)
			for _, n := range []string{a, b} {
				if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(n)), later, later); err != nil {
					t.Fatal(err)
				}
			}
			// The first Put of the pass (after its own lock) takes the
			// filestore away, as an unmounted NFS share.
			u := faulty.Wrap(tr.Store)
			r2 := repotest.New(t, repotest.OnStore(u), repotest.WithIdentity(tr.Identity)).Repository
			u.Inject(faulty.Fault{Ops: faulty.Put, Key: func(key string) bool { return !strings.HasPrefix(key, repo.LockPrefix) }, Times: 1,
				Before: func(context.Context, faulty.Call) error {
					if err := os.Rename(dir, dir+".away"); err != nil {
						return err
					}
					if tc.mountPoint {
						return os.Mkdir(dir, 0o755)
					}
					return nil
				}})
			rep, err := Push(ctx, r2, opts)
			if err == nil || !strings.Contains(err.Error(), "went away during the pass") {
				t.Fatalf("pass over a filestore that went away: %+v %v", rep, err)
			}
			if rep.Vanished != 0 || rep.Removed != 0 {
				t.Fatalf("files counted as vanished: %+v", rep)
			}
			recs, err := r.FilestoreLog(ctx, "prod")
			if err != nil {
				t.Fatal(err)
			}
			state := map[string]bool{}
			for _, rec := range recs {
				rec.Apply(state)
			}
			if !state[a] || !state[b] {
				t.Fatalf("the log lost files of a filestore that went away: %v", state)
			}
		})
	}
}

// loggedState is the set of files db's log says its filestore holds now.
func loggedState(t *testing.T, r *repo.Repository, db string) map[string]bool {
	t.Helper()
	recs, err := r.FilestoreLog(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]bool{}
	for _, rec := range recs {
		rec.Apply(state)
	}
	return state
}
