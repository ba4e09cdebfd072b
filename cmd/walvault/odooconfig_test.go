package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"
)

func odooTestContext(t *testing.T, args ...string) *cli.Context {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	for _, f := range flags(pgFlags(), odooFlags()) {
		if err := f.Apply(fs); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cli.NewContext(cli.NewApp(), fs, nil)
}

func TestOdooConnConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "odoo.conf")
	if err := os.WriteFile(conf, []byte("[options]\ndb_host = 10.0.0.5\ndb_port = 6432\ndb_user = odoo\ndb_password = Very-Secret-1\ndata_dir = /var/lib/odoo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := odooTestContext(t, "--odoo-config", conf)
	cc, err := odooConnConfig(c, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if cc.Host != "10.0.0.5" || cc.Port != 6432 || cc.User != "odoo" || cc.Password != "Very-Secret-1" || cc.Database != "prod" {
		t.Errorf("from odoo.conf: %s:%d user %s db %s", cc.Host, cc.Port, cc.User, cc.Database)
	}
	d, err := odooDataDir(c, "")
	if err != nil || d != "/var/lib/odoo" {
		t.Errorf("data dir %q, %v", d, err)
	}
	if d, _ := odooDataDir(c, "/elsewhere"); d != "/elsewhere" {
		t.Errorf("--data-dir should win, got %q", d)
	}

	c = odooTestContext(t, "--odoo-config", conf, "--pg-url", "postgres://u@h:7/x")
	cc, err = odooConnConfig(c, "copy")
	if err != nil {
		t.Fatal(err)
	}
	if cc.Host != "h" || cc.Database != "copy" || cc.Password != "" {
		t.Errorf("--pg-url should win: %s db %s", cc.Host, cc.Database)
	}

	c = odooTestContext(t, "--odoo-config", filepath.Join(t.TempDir(), "none.conf"))
	if _, err := odooConnConfig(c, "x"); exitCode(err) != exitConfig {
		t.Errorf("missing named odoo.conf: exit %d (%v), want %d", exitCode(err), err, exitConfig)
	}
}
