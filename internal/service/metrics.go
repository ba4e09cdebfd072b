package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walvault/walvault/internal/pgwal"
)

const namespace = "walvault"

// StreamStatus is a snapshot of the WAL streamer, as the metrics and the
// health check see it. The CLI copies the streamer's own status into it, so
// this package depends on nothing of the archiving side.
//
// Zero values mean "not known yet": a zero LSN is PostgreSQL's invalid
// position and a zero time is "never". The collector leaves such samples out
// rather than export a misleading 0 (an LSN dropping to 0 after a restart
// would read as a counter reset, and a last-upload time of 1970 as a
// 56-year-old upload).
type StreamStatus struct {
	Connected bool
	Timeline  uint32

	ReceivedLSN  pgwal.LSN // written to the local spool
	FlushedLSN   pgwal.LSN // fsynced in the spool (what the server is told is flushed)
	UploadedLSN  pgwal.LSN // durably stored in the repository
	ServerWALEnd pgwal.LSN // the primary's WAL end at its last message

	LastReceive time.Time // last message from the primary
	LastUpload  time.Time // last successful upload

	LagBytes   int64   // WAL the primary has and the repository does not
	LagSeconds float64 // age of the oldest WAL not yet in the repository
	SpoolBytes int64   // bytes in the local spool

	Uploads, UploadRetries, UploadErrors, Reconnects uint64

	SlotRetainedBytes int64 // WAL the primary keeps for the replication slot
}

// streamMetric is one sample of the stream collector: its descriptor, its
// type, and how to read it from a snapshot (ok false leaves it out).
type streamMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(StreamStatus) (v float64, ok bool)
}

type streamCollector struct {
	status  func() StreamStatus
	metrics []streamMetric
}

// NewStreamCollector returns a collector that calls status once per scrape
// and exports the snapshot under walvault_stream_*. status must be safe to
// call from any goroutine and should be quick: it runs while Prometheus
// waits.
//
// LSNs are exported as byte positions (float64 is exact up to 8 PiB of WAL),
// so rate() of an LSN is the WAL throughput in bytes per second.
func NewStreamCollector(status func() StreamStatus) prometheus.Collector {
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	always := func(f func(StreamStatus) float64) func(StreamStatus) (float64, bool) {
		return func(s StreamStatus) (float64, bool) { return f(s), true }
	}
	lsn := func(f func(StreamStatus) pgwal.LSN) func(StreamStatus) (float64, bool) {
		return func(s StreamStatus) (float64, bool) { l := f(s); return float64(l), l != 0 }
	}
	timestamp := func(f func(StreamStatus) time.Time) func(StreamStatus) (float64, bool) {
		return func(s StreamStatus) (float64, bool) { return unixSeconds(f(s)) }
	}
	m := func(name, help string, typ prometheus.ValueType, value func(StreamStatus) (float64, bool)) streamMetric {
		return streamMetric{
			desc:  prometheus.NewDesc(prometheus.BuildFQName(namespace, "stream", name), help, nil, nil),
			typ:   typ,
			value: value,
		}
	}
	return &streamCollector{
		status: status,
		metrics: []streamMetric{
			m("connected", "1 while the streamer has a replication connection to the primary, else 0.", gauge,
				always(func(s StreamStatus) float64 { return boolFloat(s.Connected) })),
			m("timeline", "Timeline being streamed.", gauge,
				always(func(s StreamStatus) float64 { return float64(s.Timeline) })),
			m("received_lsn_bytes", "WAL position received into the local spool, in bytes.", gauge,
				lsn(func(s StreamStatus) pgwal.LSN { return s.ReceivedLSN })),
			m("flushed_lsn_bytes", "WAL position fsynced in the local spool and reported to the primary as flushed, in bytes.", gauge,
				lsn(func(s StreamStatus) pgwal.LSN { return s.FlushedLSN })),
			m("uploaded_lsn_bytes", "WAL position durably stored in the repository, in bytes.", gauge,
				lsn(func(s StreamStatus) pgwal.LSN { return s.UploadedLSN })),
			m("server_wal_end_bytes", "The primary's WAL end at its last message, in bytes.", gauge,
				lsn(func(s StreamStatus) pgwal.LSN { return s.ServerWALEnd })),
			m("lag_bytes", "WAL written on the primary and not yet stored in the repository, in bytes.", gauge,
				always(func(s StreamStatus) float64 { return float64(s.LagBytes) })),
			m("lag_seconds", "Age of the oldest WAL not yet stored in the repository, in seconds: what a disaster now would lose.", gauge,
				always(func(s StreamStatus) float64 { return s.LagSeconds })),
			m("spool_bytes", "Bytes held in the local spool directory.", gauge,
				always(func(s StreamStatus) float64 { return float64(s.SpoolBytes) })),
			m("uploads_total", "Objects uploaded to the repository (segments and partial segments).", counter,
				always(func(s StreamStatus) float64 { return float64(s.Uploads) })),
			m("upload_retries_total", "Upload attempts retried after a transient error.", counter,
				always(func(s StreamStatus) float64 { return float64(s.UploadRetries) })),
			m("upload_errors_total", "Uploads that failed after all retries.", counter,
				always(func(s StreamStatus) float64 { return float64(s.UploadErrors) })),
			m("reconnects_total", "Replication connections re-established after a loss.", counter,
				always(func(s StreamStatus) float64 { return float64(s.Reconnects) })),
			m("last_receive_timestamp_seconds", "Unix time of the last message from the primary (absent before the first).", gauge,
				timestamp(func(s StreamStatus) time.Time { return s.LastReceive })),
			m("last_upload_timestamp_seconds", "Unix time of the last successful upload (absent before the first).", gauge,
				timestamp(func(s StreamStatus) time.Time { return s.LastUpload })),
			m("slot_retained_bytes", "WAL the primary keeps on disk for the replication slot, in bytes.", gauge,
				always(func(s StreamStatus) float64 { return float64(s.SlotRetainedBytes) })),
		},
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status() // one snapshot, so the samples of a scrape agree
	for _, m := range c.metrics {
		if v, ok := m.value(s); ok {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v)
		}
	}
}

// NewBuildInfoCollector returns walvault_build_info{version="…"}, always 1:
// join on it to see which release each server runs.
func NewBuildInfoCollector(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "Always 1; the version label is the running walvault release.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	g.Set(1)
	return g
}

type lastBackupCollector struct {
	last func() (time.Time, bool)
	desc *prometheus.Desc
}

// NewLastBackupCollector returns a collector for
// walvault_last_backup_timestamp_seconds, the time of the newest complete
// base backup in the repository (its start or its end: the alert on it
// allows 26 hours for a nightly backup). last is called on every scrape,
// so it should return a cached value (the CLI reads the repository now and
// then, not per scrape); ok false (no backup, or not read yet) leaves the
// sample out.
func NewLastBackupCollector(last func() (time.Time, bool)) prometheus.Collector {
	return &lastBackupCollector{
		last: last,
		desc: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "last_backup_timestamp_seconds"),
			"Unix time of the newest base backup in the repository (absent if none is known).", nil, nil),
	}
}

func (c *lastBackupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lastBackupCollector) Collect(ch chan<- prometheus.Metric) {
	t, ok := c.last()
	if !ok {
		return
	}
	if v, ok := unixSeconds(t); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v)
	}
}

func unixSeconds(t time.Time) (float64, bool) {
	if t.IsZero() {
		return 0, false
	}
	return float64(t.UnixNano()) / 1e9, true
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
