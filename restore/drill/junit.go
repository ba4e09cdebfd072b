package drill

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// JUnit XML as GitHub (dorny/test-reporter, action-junit-report) and GitLab
// (artifacts:reports:junit) read it: a <testsuites> root with one
// <testsuite name="walvault-drill">, one <testcase> per check, a <failure>
// whose message is the reason for a failed check and <skipped> for a
// skipped one. The figures go in <properties> and in <system-out>.

// JUnitSuiteName is the name of the one test suite of a drill report.
const JUnitSuiteName = "walvault-drill"

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure"`
	Skipped   *junitMessage `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes r as a JUnit XML report.
func WriteJUnit(w io.Writer, r *Report) error {
	s := junitSuite{
		Name:      JUnitSuiteName,
		Tests:     len(r.Checks),
		Time:      fmt.Sprintf("%.3f", r.Seconds),
		Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
	}
	prop := func(name, value string) {
		if value != "" {
			s.Properties = append(s.Properties, junitProperty{Name: name, Value: xmlSafe(value)})
		}
	}
	prop("target", r.Target)
	if r.RandomPoint {
		prop("seed", fmt.Sprint(r.Seed))
	}
	prop("backup", r.Backup)
	if r.RTOSeconds != nil {
		prop("rto_seconds", fmt.Sprintf("%.3f", *r.RTOSeconds))
	}
	if r.RPOSeconds != nil {
		prop("rpo_seconds", fmt.Sprintf("%.3f", *r.RPOSeconds))
	}
	if r.NewestCommit != nil {
		prop("newest_commit", r.NewestCommit.UTC().Format(time.RFC3339Nano))
	}
	prop("server_version", r.ServerVersion)
	for _, c := range r.Checks {
		jc := junitCase{Name: xmlSafe(c.Name), ClassName: JUnitSuiteName, Time: fmt.Sprintf("%.3f", c.Seconds)}
		reason := xmlSafe(c.Reason)
		switch c.Status {
		case Fail:
			s.Failures++
			msg := reason
			if msg == "" {
				msg = "failed"
			}
			jc.Failure = &junitMessage{Message: oneLine(msg), Type: "DrillCheckFailed", Text: msg}
		case Skip:
			s.Skipped++
			jc.Skipped = &junitMessage{Message: oneLine(reason)}
		default:
			jc.SystemOut = reason
		}
		s.Cases = append(s.Cases, jc)
	}
	var text strings.Builder
	_ = r.WriteText(&text)
	s.SystemOut = xmlSafe(text.String())
	doc := junitSuites{
		Name: "walvault", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time,
		Suites: []junitSuite{s},
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// xmlSafe drops what XML 1.0 cannot carry at all (control characters but
// tab, newline and carriage return; invalid UTF-8), which a server log or
// an error from a damaged object may hold. encoding/xml escapes the rest.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFD, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return -1
		}
		return r
	}, s)
}
