package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/basebackup"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
)

func backupCommand() *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "take a base backup over a replication connection",
		Flags: flags(commonFlags(), repoFlags(), pgFlags(), progressFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "fast", EnvVars: env("fast"), Usage: "request an immediate checkpoint instead of a spread one"},
			&cli.StringFlag{Name: "label", EnvVars: env("label"), Value: "walvault", Usage: "backup label"},
			&cli.DurationFlag{Name: "wal-timeout", EnvVars: env("wal-timeout"), Value: 5 * time.Minute, Usage: "how long to wait for the WAL the backup needs to be archived"},
			&cli.IntFlag{Name: "workers", EnvVars: env("workers"), Usage: "parallel compress+encrypt+upload workers (default: number of CPUs)"},
			&cli.IntFlag{Name: "max-rate", EnvVars: env("max-rate"), Usage: "throttle the server's send rate, kB/s (0: unlimited)"},
			&cli.BoolFlag{Name: "keep", Usage: "mark the backup to keep whatever the retention policy says ('walvault keep --release' undoes it)"},
			&cli.StringFlag{Name: "note", Usage: "annotation stored with the backup (\"before the v17 upgrade\")"},
			&cli.BoolFlag{Name: "read-all", Usage: "on PostgreSQL 17+ with summarize_wal on, still have the server read and send every block (deduplicated as usual) instead of only those its WAL summaries say changed"},
			&cli.Float64Flag{Name: "block-refresh-days", EnvVars: env("block-refresh-days"), Value: 30, Usage: "store every block anew (share none) when the previous backup uses blocks stored more than this many days ago, so that erased rows leave the repository within this period plus the retention period (0: never)"},
			&cli.BoolFlag{Name: "chunks", Usage: "store the backup as whole tar chunks instead of deduplicated blocks (blocks need a format-2 repository and a writer key)"},
			lockWaitFlag(10 * time.Minute),
		}),
		Description: `The backup is listed (and usable by restore) only once every chunk is stored and
all WAL from its start to its end LSN is in the repository. archive_command must
therefore be 'walvault wal-push %p' on the same repository.`,
		Action: func(c *cli.Context) error {
			refresh := settingsOf(c).BlockRefreshDays
			refreshAfter, err := daysFlag("block-refresh-days", refresh)
			if err != nil {
				return err
			}
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			prog, log, err := startProgress(c, log)
			if err != nil {
				return err
			}
			defer prog.Close()
			// The identity, when this host has one, lets the backup date
			// its end from the server's backup history file; without it
			// the stop time is estimated and readers correct it.
			r, err := openRepo(c.Context, c, accessWrite|accessReadIfConfigured)
			if err != nil {
				return err
			}
			defer r.Close()
			var note *repo.BackupNote
			if settingsOf(c).Keep || settingsOf(c).Note != "" {
				note = &repo.BackupNote{Actor: repo.CurrentActor(version), Note: settingsOf(c).Note}
				if settingsOf(c).Keep {
					keep := true
					note.Keep = &keep
				}
			}
			blocks := !c.Bool("chunks")
			if blocks && settingsOf(c).S3ObjectLockDays > 0 {
				// A block backup reuses blocks from older packs whose
				// retention ends before this backup's would: under Object
				// Lock every backup must stand on objects locked as long
				// as itself, so it stores whole chunks.
				log.Info("object lock: storing whole chunks, not blocks shared with older backups whose lock ends sooner", "days", settingsOf(c).S3ObjectLockDays)
				blocks = false
			}
			start := time.Now()
			m, err := basebackup.Run(c.Context, r, basebackup.Options{
				ConnString:   settingsOf(c).PGURL,
				Label:        settingsOf(c).Label,
				Fast:         settingsOf(c).Fast,
				WALTimeout:   settingsOf(c).WALTimeout,
				Workers:      settingsOf(c).Workers,
				MaxRate:      int32(settingsOf(c).MaxRate),
				Logger:       log,
				Version:      version,
				Note:         note,
				Progress:     prog.Update,
				Phase:        func(name string) { prog.Start(name, -1) },
				Change:       changeOptions(c, log),
				Blocks:       blocks,
				ReadAll:      c.Bool("read-all"),
				RefreshAfter: refreshAfter,
			})
			prog.Close()
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			el := time.Since(start)
			fmt.Fprintf(c.App.Writer, "backup %s complete: %s to %s on timeline %d, %s stored as %s in %s\n",
				m.ID, m.StartLSN, m.StopLSN, m.Timeline, units.Bytes(m.Bytes), units.Bytes(m.StoredBytes), el.Round(time.Millisecond))
			if b := m.Blocks; b != nil {
				fmt.Fprintf(c.App.Writer, "blocks: %d, %d new (%s stored), %d shared with earlier backups (%s)\n",
					b.Blocks, b.NewBlocks, units.Bytes(b.NewBytes), b.SharedBlocks, units.Bytes(b.SharedBytes))
				if b.RefreshedFrom != "" {
					fmt.Fprintf(c.App.Writer, "refreshed: backup %s used blocks older than %g days; this one stores every block anew\n", b.RefreshedFrom, refresh)
				}
				if b.IncrementalFrom != "" {
					fmt.Fprintf(c.App.Writer, "incremental from %s: PostgreSQL sent %d changed blocks of %d relation files\n",
						b.IncrementalFrom, b.IncrementalBlocks, b.IncrementalFiles)
				}
			}
			return nil
		},
	}
}
