package filestorepush

// Two databases of one repository share filestore objects: these tests push
// the same files from both, one after the other and at once, and a file whose
// content contradicts its name.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/restore/filestorefetch"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/local"
)

// handle is the store as one walvault process sees it: a faulty.Store over
// the shared directory that records the outcome of every Put of a
// filestore object, and can hide those objects from Stat (so the streaming
// path's check misses them and the conditional Put decides) or hold each
// such Put until a meeting's parties have arrived (so concurrent passes all
// find the key absent and race for it). Handles of several processes share
// one meeting.
type handle struct {
	*faulty.Store

	mu   sync.Mutex
	puts map[string][]error
}

// openShared opens the repository directory dir as one more process would.
func openShared(t *testing.T, dir string) *handle {
	t.Helper()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &handle{Store: faulty.Wrap(st), puts: make(map[string][]error)}
	h.Inject(faulty.Fault{Ops: faulty.Put, Key: faulty.Prefix(repo.FilestoreObjectPrefix), After: func(c faulty.Call, err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.puts[c.Key] = append(h.puts[c.Key], err)
	}})
	return h
}

// hideStat makes Stat miss the filestore objects.
func (h *handle) hideStat() {
	h.Inject(faulty.Fault{Ops: faulty.Stat, Key: faulty.Prefix(repo.FilestoreObjectPrefix), Err: storage.ErrNotExist})
}

// holdPuts holds each Put of a filestore object until m releases it.
func (h *handle) holdPuts(m *meeting) {
	h.Inject(faulty.Fault{Ops: faulty.Put, Key: faulty.Prefix(repo.FilestoreObjectPrefix), Before: func(ctx context.Context, c faulty.Call) error {
		return m.wait(ctx, c.Key)
	}})
}

// putsOf are the outcomes of this handle's Puts of the object of name.
func (h *handle) putsOf(name string) []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.puts[repo.FilestoreObjectKey(name)])
}

// meeting releases the Puts of a key once parties of them have arrived.
type meeting struct {
	parties int
	mu      sync.Mutex
	keys    map[string]*gate
}

type gate struct {
	n    int
	open chan struct{}
}

func (m *meeting) wait(ctx context.Context, key string) error {
	m.mu.Lock()
	g := m.keys[key]
	if g == nil {
		g = &gate{open: make(chan struct{})}
		m.keys[key] = g
	}
	g.n++
	if g.n == m.parties {
		close(g.open)
	}
	m.mu.Unlock()
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		return fmt.Errorf("%s: %d of %d passes reached the upload: %w", key, g.n, m.parties, ctx.Err())
	}
}

// db is one Odoo database: its filestore, its walvault state directory and
// the walvault process that pushes it (its own handle on the repository).
type db struct {
	name  string
	opts  Options
	st    *handle
	r     *repo.Repository
	files map[string][]byte // what its attachments reference
}

func newDB(t *testing.T, name string, st *handle, id *age.X25519Identity) *db {
	t.Helper()
	return &db{
		name:  name,
		opts:  Options{DB: name, Dir: t.TempDir(), StateDir: t.TempDir(), RepoID: "r1", Workers: 4},
		st:    st,
		r:     repotest.New(t, repotest.OnStore(st), repotest.WithIdentity(id)).Repository,
		files: make(map[string][]byte),
	}
}

// add writes a file the database references.
func (d *db) add(t *testing.T, content []byte) string {
	t.Helper()
	name := addFile(t, d.opts.Dir, content)
	d.files[name] = content
	return name
}

func (d *db) push(t *testing.T) *Report {
	t.Helper()
	rep, err := Push(context.Background(), d.r, d.opts)
	if err != nil {
		t.Fatalf("push %s: %v (%+v)", d.name, err, rep)
	}
	return rep
}

// logged is the set of files d's log says its filestore holds now.
func (d *db) logged(t *testing.T) map[string]bool {
	t.Helper()
	return loggedState(t, d.r, d.name)
}

// checkRestore restores d's filestore as `walvault restore` does, from the
// files its log lists, into an empty directory: every file d references
// comes back with its content, and the log lists nothing else.
func (d *db) checkRestore(t *testing.T) {
	t.Helper()
	logged := d.logged(t)
	var refs []filestorefetch.Ref
	for name := range logged {
		if _, ok := d.files[name]; !ok {
			t.Errorf("%s: the log lists %s, which the database does not reference", d.name, name)
		}
		refs = append(refs, filestorefetch.Ref{StoreFname: name, Checksum: name[3:]})
	}
	for name := range d.files {
		if !logged[name] {
			t.Errorf("%s: the log lacks %s", d.name, name)
		}
	}
	dir := filepath.Join(t.TempDir(), "filestore", d.name)
	rep, err := filestorefetch.Fetch(context.Background(), d.r, refs, dir, filestorefetch.FetchOptions{})
	if err != nil {
		t.Fatalf("restore %s: %v (%+v)", d.name, err, rep)
	}
	for name, want := range d.files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("restore %s: %s came back wrong (%d bytes, want %d): %v", d.name, name, len(got), len(want), err)
		}
	}
}

// sealed returns the objects of names as stored: sealing is randomised, so
// equal bytes later mean the object was not written again.
func sealed(t *testing.T, st storage.Store, names ...string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	for _, n := range names {
		rc, err := st.Get(context.Background(), repo.FilestoreObjectKey(n))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

func checkUnchanged(t *testing.T, st storage.Store, before map[string][]byte) {
	t.Helper()
	for n, b := range sealed(t, st, slices.Collect(maps.Keys(before))...) {
		if !bytes.Equal(b, before[n]) {
			t.Errorf("object %s was written again", n)
		}
	}
}

// large is content above StreamThreshold (so it is streamed), different
// for each seed; it repeats a random block, which keeps sealing it quick.
func large(seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	block := make([]byte, 64<<10)
	rand.NewChaCha8(s).Read(block)
	return bytes.Repeat(block, StreamThreshold/len(block)+1)
}

func sharedFiles() (small, big []byte) {
	return []byte("logo.png, attached in both databases"), large(1)
}

// The second database to push a file another database stored finds the
// object there, counts the file as stored, logs it and writes nothing; a
// restore of either database gets the file back.
func TestPushSameFileFromTwoDatabases(t *testing.T) {
	tests := []struct {
		name string
		// reversed: staging pushes first.
		reversed bool
		// noCache: the second pass has no cache, so it trusts the
		// repository's listing instead of trying to upload.
		noCache bool
		// hideStat: the second process's Stat misses the large object,
		// so the streaming path's conditional Put is what refuses it.
		hideStat bool
	}{
		{name: "prod then staging"},
		{name: "staging then prod", reversed: true},
		{name: "second without cache", noCache: true},
		{name: "streamed upload refused by IfAbsent", hideStat: true},
		{name: "streamed upload refused by IfAbsent, reversed", hideStat: true, reversed: true},
	}
	small, big := sharedFiles()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			id := repotest.NewIdentity(t)
			names := []string{"prod", "staging"}
			if tt.reversed {
				slices.Reverse(names)
			}
			first := newDB(t, names[0], openShared(t, dir), id)
			sst := openShared(t, dir)
			if tt.hideStat {
				sst.hideStat()
			}
			second := newDB(t, names[1], sst, id)
			// Each database has pushed before: both have a cache and a log.
			first.add(t, []byte("only in "+first.name))
			second.add(t, []byte("only in "+second.name))
			first.push(t)
			second.push(t)
			if tt.noCache {
				if err := os.Remove(filepath.Join(second.opts.StateDir, cacheFile)); err != nil {
					t.Fatal(err)
				}
			}

			s, b := first.add(t, small), first.add(t, big)
			second.add(t, small)
			second.add(t, big)
			rep := first.push(t)
			if rep.Uploaded != 2 || rep.Existing != 0 || rep.Bytes != int64(len(small)+len(big)) {
				t.Fatalf("first pass %+v, want both files uploaded", rep)
			}
			before := sealed(t, first.st, s, b)

			rep = second.push(t)
			found := rep.Existing
			if tt.noCache {
				found = rep.Known - 1 // its own file counts too
			}
			if found != 2 || rep.Uploaded != 0 || rep.Bytes != 0 || rep.StoredBytes != 0 || len(rep.Mismatched) != 0 || rep.Record == "" {
				t.Fatalf("second pass %+v, want both files found stored, none uploaded, a record written", rep)
			}
			// What reached storage: the small file's conditional Put was
			// refused; the large one was stopped by Stat before sealing,
			// or refused the same way when Stat missed it.
			wantPuts := map[string]int{s: 1, b: 0}
			switch {
			case tt.noCache:
				wantPuts = map[string]int{s: 0, b: 0}
			case tt.hideStat:
				wantPuts[b] = 1
			}
			for name, want := range wantPuts {
				puts := second.st.putsOf(name)
				if len(puts) != want {
					t.Errorf("%s: %d Puts by the second pass, want %d", name, len(puts), want)
				}
				for _, err := range puts {
					if !storage.IsExist(err) {
						t.Errorf("%s: Put by the second pass gave %v, want the IfAbsent refusal", name, err)
					}
				}
			}
			checkUnchanged(t, second.st, before)

			// The cache now holds the files: the next pass reads nothing.
			rep = second.push(t)
			if rep.Unchanged != 3 || rep.Record != "" {
				t.Fatalf("third pass %+v, want everything unchanged", rep)
			}
			first.checkRestore(t)
			second.checkRestore(t)
		})
	}
}

// Two databases pushing the same files at once: each object is written
// once, by whichever pass gets there first; the other pass's conditional
// Put is refused and counts as success. Both logs list both files.
func TestPushSameFileFromTwoDatabasesAtOnce(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			dir := t.TempDir()
			id := repotest.NewIdentity(t)
			dbs := []*db{newDB(t, "prod", openShared(t, dir), id), newDB(t, "staging", openShared(t, dir), id)}
			if cached {
				for _, d := range dbs {
					d.add(t, []byte("only in "+d.name))
					d.push(t)
				}
			}
			// From here every object Put waits for the other pass's.
			meet := &meeting{parties: len(dbs), keys: make(map[string]*gate)}
			for _, d := range dbs {
				d.st.holdPuts(meet)
			}
			small, big := sharedFiles()
			var names []string
			for _, d := range dbs {
				names = []string{d.add(t, small), d.add(t, big)}
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			reps := make([]*Report, len(dbs))
			errs := make([]error, len(dbs))
			var wg sync.WaitGroup
			for i, d := range dbs {
				wg.Go(func() { reps[i], errs[i] = Push(ctx, d.r, d.opts) })
			}
			wg.Wait()
			uploaded, existing := 0, 0
			for i, d := range dbs {
				if errs[i] != nil {
					t.Fatalf("push %s: %v", d.name, errs[i])
				}
				if r := reps[i]; r.Uploaded+r.Existing != 2 || r.Known != 0 || len(r.Mismatched) != 0 || r.Record == "" {
					t.Fatalf("push %s: %+v, want both files stored or found, a record written", d.name, r)
				}
				uploaded += reps[i].Uploaded
				existing += reps[i].Existing
			}
			if uploaded != 2 || existing != 2 {
				t.Fatalf("%d uploads and %d found stored, want each file uploaded once and found once", uploaded, existing)
			}
			for _, name := range names {
				var refused int
				for _, d := range dbs {
					for _, err := range d.st.putsOf(name) {
						if storage.IsExist(err) {
							refused++
						} else if err != nil {
							t.Errorf("%s: Put by %s: %v", name, d.name, err)
						}
					}
				}
				if refused != 1 {
					t.Errorf("%s: %d Puts refused, want 1", name, refused)
				}
			}
			for _, d := range dbs {
				d.checkRestore(t)
			}
		})
	}
}

// A database whose file does not hash to its name (corrupted on disk) never
// replaces the object another database stored under that name, and stores
// nothing of its own: the pass succeeds, lists the file as mismatched, warns,
// and leaves it out of the database's log.
func TestPushMismatchedFileUnderSharedName(t *testing.T) {
	tests := []struct {
		name string
		// corruptFirst: the corrupted database pushes before the good one.
		corruptFirst bool
		// noCache: the corrupted database has no cache.
		noCache bool
	}{
		{name: "good copy stored first"},
		{name: "corrupted copy pushed first", corruptFirst: true},
		{name: "corrupted copy pushed first without cache", corruptFirst: true, noCache: true},
		{name: "good copy stored first, corrupted pass without cache", noCache: true},
	}
	small, big := sharedFiles()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			id := repotest.NewIdentity(t)
			good, bad := newDB(t, "prod", openShared(t, dir), id), newDB(t, "staging", openShared(t, dir), id)
			var logs bytes.Buffer
			bad.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if !tt.noCache {
				bad.add(t, []byte("only in staging"))
				bad.push(t)
			}
			s, b := good.add(t, small), good.add(t, big)
			// Same names, other content: a flipped byte, and another
			// large file of the same size.
			rotten := bytes.Clone(small)
			rotten[0] ^= 1
			writeFile(t, bad.opts.Dir, s, rotten)
			writeFile(t, bad.opts.Dir, b, large(2))

			if !tt.corruptFirst {
				good.push(t)
			}
			before := map[string][]byte{}
			if !tt.corruptFirst {
				before = sealed(t, good.st, s, b)
			}
			rep := bad.push(t)
			switch {
			case tt.noCache && !tt.corruptFirst:
				// Without a cache the listing is the truth (see doc.go):
				// the stored objects are known and the files not read.
				// The log lists the names, whose stored content is the
				// right one for them.
				if rep.Known != 2 || len(rep.Mismatched) != 0 || rep.Uploaded != 0 {
					t.Fatalf("pass %+v, want both files known from the listing", rep)
				}
				bad.files[s], bad.files[b] = small, good.files[b]
			default:
				slices.Sort(rep.Mismatched)
				want := []string{s, b}
				slices.Sort(want)
				if !slices.Equal(rep.Mismatched, want) || rep.Uploaded != 0 || rep.Existing != 0 || rep.Added != 0 || rep.Removed != 0 {
					t.Fatalf("pass %+v, want both files mismatched, nothing stored or logged", rep)
				}
				for _, n := range want {
					if !strings.Contains(logs.String(), "does not match its name") || !strings.Contains(logs.String(), n) {
						t.Errorf("no warning names %s:\n%s", n, logs.String())
					}
					if puts := bad.st.putsOf(n); len(puts) != 0 {
						t.Errorf("%s: the corrupted pass tried to store it: %v", n, puts)
					}
				}
			}
			checkUnchanged(t, bad.st, before)
			if tt.corruptFirst {
				for _, n := range []string{s, b} {
					if _, err := bad.st.Stat(context.Background(), repo.FilestoreObjectKey(n)); !storage.IsNotExist(err) {
						t.Fatalf("%s stored from a file that does not match its name: %v", n, err)
					}
				}
				if rep := good.push(t); rep.Uploaded != 2 {
					t.Fatalf("good pass after the corrupted one: %+v, want both files uploaded", rep)
				}
			}
			good.checkRestore(t)
			bad.checkRestore(t)
		})
	}
}

// TestPushTwoDatabasesOneStateDir: a state directory given to the pushes of
// two databases (one --state-dir, or WALVAULT_FILESTORE_STATE_DIR in a config
// file both units read) must not let the second use the first's cache: it
// would take the shared file as already logged, leave it out of its own log,
// and expire could then delete the file its database still references.
func TestPushTwoDatabasesOneStateDir(t *testing.T) {
	st := openShared(t, t.TempDir())
	id := repotest.NewIdentity(t)
	prod, staging := newDB(t, "prod", st, id), newDB(t, "staging", st, id)
	staging.opts.StateDir = prod.opts.StateDir
	small, big := sharedFiles()
	for _, d := range []*db{prod, staging} {
		d.add(t, small)
		d.add(t, big)
	}
	prod.push(t)
	rep := staging.push(t)
	if rep.CacheNote == "" {
		t.Errorf("staging used prod's cache (no cache note)")
	}
	staging.checkRestore(t)
	prod.checkRestore(t)
	// And back: prod's next pass must not take staging's cache either.
	extra := prod.add(t, []byte("a new attachment of prod"))
	prod.push(t)
	if !prod.logged(t)[extra] {
		t.Errorf("prod's log lacks %s after sharing a state directory", extra)
	}
	prod.checkRestore(t)
}
