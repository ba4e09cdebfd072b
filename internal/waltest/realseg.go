package waltest

import (
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/walvault/walvault/internal/pgwal"
)

// RealSegment returns a real PostgreSQL 15 WAL segment (16 MiB, from
// internal/pgwal/testdata) and its long page header, for benchmarks that
// push, fetch or check what a server writes.
func RealSegment(tb testing.TB) ([]byte, pgwal.LongPageHeader) {
	tb.Helper()
	_, here, _, _ := runtime.Caller(0)
	gz, err := os.Open(filepath.Join(filepath.Dir(here), "..", "pgwal", "testdata", "000000010000000000000006.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		tb.Fatal(err)
	}
	seg, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := pgwal.ParseLongPageHeader(seg)
	if err != nil {
		tb.Fatal(err)
	}
	return seg, h
}

// Renamed copies orig (a segment whose long page header is h) into dst as
// segment segno of the same timeline: every page whose address was the
// original's gets the new one.
func Renamed(dst, orig []byte, h pgwal.LongPageHeader, segno uint64) []byte {
	dst = append(dst[:0], orig...)
	size := int64(h.SegmentSize)
	for off := int64(0); off < size; off += int64(h.BlockSize) {
		if pgwal.LSN(binary.LittleEndian.Uint64(dst[off+8:])) == h.PageAddr+pgwal.LSN(off) {
			binary.LittleEndian.PutUint64(dst[off+8:], uint64(pgwal.SegmentStart(segno, size))+uint64(off))
		}
	}
	return dst
}
