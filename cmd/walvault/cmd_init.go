package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/repo"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the repository for this PostgreSQL cluster, or confirm that an existing one matches",
		Flags: flags(commonFlags(), repoFlags(), pgFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "no-encryption", EnvVars: env("no-encryption"), Usage: "create a repository WITHOUT encryption (every object is then marked plaintext)"},
		}),
		Description: `Connects to PostgreSQL over a replication connection to read the system
identifier, major version and WAL segment size the repository is bound to.`,
		Action: func(c *cli.Context) error {
			ctx := c.Context
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			conn, err := replconn.Connect(ctx, settingsOf(c).PGURL)
			if err != nil {
				return err
			}
			cl, err := replconn.Identify(ctx, conn)
			conn.Close(ctx)
			if err != nil {
				return err
			}
			st, err := openStore(ctx, c)
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			cfg := repo.Config{
				SystemIdentifier: strconv.FormatUint(cl.SystemIdentifier, 10),
				PGMajor:          cl.Major,
				WALSegmentSize:   cl.WALSegmentSize,
				Encryption:       repo.EncryptionAge,
				CreatedAt:        time.Now().UTC(),
				CreatedBy:        host,
			}
			if settingsOf(c).NoEncryption {
				cfg.Encryption = repo.EncryptionNone
			}
			opts, err := keyOptions(c, cfg, 0)
			if err != nil {
				return err
			}
			if cfg.Encrypted() {
				// Fail now, not at the first archive_command, when no
				// recipient is configured.
				rs, err := loadRecipients(c)
				if err != nil {
					return err
				}
				opts.Recipients = rs
			}
			r, created, err := repo.Init(ctx, st, cfg, opts)
			if err != nil {
				return err
			}
			defer r.Close()
			verb := "matches"
			if created {
				verb = "created"
				r.Record(ctx, "init", repo.Audit{Action: "created the repository", Details: []string{
					fmt.Sprintf("system identifier %s, PostgreSQL %d, WAL segment size %d, encryption %s",
						r.Config.SystemIdentifier, r.Config.PGMajor, r.Config.WALSegmentSize, r.Config.Encryption)}},
					repo.ChangeOptions{Actor: repo.CurrentActor(version), Logger: log})
			}
			log.Info("repository "+verb, "repo", st.String(), "system_identifier", r.Config.SystemIdentifier,
				"pg_major", r.Config.PGMajor, "wal_segment_size", r.Config.WALSegmentSize, "encryption", r.Config.Encryption)
			fmt.Fprintf(c.App.Writer, "repository %s %s (system identifier %s, PostgreSQL %d, encryption %s)\n",
				st, verb, r.Config.SystemIdentifier, r.Config.PGMajor, r.Config.Encryption)
			return nil
		},
	}
}
