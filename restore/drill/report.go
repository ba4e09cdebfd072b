package drill

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check is one named check and its outcome.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason says what was found (for a pass), what went wrong (a failure)
	// or why the check did not run (a skip).
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
}

// Report is the outcome of a drill. Its JSON form is the --json output.
type Report struct {
	// Passed is true when no check failed.
	Passed  bool      `json:"passed"`
	Started time.Time `json:"started"`
	// Target is the recovery target as text: an RFC 3339 time or "latest".
	Target     string     `json:"target"`
	TargetTime *time.Time `json:"target_time,omitempty"`
	// RandomPoint: the target was drawn at random from the recoverable
	// window (Seed reproduces the draw; --target-time Target replays it).
	RandomPoint    bool          `json:"random_point,omitempty"`
	Seed           uint64        `json:"seed,omitempty"`
	Window         *ReportWindow `json:"window,omitempty"`
	Backup         string        `json:"backup,omitempty"`
	BackupStopTime *time.Time    `json:"backup_stop_time,omitempty"`
	// RTOSeconds: from the start of the restore to the promoted server
	// answering its first query. Absent when the server never got there.
	RTOSeconds *float64 `json:"rto_seconds,omitempty"`
	// RPOSeconds: see RPO. NewestCommit is the newest recovered commit it is
	// measured from, and NewestCommitSource where that time came from.
	RPOSeconds         *float64   `json:"rpo_seconds,omitempty"`
	NewestCommit       *time.Time `json:"newest_commit,omitempty"`
	NewestCommitSource string     `json:"newest_commit_source,omitempty"`
	ServerVersion      string     `json:"server_version,omitempty"`
	Port               int        `json:"port,omitempty"`
	Scratch            string     `json:"scratch,omitempty"`
	// Kept: the scratch directory was left in place (--keep, or a failure
	// with --keep-failed).
	Kept   bool    `json:"kept"`
	Checks []Check `json:"checks"`
	// Duration is the whole drill, cleanup included.
	Seconds float64 `json:"seconds"`
}

// ReportWindow is the recoverable window of a drill's backup.
type ReportWindow struct {
	From time.Time `json:"from"`
	// To is the upload time of the window's newest WAL: an upper bound of
	// its newest commit, not that commit.
	To time.Time `json:"to"`
	// NewestArchivedCommit, for a random point, is the time of the newest
	// commit (or abort) record in the window's WAL: the point was drawn
	// from From to just before it, the moments recovery can stop at.
	NewestArchivedCommit *time.Time `json:"newest_archived_commit,omitempty"`
}

// Add records a check; a failed one fails the report.
func (r *Report) Add(name string, st Status, d time.Duration, reason string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: st, Reason: reason, Duration: d, Seconds: d.Seconds()})
	if st == Fail {
		r.Passed = false
	}
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// WriteText writes the human summary: one line per check, then the
// figures.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "walvault drill %s\n", verdict)
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-4s  %s", strings.ToUpper(string(c.Status)), c.Name)
		if c.Reason != "" {
			fmt.Fprintf(&b, ": %s", oneLine(c.Reason))
		}
		b.WriteByte('\n')
	}
	target := r.Target
	if r.RandomPoint {
		target += fmt.Sprintf(" (random point, seed %d; replay with --target-time %s)", r.Seed, r.Target)
	}
	fmt.Fprintf(&b, "target:  %s\n", target)
	if r.Window != nil {
		fmt.Fprintf(&b, "window:  %s to %s", r.Window.From.UTC().Format(time.RFC3339Nano), r.Window.To.UTC().Format(time.RFC3339Nano))
		if n := r.Window.NewestArchivedCommit; n != nil {
			fmt.Fprintf(&b, " (newest archived commit %s: random points are drawn before it)", n.UTC().Format(time.RFC3339Nano))
		}
		b.WriteByte('\n')
	}
	if r.Backup != "" {
		fmt.Fprintf(&b, "backup:  %s", r.Backup)
		if r.BackupStopTime != nil {
			fmt.Fprintf(&b, " (ended %s)", r.BackupStopTime.UTC().Format(time.RFC3339))
		}
		b.WriteByte('\n')
	}
	if r.RTOSeconds != nil {
		fmt.Fprintf(&b, "RTO:     %s (restore start to the promoted server's first answer)\n", seconds(*r.RTOSeconds))
	} else {
		b.WriteString("RTO:     not measured (the server did not come up)\n")
	}
	switch {
	case r.RPOSeconds != nil:
		from := "the drill's start"
		if r.TargetTime != nil {
			from = "the target"
		}
		fmt.Fprintf(&b, "RPO:     %s (newest recovered commit %s, %s before %s)\n", seconds(*r.RPOSeconds),
			r.NewestCommit.UTC().Format(time.RFC3339Nano), seconds(*r.RPOSeconds), from)
	case r.NewestCommitSource != "":
		fmt.Fprintf(&b, "RPO:     not measured (%s)\n", r.NewestCommitSource)
	default:
		b.WriteString("RPO:     not measured (the server did not come up)\n")
	}
	if r.Kept {
		fmt.Fprintf(&b, "kept:    %s\n", r.Scratch)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

// oneLine folds a multi-line reason for the one-line-per-check summary.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}
