package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkManifest judges a plain-format backup, or a data directory restored
// from one, against its backup_manifest as `pg_verifybackup -n` does (no
// WAL parsing): the manifest is well formed and its SHA-256 holds; every
// file it lists is there, a regular file of its size and checksum; every
// regular file is listed, but for what pg_verifybackup ignores and ignore
// (paths relative to dir, like -i); in a version 2 manifest global/pg_control
// has a good CRC and the manifest's system identifier. Symbolic links
// (pg_tblspc's) are followed. It reads versions 1 (PostgreSQL 13 to 16)
// and 2 (17 on); pg_verifybackup 15, the one this machine has, reads only 1.
// The error lists every problem, as pg_verifybackup prints each.
func checkManifest(dir string, ignore ...string) error {
	c := &manifestChecker{ignore: []string{"backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal", "standby.signal"}}
	for _, i := range ignore {
		c.ignore = append(c.ignore, path.Clean(i))
	}
	if err := c.run(dir); err != nil {
		c.fail("%v", err) // fatal: pg_verifybackup stops there too
	}
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("backup manifest check of %s: %d problem(s):\n  %s", dir, len(c.problems), strings.Join(c.problems, "\n  "))
}

type manifestFile struct {
	size         uint64
	algorithm    string // upper case; "NONE" when absent
	checksum     []byte
	matched, bad bool
}

type manifestChecker struct {
	ignore   []string
	problems []string
	version  int
	sysid    uint64
	files    map[string]*manifestFile
}

// The manifest as JSON. Numbers may be JSON strings as well, as
// PostgreSQL's parser takes any scalar.
type manifestJSON struct {
	Version          json.Number `json:"PostgreSQL-Backup-Manifest-Version"`
	SystemIdentifier json.Number `json:"System-Identifier"`
	Files            []struct {
		Path        *string `json:"Path"`
		EncodedPath *string `json:"Encoded-Path"`
		Size        json.Number
		Modified    string  `json:"Last-Modified"`
		Algorithm   *string `json:"Checksum-Algorithm"`
		Checksum    string
	}
	WALRanges []struct {
		Timeline json.Number
		Start    string `json:"Start-LSN"`
		End      string `json:"End-LSN"`
	} `json:"WAL-Ranges"`
	Checksum string `json:"Manifest-Checksum"`
}

func (c *manifestChecker) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// ignored: rel is an ignored path or lies under one.
func (c *manifestChecker) ignored(rel string) bool {
	return slices.ContainsFunc(c.ignore, func(i string) bool { return rel == i || strings.HasPrefix(rel, i+"/") })
}

func (c *manifestChecker) run(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		return err
	}
	if err := c.parse(b); err != nil {
		return fmt.Errorf("could not parse backup manifest: %w", err)
	}
	if err := c.visit("", dir); err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(c.files))
	for _, p := range names {
		if m := c.files[p]; !m.matched && !c.ignored(p) {
			c.fail("%q is present in the manifest but not on disk", p)
		}
	}
	for _, p := range names {
		if m := c.files[p]; m.matched && !m.bad && m.algorithm != "NONE" && !c.ignored(p) {
			c.checkFile(p, filepath.Join(dir, filepath.FromSlash(p)), m)
		}
	}
	return nil
}

// parse reads the manifest as PostgreSQL's parser does: the version field
// first, the checksum field last, no field it does not know, then the
// SHA-256 of all lines but the last, which holds it.
func (c *manifestChecker) parse(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	var m manifestJSON
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if t, err := dec.Token(); t != json.Delim('{') {
		return fmt.Errorf("not a JSON object: %v %v", t, err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		keys = append(keys, t.(string))
		field := map[string]any{"PostgreSQL-Backup-Manifest-Version": &m.Version, "System-Identifier": &m.SystemIdentifier,
			"Files": &m.Files, "WAL-Ranges": &m.WALRanges, "Manifest-Checksum": &m.Checksum}[t.(string)]
		if field == nil {
			return fmt.Errorf("unrecognized top-level field %q", t)
		}
		if err := dec.Decode(field); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	if t, err := dec.Token(); t != json.Delim('}') {
		return fmt.Errorf("manifest ended unexpectedly: %v", err)
	}
	if t, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%v after the manifest object (%v)", t, err)
	}
	switch v, _ := strconv.Atoi(m.Version.String()); {
	case len(keys) == 0 || keys[0] != "PostgreSQL-Backup-Manifest-Version" || slices.Index(keys[1:], keys[0]) >= 0:
		return errors.New("expected version indicator first, and once")
	case keys[len(keys)-1] != "Manifest-Checksum" || slices.Index(keys, "Manifest-Checksum") != len(keys)-1:
		return errors.New("Manifest-Checksum is not the last field")
	case v != 1 && v != 2:
		return fmt.Errorf("unexpected manifest version %q", m.Version)
	case v == 1 && slices.Contains(keys, "System-Identifier"): // unknown to pg_verifybackup 15
		return errors.New("System-Identifier in a version 1 manifest")
	default:
		c.version = v
	}
	var err error
	if c.version == 2 {
		if c.sysid, err = strconv.ParseUint(m.SystemIdentifier.String(), 10, 64); err != nil {
			return fmt.Errorf("manifest system identifier %q: %v", m.SystemIdentifier, err)
		}
	}
	c.files = map[string]*manifestFile{}
	for _, f := range m.Files {
		if (f.Path == nil) == (f.EncodedPath == nil) {
			return fmt.Errorf("a file of size %s has %s", f.Size, map[bool]string{true: "no path name", false: "both path name and encoded path name"}[f.Path == nil])
		}
		p := f.Path
		if f.EncodedPath != nil {
			raw, err := hex.DecodeString(*f.EncodedPath)
			if err != nil {
				return fmt.Errorf("could not decode file name %q", *f.EncodedPath)
			}
			p = new(string(raw))
		}
		e := &manifestFile{algorithm: "NONE"}
		if e.size, err = strconv.ParseUint(f.Size.String(), 10, 64); err != nil {
			return fmt.Errorf("file %q: size %q is not an integer", *p, f.Size)
		}
		if f.Algorithm != nil {
			e.algorithm = strings.ToUpper(*f.Algorithm)
		} else if f.Checksum != "" {
			return fmt.Errorf("file %q: checksum without algorithm", *p)
		}
		if _, ok := manifestHashes[e.algorithm]; !ok && e.algorithm != "NONE" {
			return fmt.Errorf("unrecognized checksum algorithm: %q", *f.Algorithm)
		}
		if e.checksum, err = hex.DecodeString(f.Checksum); err != nil {
			return fmt.Errorf("invalid checksum for file %q: %q", *p, f.Checksum)
		}
		if c.files[*p] != nil {
			return fmt.Errorf("duplicate path name in backup manifest: %q", *p)
		}
		c.files[*p] = e
	}
	for _, r := range m.WALRanges {
		var tli, hi, lo uint32
		if _, err := fmt.Sscanf(r.Timeline.String()+" "+r.Start+" "+r.End, "%d %X/%X %X/%X", &tli, &hi, &lo, &hi, &lo); err != nil {
			return fmt.Errorf("bad WAL range %+v: %v", r, err)
		}
	}
	if bytes.Count(b, []byte("\n")) < 2 || b[len(b)-1] != '\n' {
		return errors.New("expected at least 2 lines, the last newline-terminated")
	}
	want, err := hex.DecodeString(m.Checksum)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("invalid manifest checksum: %q", m.Checksum)
	}
	if got := sha256.Sum256(b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1]); !bytes.Equal(got[:], want) {
		return errors.New("manifest checksum mismatch")
	}
	return nil
}

// visit judges one path below the directory ("" is the directory itself).
// An error it returns is fatal.
func (c *manifestChecker) visit(rel, full string) error {
	fi, err := os.Stat(full)
	if err != nil {
		c.fail("could not stat file or directory %q: %v", rel, err)
		c.ignore = append(c.ignore, rel)
		return nil
	}
	if fi.IsDir() {
		entries, err := os.ReadDir(full)
		if err != nil {
			c.fail("could not open directory %q: %v", full, err)
			c.ignore = append(c.ignore, rel)
		}
		for _, e := range entries {
			if r := path.Join(rel, e.Name()); !c.ignored(r) {
				if err := c.visit(r, filepath.Join(full, e.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	m := c.files[rel]
	switch {
	case !fi.Mode().IsRegular():
		c.fail("%q is not a regular file or directory", rel)
	case m == nil:
		c.fail("%q is present on disk but not in the manifest", rel)
	default:
		m.matched = true
		if uint64(fi.Size()) != m.size {
			c.fail("%q has size %d on disk but size %d in the manifest", rel, fi.Size(), m.size)
			m.bad = true
		}
		if c.version != 1 && rel == "global/pg_control" {
			return checkControlFile(full, c.sysid)
		}
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cLE is CRC-32C as manifests write it: the final value's four bytes
// in the machine's order (pg_checksum_final copies it out), little-endian.
type crc32cLE struct{ hash.Hash32 }

func (h crc32cLE) Sum(b []byte) []byte { return binary.LittleEndian.AppendUint32(b, h.Sum32()) }

var manifestHashes = map[string]func() hash.Hash{
	"CRC32C": func() hash.Hash { return crc32cLE{crc32.New(castagnoli)} },
	"SHA224": sha256.New224, "SHA256": sha256.New, "SHA384": sha512.New384, "SHA512": sha512.New,
}

func (c *manifestChecker) checkFile(rel, full string, m *manifestFile) {
	f, err := os.Open(full)
	if err != nil {
		c.fail("could not open file %q: %v", rel, err)
		return
	}
	defer f.Close()
	h := manifestHashes[m.algorithm]()
	n, err := io.Copy(h, f)
	switch sum := h.Sum(nil); {
	case err != nil:
		c.fail("could not read file %q: %v", rel, err)
	case uint64(n) != m.size:
		c.fail("file %q should contain %d bytes, but read %d", rel, m.size, n)
	case len(sum) != len(m.checksum):
		c.fail("file %q has checksum of length %d, but expected %d", rel, len(m.checksum), len(sum))
	case !bytes.Equal(sum, m.checksum):
		c.fail("checksum mismatch for file %q", rel)
	}
}

// checkControlFile: pg_control's CRC holds (the CRC-32C of the bytes before
// it, at an offset that depends on the major: the first that matches is
// taken) and its system identifier (bytes 0-7) is the manifest's.
func checkControlFile(full string, sysid uint64) error {
	b, err := os.ReadFile(full)
	if err != nil {
		return err
	}
	crcOK := false
	for off := 16; off+4 <= len(b) && off <= 1024 && !crcOK; off += 4 {
		crcOK = crc32.Checksum(b[:off], castagnoli) == binary.LittleEndian.Uint32(b[off:])
	}
	if !crcOK {
		return fmt.Errorf("%s: CRC is incorrect", full)
	}
	if got := binary.LittleEndian.Uint64(b); got != sysid {
		return fmt.Errorf("%s: manifest system identifier is %d, but control file has %d", full, sysid, got)
	}
	return nil
}

// TestManifestCheckAgainstPGVerifyBackup: on base backups pg_basebackup 15
// took (CRC-32C and SHA-256 checksums, a table in a tablespace) and on
// damaged copies, checkManifest and pg_verifybackup 15 -n agree and say the
// same. Version 2 manifests, which pg_verifybackup 15 cannot read, are the
// good backup's rewritten, with its system identifier or another.
func TestManifestCheckAgainstPGVerifyBackup(t *testing.T) {
	requireSuite(t)
	if _, err := os.Stat(filepath.Join(debianPGBin, "pg_verifybackup")); err != nil {
		skipOutsideCI(t, "no pg_verifybackup 15: "+err.Error())
	}
	h := newHarness(t)
	h.ServerBin = debianPGBin
	pg := h.InitCluster("src")
	pg.Start()
	ts := h.Mkdir(h.Path("ts"), 0o700)
	pg.Exec("CREATE TABLESPACE ts LOCATION '" + ts + "'")
	pg.Exec("CREATE TABLE plain AS SELECT g FROM generate_series(1, 10000) g")
	pg.Exec("CREATE TABLE in_ts TABLESPACE ts AS SELECT g FROM generate_series(1, 10000) g")
	rel, tsRel := pg.QueryString("SELECT pg_relation_filepath('plain')"), pg.QueryString("SELECT pg_relation_filepath('in_ts')")

	// clone copies a backup and its tablespaces, which its links then name.
	clone := func(t *testing.T, src, dst string) string {
		err := exec.Command("cp", "-a", src, dst).Run()
		links, _ := os.ReadDir(filepath.Join(dst, "pg_tblspc"))
		for _, l := range links {
			link, copied := filepath.Join(dst, "pg_tblspc", l.Name()), dst+".ts"+l.Name()
			to, lerr := os.Readlink(link)
			err = errors.Join(err, lerr, exec.Command("cp", "-a", to, copied).Run(), os.Remove(link), os.Symlink(copied, link))
		}
		if err != nil {
			t.Fatalf("copy %s: %v", src, err)
		}
		return dst
	}
	edit := func(rel string, change func([]byte) []byte) func(string) error {
		return func(dir string) error {
			b, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, rel), change(b), 0o600)
		}
	}
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }
	write := func(rels ...string) func(string) error {
		return func(dir string) (err error) {
			for _, r := range rels {
				err = errors.Join(err, os.WriteFile(filepath.Join(dir, r), []byte("extra\n"), 0o644))
			}
			return err
		}
	}
	cases := []struct {
		name   string
		ignore []string
		damage func(dir string) error
		want   string // in both outputs; "" accepts
	}{
		{"good", nil, write(), ""},
		{"missing", nil, func(d string) error { return os.Remove(filepath.Join(d, rel)) }, "present in the manifest but not on disk"},
		{"changed", nil, edit(rel, flip), "checksum mismatch for file"},
		{"changed-in-tablespace", nil, edit(tsRel, flip), "checksum mismatch for file"},
		{"truncated", nil, func(d string) error { return os.Truncate(filepath.Join(d, rel), 8192) }, "on disk but size"},
		{"extra", nil, write("global/extra"), "present on disk but not in the manifest"},
		{"manifest", nil, edit("backup_manifest", func(b []byte) []byte {
			b[bytes.Index(b, []byte(`"Last-Modified": "`))+len(`"Last-Modified": "`)]++ // the year's first digit
			return b
		}), "manifest checksum mismatch"},
		{"ignored", []string{"tablespace_map"}, write("tablespace_map", "pg_wal/extra", "standby.signal", "recovery.signal", "postgresql.auto.conf"), ""},
		{"not-ignored", nil, write("tablespace_map"), "present on disk but not in the manifest"},
	}
	for _, algo := range []string{"CRC32C", "SHA256"} {
		good := h.Path("good-" + algo)
		h.runPGIn(debianPGBin, 5*time.Minute, pg.LibpqEnv(), "pg_basebackup", "-D", good, "-Fp", "-c", "fast",
			"--manifest-checksums="+algo, "-T", ts+"="+good+".ts")
		for _, tc := range cases {
			t.Run(algo+"/"+tc.name, func(t *testing.T) {
				dir := clone(t, good, h.Path(algo+"-"+tc.name))
				if err := tc.damage(dir); err != nil {
					t.Fatal(err)
				}
				args := []string{"-n"}
				for _, i := range tc.ignore {
					args = append(args, "-i", i)
				}
				out, err := h.tryPGIn(debianPGBin, 5*time.Minute, nil, "pg_verifybackup", append(args, dir)...)
				goErr := checkManifest(dir, tc.ignore...)
				t.Logf("pg_verifybackup: %v\n%s\ncheckManifest: %v", err, out, goErr)
				if (err == nil) != (tc.want == "") || (goErr == nil) != (tc.want == "") {
					t.Fatalf("want %q: pg_verifybackup says %v, checkManifest %v", tc.want, err, goErr)
				}
				if tc.want != "" && (!strings.Contains(out, tc.want) || !strings.Contains(goErr.Error(), tc.want)) {
					t.Errorf("both should say %q", tc.want)
				}
			})
		}
	}

	control, err := os.ReadFile(h.Path("good-CRC32C", "global", "pg_control"))
	if err != nil {
		t.Fatal(err)
	}
	sysid := binary.LittleEndian.Uint64(control)
	for name, id := range map[string]uint64{"v2-good": sysid, "v2-other-system": sysid + 1} {
		t.Run(name, func(t *testing.T) {
			dir := clone(t, h.Path("good-CRC32C"), h.Path(name))
			err := edit("backup_manifest", func(b []byte) []byte {
				b = bytes.Replace(b, []byte("\"PostgreSQL-Backup-Manifest-Version\": 1,\n"),
					fmt.Appendf(nil, "\"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": %d,\n", id), 1)
				b = b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1]
				return fmt.Appendf(b, "\"Manifest-Checksum\": \"%x\"}\n", sha256.Sum256(b))
			})(dir)
			if _, vErr := h.tryPGIn(debianPGBin, time.Minute, nil, "pg_verifybackup", "-n", dir); err != nil || vErr == nil {
				t.Fatalf("rewriting the manifest: %v; pg_verifybackup 15 should refuse version 2, says %v", err, vErr)
			}
			err = checkManifest(dir)
			if want := "manifest system identifier is"; (err == nil) != (id == sysid) || err != nil && !strings.Contains(err.Error(), want) {
				t.Fatalf("checkManifest: %v, want nil for the system's identifier, else %q", err, want)
			}
		})
	}
}
