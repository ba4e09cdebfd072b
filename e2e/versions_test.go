package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
)

// The supported PostgreSQL majors (archive/replconn.MinMajor and up). The
// rest of the suite runs on suite.pgBin (the Debian package's 15); each
// major here runs the core scenarios only, from its own server programs.
var supportedMajors = []int{13, 14, 15, 16, 17, 18}

// debianPGBin is where the Debian package installs PostgreSQL 15.
const debianPGBin = "/usr/lib/postgresql/15/bin"

// majorBin returns the directory of the server programs of a major:
// $WALVAULT_PG<major>_BIN if set, the Debian install for 15, else what
// scripts/fetch-postgres.sh unpacked ($WALVAULT_PG_CACHE, default
// /var/cache/walvault/pg). A major that is not there skips the test, or
// fails it under CI: CI must prove every supported version.
func majorBin(t *testing.T, major int) string {
	t.Helper()
	bin := os.Getenv(fmt.Sprintf("WALVAULT_PG%d_BIN", major))
	switch {
	case bin != "":
	case major == 15:
		bin = debianPGBin
	default:
		cache := os.Getenv("WALVAULT_PG_CACHE")
		if cache == "" {
			cache = "/var/cache/walvault/pg"
		}
		bin = filepath.Join(cache, strconv.Itoa(major), "bin")
	}
	for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, prog)); err != nil {
			why := fmt.Sprintf("PostgreSQL %d: %s not found in %s; run scripts/fetch-postgres.sh (or set WALVAULT_PG%d_BIN)",
				major, prog, bin, major)
			skipOutsideCI(t, why)
		}
	}
	return bin
}

// TestVersions runs the core scenarios on every supported major, each
// against that major's own server:
//
//   - pitr: the point-in-time recovery scenario of TestPITRFile
//     (archive_command = walvault wal-push, a base backup under pgbench
//     load, a restore to a time between two commits, exactly the commits up
//     to it, pgbench invariants, amcheck), with the restored server's major
//     checked.
//   - stream: walvault stream as the only WAL source for a backup and a
//     restore to latest, with a table in a tablespace (before 15 the server
//     sends each tablespace in its own copy stream).
func TestVersions(t *testing.T) {
	requireSuite(t)
	for _, major := range supportedMajors {
		t.Run(fmt.Sprintf("PG%d", major), func(t *testing.T) {
			bin := majorBin(t, major)
			t.Run("pitr", func(t *testing.T) { runVersionPITR(t, major, bin) })
			t.Run("stream", func(t *testing.T) { runVersionStream(t, major, bin) })
		})
	}
}

func runVersionPITR(t *testing.T, major int, bin string) {
	h := newHarness(t)
	h.ServerBin = bin
	repo := h.NewFileRepo("repo")
	start := time.Now()
	runPITR(t, h, pitrCase{
		repo:       repo,
		configFile: true,
		formatTarget: func(_ *Cluster, ts time.Time) string {
			return ts.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		},
		objects: func(t testing.TB) map[string][]byte { return fileRepoObjects(t, repo.Dir) },
	})
	if t.Failed() {
		return
	}
	checkMajor(t, h, "restored", major)

	// The repository recorded the major that init read from the server,
	// and wal-push (which reads it from each segment's page magic) agreed.
	b, err := os.ReadFile(filepath.Join(repo.Dir, "walvault.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		PGMajor int `json:"pg_major"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("walvault.json: %v", err)
	}
	if cfg.PGMajor != major {
		t.Errorf("walvault.json records PostgreSQL %d, want %d", cfg.PGMajor, major)
	}
	checkXactReader(t, repo, major)
	t.Logf("PostgreSQL %d: point-in-time recovery scenario passed in %v", major, time.Since(start).Round(time.Millisecond))
}

// checkMajor checks that the cluster called name ran on the given major:
// its data directory's PG_VERSION and the version its server logged at
// start.
func checkMajor(t *testing.T, h *Harness, name string, major int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Path(name), "PG_VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(major) {
		t.Errorf("%s: PG_VERSION %s, want %d", name, got, major)
	}
	logText, _ := os.ReadFile(h.Path(name + ".log"))
	if want := fmt.Sprintf("starting PostgreSQL %d.", major); !strings.Contains(string(logText), want) {
		t.Errorf("%s: server log does not say %q:\n%s", name, want, tail(string(logText), 20))
	}
}

func runVersionStream(t *testing.T, major int, bin string) {
	h := newHarness(t)
	h.ServerBin = bin
	repo := h.NewFileRepo("repo")
	start := time.Now()
	pg, wv := streamPrimary(h, repo)
	st := h.StartStream(wv, "stream", true, "--create-slot")
	st.WaitStreaming(1, time.Minute)
	pg.CreateMarks()
	tsDir := h.Mkdir(h.Path("ts1"), 0o700)
	pg.Exec(fmt.Sprintf("CREATE TABLESPACE ts1 LOCATION '%s'", tsDir))
	pg.Exec("CREATE TABLE in_ts1 TABLESPACE ts1 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")
	pg.Exec("CREATE INDEX ON in_ts1 (v) TABLESPACE ts1")
	wv.MustRun("backup", "--fast")
	pg.Exec("INSERT INTO in_ts1 SELECT g, md5(g::text) FROM generate_series(20001, 25000) g")
	marks := pg.CommitMarks(1, 5, "stream", 50*time.Millisecond)
	st.WaitCaughtUp(wv, pg, 2*time.Minute)
	pg.Stop("immediate")
	st.MustTerminate()
	if log := st.Log(); strings.Contains(log, "level=ERROR") {
		t.Errorf("streamer logged errors:\n%s", tail(log, 30))
	}
	for _, dir := range []string{pg.DataDir, tsDir} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	// Restored in place, unmapped: restore uses a location the backup
	// names only when it exists (empty, the server user's), never creates it.
	h.Mkdir(tsDir, 0o700)
	rc := h.restoreLatest(wv, repo.Env, "restored")
	if got, want := rc.MarkIDs(), seq(1, len(marks)); !equalInts(got, want) {
		t.Errorf("restored marks %v, want %v", got, want)
	}
	var rows, distinct int64
	rc.QueryRow("SELECT count(*), count(DISTINCT v) FROM in_ts1 WHERE v = md5(id::text)", nil, &rows, &distinct)
	if rows != 25000 || distinct != 25000 {
		t.Errorf("restored table in tablespace ts1: %d intact rows (%d distinct), want 25000", rows, distinct)
	}
	if loc := rc.QueryString("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'"); loc != tsDir {
		t.Errorf("restored tablespace ts1 at %q, want %q", loc, tsDir)
	}
	rc.AmCheck()
	checkMajor(t, h, "restored", major)
	t.Logf("PostgreSQL %d: stream scenario passed in %v", major, time.Since(start).Round(time.Millisecond))
}

// checkXactReader reads the archived WAL of timeline 1 with the commit
// reader drill --random-point relies on (pgwal.ScanXacts), on every major
// the format differs in: each full segment, read with the next one behind
// it, must scan as valid WAL past its own end (a record this reader
// misdecoded would end the scan inside the segment), and the scan must find
// the scenario's commits, in LSN order, with times between the repository's
// creation and now.
func checkXactReader(t *testing.T, r *Repo, major int) {
	t.Helper()
	ctx := context.Background()
	rp := inProcess(t, r)
	wal, _, err := rp.ListWAL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, w := range wal {
		if w.File.Kind == pgwal.KindSegment && w.File.Timeline == 1 {
			keys = append(keys, w.Key)
		}
	}
	if len(keys) < 2 {
		t.Fatalf("PostgreSQL %d: %d archived segments on timeline 1, want at least 2", major, len(keys))
	}
	get := func(key string) []byte {
		data, _, err := rp.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var commits int
	var last pgwal.LSN
	floor := time.Now().Add(-time.Hour)
	cur := get(keys[0])
	for i := 0; i+1 < len(keys); i++ {
		next := get(keys[i+1])
		h, err := pgwal.ParseLongPageHeader(next)
		if err != nil {
			t.Fatalf("%s: %v", keys[i+1], err)
		}
		end, err := pgwal.ScanXacts(append(cur[:len(cur):len(cur)], next...), func(x pgwal.XactRecord) {
			if x.LSN >= h.PageAddr {
				return // the next pair reads it
			}
			if x.LSN <= last || x.Time.Before(floor) || x.Time.After(time.Now()) {
				t.Errorf("PostgreSQL %d: %s: commit record at %s (after %s) dated %v", major, keys[i], x.LSN, last, x.Time)
			}
			last = x.LSN
			commits++
		})
		if err != nil {
			t.Fatalf("PostgreSQL %d: %s: %v", major, keys[i], err)
		}
		if end <= h.PageAddr {
			t.Errorf("PostgreSQL %d: the scan of %s ended at %s, inside it (the next segment starts at %s)", major, keys[i], end, h.PageAddr)
		}
		cur = next
	}
	if commits < 10 {
		t.Errorf("PostgreSQL %d: %d commit records in %d segments, want the scenario's pgbench and mark commits", major, commits, len(keys)-1)
	}
	t.Logf("PostgreSQL %d: the commit reader read %d commit or abort records in %d segments", major, commits, len(keys)-1)
}
