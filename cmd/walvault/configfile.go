package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// loadConfigFile applies the --config file to every flag of the command that
// was set neither on the command line nor in the environment: flags win over
// environment, which wins over the file, which wins over defaults.
func loadConfigFile(c *cli.Context) error {
	path := c.String("config") // read before the settings are decoded: it says where they are
	if path == "" {
		return nil
	}
	values, err := readConfigFile(path)
	if err != nil {
		return &configError{err: err}
	}
	known := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	for _, kv := range values {
		if !known[kv.key] {
			// Keys for other commands are fine in a shared file; only
			// keys no command knows are mistakes.
			if !anyCommandKnows(c.App, kv.key) {
				return configf("%s line %d: unknown setting %q", path, kv.line, kv.key)
			}
			continue
		}
		if c.IsSet(kv.key) {
			continue
		}
		if err := c.Set(kv.key, kv.value); err != nil {
			return configf("%s line %d: %s: %v", path, kv.line, kv.key, err)
		}
	}
	return nil
}

func anyCommandKnows(app *cli.App, key string) bool {
	var knows func(cmds []*cli.Command) bool
	knows = func(cmds []*cli.Command) bool {
		for _, cmd := range cmds {
			for _, f := range cmd.Flags {
				for _, n := range f.Names() {
					if n == key {
						return true
					}
				}
			}
			if knows(cmd.Subcommands) {
				return true
			}
		}
		return false
	}
	return knows(app.Commands)
}

type configValue struct {
	key, value string
	line       int
}

// readConfigFile parses `name = value` lines. '#' starts a comment line;
// values may be wrapped in single or double quotes. `include = PATH`
// (absolute) reads another config file at that point; as everywhere in a
// config file, the first value given for a setting wins.
func readConfigFile(path string) ([]configValue, error) {
	return readConfigDepth(path, 0)
}

// maxIncludeDepth bounds include chains (and so include loops).
const maxIncludeDepth = 4

func readConfigDepth(path string, depth int) ([]configValue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	values, err := parseConfig(path, f)
	if err != nil {
		return nil, err
	}
	var out []configValue
	for _, kv := range values {
		if kv.key != "include" {
			out = append(out, kv)
			continue
		}
		if depth >= maxIncludeDepth {
			return nil, fmt.Errorf("%s line %d: include nested more than %d deep (a loop?)", path, kv.line, maxIncludeDepth)
		}
		if !filepath.IsAbs(kv.value) {
			return nil, fmt.Errorf("%s line %d: include %q: give an absolute path", path, kv.line, kv.value)
		}
		inc, err := readConfigDepth(kv.value, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, kv.line, err)
		}
		out = append(out, inc...)
	}
	return out, nil
}

func parseConfig(path string, f interface{ Read([]byte) (int, error) }) ([]configValue, error) {
	var out []configValue
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: expected `name = value`", path, n)
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s line %d: bad setting name %q", path, n, k)
		}
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out = append(out, configValue{key: k, value: v, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
