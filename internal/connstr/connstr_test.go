package connstr

import (
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestHasPassword(t *testing.T) {
	for _, tc := range []struct {
		conn string
		want bool
	}{
		// No password: the libpq environment or ~/.pgpass supply it.
		{"", false},
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", false},
		{"postgresql://h/db", false},
		{"postgres://u@[::1]:5432,[::2]:5433/db?passfile=/root/.pgpass", false},
		{"postgres:///db?host=/var/run/postgresql", false},
		{"host=/var/run/postgresql user=odoo", false},
		{"host=db passfile=/root/.pgpass", false},
		{"host=db dbname=password_reset", false},
		{"host=db application_name='password=x'", false},
		{`host=db application_name=a\ password=x`, false},
		// A password, in each place libpq takes one from.
		{"postgres://odoo:secret@db/postgres", true},
		{"postgresql://odoo:secret@db", true},
		{"postgres://odoo@db/postgres?password=secret", true},
		{"postgres://odoo@db/postgres?sslmode=disable&password=secret", true},
		{"postgres://db?pass%77ord=secret", true},
		{"postgres://db/x?sslpassword=secret", true},
		{"postgres://u@[::1]:5432,[::2]/db?password=secret", true},
		{"host=db password=secret", true},
		{"password = 'x' host=db", true},
		{"host=db\vpassword=secret", true},
		{"host='db'password=secret", true},
		{"host=db sslpassword=secret", true},
		// Unreadable strings that mention a password are reported.
		{"host=db password", true},
		{"host='db password=secret", true},
	} {
		if got := HasPassword(tc.conn); got != tc.want {
			t.Errorf("HasPassword(%q) = %v, want %v", tc.conn, got, tc.want)
		}
	}
}

// FuzzHasPassword checks HasPassword against pgx's own parser: whenever
// pgx would take a password from the string, HasPassword says so.
func FuzzHasPassword(f *testing.F) {
	// Keep the environment and the files out of pgx's answer.
	none := filepath.Join(f.TempDir(), "none")
	f.Setenv("PGPASSWORD", "")
	f.Setenv("PGPASSFILE", none)
	f.Setenv("PGSERVICEFILE", none)
	f.Setenv("PGSERVICE", "")
	for _, s := range []string{
		"postgres://u:p@h/db", "postgres://h/db?password=p", "postgres://h?a=b&password=p",
		"postgres://[::1]:5432,h2/db?password=p", "postgresql://u@h:1,h:2/d?sslmode=disable",
		"host=h password=p", "host='h'password=p", `host=h\ x password='p\'q'`, "password=p",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, conn string) {
		has := HasPassword(conn)
		cfg, err := pgconn.ParseConfig(conn)
		if err == nil && cfg.Password != "" && !has {
			t.Fatalf("HasPassword(%q) = false, but pgx reads the password %q", conn, cfg.Password)
		}
	})
}
