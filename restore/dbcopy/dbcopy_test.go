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

// TestSourceQuery: the locale columns of pg_database by version (15 added
// datlocprovider and daticulocale, 17 renamed daticulocale datlocale).
func TestSourceQuery(t *testing.T) {
	for _, tc := range []struct {
		num           int
		want, notWant []string
	}{
		{130011, []string{"'c', ''"}, []string{"datlocprovider", "daticulocale", "datlocale"}},
		{140018, []string{"'c', ''"}, []string{"datlocprovider", "daticulocale", "datlocale"}},
		{150018, []string{"datlocprovider", "daticulocale"}, []string{"datlocale"}},
		{160010, []string{"datlocprovider", "daticulocale"}, []string{"datlocale"}},
		{170010, []string{"datlocprovider", "datlocale"}, []string{"daticulocale"}},
		{180004, []string{"datlocprovider", "datlocale"}, []string{"daticulocale"}},
	} {
		q := sourceQuery(tc.num)
		for _, w := range tc.want {
			if !strings.Contains(q, w) {
				t.Errorf("sourceQuery(%d) lacks %s:\n%s", tc.num, w, q)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(q, w) {
				t.Errorf("sourceQuery(%d) names %s:\n%s", tc.num, w, q)
			}
		}
	}
}

func TestCreateDatabaseSQL(t *testing.T) {
	base := "CREATE DATABASE \"app copy\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
	for _, tc := range []struct {
		provider, locale, want string
	}{
		{"c", "", base},
		{"i", "und-u-ks-level2", base + " LOCALE_PROVIDER icu ICU_LOCALE 'und-u-ks-level2'"},
		{"b", "C.UTF-8", base + " LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"},
	} {
		src := &source{encoding: "UTF8", collate: "C.UTF-8", ctype: "C.UTF-8", provider: tc.provider, locale: tc.locale}
		if got := createDatabaseSQL("app copy", src); got != tc.want {
			t.Errorf("provider %s:\n got %s\nwant %s", tc.provider, got, tc.want)
		}
	}
}

func TestDropDatabaseSQL(t *testing.T) {
	for _, tc := range []struct {
		num  int
		want string
	}{
		{120022, `DROP DATABASE IF EXISTS "app_restored"`},
		{130000, `DROP DATABASE IF EXISTS "app_restored" WITH (FORCE)`},
		{180004, `DROP DATABASE IF EXISTS "app_restored" WITH (FORCE)`},
	} {
		if got := dropDatabaseSQL("app_restored", tc.num); got != tc.want {
			t.Errorf("dropDatabaseSQL(%d) = %s, want %s", tc.num, got, tc.want)
		}
	}
}
