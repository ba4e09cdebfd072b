package scratch

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/walvault/walvault/internal/pgtest"
)

// TestBootstrapSuperusers reads the role with OID 10 from real data
// directories: one initdb made with -U odoo (the official container's
// POSTGRES_USER=odoo), and a running cluster whose bootstrap role was
// renamed (two versions of its row on disk until vacuum).
func TestBootstrapSuperusers(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	if got, err := BootstrapSuperusers(s.DataDir); err != nil || !reflect.DeepEqual(got, []string{"postgres"}) {
		t.Fatalf("fresh cluster: %v, %v", got, err)
	}

	odoo := filepath.Join(s.Dir, "odoo-data")
	s.Run(t, "initdb", "-D", odoo, "-U", "odoo", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C")
	if got, err := BootstrapSuperusers(odoo); err != nil || !reflect.DeepEqual(got, []string{"odoo"}) {
		t.Errorf("initdb -U odoo: %v, %v", got, err)
	}

	s.SQL(t, "CREATE ROLE helper SUPERUSER LOGIN")
	cmd := s.Command("psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", "helper", "-c", "ALTER ROLE postgres RENAME TO dba", "-c", "CHECKPOINT")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rename: %v\n%s", err, out)
	}
	got, err := BootstrapSuperusers(s.DataDir)
	if err != nil || len(got) == 0 || got[0] != "dba" {
		t.Errorf("after ALTER ROLE postgres RENAME TO dba: %v, %v; want dba first", got, err)
	}

	// Candidates: an explicit role alone, else the bootstrap role, then
	// the fallbacks.
	if got := Roles("me", odoo, "postgres"); !reflect.DeepEqual(got, []string{"me"}) {
		t.Errorf("explicit: %v", got)
	}
	if got := Roles("", odoo, "odoo", "", "postgres"); !reflect.DeepEqual(got, []string{"odoo", "postgres"}) {
		t.Errorf("derived: %v", got)
	}
	if got := Roles("", t.TempDir(), "app", "postgres"); !reflect.DeepEqual(got, []string{"app", "postgres"}) {
		t.Errorf("no catalog: %v", got)
	}
}

func TestParseBootstrapRoleGarbage(t *testing.T) {
	for _, data := range [][]byte{nil, make([]byte, pageSize), []byte("short"), func() []byte {
		b := make([]byte, pageSize)
		for i := range b {
			b[i] = 0xff
		}
		return b
	}()} {
		if names, err := parseBootstrapRole(data); err == nil {
			t.Errorf("garbage gave %v", names)
		}
	}
	if _, err := mappedFilenode(filepath.Join(t.TempDir(), "none"), 1260); !os.IsNotExist(err) {
		t.Errorf("missing map: %v", err)
	}
}

func FuzzParseBootstrapRole(f *testing.F) {
	f.Add(make([]byte, pageSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseBootstrapRole(data)
	})
}
