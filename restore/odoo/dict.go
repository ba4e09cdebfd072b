package odoo

import (
	"sort"
	"strings"
)

// dictPrefix is how many leading bytes index the dictionary; remember
// keeps no original shorter.
const dictPrefix = 4

// dictReplacer replaces, scanning left to right, the longest dictionary key
// that starts at each position with its value (what strings.Replacer does
// with keys given longest first). Instead of strings.Replacer's trie (some
// 650 MiB for the originals of 100,000 partners) it keeps, for each key's
// first bytes, the lengths of the keys that start with them: at a position
// whose first bytes start some key, one map lookup per length, longest
// first. Keys sharing a long prefix (every phone of a country, names of one
// family) cost one length each, not one comparison each.
type dictReplacer struct {
	lengths map[string][]int // first dictPrefix bytes -> lengths of the keys, longest first
	repl    map[string]string
}

func newDictReplacer(dict map[string]string) *dictReplacer {
	r := &dictReplacer{lengths: map[string][]int{}, repl: dict}
	seen := map[string]map[int]bool{}
	for k := range dict {
		if len(k) < dictPrefix {
			continue
		}
		p := k[:dictPrefix]
		if seen[p] == nil {
			seen[p] = map[int]bool{}
		}
		if !seen[p][len(k)] {
			seen[p][len(k)] = true
			r.lengths[p] = append(r.lengths[p], len(k))
		}
	}
	for _, ls := range r.lengths {
		sort.Sort(sort.Reverse(sort.IntSlice(ls)))
	}
	return r
}

func (r *dictReplacer) Replace(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i+dictPrefix <= len(s); {
		matched := false
		for _, n := range r.lengths[s[i:i+dictPrefix]] {
			if i+n > len(s) {
				continue
			}
			if v, ok := r.repl[s[i:i+n]]; ok {
				if b.Len() == 0 {
					b.Grow(len(s))
				}
				b.WriteString(s[last:i])
				b.WriteString(v)
				i += n
				last = i
				matched = true
				break
			}
		}
		if !matched {
			i++
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
