package main

import (
	"encoding/json"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/restore/info"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "list backups, archived WAL per timeline, and the window a restore can reach",
		Flags: flags(commonFlags(), repoFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		}),
		Action: func(c *cli.Context) error {
			r, err := openRepo(c.Context, c, accessRead)
			if err != nil {
				return err
			}
			defer r.Close()
			// A report comes with the error of its unreadable backups:
			// print it, then exit with that error.
			rep, err := info.Load(c.Context, r)
			if rep == nil {
				return err
			}
			if settingsOf(c).JSON {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(rep); jerr != nil {
					return jerr
				}
				return err
			}
			rep.WriteText(c.App.Writer)
			return err
		},
	}
}
