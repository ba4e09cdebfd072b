package drill

import (
	"strings"
	"testing"
)

func TestParseChecks(t *testing.T) {
	in := `-- Drill checks for the Odoo database.
-- (comments before the first check are fine)

-- check: an invoice was posted
-- database: odoo
SELECT count(*) > 0
  FROM account_move
 WHERE state = 'posted';

--check:users
SELECT EXISTS (SELECT 1 FROM res_users) -- trailing comment
-- check:   spaced name   
-- a comment inside the check
SELECT true;
`
	got, err := ParseChecks(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []SQLCheck{
		{Name: "an invoice was posted", Database: "odoo", SQL: "SELECT count(*) > 0\n  FROM account_move\n WHERE state = 'posted'", Line: 4},
		{Name: "users", SQL: "SELECT EXISTS (SELECT 1 FROM res_users) -- trailing comment", Line: 10},
		{Name: "spaced name", SQL: "-- a comment inside the check\nSELECT true", Line: 12},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d checks %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("check %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestParseChecksErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty file", "", "no checks"},
		{"only comments", "-- nothing\n\n", "no checks"},
		{"sql before header", "SELECT 1;\n-- check: a\nSELECT true;\n", "line 1: SQL before"},
		{"no name", "-- check:\nSELECT true;\n", "line 1: a check needs a name"},
		{"duplicate", "-- check: a\nSELECT true;\n-- check: a\nSELECT true;\n", `line 3: check "a" is already defined on line 1`},
		{"no sql", "-- check: a\n-- check: b\nSELECT true;\n", `line 1: check "a" has no SQL`},
		{"only semicolon", "-- check: a\n;\n", `check "a" has no SQL`},
		{"comment only body", "-- check: a\n-- just a comment\n", `check "a" has no SQL`},
		{"two databases", "-- check: a\n-- database: x\n-- database: y\nSELECT true;\n", "give one database"},
		{"empty database", "-- check: a\n-- database:\nSELECT true;\n", "give one database"},
		{"control character", "-- check: a\x01b\nSELECT true;\n", "control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseChecks(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// A "-- database:" line after the statement began is part of the SQL (a
// comment), not a header.
func TestParseChecksDatabaseOnlyBeforeSQL(t *testing.T) {
	got, err := ParseChecks(strings.NewReader("-- check: a\nSELECT true\n-- database: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Database != "" || !strings.Contains(got[0].SQL, "-- database: x") {
		t.Errorf("got %+v", got[0])
	}
}

func FuzzParseChecks(f *testing.F) {
	f.Add("-- check: a\n-- database: odoo\nSELECT true;\n")
	f.Add("-- check: a\nSELECT 1;\n-- check: b\nSELECT 2;\n")
	f.Add("SELECT 1")
	f.Add("-- check: \n")
	f.Fuzz(func(t *testing.T, in string) {
		checks, err := ParseChecks(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(checks) == 0 {
			t.Fatal("no error and no checks")
		}
		names := map[string]bool{}
		for _, c := range checks {
			if c.Name == "" || names[c.Name] || strings.TrimSpace(c.SQL) == "" || stripComments(c.SQL) == "" {
				t.Fatalf("bad check %+v", c)
			}
			names[c.Name] = true
			// Writing the checks back and parsing them again gives the same.
			var b strings.Builder
			b.WriteString("-- check: " + c.Name + "\n")
			if c.Database != "" {
				b.WriteString("-- database: " + c.Database + "\n")
			}
			b.WriteString(c.SQL + "\n")
			again, err := ParseChecks(strings.NewReader(b.String()))
			if err != nil || len(again) != 1 || again[0].Name != c.Name || again[0].Database != c.Database || again[0].SQL != c.SQL {
				t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
			}
		}
	})
}
