package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/rekey"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
)

func rekeyCommand() *cli.Command {
	return &cli.Command{
		Name:  "rekey",
		Usage: "re-encrypt every object to the configured recipients, to retire an old key (dry run unless --confirm)",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "confirm", Usage: "re-encrypt for real; without it, only count what would be re-encrypted"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Value: 4, Usage: "objects re-encrypted in parallel"},
			lockWaitFlag(0),
		}),
		Description: `Put the new recipient in --age-recipients (or the recipients file) and both the
old and the new identity in the identity file (one key per line), run
'walvault rekey --confirm', then 'walvault verify' with only the new identity.
Every object stays readable throughout; an interrupted run is finished by
running it again. Refuses to run when no configured identity could read
objects encrypted to the new recipients.`,
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			r, err := openRepo(c.Context, c, accessRead|accessWrite)
			if err != nil {
				return err
			}
			defer r.Close()
			if !r.Config.Encrypted() {
				return usagef("repository %s is not encrypted: there is nothing to rekey", r)
			}
			if err := rekey.CheckReadable(r); err != nil {
				return &configError{err: err}
			}
			if !settingsOf(c).Confirm {
				n, bytes, err := rekey.Count(c.Context, r)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "dry run: would re-encrypt %d objects (%s stored) to the configured recipients; nothing was changed. Run again with --confirm.\n", n, units.Bytes(bytes))
				return nil
			}
			start := time.Now()
			res, err := rekey.Run(c.Context, r, rekey.Options{Workers: settingsOf(c).Workers, Change: changeOptions(c, log)})
			if errors.Is(err, repo.ErrLocked) {
				return fmt.Errorf("rekey: %w", err)
			}
			if err != nil {
				return fmt.Errorf("rekey stopped part-way (every object is still readable with the old or the new identity; run it again to finish): %w", err)
			}
			fmt.Fprintf(c.App.Writer, "re-encrypted %d objects (%s) to the configured recipients in %s\n", res.Objects, units.Bytes(res.Bytes), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}
