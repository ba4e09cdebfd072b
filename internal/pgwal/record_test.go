package pgwal

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestMainData(t *testing.T) {
	le := binary.LittleEndian
	u16 := func(v uint16) []byte { return le.AppendUint16(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	rel := make([]byte, relFileNodeSize)
	blk := []byte{7, 0, 0, 0}
	main := []byte("main data")
	for _, tc := range []struct {
		name  string
		magic uint16
		body  []byte
		want  []byte // nil: an error
	}{
		{"main only", 0xD110, cat([]byte{255, 9}, main), main},
		{"long main", 0xD110, cat([]byte{254, 9, 0, 0, 0}, main), main},
		{"no data", 0xD110, nil, []byte{}},
		{"origin and top-level xid", 0xD110, cat([]byte{253, 1, 0, 252, 1, 2, 3, 4, 255, 9}, main), main},
		{"block with data", 0xD110, cat([]byte{0, 0x20}, u16(3), rel, blk, []byte{255, 9}, []byte("abc"), main), main},
		{"two blocks, same relation", 0xD110, cat([]byte{0, 0x20}, u16(2), rel, blk, []byte{1, 0x20 | 0x80}, u16(1), blk, []byte{255, 9}, []byte("ab"), []byte("c"), main), main},
		// A full-page image with a hole: compressed (pglz, PG 15 flags)
		// carries the hole length.
		{"image, hole, compressed (15)", 0xD110, cat([]byte{0, 0x10}, u16(0), u16(5), u16(100), []byte{0x01 | 0x04}, u16(4000), rel, blk, []byte{255, 9}, []byte("12345"), main), main},
		{"image, hole, not compressed (15)", 0xD110, cat([]byte{0, 0x10}, u16(0), u16(5), u16(100), []byte{0x01 | 0x02}, rel, blk, []byte{255, 9}, []byte("12345"), main), main},
		// In PG 14, 0x02 is BKPIMAGE_IS_COMPRESSED.
		{"image, hole, compressed (14)", 0xD10D, cat([]byte{0, 0x10}, u16(0), u16(5), u16(100), []byte{0x01 | 0x02}, u16(4000), rel, blk, []byte{255, 9}, []byte("12345"), main), main},
		{"image, hole, not compressed (14)", 0xD10D, cat([]byte{0, 0x10}, u16(0), u16(5), u16(100), []byte{0x01 | 0x04}, rel, blk, []byte{255, 9}, []byte("12345"), main), main},
		{"lengths do not add up", 0xD110, cat([]byte{255, 10}, main), nil},
		{"bad block id", 0xD110, []byte{100, 0}, nil},
		{"header cut", 0xD110, []byte{0, 0x10, 0}, nil},
		{"long header cut", 0xD110, []byte{254, 1}, nil},
	} {
		got, err := mainData(append(make([]byte, recordHeaderSize), tc.body...), tc.magic)
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("%s: no error, main data %q", tc.name, got)
		case tc.want != nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && !bytes.Equal(got, tc.want):
			t.Errorf("%s: main data %q, want %q", tc.name, got, tc.want)
		}
	}
}
