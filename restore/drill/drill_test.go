package drill

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
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
