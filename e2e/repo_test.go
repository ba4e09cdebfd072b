package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/repo"
)

// Repo is a walvault repository and the configuration that reaches it.
type Repo struct {
	URL          string
	Dir          string // file repositories: the directory; "" for S3
	IdentityFile string
	Recipient    string
	// WriterKeyFile signs what is written (format 2).
	WriterKeyFile string
	// Env configures walvault through the environment: repository, keys and
	// (for S3) endpoint and credentials.
	Env []string
}

// NewFileRepo makes an identity and describes a file repository in the test
// directory. Nothing is created in the repository yet.
func (h *Harness) NewFileRepo(name string) *Repo {
	h.t.Helper()
	r := &Repo{Dir: h.Path(name), IdentityFile: h.Path(name + "-identity.txt")}
	r.URL = "file://" + r.Dir
	r.Recipient = h.Keygen(r.IdentityFile)
	r.WriterKeyFile = h.WriterKey(r.IdentityFile, h.Path(name+"-writer.key"), "e2e-"+name)
	r.Env = []string{
		"WALVAULT_REPO=" + r.URL,
		"WALVAULT_AGE_RECIPIENTS=" + r.Recipient,
		"WALVAULT_AGE_IDENTITY_FILE=" + r.IdentityFile,
		"WALVAULT_WRITER_KEY_FILE=" + r.WriterKeyFile,
	}
	return r
}

// WriteConfig writes the repository's settings as a walvault config file
// (`name = value`, names as the flags) and returns its path.
func (h *Harness) WriteConfig(r *Repo, name string, extra ...string) string {
	h.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# walvault configuration for %s\n", name)
	for _, kv := range r.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "WALVAULT_"):
			fmt.Fprintf(&b, "%s = %s\n", strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "WALVAULT_")), "_", "-"), v)
		}
	}
	for _, line := range extra {
		b.WriteString(line + "\n")
	}
	path := h.Path(name)
	h.WriteFile(path, []byte(b.String()), 0o600)
	return path
}

// Walvault returns a runner configured for the repository by environment.
func (r *Repo) Walvault(h *Harness, more ...string) *Walvault {
	return h.Walvault(append(append([]string(nil), r.Env...), more...)...)
}

// Options are the repo.Options a host holding all of the repository's keys
// opens it with in process: the identities and the roots they trust (the
// identity file's walvault-root-key line, as restore loads them), the
// recipients, and the writer key, which signs what is written (format 2).
func (r *Repo) Options(t testing.TB) repo.Options {
	t.Helper()
	ids, err := crypto.LoadIdentities(r.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := crypto.LoadTrustedRoots(r.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := crypto.ParseRecipients(r.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	opts := repo.Options{Identities: ids, Recipients: recs, TrustedRoots: roots}
	if r.WriterKeyFile != "" {
		if opts.Writer, err = crypto.LoadWriterKey(r.WriterKeyFile); err != nil {
			t.Fatal(err)
		}
	}
	return opts
}
