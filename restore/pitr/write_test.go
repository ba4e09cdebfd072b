package pitr

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/walvault/walvault/repo"
)

// TestExtractLargeFiles: files larger than a write and than the writeback
// step come out byte for byte, whatever sizes the archive reader hands
// out (one byte at a time here: every chunk boundary case at once).
func TestExtractLargeFiles(t *testing.T) {
	big := make([]byte, writebackEvery+3*writeSize+17)
	for i := range big {
		big[i] = byte(i*7 + i>>13)
	}
	files := map[string][]byte{
		"base/1/16384":   big,
		"base/1/16385":   big[:writeSize],
		"base/1/16386":   big[:writeSize+1],
		"base/1/16387":   nil,
		"global/1262":    big[:8192],
		"backup_label":   []byte("START WAL LOCATION: 0/2000028\n"),
		"base/1/PG_x_fs": big[:1],
	}
	var entries []entry
	for _, name := range []string{"backup_label", "base/1/16384", "base/1/16385", "base/1/16386", "base/1/16387", "global/1262", "base/1/PG_x_fs"} {
		entries = append(entries, entry{name: name, body: string(files[name])})
	}
	data := buildTar(t, entries)
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return bytes.NewReader(data) }},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }},
		{"half", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			x := newExtractor(root, dir)
			if err := x.extract(tc.r()); err != nil {
				t.Fatal(err)
			}
			if x.files != len(files) {
				t.Errorf("files = %d, want %d", x.files, len(files))
			}
			var total int64
			for name, want := range files {
				total += int64(len(want))
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes differ from the %d in the archive", name, len(got), len(want))
				}
			}
			if x.bytes != total {
				t.Errorf("bytes = %d, want %d", x.bytes, total)
			}
		})
	}
}

// TestExtractTruncatedFile: an archive cut inside a file's data is an
// integrity failure, never a shorter file taken as complete.
func TestExtractTruncatedFile(t *testing.T) {
	body := bytes.Repeat([]byte("relation page "), 20000)
	data := buildTar(t, []entry{{name: "backup_label", body: "x"}, {name: "base/1/16384", body: string(body)}})
	for _, cut := range []int{len(data) - 1024 - 512 - 100, len(data) - 1024 - len(body) + writeSize, 512 + 512 + 100} {
		t.Run("", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := extractInto(t, dir, data[:cut])
			if err == nil {
				t.Fatalf("archive cut at %d of %d: no error", cut, len(data))
			}
			if !errors.Is(tarError("base.tar", err), repo.ErrIntegrity) {
				t.Errorf("archive cut at %d: %v, want an integrity error", cut, err)
			}
		})
	}
}

func TestChmodNeeded(t *testing.T) {
	for _, tc := range []struct {
		perm  uint32
		umask int
		want  bool
	}{
		{0o600, 0o022, false},
		{0o640, 0o022, false},
		{0o660, 0o027, true},
		{0o600, 0o077, false},
		{0o644, 0o077, true},
		{0o600, 0o277, true},
		{0o600, -1, true}, // unknown umask
	} {
		if got := chmodNeeded(tc.perm, tc.umask); got != tc.want {
			t.Errorf("chmodNeeded(%o, %o) = %v, want %v", tc.perm, tc.umask, got, tc.want)
		}
	}
	if processUmask() < 0 {
		t.Error("the umask could not be read from /proc/self/status")
	}
}
