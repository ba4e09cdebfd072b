package e2e

import (
	"context"
	_ "embed"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// odoo17SQL is the Odoo-17-shaped schema and seed rows (testdata/odoo17.sql):
// the real column names and types of the tables that backups, filestore
// restores, neutralization and anonymisation care about, and a small
// company's worth of partners, users, employees, messages, crons, mail
// servers and live payment providers.
//
//go:embed testdata/odoo17.sql
var odoo17SQL string

// ExecDB (ConnectDB is in drill_test.go) runs SQL (one or more statements, no arguments when more than
// one) in database db and fails the test on error.
func (c *Cluster) ExecDB(db, sql string, args ...any) {
	c.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := c.ConnectDB(ctx, db)
	if err != nil {
		c.h.t.Fatalf("connect to %s/%s: %v", c.Name, db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		c.h.t.Fatalf("%s/%s: %s: %v", c.Name, db, tail(sql, 5), err)
	}
}

// loadOdoo17 creates database db on the running cluster and loads the
// Odoo-17-shaped fixture into it.
func loadOdoo17(t testing.TB, c *Cluster, db string) {
	t.Helper()
	c.Exec("CREATE DATABASE " + pgx.Identifier{db}.Sanitize())
	c.ExecDB(db, odoo17SQL)
}

// TestOdooFixtureLoads: the fixture loads into a fresh PostgreSQL database
// and holds what the Odoo tests rely on.
func TestOdooFixtureLoads(t *testing.T) {
	h := newHarness(t)
	pg := h.InitCluster("odoo-pg")
	pg.Start()
	loadOdoo17(t, pg, "odoo17")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pg.ConnectDB(ctx, "odoo17")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, c := range []struct {
		sql  string
		want int
	}{
		{"SELECT count(*) FROM ir_module_module WHERE state = 'installed'", 18},
		{"SELECT count(*) FROM ir_cron WHERE active", 5},
		{"SELECT count(*) FROM ir_mail_server WHERE active", 2},
		{"SELECT count(*) FROM payment_provider WHERE state = 'enabled'", 3},
		{"SELECT count(*) FROM res_partner WHERE email IS NOT NULL", 11},
		{"SELECT count(*) FROM ir_model_data WHERE module = 'base' AND name = 'autovacuum_job'", 1},
	} {
		var got int
		if err := conn.QueryRow(ctx, c.sql).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if got != c.want {
			t.Errorf("%s = %d, want %d", c.sql, got, c.want)
		}
	}
}
