package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
)

// Issue 14: someone who can write the bucket (and knows the public
// recipient, which every archiving host holds) but holds no private key
// can make a restore refuse, never make it write outside what the operator
// named, and cannot wedge the service.

// attacker opens a file repository the way someone without the identity
// can: the public recipient and a writer key. In a format-2 repository
// writing needs one: an outsider issues their own (under their own root),
// a compromised archiving host holds the repository's.
func attacker(t *testing.T, r *Repo, writerKeyFile string) *repo.Repository {
	t.Helper()
	st, err := local.New(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := crypto.ParseRecipients(r.Recipient)
	if err != nil {
		t.Fatal(err)
	}
	w, err := crypto.LoadWriterKey(writerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := repo.Open(context.Background(), st, repo.Options{Recipients: recs, Writer: w})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.Close() })
	return rp
}

// forgeTablespaceBackup writes, as att, a backup manifest under a new id
// (the fixture's start plus offset) naming /etc/walvault-pwned and
// /run/systemd/system as tablespace locations, and returns its id.
//
// The forged backup reuses the real one's LSNs, so that its WAL is in the
// repository (an attacker reads them off the names of the backup history
// files in a listing; the test reads the manifest for brevity), and copies
// the real one's chunk objects under its own folder: stored bytes need no
// key to copy (a signed repository refuses such copies, but the manifest
// must be refused before any chunk is read).
func forgeTablespaceBackup(t *testing.T, f *smallRepo, rp *Repo, real *repo.BackupManifest, att *repo.Repository, offset time.Duration) string {
	t.Helper()
	start, _ := time.Parse("20060102T150405Z", f.BackupID)
	forged := *real
	forged.ID = repo.NewBackupID(start.Add(offset))
	forged.Archives = nil
	for _, a := range real.Archives {
		fa := a
		fa.Chunks = nil
		for i, c := range a.Chunks {
			key := repo.BackupChunkKey(forged.ID, a.Name, i)
			data, err := os.ReadFile(filepath.Join(rp.Dir, filepath.FromSlash(c.Key)))
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(rp.Dir, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				t.Fatal(err)
			}
			c.Key = key
			fa.Chunks = append(fa.Chunks, c)
		}
		forged.Archives = append(forged.Archives, fa)
	}
	for i, loc := range []string{"/etc/walvault-pwned", "/run/systemd/system"} {
		name := fmt.Sprintf("%d.tar", 16400+i)
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		unit := []byte("[Service]\nExecStart=/bin/sh -c 'touch /walvault-pwned'\n")
		tw.WriteHeader(&tar.Header{Name: "walvault-pwned.service", Mode: 0o644, Size: int64(len(unit)), Typeflag: tar.TypeReg})
		tw.Write(unit)
		tw.Close()
		key := repo.BackupChunkKey(forged.ID, name, 0)
		info, err := att.Put(context.Background(), key, tb.Bytes(), storage.PutOptions{IfAbsent: true})
		if err != nil {
			t.Fatal(err)
		}
		forged.Archives = append(forged.Archives, repo.Archive{Name: name, TablespaceOID: uint32(16400 + i), TablespacePath: loc, Bytes: int64(tb.Len()),
			Chunks: []repo.Chunk{{Key: key, Size: int64(tb.Len()), StoredSize: info.StoredSize, SHA256: info.SHA256}}})
	}
	if err := att.PutBackupManifest(context.Background(), &forged); err != nil {
		t.Fatal(err)
	}
	return forged.ID
}

// TestHostileManifestTablespaces: a forged backup.json naming
// /etc/walvault-pwned and /run/systemd/system as tablespace locations. A
// restore run as root refuses before writing anything: the manifest of an
// outsider (a writer key of their own root) as untrusted (exit 6); the
// manifest of a compromised archiving host (the repository's writer key)
// by its locations (exit 5), saying how to map them. Nothing is created
// there.
func TestHostileManifestTablespaces(t *testing.T) {
	if os.Geteuid() != 0 || suite.pgUser == nil {
		skipOutsideCI(t, "needs root and a separate PostgreSQL user")
	}
	for _, p := range []string{"/etc/walvault-pwned", "/run/systemd/system/walvault-pwned.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists before the test: remove it", p)
		}
	}
	f := sharedRepo(t)
	h := newHarness(t)
	rp := f.copyRepo(h, "repo")

	real, err := inProcess(t, rp).BackupManifest(context.Background(), f.BackupID)
	if err != nil {
		t.Fatal(err)
	}
	outsiderIdentity := h.Path("outsider-identity.txt")
	h.Keygen(outsiderIdentity)
	outsiderKey := h.WriterKey(outsiderIdentity, h.Path("outsider-writer.key"), "outsider")
	outsider := forgeTablespaceBackup(t, f, rp, real, attacker(t, rp, outsiderKey), time.Second)
	insider := forgeTablespaceBackup(t, f, rp, real, attacker(t, rp, rp.WriterKeyFile), 2*time.Second)
	h.ChownTree(rp.Dir)

	runDirBefore, _ := os.ReadDir("/run/systemd/system")
	asRoot := rp.Walvault(h).AsCurrentUser()
	dir := h.Path("restored")
	restore := func(want int, id string, args ...string) string {
		t.Helper()
		_, stderr, exit := asRoot.Run(append([]string{"restore", "--pgdata", dir, "--backup", id}, args...)...)
		if exit != want {
			t.Fatalf("restore --backup %s %v: exit %d, want %d\n%s", id, args, exit, want, stderr)
		}
		t.Logf("restore --backup %s %v refused, exit %d:\n%s", id, args, exit, tail(stderr, 2))
		return stderr
	}

	// The outsider's manifest is not signed by a writer of this
	// repository's root.
	stderr := restore(6, outsider)
	for _, w := range []string{repo.BackupManifestKey(outsider), "not signed by a trusted writer"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("the refusal of the outsider's manifest does not mention %q:\n%s", w, stderr)
		}
	}

	// The compromised host's manifest is signed: its locations are refused.
	stderr = restore(5, insider)
	for _, w := range []string{"/etc/walvault-pwned", "system directory /etc", "--tablespace-map /etc/walvault-pwned=NEWDIR"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("the refusal does not mention %q:\n%s", w, stderr)
		}
	}
	// Mapping one, the other is refused in turn.
	stderr = restore(5, insider, "--tablespace-map", "/etc/walvault-pwned="+h.Path("ts1"))
	if !strings.Contains(stderr, "/run/systemd/system") {
		t.Errorf("the refusal does not name /run/systemd/system:\n%s", stderr)
	}
	for _, p := range []string{"/etc/walvault-pwned", "/run/systemd/system/walvault-pwned.service", "/walvault-pwned", dir, h.Path("ts1")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after the refused restores (%v)", p, err)
		}
	}
	if after, _ := os.ReadDir("/run/systemd/system"); len(after) != len(runDirBefore) {
		t.Errorf("/run/systemd/system changed: %d entries before, %d after", len(runDirBefore), len(after))
	}
}

// TestHostileLock: an exclusive lock planted with an expiry in the year
// 5138 (and a malformed one) blocks neither backup nor expire: they go
// ahead with a warning naming it, and check shows a WARNING.
func TestHostileLock(t *testing.T) {
	h := newHarness(t)
	rp := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", rp)
	wv.MustRun("backup", "--fast")
	pg.SwitchAndWaitArchived()

	planted := repo.LockPrefix + "exclusive.expire.99999999999.0badc0de-1-00000000"
	malformed := repo.LockPrefix + "exclusive.expire.forever"
	for _, k := range []string{planted, malformed} {
		h.WriteFile(filepath.Join(rp.Dir, filepath.FromSlash(k)), nil, 0o600)
	}
	for _, args := range [][]string{{"backup", "--fast"}, {"expire", "--retain-full", "1", "--confirm"}} {
		_, stderr, exit := wv.Run(args...)
		if exit != 0 {
			t.Fatalf("%v with a planted lock: exit %d\n%s", args, exit, stderr)
		}
		for _, w := range []string{planted, "5138-11-16", malformed, "delete the object"} {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: the warning does not mention %q:\n%s", args, w, stderr)
			}
		}
	}
	if n := len(wv.Info().Backups); n != 1 {
		t.Errorf("%d backups after expire --retain-full 1, want 1", n)
	}
	rep := runCheck(t, wv, 1)
	rep.expect(t, "locks", "WARNING", []string{planted, malformed}, []string{"delete those objects"})
	// Left in place: evidence for the operator.
	for _, k := range []string{planted, malformed} {
		if _, err := os.Stat(filepath.Join(rp.Dir, filepath.FromSlash(k))); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

// TestHostileFilestoreLink: filestore restore run as root, into a
// filestore the odoo account can write, where that account planted
// <db>/<xx> -> a root-owned directory, and <data-dir>/filestore/<db> -> the
// same: nothing is written through either link.
func TestHostileFilestoreLink(t *testing.T) {
	if os.Geteuid() != 0 || suite.pgUser == nil {
		skipOutsideCI(t, "needs root and a separate PostgreSQL user")
	}
	odoo, err := lookupAccount("odoo")
	if err != nil {
		skipOutsideCI(t, "needs an odoo user")
	}
	h := newHarness(t)
	rp := h.NewFileRepo("repo")
	pg, wv := h.StartArchiving("primary", rp)
	odooData := h.Mkdir(h.Path("odoo-data"), 0o755)
	h.Mkdir(filepath.Join(odooData, "filestore"), 0o755)
	site := newOdooSite(t, h, pg, odooData)
	a := site.attach("A", []byte("invoice A"))
	b := site.attach("B", []byte("invoice B"))
	if a[:2] == b[:2] {
		t.Fatal("pick contents in different folders")
	}
	wv.MustRun("filestore", "push", "--data-dir", odooData, "--db", "prod", "--state-dir", h.Mkdir(h.Path("state"), 0o700))

	// Stands for /etc/systemd/system: root's, and not to be written.
	target := h.Path("etc-systemd-system")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	copyDir := filepath.Join(odooData, "filestore", "prod_copy")
	if err := os.Mkdir(copyDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(copyDir, int(odoo.UID), int(odoo.GID)); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(odooData, "filestore"), int(odoo.UID), int(odoo.GID))
	asOdoo := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: odoo.UID, Gid: odoo.GID, Groups: []uint32{}}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v as odoo: %v\n%s", args, err, out)
		}
	}
	link := filepath.Join(copyDir, a[:2])
	asOdoo("ln", "-s", target, link)

	asRoot := rp.Walvault(h).AsCurrentUser()
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/prod?sslmode=disable", pg.Port)
	stdout, _ := asRoot.RunExpect(13, "filestore", "restore", "--db", "prod", "--as", "prod_copy", "--data-dir", odooData, "--pg-url", url)
	if !strings.Contains(stdout, link+" is a symbolic link (to "+target+")") {
		t.Errorf("the report does not name the link:\n%s", stdout)
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Errorf("root wrote through the link into %s: %v", target, entries)
	}
	fi, err := os.Stat(filepath.Join(copyDir, b))
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != odoo.UID {
		t.Errorf("the other file, %s: %v (want it restored, owned by odoo)", b, err)
	}

	// The database's folder itself a link of odoo's: refused outright.
	asOdoo("ln", "-s", target, filepath.Join(odooData, "filestore", "prod_link"))
	_, stderr := asRoot.RunExpect(5, "filestore", "restore", "--db", "prod", "--as", "prod_link", "--data-dir", odooData, "--pg-url", url)
	if !strings.Contains(stderr, filepath.Join(odooData, "filestore", "prod_link")+" is a symbolic link") {
		t.Errorf("the refusal does not name the link:\n%s", stderr)
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Errorf("root wrote through the link into %s: %v", target, entries)
	}
}
