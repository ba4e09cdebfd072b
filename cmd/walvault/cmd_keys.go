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
		Usage:     "write a new age identity (private key) to FILE and print its recipient (public key)",
		ArgsUsage: "FILE",
		Flags:     commonFlags(),
		Description: `Keep FILE offline or in a secrets store: only restore needs it. The printed
recipient goes into WALVAULT_AGE_RECIPIENTS on the hosts that archive.`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("keygen needs exactly one argument: the identity file to create")
			}
			rcpt, err := crypto.Keygen(c.Args().First(), time.Now())
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			fmt.Fprintln(c.App.Writer, rcpt)
			return nil
		},
	}
}
