package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/walvault/walvault"

type pkg struct {
	ImportPath string
	Imports    []string
	GoFiles    []string
	Dir        string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestLayering: data flows one way. storage knows nothing of walvault;
// the format package (repo) knows storage and crypto only; the reading side
// (restore) never imports the writing side (archive) or vice versa; check
// (walvault check) sits above repo and archive/replconn, below only cmd.
func TestLayering(t *testing.T) {
	rules := []struct {
		from      string
		forbidden []string
	}{
		{module + "/storage", []string{module + "/repo", module + "/archive", module + "/restore", module + "/crypto", module + "/cmd"}},
		{module + "/crypto", []string{module + "/storage", module + "/repo", module + "/archive", module + "/restore"}},
		{module + "/repo", []string{module + "/archive", module + "/restore", module + "/cmd"}},
		{module + "/restore", []string{module + "/archive", module + "/cmd"}},
		{module + "/archive", []string{module + "/restore", module + "/cmd"}},
		// check reads both sides (a server, a repository) and changes
		// neither; nothing but the CLI builds on it.
		{module + "/check", []string{module + "/restore", module + "/cmd"}},
		{module + "/archive", []string{module + "/check"}},
		{module + "/restore", []string{module + "/check"}},
		{module + "/repo", []string{module + "/check"}},
		{module + "/storage", []string{module + "/check"}},
	}
	for _, p := range listPackages(t) {
		for _, r := range rules {
			if p.ImportPath != r.from && !strings.HasPrefix(p.ImportPath, r.from+"/") {
				continue
			}
			for _, imp := range p.Imports {
				for _, f := range r.forbidden {
					if imp == f || strings.HasPrefix(imp, f+"/") {
						t.Errorf("%s imports %s: %s must not depend on %s", p.ImportPath, imp, r.from, f)
					}
				}
			}
		}
	}
}
