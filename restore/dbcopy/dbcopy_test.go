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
		// A dbname in the query wins over the path: it must go.
		{"postgres:///?host=/var/run/postgresql&dbname=postgres", "app_restored"},
		{"postgresql://u@h:5433/postgres?dbname=postgres&sslmode=require", "app_restored"},
		{"postgres://h/?database=postgres", "app_restored"},
		{"host=/tmp dbname=postgres user=u dbname=template1", "app_restored"},
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
		// Everything else is kept.
		if orig, err := pgx.ParseConfig(tc.conn); err != nil || orig.Host != cfg.Host || orig.Port != cfg.Port || orig.User != cfg.User || (orig.TLSConfig == nil) != (cfg.TLSConfig == nil) {
			t.Errorf("withDatabase(%q, %q) = %q: host, port, user or TLS changed", tc.conn, tc.db, s)
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
