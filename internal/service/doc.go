// Package service is what a long-running walvault daemon (walvault stream)
// needs to live under systemd and be watched by Prometheus: metrics, an
// HTTP endpoint for them and for a health check, and the systemd
// notification protocol. It knows nothing of how WAL is streamed: the CLI
// copies the streamer's status into a StreamStatus and passes functions in.
//
// # Metrics
//
// NewStreamCollector exports the streamer's state under walvault_stream_*
// (connection, timeline, LSNs as byte positions, lag, spool size, upload
// counters, last receive and upload times, WAL retained by the replication
// slot); NewLastBackupCollector exports walvault_last_backup_timestamp_seconds
// and NewBuildInfoCollector walvault_build_info{version}. Samples whose value
// is not known yet (a zero LSN or time) are left out rather than exported as
// 0. deploy/prometheus and deploy/grafana hold alert rules and a dashboard
// built on these names; renaming a metric breaks them.
//
// The metrics contain no secrets: no connection strings, credentials, keys,
// bucket names or object names, only numbers and the version.
//
// # HTTP server
//
// NewServer serves /metrics and /healthz and nothing else (404). Bind it to
// loopback, DefaultAddr (127.0.0.1:9739) unless told otherwise, and let a
// Prometheus on the same host scrape it, or reach it through an SSH tunnel:
// the endpoints have no authentication and nothing on them needs to cross
// the network. 9739 is an unofficial, unregistered port (Prometheus' exporter
// port list is full; 9187 is postgres_exporter's). HealthPolicy is a ready
// health rule for /healthz: unhealthy after too long without a replication
// connection, or when the repository lags the primary too much.
//
// # systemd
//
// Notify implements sd_notify(3) without libsystemd, for units with
// Type=notify: send "READY=1" once the configuration is loaded, the spool
// is open and the metrics listener is up, before the first connection to
// PostgreSQL (a primary that is down at boot must not fail the start; the
// streamer reconnects), "STATUS=…" for systemctl status, and "STOPPING=1"
// when shutdown begins. RunWatchdog feeds WatchdogSec= while the daemon
// reports itself healthy, so systemd restarts a wedged daemon.
package service
