package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The documented commands' kit, shared by the tests that run the README's
// and the RUNBOOK's code blocks as written (docsetup_test.go,
// runbook_test.go): the accounts they name, reading the markdown, and
// running its commands with bash as root or, through a stand-in for sudo,
// as another user, with the documents' system paths mapped into the
// test's directory.

// ---------------------------------------------------------------------------
// accounts

// sharedGroup is the group of the README's shared repository.
const sharedGroup = "walvault"

// sharedRepoAccounts returns postgres and odoo, both members of the group
// walvault, and the group's id. .ci/run makes them; run as root elsewhere,
// the test makes what is missing (and leaves it: it is what the README
// asks of an Odoo host).
func sharedRepoAccounts(t *testing.T) (pg, odoo *account, gid uint32) {
	t.Helper()
	if os.Geteuid() != 0 || suite.pgUser == nil {
		skipOutsideCI(t, "needs root and a postgres user: walvault runs as root, postgres and odoo")
	}
	var missing []string
	if _, err := user.LookupGroup(sharedGroup); err != nil {
		missing = append(missing, "groupadd --system "+sharedGroup)
	}
	if _, err := user.Lookup("odoo"); err != nil {
		missing = append(missing, "useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin odoo")
	}
	for _, name := range []string{"postgres", "odoo"} {
		if !inGroup(name, sharedGroup) {
			missing = append(missing, "usermod -aG "+sharedGroup+" "+name)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("the accounts of the README's Odoo setup are missing; .ci/run should have run: %s", strings.Join(missing, "; "))
		}
		for _, c := range missing {
			if out, err := exec.Command("sh", "-c", c).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c, err, out)
			}
			t.Logf("made on this machine for the README's Odoo setup (left in place): %s", c)
		}
	}
	g, err := user.LookupGroup(sharedGroup)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	if pg, err = lookupAccount("postgres"); err != nil {
		t.Fatal(err)
	}
	if odoo, err = lookupAccount("odoo"); err != nil {
		t.Fatal(err)
	}
	return pg, odoo, uint32(n)
}

func inGroup(name, group string) bool {
	a, err := lookupAccount(name)
	g, err2 := user.LookupGroup(group)
	if err != nil || err2 != nil {
		return false
	}
	for _, id := range append([]uint32{a.GID}, a.Groups...) {
		if strconv.FormatUint(uint64(id), 10) == g.Gid {
			return true
		}
	}
	return false
}

// checkAccountCommands fails when a documented block creates groups or
// users, or changes memberships, other than sharedRepoAccounts provides:
// the test does not run those commands, it relies on their effect.
func checkAccountCommands(t *testing.T, file string, blocks ...string) {
	t.Helper()
	known := map[string]bool{
		"groupadd --system walvault":    true,
		"usermod -aG walvault postgres": true,
		"usermod -aG walvault odoo":     true,
	}
	for _, block := range blocks {
		for _, c := range shellCommands(block) {
			for _, part := range strings.Split(c.Text, "&&") {
				part = strings.TrimSpace(part)
				if isAccountCommand(part) && !known[part] {
					t.Errorf("%s: %q: the test (sharedRepoAccounts) and .ci/run do not make this account change", file, part)
				}
			}
		}
	}
}

func isAccountCommand(cmd string) bool {
	for _, p := range []string{"groupadd ", "useradd ", "usermod ", "adduser ", "gpasswd "} {
		if strings.HasPrefix(cmd, p) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// the documents

func mdText(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mdBlock returns the first fenced code block after the first line of the
// markdown file (relative to the module root) that contains marker.
func mdBlock(t *testing.T, file, marker string) string {
	t.Helper()
	text := mdText(t, file)
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("%s: no %q: the test runs the commands that follow it", file, marker)
	}
	rest := text[i:]
	open := strings.Index(rest, "\n```")
	if open < 0 {
		t.Fatalf("%s: no code block after %q", file, marker)
	}
	rest = rest[open+4:]
	rest = rest[strings.IndexByte(rest, '\n')+1:]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		t.Fatalf("%s: the code block after %q does not end", file, marker)
	}
	return rest[:end+1]
}

// docCommand is one shell command of a documented block.
type docCommand struct {
	Step int    // the "# N." comment above it; 0 before the first
	Text string // with its continuation lines and here-document
}

var (
	stepHeading = regexp.MustCompile(`^# (\d+)\.`)
	hereDoc     = regexp.MustCompile(`<<-?'?(\w+)'?`)
	settingLine = regexp.MustCompile(`^#\s+(\w+ = .+)$`)
)

// shellCommands splits a block into its commands, leaving out comments.
func shellCommands(block string) []docCommand {
	var out []docCommand
	step := 0
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := stepHeading.FindStringSubmatch(line); m != nil {
			step, _ = strconv.Atoi(m[1])
			continue
		}
		if s := strings.TrimSpace(line); s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		text := line
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			text += "\n" + lines[i]
		}
		if m := hereDoc.FindStringSubmatch(text); m != nil {
			for i+1 < len(lines) {
				i++
				text += "\n" + lines[i]
				if lines[i] == m[1] {
					break
				}
			}
		}
		out = append(out, docCommand{Step: step, Text: text})
	}
	return out
}

// commandsOfStep returns the commands of step n as one script, less the
// account commands (checkAccountCommands vouches for those).
func commandsOfStep(t *testing.T, cmds []docCommand, n int) string {
	t.Helper()
	var lines []string
	for _, c := range cmds {
		if c.Step == n && !isAccountCommand(c.Text) {
			lines = append(lines, c.Text)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no commands in step %d", n)
	}
	return strings.Join(lines, "\n")
}

// onlyCommand returns the one command that starts with prefix.
func onlyCommand(t *testing.T, what string, cmds []docCommand, prefix string) string {
	t.Helper()
	var found []string
	for _, c := range cmds {
		if strings.HasPrefix(c.Text, prefix) {
			found = append(found, c.Text)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d commands start with %q, want 1: %q", what, len(found), prefix, found)
	}
	return found[0]
}

// docSettings returns the "name = value" lines of the comment of step n
// (postgresql.conf settings).
func docSettings(block string, n int) []string {
	var out []string
	step := 0
	for _, line := range strings.Split(block, "\n") {
		if m := stepHeading.FindStringSubmatch(line); m != nil {
			step, _ = strconv.Atoi(m[1])
			continue
		}
		if m := settingLine.FindStringSubmatch(line); m != nil && step == n {
			out = append(out, m[1])
		}
	}
	return out
}

// shellWords splits a command line into words: blanks, backslash-newlines
// and single quotes, which is all the documented commands use.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	s = strings.ReplaceAll(s, "\\\n", " ")
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case !quoted && (r == '"' || r == '$' || r == '`' || r == '\\'):
			t.Fatalf("shellWords: %q needs a real shell", s)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// ---------------------------------------------------------------------------
// running them

// docShell runs documented commands with bash, as root, with the
// documents' paths mapped into the test's directory.
type docShell struct {
	h       *Harness
	mapping []string // documented text, replacement, …
	// hostEnv is what every process of the host gets (PATH, the PG*
	// variables standing for the host's local socket, …): root's shell
	// and the commands sudo runs.
	hostEnv []string
	// env is root's shell's own (variables sudo does not pass on).
	env []string
	dir string // working directory; "" is the harness's base
}

// with returns a copy working in dir with more mappings.
func (d *docShell) with(dir string, mapping ...string) *docShell {
	c := *d
	c.dir = dir
	c.mapping = append(append([]string(nil), d.mapping...), mapping...)
	return &c
}

// mapPaths applies the mapping and fails on a system path left over: the
// test must never touch the host's own /etc, /var or /root.
func (d *docShell) mapPaths(t *testing.T, s string) string {
	t.Helper()
	var erase []string
	for i := 0; i < len(d.mapping); i += 2 {
		erase = append(erase, d.mapping[i], "")
	}
	rest := strings.NewReplacer(erase...).Replace(s)
	for _, p := range []string{"/etc/", "/var/", "/root/", "/srv/", "/usr/local/", "/home/"} {
		if strings.Contains(rest, p) {
			t.Fatalf("a documented path under %s is not mapped into the test's directory:\n%s", p, s)
		}
	}
	return strings.NewReplacer(d.mapping...).Replace(s)
}

// sudoStandIn plays `sudo -u USER COMMAND…` as Debian's sudo runs it
// (env_reset): COMMAND runs as USER with the groups the system gives it
// (initgroups, as sudo and systemd do), its home, and only the host's
// environment; what root exported stays behind.
func (d *docShell) sudoStandIn() string {
	kept := []string{"LC_ALL=C"}
	for _, kv := range d.hostEnv {
		kept = append(kept, shQuote(kv))
	}
	return `set -euo pipefail
sudo() {
	if [ "$#" -lt 3 ] || [ "$1" != -u ]; then
		echo "the test's sudo runs only: sudo -u USER COMMAND..." >&2
		return 2
	fi
	local user=$2
	shift 2
	setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
		env -i ` + strings.Join(kept, " ") + ` HOME=` + shQuote(d.h.Path("homes")) + `/"$user" USER="$user" LOGNAME="$user" "$@"
}
`
}

// shQuote quotes s for bash.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (d *docShell) run(t *testing.T, script string) (stdout, stderr string, err error) {
	t.Helper()
	script = d.mapPaths(t, script)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := d.h.command(ctx, nil, slices.Concat(d.hostEnv, d.env), "bash", "-c", d.sudoStandIn()+script)
	if d.dir != "" {
		cmd.Dir = d.dir
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err = cmd.Run()
	recordOutput("documented commands: "+script, o.String()+e.String())
	t.Logf("$ %s\n  -> %v in %v\n  stdout: %s\n  stderr: %s", script, err, time.Since(start).Round(time.Millisecond), tail(o.String(), 10), tail(e.String(), 15))
	return o.String(), e.String(), err
}

// must runs script and fails the test unless it succeeds; it returns stdout.
func (d *docShell) must(t *testing.T, script string) string {
	t.Helper()
	stdout, stderr, err := d.run(t, script)
	if err != nil {
		t.Fatalf("documented commands failed: %v\n%s\nstderr:\n%s", err, d.mapPaths(t, script), tail(stderr, 40))
	}
	return stdout
}

// docProcess is a documented walvault command running in the background.
type docProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
	line string
}

// start runs a documented `sudo -u USER walvault …` line in the background,
// as as (USER, with its groups) with the host's environment, without a
// shell: it must be signalled.
func (d *docShell) start(t *testing.T, line string, as *account) *docProcess {
	t.Helper()
	words := shellWords(t, d.mapPaths(t, line))
	if len(words) < 4 || words[0] != "sudo" || words[1] != "-u" || words[2] != as.Name || words[3] != "walvault" {
		t.Fatalf("%q is not `sudo -u %s walvault …`", line, as.Name)
	}
	env := append(slices.Clone(d.hostEnv), "HOME="+filepath.Join(d.h.Path("homes"), as.Name))
	cmd := d.h.command(context.Background(), as, env, suite.walvault, words[4:]...)
	p := &docProcess{cmd: cmd, out: &lockedBuffer{}, done: make(chan error, 1), line: line}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-p.done:
			p.done <- err
		default:
			_ = cmd.Process.Kill()
		}
		recordOutput("walvault "+strings.Join(words[4:], " "), p.out.String())
	})
	return p
}

// passes counts the filestore passes the process reported.
func (p *docProcess) passes() int { return strings.Count(p.out.String(), "filestore prod: ") }

func (p *docProcess) waitPasses(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d filestore passes of %s", n, p.line), 5*time.Minute, func() (bool, error) {
		if p.passes() >= n {
			return true, nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s ended before %d passes: %v\n%s", p.line, n, err, p.out.String())
		default:
		}
		return false, nil
	})
}

// stop sends SIGTERM, which ends the continuous push after its pass: it
// must exit 0, and every pass that found a change must have logged it.
func (p *docProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-p.done
	p.done <- err
	t.Logf("%s after SIGTERM: %v\n%s", p.line, err, tail(p.out.String(), 10))
	if err != nil {
		t.Fatalf("%s: %v after SIGTERM, want exit 0\n%s", p.line, err, p.out.String())
	}
	if !strings.Contains(p.out.String(), "logged ") {
		t.Errorf("%s: no pass logged a change:\n%s", p.line, p.out.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// killPushHoldingLock starts the documented push and kills it (SIGKILL)
// while it holds its shared repository lock, as a crash or the OOM killer
// would: once it writes a temporary, storing a new 32 MiB file (or when it
// ends its pass, then nothing is left to kill). It returns the lock object

// ---------------------------------------------------------------------------
// files

func mkdirOwned(t *testing.T, p string, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	copyBytes(t, dst, b, mode, uid, gid)
}

func copyBytes(t *testing.T, dst string, b []byte, mode os.FileMode, uid, gid uint32) {
	t.Helper()
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dst, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

func statT(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// registerKeySecret registers an identity file's secret key for the
// suite's leak scan.
func registerKeySecret(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "AGE-SECRET-KEY-") {
			registerSecret("identity "+path, line)
			return
		}
	}
	t.Fatalf("%s holds no AGE-SECRET-KEY line", path)
}
