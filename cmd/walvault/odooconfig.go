package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/internal/odooconf"
)

// The Odoo commands (odoo neutralize/anonymize, filestore push/restore)
// share these: a sysadmin on a standard Debian or container install passes
// no connection or data_dir flags, odoo.conf says them.

// odooFlags is --odoo-config. Add it (with pgFlags) to every Odoo-aware
// command.
func odooFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "odoo-config", EnvVars: env("odoo-config"),
			Usage: "Odoo's configuration file, for the database connection and data_dir (default: " + odooconf.DefaultPath + " when it exists)"},
	}
}

// odooConfig reads --odoo-config, else odooconf.DefaultPath when that file
// exists. found is false when there is no file to read; a named file that
// cannot be read is a configuration error.
func odooConfig(c *cli.Context) (cfg odooconf.Config, found bool, err error) {
	path := settingsOf(c).OdooConfig
	if path == "" {
		if _, err := os.Stat(odooconf.DefaultPath); errors.Is(err, fs.ErrNotExist) {
			return odooconf.Config{}, false, nil
		}
		path = odooconf.DefaultPath
	}
	cfg, err = odooconf.Load(path)
	if err != nil {
		return odooconf.Config{}, false, &configError{err: err}
	}
	return cfg, true, nil
}

// dbRoleFlag is --db-user: the database role walvault uses on a server it
// started on a restored cluster (drill, restore's steps, restore
// --database). Without it: the cluster's bootstrap superuser, else
// odoo.conf's db_user, else the name of the user the server runs as.
func dbRoleFlag() cli.Flag {
	return &cli.StringFlag{Name: "db-user", EnvVars: env("db-user"),
		Usage: "database `ROLE` walvault connects as on the server it starts on the restored cluster (default: the cluster's bootstrap superuser, read from the restored files; else odoo.conf's db_user; else the server's OS user)"}
}

// fallbackRoles are the roles to try on a restored cluster when neither
// --db-user nor its bootstrap superuser can be used: odoo.conf's db_user.
// An odoo.conf that cannot be read is not an error here.
func fallbackRoles(c *cli.Context) []string {
	cfg, found, err := odooConfig(c)
	if err != nil || !found || cfg.DBUser == "" {
		return nil
	}
	return []string{cfg.DBUser}
}

// odooDataDir is dataDir when set (the command's --data-dir), else
// odoo.conf's data_dir, else Odoo's default (~odoo/.local/share/Odoo).
func odooDataDir(c *cli.Context, dataDir string) (string, error) {
	if dataDir != "" {
		return dataDir, nil
	}
	cfg, _, err := odooConfig(c)
	if err != nil {
		return "", err
	}
	d, err := cfg.DataDirOrDefault()
	if err != nil {
		return "", configf("Odoo data directory: %v; pass --data-dir or set data_dir in odoo.conf (--odoo-config)", err)
	}
	return d, nil
}

// odooConnConfig is the connection to database db: --pg-url when set (its
// database replaced by db when db is given), else odoo.conf's db_* settings,
// else the libpq environment (PGHOST, PGUSER, ~/.pgpass …). The password
// stays in the returned config; it never goes through argv or a log.
func odooConnConfig(c *cli.Context, db string) (*pgx.ConnConfig, error) {
	if u := settingsOf(c).PGURL; u != "" {
		cc, err := pgx.ParseConfig(u)
		if err != nil {
			// Not pgx's message: its redaction of a password (allowed in
			// WALVAULT_PG_URL and the config file) is best effort.
			return nil, configf("--pg-url cannot be parsed: give a libpq URL or key=value string")
		}
		if db != "" {
			cc.Database = db
		}
		return cc, nil
	}
	cfg, found, err := odooConfig(c)
	if err != nil {
		return nil, err
	}
	if found {
		cc, err := cfg.ConnConfig(db)
		if err != nil {
			return nil, configf("%s: %v", cfg.Path, err)
		}
		return cc, nil
	}
	cc, err := pgx.ParseConfig("")
	if err != nil {
		return nil, configf("PostgreSQL connection from the environment: %v", err)
	}
	if db != "" {
		cc.Database = db
	}
	return cc, nil
}
