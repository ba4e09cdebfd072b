package drill

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// SQLCheck is one custom check: a query that passes when it returns at
// least one row whose first column is true.
type SQLCheck struct {
	Name string
	// Database to run it in ("" means DefaultCheckDatabase).
	Database string
	SQL      string
	// Line is where the check's header is in its file.
	Line int
}

// DefaultCheckDatabase is where a custom check runs unless its block says
// otherwise.
const DefaultCheckDatabase = "postgres"

var (
	checkHeader    = regexp.MustCompile(`^\s*--\s*check:\s*(.*?)\s*$`)
	databaseHeader = regexp.MustCompile(`^\s*--\s*database:\s*(.*?)\s*$`)
)

// ParseChecks reads a check file: one check per statement, each introduced
// by a line "-- check: NAME", optionally followed by "-- database: NAME"
// (before the statement). A trailing semicolon is allowed. Blank lines and
// comments before the first header are ignored; anything else there is an
// error, as are an empty or duplicate name and a check without SQL.
//
//	-- check: an invoice was posted in the last week
//	-- database: odoo
//	SELECT max(date) > now() - interval '7 days' FROM account_move WHERE state = 'posted';
func ParseChecks(r io.Reader) ([]SQLCheck, error) {
	var checks []SQLCheck
	var cur *SQLCheck
	var body strings.Builder
	seen := map[string]int{}
	finish := func() error {
		if cur == nil {
			return nil
		}
		sql := strings.TrimSpace(body.String())
		sql = strings.TrimSpace(strings.TrimSuffix(sql, ";"))
		if stripComments(sql) == "" {
			return fmt.Errorf("line %d: check %q has no SQL statement", cur.Line, cur.Name)
		}
		cur.SQL = sql
		checks = append(checks, *cur)
		cur = nil
		body.Reset()
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := checkHeader.FindStringSubmatch(line); m != nil {
			if err := finish(); err != nil {
				return nil, err
			}
			name := m[1]
			if name == "" {
				return nil, fmt.Errorf("line %d: a check needs a name: -- check: NAME", n)
			}
			if len(name) > 200 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 }) {
				return nil, fmt.Errorf("line %d: check name %.40q is too long or holds control characters", n, name)
			}
			if prev, dup := seen[name]; dup {
				return nil, fmt.Errorf("line %d: check %q is already defined on line %d", n, name, prev)
			}
			seen[name] = n
			cur = &SQLCheck{Name: name, Line: n}
			continue
		}
		if cur == nil {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
				return nil, fmt.Errorf("line %d: SQL before the first \"-- check: NAME\" line", n)
			}
			continue
		}
		if m := databaseHeader.FindStringSubmatch(line); m != nil && stripComments(body.String()) == "" {
			if m[1] == "" || cur.Database != "" {
				return nil, fmt.Errorf("line %d: check %q: give one database: -- database: NAME", n, cur.Name)
			}
			cur.Database = m[1]
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(checks) == 0 {
		return nil, errors.New("no checks: start each with a line \"-- check: NAME\"")
	}
	return checks, nil
}

// stripComments removes "--" line comments and blank space, to tell
// whether any SQL is left. (A "--" inside a string literal counts as a
// comment here; that only matters for a statement that is nothing but such
// a literal.)
func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.TrimSpace(line))
	}
	return b.String()
}
