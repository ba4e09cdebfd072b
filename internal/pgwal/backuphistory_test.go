package pgwal

import (
	"strings"
	"testing"
	"time"
)

// pg15BackupHistory is a backup history file as PostgreSQL 15 writes it
// (000000010000000000000002.00000028.backup).
const pg15BackupHistory = `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-23 17:57:00 EST
LABEL: walvault 20261123T225700Z
START TIMELINE: 1
STOP TIME: 2026-11-23 17:57:41 EST
STOP TIMELINE: 1
`

func TestParseBackupHistory(t *testing.T) {
	h, err := ParseBackupHistory([]byte(pg15BackupHistory))
	if err != nil {
		t.Fatal(err)
	}
	want := BackupHistory{
		StartLSN: 0x2000028, StopLSN: 0x2000100, CheckpointLSN: 0x2000060,
		StartTimeline: 1, StopTimeline: 1,
		StartTime: "2026-11-23 17:57:00 EST", StopTime: "2026-11-23 17:57:41 EST",
		Label: "walvault 20261123T225700Z",
	}
	if h != want {
		t.Fatalf("got %+v\nwant %+v", h, want)
	}

	// PostgreSQL 10 has no timelines; later versions may add lines.
	old := "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n" +
		"START TIME: 2026-11-23 22:57:00 UTC\nINCREMENTAL FROM LSN: 0/1000028\nSTOP TIME: 2026-11-23 22:57:01 UTC"
	if h, err := ParseBackupHistory([]byte(old)); err != nil || h.StartTimeline != 0 || h.StopTime != "2026-11-23 22:57:01 UTC" {
		t.Fatalf("without timelines: %+v, %v", h, err)
	}

	without := func(key string) string {
		var out []string
		for _, l := range strings.Split(pg15BackupHistory, "\n") {
			if !strings.HasPrefix(l, key+": ") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	for name, bad := range map[string]string{
		"empty":             "",
		"no start":          without("START WAL LOCATION"),
		"no stop":           without("STOP WAL LOCATION"),
		"no start time":     without("START TIME"),
		"no stop time":      without("STOP TIME"),
		"stop before start": strings.Replace(pg15BackupHistory, "STOP WAL LOCATION: 0/2000100", "STOP WAL LOCATION: 0/1000100", 1),
		"bad LSN":           strings.Replace(pg15BackupHistory, "0/2000100", "0/zz", 1),
		"bad time":          strings.Replace(pg15BackupHistory, "STOP TIME: 2026-11-23 17:57:41", "STOP TIME: 2026-11-23 25:57:41", 1),
		"time without zone": strings.Replace(pg15BackupHistory, "17:57:41 EST", "17:57:41", 1),
		"zone too long":     strings.Replace(pg15BackupHistory, "17:57:41 EST", "17:57:41 "+strings.Repeat("X", 40), 1),
		"timeline 0":        strings.Replace(pg15BackupHistory, "STOP TIMELINE: 1", "STOP TIMELINE: 0", 1),
		"forged by a label": strings.Replace(pg15BackupHistory, "LABEL: walvault 20261123T225700Z", "LABEL: x\nSTOP TIME: 2026-11-23 17:57:01 EST", 1),
		"duplicate start":   "START WAL LOCATION: 0/1 (file x)\n" + pg15BackupHistory,
		"oversized":         pg15BackupHistory + strings.Repeat("#", MaxBackupHistorySize),
	} {
		if h, err := ParseBackupHistory([]byte(bad)); err == nil {
			t.Errorf("%s: accepted as %+v", name, h)
		}
	}
}

func FuzzParseBackupHistory(f *testing.F) {
	f.Add([]byte(pg15BackupHistory), "America/New_York")
	f.Add([]byte("START WAL LOCATION: 1/2\nSTOP WAL LOCATION: 1/3\nSTART TIME: 2026-01-01 00:00:00 +0100\nSTOP TIME: 2026-01-01 00:00:01 +01:00\n"), "")
	f.Add([]byte("STOP TIME: 2026-10-25 02:30:00 CET\nSTART TIME: 2026-10-25 02:30:00 CEST\n"), "Europe/Paris")
	f.Fuzz(func(t *testing.T, b []byte, zone string) {
		h, err := ParseBackupHistory(b)
		if err != nil {
			return
		}
		if h.StopLSN < h.StartLSN || h.StartTime == "" || h.StopTime == "" {
			t.Fatalf("accepted %+v", h)
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			loc = nil
		}
		for _, s := range []string{h.StartTime, h.StopTime} {
			tm, err := ParseServerTime(s, loc)
			if err != nil {
				continue
			}
			// A parsed time prints back as the wall clock it came from.
			if tm.Format(serverTimeLayout) != s[:len(serverTimeLayout)] {
				t.Fatalf("%q parsed as %v", s, tm)
			}
			if wall, err := ServerWallClock(s); err != nil || wall.Format(serverTimeLayout) != s[:len(serverTimeLayout)] {
				t.Fatalf("wall clock of %q: %v, %v", s, wall, err)
			}
			if ServerTimeZone(s) == "" {
				t.Fatalf("no zone in %q", s)
			}
		}
	})
}

func TestParseServerTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		in   string
		loc  *time.Location
		want time.Time
		bad  bool
	}{
		{in: "2026-11-23 17:57:00 EST", loc: ny, want: utc("2026-11-23T22:57:00Z")},
		{in: "2026-07-01 12:00:00 EDT", loc: ny, want: utc("2026-07-01T16:00:00Z")},
		{in: "2026-07-01 12:00:00 CEST", loc: paris, want: utc("2026-07-01T10:00:00Z")},
		// The hour after the autumn change exists twice; the zone picks one.
		{in: "2026-10-25 02:30:00 CEST", loc: paris, want: utc("2026-10-25T00:30:00Z")},
		{in: "2026-10-25 02:30:00 CET", loc: paris, want: utc("2026-10-25T01:30:00Z")},
		{in: "2026-11-23 22:57:00 UTC", loc: nil, want: utc("2026-11-23T22:57:00Z")},
		{in: "2026-11-23 22:57:00 UTC", loc: time.UTC, want: utc("2026-11-23T22:57:00Z")},
		{in: "2026-11-23 22:57:00 GMT", loc: nil, want: utc("2026-11-23T22:57:00Z")},
		{in: "2026-11-24 01:57:00 +03", loc: nil, want: utc("2026-11-23T22:57:00Z")},
		{in: "2026-11-23 19:27:00 -0330", loc: nil, want: utc("2026-11-23T22:57:00Z")},
		{in: "2026-11-23 19:27:00 -03:30", loc: nil, want: utc("2026-11-23T22:57:00Z")},

		{in: "2026-11-23 17:57:00 EST", loc: paris, bad: true}, // not Paris's zone
		{in: "2026-11-23 17:57:00 EST", loc: nil, bad: true},   // ambiguous without a location
		{in: "2026-11-23 17:57:00 EDT", loc: ny, bad: true},    // not in effect in November
		{in: "2026-11-23 17:57:00", loc: ny, bad: true},
		{in: "2026-11-23T17:57:00 UTC", loc: ny, bad: true},
		{in: "2026-13-23 17:57:00 UTC", loc: ny, bad: true},
		{in: "2026-11-23 17:57:00 +3", loc: nil, bad: true},
		{in: "2026-11-23 17:57:00 +99", loc: nil, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseServerTime(tt.in, tt.loc)
			if tt.bad {
				if err == nil {
					t.Fatalf("got %v, want error", got)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
