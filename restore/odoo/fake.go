package odoo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"time"
)

// faker derives fake values from originals with HMAC-SHA256 under a key
// that lives only as long as one run: the same (kind, original) always
// gives the same fake within a run, and nothing maps a fake back.
type faker struct {
	key []byte
	mac hash.Hash // HMAC-SHA256 under key, made on first use; one goroutine only
}

// sum is the HMAC of the original under kind (so that the same text gives
// unrelated fakes as a name and as a city).
func (f *faker) sum(kind, original string) []byte {
	if f.mac == nil {
		f.mac = hmac.New(sha256.New, f.key)
	}
	m := f.mac
	m.Reset()
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(original))
	return m.Sum(nil)
}

// Invented word lists: fakes must look plausible and must not be anyone's
// real data any more than a random draw would be.
var (
	fakeFirst = []string{"Alex", "Robin", "Sam", "Charlie", "Jamie", "Morgan", "Taylor", "Jordan", "Casey", "Riley",
		"Avery", "Quinn", "Rowan", "Sasha", "Noa", "Eli", "Kai", "Luca", "Mila", "Nora",
		"Ines", "Yara", "Omar", "Ivo", "Lena", "Tomas", "Anouk", "Bram", "Elif", "Hana",
		"Jonas", "Klara", "Lars", "Maren", "Nils", "Oskar", "Pia", "Rafael", "Sofia", "Ugo"}
	fakeLast = []string{"Ashdown", "Birchley", "Carrow", "Dunmore", "Elsworth", "Farrand", "Garside", "Holloway", "Ivers", "Jessop",
		"Kimber", "Lowther", "Marrable", "Nettle", "Oakes", "Pargeter", "Quill", "Rudge", "Sallow", "Thorne",
		"Umber", "Vane", "Wexley", "Yardley", "Zeller", "Brunt", "Cobb", "Dace", "Estcourt", "Fenn",
		"Gower", "Hext", "Ingle", "Jory", "Kettle", "Lusk", "Minter", "Northey", "Orme", "Peck"}
	fakeStreet = []string{"Road", "Street", "Lane", "Avenue", "Way", "Close", "Drive", "Grove"}
	fakeTown   = []string{"Aldmere", "Brayfield", "Corrington", "Dunhollow", "Eastwick Vale", "Fallowford", "Glenbury", "Hartcombe",
		"Ivybridge Down", "Kestrel Heath", "Larkmoor", "Millbrook End", "Northam Cross", "Oakhurst", "Pennfold", "Quarrington"}
	fakeFirmEnd = []string{"Trading", "Holdings", "Industries", "Services", "Partners", "Supplies", "Works", "Group"}
)

func pick(list []string, b []byte) string {
	return list[int(binary.BigEndian.Uint16(b))%len(list)]
}

// digitsFrom replaces every digit of s after the first keep digits with
// digits drawn from h, and every letter after the first keepLetters
// letters with letters drawn from h, keeping everything else: the fake
// keeps the format (spaces, dashes, length) of the original.
func formatPreserving(s string, h []byte, keepDigits, keepLetters int) string {
	var b strings.Builder
	i := 0
	next := func() byte {
		v := h[i%len(h)] ^ byte(i/len(h)*31)
		i++
		return v
	}
	digits, letters := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
			if digits <= keepDigits {
				b.WriteRune(r)
				continue
			}
			b.WriteByte('0' + next()%10)
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
			if letters <= keepLetters {
				b.WriteRune(r)
				continue
			}
			base := byte('a')
			if r <= 'Z' {
				base = 'A'
			}
			b.WriteByte(base + next()%26)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// onlyDigits is s without anything but digits: phones are keyed on their
// digits, so "+44 20 7946 0412" and "+442079460412" get matching fakes.
func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func compactUpper(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if (r >= '0' && r <= '9') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fake returns the fake for original of a kind (one of FakeKinds).
func (f *faker) fake(kind, original string) string {
	switch kind {
	case "name":
		h := f.sum("name", strings.ToLower(strings.TrimSpace(original)))
		return pick(fakeFirst, h[0:2]) + " " + pick(fakeLast, h[2:4])
	case "company":
		h := f.sum("company", strings.ToLower(strings.TrimSpace(original)))
		return pick(fakeLast, h[0:2]) + " " + pick(fakeFirmEnd, h[2:4])
	case "email":
		return f.email(original)
	case "login":
		if strings.Contains(original, "@") {
			return f.email(original)
		}
		h := f.sum("login", original)
		return "user-" + hex.EncodeToString(h[:6])
	case "phone":
		h := f.sum("phone", onlyDigits(original))
		return formatPreserving(original, h, 2, 0)
	case "street":
		h := f.sum("street", strings.ToLower(strings.TrimSpace(original)))
		return fmt.Sprintf("%d %s %s", 1+int(h[0])%199, pick(fakeLast, h[1:3]), pick(fakeStreet, h[3:5]))
	case "city":
		h := f.sum("city", strings.ToLower(strings.TrimSpace(original)))
		return pick(fakeTown, h[0:2])
	case "zip", "code":
		h := f.sum(kind, compactUpper(original))
		return formatPreserving(original, h, 0, 0)
	case "vat":
		// The country prefix stays, so that Odoo's VAT checks and fiscal
		// positions still see a country.
		h := f.sum("vat", compactUpper(original))
		return formatPreserving(original, h, 0, 2)
	case "iban":
		h := f.sum("iban", compactUpper(original))
		return formatPreserving(compactUpper(original), h, 0, 2)
	case "url":
		h := f.sum("url", strings.ToLower(strings.TrimSpace(original)))
		return "https://www.example-" + hex.EncodeToString(h[:5]) + ".com"
	case "date":
		return original // dates are handled by fakeDate
	case "token":
		h := f.sum("token", original)
		return "anon-" + hex.EncodeToString(h[:6])
	}
	panic("odoo: unknown fake kind " + kind) // ParseRules admits only FakeKinds
}

// email: a plausible, practically unique address keyed on the lower-cased
// original, under a reserved domain (RFC 2606) so no mail can reach anyone.
func (f *faker) email(original string) string {
	h := f.sum("email", strings.ToLower(strings.TrimSpace(original)))
	return strings.ToLower(pick(fakeFirst, h[0:2])+"."+pick(fakeLast, h[2:4])) + "." + hex.EncodeToString(h[4:9]) + "@example.com"
}

// fakeDate moves a date to another day of the same year drawn from the
// HMAC: ages stay about right, the real day is gone.
func (f *faker) fakeDate(t time.Time) time.Time {
	h := f.sum("date", t.Format("2006-01-02"))
	start := time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	days := 365
	if start.AddDate(1, 0, 0).Sub(start) > 365*24*time.Hour {
		days = 366
	}
	d := start.AddDate(0, 0, int(binary.BigEndian.Uint16(h[0:2]))%days)
	if d.Equal(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)) {
		// Never the real day: the next one (the first of the year after
		// the last).
		d = start.AddDate(0, 0, (d.YearDay())%days)
	}
	return d
}

// emailRE matches email addresses inside text (addresses in headers,
// Message-Ids and bodies).
var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+=\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)
