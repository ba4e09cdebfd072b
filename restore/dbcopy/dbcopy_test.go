package dbcopy

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestNoPassword: --into refuses a password with ErrPasswordInArgs (the
// detection itself is internal/connstr's, tested there).
func TestNoPassword(t *testing.T) {
	for _, tc := range []struct {
		conn string
		ok   bool
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", true},
		{"host=/var/run/postgresql user=odoo", true},
		{"postgres://odoo:secret@db/postgres", false},
		{"host=db password=secret", false},
	} {
		err := noPassword(tc.conn)
		if tc.ok != (err == nil) || err != nil && (!errors.Is(err, ErrPasswordInArgs) || !strings.Contains(err.Error(), "--into") || strings.Contains(err.Error(), "secret")) {
			t.Errorf("noPassword(%q) = %v", tc.conn, err)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ conn, db string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "app_restored"},
		{"postgresql://h/", "a b"},
		{"host=/tmp user=u dbname=postgres", "it's"},
		{"host=/tmp", `back\slash`},
	} {
		s := withDatabase(tc.conn, tc.db)
		cfg, err := pgx.ParseConfig(s)
		if err != nil {
			t.Errorf("withDatabase(%q, %q) = %q: %v", tc.conn, tc.db, s, err)
			continue
		}
		if cfg.Database != tc.db {
			t.Errorf("withDatabase(%q, %q) = %q: database %q", tc.conn, tc.db, s, cfg.Database)
		}
	}
}

func TestFindClientNone(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := FindClient(t.TempDir(), 99)
	if !errors.Is(err, ErrNoClient) {
		t.Fatalf("FindClient(99) = %v", err)
	}
	if want := "install postgresql-client-99"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
