package main

import (
	"fmt"
	"os"
	"regexp"
	"time"

	"filippo.io/age"
	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/crypto"
)

// writerNameRe is what a writer may be called: a host or service name.
var writerNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func writerCommand() *cli.Command {
	return &cli.Command{
		Name:  "writer",
		Usage: "writer keys: what signs the objects a host writes to a format-2 repository",
		Subcommands: []*cli.Command{{
			Name:      "issue",
			Usage:     "make a writer key for one host (or service), certified by the root key of the identity file",
			ArgsUsage: "FILE",
			Flags: flags(commonFlags(), []cli.Flag{
				&cli.StringFlag{Name: "age-identity-file", EnvVars: env("age-identity-file"), Usage: "the identity file walvault keygen made (its root key certifies the writer)"},
				&cli.StringFlag{Name: "name", Usage: "the writer's `NAME`, e.g. the host: db1, odoo-filestore@db1"},
				&cli.StringFlag{Name: "age-recipients", EnvVars: env("age-recipients"), Usage: "recipients the writer encrypts to (default: the identity file's own)"},
			}),
			Description: `A writer key signs what its host writes (WAL, backups, filestore): readers
check the signatures against the root key kept in the identity file, so an
object planted by whoever can write the bucket is refused. The key cannot
decrypt anything. Issue one per host (or service), on the machine where the
identity is, and install FILE on that host readable only by the user that
writes (postgres, odoo, or the group walvault), then set writer-key-file =
FILE in its configuration. FILE also records the recipients, so that
configuration needs no age-recipients.`,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef("writer issue needs exactly one argument: the writer key file to create")
				}
				s := settingsOf(c)
				if !writerNameRe.MatchString(s.Name) {
					return usagef("--name %q: give the writer a name of letters, digits, '.', '_', '@' and '-' (the host, or host and service)", s.Name)
				}
				if s.AgeIdentityFile == "" {
					return configf("writer issue needs the identity file keygen made (--age-identity-file): its root key certifies the writer")
				}
				roots, err := crypto.LoadRoots(s.AgeIdentityFile)
				if err != nil {
					return &configError{err: err}
				}
				if len(roots) != 1 {
					return configf("identity file %s holds %d walvault root keys, want one (an identity file from a walvault before format 2 has none: make a new one with walvault keygen for a format-2 repository)", s.AgeIdentityFile, len(roots))
				}
				recipients, err := writerRecipients(s)
				if err != nil {
					return err
				}
				w, err := roots[0].Issue(s.Name, time.Now(), recipients)
				if err != nil {
					return err
				}
				if err := crypto.WriteWriterKey(c.Args().First(), w); err != nil {
					return configf("writer issue: %v", err)
				}
				fmt.Fprintf(c.App.Writer, "writer %s (%s), certified by root %s, written to %s (mode 0600: give it to the user that writes)\n",
					w.Cert.Name, w.Cert.ID, w.Cert.Root, c.Args().First())
				return nil
			},
		}},
	}
}

// writerRecipients are --age-recipients, else the recipients of the
// identity file's own identities.
func writerRecipients(s *settings) ([]string, error) {
	if s.AgeRecipients != "" {
		if _, err := crypto.ParseRecipients(s.AgeRecipients); err != nil {
			return nil, &configError{err: fmt.Errorf("--age-recipients: %w", err)}
		}
		return []string{s.AgeRecipients}, nil
	}
	f, err := os.Open(s.AgeIdentityFile)
	if err != nil {
		return nil, &configError{err: err}
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, configf("identity file %s: %v", s.AgeIdentityFile, err)
	}
	var out []string
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			out = append(out, x.Recipient().String())
		}
	}
	if len(out) == 0 {
		return nil, configf("identity file %s holds no X25519 identity to take the recipient from: give --age-recipients", s.AgeIdentityFile)
	}
	return out, nil
}
