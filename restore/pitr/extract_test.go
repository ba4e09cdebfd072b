package pitr

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walvault/walvault/repo"
)

// entry is a tar entry for tests: a directory when the name ends in "/",
// a symbolic link when link is set, else a file.
type entry struct {
	name, body, link string
	mode             int64
	typ              byte
}

func buildTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case e.typ != 0:
			h.Typeflag = e.typ
			h.Linkname = e.link
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		case len(e.name) > 0 && e.name[len(e.name)-1] == '/':
			h.Typeflag = tar.TypeDir
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o600
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o700
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func extractInto(t *testing.T, dir string, data []byte) (*extractor, error) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	x := newExtractor(root, dir)
	return x, x.extract(bytes.NewReader(data))
}

func TestExtractHostile(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"dot-dot", []entry{{name: "../evil", body: "x"}}},
		{"dot-dot inside", []entry{{name: "base/../../evil", body: "x"}}},
		{"absolute", []entry{{name: "/tmp/evil", body: "x"}}},
		{"absolute link", []entry{{name: "link", link: "/etc"}}},
		{"link climbing out", []entry{{name: "link", link: "../outside"}}},
		{"link climbing out from a subdirectory", []entry{{name: "a/link", link: "../../outside"}}},
		{"link with inner dot-dot", []entry{{name: "y", link: "."}, {name: "l", link: "y/.."}}},
		{"write through a link", []entry{{name: "l", link: "."}, {name: "l/x", body: "x"}}},
		{"write through a link into a subdirectory", []entry{{name: "d/", mode: 0o700}, {name: "l", link: "d"}, {name: "l/x", body: "x"}}},
		{"link inside a link", []entry{{name: "y", link: "."}, {name: "y/z", link: "../outside"}}},
		{"replace a link", []entry{{name: "l", link: "d"}, {name: "l", body: "x"}}},
		{"hard link", []entry{{name: "f", body: "x"}, {name: "g", link: "f", typ: tar.TypeLink}}},
		{"device", []entry{{name: "dev", typ: tar.TypeChar}}},
		{"fifo", []entry{{name: "fifo", typ: tar.TypeFifo}}},
		{"duplicate file", []entry{{name: "f", body: "x"}, {name: "f", body: "y"}}},
		{"file then directory", []entry{{name: "f", body: "x"}, {name: "f/", mode: 0o700}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "data")
			_, err := extractInto(t, dir, buildTar(t, tt.entries))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(tarError("base.tar", err), repo.ErrIntegrity) {
				t.Errorf("error %v is not an integrity error", err)
			}
			names, _ := readDirNames(parent, -1)
			if len(names) != 1 || names[0] != "data" {
				t.Errorf("something was written outside: %v", names)
			}
		})
	}
}

func TestExtractModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	x, err := extractInto(t, dir, buildTar(t, []entry{
		{name: "./", mode: 0o700},
		{name: "backup_label", body: "START WAL LOCATION: 0/2000028\n"},
		{name: "PG_VERSION", body: "15\n", mode: 0o600},
		{name: "global/pg_control", body: "control"}, // parent without its own entry
		{name: "base/", mode: 0o750},
		{name: "base/1/", mode: 0o700},
		{name: "base/1/1259", body: "heap", mode: 0o640},
		{name: "suid", body: "x", mode: 0o4755},
		{name: "sgid-dir/", mode: 0o2755},
		{name: "readonly/", mode: 0o500},
		{name: "readonly/f", body: "inside a read-only directory"},
		{name: "base/1/link", link: "../../global/pg_control"},
		{name: "pg_wal/", mode: 0o700},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if x.files != 6 {
		t.Errorf("files = %d, want 6", x.files)
	}
	for name, want := range map[string]os.FileMode{
		"PG_VERSION":        0o600,
		"global":            os.ModeDir | 0o700,
		"global/pg_control": 0o600,
		"base":              os.ModeDir | 0o750,
		"base/1/1259":       0o640,
		"suid":              0o755,
		"sgid-dir":          os.ModeDir | 0o755,
		"readonly":          os.ModeDir | 0o500,
		"base/1/link":       os.ModeSymlink | 0o777,
	} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, "PG_VERSION"))
	if !fi.ModTime().Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("mtime %v not kept", fi.ModTime())
	}
	data, err := os.ReadFile(filepath.Join(dir, "base/1/link"))
	if err != nil || string(data) != "control" {
		t.Errorf("link reads %q, %v", data, err)
	}
	os.Chmod(filepath.Join(dir, "readonly"), 0o700) // let t.TempDir clean up as non-root
}

func TestCleanEntryName(t *testing.T) {
	for in, want := range map[string]string{
		"./":             ".",
		"":               ".",
		"./base/1/":      "base/1",
		"base//1":        "base/1",
		"././PG_VERSION": "PG_VERSION",
		"a/./b":          "a/b",
	} {
		got, err := cleanEntryName(in)
		if err != nil || got != want {
			t.Errorf("cleanEntryName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../x", "a/..", "/x", "a\x00b"} {
		if got, err := cleanEntryName(in); err == nil {
			t.Errorf("cleanEntryName(%q) = %q, no error", in, got)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(buildTar(f, []entry{{name: "a/b", body: "x"}, {name: "l", link: "a"}}))
	f.Add(buildTar(f, []entry{{name: "../x", body: "x"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "data")
		_, _ = extractInto(t, dir, data)
		names, _ := readDirNames(parent, -1)
		if len(names) != 1 {
			t.Fatalf("something was written outside: %v", names)
		}
		// Every link left behind stays inside.
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				rel, _ := filepath.Rel(dir, filepath.Join(filepath.Dir(p), target))
				if !filepath.IsLocal(rel) && rel != "." {
					t.Fatalf("link %s -> %s leaves the directory", p, target)
				}
			}
			return nil
		})
		os.Chmod(dir, 0o700)
	})
}
