package crypto

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriterKeyRoundTrip(t *testing.T) {
	root, err := GenerateRootKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	w, err := root.Issue("db1", now, []string{"age1xyz"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "writer.key")
	if err := WriteWriterKey(path, w); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if err := WriteWriterKey(path, w); err == nil {
		t.Error("overwrote an existing key file")
	}
	got, err := LoadWriterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != w.ID() || got.ContentKey != root.ContentKey() || strings.Join(got.Recipients, ",") != "age1xyz" || got.Cert.Name != "db1" {
		t.Fatalf("round trip: %+v", got.Cert)
	}
	msg := []byte("hello")
	sig := got.Sign(msg)
	if !w.Cert.VerifySignature(msg, sig) || w.Cert.VerifySignature([]byte("hellp"), sig) {
		t.Error("signature check")
	}
	if err := got.Cert.Verify([]RootPublicKey{root.Public()}); err != nil {
		t.Error(err)
	}
	other, _ := GenerateRootKey()
	if err := got.Cert.Verify([]RootPublicKey{other.Public()}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("verified by another root: %v", err)
	}
	// A certificate whose name was changed no longer verifies.
	c := got.Cert
	c.Name = "db2"
	if err := c.Verify([]RootPublicKey{root.Public()}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("altered certificate: %v", err)
	}
	// A key file whose key does not match its certificate is refused.
	w2, _ := root.Issue("db2", now, nil)
	mixed := bytes.Replace(w.Marshal(), []byte(writerCertPrefix+b64.EncodeToString(w.Cert.Marshal())), []byte(writerCertPrefix+b64.EncodeToString(w2.Cert.Marshal())), 1)
	if _, err := ParseWriterKey(mixed); err == nil {
		t.Error("accepted a key with another writer's certificate")
	}
	if _, err := ParseWriterKey([]byte("garbage\n")); err == nil || strings.Contains(err.Error(), "garbage") {
		t.Errorf("garbage: %v", err)
	}
}

func TestRootKeyInIdentityFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.txt")
	_, root, err := Keygen(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots, err := LoadRoots(path)
	if err != nil || len(roots) != 1 || !roots[0].Public().Equal(root) {
		t.Fatalf("LoadRoots = %v, %v", roots, err)
	}
	data, _ := os.ReadFile(path)
	stripped, err := WithoutRootSecrets(data)
	if err != nil || bytes.Contains(stripped, []byte(rootSecretPrefix)) || !bytes.Contains(stripped, []byte(trustedRootComment+root.String())) {
		t.Fatalf("WithoutRootSecrets:\n%s\n%v", stripped, err)
	}
	p2 := filepath.Join(t.TempDir(), "copy.txt")
	os.WriteFile(p2, stripped, 0o600)
	if rs, err := LoadTrustedRoots(p2); err != nil || len(rs) != 1 || !rs[0].Equal(root) {
		t.Fatalf("trusted roots of the copy: %v, %v", rs, err)
	}
	if ks, err := LoadRoots(p2); err != nil || len(ks) != 0 {
		t.Fatalf("the copy still holds a root secret: %v, %v", ks, err)
	}
	// age still reads the identity of the copy.
	if ids, err := LoadIdentities(p2); err != nil || len(ids) != 1 {
		t.Fatalf("LoadIdentities(copy) = %v, %v", ids, err)
	}
}

func FuzzParseWriterKey(f *testing.F) {
	root, _ := GenerateRootKey()
	w, _ := root.Issue("db1", time.Unix(0, 0), []string{"age1x"})
	f.Add(w.Marshal())
	f.Add([]byte("# x\nWALVAULT-WRITER-KEY-1AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseWriterKey(data)
		if err == nil {
			// Whatever parses is self-consistent and round-trips.
			again, err := ParseWriterKey(k.Marshal())
			if err != nil || again.ID() != k.ID() {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

func FuzzParseCert(f *testing.F) {
	root, _ := GenerateRootKey()
	w, _ := root.Issue("db1", time.Unix(0, 0), nil)
	f.Add(w.Cert.Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCert(data)
		if err == nil {
			_ = c.Verify([]RootPublicKey{root.Public()})
		}
	})
}
