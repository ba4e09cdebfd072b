package pitr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/walvault/walvault/internal/pgwal"
)

// Target says where recovery stops. At most one of Time, LSN, XID, Name and
// Immediate is set; none means "replay all archived WAL, then promote".
type Target struct {
	Time *time.Time
	LSN  *pgwal.LSN
	XID  *uint64
	Name string
	// Immediate stops as soon as the restored cluster is consistent (the end
	// of the backup).
	Immediate bool
	// Timeline is recovery_target_timeline: "latest" (the default),
	// "current" (the backup's timeline) or a timeline number.
	Timeline string
	// Action is recovery_target_action: "pause" (the default, as in
	// PostgreSQL), "promote" or "shutdown". Used only with a target.
	Action string
	// Inclusive is recovery_target_inclusive; nil leaves PostgreSQL's
	// default (stop just after the target).
	Inclusive *bool
}

// kind names the target for messages and the config parameter it sets.
func (t Target) kind() string {
	switch {
	case t.Time != nil:
		return "time"
	case t.LSN != nil:
		return "lsn"
	case t.XID != nil:
		return "xid"
	case t.Name != "":
		return "name"
	case t.Immediate:
		return "immediate"
	}
	return ""
}

// String describes the target for messages.
func (t Target) String() string {
	switch t.kind() {
	case "time":
		return "time " + t.Time.UTC().Format(time.RFC3339Nano)
	case "lsn":
		return "LSN " + t.LSN.String()
	case "xid":
		return "transaction " + strconv.FormatUint(*t.XID, 10)
	case "name":
		return fmt.Sprintf("restore point %q", t.Name)
	case "immediate":
		return "the end of the backup (immediate)"
	}
	return "the end of the archived WAL"
}

// validate checks the combination and the enumerated values.
// ErrInvalidTarget: a recovery target PostgreSQL could not be given (a
// malformed argument).
var ErrInvalidTarget = errors.New("invalid recovery target")

// Validate refuses a target PostgreSQL could not be given (ErrInvalidTarget).
func (t Target) Validate() error {
	n := 0
	for _, set := range []bool{t.Time != nil, t.LSN != nil, t.XID != nil, t.Name != "", t.Immediate} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w: give at most one recovery target (time, LSN, XID, name or immediate); PostgreSQL refuses several", ErrInvalidTarget)
	}
	switch t.Timeline {
	case "", "latest", "current":
	default:
		if v, err := strconv.ParseUint(t.Timeline, 10, 32); err != nil || v == 0 {
			return fmt.Errorf("%w: recovery target timeline %q: want latest, current or a timeline number", ErrInvalidTarget, t.Timeline)
		}
	}
	switch t.Action {
	case "", "pause", "promote", "shutdown":
	default:
		return fmt.Errorf("%w: recovery target action %q: want pause, promote or shutdown", ErrInvalidTarget, t.Action)
	}
	if len(t.Name) > 63 {
		// NAMEDATALEN-1: pg_create_restore_point truncates nothing, it refuses.
		return fmt.Errorf("%w: restore point name %q is longer than 63 bytes; PostgreSQL cannot have created it", ErrInvalidTarget, t.Name)
	}
	if strings.ContainsFunc(t.Name, unicode.IsControl) {
		// postgresql.auto.conf cannot hold a line break, and no
		// restore point a user typed holds a control character.
		return fmt.Errorf("%w: restore point name %q contains a line break or another control character", ErrInvalidTarget, t.Name)
	}
	return nil
}

// ParseTargetTime parses a recovery target time. It accepts RFC 3339
// ("2026-11-22T14:20:33Z", "2026-11-22T14:20:33.5+01:00") and the text
// PostgreSQL prints for timestamptz ("2026-11-22 14:20:33.123456+00",
// "…+05:30", "…+0530"): a date, "T" or a space, hours and minutes with
// optional seconds and up to nine fractional digits, then a zone: "Z",
// "UTC" or a numeric offset, optionally after a space. The fraction is kept
// exactly; PostgreSQL itself keeps microseconds.
//
// A time without a zone is refused: a local wall-clock time is ambiguous
// (around a daylight-saving change it happens twice, or not at all), and
// the server's zone need not be the zone of the machine restoring.
func ParseTargetTime(s string) (time.Time, error) {
	t, err := parseTargetTime(strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("recovery target time %q: %w", s, err)
	}
	return t, nil
}

const timeExample = `e.g. "2026-11-22 14:20:33+01" or "2026-11-22T13:20:33Z"`

func parseTargetTime(s string) (time.Time, error) {
	p := timeParser{s: s}
	year := p.digits(4)
	ok := p.lit('-')
	month := p.digits(2)
	ok = ok && p.lit('-')
	day := p.digits(2)
	if !ok || year < 0 || month < 0 || day < 0 {
		return time.Time{}, fmt.Errorf("want a date YYYY-MM-DD, then a time and a time zone, %s", timeExample)
	}
	if p.done() {
		return time.Time{}, fmt.Errorf("a date alone is not a point in time: add a time and a time zone, %s", timeExample)
	}
	if !p.lit('T') && !p.lit('t') && !p.lit(' ') {
		return time.Time{}, fmt.Errorf("want \"T\" or a space between date and time, %s", timeExample)
	}
	hour := p.digits(2)
	ok = p.lit(':')
	minute := p.digits(2)
	if !ok || hour < 0 || minute < 0 {
		return time.Time{}, fmt.Errorf("want a time HH:MM:SS after the date, %s", timeExample)
	}
	sec, nsec := 0, 0
	if p.lit(':') {
		if sec = p.digits(2); sec < 0 {
			return time.Time{}, fmt.Errorf("want two digits of seconds, %s", timeExample)
		}
		if p.lit('.') || p.lit(',') {
			start := p.i
			for !p.done() && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
				p.i++
			}
			frac := p.s[start:p.i]
			if len(frac) == 0 || len(frac) > 9 {
				return time.Time{}, fmt.Errorf("want 1 to 9 digits of fractional seconds")
			}
			nsec, _ = strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
		}
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, fmt.Errorf("time of day %02d:%02d:%02d is out of range", hour, minute, sec)
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) || year < 1 {
		return time.Time{}, fmt.Errorf("date %04d-%02d-%02d does not exist", year, month, day)
	}
	p.lit(' ')
	if p.done() {
		return time.Time{}, fmt.Errorf("no time zone: a local time is ambiguous (around a daylight-saving change the same wall-clock time happens twice, or not at all); add the zone offset, %s", timeExample)
	}
	var offset int
	switch {
	case p.lit('Z') || p.lit('z'):
	case strings.EqualFold(p.s[p.i:], "UTC"):
		p.i = len(p.s)
	case p.s[p.i] == '+' || p.s[p.i] == '-':
		sign := 1
		if p.s[p.i] == '-' {
			sign = -1
		}
		p.i++
		oh, om := p.digits(2), 0
		if oh < 0 {
			return time.Time{}, fmt.Errorf("want a zone offset like +01, +0530 or +05:30")
		}
		if !p.done() {
			colon := p.lit(':')
			if om = p.digits(2); om < 0 && (colon || !p.done()) {
				return time.Time{}, fmt.Errorf("want a zone offset like +01, +0530 or +05:30")
			}
			if om < 0 {
				om = 0
			}
		}
		if oh > 15 || om > 59 {
			return time.Time{}, fmt.Errorf("zone offset %02d:%02d is out of range", oh, om)
		}
		offset = sign * (oh*3600 + om*60)
	default:
		return time.Time{}, fmt.Errorf("unknown time zone %q: use Z, UTC or an offset like +01, +0530 or +05:30 (zone names are not accepted)", p.s[p.i:])
	}
	if !p.done() {
		return time.Time{}, fmt.Errorf("unexpected %q after the time zone", p.s[p.i:])
	}
	zone := time.UTC
	if offset != 0 {
		zone = time.FixedZone("", offset)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, zone)
	if u := t.UTC(); u.Year() < 1 || u.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time is out of range (years 0001 to 9999 in UTC)")
	}
	return t, nil
}

type timeParser struct {
	s string
	i int
}

func (p *timeParser) done() bool { return p.i >= len(p.s) }

func (p *timeParser) lit(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// digits reads exactly n decimal digits, or returns -1 and reads nothing.
func (p *timeParser) digits(n int) int {
	if p.i+n > len(p.s) {
		return -1
	}
	v := 0
	for _, c := range []byte(p.s[p.i : p.i+n]) {
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// roundMicro rounds t to the nearest microsecond, PostgreSQL's timestamp
// precision (its input routine rounds too, rather than truncating).
func roundMicro(t time.Time) time.Time { return t.Round(time.Microsecond) }

// FormatPGTime formats t the way PostgreSQL prints a timestamptz in UTC,
// with microseconds: "2026-11-22 14:20:33.123456+00".
func FormatPGTime(t time.Time) string {
	return roundMicro(t).UTC().Format("2006-01-02 15:04:05.000000") + "+00"
}

// quoteConf quotes a value for postgresql.conf the way ALTER SYSTEM does:
// single quotes around it, and quotes and backslashes doubled (the config
// scanner reads backslash escapes inside quoted values). Line breaks and NUL
// cannot appear in a configuration line and are refused.
func quoteConf(v string) (string, error) {
	if strings.ContainsAny(v, "\n\r\x00") {
		return "", fmt.Errorf("value %q contains a line break or NUL, which postgresql.auto.conf cannot hold", v)
	}
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(v); i++ {
		if v[i] == '\'' || v[i] == '\\' {
			b.WriteByte(v[i])
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('\'')
	return b.String(), nil
}

// recoveryTargets are the parameters of which PostgreSQL allows at most one
// to be non-empty.
var recoveryTargets = []string{"recovery_target", "recovery_target_lsn", "recovery_target_name", "recovery_target_time", "recovery_target_xid"}

// recoveryConfig returns the block appended to postgresql.auto.conf.
//
// Every recovery target parameter gets exactly one line, the empty ones
// first: PostgreSQL applies only the last occurrence of a parameter, so this
// clears targets left in postgresql.auto.conf (or postgresql.conf) by an
// earlier restore, which would otherwise make the server refuse to start
// with "multiple recovery targets specified". existing is the current
// postgresql.auto.conf; when it sets recovery_target_inclusive and t does
// not, the default is written back for the same reason.
func recoveryConfig(backupID string, now time.Time, opts Options, existing []byte) (string, error) {
	t := opts.Target
	var b strings.Builder
	fmt.Fprintf(&b, "# walvault restore %s at %s\n", backupID, now.UTC().Format(time.RFC3339))
	set := func(name, value string) error {
		q, err := quoteConf(value)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(&b, "%s = %s\n", name, q)
		return nil
	}
	if err := set("restore_command", opts.RestoreCommand); err != nil {
		return "", err
	}
	// Always written, so that one left by an earlier restore does not run.
	if err := set("recovery_end_command", opts.EndCommand); err != nil {
		return "", err
	}
	name, value := "", ""
	switch t.kind() {
	case "time":
		name, value = "recovery_target_time", FormatPGTime(*t.Time)
	case "lsn":
		name, value = "recovery_target_lsn", t.LSN.String()
	case "xid":
		name, value = "recovery_target_xid", strconv.FormatUint(*t.XID, 10)
	case "name":
		name, value = "recovery_target_name", t.Name
	case "immediate":
		name, value = "recovery_target", "immediate"
	}
	for _, p := range recoveryTargets {
		if p != name {
			if err := set(p, ""); err != nil {
				return "", err
			}
		}
	}
	if name != "" {
		if err := set(name, value); err != nil {
			return "", err
		}
	}
	tl := t.Timeline
	if tl == "" {
		tl = "latest"
	}
	if err := set("recovery_target_timeline", tl); err != nil {
		return "", err
	}
	if name != "" {
		action := t.Action
		if action == "" {
			action = "pause"
		}
		if err := set("recovery_target_action", action); err != nil {
			return "", err
		}
	}
	switch {
	case t.Inclusive != nil:
		v := "off"
		if *t.Inclusive {
			v = "on"
		}
		if err := set("recovery_target_inclusive", v); err != nil {
			return "", err
		}
	case strings.Contains(string(existing), "recovery_target_inclusive"):
		if err := set("recovery_target_inclusive", "on"); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}
