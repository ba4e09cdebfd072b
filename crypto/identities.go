package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// LoadIdentities reads the identities in the file at path: either an age
// identity file (AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… lines, blank
// lines and '#' comments ignored; what age-keygen writes) or an unencrypted
// OpenSSH private key (ed25519 or rsa). Errors name the file and, for age
// identity files, the line, but never include key material.
func LoadIdentities(path string) ([]age.Identity, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("load identities: %w", err)
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		id, err := parseSSHIdentity(data)
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", path, err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := parseAgeIdentities(data)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

func parseSSHIdentity(pem []byte) (age.Identity, error) {
	id, err := agessh.ParseIdentity(pem)
	if err == nil {
		return id, nil
	}
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, errors.New("passphrase-protected SSH keys are not supported; use an age identity")
	}
	// x/crypto/ssh and agessh describe the structure ("no key found",
	// "unsupported key type"), not the key bytes; keep their text out anyway
	// when in doubt and say what is accepted.
	msg := err.Error()
	if len(msg) > 100 || strings.Contains(strings.ToUpper(msg), "AGE-SECRET-KEY") {
		msg = "unreadable key"
	}
	return nil, fmt.Errorf("not a usable SSH private key (%s): want an unencrypted OpenSSH ed25519 or rsa key", msg)
}

func parseAgeIdentities(data []byte) ([]age.Identity, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8: not an age identity file")
	}
	var ids []age.Identity
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n := i + 1
		// age.Parse*Identity errors may quote parts of the key: report our
		// own message instead.
		switch {
		case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
			id, err := age.ParseHybridIdentity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: malformed post-quantum age secret key", n)
			}
			ids = append(ids, id)
		case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
			id, err := age.ParseX25519Identity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: malformed age secret key", n)
			}
			ids = append(ids, id)
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			return nil, fmt.Errorf("line %d: age plugin identities are not supported", n)
		case strings.HasPrefix(line, "age1"), strings.HasPrefix(line, "ssh-"):
			return nil, fmt.Errorf("line %d: this is a public key (recipient), not an identity", n)
		default:
			return nil, fmt.Errorf("line %d: not an age identity (want an identity file as age-keygen writes it, or an OpenSSH private key)", n)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("no identity found")
	}
	return ids, nil
}

// IdentityFileWarnings reports conditions worth a warning about the identity
// file at path that do not stop it from being used: today, permissions that
// let group or others access it. It returns nil when there is nothing to say
// or the file cannot be inspected (LoadIdentities reports that).
func IdentityFileWarnings(path string) []string {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	var warnings []string
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("identity file %s has mode %04o: group or others can access it; chmod 600 it", path, uint32(perm)))
	}
	return warnings
}
