package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/walvault/walvault/check"
)

func TestParseAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10m", 10 * time.Minute, true},
		{"36h", 36 * time.Hour, true},
		{"8d", 8 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"0", 0, false},
		{"-1h", 0, false},
		{"d", 0, false},
		{"week", 0, false},
	}
	for _, tc := range tests {
		got, err := parseAge(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestCheckExitCodes: check's status reaches the process as a Nagios code,
// also when wrapped.
func TestCheckExitCodes(t *testing.T) {
	for st, code := range map[check.Status]int{check.Warning: 1, check.Critical: 2, check.Unknown: 3} {
		err := fmt.Errorf("wrapped: %w", &checkStatusError{status: st})
		if got := exitCode(err); got != code {
			t.Errorf("%s: exit %d, want %d", st, got, code)
		}
	}
}

// FuzzParseAge: any input either fails or gives a positive duration, and
// never panics.
func FuzzParseAge(f *testing.F) {
	for _, s := range []string{"10m", "8d", "1.5d", "36h", "", "d", "-3d", "1e400d", "9223372036854775807d", "NaNd", "Infd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseAge(s)
		if err == nil && d <= 0 {
			t.Fatalf("parseAge(%q) = %v without an error", s, d)
		}
	})
}
