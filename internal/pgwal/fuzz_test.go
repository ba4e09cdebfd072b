package pgwal

import (
	"encoding/hex"
	"fmt"
	"testing"
)

func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"16/B374D848", "0/0", "FFFFFFFF/FFFFFFFF", "a/b", "0/", "1/2/3", "00000001/00000002"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLSN(s)
		if err != nil {
			return
		}
		again, err := ParseLSN(l.String())
		if err != nil {
			t.Fatalf("ParseLSN(%q) failed on String() of %q: %v", l.String(), s, err)
		}
		if again != l {
			t.Fatalf("round trip %q -> %v -> %v", s, l, again)
		}
		b, _ := l.MarshalText()
		var u LSN
		if err := u.UnmarshalText(b); err != nil || u != l {
			t.Fatalf("text round trip of %v: %v, %v", l, u, err)
		}
	})
}

func FuzzParseFileName(f *testing.F) {
	for _, s := range []string{
		"000000010000000000000002", "000000010000000000000002.partial",
		"000000010000000000000002.00000028.backup", "00000002.history",
		"00000000.history", "00000001000000000000000a", "../x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fn, err := ParseFileName(s)
		if err != nil {
			return
		}
		if fn.Name != s || fn.Timeline == 0 {
			t.Fatalf("ParseFileName(%q) = %+v", s, fn)
		}
		// Names are canonical: printing the parsed parts the way PostgreSQL
		// does must give back the input.
		var rebuilt string
		seg := fmt.Sprintf("%08X%08X%08X", fn.Timeline, fn.Log, fn.Seg)
		switch fn.Kind {
		case KindHistory:
			rebuilt = HistoryFileName(fn.Timeline)
		case KindSegment:
			rebuilt = seg
		case KindPartial:
			rebuilt = seg + ".partial"
		case KindBackupHistory:
			rebuilt = fmt.Sprintf("%s.%08X.backup", seg, fn.Offset)
		default:
			t.Fatalf("unknown kind %v for %q", fn.Kind, s)
		}
		// With 16 MiB segments the segment number must also round-trip
		// through SegmentName when Seg is in range.
		if fn.Kind == KindSegment && fn.Seg < 256 {
			if got := SegmentName(fn.Timeline, fn.SegNo(16<<20), 16<<20); got != s {
				t.Fatalf("SegmentName(SegNo(%q)) = %q", s, got)
			}
		}
		if rebuilt != s {
			t.Fatalf("round trip %q -> %+v -> %q", s, fn, rebuilt)
		}
		again, err := ParseFileName(rebuilt)
		if err != nil || again != fn {
			t.Fatalf("reparse %q: %+v, %v", rebuilt, again, err)
		}
	})
}

func FuzzParseLongPageHeader(f *testing.F) {
	b, _ := hex.DecodeString(pg15Header)
	f.Add(b)
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseLongPageHeader(b)
		if err != nil {
			return
		}
		if !ValidSegmentSize(int64(h.SegmentSize)) || h.Info&XLPLongHeader == 0 {
			t.Fatalf("accepted invalid header %+v", h)
		}
		_ = h.SegmentName()
	})
}

func FuzzParseHistory(f *testing.F) {
	f.Add([]byte("1\t0/3000000\tno recovery target specified\n"))
	f.Add([]byte("# c\n\n1\t0/3000000\tx\n2\t0/5000000\ty\n"))
	f.Add([]byte("1\t0/3000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseHistory(b)
		if err != nil {
			return
		}
		for i, e := range entries {
			if e.Timeline == 0 || (i > 0 && (e.Timeline <= entries[i-1].Timeline || e.SwitchLSN < entries[i-1].SwitchLSN)) {
				t.Fatalf("accepted inconsistent history %+v", entries)
			}
		}
	})
}
