package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// noSecrets fails the test if err's message could carry secret key text.
func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(strings.ToUpper(err.Error()), "AGE-SECRET-KEY") {
		t.Fatalf("error leaks secret key text: %q", err)
	}
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func roundTrip(t *testing.T, recs []age.Recipient, ids []age.Identity) {
	t.Helper()
	plain := []byte("WAL segment bytes \x00\x01\x02")
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(&buf, ids...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("decrypted %q", got)
	}
}

func encryptTo(t *testing.T, recs []age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recs...)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("x"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sshEd25519(t *testing.T) (pub string, privPEM []byte) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sshKeyPair(t, pk, sk)
}

func sshRSA(t *testing.T) (pub string, privPEM []byte) {
	t.Helper()
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return sshKeyPair(t, &sk.PublicKey, sk)
}

func sshKeyPair(t *testing.T, pk, sk any) (string, []byte) {
	t.Helper()
	spk, err := ssh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "walvault test")
	if err != nil {
		t.Fatal(err)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " walvault@test"
	return pub, pem.EncodeToMemory(block)
}

func TestX25519RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.txt")
	rec, _, err := Keygen(path, time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseRecipients(rec)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, recs, ids)
}

func TestPostQuantumRoundTrip(t *testing.T) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseRecipients(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := recs[0].(*age.HybridRecipient); !ok {
		t.Fatalf("got %T", recs[0])
	}
	path := writeFile(t, "pq.txt", "# pq\n"+id.String()+"\n", 0o600)
	ids, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, recs, ids)

	x, _ := age.GenerateX25519Identity()
	_, err = ParseRecipients(id.Recipient().String() + "," + x.Recipient().String())
	if err == nil || !strings.Contains(err.Error(), "mixed") {
		t.Fatalf("mixing pq and classic: %v", err)
	}
}

func TestSSHRoundTrip(t *testing.T) {
	for name, gen := range map[string]func(*testing.T) (string, []byte){
		"ssh-ed25519": sshEd25519,
		"ssh-rsa":     sshRSA,
	} {
		t.Run(name, func(t *testing.T) {
			pub, priv := gen(t)
			if !strings.HasPrefix(pub, name+" ") {
				t.Fatalf("unexpected public key %q", pub)
			}
			recs, err := ParseRecipients(pub)
			if err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, "id_"+name, string(priv), 0o600)
			ids, err := LoadIdentities(path)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, recs, ids)
		})
	}
}

func TestMultipleRecipients(t *testing.T) {
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	edPub, edPriv := sshEd25519(t)
	in := "# ops team\n" + a.Recipient().String() + " , " + b.Recipient().String() + ",\n\n" + edPub + "\n  # trailing comment\n"
	recs, err := ParseRecipients(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d recipients", len(recs))
	}
	roundTrip(t, recs, []age.Identity{b})
	edIDs, err := LoadIdentities(writeFile(t, "ed", string(edPriv), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, recs, edIDs)
}

func TestReadRecipientsFile(t *testing.T) {
	a, _ := age.GenerateX25519Identity()
	pub, _ := sshEd25519(t)
	p := writeFile(t, "recipients.txt", "# comment\n"+a.Recipient().String()+"\n\n"+pub+"\n", 0o644)
	recs, err := ReadRecipientsFile(p)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d recipients, %v", len(recs), err)
	}
	bad := writeFile(t, "bad.txt", a.Recipient().String()+"\nnonsense\n", 0o644)
	_, err = ReadRecipientsFile(bad)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("want error naming file and line 2, got %v", err)
	}
	if _, err := ReadRecipientsFile(writeFile(t, "empty", "# nothing\n", 0o644)); err == nil {
		t.Fatal("want error for zero recipients")
	}
	if _, err := ReadRecipientsFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseRecipientsErrors(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	pq, _ := age.GenerateHybridIdentity()
	_, edPriv := sshEd25519(t)
	tests := map[string]struct {
		in       string
		contains string
	}{
		"empty":          {"", "no recipients"},
		"only comments":  {"# a\n, ,\n#b", "no recipients"},
		"garbage":        {"hello-world-this-is-a-long-entry", `"hello-world-this-is-…"`},
		"bad age1":       {"age1notreallyakeyatall", "malformed X25519"},
		"bad age1pq1":    {"age1pq1zzzz", "malformed post-quantum"},
		"bad ssh":        {"ssh-ed25519 AAAAnotbase64!!", "malformed SSH"},
		"ecdsa":          {"ecdsa-sha2-nistp256 AAAA", "unsupported SSH key type"},
		"x25519 secret":  {x.String(), "secret key"},
		"pq secret":      {pq.String(), "secret key"},
		"ssh private":    {string(edPriv), "secret key"},
		"second entry":   {x.Recipient().String() + ",bogus", "entry 2"},
		"accepted forms": {"bogus", "ssh-ed25519"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRecipients(tt.in)
			if err == nil {
				t.Fatal("want error")
			}
			noSecrets(t, err)
			if !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("error %q does not contain %q", err, tt.contains)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error too long: %q", err)
			}
		})
	}
	// Nothing of a secret key, not even its checksum tail, may appear.
	_, err := ParseRecipients(x.String())
	if s := x.String(); strings.Contains(err.Error(), s[len(s)-10:]) || strings.Contains(err.Error(), s[16:26]) {
		t.Fatalf("error leaks key: %q", err)
	}
}

func TestLoadIdentitiesErrors(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	secret := x.String()
	corrupt := secret[:len(secret)-1] + "q"
	if corrupt == secret {
		corrupt = secret[:len(secret)-1] + "p"
	}
	_, edPriv := sshEd25519(t)
	edSK := mustEd25519(t)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(edSK, "c", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := string(pem.EncodeToMemory(block))
	tests := map[string]struct {
		content  string
		contains string
	}{
		"empty":            {"", "no identity found"},
		"only comments":    {"# created: x\n# public key: age1x\n", "no identity found"},
		"corrupt key":      {"# c\n" + corrupt + "\n", "line 2: malformed age secret key"},
		"truncated key":    {secret[:30] + "\n", "line 1: malformed"},
		"recipient":        {x.Recipient().String() + "\n", "public key"},
		"garbage":          {"hello " + secret + "\n", "line 1: not an age identity"},
		"plugin":           {"AGE-PLUGIN-YUBIKEY-1XYZ\n", "plugin"},
		"ssh passphrase":   {encrypted, "passphrase-protected SSH keys are not supported; use an age identity"},
		"broken pem":       {"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA" + secret + "\n-----END OPENSSH PRIVATE KEY-----\n", "SSH private key"},
		"binary":           {"\xff\xfe" + secret, "UTF-8"},
		"truncated ssh":    {string(edPriv[:len(edPriv)/2]), "SSH private key"},
		"secret then junk": {secret + "\njunk\n", "line 2"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "id", tt.content, 0o600)
			_, err := LoadIdentities(p)
			if err == nil {
				t.Fatal("want error")
			}
			noSecrets(t, err)
			if strings.Contains(err.Error(), secret[20:40]) {
				t.Fatalf("error leaks key material: %q", err)
			}
			if !strings.Contains(err.Error(), tt.contains) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q should contain %q and the path", err, tt.contains)
			}
		})
	}
	if _, err := LoadIdentities(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func mustEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func TestWrongKey(t *testing.T) {
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	ct := encryptTo(t, []age.Recipient{a.Recipient()})
	_, err := age.Decrypt(bytes.NewReader(ct), b)
	if err == nil {
		t.Fatal("decrypt with wrong key succeeded")
	}
	if !IsWrongKey(err) {
		t.Fatalf("IsWrongKey(%v) = false", err)
	}
	wrapped := WrapDecryptError(err)
	if !errors.Is(wrapped, ErrNoIdentityMatch) || !IsWrongKey(wrapped) {
		t.Fatalf("wrapped %v does not match ErrNoIdentityMatch", wrapped)
	}
	var nm *age.NoIdentityMatchError
	if !errors.As(wrapped, &nm) {
		t.Fatal("wrapped error lost the age error")
	}
	if WrapDecryptError(wrapped) != wrapped {
		t.Fatal("double wrap")
	}

	// SSH identity against an X25519 file: also the wrong key.
	_, edPriv := sshEd25519(t)
	edIDs, err := LoadIdentities(writeFile(t, "ed", string(edPriv), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	_, err = age.Decrypt(bytes.NewReader(ct), edIDs...)
	if !IsWrongKey(err) {
		t.Fatalf("ssh identity on x25519 file: IsWrongKey(%v) = false", err)
	}

	// Damage is not a wrong key.
	bad := append([]byte{}, ct...)
	bad[len(bad)-1] ^= 1
	r, err := age.Decrypt(bytes.NewReader(bad), a)
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if err == nil || IsWrongKey(err) || IsWrongKey(WrapDecryptError(err)) {
		t.Fatalf("tampered payload: err=%v, IsWrongKey=%v", err, IsWrongKey(err))
	}
	_, err = age.Decrypt(bytes.NewReader([]byte("not an age file")), a)
	if err == nil || IsWrongKey(err) {
		t.Fatalf("garbage: err=%v", err)
	}
	if IsWrongKey(nil) || WrapDecryptError(nil) != nil {
		t.Fatal("nil handling")
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "walvault.key")
	now := time.Date(2026, 11, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600))
	rec, root, err := Keygen(path, now)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	if w := IdentityFileWarnings(path); len(w) != 0 {
		t.Fatalf("warnings for a 0600 file: %v", w)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(string(data), "\n")
	if len(lines) != 6 || lines[5] != "" ||
		lines[0] != "# created: 2026-11-01T12:30:00+01:00" ||
		lines[1] != "# public key: "+rec ||
		lines[2] != "# walvault root: "+root.String() ||
		!strings.HasPrefix(lines[3], "# walvault-root-key: WALVAULT-ROOT-KEY-1") ||
		!strings.HasPrefix(lines[4], "AGE-SECRET-KEY-1") {
		t.Fatalf("unexpected file contents:\n%s", data)
	}
	roots, err := LoadTrustedRoots(path)
	if err != nil || len(roots) != 1 || !roots[0].Equal(root) {
		t.Fatalf("LoadTrustedRoots = %v, %v", roots, err)
	}
	if !strings.HasPrefix(rec, "age1") {
		t.Fatalf("recipient %q", rec)
	}
	// age itself agrees with the file.
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil || ids[0].(*age.X25519Identity).Recipient().String() != rec {
		t.Fatalf("age.ParseIdentities: %v", err)
	}
	recs, err := ParseRecipients(rec)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, recs, ours)

	// Refuses to overwrite, and leaves the existing key untouched.
	_, _, err = Keygen(path, now)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: %v", err)
	}
	noSecrets(t, err)
	again, _ := os.ReadFile(path)
	if !bytes.Equal(again, data) {
		t.Fatal("existing key file changed")
	}

	// A missing directory is an error, and nothing is left behind.
	if _, _, err := Keygen(filepath.Join(dir, "nope", "k"), now); err == nil {
		t.Fatal("want error for missing directory")
	}
}

func TestKeygenIgnoresUmask(t *testing.T) {
	// Even a file created in a world-writable directory stays 0600.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "k")
	if _, _, err := Keygen(p, time.Unix(0, 0).UTC()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
}

func TestIdentityFileWarnings(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	p := writeFile(t, "id", x.String()+"\n", 0o600)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	w := IdentityFileWarnings(p)
	if len(w) != 1 || !strings.Contains(w[0], "0644") || !strings.Contains(w[0], p) {
		t.Fatalf("warnings = %v", w)
	}
	if _, err := LoadIdentities(p); err != nil {
		t.Fatalf("a readable key still loads: %v", err)
	}
	if w := IdentityFileWarnings(filepath.Join(t.TempDir(), "missing")); w != nil {
		t.Fatalf("missing file: %v", w)
	}
}

func FuzzParseRecipients(f *testing.F) {
	x, _ := age.GenerateX25519Identity()
	f.Add(x.Recipient().String())
	f.Add(x.String())
	f.Add("age1pq1" + strings.Repeat("q", 40))
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4 c")
	f.Add("# c\n,,age1x,\nssh-rsa AAAA")
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, s string) {
		recs, err := ParseRecipients(s)
		if err != nil {
			if recs != nil {
				t.Fatal("recipients returned with an error")
			}
			noSecrets(t, err)
			return
		}
		if len(recs) == 0 {
			t.Fatal("no recipients and no error")
		}
	})
}
