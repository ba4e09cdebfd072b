package repo

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeRun: a run decodes to the references encoded, mapped to the
// list's pack table; a run that names a pack the table lacks, holds
// another number of references, has bytes after its end, another magic
// or version, is refused.
func TestDecodeRun(t *testing.T) {
	packs := []string{PackKey("20261207T050000Z", 0), PackKey("20261207T050000Z", 1), PackKey("20261207T060000Z", 0)}
	var refs []BlockRef
	for i := range 40 {
		br := BlockRef{Pack: uint32(2 - i/20), Offset: int64(i/16) * 5000, Length: 5000, Index: uint8(i % 16)}
		br.ID[0], br.ID[1] = byte(i), 7
		refs = append(refs, br)
	}
	run := encodeRun(nil, refs, func(i uint32) string { return packs[i] })
	// The list's table, in another order.
	global := map[string]uint32{packs[2]: 0, packs[1]: 1, packs[0]: 2}
	decode := func(data []byte, want int, g map[string]uint32) ([]BlockRef, error) {
		var out []BlockRef
		err := decodeRun(data, want, g, "base/1/2", func(br BlockRef) error { out = append(out, br); return nil })
		return out, err
	}
	got, err := decode(run, len(refs), global)
	if err != nil {
		t.Fatal(err)
	}
	for i, br := range got {
		want := refs[i]
		want.Pack = global[packs[refs[i].Pack]]
		if br != want {
			t.Fatalf("reference %d: %+v, want %+v", i, br, want)
		}
	}
	short := map[string]uint32{packs[2]: 0}
	for name, tc := range map[string]struct {
		data []byte
		want int
		g    map[string]uint32
		msg  string
	}{
		"pack not in the table": {run, len(refs), short, "table lacks"},
		"fewer references":      {run, len(refs) + 1, global, "where 41 belong"},
		"bytes after its end":   {append(append([]byte(nil), run...), 0), len(refs), global, "after a run"},
		"magic":                 {append([]byte("WVRX"), run[4:]...), len(refs), global, "bad magic"},
		"truncated":             {run[:len(run)-3], len(refs), global, "truncated"},
	} {
		if _, err := decode(tc.data, tc.want, tc.g); !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", name, err)
		}
	}
	v := append([]byte(nil), run...)
	v[4] = 9
	if _, err := decode(v, len(refs), global); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("version 9: %v", err)
	}
}

// FuzzDecodeRun: decodeRun never panics and never hands out a reference
// to a pack outside the table.
func FuzzDecodeRun(f *testing.F) {
	packs := []string{PackKey("20261207T050000Z", 0), PackKey("20261207T050000Z", 1)}
	refs := []BlockRef{{Pack: 0, Length: 10}, {Pack: 0, Length: 10, Index: 1}, {Pack: 1, Offset: 30, Length: 9}}
	f.Add(encodeRun(nil, refs, func(i uint32) string { return packs[i] }), 3)
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		if want < 0 || want > RunBlocks {
			return
		}
		g := map[string]uint32{packs[0]: 0, packs[1]: 1}
		decodeRun(data, want, g, "f", func(br BlockRef) error {
			if br.Pack > 1 {
				t.Fatalf("reference to pack %d", br.Pack)
			}
			return nil
		})
	})
}
