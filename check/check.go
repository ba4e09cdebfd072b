package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/walvault/walvault/storage"
)

// Status is a check's outcome on the Nagios plugin scale.
type Status int

// The statuses, in the order of the Nagios exit codes they map to.
const (
	OK Status = iota
	Warning
	Critical
	Unknown
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warning:
		return "WARNING"
	case Critical:
		return "CRITICAL"
	}
	return "UNKNOWN"
}

// MarshalJSON writes the status as its name.
func (s Status) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// ExitCode is the Nagios plugin exit status: 0 OK, 1 WARNING, 2 CRITICAL,
// 3 UNKNOWN.
func (s Status) ExitCode() int { return int(s) }

// severity orders statuses for the overall result: a confirmed problem
// (CRITICAL) outranks a check that could not be made (UNKNOWN), which
// outranks a WARNING, as Icinga and most Nagios aggregations rank them.
func (s Status) severity() int {
	switch s {
	case OK:
		return 0
	case Warning:
		return 1
	case Unknown:
		return 2
	}
	return 3
}

// Result is the outcome of one check.
type Result struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix says what to change or run; empty when Status is OK.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of every check. Status is the worst of them.
type Report struct {
	Status Status   `json:"status"`
	Checks []Result `json:"checks"`
}

func (r *Report) add(res Result) {
	if res.Status == OK {
		res.Fix = ""
	}
	r.Checks = append(r.Checks, res)
	if res.Status.severity() > r.Status.severity() {
		r.Status = res.Status
	}
}

// Options say what to check and against which limits.
type Options struct {
	// ConnString reaches PostgreSQL (libpq URL or key=value; "" for the
	// PG* environment).
	ConnString string
	// Store is the repository's store; nil with StoreErr set when none
	// could be opened (no repo configured, bad URL).
	Store    storage.Store
	StoreErr error
	// Recipients and RecipientsFile are the configured age recipients as
	// given (age-recipients, age-recipients-file); IdentityFile the
	// configured identity, "" when none (the usual case on a database
	// host).
	Recipients     string
	RecipientsFile string
	IdentityFile   string
	// WriterKeyFile is the configured writer key (writer-key-file), ""
	// when none: a format-2 repository is written only with one.
	WriterKeyFile string
	// AllowUnsigned is allow-unsigned-repository: read a format-1
	// repository although this host holds format-2 keys.
	AllowUnsigned bool
	// Slot is the physical replication slot walvault stream uses; "" when
	// the setup does not stream.
	Slot string
	// MaxWALAge: finished segments waiting while nothing reached the
	// repository for longer than this is CRITICAL.
	MaxWALAge time.Duration
	// MaxBackupAge: a newest backup older than this is a WARNING.
	MaxBackupAge time.Duration
	// ArchiveTest forces a WAL switch and waits up to ArchiveTimeout for the
	// finished segment to arrive in the repository.
	ArchiveTest    bool
	ArchiveTimeout time.Duration
	// Command is how fixes spell walvault's own invocation, e.g.
	// "/usr/local/bin/walvault" plus "--config /etc/walvault/walvault.conf"
	// in ConfigArgs.
	Command    string
	ConfigArgs string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Poll is how often ArchiveTest looks for the segment (default 250ms).
	Poll time.Duration
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// walvault spells a walvault command line for a fix: the binary, the
// subcommand, the configuration flags, then args.
func (o *Options) walvault(sub string, args ...string) string {
	cmd := o.Command
	if cmd == "" {
		cmd = "walvault"
	}
	parts := []string{cmd, sub}
	if o.ConfigArgs != "" {
		parts = append(parts, o.ConfigArgs)
	}
	return strings.Join(append(parts, args...), " ")
}

// Run makes every check and returns the report. It does not fail: what it
// cannot check is reported as such.
func Run(ctx context.Context, o Options) *Report {
	rep := &Report{Checks: []Result{}}
	pg, pgErr := gatherPostgres(ctx, o.ConnString)
	rf := gatherRepository(ctx, o)

	rep.add(judgeConnection(pg, pgErr))
	if pgErr == nil {
		rep.add(judgeWALLevel(pg))
		rep.add(judgeArchiving(pg, &o))
		if r, ok := judgeArchiver(pg, &o); ok {
			rep.add(r)
		}
		rep.add(judgeWALSenders(pg))
		if o.Slot != "" {
			rep.add(judgeSlot(pg, &o))
		}
	} else {
		for _, name := range []string{"wal_level", "archiving", "max_wal_senders"} {
			rep.add(Result{Name: name, Status: Unknown, Message: "not checked: no connection to PostgreSQL", Fix: "see postgres"})
		}
	}
	var pgp *postgresFacts
	if pgErr == nil {
		pgp = pg
	}
	rep.add(judgeRepository(rf, pgp, &o))
	rep.add(judgeRecipients(rf, &o))
	if r, ok := judgeWriter(rf, &o); ok {
		rep.add(r)
	}
	if rf.usable() {
		rep.add(judgeWAL(rf, pgp, &o))
		if r, ok := judgeContinuity(rf, &o); ok {
			rep.add(r)
		}
		rep.add(judgeBackup(rf, &o))
		if r, ok := judgeLocks(rf, &o); ok {
			rep.add(r)
		}
		if len(rf.WALConflicts) > 0 {
			rep.add(Result{Name: "wal-conflicts", Status: Critical, Message: fmt.Sprintf("%d WAL file(s) met another object under their name and were archived beside it: %s", len(rf.WALConflicts), strings.Join(rf.WALConflicts, ", ")),
				Fix: "someone else can write " + rf.Where + ", or two clusters share it: find out who (walvault audit, the store's access logs), run walvault verify, then remove the object that is not this cluster's WAL"})
		}
	} else {
		for _, name := range []string{"wal", "backup"} {
			rep.add(Result{Name: name, Status: Unknown, Message: "not checked: the repository cannot be used", Fix: "see repository"})
		}
	}
	if o.ArchiveTest {
		switch {
		case pgErr != nil:
			rep.add(Result{Name: "archive-test", Status: Unknown, Message: "not run: no connection to PostgreSQL", Fix: "see postgres"})
		case !rf.usable():
			rep.add(Result{Name: "archive-test", Status: Unknown, Message: "not run: the repository cannot be used", Fix: "see repository"})
		default:
			rep.add(archiveTest(ctx, rf, &o))
		}
	}
	return rep
}

// WriteText prints the report for people, and for Nagios, which shows the
// first line: the overall status and what is wrong. Then one line per check,
// each fix under its check.
func (r *Report) WriteText(w io.Writer) error {
	// The first line names only the checks with the overall status: the
	// ones to act on first.
	var bad []string
	for _, c := range r.Checks {
		if c.Status != OK && c.Status == r.Status {
			bad = append(bad, c.Name+": "+c.Message)
		}
	}
	first := "WALVAULT " + r.Status.String()
	if len(bad) == 0 {
		first += " - all checks passed"
	} else {
		first += " - " + strings.Join(bad, "; ")
	}
	var b strings.Builder
	b.WriteString(first + "\n")
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-8s  %-*s  %s\n", c.Status, width, c.Name, c.Message)
		if c.Fix != "" {
			for _, line := range strings.Split(c.Fix, "\n") {
				fmt.Fprintf(&b, "%-8s  %-*s    fix: %s\n", "", width, "", line)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ago formats a duration for messages: "3m12s ago", "2d4h ago".
func ago(d time.Duration) string {
	return humanDuration(d) + " ago"
}

func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
}
