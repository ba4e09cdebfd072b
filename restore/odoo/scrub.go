package odoo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A scrub rewrites free text (subjects, record names, file names, mail
// headers, templates) that quotes values other columns held. It must
// replace a person's name, address or number wherever it is quoted, and
// must never touch a business reference: INV/2025/04000 stays as it is
// even though 4000 was a customer's postcode. So a scrub replaces only:
//
//   - email addresses (any, wherever they are);
//   - phone numbers whose digits are those of a phone the run faked, with
//     at least minPhoneDigits digits, standing alone (not glued to letters,
//     digits, or the / _ \ of references and file names);
//   - values the run faked that are specific enough to name someone (see
//     remember), as whole words: a match starts and ends at word
//     boundaries, never inside a longer word or number;
//   - a short name (one word, or words too short to be specific) only
//     where it is the whole text, a whole item of a comma- or
//     semicolon-separated list, or the display name of an address
//     ("Name" <addr>), as in complete_name and record_name.
//
// Postcodes, cities, house numbers, dates, and any one common word are
// never replaced on their own. docs/ANONYMIZE.md says the same for users.
//
// Words are runs of letters and digits (any script), compared
// case-insensitively; HTML character references count as the character
// they stand for (O&#39;Brien is the words "o" and "brien"). Between the
// words of a match any separator is accepted: "Jens Hansen" matches
// "JENS HANSEN", "Jens&nbsp;Hansen" and "jens_hansen.pdf".

// minPhoneDigits is the fewest digits a phone number needs to be replaced
// in free text: shorter numbers are too likely to be something else.
const minPhoneDigits = 8

// maxPhoneDigits bounds the digits of one phone match (E.164 numbers have
// at most 15, plus an international prefix).
const maxPhoneDigits = 20

// minCodeChars is the fewest letters and digits an identifier (VAT, IBAN,
// identity or registry number) needs to be replaced in free text.
const minCodeChars = 8

// scrubber holds what the fakes of one run replaced, in the forms free
// text is searched for, and rewrites text. One goroutine only (it reuses
// buffers).
type scrubber struct {
	f *faker
	// words: a specific original, as its normalised words (lower case,
	// joined by one space), -> its fake.
	words map[string]string
	// lens: the first normalised word of the keys of words -> how many
	// words those keys have, most first: at each word of a text, one
	// lookup per length.
	lens map[string][]int
	// alone: short names (normalised) -> fake, replaced only where they
	// stand alone.
	alone map[string]string
	// phones: the digits of the phones faked, and their national forms.
	phones map[string]struct{}

	toks  []wordSpan
	norm  []byte
	digit []byte
	found []match
}

func newScrubber(f *faker) *scrubber {
	return &scrubber{f: f, words: map[string]string{}, lens: map[string][]int{}, alone: map[string]string{}, phones: map[string]struct{}{}}
}

// wordSpan is a word of a text: bytes start:end of the text, and
// norm[ns:ne] its normalised form.
type wordSpan struct{ start, end, ns, ne int }

// match is a replacement of words a:b of a text.
type match struct {
	a, b int
	fake string
}

// remember records an original value of a fake kind and its fake, in the
// forms a scrub looks for. Which kinds and values count is the policy of
// this file's comment: names, streets and identifiers when specific
// enough, phones by their digits; never cities, postcodes, dates, tokens.
// The first fake recorded for a form wins.
func (s *scrubber) remember(kind, old, nv string) {
	switch kind {
	case "name", "company":
		toks, norm := tokenize(old, nil, nil)
		if len(toks) == 0 {
			return
		}
		if specificWords(toks, norm) {
			s.addWords(string(norm), toks[0].ne, len(toks), nv)
		} else if utf8.RuneCount(norm) >= 2 && hasLetter(norm) {
			if _, ok := s.alone[string(norm)]; !ok {
				s.alone[string(norm)] = nv
			}
		}
	case "street":
		toks, norm := tokenize(old, nil, nil)
		if specificWords(toks, norm) {
			s.addWords(string(norm), toks[0].ne, len(toks), nv)
		}
	case "vat", "iban", "code":
		toks, norm := tokenize(old, nil, nil)
		compact := strings.ReplaceAll(string(norm), " ", "")
		if utf8.RuneCountInString(compact) < minCodeChars {
			return
		}
		s.addWords(string(norm), toks[0].ne, len(toks), nv)
		if len(toks) > 1 {
			s.addWords(compact, len(compact), 1, nv)
		}
	case "url":
		toks, norm := tokenize(old, nil, nil)
		if len(toks) >= 2 && utf8.RuneCount(norm) >= minCodeChars {
			s.addWords(string(norm), toks[0].ne, len(toks), nv)
		}
	case "phone":
		s.rememberPhone(old)
	}
	// email and login: every address in free text is replaced anyway; a
	// login that is not an address is not looked for. city, zip, date,
	// token: never replaced in free text.
}

// specificWords: at least two words, one of them of three letters or more
// ("Jens Hansen", "Algade 40", "Anna Bak"; not "Bo Li", "2. th").
func specificWords(toks []wordSpan, norm []byte) bool {
	if len(toks) < 2 {
		return false
	}
	for _, t := range toks {
		letters := 0
		for _, r := range string(norm[t.ns:t.ne]) {
			if unicode.IsLetter(r) {
				letters++
			}
		}
		if letters >= 3 {
			return true
		}
	}
	return false
}

func hasLetter(b []byte) bool {
	for _, r := range string(b) {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// addWords records key (n words, the first firstLen bytes long).
func (s *scrubber) addWords(key string, firstLen, n int, fake string) {
	if _, ok := s.words[key]; ok {
		return
	}
	s.words[key] = fake
	first := key[:firstLen]
	ls := s.lens[first]
	for _, l := range ls {
		if l == n {
			return
		}
	}
	i := len(ls)
	ls = append(ls, n)
	for i > 0 && ls[i-1] < n {
		ls[i] = ls[i-1]
		i--
	}
	ls[i] = n
	s.lens[first] = ls
}

// rememberPhone records the digits of a phone, and for an international
// number (+ or 00) the national forms text often uses instead: without
// the country code (1 to 3 digits), with or without a trunk 0. The extra
// forms of other country code lengths are harmless: they are numbers of
// at least minPhoneDigits digits nobody else has.
func (s *scrubber) rememberPhone(old string) {
	d := onlyDigits(old)
	add := func(x string) {
		if len(x) >= minPhoneDigits && len(x) <= maxPhoneDigits {
			s.phones[x] = struct{}{}
		}
	}
	add(d)
	intl := strings.HasPrefix(strings.TrimSpace(old), "+")
	if !intl && strings.HasPrefix(d, "00") {
		intl, d = true, d[2:]
		add(d)
	}
	if intl {
		for cc := 1; cc <= 3 && cc < len(d); cc++ {
			add(d[cc:])
			add("0" + d[cc:])
		}
	}
}

// text is the scrub of one text value.
func (s *scrubber) text(t string) string {
	if strings.IndexByte(t, '@') >= 0 {
		t = emailRE.ReplaceAllStringFunc(t, func(addr string) string {
			return s.f.email(addr) // the same fake as an email column with this address
		})
	}
	if len(s.phones) > 0 && countDigits(t) >= minPhoneDigits {
		t = s.replacePhones(t)
	}
	if len(s.words) == 0 && len(s.alone) == 0 {
		return t
	}
	return s.replaceWords(t)
}

// json is the scrub of a jsonb value (as text): every string in it is
// scrubbed as a text, keys are kept. Unchanged values come back as they
// were, byte for byte.
func (s *scrubber) json(t string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	changed := false
	v = s.walk(v, &changed)
	if !changed {
		return t, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func (s *scrubber) walk(v any, changed *bool) any {
	switch x := v.(type) {
	case string:
		n := s.text(x)
		if n != x {
			*changed = true
		}
		return n
	case map[string]any:
		for k, e := range x {
			x[k] = s.walk(e, changed)
		}
	case []any:
		for i, e := range x {
			x[i] = s.walk(e, changed)
		}
	}
	return v
}

func countDigits(t string) int {
	n := 0
	for i := 0; i < len(t); i++ {
		if t[i] >= '0' && t[i] <= '9' {
			n++
		}
	}
	return n
}

// phoneRE finds runs of digits, spaces, dots, dashes and brackets that
// could hold a phone number; replacePhones decides.
var phoneRE = regexp.MustCompile(`\+?\(?\d[\d ().\-]{6,}\d`)

// replacePhones replaces the phones of the run in t. A run phoneRE found
// is cut into space-separated groups; the longest sequence of whole
// groups, from left to right, whose digits are a phone of the run is
// replaced. A group glued to a letter or digit outside the run (SO46354000)
// (see phoneBoundary) cannot be part of a match.
func (s *scrubber) replacePhones(t string) string {
	locs := phoneRE.FindAllStringIndex(t, -1)
	if locs == nil {
		return t
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		var groups [][2]int
		for i := l[0]; i < l[1]; {
			for i < l[1] && t[i] == ' ' {
				i++
			}
			j := i
			for j < l[1] && t[j] != ' ' {
				j++
			}
			if j > i {
				groups = append(groups, [2]int{i, j})
			}
			i = j
		}
		first, end := 0, len(groups)
		if !phoneBoundary(t, l[0], false) {
			first = 1
		}
		if !phoneBoundary(t, l[1], true) {
			end--
		}
		for g := first; g < end; {
			best := -1
			s.digit = s.digit[:0]
			for e := g; e < end; e++ {
				for k := groups[e][0]; k < groups[e][1]; k++ {
					if c := t[k]; c >= '0' && c <= '9' {
						s.digit = append(s.digit, c)
					}
				}
				if len(s.digit) > maxPhoneDigits {
					break
				}
				if _, ok := s.phones[string(s.digit)]; ok {
					best = e
				}
			}
			if best < 0 {
				g++
				continue
			}
			start, stop := groups[g][0], groups[best][1]
			b.WriteString(t[last:start])
			b.WriteString(s.f.fake("phone", t[start:stop]))
			last = stop
			g = best + 1
		}
	}
	if last == 0 {
		return t
	}
	b.WriteString(t[last:])
	return b.String()
}

// phoneBoundary: a phone may end (after) or start (!after) at byte i of
// t: not next to a letter or digit, nor to the '/', '_' or '\' that join
// the parts of references and file names (INV/2025/46354000 is a
// reference even if a customer has that number).
func phoneBoundary(t string, i int, after bool) bool {
	var r rune
	switch {
	case after && i < len(t):
		r, _ = utf8.DecodeRuneInString(t[i:])
	case !after && i > 0:
		r, _ = utf8.DecodeLastRuneInString(t[:i])
	default:
		return true
	}
	return !isWordRune(r) && r != '/' && r != '_' && r != '\\'
}

// replaceWords replaces the short names standing alone, then, between
// them, the longest specific value starting at each word.
func (s *scrubber) replaceWords(t string) string {
	s.toks, s.norm = tokenize(t, s.toks, s.norm)
	toks, norm := s.toks, s.norm
	if len(toks) == 0 {
		return t
	}
	found := s.found[:0]
	if len(s.alone) > 0 {
		found = s.standingAlone(t, found)
	}
	nAlone := len(found)
	next := 0 // the next match standing alone
	for i := 0; i < len(toks); {
		if next < nAlone && i == found[next].a {
			i = found[next].b
			next++
			continue
		}
		limit := len(toks)
		if next < nAlone {
			limit = found[next].a // a match may not run into one standing alone
		}
		matched := false
		for _, n := range s.lens[string(norm[toks[i].ns:toks[i].ne])] {
			if i+n > limit {
				continue
			}
			if fake, ok := s.words[string(norm[toks[i].ns:toks[i+n-1].ne])]; ok {
				found = append(found, match{a: i, b: i + n, fake: fake})
				i += n
				matched = true
				break
			}
		}
		if !matched {
			i++
		}
	}
	s.found = found
	if len(found) == 0 {
		return t
	}
	// The two kinds of matches are each in order and never overlap: merge.
	var b strings.Builder
	b.Grow(len(t))
	last := 0
	al, ws := found[:nAlone], found[nAlone:]
	for len(al) > 0 || len(ws) > 0 {
		var m match
		if len(ws) == 0 || (len(al) > 0 && al[0].a < ws[0].a) {
			m, al = al[0], al[1:]
		} else {
			m, ws = ws[0], ws[1:]
		}
		b.WriteString(t[last:toks[m.a].start])
		b.WriteString(m.fake)
		last = toks[m.b-1].end
	}
	b.WriteString(t[last:])
	return b.String()
}

// standingAlone appends the short names of t that stand alone: a part of
// t between list separators (, ; or a line break), up to an address's
// '<', made of exactly the words of a short name, with nothing but spaces
// and quotes around them.
func (s *scrubber) standingAlone(t string, found []match) []match {
	toks, norm := s.toks, s.norm
	p := 0
	for start := 0; start <= len(t); {
		end := start + strings.IndexAny(t[start:], ",;\n\r")
		if end < start {
			end = len(t)
		}
		core := end
		if j := strings.IndexByte(t[start:end], '<'); j >= 0 {
			core = start + j
		}
		for p < len(toks) && toks[p].start < start {
			p++
		}
		a := p
		for p < len(toks) && toks[p].end <= core {
			p++
		}
		if b := p; b > a && onlySpacesQuotes(t[start:toks[a].start]) && onlySpacesQuotes(t[toks[b-1].end:core]) {
			if fake, ok := s.alone[string(norm[toks[a].ns:toks[b-1].ne])]; ok {
				found = append(found, match{a: a, b: b, fake: fake})
			}
		}
		start = end + 1
	}
	return found
}

func onlySpacesQuotes(t string) bool {
	for _, r := range t {
		if !unicode.IsSpace(r) && r != '"' && r != '\'' {
			return false
		}
	}
	return true
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// tokenize splits t into words (see the comment at the top of this file),
// reusing toks and norm: norm receives the words lower-cased, separated by
// one space, so that the normalised form of words i..j is one slice.
func tokenize(t string, toks []wordSpan, norm []byte) ([]wordSpan, []byte) {
	toks, norm = toks[:0], norm[:0]
	in := false
	var cur wordSpan
	for i := 0; i < len(t); {
		r, width := utf8.DecodeRuneInString(t[i:])
		word := false
		if r == '&' {
			if er, n, ok := charRef(t[i:]); ok {
				r, width = er, n
				word = isWordRune(r)
			}
		} else {
			word = isWordRune(r) || in && unicode.Is(unicode.Mn, r)
		}
		if word {
			if !in {
				in = true
				if len(norm) > 0 {
					norm = append(norm, ' ')
				}
				cur = wordSpan{start: i, ns: len(norm)}
			}
			if r < utf8.RuneSelf {
				if r >= 'A' && r <= 'Z' {
					r += 'a' - 'A'
				}
				norm = append(norm, byte(r))
			} else {
				norm = utf8.AppendRune(norm, unicode.ToLower(r))
			}
		} else if in {
			in = false
			cur.end, cur.ne = i, len(norm)
			toks = append(toks, cur)
		}
		i += width
	}
	if in {
		cur.end, cur.ne = len(t), len(norm)
		toks = append(toks, cur)
	}
	return toks, norm
}

// charRef decodes the HTML character reference t starts with (&amp;,
// &#39;, &#x27;): the character, the reference's length, and whether t
// starts with one. A reference that stands for several characters counts
// as a space.
func charRef(t string) (rune, int, bool) {
	end := strings.IndexByte(t[:min(len(t), 34)], ';')
	if end < 2 {
		return 0, 0, false
	}
	body := t[1:end]
	switch {
	case body[0] == '#' && len(body) > 1 && (body[1] == 'x' || body[1] == 'X'):
		if len(body) == 2 || !allOf(body[2:], "0123456789abcdefABCDEF") {
			return 0, 0, false
		}
	case body[0] == '#':
		if !allOf(body[1:], "0123456789") {
			return 0, 0, false
		}
	default:
		if !allOf(body, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
			return 0, 0, false
		}
	}
	ref := t[:end+1]
	dec := html.UnescapeString(ref)
	if dec == ref {
		return 0, 0, false
	}
	r, n := utf8.DecodeRuneInString(dec)
	if n != len(dec) {
		r = ' '
	}
	return r, len(ref), true
}

func allOf(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}
