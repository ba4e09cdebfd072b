package repo_test

import (
	"crypto/sha256"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
)

func TestWALAltKeyRoundTrip(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	for _, name := range []string{pgwal.SegmentName(2, 77, waltest.SegSize), "00000002.history", pgwal.SegmentName(1, 7, waltest.SegSize) + ".partial"} {
		f, err := pgwal.ParseFileName(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, long := range []bool{false, true} {
			key := repo.WALAltKey(f, sum, long)
			g, h, err := repo.ParseWALAltKey(key)
			if err != nil || g != f || repo.WALKey(f)+"~"+h != key {
				t.Fatalf("ParseWALAltKey(%q) = %+v %q %v", key, g, h, err)
			}
		}
	}
	for _, bad := range []string{
		"wal/00000001/000000010000000000000005", "wal/00000001/000000010000000000000005~",
		"wal/00000001/000000010000000000000005~0123", "wal/00000001/000000010000000000000005~0123456789ABCDEF",
		"wal/00000002/000000010000000000000005~0123456789abcdef", "wal/00000001/x~0123456789abcdef",
	} {
		if _, _, err := repo.ParseWALAltKey(bad); err == nil {
			t.Errorf("ParseWALAltKey(%q) accepted", bad)
		}
	}
}

func FuzzParseWALAltKey(f *testing.F) {
	for _, s := range []string{"wal/00000001/000000010000000000000005~0123456789abcdef", "wal/00000001/00000001.history~" + string(make([]byte, 64)),
		"wal/x~y", "~", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		fn, h, err := repo.ParseWALAltKey(key)
		if err != nil {
			return
		}
		if repo.WALKey(fn)+"~"+h != key {
			t.Fatalf("ParseWALAltKey(%q) = %+v %q: does not rebuild the key", key, fn, h)
		}
	})
}
