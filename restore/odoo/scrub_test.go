package odoo

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// danishScrubber has learnt the fakes of a few Danish partners, as the
// fake phase of a run would: four-digit postcodes, house numbers, a short
// name, a one-word company.
func danishScrubber() *scrubber {
	f := &faker{key: []byte("scrub test")}
	s := newScrubber(f)
	for _, v := range []struct{ kind, old string }{
		{"name", "Mette Kjærgaard Sørensen"}, {"street", "Algade 40"}, {"zip", "4000"}, {"city", "Roskilde"},
		{"phone", "+45 46 35 40 00"}, {"phone", "+4546354000"}, {"email", "mette@roskilde-eksempel.dk"},
		{"name", "Bo Li"}, {"street", "Skovvej 12"}, {"zip", "2100"}, {"city", "København Ø"}, {"phone", "20 12 21 00"},
		{"name", "Brugsen"}, {"street", "Nørregade 2"}, {"zip", "4100"}, {"city", "Ringsted"},
		{"name", "Anne Mortensen"}, {"name", "Jens Hansen"}, {"street", "Hovedgaden 8"}, {"street2", "1. tv"}, {"zip", "8000"},
		{"vat", "DK 12 34 56 78"}, {"iban", "DK50 0040 0440 1162 43"}, {"code", "4412"}, {"name", "O'Brien Walsh"},
	} {
		kind := v.kind
		if kind == "street2" {
			kind = "street"
		}
		s.remember(kind, v.old, f.fake(kind, v.old))
	}
	return s
}

func TestScrubKeepsReferences(t *testing.T) {
	s := danishScrubber()
	f := s.f
	name := f.fake("name", "Mette Kjærgaard Sørensen")
	for _, c := range []struct{ in, want string }{
		// Postcodes, house numbers, cities, short codes: never on their own.
		{"INV/2025/04000", "INV/2025/04000"},
		{"Re: INV/2025/04000 og S04100", "Re: INV/2025/04000 og S04100"},
		{"SO/2025/00040 SO/2025/00012 PO-0008 4412", "SO/2025/00040 SO/2025/00012 PO-0008 4412"},
		{"4000 Roskilde; 2100 København Ø; 8000", "4000 Roskilde; 2100 København Ø; 8000"},
		{"INV_2025_02100.pdf", "INV_2025_02100.pdf"},
		{"Hovedgadens 8, 1. tv", "Hovedgadens 8, 1. tv"}, // another street, and a floor
		{"Jens Hansens Vej 4", "Jens Hansens Vej 4"},     // a longer word is another word
		{"Ring til Bo Li", "Ring til Bo Li"},             // a short name inside a sentence stays (documented)
		{"SO4635400012", "SO4635400012"},                 // digits glued to a reference
		{"2025-46354000-1", "2025-46354000-1"},
		{"INV/2025/46354000 P_46354000.pdf", "INV/2025/46354000 P_46354000.pdf"},
		// Specific values, as whole words, whatever the case and separators.
		{"Faktura INV/2025/04000 til Mette Kjærgaard Sørensen", "Faktura INV/2025/04000 til " + name},
		{"METTE KJÆRGAARD SØRENSEN", name},
		{"<p>Mette&nbsp;Kjærgaard&nbsp;S&oslash;rensen</p>", "<p>" + name + "</p>"},
		{"mette_kjærgaard_sørensen_INV_2025_04000.pdf", name + "_INV_2025_04000.pdf"},
		{"Levering: Algade 40, 4000 Roskilde", "Levering: " + f.fake("street", "Algade 40") + ", 4000 Roskilde"},
		{"Skovvej 12", f.fake("street", "Skovvej 12")},
		{"O&#39;Brien Walsh", f.fake("name", "O'Brien Walsh")},
		// Phones by their digits, national or international.
		{"Ring 46 35 40 00 / INV/2025/04000", "Ring " + f.fake("phone", "46 35 40 00") + " / INV/2025/04000"},
		{"tlf. +45 46354000.", "tlf. " + f.fake("phone", "+45 46354000") + "."},
		{"20122100 40404040", f.fake("phone", "20122100") + " 40404040"},
		// Identifiers: as stored and compact.
		{"CVR DK12345678, DK 12 34 56 78", "CVR " + f.fake("vat", "DK 12 34 56 78") + ", " + f.fake("vat", "DK 12 34 56 78")},
		// Short names standing alone: a whole value, a list item, a
		// display name.
		{"Brugsen", f.fake("name", "Brugsen")},
		{"Brugsen, Anne Mortensen", f.fake("name", "Brugsen") + ", " + f.fake("name", "Anne Mortensen")},
		{`"Bo Li" <bo@li-eksempel.dk>`, `"` + f.fake("name", "Bo Li") + `" <` + f.email("bo@li-eksempel.dk") + `>`},
		{"Re: Brugsen", "Re: Brugsen"},
		// Emails, all of them.
		{"mette@roskilde-eksempel.dk (INV/2025/04000)", f.email("mette@roskilde-eksempel.dk") + " (INV/2025/04000)"},
	} {
		if got := s.text(c.in); got != c.want {
			t.Errorf("scrub(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestScrubReferencesSweep: every reference Odoo's sequences can make of
// the Danish partners' postcodes and house numbers comes through intact,
// alone and next to names that are replaced.
func TestScrubReferencesSweep(t *testing.T) {
	s := danishScrubber()
	for _, n := range []string{"4000", "2100", "4100", "8000", "40", "12", "2", "8", "46354000", "4412"} {
		for _, format := range []string{"INV/2025/%05s", "INV/%s/0001", "S%05s", "SO%s", "%s", "BNK1/2025/%s", "RINV/2025/%s-1", "WH/OUT/%05s", "P%s.pdf", "(%s)"} {
			ref := fmt.Sprintf(format, n)
			if n == "46354000" && (ref == n || ref == "("+n+")") {
				continue // a phone standing alone is a phone
			}
			for _, text := range []string{ref, ref + " Mette Kjærgaard Sørensen", "Algade 40 " + ref, "Brugsen, " + ref} {
				if got := s.text(text); !strings.Contains(got, ref) {
					t.Errorf("scrub(%q) = %q: the reference %q is gone", text, got, ref)
				}
			}
		}
	}
}

func TestScrubJSON(t *testing.T) {
	s := danishScrubber()
	in := `{"da_DK": "Hej Jens Hansen,\nfaktura INV/2025/08000 <b>&amp;</b>", "en_US": "Dear Jens Hansen"}`
	out, err := s.json(in)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	fake := s.f.fake("name", "Jens Hansen")
	if got["da_DK"] != "Hej "+fake+",\nfaktura INV/2025/08000 <b>&amp;</b>" || got["en_US"] != "Dear "+fake {
		t.Errorf("scrubbed JSON %q", out)
	}
	same := `{"en_US": "INV/2025/04000 Roskilde"}`
	if out, err := s.json(same); err != nil || out != same {
		t.Errorf("unchanged JSON: %q, %v", out, err)
	}
	if _, err := s.json(`{"en_US": `); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestRememberPolicy(t *testing.T) {
	s := danishScrubber()
	for _, k := range []string{"4000", "roskilde", "københavn ø", "1 tv", "4412"} {
		if _, ok := s.words[k]; ok {
			t.Errorf("%q is replaced wherever it stands", k)
		}
		if _, ok := s.alone[k]; ok {
			t.Errorf("%q is replaced standing alone", k)
		}
	}
	for _, k := range []string{"mette kjærgaard sørensen", "algade 40", "dk 12 34 56 78", "dk12345678", "dk50 0040 0440 1162 43"} {
		if _, ok := s.words[k]; !ok {
			t.Errorf("%q is not replaced", k)
		}
	}
	if _, ok := s.alone["bo li"]; !ok {
		t.Error(`"Bo Li" is not replaced standing alone`)
	}
	for _, d := range []string{"4546354000", "46354000", "046354000", "20122100"} {
		if _, ok := s.phones[d]; !ok {
			t.Errorf("phone digits %s not known", d)
		}
	}
}

func TestTokenize(t *testing.T) {
	toks, norm := tokenize("  O&#39;Brien-ÆBLE &amp; Søn&oslash;, x&bogus;y 12", nil, nil)
	if string(norm) != "o brien æble sønø x bogus y 12" {
		t.Errorf("norm %q", norm)
	}
	if len(toks) != 8 || toks[0].start != 2 || toks[3].end != len("  O&#39;Brien-ÆBLE &amp; Søn&oslash;") {
		t.Errorf("spans %+v", toks)
	}
}

// FuzzScrub: a scrub never panics, leaves text that holds no learnt value,
// no address and no phone alone byte for byte, and keeps JSON valid.
func FuzzScrub(f *testing.F) {
	f.Add("Faktura INV/2025/04000 til Mette Kjærgaard Sørensen, Algade 40, 4000 Roskilde; tlf. 46 35 40 00")
	f.Add(`"Bo Li" <bo@li.dk>, Brugsen`)
	f.Add("&#x;&#;&amp&oslash;&#99999999;")
	s := danishScrubber()
	f.Fuzz(func(t *testing.T, in string) {
		out := s.text(in)
		if !strings.ContainsAny(in, "@") && countDigits(in) < minPhoneDigits {
			toks, norm := tokenize(in, nil, nil)
			learnt := false
			for i := range toks {
				if len(s.lens[string(norm[toks[i].ns:toks[i].ne])]) > 0 {
					learnt = true
				}
			}
			if len(s.alone) > 0 && len(toks) > 0 {
				learnt = true // conservative: any text may be a short name alone
			}
			if !learnt && out != in {
				t.Fatalf("scrub(%q) = %q", in, out)
			}
		}
		b, _ := json.Marshal(map[string]string{"en_US": in})
		js, err := s.json(string(b))
		if err != nil || !json.Valid([]byte(js)) {
			t.Fatalf("json scrub of %s: %q, %v", b, js, err)
		}
	})
}
