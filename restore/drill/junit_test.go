package drill

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// parsedJUnit is what CI systems read of a JUnit report.
type parsedJUnit struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Time       string `xml:"time,attr"`
		Timestamp  string `xml:"timestamp,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			ClassName string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
		SystemOut string `xml:"system-out"`
	} `xml:"testsuite"`
}

func TestWriteJUnit(t *testing.T) {
	rto, rpo := 12.5, 0.25
	newest := time.Date(2026, 11, 22, 10, 13, 59, 750_000_000, time.UTC)
	rep := &Report{
		Started: time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC),
		Target:  "2026-11-22T10:14:00Z", Backup: "20261122T010000Z",
		RTOSeconds: &rto, RPOSeconds: &rpo, NewestCommit: &newest, Seconds: 14,
		ServerVersion: "15.18",
	}
	rep.Passed = true
	rep.Add("restore", Pass, 2*time.Second, "backup 20261122T010000Z")
	rep.Add("promote", Pass, time.Second, "recovery reached the target")
	rep.Add("pg_amcheck", Skip, 0, "skipped: pg_amcheck not installed")
	// A reason with everything XML must escape, a line break, a control
	// character and invalid UTF-8 (server logs and damaged objects have them).
	reason := "FATAL:  could not restore file \"000000010000000000000004\" <from> archive & \x01exit 255\nwalvault: \xff damaged"
	rep.Add("sql:marks > 1000", Fail, 3*time.Millisecond, reason)

	var buf bytes.Buffer
	if err := WriteJUnit(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration: %.60s", buf.String())
	}
	var doc parsedJUnit
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("report does not parse: %v\n%s", err, buf.String())
	}
	if doc.Tests != 4 || doc.Failures != 1 || len(doc.Suites) != 1 {
		t.Fatalf("testsuites: tests %d failures %d suites %d", doc.Tests, doc.Failures, len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != "walvault-drill" || s.Tests != 4 || s.Failures != 1 || s.Skipped != 1 || s.Errors != 0 || s.Time != "14.000" || s.Timestamp != "2026-11-22T10:30:00" {
		t.Errorf("testsuite attributes: %+v", s)
	}
	props := map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	if props["target"] != "2026-11-22T10:14:00Z" || props["rto_seconds"] != "12.500" || props["rpo_seconds"] != "0.250" ||
		props["backup"] != "20261122T010000Z" || props["newest_commit"] != "2026-11-22T10:13:59.75Z" {
		t.Errorf("properties: %v", props)
	}
	if len(s.Cases) != 4 {
		t.Fatalf("%d testcases", len(s.Cases))
	}
	for i, name := range []string{"restore", "promote", "pg_amcheck", "sql:marks > 1000"} {
		c := s.Cases[i]
		if c.Name != name || c.ClassName != "walvault-drill" {
			t.Errorf("testcase %d: %q (%s), want %q", i, c.Name, c.ClassName, name)
		}
	}
	if c := s.Cases[0]; c.Failure != nil || c.Skipped != nil || c.Time != "2.000" || c.SystemOut != "backup 20261122T010000Z" {
		t.Errorf("passing testcase: %+v", c)
	}
	if c := s.Cases[2]; c.Skipped == nil || c.Skipped.Message != "skipped: pg_amcheck not installed" || c.Failure != nil {
		t.Errorf("skipped testcase: %+v", c)
	}
	f := s.Cases[3].Failure
	if f == nil {
		t.Fatal("failed check has no <failure>")
	}
	wantText := "FATAL:  could not restore file \"000000010000000000000004\" <from> archive & exit 255\nwalvault:  damaged"
	if f.Text != wantText {
		t.Errorf("failure text %q, want %q", f.Text, wantText)
	}
	if f.Message != oneLine(wantText) || strings.Contains(f.Message, "\n") {
		t.Errorf("failure message %q: want the reason on one line", f.Message)
	}
	if !strings.Contains(s.SystemOut, "walvault drill FAILED") || !strings.Contains(s.SystemOut, "RTO:     12.5s") {
		t.Errorf("system-out lacks the summary:\n%s", s.SystemOut)
	}
}

func TestWriteTextSummary(t *testing.T) {
	rep := &Report{Passed: true, Target: "latest"}
	rep.Add("restore", Pass, time.Second, "ok")
	rep.Add("odoo:prod:filestore", Skip, 0, "12 attachments\nnot checked")
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"walvault drill PASSED\n",
		"  PASS  restore: ok\n",
		"  SKIP  odoo:prod:filestore: 12 attachments | not checked\n",
		"RTO:     not measured (the server did not come up)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	rep.Add("promote", Fail, 0, "boom")
	if rep.Passed || len(rep.Failed()) != 1 {
		t.Errorf("a failed check must fail the report")
	}
}
