package odooconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const debianConf = `[options]
; This is the password that allows database operations:
admin_passwd = $pbkdf2-sha512$600000$notreal
db_host = db.internal
db_port = 5433
db_user = odoo
db_password = s3cr'et\pw #not a comment
db_name = False
data_dir = /srv/odoo/data
addons_path = /usr/lib/python3/dist-packages/odoo/addons,
    /opt/odoo/custom
http_port = 8069
db_sslmode = prefer

[queue_job]
channels = root:2
db_host = elsewhere
`

func TestParse(t *testing.T) {
	cfg, err := Parse(strings.NewReader(debianConf))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{DBHost: "db.internal", DBPort: 5433, DBUser: "odoo", DBPassword: `s3cr'et\pw #not a comment`,
		DataDir: "/srv/odoo/data", DBSSLMode: "prefer"}
	got := cfg
	got.Options = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if ap := cfg.Options["addons_path"]; ap != "/usr/lib/python3/dist-packages/odoo/addons,\n/opt/odoo/custom" {
		t.Errorf("continuation: addons_path = %q", ap)
	}
	if _, ok := cfg.Options["db_name"]; ok {
		t.Error("db_name = False should be unset")
	}
	if _, ok := cfg.Options["channels"]; ok {
		t.Error("a setting of another section leaked into options")
	}
}

func TestParseErrors(t *testing.T) {
	for name, in := range map[string]string{
		"no section":      "db_host = x\n",
		"bad port":        "[options]\ndb_port = 54x\n",
		"port range":      "[options]\ndb_port = 70000\n",
		"open header":     "[options\n",
		"no equals":       "[options]\njust words\n",
		"dangling indent": "[options]\n\n  continued\n",
		"empty key":       "[options]\n= value\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestUnsetValues(t *testing.T) {
	cfg, err := Parse(strings.NewReader("[options]\ndb_host = False\ndb_port = False\ndb_user = None\ndb_password = false\ndata_dir =\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DBHost != "" || cfg.DBPort != 0 || cfg.DBUser != "" || cfg.DBPassword != "" || cfg.DataDir != "" {
		t.Errorf("unset values read as set: %+v", cfg)
	}
	if s := cfg.ConnString(""); s != "" {
		t.Errorf("ConnString of an all-default config = %q, want empty", s)
	}
}

func TestConnStringAndConfig(t *testing.T) {
	cfg, err := Parse(strings.NewReader(debianConf))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.ConnString("prod db")
	if strings.Contains(s, "s3cr") {
		t.Fatalf("connection string holds the password: %s", s)
	}
	cc, err := cfg.ConnConfig("prod db")
	if err != nil {
		t.Fatal(err)
	}
	if cc.Host != "db.internal" || cc.Port != 5433 || cc.User != "odoo" || cc.Database != "prod db" || cc.Password != cfg.DBPassword {
		t.Errorf("ConnConfig: host %q port %d user %q db %q password set %v", cc.Host, cc.Port, cc.User, cc.Database, cc.Password == cfg.DBPassword)
	}
}

func TestDatabase(t *testing.T) {
	for _, c := range []struct{ dbName, flag, want string }{
		{"", "", ""}, {"prod", "", "prod"}, {"prod", "copy", "copy"}, {"a,b", "", ""}, {"a,b", "b", "b"},
	} {
		if got := (Config{DBName: c.dbName}).Database(c.flag); got != c.want {
			t.Errorf("db_name %q, --db %q: %q, want %q", c.dbName, c.flag, got, c.want)
		}
	}
}

func TestFilestoreDir(t *testing.T) {
	cfg := Config{DataDir: "/var/lib/odoo"}
	got, err := cfg.FilestoreDir("prod")
	if err != nil || got != "/var/lib/odoo/filestore/prod" {
		t.Errorf("FilestoreDir = %q, %v", got, err)
	}
	for _, bad := range []string{"", "..", "a/b"} {
		if _, err := cfg.FilestoreDir(bad); err == nil {
			t.Errorf("FilestoreDir(%q): no error", bad)
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	got, err = Config{DataDir: "~/odoo-data"}.FilestoreDir("x")
	if err != nil || got != filepath.Join(home, "odoo-data", "filestore", "x") {
		t.Errorf("~ data_dir: %q, %v", got, err)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "odoo.conf")
	if err := os.WriteFile(p, []byte(debianConf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil || cfg.Path != p || cfg.DBHost != "db.internal" {
		t.Fatalf("Load: %+v, %v", cfg, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.conf")); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParse: Parse never panics; whatever it accepts yields a connection
// string without the password that the driver can parse back to the same
// host, user and database.
func FuzzParse(f *testing.F) {
	f.Add(debianConf)
	f.Add("[options]\ndb_host=False\n")
	f.Add("[options]\ndb_user = o'dd\\user\ndb_password = pw\n  more\n")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		s := cfg.ConnString("db")
		if len(cfg.DBPassword) >= 4 && strings.Contains(s, cfg.DBPassword) &&
			!strings.Contains(cfg.DBHost+cfg.DBUser+cfg.DBSSLMode, cfg.DBPassword) {
			t.Fatalf("password in connection string %q", s)
		}
		if strings.ContainsAny(cfg.DBHost+cfg.DBUser, "\x00") || cfg.DBSSLMode != "" {
			return // the driver refuses these; nothing to compare
		}
		cc, err := cfg.ConnConfig("db")
		if err != nil {
			return // a host the driver cannot parse (commas, brackets …)
		}
		if cfg.DBUser != "" && cc.User != cfg.DBUser {
			t.Fatalf("user %q came back as %q from %q", cfg.DBUser, cc.User, s)
		}
		if cc.Database != "db" {
			t.Fatalf("database came back as %q from %q", cc.Database, s)
		}
	})
}
