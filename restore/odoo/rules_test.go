package odoo

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultRulesParse(t *testing.T) {
	r := DefaultRules()
	if r.Version != RulesVersion || len(r.Tables) < 10 {
		t.Fatalf("default rules: version %d, %d tables", r.Version, len(r.Tables))
	}
	want := map[string][]string{
		"res_partner":         {"name", "email", "phone", "mobile", "street", "street2", "city", "zip", "vat", "website", "complete_name", "display_name"},
		"res_users":           {"login", "password", "signature", "totp_secret"},
		"mail_message":        {"subject", "email_from", "reply_to", "body"},
		"mail_tracking_value": {"old_value_char", "new_value_char"},
		"hr_employee":         {"private_email", "private_phone", "birthday", "ssnid", "passport_id", "identification_id", "bank_account_id", "emergency_contact"},
		"res_partner_bank":    {"acc_number", "acc_holder_name"},
		"sms_sms":             {"number", "body"},
	}
	have := map[string]map[string]bool{}
	for _, tr := range r.Tables {
		if have[tr.Table] == nil {
			have[tr.Table] = map[string]bool{}
		}
		for _, c := range tr.Columns {
			have[tr.Table][c.Column] = true
		}
	}
	for table, cols := range want {
		for _, c := range cols {
			if !have[table][c] {
				t.Errorf("default rules do not cover %s.%s", table, c)
			}
		}
	}
}

func TestParseRulesErrors(t *testing.T) {
	for name, in := range map[string]string{
		"version":      "version: 2\ntables: []\n",
		"no version":   "tables: []\n",
		"unknown key":  "version: 1\nfoo: 1\n",
		"bad table":    "version: 1\ntables:\n  - table: \"x; drop\"\n    columns: {a: null}\n",
		"bad column":   "version: 1\ntables:\n  - table: t\n    columns: {\"A b\": null}\n",
		"bad action":   "version: 1\ntables:\n  - table: t\n    columns: {a: shred}\n",
		"bad kind":     "version: 1\ntables:\n  - table: t\n    columns: {a: \"fake:dna\"}\n",
		"value no arg": "version: 1\ntables:\n  - table: t\n    columns: {a: value}\n",
		"where ;":      "version: 1\ntables:\n  - table: t\n    where: \"true; drop table x\"\n    columns: {a: null}\n",
		"no columns":   "version: 1\ntables:\n  - table: t\n    columns: {}\n",
		"list columns": "version: 1\ntables:\n  - table: t\n    columns: [a]\n",
	} {
		if _, err := ParseRules([]byte(in)); !errors.Is(err, ErrRules) {
			t.Errorf("%s: err = %v, want ErrRules", name, err)
		}
	}
}

func TestMerge(t *testing.T) {
	d, err := ParseRules([]byte(`version: 1
tables:
  - table: res_partner
    columns:
      name: fake:name
      comment: null
  - table: sms_sms
    columns:
      body: value:x
`))
	if err != nil {
		t.Fatal(err)
	}
	u, err := ParseRules([]byte(`version: 1
tables:
  - table: res_partner
    columns:
      comment: keep
      x_studio_nickname: fake:name
`))
	if err != nil {
		t.Fatal(err)
	}
	m := Merge(d, u)
	got := map[string]string{}
	for _, tr := range m.Tables {
		for _, c := range tr.Columns {
			got[tr.Table+"."+c.Column] = c.Action.String()
		}
	}
	want := map[string]string{"res_partner.name": "fake:name", "sms_sms.body": "value", "res_partner.x_studio_nickname": "fake:name"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %v, want %v", got, want)
	}
	u.ReplaceDefault = true
	if m := Merge(d, u); len(m.Tables) != 1 || len(m.Tables[0].Columns) != 1 {
		t.Errorf("replace_default: %+v", m.Tables)
	}
}

func TestRulesRoundTrip(t *testing.T) {
	d := DefaultRules()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRules(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(d, back) {
		t.Errorf("round trip differs:\n%s", b)
	}
}

// FuzzParseRules: ParseRules never panics, and what it accepts marshals to
// a file that parses back to the same rules.
func FuzzParseRules(f *testing.F) {
	f.Add(string(defaultRulesYAML))
	f.Add("version: 1\ntables:\n  - table: t\n    where: \"a = 'x'\"\n    columns: {a: \"value:multi\\nline: yes\", b: null, c: scrub}\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseRules([]byte(in))
		if err != nil {
			return
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRules(b)
		if err != nil {
			t.Fatalf("marshalled rules do not parse: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(r, back) {
			t.Fatalf("round trip differs:\n%+v\n%+v\n%s", r, back, b)
		}
	})
}

func TestFakes(t *testing.T) {
	f := &faker{key: []byte("test key")}
	g := &faker{key: []byte("other key")}
	for _, c := range []struct{ kind, in string }{
		{"name", "Rosalind Fairweather-Skoglund"}, {"email", "rosalind.fs@vellacott-marine.example"},
		{"phone", "+44 1736 960177"}, {"street", "3 Harbourside Row"}, {"city", "Porthkerran"},
		{"zip", "PZ19 2LX"}, {"vat", "GB318447209"}, {"iban", "GB94 BARC 1020 1530 0934 17"},
		{"url", "https://vellacott-marine.example"}, {"code", "QQ 12 34 56 C"}, {"login", "admin2"},
		{"company", "Vellacott Marine"}, {"token", "Ignatius Borowdale"},
	} {
		a, b := f.fake(c.kind, c.in), f.fake(c.kind, c.in)
		if a != b {
			t.Errorf("%s: not deterministic: %q %q", c.kind, a, b)
		}
		if a == c.in || strings.Contains(a, c.in) {
			t.Errorf("%s: fake %q keeps the original %q", c.kind, a, c.in)
		}
		if g.fake(c.kind, c.in) == a && c.kind != "city" {
			t.Errorf("%s: two keys give the same fake %q", c.kind, a)
		}
	}
	if e := f.fake("email", "A.B@X.example"); e != f.fake("email", "a.b@x.example") || !emailRE.MatchString(e) {
		t.Errorf("email fake %q: not case-insensitive or not an address", e)
	}
	p1, p2 := f.fake("phone", "+44 1736 960177"), f.fake("phone", "+441736960177")
	if onlyDigits(p1) != onlyDigits(p2) || !strings.HasPrefix(p1, "+44 ") || len(p1) != len("+44 1736 960177") {
		t.Errorf("phone fakes %q %q: not format-preserving or inconsistent", p1, p2)
	}
	if iban := f.fake("iban", "GB94 BARC 1020 1530 0934 17"); iban != f.fake("iban", "GB94BARC10201530093417") || !strings.HasPrefix(iban, "GB") {
		t.Errorf("iban fake %q", iban)
	}
	for day := time.Date(1988, 1, 1, 0, 0, 0, 0, time.UTC); day.Year() == 1988; day = day.AddDate(0, 0, 1) {
		fd := f.fakeDate(day)
		if fd.Year() != 1988 || fd.Equal(day) || !fd.Equal(f.fakeDate(day)) {
			t.Fatalf("date fake of %s: %s", day.Format("2006-01-02"), fd.Format("2006-01-02"))
		}
	}
}
