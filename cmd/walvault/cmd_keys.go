package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/crypto"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "write a new age identity (private key) and repository root key to FILE and print the recipient (public key)",
		ArgsUsage: "FILE",
		Flags:     commonFlags(),
		Description: `Keep FILE offline or in a secrets store: restore needs it, and so does
'walvault writer issue', which certifies the hosts that write the repository
with its root key. The printed recipient (stdout) is what the hosts that
archive encrypt to; the root's public key (stderr) is what readers trust.`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("keygen needs exactly one argument: the identity file to create")
			}
			rcpt, root, err := crypto.Keygen(c.Args().First(), time.Now())
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			fmt.Fprintln(c.App.Writer, rcpt)
			fmt.Fprintf(c.App.ErrWriter, "walvault keygen: root %s; certify each host that writes the repository with: walvault writer issue --age-identity-file %s --name HOST FILE\n", root, c.Args().First())
			return nil
		},
	}
}
