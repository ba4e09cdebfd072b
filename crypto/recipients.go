package crypto

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/agessh"
)

// acceptedRecipients is appended to recipient errors so the user learns what
// would have worked.
const acceptedRecipients = "accepted: age1… (X25519), age1pq1… (post-quantum), ssh-ed25519 AAAA…, ssh-rsa AAAA…"

// maxKeyFileSize bounds how much of a key or recipients file is read; age
// uses the same limit.
const maxKeyFileSize = 16 << 20

// ParseRecipients parses age recipients from s, separated by commas or
// newlines. Blank entries and entries starting with '#' are ignored. Accepted
// forms are X25519 "age1…", post-quantum "age1pq1…" and SSH public keys
// "ssh-ed25519 AAAA… [comment]" / "ssh-rsa AAAA… [comment]" (the comment must
// not contain a comma). Post-quantum and classic recipients cannot be mixed,
// as age refuses to encrypt to such a set. At least one recipient is
// required.
func ParseRecipients(s string) ([]age.Recipient, error) {
	var entries []entry
	for i, line := range strings.Split(s, "\n") {
		for _, e := range strings.Split(line, ",") {
			entries = append(entries, entry{line: i + 1, text: e})
		}
	}
	recs, err := parseRecipientEntries(entries, "")
	if err != nil {
		return nil, fmt.Errorf("parse recipients: %w", err)
	}
	return recs, nil
}

// ReadRecipientsFile reads a recipients file like age -R does: one recipient
// per line, blank lines and lines starting with '#' ignored. It accepts the
// same forms as ParseRecipients.
func ReadRecipientsFile(path string) ([]age.Recipient, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("read recipients file: %w", err)
	}
	var entries []entry
	for i, line := range strings.Split(string(data), "\n") {
		entries = append(entries, entry{line: i + 1, text: line})
	}
	recs, err := parseRecipientEntries(entries, "line ")
	if err != nil {
		return nil, fmt.Errorf("recipients file %s: %w", path, err)
	}
	return recs, nil
}

type entry struct {
	line int
	text string
}

func parseRecipientEntries(entries []entry, where string) ([]age.Recipient, error) {
	var recs []age.Recipient
	var pq, classic bool
	n := 0
	for _, e := range entries {
		text := strings.TrimSpace(e.text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		n++
		pos := fmt.Sprintf("entry %d", n)
		if where != "" {
			pos = fmt.Sprintf("%s%d", where, e.line)
		}
		r, isPQ, err := parseRecipient(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pos, err)
		}
		if isPQ {
			pq = true
		} else {
			classic = true
		}
		if pq && classic {
			return nil, fmt.Errorf("%s: post-quantum (age1pq1…) and classic recipients cannot be mixed: age would refuse to encrypt", pos)
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil, errors.New("no recipients found (" + acceptedRecipients + ")")
	}
	return recs, nil
}

// parseRecipient parses one trimmed entry. Its errors describe the entry by
// a short prefix only, and not at all if it could be secret.
func parseRecipient(s string) (age.Recipient, bool, error) {
	if !utf8.ValidString(s) {
		return nil, false, errors.New("not valid UTF-8; " + acceptedRecipients)
	}
	if looksSecret(s) {
		return nil, false, errors.New("this looks like a secret key, not a recipient: give its public key (age-keygen -y, or the .pub file); " + acceptedRecipients)
	}
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		r, err := age.ParseHybridRecipient(s)
		if err != nil {
			return nil, false, fmt.Errorf("malformed post-quantum recipient %q", short(s))
		}
		return r, true, nil
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, false, fmt.Errorf("malformed X25519 recipient %q", short(s))
		}
		return r, false, nil
	case strings.HasPrefix(s, "ssh-ed25519 ") || strings.HasPrefix(s, "ssh-rsa "):
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return nil, false, fmt.Errorf("malformed SSH recipient %q", short(s))
		}
		return r, false, nil
	case strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-") || strings.HasPrefix(s, "sk-"):
		typ, _, _ := strings.Cut(s, " ")
		return nil, false, fmt.Errorf("unsupported SSH key type %q; %s", short(typ), acceptedRecipients)
	}
	return nil, false, fmt.Errorf("unknown recipient %q; %s", short(s), acceptedRecipients)
}

// looksSecret reports whether s might be (part of) private key material, in
// which case no part of it may appear in an error message.
func looksSecret(s string) bool {
	u := strings.ToUpper(s)
	return strings.Contains(u, "AGE-SECRET-KEY") || strings.Contains(u, "AGE-PLUGIN-") ||
		strings.Contains(u, "PRIVATE KEY") || strings.HasPrefix(u, "-----BEGIN")
}

// short truncates a public entry for an error message.
func short(s string) string {
	const n = 20
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// readLimited reads a whole key file, refusing files over maxKeyFileSize.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key file", path, maxKeyFileSize)
	}
	return data, nil
}
