package main

import (
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/walvault/walvault/internal/progress"
)

// progressFlags are the flags of commands that show progress.
func progressFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-progress", EnvVars: env("no-progress"), Usage: "show no progress (no bar on a terminal, no periodic log lines elsewhere)"},
		&cli.DurationFlag{Name: "progress-interval", EnvVars: env("progress-interval"), Value: progress.DefaultInterval,
			Usage: "when stderr is not a terminal or logs are JSON: log a progress line this often (a shorter operation logs none)"},
	}
}

// startProgress makes the progress reporter of a command with
// progressFlags, and the logger to use while it runs: on a terminal its
// records clear the bar before they are written. The reporter is nil with
// --no-progress (every method of a nil reporter does nothing). Close it
// before printing results.
func startProgress(c *cli.Context, log *slog.Logger) (*progress.Reporter, *slog.Logger, error) {
	if settingsOf(c).NoProgress {
		return nil, log, nil
	}
	interval := settingsOf(c).ProgressInterval
	if interval <= 0 {
		return nil, nil, usagef("--progress-interval %v: give a positive duration such as 10s", interval)
	}
	opts := progress.Options{Out: c.App.ErrWriter, Logger: log, Interval: interval}
	// A bar is for people: not in JSON logs, not on a terminal that
	// cannot move the cursor.
	if f, ok := c.App.ErrWriter.(*os.File); ok && isTerminal(f) && settingsOf(c).LogFormat != "json" && os.Getenv("TERM") != "dumb" {
		opts.Terminal = true
		opts.Width = func() int {
			cols, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return cols
		}
	}
	p := progress.New(opts)
	return p, slog.New(p.Handler(log.Handler())), nil
}
