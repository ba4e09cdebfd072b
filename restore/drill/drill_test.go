package drill

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
)

func TestDropArchivingWarning(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(dropArchivingWarning{slog.NewTextHandler(&buf, nil)}).With("backup", "b1")
	log.Warn("when the restored server is promoted it archives WAL as its configuration says (…)")
	log.Warn("WAL gap after the window")
	log.Info("restore complete")
	out := buf.String()
	if strings.Contains(out, "archives WAL") || !strings.Contains(out, "WAL gap") || !strings.Contains(out, "restore complete") || !strings.Contains(out, "backup=b1") {
		t.Errorf("log:\n%s", out)
	}
}

func TestReplayedBytes(t *testing.T) {
	start := pgwal.LSN(0x5000028)
	for _, tc := range []struct {
		replay string
		want   int64
		ok     bool
	}{
		{"LSN 0/5000028", 0, true},
		{"LSN 0/6000000 (last transaction 2026-11-24T05:00:00.000000Z)", 0x6000000 - 0x5000028, true},
		{"LSN 1/0", 1<<32 - 0x5000028, true},
		{"LSN 0/4000000", 0, false}, // before the backup's start
		{"LSN x/y", 0, false},
		{"", 0, false},
	} {
		got, ok := replayedBytes(tc.replay, start)
		if got != tc.want || ok != tc.ok {
			t.Errorf("replayedBytes(%q) = %d, %v; want %d, %v", tc.replay, got, ok, tc.want, tc.ok)
		}
	}
}
