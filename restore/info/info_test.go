package info

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
)

// TestReportSchema: the JSON keys scripts read stay as documented, and an
// empty repository reports empty lists, not nulls.
func TestReportSchema(t *testing.T) {
	r := repotest.New(t)
	ctx := context.Background()
	for n := uint64(1); n <= 3; n++ {
		r.PutSegment(t, 1, n, 1)
	}
	rep, err := Load(ctx, r.Repository)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "backups encryption pg_major recoverable repository stream_partials system_identifier wal"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
	if string(m["backups"]) != "[]" || string(m["recoverable"]) != "null" || len(rep.WAL) != 1 || rep.WAL[0].Segments != 3 {
		t.Errorf("report: %s", b)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "recoverable: nothing yet") || !strings.Contains(text.String(), "(none)") {
		t.Errorf("text:\n%s", text.String())
	}
}
