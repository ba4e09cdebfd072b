package service

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/walvault/walvault/internal/pgwal"
)

func sampleStatus() StreamStatus {
	return StreamStatus{
		Connected:         true,
		Timeline:          3,
		ReceivedLSN:       pgwal.LSN(0x1_0000_2000),
		FlushedLSN:        pgwal.LSN(0x1_0000_1000),
		UploadedLSN:       pgwal.LSN(0x1_0000_0000),
		ServerWALEnd:      pgwal.LSN(0x1_0000_3000),
		LastReceive:       time.Unix(1_800_000_000, 500_000_000),
		LastUpload:        time.Unix(1_799_999_999, 0),
		LagBytes:          12288,
		LagSeconds:        1.25,
		SpoolBytes:        16 << 20,
		Uploads:           42,
		UploadRetries:     3,
		UploadErrors:      1,
		Reconnects:        2,
		SlotRetainedBytes: 48 << 20,
	}
}

func TestStreamCollector(t *testing.T) {
	c := NewStreamCollector(sampleStatus)
	const want = `
# HELP walvault_stream_connected 1 while the streamer has a replication connection to the primary, else 0.
# TYPE walvault_stream_connected gauge
walvault_stream_connected 1
# HELP walvault_stream_timeline Timeline being streamed.
# TYPE walvault_stream_timeline gauge
walvault_stream_timeline 3
# HELP walvault_stream_received_lsn_bytes WAL position received into the local spool, in bytes.
# TYPE walvault_stream_received_lsn_bytes gauge
walvault_stream_received_lsn_bytes 4.294975488e+09
# HELP walvault_stream_flushed_lsn_bytes WAL position fsynced in the local spool and reported to the primary as flushed, in bytes.
# TYPE walvault_stream_flushed_lsn_bytes gauge
walvault_stream_flushed_lsn_bytes 4.294971392e+09
# HELP walvault_stream_uploaded_lsn_bytes WAL position durably stored in the repository, in bytes.
# TYPE walvault_stream_uploaded_lsn_bytes gauge
walvault_stream_uploaded_lsn_bytes 4.294967296e+09
# HELP walvault_stream_server_wal_end_bytes The primary's WAL end at its last message, in bytes.
# TYPE walvault_stream_server_wal_end_bytes gauge
walvault_stream_server_wal_end_bytes 4.294979584e+09
# HELP walvault_stream_lag_bytes WAL written on the primary and not yet stored in the repository, in bytes.
# TYPE walvault_stream_lag_bytes gauge
walvault_stream_lag_bytes 12288
# HELP walvault_stream_lag_seconds Age of the oldest WAL not yet stored in the repository, in seconds: what a disaster now would lose.
# TYPE walvault_stream_lag_seconds gauge
walvault_stream_lag_seconds 1.25
# HELP walvault_stream_spool_bytes Bytes held in the local spool directory.
# TYPE walvault_stream_spool_bytes gauge
walvault_stream_spool_bytes 1.6777216e+07
# HELP walvault_stream_uploads_total Objects uploaded to the repository (segments and partial segments).
# TYPE walvault_stream_uploads_total counter
walvault_stream_uploads_total 42
# HELP walvault_stream_upload_retries_total Upload attempts retried after a transient error.
# TYPE walvault_stream_upload_retries_total counter
walvault_stream_upload_retries_total 3
# HELP walvault_stream_upload_errors_total Uploads that failed after all retries.
# TYPE walvault_stream_upload_errors_total counter
walvault_stream_upload_errors_total 1
# HELP walvault_stream_reconnects_total Replication connections re-established after a loss.
# TYPE walvault_stream_reconnects_total counter
walvault_stream_reconnects_total 2
# HELP walvault_stream_last_receive_timestamp_seconds Unix time of the last message from the primary (absent before the first).
# TYPE walvault_stream_last_receive_timestamp_seconds gauge
walvault_stream_last_receive_timestamp_seconds 1.8000000005e+09
# HELP walvault_stream_last_upload_timestamp_seconds Unix time of the last successful upload (absent before the first).
# TYPE walvault_stream_last_upload_timestamp_seconds gauge
walvault_stream_last_upload_timestamp_seconds 1.799999999e+09
# HELP walvault_stream_slot_retained_bytes WAL the primary keeps on disk for the replication slot, in bytes.
# TYPE walvault_stream_slot_retained_bytes gauge
walvault_stream_slot_retained_bytes 5.0331648e+07
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != 16 {
		t.Errorf("collected %d metrics, want 16", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Before the first connection nothing is known: unknown LSNs and times are
// left out, never exported as 0 (which would look like a counter reset or
// an upload in 1970 to the alert rules).
func TestStreamCollectorUnknownValuesAbsent(t *testing.T) {
	c := NewStreamCollector(func() StreamStatus { return StreamStatus{} })
	absent := []string{
		"walvault_stream_received_lsn_bytes", "walvault_stream_flushed_lsn_bytes",
		"walvault_stream_uploaded_lsn_bytes", "walvault_stream_server_wal_end_bytes",
		"walvault_stream_last_receive_timestamp_seconds", "walvault_stream_last_upload_timestamp_seconds",
	}
	for _, name := range absent {
		if n := testutil.CollectAndCount(c, name); n != 0 {
			t.Errorf("%s: %d samples for an unknown value, want none", name, n)
		}
	}
	if n := testutil.CollectAndCount(c); n != 16-len(absent) {
		t.Errorf("collected %d metrics, want %d", n, 16-len(absent))
	}
	const want = `
# HELP walvault_stream_connected 1 while the streamer has a replication connection to the primary, else 0.
# TYPE walvault_stream_connected gauge
walvault_stream_connected 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "walvault_stream_connected"); err != nil {
		t.Error(err)
	}
}

// The collector takes one snapshot per scrape, so the samples of a scrape
// are consistent with each other.
func TestStreamCollectorOneSnapshotPerScrape(t *testing.T) {
	calls := 0
	c := NewStreamCollector(func() StreamStatus { calls++; return sampleStatus() })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("status called %d times in one scrape, want 1", calls)
	}
}

func TestLastBackupCollector(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		ok   bool
		want string
	}{
		{"known", time.Unix(1_800_000_000, 0), true, `
# HELP walvault_last_backup_timestamp_seconds Unix time of the newest base backup in the repository (absent if none is known).
# TYPE walvault_last_backup_timestamp_seconds gauge
walvault_last_backup_timestamp_seconds 1.8e+09
`},
		{"none", time.Time{}, false, ""},
		{"zero time", time.Time{}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewLastBackupCollector(func() (time.Time, bool) { return tt.at, tt.ok })
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestBuildInfoCollector(t *testing.T) {
	const want = `
# HELP walvault_build_info Always 1; the version label is the running walvault release.
# TYPE walvault_build_info gauge
walvault_build_info{version="v1.2.3"} 1
`
	if err := testutil.CollectAndCompare(NewBuildInfoCollector("v1.2.3"), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// All collectors fit in one pedantic registry (no clashing descriptors),
// which is how the CLI uses them.
func TestCollectorsRegisterTogether(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		NewStreamCollector(sampleStatus),
		NewLastBackupCollector(func() (time.Time, bool) { return time.Unix(1, 0), true }),
		NewBuildInfoCollector("dev"),
	)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 18 {
		t.Errorf("gathered %d metric families, want 18", len(mfs))
	}
}
