package steps

import (
	"context"
	"errors"
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
