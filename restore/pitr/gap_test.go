package pitr

import (
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
)

func TestGapWarning(t *testing.T) {
	const ss = 16 << 20
	var wal []repo.WALObject
	for _, n := range []uint64{2, 3, 5, 6} { // 4 is missing
		f, _ := pgwal.ParseFileName(pgwal.SegmentName(1, n, ss))
		wal = append(wal, repo.WALObject{File: f, Key: repo.WALKey(f)})
	}
	cat := &catalog.Catalog{WAL: wal, SegSize: ss}
	w := catalog.Window{ToLSN: pgwal.SegmentStart(4, ss), Timeline: 1}
	msg := gapWarning(cat, Target{}, w)
	if !strings.Contains(msg, pgwal.SegmentName(1, 4, ss)) || !strings.Contains(msg, pgwal.SegmentName(1, 6, ss)) {
		t.Fatalf("warning %q does not name the missing and the newest segment", msg)
	}
	now := time.Now()
	if gapWarning(cat, Target{Time: &now}, w) != "" {
		t.Fatal("warned for a time target")
	}
	if gapWarning(cat, Target{}, catalog.Window{ToLSN: pgwal.SegmentStart(7, ss), Timeline: 1}) != "" {
		t.Fatal("warned without a gap")
	}
}
