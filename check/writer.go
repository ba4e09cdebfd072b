package check

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/walvault/walvault/repo"
)

// judgeWriter: can this host write the repository so that its readers
// accept what it writes? A format-2 repository takes only objects signed
// by a writer key that a root its readers trust certified; this host
// needs such a key (and one whose root also signed walvault.json, or it
// cannot check what other writers wrote). Nothing to show for a format-1
// repository on a host without format-2 keys.
func judgeWriter(f *repositoryFacts, o *Options) (Result, bool) {
	r := Result{Name: "writer"}
	if f.Err != nil {
		return r, false
	}
	c := f.Config
	if !c.Signed() {
		switch {
		case f.unsignedErr != nil:
			r.Status = Critical
			r.Message = f.unsignedErr.Error()
			r.Fix = "if this repository really was made by a walvault before format 2, set allow-unsigned-repository = true in the config (docs/SECURITY.md: what format 1 does not guarantee); " +
				"if you did not make it so, someone rewrote " + repo.ConfigKey + ": write nothing to it and find out who can write " + f.Where
			return r, true
		case o.WriterKeyFile == "":
			return r, false
		}
		r.Message = fmt.Sprintf("format %d (unsigned): writer-key-file %s is not used", c.Format, o.WriterKeyFile)
		return r, true
	}
	issueFix := "on the machine that keeps the identity file: walvault writer issue --age-identity-file IDENTITY-FILE --name " + hostName() +
		" /etc/walvault/writer.key; install that file here owned by the user that writes (postgres; odoo for filestore push), mode 0600, and set writer-key-file = /etc/walvault/writer.key in the config (docs/SECURITY.md, writer keys)"
	switch {
	case o.WriterKeyFile == "":
		r.Status = Critical
		r.Message = fmt.Sprintf("this host has no writer key (writer-key-file): %s is a format-2 repository, whose objects are signed, so wal-push, stream, backup and filestore push refuse to write to it; repository root %s",
			f.Where, shortRoot(c.Root))
		r.Fix = issueFix
		return r, true
	case f.writerErr != nil:
		r.Status = Critical
		r.Message = "the writer key cannot be used, so nothing can be written to this format-2 repository: " + f.writerErr.Error()
		r.Fix = "check writer-key-file names the file walvault writer issue made and that this user can read it; if it is lost or damaged, issue a new one: " + issueFix
		return r, true
	}
	w := f.writer
	trusted := f.trustedRoots()
	r.Message = fmt.Sprintf("writer %q (%s, issued %s) certified by root %s; %s signed under root %s; roots trusted here: %s; the writer key's recipients: %s",
		w.Cert.Name, w.Cert.ID, w.Cert.Issued.Format(time.DateOnly), shortRoot(w.Cert.Root), repo.ConfigKey, shortRoot(c.Root), trusted, shortRecipients(w.Recipients))
	switch {
	case f.configErr != nil:
		r.Status = Critical
		r.Message = fmt.Sprintf("writer %q (%s) is certified by root %s, but %s cannot be verified with the roots this host trusts (%s): %v",
			w.Cert.Name, w.Cert.ID, shortRoot(w.Cert.Root), repo.ConfigKey, trusted, f.configErr)
		if errors.Is(f.configErr, repo.ErrIntegrity) {
			r.Message += "; readers that trust root " + shortRoot(c.Root) + " refuse what this host writes"
		}
		r.Fix = "if the root is being rotated (docs/SECURITY.md, root rotation), finish it now: walvault rekey re-signs every object and " + repo.ConfigKey +
			" under the new root; otherwise this writer key belongs to another repository: " + issueFix
	case w.Cert.Root != c.Root:
		r.Status = Warning
		r.Message += "; the writer's root is not the one " + repo.ConfigKey + " was signed under: a root rotation is under way, and readers that trust only root " + shortRoot(c.Root) + " refuse what this host writes"
		r.Fix = "finish the rotation (docs/SECURITY.md, root rotation): walvault rekey with a writer key of the new root, then give every reader the new identity"
	case f.rootsErr != nil:
		r.Status = Warning
		r.Message += "; the identity file's trusted roots cannot be read: " + f.rootsErr.Error()
		r.Fix = "correct the walvault-root-key or walvault-trusted-root lines of age-identity-file (walvault keygen writes them)"
	}
	if r.Status == OK {
		if fi, err := os.Stat(o.WriterKeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			r.Status = Warning
			r.Message += fmt.Sprintf("; but %s has mode %04o: group or others can read the key that signs for this host", o.WriterKeyFile, uint32(fi.Mode().Perm()))
			r.Fix = "chmod 600 " + o.WriterKeyFile + " (owned by the user that writes)"
		}
	}
	return r, true
}

// trustedRoots lists, short, the roots this host trusts: the identity
// file's and the writer key's.
func (f *repositoryFacts) trustedRoots() string {
	seen := map[string]bool{}
	var out []string
	add := func(s, from string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, shortRoot(s)+" ("+from+")")
		}
	}
	for _, p := range f.roots {
		add(p.String(), "identity file")
	}
	if f.writer != nil {
		add(f.writer.Cert.Root, "writer key")
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// shortRoot is a root's public key cut to a fingerprint for messages:
// "wvroot1" and eight characters.
func shortRoot(s string) string {
	if len(s) > len("wvroot1")+8 {
		return s[:len("wvroot1")+8] + "…"
	}
	if s == "" {
		return "(none)"
	}
	return s
}

// shortRecipients lists recipients cut for messages.
func shortRecipients(rs []string) string {
	if len(rs) == 0 {
		return "none"
	}
	out := make([]string, len(rs))
	for i, s := range rs {
		if len(s) > 20 {
			s = s[:12] + "…" + s[len(s)-4:]
		}
		out[i] = s
	}
	return strings.Join(out, ", ")
}

func hostName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "HOST"
}
