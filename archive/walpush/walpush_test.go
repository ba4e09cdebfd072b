package walpush

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
)

func writeWAL(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPushIdempotentAndConflict(t *testing.T) {
	tr := repotest.New(t)
	r := tr.Repository
	ctx := context.Background()
	wal := t.TempDir()
	name := pgwal.SegmentName(1, 5, waltest.SegSize)
	seg := waltest.Segment(1, 5, waltest.SysID, 1)
	p := writeWAL(t, wal, name, seg)

	res, err := Push(ctx, r, p, Options{})
	if err != nil || !res.Stored {
		t.Fatalf("first push: %+v %v", res, err)
	}
	key := repo.WALKey(mustParse(t, name))
	before := tr.Raw(t, key)
	// Same content again: success, nothing rewritten.
	res, err = Push(ctx, r, p, Options{})
	if err != nil || res.Stored {
		t.Fatalf("second push: %+v %v", res, err)
	}
	// Different content under the same name: archived beside it (never
	// a failure PostgreSQL would retry forever), the stored copy intact.
	other := waltest.Segment(1, 5, waltest.SysID, 2)
	p2 := writeWAL(t, t.TempDir(), name, other)
	res, err = Push(ctx, r, p2, Options{})
	if err != nil || !res.Stored || !strings.Contains(res.Conflict, key) {
		t.Fatalf("conflicting push: %+v %v", res, err)
	}
	if after := tr.Raw(t, key); string(before) != string(after) {
		t.Fatal("stored object changed after a conflicting push")
	}
	alts, err := r.WALAlternates(ctx, mustParse(t, name))
	if err != nil || len(alts) != 1 {
		t.Fatalf("alternates %v %v", alts, err)
	}
	if got, _, err := r.Get(ctx, alts[0]); err != nil || string(got) != string(other) {
		t.Fatalf("alternate: %v", err)
	}
	// Again: the same alternate, nothing new.
	if res, err := Push(ctx, r, p2, Options{}); err != nil || !strings.Contains(res.Conflict, alts[0]) {
		t.Fatalf("conflicting push again: %+v %v", res, err)
	}
	got, _, err := r.Get(ctx, key)
	if err != nil || string(got) != string(seg) {
		t.Fatalf("round trip: %v", err)
	}
}

func mustParse(t *testing.T, name string) pgwal.FileName {
	f, err := pgwal.ParseFileName(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPushRefusesForeignAndBadFiles(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	dir := t.TempDir()
	name := pgwal.SegmentName(1, 7, waltest.SegSize)
	if _, err := Push(ctx, r, writeWAL(t, dir, name, waltest.Segment(1, 7, 42, 1)), Options{}); !errors.Is(err, repo.ErrClusterMismatch) {
		t.Fatalf("foreign cluster: %v", err)
	}
	// A segment whose header says it is another segment.
	name8 := pgwal.SegmentName(1, 8, waltest.SegSize)
	if _, err := Push(ctx, r, writeWAL(t, dir, name8, waltest.Segment(1, 9, waltest.SysID, 1)), Options{}); !errors.Is(err, ErrBadFile) {
		t.Fatalf("misnamed segment: %v", err)
	}
	if _, err := Push(ctx, r, writeWAL(t, dir, pgwal.SegmentName(1, 10, waltest.SegSize), []byte("short")), Options{}); !errors.Is(err, ErrBadFile) {
		t.Fatalf("short segment: %v", err)
	}
	if _, err := Push(ctx, r, writeWAL(t, dir, "pg_control", []byte("x")), Options{}); !errors.Is(err, ErrBadFile) {
		t.Fatalf("not a WAL name: %v", err)
	}
	if _, err := Push(ctx, r, filepath.Join(dir, pgwal.SegmentName(1, 11, waltest.SegSize)), Options{}); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestPushHistoryAndBackupFiles(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"00000002.history":                         "1\t0/3000000\tno recovery target specified\n",
		"000000010000000000000002.00000028.backup": "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
	} {
		if _, err := Push(ctx, r, writeWAL(t, dir, name, []byte(body)), Options{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _, err := r.Get(ctx, repo.WALKey(mustParse(t, name)))
		if err != nil || string(got) != body {
			t.Fatalf("%s round trip: %q %v", name, got, err)
		}
	}
}

func TestPushAhead(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	wal := t.TempDir()
	if err := os.Mkdir(filepath.Join(wal, "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	var names []string
	for segno := uint64(1); segno <= 5; segno++ {
		name := pgwal.SegmentName(1, segno, waltest.SegSize)
		names = append(names, name)
		writeWAL(t, wal, name, waltest.Segment(1, segno, waltest.SysID, 3))
		writeWAL(t, filepath.Join(wal, "archive_status"), name+".ready", nil)
	}
	res, err := Push(ctx, r, filepath.Join(wal, names[0]), Options{PushAhead: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ahead) != 2 || res.Ahead[0] != names[1] || res.Ahead[1] != names[2] {
		t.Fatalf("ahead = %v", res.Ahead)
	}
	// The archiver's own call for an ahead segment finds it stored.
	res, err = Push(ctx, r, filepath.Join(wal, names[1]), Options{})
	if err != nil || res.Stored {
		t.Fatalf("later call: %+v %v", res, err)
	}
}

// TestPushStoreDownReturnsError: a failing lookup returns the error (and,
// regression, the file is not unmapped while it is still being hashed).
func TestPushStoreDownReturnsError(t *testing.T) {
	tr := repotest.New(t)
	// Every header read fails as an unreachable store would.
	fs := faulty.Wrap(tr.Store)
	fs.Inject(faulty.Fault{Ops: faulty.Reads, Key: faulty.Prefix(repo.WALPrefix), Err: storage.Transient(errors.New("connection refused"))})
	down := repotest.New(t, repotest.OnStore(fs), repotest.WithIdentity(tr.Identity)).Repository
	dir := t.TempDir()
	for i := uint64(1); i <= 20; i++ {
		name := pgwal.SegmentName(1, i, waltest.SegSize)
		p := writeWAL(t, dir, name, waltest.Segment(1, i, waltest.SysID, 1))
		if _, err := Push(context.Background(), down, p, Options{}); !storage.IsTransient(err) {
			t.Fatalf("push with the store down: %v", err)
		}
	}
}

// A segment whose pages do not fit its name is refused before anything is
// stored: a later timeline than the name's, or, with the history in pg_wal,
// timeline 1's segment named as timeline 2's before timeline 2 began.
func TestPushRefusesPagesOfOtherTimelines(t *testing.T) {
	r := repotest.New(t).Repository
	ctx := context.Background()
	dir := t.TempDir()
	later := waltest.SetPageHeaders(waltest.Segment(1, 7, waltest.SysID, 1), 0, func(i int) uint32 { return 1 + uint32(i/100) })
	p := writeWAL(t, dir, pgwal.SegmentName(1, 7, waltest.SegSize), later)
	if _, err := Push(ctx, r, p, Options{}); !errors.Is(err, ErrBadFile) || !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("later timeline in the pages: %v", err)
	}
	old := waltest.SetPageHeaders(waltest.Segment(1, 8, waltest.SysID, 1), 0, func(int) uint32 { return 1 })
	name := pgwal.SegmentName(2, 8, waltest.SegSize)
	p = writeWAL(t, dir, name, old)
	// Without the history the archiver cannot judge: it archives.
	if _, err := Push(ctx, r, p, Options{}); err != nil {
		t.Fatalf("no history in pg_wal: %v", err)
	}
	writeWAL(t, dir, "00000002.history", []byte("1\t0/A00000\tno recovery target specified\n"))
	p = writeWAL(t, dir, pgwal.SegmentName(2, 9, waltest.SegSize), waltest.SetPageHeaders(waltest.Segment(1, 9, waltest.SysID, 1), 0, func(int) uint32 { return 1 }))
	if _, err := Push(ctx, r, p, Options{}); !errors.Is(err, ErrBadFile) || !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("timeline 1 under timeline 2's name: %v", err)
	}
	if ok, _ := r.HasWAL(ctx, mustParse(t, pgwal.SegmentName(2, 9, waltest.SegSize))); ok {
		t.Fatal("refused segment stored")
	}
}

// In a format-2 repository each pushed segment gets its signed head, after
// the segment; pushing again (the segment stored, its head lost in a
// crash) writes the head too.
func TestPushWritesHead(t *testing.T) {
	tr := repotest.New(t, repotest.Signed())
	ctx := context.Background()
	dir := t.TempDir()
	name := pgwal.SegmentName(1, 5, waltest.SegSize)
	p := writeWAL(t, dir, name, waltest.Segment(1, 5, waltest.SysID, 1))
	if _, err := Push(ctx, tr.Repository, p, Options{}); err != nil {
		t.Fatal(err)
	}
	heads, _, err := tr.WALHeads(ctx)
	if err != nil || heads[1].File.Name != name {
		t.Fatalf("heads %+v, %v", heads, err)
	}
	if err := tr.Store.Delete(ctx, heads[1].Key); err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx, tr.Repository, p, Options{}); err != nil {
		t.Fatal(err)
	}
	if heads, _, err := tr.WALHeads(ctx); err != nil || heads[1].File.Name != name {
		t.Fatalf("after re-push: heads %+v, %v", heads, err)
	}
}
