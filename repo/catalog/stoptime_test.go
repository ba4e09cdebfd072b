package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage/faulty"
)

// historyFile is a backup history file as PostgreSQL writes it.
func historyFile(start, stop pgwal.LSN, startTime, stopTime string) string {
	return fmt.Sprintf("START WAL LOCATION: %s (file x)\nSTOP WAL LOCATION: %s (file x)\nCHECKPOINT LOCATION: %s\n"+
		"BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: %s\nLABEL: walvault\nSTART TIMELINE: 1\n"+
		"STOP TIME: %s\nSTOP TIMELINE: 1\n", start, stop, start+0x38, startTime, stopTime)
}

func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCorrectStopTimes: manifests that do not date their end from the
// server's backup history file get it from the archived file on load. The
// first case is issue 11: a backup without --fast whose spread checkpoint
// took 3 min 32 s was recorded as stopping at 00:04:27 although the server
// stopped it at 00:00:53.
func TestCorrectStopTimes(t *testing.T) {
	ctx := context.Background()
	tr := newRepo(t)
	r := tr.Repository
	put := func(key, data string) {
		t.Helper()
		tr.Write(t, key, []byte(data))
	}
	for n := uint64(1); n <= 12; n++ {
		put(repo.WALSegmentKey(1, n, segSize), "segment")
	}
	type tc struct {
		name string
		m    repo.BackupManifest
		file string // "" for none
		// raw replaces the file's plaintext with garbage.
		raw      bool
		wantStop time.Time
		wantSrc  string
		problem  string // part of the problem's error; "" for none
	}
	// Backup n starts at 0/n000028 and stops at 0/n000100.
	lsns := func(n uint64) (pgwal.LSN, pgwal.LSN) {
		return pgwal.LSN(n*segSize + 0x28), pgwal.LSN(n*segSize + 0x100)
	}
	mk := func(n uint64, m repo.BackupManifest) repo.BackupManifest {
		m.ID = repo.NewBackupID(t0.Add(time.Duration(n) * time.Hour))
		m.Timeline = 1
		m.StartLSN, m.StopLSN = lsns(n)
		return m
	}
	hist := func(n uint64, start, stop string) string {
		s, e := lsns(n)
		return historyFile(s, e, start, stop)
	}
	cases := []tc{{
		name: "written by older walvault, checkpoint counted",
		m:    mk(1, repo.BackupManifest{StartTime: utc(t, "2026-11-22T00:00:53Z"), StopTime: utc(t, "2026-11-22T00:04:27.61Z")}),
		file: hist(1, "2026-11-22 00:00:53 UTC", "2026-11-22 00:00:54 UTC"), wantStop: utc(t, "2026-11-22T00:00:55Z"), wantSrc: repo.StopTimeFromHistory,
	}, {
		name: "estimate, named zone resolved by the start time",
		m: mk(2, repo.BackupManifest{StartTime: utc(t, "2026-11-22T22:57:00Z"), StopTime: utc(t, "2026-11-22T22:57:43.2Z"),
			StopTimeSource: repo.StopTimeEstimated}),
		file: hist(2, "2026-11-22 17:57:00 EST", "2026-11-22 17:57:41 EST"), wantStop: utc(t, "2026-11-22T22:57:42Z"), wantSrc: repo.StopTimeFromHistory,
	}, {
		name: "DST change during the backup, zone recorded",
		m: mk(3, repo.BackupManifest{StartTime: utc(t, "2026-10-25T00:59:30Z"), StopTime: utc(t, "2026-10-25T01:00:45Z"),
			StopTimeSource: repo.StopTimeEstimated, LogTimezone: "Europe/Paris"}),
		file: hist(3, "2026-10-25 02:59:30 CEST", "2026-10-25 02:00:40 CET"), wantStop: utc(t, "2026-10-25T01:00:41Z"), wantSrc: repo.StopTimeFromHistory,
	}, {
		name: "already from the history file: not read again",
		m: mk(4, repo.BackupManifest{StartTime: utc(t, "2026-11-22T00:00:53Z"), StopTime: utc(t, "2026-11-22T00:00:55Z"),
			StopTimeSource: repo.StopTimeFromHistory}),
		file: "garbage", raw: true, wantStop: utc(t, "2026-11-22T00:00:55Z"), wantSrc: repo.StopTimeFromHistory,
	}, {
		name:     "no history file (a standby, walvault stream)",
		m:        mk(5, repo.BackupManifest{StartTime: utc(t, "2026-11-22T00:00:53Z"), StopTime: utc(t, "2026-11-22T00:04:27Z")}),
		wantStop: utc(t, "2026-11-22T00:04:27Z"),
	}, {
		name:     "history file of another backup",
		m:        mk(6, repo.BackupManifest{StartTime: utc(t, "2026-11-22T00:00:53Z"), StopTime: utc(t, "2026-11-22T00:04:27Z")}),
		file:     historyFile(pgwal.LSN(6*segSize+0x28), pgwal.LSN(7*segSize+0x100), "2026-11-22 00:00:53 UTC", "2026-11-22 00:00:54 UTC"),
		wantStop: utc(t, "2026-11-22T00:04:27Z"), problem: "runs from",
	}, {
		name: "START TIME differs from the manifest's",
		m:    mk(7, repo.BackupManifest{StartTime: utc(t, "2026-11-22T00:00:53Z"), StopTime: utc(t, "2026-11-22T00:04:27Z")}),
		file: hist(7, "2026-11-22 00:00:50 UTC", "2026-11-22 00:00:54 UTC"), wantStop: utc(t, "2026-11-22T00:04:27Z"), problem: "started at",
	}, {
		name: "stop before start",
		m:    mk(8, repo.BackupManifest{StartTime: utc(t, "2026-11-22T00:00:53Z"), StopTime: utc(t, "2026-11-22T00:04:27Z")}),
		file: hist(8, "2026-11-22 00:00:53 UTC", "2026-11-22 00:00:52 UTC"), wantStop: utc(t, "2026-11-22T00:04:27Z"), problem: "before START TIME",
	}, {
		name: "damaged",
		m:    mk(9, repo.BackupManifest{StartTime: utc(t, "2026-11-22T00:00:53Z"), StopTime: utc(t, "2026-11-22T00:04:27Z")}),
		file: "START WAL LOCATION: nonsense\n", raw: true, wantStop: utc(t, "2026-11-22T00:04:27Z"), problem: "START WAL LOCATION",
	}, {
		name: "ambiguous zone, start from the local clock",
		m: mk(10, repo.BackupManifest{StartTime: utc(t, "2026-11-22T22:56:59.5Z"), StopTime: utc(t, "2026-11-22T22:57:43Z"),
			StopTimeSource: repo.StopTimeEstimated}),
		file: hist(10, "2026-11-22 17:57:00 EST", "2026-11-22 17:57:41 EST"), wantStop: utc(t, "2026-11-22T22:57:43Z"), wantSrc: repo.StopTimeEstimated,
		problem: "server's zone",
	}}
	for i := range cases {
		c := &cases[i]
		if err := r.PutBackupManifest(ctx, &c.m); err != nil {
			t.Fatal(err)
		}
		if c.file != "" {
			put(repo.BackupHistoryKey(1, c.m.StartLSN, segSize), c.file)
		}
	}

	cat, err := Load(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	byID := make(map[string]*repo.BackupManifest)
	for _, b := range cat.Backups {
		byID[b.ID] = b
	}
	problems := make(map[string]StopTimeProblem)
	for _, p := range cat.StopTimeProblems {
		problems[p.BackupID] = p
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := byID[c.m.ID]
			if !b.StopTime.Equal(c.wantStop) || b.StopTimeSource != c.wantSrc {
				t.Errorf("stop %s from %q, want %s from %q", b.StopTime.Format(time.RFC3339Nano), b.StopTimeSource, c.wantStop.Format(time.RFC3339Nano), c.wantSrc)
			}
			if c.wantSrc == repo.StopTimeFromHistory && c.m.StopTimeSource != repo.StopTimeFromHistory {
				if b.ServerStopTime == nil || !b.ServerStopTime.Add(time.Second).Equal(b.StopTime) {
					t.Errorf("server stop time %v, stop %v", b.ServerStopTime, b.StopTime)
				}
			}
			p, found := problems[c.m.ID]
			switch {
			case c.problem == "" && found:
				t.Errorf("unexpected problem: %v", p)
			case c.problem != "" && !found:
				t.Errorf("no problem reported, want one about %q", c.problem)
			case found && !strings.Contains(p.Error(), c.problem):
				t.Errorf("problem %q does not mention %q", p.Error(), c.problem)
			}
		})
	}
	// A backup's window starts at its corrected end.
	if w, ok := cat.Reach(byID[cases[0].m.ID]); !ok || !w.From.Equal(utc(t, "2026-11-22T00:00:55Z")) {
		t.Errorf("window %v, %v; want it from 00:00:55", w, ok)
	}
	// The stored manifests stay as written.
	stored, err := r.BackupManifest(ctx, cases[0].m.ID)
	if err != nil || !stored.StopTime.Equal(cases[0].m.StopTime) || stored.StopTimeSource != "" {
		t.Errorf("stored manifest changed: %+v, %v", stored, err)
	}

	// A storage failure while reading a history file fails the load
	// rather than leave a backup silently uncorrected.
	failing := faulty.Wrap(tr.Store)
	failing.Inject(faulty.Fault{Ops: faulty.Get, Key: faulty.Prefix(repo.WALPrefix), Err: errUnreachable})
	fr := repotest.New(t, repotest.OnStore(failing), repotest.WithIdentity(tr.Identity))
	if _, err := Load(ctx, fr.Repository); !errors.Is(err, errUnreachable) {
		t.Errorf("Load with failing reads: %v", err)
	}
}

var errUnreachable = errors.New("unreachable")
