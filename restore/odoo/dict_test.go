package odoo

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// TestDictReplacer: the same result as strings.Replacer given the keys
// longest first, on random texts over a small alphabet (many overlaps).
func TestDictReplacer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte("ab c"[rng.IntN(4)])
		}
		return b.String()
	}
	for round := 0; round < 200; round++ {
		dict := map[string]string{}
		for range 1 + rng.IntN(20) {
			dict[word(4+rng.IntN(6))] = word(rng.IntN(8))
		}
		keys := make([]string, 0, len(dict))
		for k := range dict {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if len(keys[i]) != len(keys[j]) {
				return len(keys[i]) > len(keys[j])
			}
			return keys[i] < keys[j]
		})
		var pairs []string
		for _, k := range keys {
			pairs = append(pairs, k, dict[k])
		}
		want := strings.NewReplacer(pairs...)
		got := newDictReplacer(dict)
		for range 20 {
			s := word(rng.IntN(60))
			if g, w := got.Replace(s), want.Replace(s); g != w {
				t.Fatalf("dict %v, text %q: got %q, want %q", dict, s, g, w)
			}
		}
	}
	r := newDictReplacer(map[string]string{"Zoë Brontë": "Alex Vane", "Brontë": "X"})
	if got := r.Replace("Dear Zoë Brontë, and Brontë."); got != "Dear Alex Vane, and X." {
		t.Errorf("UTF-8: %q", got)
	}
}
