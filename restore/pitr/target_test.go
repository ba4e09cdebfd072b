package pitr

import (
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
)

func TestParseTargetTime(t *testing.T) {
	utc := func(h, m, s, ns int) time.Time { return time.Date(2026, 11, 22, h, m, s, ns, time.UTC) }
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-22 14:20:33.123456+00", utc(14, 20, 33, 123456000)},
		{"2026-11-22 14:20:33+00", utc(14, 20, 33, 0)},
		{"2026-11-22T14:20:33Z", utc(14, 20, 33, 0)},
		{"2026-11-22t14:20:33z", utc(14, 20, 33, 0)},
		{"2026-11-22T14:20:33.5Z", utc(14, 20, 33, 500000000)},
		{"2026-11-22T14:20:33.123456789Z", utc(14, 20, 33, 123456789)},
		{"2026-11-22 19:50:33.000001+05:30", utc(14, 20, 33, 1000)},
		{"2026-11-22 19:50:33+0530", utc(14, 20, 33, 0)},
		{"2026-11-22 06:20:33-08", utc(14, 20, 33, 0)},
		{"2026-11-22T06:20:33-08:00", utc(14, 20, 33, 0)},
		{"2026-11-22 14:20:33 UTC", utc(14, 20, 33, 0)},
		{"2026-11-22 14:20:33 +00", utc(14, 20, 33, 0)},
		{"2026-11-22 14:20+00", utc(14, 20, 0, 0)},
		{"  2026-11-22 14:20:33+00\n", utc(14, 20, 33, 0)},
		{"2024-02-29 00:00:00+00", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := ParseTargetTime(tt.in)
		if err != nil {
			t.Errorf("ParseTargetTime(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("ParseTargetTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}

	bad := []struct{ in, msg string }{
		{"2026-11-22 14:20:33", "no time zone"},
		{"2026-11-22T14:20:33.123", "no time zone"},
		{"2026-11-22", "date alone"},
		{"", "YYYY-MM-DD"},
		{"22/11/2026 14:20:33+00", "YYYY-MM-DD"},
		{"2026-11-22 14:20:33 Europe/Paris", "unknown time zone"},
		{"2026-11-22 14:20:33 CET", "unknown time zone"},
		{"2026-02-30 14:20:33+00", "does not exist"},
		{"2025-02-29 14:20:33+00", "does not exist"},
		{"2026-13-01 14:20:33+00", "does not exist"},
		{"2026-11-22 24:00:00+00", "out of range"},
		{"2026-11-22 14:60:00+00", "out of range"},
		{"2026-11-22 14:20:60+00", "out of range"},
		{"2026-11-22 14:20:33.+00", "fractional"},
		{"2026-11-22 14:20:33.1234567890Z", "fractional"},
		{"2026-11-22 14:20:33+16", "out of range"},
		{"2026-11-22 14:20:33+05:", "offset"},
		{"2026-11-22 14:20:33+5", "offset"},
		{"2026-11-22 14:20:33+05:30x", "after the time zone"},
		{"2026-11-22 14:20:33Zjunk", "after the time zone"},
		{"2026-11-22X14:20:33Z", "between date and time"},
		{"0000-01-01 00:00:00Z", "does not exist"},
	}
	for _, tt := range bad {
		_, err := ParseTargetTime(tt.in)
		if err == nil {
			t.Errorf("ParseTargetTime(%q): no error", tt.in)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseTargetTime(%q) = %v, want it to mention %q", tt.in, err, tt.msg)
		}
	}
	// The refusal of a local time explains why and shows the way.
	_, err := ParseTargetTime("2026-03-29 02:30:00")
	if msg := err.Error(); !strings.Contains(msg, "ambiguous") || !strings.Contains(msg, "2026-11-22 14:20:33+01") {
		t.Errorf("message %q should explain the ambiguity and show an example", msg)
	}
}

func FuzzParseTargetTime(f *testing.F) {
	for _, s := range []string{
		"2026-11-22 14:20:33.123456+00", "2026-11-22T14:20:33Z", "2026-11-22 19:50:33+05:30",
		"2026-11-22 19:50:33+0530", "2026-11-22 14:20:33", "2026-11-22T14:20:33.123456789-08:00",
		"2026-11-22 14:20:33 UTC", "9999-12-31 23:59:59.999999999-15:59",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTargetTime(s)
		if err != nil {
			return
		}
		// What we write for PostgreSQL reads back as the same instant,
		// rounded to microseconds.
		back, err := ParseTargetTime(FormatPGTime(got))
		if err != nil {
			t.Fatalf("FormatPGTime(%v) = %q does not parse: %v", got, FormatPGTime(got), err)
		}
		if !back.Equal(roundMicro(got)) {
			t.Fatalf("%q: PostgreSQL form %q reads back as %v, want %v", s, FormatPGTime(got), back, roundMicro(got))
		}
		// RFC 3339 keeps the full precision.
		if got.Year() >= 1 && got.UTC().Year() <= 9999 && got.UTC().Year() >= 1 {
			back, err = ParseTargetTime(got.Format(time.RFC3339Nano))
			if err != nil || !back.Equal(got) {
				t.Fatalf("%q: RFC 3339 form %q reads back as %v, %v", s, got.Format(time.RFC3339Nano), back, err)
			}
		}
	})
}

func TestFormatPGTime(t *testing.T) {
	for _, tt := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 22, 14, 20, 33, 123456000, time.UTC), "2026-11-22 14:20:33.123456+00"},
		{time.Date(2026, 11, 22, 19, 50, 33, 0, time.FixedZone("", 5*3600+1800)), "2026-11-22 14:20:33.000000+00"},
		{time.Date(2026, 11, 22, 14, 20, 33, 123456499, time.UTC), "2026-11-22 14:20:33.123456+00"},
		{time.Date(2026, 11, 22, 14, 20, 33, 999999500, time.UTC), "2026-11-22 14:20:34.000000+00"},
	} {
		if got := FormatPGTime(tt.in); got != tt.want {
			t.Errorf("FormatPGTime(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQuoteConf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "''"},
		{"plain", "'plain'"},
		{"it's", "'it''s'"},
		{`'/usr/bin/walvault' wal-fetch --config '/x/walvault-recovery.conf' %f %p`, `'''/usr/bin/walvault'' wal-fetch --config ''/x/walvault-recovery.conf'' %f %p'`},
		{`C:\dir`, `'C:\\dir'`},
		{`a\'b`, `'a\\''b'`},
	} {
		got, err := quoteConf(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("quoteConf(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"a\nb", "a\rb", "a\x00b"} {
		if _, err := quoteConf(in); err == nil {
			t.Errorf("quoteConf(%q): no error", in)
		}
	}
}

func TestRecoveryConfig(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	tm := time.Date(2026, 11, 22, 15, 20, 33, 123456000, time.FixedZone("", 3600))
	l := pgwal.LSN(0x16B374D848)
	xid := uint64(12345)
	no := false
	cmd := `'/usr/bin/walvault' wal-fetch %f %p`
	head := "# walvault restore 20261122T120000Z at 2026-11-23T08:00:00Z\nrestore_command = '''/usr/bin/walvault'' wal-fetch %f %p'\nrecovery_end_command = ''\n"
	clear := func(except string) string {
		var b strings.Builder
		for _, p := range recoveryTargets {
			if p != except {
				b.WriteString(p + " = ''\n")
			}
		}
		return b.String()
	}
	tests := []struct {
		name     string
		t        Target
		existing string
		want     string
	}{
		{"time", Target{Time: &tm}, "",
			head + clear("recovery_target_time") + "recovery_target_time = '2026-11-22 14:20:33.123456+00'\nrecovery_target_timeline = 'latest'\nrecovery_target_action = 'pause'\n"},
		{"lsn promote", Target{LSN: &l, Action: "promote", Timeline: "current"}, "",
			head + clear("recovery_target_lsn") + "recovery_target_lsn = '16/B374D848'\nrecovery_target_timeline = 'current'\nrecovery_target_action = 'promote'\n"},
		{"xid exclusive", Target{XID: &xid, Inclusive: &no, Timeline: "3"}, "",
			head + clear("recovery_target_xid") + "recovery_target_xid = '12345'\nrecovery_target_timeline = '3'\nrecovery_target_action = 'pause'\nrecovery_target_inclusive = 'off'\n"},
		{"name", Target{Name: "before 'upgrade'"}, "",
			head + clear("recovery_target_name") + "recovery_target_name = 'before ''upgrade'''\nrecovery_target_timeline = 'latest'\nrecovery_target_action = 'pause'\n"},
		{"immediate", Target{Immediate: true, Action: "shutdown"}, "",
			head + clear("recovery_target") + "recovery_target = 'immediate'\nrecovery_target_timeline = 'latest'\nrecovery_target_action = 'shutdown'\n"},
		{"end of WAL", Target{}, "",
			head + clear("") + "recovery_target_timeline = 'latest'\n"},
		{"stale inclusive", Target{}, "recovery_target_inclusive = 'off'\n",
			head + clear("") + "recovery_target_timeline = 'latest'\nrecovery_target_inclusive = 'on'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := recoveryConfig("20261122T120000Z", now, Options{RestoreCommand: cmd, Target: tt.t}, []byte(tt.existing))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if _, err := recoveryConfig("x", now, Options{RestoreCommand: "a\nb"}, nil); err == nil {
		t.Error("restore_command with a newline: no error")
	}
	if _, err := recoveryConfig("x", now, Options{RestoreCommand: cmd, EndCommand: "a\nb"}, nil); err == nil {
		t.Error("recovery_end_command with a newline: no error")
	}
	end := `'/usr/bin/walvault' recovery-cleanup --recovery-dir '/a%%b'`
	got, err := recoveryConfig("x", now, Options{RestoreCommand: cmd, EndCommand: end}, nil)
	if want := "\nrecovery_end_command = '''/usr/bin/walvault'' recovery-cleanup --recovery-dir ''/a%%b'''\n"; err != nil || !strings.Contains(got, want) {
		t.Errorf("with an end command: %v\n%s", err, got)
	}
}

func TestTargetValidate(t *testing.T) {
	tm := time.Now()
	l := pgwal.LSN(1)
	for _, tt := range []struct {
		t  Target
		ok bool
	}{
		{Target{}, true},
		{Target{Time: &tm, Timeline: "latest", Action: "promote"}, true},
		{Target{LSN: &l, Timeline: "12"}, true},
		{Target{Time: &tm, LSN: &l}, false},
		{Target{Name: "x", Immediate: true}, false},
		{Target{Timeline: "0"}, false},
		{Target{Timeline: "newest"}, false},
		{Target{Action: "resume"}, false},
		{Target{Name: strings.Repeat("x", 64)}, false},
	} {
		if err := tt.t.Validate(); (err == nil) != tt.ok {
			t.Errorf("validate(%+v) = %v, want ok %v", tt.t, err, tt.ok)
		}
	}
}
