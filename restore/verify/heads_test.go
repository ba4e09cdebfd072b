package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/restore/info"
)

// A format-2 repository with its heads: deleting the newest segment, or
// the newest timeline's history, is refused naming the object (verify and
// info), where before it only shortened the window.
func TestVerifyRefusesWALTheHeadsRecord(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Signed(), repotest.OnDisk())
	put := func(tli uint32, n uint64) {
		tr.Write(t, repo.WALSegmentKey(tli, n, segSize), waltest.Segment(tli, n, waltest.SysID, 1))
		f, _ := pgwal.ParseFileName(pgwal.SegmentName(tli, n, segSize))
		if err := tr.PutWALHead(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	for n := uint64(1); n <= 6; n++ {
		put(1, n)
	}
	histKey := "wal/00000002/00000002.history"
	tr.Write(t, histKey, []byte(fmt.Sprintf("1\t%s\tno recovery target specified\n", lsn(7, 0))))
	for n := uint64(7); n <= 9; n++ {
		put(2, n)
	}
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	b := &repo.BackupManifest{ID: repo.NewBackupID(t0), Timeline: 1, StartTime: t0, StopTime: t0.Add(time.Minute),
		StartLSN: lsn(2, 0x28), StopLSN: lsn(3, 0x100), SystemIdentifier: fmt.Sprint(waltest.SysID), PGVersionNum: 150018, WALSegmentSize: segSize}
	tr.PutBackup(t, b, chunkSize, backupArchives(t)...)
	if rep := runOn(t, tr.Repository, tr.Dir, Options{WALOnly: true}); !rep.OK {
		t.Fatalf("intact repository: %+v", rep.Problems)
	}
	if _, err := info.Load(ctx, tr.Repository); err != nil {
		t.Fatalf("info, intact: %v", err)
	}
	for _, key := range []string{repo.WALSegmentKey(2, 9, segSize), repo.WALSegmentKey(1, 4, segSize), histKey} {
		t.Run(filepath.Base(key), func(t *testing.T) {
			p := filepath.Join(tr.Dir, filepath.FromSlash(key))
			saved, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(p, saved, 0o600)
			rep := runOn(t, tr.Repository, tr.Dir, Options{WALOnly: true})
			found := false
			for _, pr := range rep.Problems {
				found = found || pr.Key == key && pr.Kind == KindMissing
			}
			if rep.OK || !found {
				t.Fatalf("deleted %s: ok=%v problems %+v", key, rep.OK, rep.Problems)
			}
			irep, err := info.Load(ctx, tr.Repository)
			if !errors.Is(err, repo.ErrIncompleteWAL) || !errors.Is(err, repo.ErrIntegrity) || irep == nil || len(irep.MissingWAL) == 0 {
				t.Fatalf("info: %v", err)
			}
		})
	}
	// A genuine head copied under a segment never archived: it does not
	// count (no segment is missing), and it is a problem naming it.
	t.Run("head copied under a future name", func(t *testing.T) {
		newest, _ := pgwal.ParseFileName(pgwal.SegmentName(2, 9, segSize))
		future, _ := pgwal.ParseFileName(pgwal.SegmentName(2, 10, segSize))
		tr.SetRaw(t, repo.HeadKey(future), tr.Raw(t, repo.HeadKey(newest)))
		defer os.Remove(filepath.Join(tr.Dir, filepath.FromSlash(repo.HeadKey(future))))
		rep := runOn(t, tr.Repository, tr.Dir, Options{WALOnly: true})
		if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Key != repo.HeadKey(future) || rep.Problems[0].Kind != KindDamaged {
			t.Fatalf("ok=%v problems %+v", rep.OK, rep.Problems)
		}
	})
}
