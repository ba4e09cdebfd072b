package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestRunStepsStopsAtFirstFailure(t *testing.T) {
	boom := errors.New("boom")
	var ran []string
	step := func(name string, err error) Step {
		return Step{Name: name, Rerun: "walvault odoo " + name, Run: func(context.Context, *pgx.Conn) error {
			ran = append(ran, name)
			return err
		}}
	}
	var done []string
	err := RunSteps(context.Background(), nil, []Step{step("a", nil), step("b", boom), step("c", nil)}, func(s string) { done = append(done, s) })
	var se *StepError
	if !errors.As(err, &se) || se.Step != "b" || se.Rerun != "walvault odoo b" || !errors.Is(err, boom) || !errors.Is(err, ErrStep) {
		t.Fatalf("RunSteps = %v", err)
	}
	if strings.Join(ran, ",") != "a,b" || len(done) != 1 || !strings.HasPrefix(done[0], "step a done") {
		t.Errorf("ran %v, done %v", ran, done)
	}
	se.PGData = "/srv/pg/staging"
	msg := se.Error()
	for _, want := range []string{"step b failed: boom", "/srv/pg/staging is kept", "walvault odoo b"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

// TestMarkHistoryForArchiving: the history file a promotion with archiving
// off wrote gets its .ready; one restored from the repository (.done), one
// already marked, segments and other files are left alone.
func TestMarkHistoryForArchiving(t *testing.T) {
	pgdata := t.TempDir()
	status := filepath.Join(pgdata, "pg_wal", "archive_status")
	if err := os.MkdirAll(status, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"pg_wal/00000002.history", "pg_wal/archive_status/00000002.history.done",
		"pg_wal/00000003.history", "pg_wal/archive_status/00000003.history.ready",
		"pg_wal/00000004.history",
		"pg_wal/000000040000000000000009", "pg_wal/00000003000000000000000A.partial",
		"pg_wal/00000004.history.tmp",
	} {
		if err := os.WriteFile(filepath.Join(pgdata, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	marked, err := markHistoryForArchiving(pgdata, nil)
	if err != nil || strings.Join(marked, ",") != "00000004.history" {
		t.Fatalf("marked %v, %v; want [00000004.history]", marked, err)
	}
	entries, err := os.ReadDir(status)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "00000002.history.done,00000003.history.ready,00000004.history.ready" {
		t.Errorf("archive_status holds %s", got)
	}
	if marked, err := markHistoryForArchiving(pgdata, nil); err != nil || len(marked) != 0 {
		t.Errorf("a second run marked %v, %v", marked, err)
	}
}
