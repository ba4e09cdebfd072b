package basebackup

// Helpers for tests against a real PostgreSQL: a throwaway cluster whose
// archive_command copies WAL into a directory, a goroutine that plays
// wal-push (stores those files in the repository, where Run looks for
// them), an age-encrypted repository on a local store that fails on
// demand, and tar reassembly and extraction.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/pgtest"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
	"github.com/walvault/walvault/storage/local"
)

// pgEnv is a running cluster with archiving into ArchiveDir.
type pgEnv struct {
	Srv        *pgtest.Server
	ArchiveDir string
	Cluster    replconn.Cluster
}

func startPG(t *testing.T, settings ...string) *pgEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := pgtest.Start(t, pgtest.Options{Archive: true, Settings: settings})
	e := &pgEnv{Srv: srv, ArchiveDir: srv.ArchiveDir}
	ctx := context.Background()
	conn, err := replconn.Connect(ctx, srv.ConnString)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if e.Cluster, err = replconn.Identify(ctx, conn); err != nil {
		t.Fatal(err)
	}
	return e
}

// testRepo is an age-encrypted repository for e's cluster on a local
// store wrapped by a faulty.Store (Faults), to fail on demand.
type testRepo struct {
	*repotest.Repo
	Faults *faulty.Store
}

func newTestRepo(t *testing.T, c replconn.Cluster) *testRepo {
	t.Helper()
	ls, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := faulty.Wrap(ls)
	r := repotest.New(t, repotest.OnStore(fs), repotest.WithConfig(func(cfg *repo.Config) {
		cfg.SystemIdentifier, cfg.PGMajor, cfg.WALSegmentSize = fmt.Sprint(c.SystemIdentifier), c.Major, c.WALSegmentSize
	}))
	return &testRepo{Repo: r, Faults: fs}
}

// failBackupPutsAfter makes every Put under backups/ fail once n of them
// have succeeded.
func (r *testRepo) failBackupPutsAfter(n int) {
	r.Faults.Inject(faulty.Fault{Ops: faulty.Put, Key: faulty.Prefix(repo.BackupPrefix), Skip: n, Err: errInjected})
}

var errInjected = errors.New("injected store failure")

// pushWAL stores every WAL file that appears in dir in r, as wal-push
// would, until the test ends.
func pushWAL(t *testing.T, r *testRepo, dir string) { pushWALFiles(t, r, dir, false) }

// pushWALFiles is pushWAL; with markersOnly it stores empty objects
// under the WAL keys instead (Run only checks that they exist), which keeps
// the cost of sealing WAL out of measurements.
func pushWALFiles(t *testing.T, r *testRepo, dir string, markersOnly bool) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		done := map[string]bool{}
		for ctx.Err() == nil {
			entries, _ := os.ReadDir(dir)
			for _, de := range entries {
				f, err := pgwal.ParseFileName(de.Name())
				if err != nil || done[de.Name()] {
					continue
				}
				if markersOnly {
					err = r.Faults.Put(ctx, repo.WALKey(f), bytes.NewReader(nil), storage.PutOptions{IfAbsent: true})
				} else {
					var data []byte
					if data, err = os.ReadFile(filepath.Join(dir, de.Name())); err != nil {
						continue
					}
					_, err = r.Put(ctx, repo.WALKey(f), data, storage.PutOptions{IfAbsent: true})
				}
				if err == nil || storage.IsExist(err) {
					done[de.Name()] = true
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

// reassemble reads an archive's chunks and checks each against the
// manifest's record of it.
func reassemble(t *testing.T, r *repo.Repository, a repo.Archive) []byte {
	t.Helper()
	var out []byte
	for i, c := range a.Chunks {
		plain, h, err := r.Get(context.Background(), c.Key)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(plain)) != c.Size || h.SHA256Hex() != c.SHA256 {
			t.Fatalf("%s chunk %d: %d bytes %s, manifest says %d %s", a.Name, i, len(plain), h.SHA256Hex(), c.Size, c.SHA256)
		}
		out = append(out, plain...)
	}
	if int64(len(out)) != a.Bytes {
		t.Fatalf("%s: %d bytes, manifest says %d", a.Name, len(out), a.Bytes)
	}
	return out
}

// tarNames lists the members of a tar file, failing on a malformed one
// or one that does not end with the end-of-archive blocks (1024 zero
// bytes, and nothing but zeros after the last member).
func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	br := bytes.NewReader(data)
	tr := tar.NewReader(br)
	end := 0 // end of the last member's padded data
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar after %d members: %v", len(names), err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatal(err)
		}
		end = (len(data) - br.Len() + 511) / 512 * 512
		names = append(names, h.Name)
	}
	if rest := data[end:]; len(rest) < 1024 || !bytes.Equal(rest, make([]byte, len(rest))) {
		t.Fatalf("tar ends with %d bytes after its last member, not end-of-archive blocks", len(rest))
	}
	return names
}

// extractTar writes a tar file's directories, regular files and symlinks
// under dir.
func extractTar(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
			t.Fatalf("tar member %q escapes", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o700)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
				err = os.WriteFile(p, mustReadAll(t, tr), 0o600)
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		default:
			t.Fatalf("tar member %q of type %q", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func mustReadAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
