package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/restore/odoo"
)

func odooCommand() *cli.Command {
	// newApp gives the subcommands their config file and settings (Before).
	subs := []*cli.Command{odooNeutralizeCommand(), odooAnonymizeCommand()}
	return &cli.Command{
		Name:        "odoo",
		Usage:       "prepare a restored Odoo database for staging: neutralize, anonymize",
		Subcommands: subs,
	}
}

func odooDBFlags() []cli.Flag {
	return flags(commonFlags(), pgFlags(), odooFlags(), []cli.Flag{
		&cli.StringFlag{Name: "db", EnvVars: env("odoo-db"), Usage: "the restored copy's database `NAME` (default: odoo.conf's db_name when it names one)"},
		&cli.BoolFlag{Name: "force", Usage: "run on a database that is not marked as a copy restored by walvault (it may be production!)"},
		&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON object"},
	})
}

// odooConnect opens a connection to the --db database (see odooConnConfig).
func odooConnect(c *cli.Context) (*pgx.Conn, error) {
	db := settingsOf(c).DB
	if db == "" {
		cfg, _, err := odooConfig(c)
		if err != nil {
			return nil, err
		}
		db = cfg.Database("")
	}
	if db == "" {
		return nil, usagef("name the database with --db (odoo.conf names none, or several)")
	}
	cc, err := odooConnConfig(c, db)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, time.Minute)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		// pgx's connect errors name host, user and database, never the
		// password.
		return nil, fmt.Errorf("%w: database %q: %v", replconn.ErrConnect, db, err)
	}
	return conn, nil
}

func writeOdooReport(c *cli.Context, rep odoo.Report) error {
	if settingsOf(c).JSON {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if rep.Forced {
		fmt.Fprintf(c.App.Writer, "database %s (not marked as a restored copy; --force)\n", rep.Database)
	} else {
		fmt.Fprintf(c.App.Writer, "database %s\n", rep.Database)
	}
	return rep.WriteText(c.App.Writer)
}

func odooNeutralizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "neutralize",
		Usage: "stop a restored Odoo copy from sending mail, running crons, charging cards, calling webhooks",
		Flags: flags(odooDBFlags(), []cli.Flag{baseURLFlag("")}),
		Description: `Applies what Odoo's own neutralization does (Odoo 16, 17, 18), in one transaction:
outgoing mail servers off plus a dummy server on host "invalid", scheduled actions
off except the autovacuum, mail fetching off, payment providers in test mode
without credentials, carriers out of production, IAP tokens disabled, OAuth
providers disabled, calendar sync tokens cleared, webhooks off, and
database.is_neutralized set. Like Odoo's own duplicate, it gives the copy a new
database.uuid and database.secret (production's sessions and signed links stop
working on it), unless walvault already did when it restored the copy.
--base-url sets web.base.url to the copy's address and freezes it.
Tables and columns the database lacks are skipped and reported. Refuses a
database that walvault did not restore (exit 5) unless --force. Running it
twice is harmless.`,
		Action: func(c *cli.Context) error {
			baseURL, err := baseURLOption(c)
			if err != nil {
				return err
			}
			conn, err := odooConnect(c)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			rep, err := odoo.Neutralize(c.Context, conn, odoo.NeutralizeOptions{Force: settingsOf(c).Force, BaseURL: baseURL})
			if err != nil {
				return fmt.Errorf("neutralize %s: %w", conn.Config().Database, err)
			}
			return writeOdooReport(c, rep)
		},
	}
}

// baseURLFlag is --base-url; prefix is what the restore command puts
// before the usage ("with --neutralize: ").
func baseURLFlag(prefix string) cli.Flag {
	return &cli.StringFlag{Name: "base-url",
		Usage: prefix + "set web.base.url to the copy's own `URL` (https://staging.example.com) and freeze it (web.base.url.freeze), so that its links and redirects do not lead to production"}
}

// baseURLOption is --base-url checked, "" when not given.
func baseURLOption(c *cli.Context) (string, error) {
	if settingsOf(c).BaseURL == "" {
		return "", nil
	}
	u, err := odoo.NormalizeBaseURL(settingsOf(c).BaseURL)
	if err != nil {
		return "", usagef("--base-url %v", err)
	}
	return u, nil
}

func odooAnonymizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "anonymize",
		Usage: "replace the personal data of a restored Odoo copy with consistent fake values",
		Flags: flags(odooDBFlags(), []cli.Flag{
			&cli.StringFlag{Name: "rules", EnvVars: env("anonymize-rules"), Usage: "rule `FILE` merged with the default rules (docs/ANONYMIZE.md); replace_default: true in it replaces them"},
			&cli.StringSliceFlag{Name: "keep-login", EnvVars: env("keep-login"), Usage: "res_users `LOGIN` left as is, with its password (repeat for several)"},
			&cli.BoolFlag{Name: "print-rules", Usage: "print the rules that would apply (default merged with --rules) and exit"},
		}),
		Description: `Follows the default rules (partners, users, employees' private fields, messages,
tracking values, mails, leads, applicants, bank accounts, SMS, attachments of
personal records), merged with --rules FILE. The same original value gets the
same fake everywhere (a keyed HMAC, key random per run and never stored);
logins and other unique values stay unique. Runs in one transaction, reports
rows changed per table and column, and marks the database with
ir_config_parameter walvault.anonymized. Refuses a database that walvault did
not restore (exit 5) unless --force.`,
		Action: func(c *cli.Context) error {
			rules, err := loadRules("--rules", settingsOf(c).Rules)
			if err != nil {
				return err
			}
			if settingsOf(c).PrintRules {
				b, err := rules.Marshal()
				if err != nil {
					return err
				}
				_, err = c.App.Writer.Write(b)
				return err
			}
			conn, err := odooConnect(c)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			rep, err := odoo.Anonymize(c.Context, conn, rules, odoo.AnonymizeOptions{
				Force: settingsOf(c).Force, KeepLogins: settingsOf(c).KeepLogin,
			})
			if err != nil {
				return fmt.Errorf("anonymize %s: %w", conn.Config().Database, err)
			}
			return writeOdooReport(c, rep)
		},
	}
}

// loadRules is the default anonymisation rules merged with the rule file
// at path ("" for none), which the flag named flag gave.
func loadRules(flag, path string) (*odoo.Rules, error) {
	rules := odoo.DefaultRules()
	if path == "" {
		return rules, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return rules, configf("%s: %v", flag, err)
	}
	user, err := odoo.ParseRules(b)
	if err != nil {
		return rules, fmt.Errorf("%s: %w", path, err)
	}
	return odoo.Merge(rules, user), nil
}
