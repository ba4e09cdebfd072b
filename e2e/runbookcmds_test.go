package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The drift guard: every walvault invocation of docs/RUNBOOK.md — in its
// code blocks, and the `$WV …` commands its prose gives in full — must be
// run by a transcript (runbook_test.go), which registers the lines it ran.
// A command added to or changed in the runbook without a transcript that
// runs it fails TestRunbookAsDocumented.

const runbookFile = "docs/RUNBOOK.md"

// runbookLine is one walvault invocation of the runbook: the heading of
// its section ("" before the first) and its text, with continuation lines
// joined, the trailing comment left out and blanks collapsed.
type runbookLine struct {
	Section string
	Text    string
}

func (l runbookLine) String() string {
	if l.Section == "" {
		return l.Text
	}
	return fmt.Sprintf("%q: %s", l.Section, l.Text)
}

// mdSection is a "## " section of a markdown text: its heading and body.
type mdSection struct {
	Heading string
	Body    string
}

// mdSections splits text at its "## " headings; the text before the first
// is a section with an empty heading. Headings inside code blocks do not
// count.
func mdSections(text string) []mdSection {
	out := []mdSection{{}}
	fenced := false
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if h, ok := strings.CutPrefix(line, "## "); ok && !fenced {
			out = append(out, mdSection{Heading: strings.TrimSpace(h)})
			continue
		}
		out[len(out)-1].Body += line
	}
	return out
}

// codeBlocks returns the fenced code blocks of a markdown text, without
// their fences.
func codeBlocks(text string) []string {
	var blocks []string
	var cur strings.Builder
	fenced := false
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "```") {
			if fenced {
				blocks = append(blocks, cur.String())
				cur.Reset()
			}
			fenced = !fenced
			continue
		}
		if fenced {
			cur.WriteString(line)
		}
	}
	return blocks
}

// normalizeCommand joins continuation lines, drops a trailing comment
// (a # after a blank, outside quotes) and collapses blanks.
func normalizeCommand(s string) string {
	s = strings.ReplaceAll(s, "\\\n", " ")
	var quote rune
	prev := ' '
	for i, r := range s {
		if quote != 0 {
			if r == quote {
				quote = 0
			}
		} else if r == '\'' || r == '"' {
			quote = r
		} else if r == '#' && (prev == ' ' || prev == '\t') {
			s = s[:i]
			break
		}
		prev = r
	}
	return strings.Join(strings.Fields(s), " ")
}

var (
	// a command separator: a walvault invocation may follow one
	commandSeparator = regexp.MustCompile(`\|\||&&|[|;]|\$\(`)
	envAssignment    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	// a `$WV …` command given in full in the prose
	inlineWV = regexp.MustCompile("`(\\$WV [^`]+)`")
)

// invokesWalvault reports whether a normalised command runs walvault in
// one of its parts: `$WV …`, `walvault …`, `env … walvault …`, after
// variable assignments and `sudo -u USER`.
func invokesWalvault(cmd string) bool {
	for _, part := range commandSeparator.Split(cmd, -1) {
		w := strings.Fields(part)
		for len(w) > 0 && envAssignment.MatchString(w[0]) {
			w = w[1:]
		}
		if len(w) >= 3 && w[0] == "sudo" && w[1] == "-u" {
			w = w[3:]
		}
		if len(w) > 0 && w[0] == "env" {
			w = w[1:]
			for len(w) > 0 && envAssignment.MatchString(w[0]) {
				w = w[1:]
			}
		}
		if len(w) > 0 && (w[0] == "$WV" || w[0] == "walvault") {
			return true
		}
	}
	return false
}

// runbookInvocations returns the walvault invocations of a runbook text,
// in order, each once per section; and the code blocks' commands that
// name $WV in a form invokesWalvault does not recognise, which the guard
// would otherwise miss.
func runbookInvocations(text string) (lines []runbookLine, unrecognised []string) {
	for _, sec := range mdSections(text) {
		add := func(cmd string) {
			l := runbookLine{Section: sec.Heading, Text: cmd}
			if !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
		}
		for _, block := range codeBlocks(sec.Body) {
			for _, c := range shellCommands(block) {
				cmd := normalizeCommand(c.Text)
				switch {
				case invokesWalvault(cmd):
					add(cmd)
				case strings.Contains(cmd, "$WV"):
					unrecognised = append(unrecognised, cmd)
				}
			}
		}
		for _, m := range inlineWV.FindAllStringSubmatch(sec.Body, -1) {
			add(normalizeCommand(m[1]))
		}
	}
	return lines, unrecognised
}

// runbookLedger records the runbook lines the transcripts ran.
type runbookLedger struct {
	mu  sync.Mutex
	ran map[runbookLine]int
}

func (l *runbookLedger) record(line runbookLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ran == nil {
		l.ran = map[runbookLine]int{}
	}
	l.ran[line]++
}

// notRun returns the invocations of the runbook text no transcript ran,
// and how many it has.
func (l *runbookLedger) notRun(text string) (missing []runbookLine, total int) {
	lines, _ := runbookInvocations(text)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range lines {
		if l.ran[line] == 0 {
			missing = append(missing, line)
		}
	}
	return missing, len(lines)
}

// check fails t for every invocation of the runbook text no transcript
// ran, and for a command naming $WV the guard cannot read.
func (l *runbookLedger) check(t *testing.T, text string) {
	t.Helper()
	if _, unrecognised := runbookInvocations(text); len(unrecognised) > 0 {
		t.Errorf("%s: commands name $WV in a form the drift guard does not recognise as a walvault invocation: %q", runbookFile, unrecognised)
	}
	missing, total := l.notRun(text)
	if len(missing) > 0 {
		var names []string
		for _, m := range missing {
			names = append(names, m.String())
		}
		t.Errorf("%s: %d of %d walvault commands are run by no transcript (e2e/runbook_test.go): run each in the transcript of its section, as written:\n  %s",
			runbookFile, len(missing), total, strings.Join(names, "\n  "))
	}
	t.Logf("%s: the transcripts ran %d of its %d walvault commands", runbookFile, total-len(missing), total)
}

// TestRunbookInvocations: the guard finds what it must in a runbook, so
// that a command it cannot see never goes untested. It needs no server.
func TestRunbookInvocations(t *testing.T) {
	sample := "intro `$WV recovery-cleanup --pgdata /x` and `walvault check` (a mention)\n" +
		"```sh\nWV=\"env WALVAULT_CONFIG=/etc/walvault/walvault.conf walvault\"\n```\n" +
		"## Before\n\n```sh\n$WV check     # a comment\n$WV  info\n" +
		"sudo -u postgres $WV backup --note \"a # in quotes\"\n" +
		"PGPASSWORD=… $WV restore --database prod \\\n    --as prod_1013   # joined\n" +
		"groupadd --system walvault && usermod -aG walvault postgres\n" +
		"systemctl start walvault-stream@main\n" +
		"psql -Atc 'SELECT 1' | walvault odoo anonymize --db x\n" +
		"echo $WV\n" +
		"```\n\nSee `$WV info` again.\n"
	lines, unrecognised := runbookInvocations(sample)
	want := []runbookLine{
		{"", "$WV recovery-cleanup --pgdata /x"},
		{"Before", "$WV check"},
		{"Before", "$WV info"},
		{"Before", `sudo -u postgres $WV backup --note "a # in quotes"`},
		{"Before", "PGPASSWORD=… $WV restore --database prod --as prod_1013"},
		{"Before", "psql -Atc 'SELECT 1' | walvault odoo anonymize --db x"},
	}
	if !slices.Equal(lines, want) {
		t.Errorf("invocations:\n  %q\nwant\n  %q", lines, want)
	}
	if !slices.Equal(unrecognised, []string{"echo $WV"}) {
		t.Errorf("unrecognised: %q, want [echo $WV]", unrecognised)
	}
	// A line run under one section does not cover the same text in
	// another; a changed line is a new one.
	var ledger runbookLedger
	for _, l := range want[:4] {
		ledger.record(l)
	}
	ledger.record(runbookLine{"", "$WV info"})
	ledger.record(runbookLine{"Before", "PGPASSWORD=… $WV restore --database prod --as prod_1014"})
	if missing, total := ledger.notRun(sample); !slices.Equal(missing, want[4:]) || total != len(want) {
		t.Errorf("not run: %q of %d, want %q of %d", missing, total, want[4:], len(want))
	}

	// The runbook itself: every invocation is one of the shapes the
	// transcripts run.
	lines, unrecognised = runbookInvocations(mdText(t, runbookFile))
	if len(unrecognised) > 0 {
		t.Errorf("%s: commands naming $WV that the guard does not recognise: %q", runbookFile, unrecognised)
	}
	if len(lines) < 10 {
		t.Fatalf("%s: only %d walvault invocations found: %q", runbookFile, len(lines), lines)
	}
	for _, l := range lines {
		t.Logf("%s", l)
	}
}
