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
