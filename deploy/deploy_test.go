package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/service"
)

// exportedMetrics is every metric family walvault's daemon exports, taken
// from the collectors themselves with every value known.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	now := time.Unix(1_800_000_000, 0)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		service.NewStreamCollector(func() service.StreamStatus {
			return service.StreamStatus{
				Connected: true, Timeline: 1,
				ReceivedLSN: pgwal.LSN(4), FlushedLSN: pgwal.LSN(3), UploadedLSN: pgwal.LSN(2), ServerWALEnd: pgwal.LSN(5),
				LastReceive: now, LastUpload: now,
			}
		}),
		service.NewLastBackupCollector(func() (time.Time, bool) { return now, true }),
		service.NewBuildInfoCollector("test"),
	)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\bwalvault_[a-z0-9_]+`)

// checkExpr fails on an expression that names a metric walvault does not
// export, or whose brackets do not balance: the mistakes a rename or a
// hand edit makes, caught without a PromQL parser.
func checkExpr(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	if strings.TrimSpace(expr) == "" {
		t.Errorf("%s: empty expression", where)
		return
	}
	for _, name := range metricName.FindAllString(expr, -1) {
		if !known[name] {
			t.Errorf("%s: %s is not a metric walvault exports", where, name)
		}
	}
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				t.Errorf("%s: unbalanced %q in %s", where, r, expr)
				return
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 || inString {
		t.Errorf("%s: unclosed brackets or quotes in %s", where, expr)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

const rulesPath = "prometheus/walvault-alerts.yml"

func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key (anotations:) is an error, as in Prometheus
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	known := exportedMetrics(t)
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" {
			t.Error("a rule group has no name")
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			checkExpr(t, r.Alert, r.Expr, known)
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", r.Alert, err)
				}
			}
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, sev)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			for k, v := range r.Annotations {
				if strings.Count(v, "{{") != strings.Count(v, "}}") {
					t.Errorf("%s: annotation %s: unbalanced template braces", r.Alert, k)
				}
			}
		}
	}
	for _, want := range []string{
		"WalvaultStreamDown", "WalvaultArchivingStalled", "WalvaultLagHigh",
		"WalvaultSlotRetainingTooMuch", "WalvaultBackupTooOld", "WalvaultUploadErrors",
	} {
		if !seen[want] {
			t.Errorf("alert %s missing", want)
		}
	}
}

// promtool, where installed, is the real check: it parses the PromQL and the
// annotation templates, then runs the rules' unit tests
// (prometheus/testdata), which feed series to the rules and check which
// alerts fire when. The unit tests run against a copy without annotations,
// so rewording a description does not break them.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	out, err := exec.Command(promtool, "check", "rules", "--lint=all", "--lint-fatal", rulesPath).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "walvault-alerts.yml"), rulesWithoutAnnotations(t), 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("prometheus/testdata/walvault-alerts-test.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "walvault-alerts-test.yml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "walvault-alerts-test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// rulesWithoutAnnotations returns the rule file with every rule's
// annotations removed.
func rulesWithoutAnnotations(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	field := func(m *yaml.Node, key string) *yaml.Node {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		t.Fatalf("%s: no %q", rulesPath, key)
		return nil
	}
	for _, g := range field(doc.Content[0], "groups").Content {
		for _, r := range field(g, "rules").Content {
			for i := 0; i+1 < len(r.Content); i += 2 {
				if r.Content[i].Value == "annotations" {
					r.Content = append(r.Content[:i], r.Content[i+2:]...)
					break
				}
			}
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	SchemaVersion int    `json:"schemaVersion"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	Panels        []struct {
		ID         int                      `json:"id"`
		Type       string                   `json:"type"`
		Title      string                   `json:"title"`
		Datasource *datasource              `json:"datasource"`
		GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
		Targets    []struct {
			Datasource *datasource `json:"datasource"`
			Expr       string      `json:"expr"`
			RefID      string      `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string      `json:"name"`
			Datasource *datasource `json:"datasource"`
			Definition string      `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

const dashboardPath = "grafana/walvault-dashboard.json"

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d, want about 39", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one Prometheus datasource input DS_PROMETHEUS", d.Inputs)
	}
	checkDS := func(where string, ds *datasource) {
		if ds == nil || ds.Type != "prometheus" || ds.UID != "${DS_PROMETHEUS}" {
			t.Errorf("%s: datasource %+v, want prometheus ${DS_PROMETHEUS}", where, ds)
		}
	}
	known := exportedMetrics(t)
	for _, v := range d.Templating.List {
		checkDS("variable "+v.Name, v.Datasource)
		checkExpr(t, "variable "+v.Name, v.Definition, known)
	}

	ids := map[int]bool{}
	var all []string
	type rect struct{ x, y, w, h int }
	var placed []rect
	for _, p := range d.Panels {
		where := "panel " + p.Title
		if p.Title == "" || ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %d %q: needs a title and a unique non-zero id", p.ID, p.Title)
		}
		ids[p.ID] = true
		if !slices.Contains([]string{"stat", "timeseries"}, p.Type) {
			t.Errorf("%s: type %q", where, p.Type)
		}
		checkDS(where, p.Datasource)
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
		}
		r := rect{g.X, g.Y, g.W, g.H}
		for _, q := range placed {
			if r.x < q.x+q.w && q.x < r.x+r.w && r.y < q.y+q.h && q.y < r.y+r.h {
				t.Errorf("%s: overlaps another panel", where)
			}
		}
		placed = append(placed, r)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		for _, tg := range p.Targets {
			checkDS(where, tg.Datasource)
			checkExpr(t, where, tg.Expr, known)
			all = append(all, tg.Expr)
		}
	}
	exprs := strings.Join(all, "\n")
	for _, want := range []string{
		"walvault_stream_connected",
		"walvault_stream_lag_seconds",
		"walvault_stream_lag_bytes",
		"rate(walvault_stream_received_lsn_bytes",
		"rate(walvault_stream_uploaded_lsn_bytes",
		"walvault_stream_spool_bytes",
		"rate(walvault_stream_uploads_total",
		"rate(walvault_stream_upload_retries_total",
		"rate(walvault_stream_upload_errors_total",
		"walvault_stream_slot_retained_bytes",
		"time() - walvault_stream_last_upload_timestamp_seconds",
		"time() - walvault_last_backup_timestamp_seconds",
	} {
		if !strings.Contains(exprs, want) {
			t.Errorf("no panel queries %s", want)
		}
	}
}

// unitDirectives reads a unit file into "Section.Key" -> values.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Errorf("%s:%d: not a directive: %q", path, n, line)
				continue
			}
			key := section + "." + strings.TrimSpace(k)
			out[key] = append(out[key], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var hardening = map[string]string{
	"Service.User":                    "postgres",
	"Service.EnvironmentFile":         "/etc/walvault/%i.env",
	"Service.ProtectSystem":           "strict",
	"Service.NoNewPrivileges":         "yes",
	"Service.PrivateTmp":              "yes",
	"Service.ProtectHome":             "yes",
	"Service.PrivateDevices":          "yes",
	"Service.ProtectKernelTunables":   "yes",
	"Service.ProtectKernelModules":    "yes",
	"Service.ProtectKernelLogs":       "yes",
	"Service.ProtectControlGroups":    "yes",
	"Service.RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	"Service.RestrictNamespaces":      "yes",
	"Service.LockPersonality":         "yes",
	"Service.MemoryDenyWriteExecute":  "yes",
	"Service.SystemCallArchitectures": "native",
	"Service.CapabilityBoundingSet":   "",
	"Service.UMask":                   "0077",
}

func TestSystemdUnits(t *testing.T) {
	tests := []struct {
		file string
		want map[string]string
	}{
		{"systemd/walvault-stream@.service", map[string]string{
			"Service.Type":             "notify",
			"Service.WatchdogSec":      "60",
			"Service.Restart":          "on-failure",
			"Service.RestartSec":       "5",
			"Service.ExecStart":        "/usr/local/bin/walvault stream --config /etc/walvault/%i.conf",
			"Service.StateDirectory":   "walvault/%i",
			"Service.Environment":      "WALVAULT_SPOOL=%S/walvault/%i WALVAULT_WRITER_KEY_FILE=%d/writer-key",
			"Service.LoadCredential":   "writer-key:/etc/walvault/%i-stream.key",
			"Service.KillSignal":       "SIGTERM",
			"Service.TimeoutStopSec":   "120",
			"Install.WantedBy":         "multi-user.target",
			"Unit.After":               "network-online.target postgresql.service",
			"Service.NotifyAccess":     "main",
			"Service.SystemCallFilter": "@system-service",
		}},
		{"systemd/walvault-wal-server@.service", map[string]string{
			"Service.Type":             "notify",
			"Service.Restart":          "on-failure",
			"Service.User":             "postgres",
			"Service.ExecStart":        "/usr/local/bin/walvault wal-server --config /etc/walvault/%i.conf --socket %t/walvault/%i/wal.sock",
			"Service.RuntimeDirectory": "walvault/%i",
			"Service.LoadCredential":   "writer-key:/etc/walvault/%i-wal-server.key",
			"Service.Environment":      "WALVAULT_WRITER_KEY_FILE=%d/writer-key",
			"Service.KillSignal":       "SIGTERM",
			"Unit.Before":              "postgresql.service",
			"Install.WantedBy":         "multi-user.target",
		}},
		{"systemd/walvault-backup@.service", map[string]string{
			"Service.Type":              "oneshot",
			"Service.ExecStart":         "/usr/local/bin/walvault backup --config /etc/walvault/%i.conf",
			"Service.IOSchedulingClass": "idle",
			"Service.Nice":              "10",
			"Service.LoadCredential":    "writer-key:/etc/walvault/%i-backup.key",
			"Service.Environment":       "WALVAULT_WRITER_KEY_FILE=%d/writer-key",
		}},
		{"systemd/walvault-backup@.timer", map[string]string{
			"Timer.OnCalendar":         "*-*-* 01:30",
			"Timer.RandomizedDelaySec": "30m",
			"Timer.Persistent":         "true",
			"Install.WantedBy":         "timers.target",
		}},
		{"systemd/walvault-drill@.service", map[string]string{
			"Service.Type":              "oneshot",
			"Service.ExecStart":         "/usr/local/bin/walvault drill --config /etc/walvault/%i.conf --scratch /var/lib/walvault-drill/%i --junit /var/lib/walvault-drill/%i/drill.xml",
			"Service.StateDirectory":    "walvault-drill/%i",
			"Service.LoadCredential":    "identity:/etc/walvault/%i-drill.key",
			"Service.Environment":       "WALVAULT_AGE_IDENTITY_FILE=%d/identity",
			"Service.TimeoutStartSec":   "12h",
			"Service.IOSchedulingClass": "idle",
			"Service.Nice":              "10",
			"Service.SystemCallFilter":  "@system-service",
		}},
		{"systemd/walvault-filestore@.service", map[string]string{
			// The Odoo service's user reads the filestore; Odoo's data
			// directory may be under a home directory (read only).
			"Service.User":            "odoo",
			"Service.ProtectHome":     "read-only",
			"Service.EnvironmentFile": "-/etc/walvault/filestore-%i.env",
			"Service.ExecStart":       "/usr/local/bin/walvault filestore push --config /etc/walvault/filestore-%i.conf --log-format json",
			"Service.Environment":     "WALVAULT_FILESTORE_INTERVAL=5m WALVAULT_FILESTORE_STATE_DIR=%S/walvault-filestore/%i WALVAULT_WRITER_KEY_FILE=%d/writer-key",
			"Service.LoadCredential":  "writer-key:/etc/walvault/filestore-%i.key",
			"Service.StateDirectory":  "walvault-filestore/%i",
			"Service.KillSignal":      "SIGTERM",
			"Service.Restart":         "on-failure",
		}},
		{"systemd/walvault-drill@.timer", map[string]string{
			"Timer.OnCalendar":         "Sun *-*-* 04:00",
			"Timer.RandomizedDelaySec": "1h",
			"Timer.Persistent":         "true",
			"Install.WantedBy":         "timers.target",
		}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			got := unitDirectives(t, tt.file)
			want := tt.want
			if strings.HasSuffix(tt.file, ".service") {
				want = make(map[string]string)
				for k, v := range hardening {
					want[k] = v
				}
				for k, v := range tt.want {
					want[k] = v
				}
			}
			for k, v := range want {
				if vs := got[k]; len(vs) != 1 || vs[0] != v {
					t.Errorf("%s = %q, want exactly %q", k, vs, v)
				}
			}
			// Go exits with status 2 on a panic and on the watchdog's
			// SIGABRT: that status must stay restartable.
			for _, v := range got["Service.RestartPreventExitStatus"] {
				if slices.Contains(strings.Fields(v), "2") {
					t.Errorf("RestartPreventExitStatus=%s: a panicked or watchdog-killed daemon would stay down", v)
				}
			}
			// RemoveIPC=yes would delete the running PostgreSQL server's
			// shared memory: the units run as its user.
			if v := got["Service.RemoveIPC"]; len(v) > 0 && v[len(v)-1] != "no" {
				t.Errorf("RemoveIPC=%s: would destroy PostgreSQL's shared memory", v)
			}
		})
	}
}

// systemd-analyze verify, where installed, loads the units as systemd would
// and reports unknown or malformed directives. It needs the ExecStart binary
// to exist, so the units are checked as copies pointing at a stub.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "walvault")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, name := range []string{"walvault-stream@.service", "walvault-wal-server@.service", "walvault-backup@.service", "walvault-backup@.timer",
		"walvault-drill@.service", "walvault-drill@.timer", "walvault-filestore@.service"} {
		data, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("/usr/local/bin/walvault"), []byte(stub))
		inst := filepath.Join(dir, strings.Replace(name, "@.", "@main.", 1))
		if err := os.WriteFile(inst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, inst)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...)
	out, err := cmd.CombinedOutput()
	// verify exits 0 on warnings about unknown keys: any line about our
	// files is a failure.
	var problems []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, dir) || strings.Contains(line, "walvault-") {
			problems = append(problems, line)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(problems, "\n"))
	}
	if len(out) > 0 {
		t.Logf("systemd-analyze verify said:\n%s", out)
	}
}

// The alert rules select job="walvault"; the README's scrape
// configuration must name the job that way.
func TestReadmeScrapeJob(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("job_name: walvault")) {
		t.Error(`README.md: the Prometheus scrape config must use job_name: walvault (the alert rules select up{job="walvault"})`)
	}
	if !bytes.Contains(data, []byte(service.DefaultAddr)) {
		t.Errorf("README.md does not mention the default metrics address %s", service.DefaultAddr)
	}
}

// The README's main.conf must be a file walvault reads as meant: one
// `name = value` a line, and no comment after a value (the config parser
// has whole-line comments only, so "slot = x  # note" names a slot "x  # note").
func TestReadmeConfigFile(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "cat > /etc/walvault/main.conf <<'EOF'\n")
	if !ok {
		t.Fatal("README.md: no main.conf example")
	}
	conf, _, ok := strings.Cut(rest, "\nEOF\n")
	if !ok {
		t.Fatal("README.md: main.conf example not terminated")
	}
	keys := map[string]bool{}
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || strings.ContainsAny(k, " \t") || v == "" {
			t.Errorf("main.conf line %q: want name = value", line)
		}
		if strings.Contains(v, "#") {
			t.Errorf("main.conf line %q: a comment after a value becomes part of it", line)
		}
		keys[k] = true
	}
	for _, k := range []string{"repo", "age-recipients", "metrics-addr"} {
		if !keys[k] {
			t.Errorf("main.conf example lacks %s", k)
		}
	}
}

// The CI drill examples: valid YAML of the shape each CI system reads, a
// drill against the bucket that writes drill.xml, the JUnit report
// published even when the drill fails, and the identity written to a 0600
// file by a shell builtin, never interpolated into a script or put on a
// command line.
func TestCIDrillExamples(t *testing.T) {
	const drillCmd = "walvault drill --random-point --junit drill.xml"
	checkIdentity := func(t *testing.T, script string) {
		t.Helper()
		if !strings.Contains(script, "install -m 0600 /dev/null") {
			t.Error("the identity file is not created with mode 0600 before the key is written")
		}
		for _, line := range strings.Split(script, "\n") {
			if strings.Contains(line, "WALVAULT_AGE_IDENTITY") && !strings.HasPrefix(strings.TrimSpace(line), "printf '%s\\n' \"$WALVAULT_AGE_IDENTITY\" > ") {
				t.Errorf("the identity appears outside the printf that writes it: %q", line)
			}
		}
	}

	t.Run("github", func(t *testing.T) {
		data, err := os.ReadFile("ci/github-actions-drill.yml")
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Name        string         `yaml:"name"`
			On          map[string]any `yaml:"on"`
			Permissions map[string]string
			Jobs        map[string]struct {
				RunsOn string            `yaml:"runs-on"`
				Env    map[string]string `yaml:"env"`
				Steps  []struct {
					Name string            `yaml:"name"`
					Uses string            `yaml:"uses"`
					Run  string            `yaml:"run"`
					If   string            `yaml:"if"`
					With map[string]any    `yaml:"with"`
					Env  map[string]string `yaml:"env"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(data, &wf); err != nil {
			t.Fatal(err)
		}
		if wf.On["schedule"] == nil || wf.Permissions["checks"] != "write" {
			t.Errorf("want a schedule trigger and checks: write permission: on %v, permissions %v", wf.On, wf.Permissions)
		}
		job, ok := wf.Jobs["drill"]
		if !ok || job.RunsOn == "" || len(job.Steps) == 0 {
			t.Fatalf("no drill job: %+v", wf.Jobs)
		}
		if !strings.HasPrefix(job.Env["WALVAULT_REPO"], "s3://") || !strings.Contains(job.Env["AWS_SECRET_ACCESS_KEY"], "secrets.") {
			t.Errorf("the drill must run against a bucket with credentials from secrets: %v", job.Env)
		}
		var scripts strings.Builder
		drilled, published, identity := false, false, false
		for _, s := range job.Steps {
			scripts.WriteString(s.Run + "\n")
			if strings.Contains(s.Run, "${{") && strings.Contains(s.Run, "secrets.") {
				t.Errorf("step %q interpolates a secret into its script", s.Name)
			}
			if strings.Contains(s.Run, drillCmd) {
				drilled = true
			}
			if strings.Contains(s.Uses, "junit-report") && s.If == "always()" && s.With["report_paths"] == "drill.xml" {
				published = true
			}
			if strings.Contains(s.Env["WALVAULT_AGE_IDENTITY"], "secrets.WALVAULT_AGE_IDENTITY") {
				identity = true
			}
		}
		if !drilled || !published || !identity {
			t.Errorf("drill step %v, JUnit published always %v, identity from a secret %v", drilled, published, identity)
		}
		if !strings.Contains(scripts.String(), "postgresql-$PG_MAJOR") || !strings.Contains(scripts.String(), "go install \"github.com/walvault/walvault/cmd/walvault@") {
			t.Error("the job must install PostgreSQL and walvault")
		}
		checkIdentity(t, scripts.String())
	})

	t.Run("gitlab", func(t *testing.T) {
		data, err := os.ReadFile("ci/gitlab-ci-drill.yml")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]struct {
			Image        string            `yaml:"image"`
			Variables    map[string]string `yaml:"variables"`
			BeforeScript []string          `yaml:"before_script"`
			Script       []string          `yaml:"script"`
			AfterScript  []string          `yaml:"after_script"`
			Rules        []map[string]any  `yaml:"rules"`
			Timeout      string            `yaml:"timeout"`
			Artifacts    struct {
				When     string   `yaml:"when"`
				ExpireIn string   `yaml:"expire_in"`
				Paths    []string `yaml:"paths"`
				Reports  struct {
					JUnit string `yaml:"junit"`
				} `yaml:"reports"`
			} `yaml:"artifacts"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		job, ok := doc["walvault-drill"]
		if !ok || job.Image == "" {
			t.Fatalf("no walvault-drill job with an image: %+v", doc)
		}
		if !strings.HasPrefix(job.Variables["WALVAULT_REPO"], "s3://") {
			t.Errorf("the drill must run against a bucket: %v", job.Variables)
		}
		if job.Artifacts.When != "always" || job.Artifacts.Reports.JUnit != "drill.xml" {
			t.Errorf("the JUnit report must be published even on failure: %+v", job.Artifacts)
		}
		all := strings.Join(append(append(append([]string{}, job.BeforeScript...), job.Script...), job.AfterScript...), "\n")
		if !strings.Contains(strings.Join(job.Script, "\n"), drillCmd) {
			t.Errorf("script does not run %q", drillCmd)
		}
		if !strings.Contains(all, "postgresql-$PG_MAJOR") || !strings.Contains(all, "go install \"github.com/walvault/walvault/cmd/walvault@") {
			t.Error("the job must install PostgreSQL and walvault")
		}
		if len(job.Rules) == 0 {
			t.Error("the job should run on a schedule, not on every push")
		}
		checkIdentity(t, all)
	})
}
