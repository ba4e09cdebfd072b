package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/archive/stream"
	"github.com/walvault/walvault/internal/service"
	"github.com/walvault/walvault/repo"
)

func streamCommand() *cli.Command {
	return &cli.Command{
		Name:  "stream",
		Usage: "stream WAL continuously over a replication connection, keeping the repository about a second behind the primary",
		Flags: flags(commonFlags(), repoFlags(), pgFlags(), []cli.Flag{
			&cli.StringFlag{Name: "spool", EnvVars: env("spool"), Usage: "local spool directory: received WAL is fsynced here before it is reported flushed (required)"},
			&cli.StringFlag{Name: "slot", EnvVars: env("slot"), Value: "walvault", Usage: "physical replication slot"},
			&cli.BoolFlag{Name: "create-slot", EnvVars: env("create-slot"), Usage: "create the replication slot when it is missing"},
			&cli.StringFlag{Name: "max-spool", EnvVars: env("max-spool"), Value: "4GiB", Usage: "stop receiving while the spool holds more WAL not yet uploaded (the slot then keeps it on the primary)"},
			&cli.DurationFlag{Name: "partial-interval", EnvVars: env("partial-interval"), Value: time.Second, Usage: "upload the segment in progress at least this often while it changes"},
			&cli.BoolFlag{Name: "synchronous", EnvVars: env("synchronous"), Usage: "fsync and report flush after every message, so the daemon can be a synchronous standby (see docs/COMMANDS.md)"},
			&cli.StringFlag{Name: "application-name", EnvVars: env("application-name"), Value: "walvault", Usage: "application_name the server sees (for synchronous_standby_names)"},
			&cli.StringFlag{Name: "slot-warn", EnvVars: env("slot-warn"), Value: "1GiB", Usage: "warn when the slot makes the primary retain more WAL than this"},
			&cli.StringFlag{Name: "metrics-addr", EnvVars: env("metrics-addr"), Usage: "serve Prometheus metrics and /healthz here, e.g. " + service.DefaultAddr + " (off unless set; keep it on loopback)"},
		}),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			spool := settingsOf(c).Spool
			if spool == "" {
				return usagef("stream needs --spool DIR (or WALVAULT_SPOOL): a local directory for WAL not yet uploaded")
			}
			maxSpool, err := parseSize(settingsOf(c).MaxSpool)
			if err != nil {
				return usagef("--max-spool: %v", err)
			}
			slotWarn, err := parseSize(settingsOf(c).SlotWarn)
			if err != nil {
				return usagef("--slot-warn: %v", err)
			}
			if name := settingsOf(c).ApplicationName; name != "" && os.Getenv("PGAPPNAME") == "" {
				// libpq's own variable: a connection string that names one still wins.
				os.Setenv("PGAPPNAME", name)
			}
			r, err := openRepo(c.Context, c, accessWrite)
			if err != nil {
				return err
			}
			defer r.Close()
			s, err := stream.New(r, stream.Options{
				ConnString:      settingsOf(c).PGURL,
				Slot:            settingsOf(c).Slot,
				CreateSlot:      settingsOf(c).CreateSlot,
				Spool:           spool,
				MaxSpool:        maxSpool,
				PartialInterval: settingsOf(c).PartialInterval,
				Synchronous:     settingsOf(c).Synchronous,
				SlotWarnBytes:   slotWarn,
				Logger:          log,
				Ready: func() {
					if _, err := service.Notify("READY=1"); err != nil {
						log.Warn("systemd notify", "err", err)
					}
				},
			})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			policy := service.HealthPolicy{Started: time.Now(), MaxDisconnected: 5 * time.Minute, MaxLag: 5 * time.Minute}
			healthy := func() error { return policy.Check(service.StreamStatus(s.Status()), time.Now()) }
			// The watchdog proves the daemon is alive, not that the primary
			// or the store is: restarting it during their outage would only
			// cut uploads short. Status takes the streamer's lock, so a
			// wedged streamer stops the pings.
			go service.RunWatchdog(ctx, func() bool { s.Status(); return true })
			metricsDone := make(chan error, 1)
			if addr := settingsOf(c).MetricsAddr; addr != "" {
				srv := metricsServer(ctx, addr, r, s, healthy)
				var lc net.ListenConfig
				ln, err := lc.Listen(ctx, "tcp", addr)
				if err != nil {
					return &configError{err: fmt.Errorf("--metrics-addr %s: %w", addr, err)}
				}
				go func() { metricsDone <- service.Serve(ctx, srv, ln) }()
				log.Info("serving metrics and /healthz", "addr", ln.Addr().String())
			} else {
				metricsDone <- nil
			}
			err = s.Run(ctx)
			cancel()
			if merr := <-metricsDone; merr != nil {
				log.Warn("metrics server", "err", merr)
			}
			service.Notify("STOPPING=1")
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("stream: %w", err)
			}
			return nil
		},
	}
}

func metricsServer(ctx context.Context, addr string, r *repo.Repository, s *stream.Streamer, healthy func() error) *http.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(service.NewStreamCollector(func() service.StreamStatus { return service.StreamStatus(s.Status()) }))
	reg.MustRegister(service.NewBuildInfoCollector(version))
	reg.MustRegister(service.NewLastBackupCollector(lastBackupPoller(ctx, r)))
	return service.NewServer(addr, reg, healthy)
}

// lastBackupPoller reads the newest backup id (its start time) from the
// repository every few minutes, for walvault_last_backup_timestamp_seconds.
func lastBackupPoller(ctx context.Context, r *repo.Repository) func() (time.Time, bool) {
	var (
		mu     sync.Mutex
		latest time.Time
	)
	go func() {
		tick := time.NewTicker(5 * time.Minute)
		defer tick.Stop()
		for {
			if ids, err := r.BackupIDs(ctx); err == nil && len(ids) > 0 {
				if t, err := time.Parse("20060102T150405Z", ids[len(ids)-1]); err == nil {
					mu.Lock()
					latest = t
					mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		return latest, !latest.IsZero()
	}
}

// parseSize reads "4GiB", "512MiB", "1G", "1073741824".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (examples: 4GiB, 512MiB, 1073741824)", s)
	}
	return n * mult, nil
}
