package dbcopy

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestNoPassword(t *testing.T) {
	for _, tc := range []struct {
		conn string
		ok   bool
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", true},
		{"host=/var/run/postgresql user=odoo", true},
		{"host=db passfile=/root/.pgpass", true},
		{"postgres://odoo:secret@db/postgres", false},
		{"postgres://odoo@db/postgres?password=secret", false},
		{"host=db password=secret", false},
		{"password = 'x' host=db", false},
	} {
		err := noPassword(tc.conn)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrPasswordInArgs) {
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
