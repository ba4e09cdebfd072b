package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/crypto"
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
			// The writer key decides the format: a key that cannot be
			// used must stop init, not quietly make a format-1
			// repository.
			w, err := initWriterKey(settingsOf(c))
			if err != nil {
				return err
			}
			opts, err := keyOptions(c, cfg, 0)
			if err != nil {
				return err
			}
			opts.Writer = w
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
			if !created && w != nil && r.Signed() && w.Cert.Root != r.Config.Root {
				return configf("writer key file %s is certified by root %s, but %s was created under root %s: it was issued from another identity file. Issue this host's writer key with the identity file of this repository: walvault writer issue --age-identity-file IDENTITY-FILE --name HOST FILE",
					settingsOf(c).WriterKeyFile, w.Cert.Root, st, r.Config.Root)
			}
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

// initWriterKey loads the writer key init signs walvault.json with (nil
// when none is configured: a format-1 repository). Every way it can be
// unusable is a configuration error naming the file.
func initWriterKey(s *settings) (*crypto.WriterKey, error) {
	p := s.WriterKeyFile
	const issue = "make one on the machine that keeps the identity file: walvault writer issue --age-identity-file IDENTITY-FILE --name HOST FILE"
	if p == "" {
		if s.AllowUnsignedRepository {
			return nil, nil
		}
		// Without a writer key the repository would be format 1, which
		// the readers of a root-holding identity then refuse, and whose
		// objects anyone with bucket access can forge: only on request.
		return nil, configf("no writer key: init signs the repository's walvault.json with this host's writer key (writer-key-file, WALVAULT_WRITER_KEY_FILE); %s. An unsigned format-1 repository, which does not detect forged or replaced objects, is made only with --allow-unsigned-repository (docs/SECURITY.md)", issue)
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return nil, configf("writer-key-file %s: %v; %s", p, errors.Unwrap(err), issue)
	case !fi.Mode().IsRegular():
		return nil, configf("writer-key-file %s is not a regular file; %s", p, issue)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, configf("writer-key-file %s has mode %04o: group or others can read the key that signs for this host; chmod 600 %s (owned by the user that writes)", p, uint32(fi.Mode().Perm()), p)
	}
	w, err := crypto.LoadWriterKey(p)
	if err != nil {
		return nil, configf("%v; %s", err, issue)
	}
	if id := s.AgeIdentityFile; id != "" {
		roots, err := crypto.LoadTrustedRoots(id)
		if err != nil {
			return nil, &configError{err: err}
		}
		trusted := len(roots) == 0 // an identity file from before format 2 says nothing
		for _, r := range roots {
			if r.String() == w.Cert.Root {
				trusted = true
			}
		}
		if !trusted {
			return nil, configf("writer key file %s is certified by root %s, which identity file %s does not trust: it was issued from another identity file, and readers with this one would refuse the repository. Issue it again: walvault writer issue --age-identity-file %s --name HOST FILE",
				p, w.Cert.Root, id, id)
		}
	}
	return w, nil
}
