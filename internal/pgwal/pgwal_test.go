package pgwal

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

const mib = 1 << 20

func TestParseLSN(t *testing.T) {
	tests := []struct {
		in      string
		want    LSN
		wantErr bool
	}{
		{"16/B374D848", 0x16_B374D848, false},
		{"0/0", 0, false},
		{"0/3000000", 0x3000000, false},
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFF_FFFFFFFF, false},
		{"a/b", 0xA_0000000B, false}, // pg_lsn input accepts lower case
		{"00000001/00000002", 0x1_00000002, false},
		{"", 0, true},
		{"/", 0, true},
		{"16", 0, true},
		{"16/", 0, true},
		{"/16", 0, true},
		{"16/B374D848/1", 0, true},
		{"100000000/0", 0, true},
		{"0/100000000", 0, true},
		{"0x1/0", 0, true},
		{"+1/0", 0, true},
		{"-1/0", 0, true},
		{" 1/0", 0, true},
		{"1/0 ", 0, true},
		{"G/0", 0, true},
		{"1_0/0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLSN(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseLSN(%q) = %v, want error", tt.in, got)
				}
				if !strings.Contains(err.Error(), tt.in) || !strings.Contains(err.Error(), "16/B374D848") {
					t.Errorf("error %q should name the input and the expected form", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLSN(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLSNString(t *testing.T) {
	for _, tt := range []struct {
		l    LSN
		want string
	}{
		{0, "0/0"},
		{0x16_B374D848, "16/B374D848"},
		{0x3000000, "0/3000000"},
		{0xFFFFFFFF_FFFFFFFF, "FFFFFFFF/FFFFFFFF"},
	} {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(tt.l), got, tt.want)
		}
	}
}

func TestLSNText(t *testing.T) {
	type doc struct {
		Start LSN `json:"start"`
	}
	b, err := json.Marshal(doc{Start: 0x16_B374D848})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"start":"16/B374D848"}` {
		t.Fatalf("json = %s", b)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil || d.Start != 0x16_B374D848 {
		t.Fatalf("unmarshal = %v, %v", d.Start, err)
	}
	if err := json.Unmarshal([]byte(`{"start":"nope"}`), &d); err == nil {
		t.Fatal("want error for invalid LSN")
	}
}

func TestParseFileName(t *testing.T) {
	tests := []struct {
		in   string
		want FileName
	}{
		{"000000010000000000000002", FileName{Kind: KindSegment, Timeline: 1, Log: 0, Seg: 2}},
		{"0000000A000000160000005B", FileName{Kind: KindSegment, Timeline: 10, Log: 0x16, Seg: 0x5B}},
		{"FFFFFFFFFFFFFFFFFFFFFFFF", FileName{Kind: KindSegment, Timeline: 0xFFFFFFFF, Log: 0xFFFFFFFF, Seg: 0xFFFFFFFF}},
		{"000000010000000000000002.partial", FileName{Kind: KindPartial, Timeline: 1, Seg: 2}},
		{"000000010000000000000002.00000028.backup", FileName{Kind: KindBackupHistory, Timeline: 1, Seg: 2, Offset: 0x28}},
		{"00000002.history", FileName{Kind: KindHistory, Timeline: 2}},
		{"0000001F.history", FileName{Kind: KindHistory, Timeline: 0x1F}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFileName(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name = tt.in
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

func TestParseFileNameRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"00000001000000000000000",         // 23
		"0000000100000000000000020",       // 25
		"00000001000000000000000a",        // lower case
		"000000000000000000000002",        // timeline 0
		"00000000.history",                // timeline 0
		"0000000g0000000000000002",        //
		"pg_wal/000000010000000000000002", // path
		"../000000010000000000000002",
		"000000010000000000000002 ",
		" 000000010000000000000002",
		"000000010000000000000002.partia",
		"000000010000000000000002.partial.zst",
		"000000010000000000000002.0000028.backup",
		"000000010000000000000002.0000002g.backup",
		"000000010000000000000002.00000028.backu",
		"000000010000000000000002x00000028.backup",
		"00000002.History",
		"2.history",
		"00000002.historyx",
		"0000000a.history",
		"000000010000000000000002.history",
		"00000001.partial",
		"archive_status",
	} {
		t.Run(in, func(t *testing.T) {
			f, err := ParseFileName(in)
			if err == nil {
				t.Fatalf("ParseFileName(%q) = %+v, want error", in, f)
			}
			if !strings.Contains(err.Error(), "\""+in+"\"") && !strings.Contains(err.Error(), in) {
				t.Errorf("error %q does not name the input", err)
			}
		})
	}
}

func TestSegmentArithmetic(t *testing.T) {
	tests := []struct {
		segSize int64
		per     uint64
	}{
		{1 * mib, 4096},
		{16 * mib, 256},
		{64 * mib, 64},
		{1024 * mib, 4},
	}
	for _, tt := range tests {
		if got := SegmentsPerXLogID(tt.segSize); got != tt.per {
			t.Errorf("SegmentsPerXLogID(%d) = %d, want %d", tt.segSize, got, tt.per)
		}
	}

	// 16 MiB: LSN 16/B374D848 is in segment 0x16B3, file ...000000160000 00B3.
	lsn, _ := ParseLSN("16/B374D848")
	segno := SegNoOf(lsn, 16*mib)
	if segno != 0x16B3 {
		t.Fatalf("SegNoOf = %#x", segno)
	}
	name := SegmentName(1, segno, 16*mib)
	if name != "0000000100000016000000B3" {
		t.Fatalf("SegmentName = %q", name)
	}
	f, err := ParseFileName(name)
	if err != nil {
		t.Fatal(err)
	}
	if f.SegNo(16*mib) != segno {
		t.Fatalf("SegNo = %#x", f.SegNo(16*mib))
	}
	if got := SegmentStart(segno, 16*mib); got.String() != "16/B3000000" {
		t.Fatalf("SegmentStart = %s", got)
	}

	// 64 MiB segments: 64 per log id, so segment 0x16B3/4 ...
	if got := SegmentName(3, SegNoOf(lsn, 64*mib), 64*mib); got != "00000003000000160000002C" {
		t.Fatalf("64 MiB SegmentName = %q", got)
	}
	// 1 GiB: 4 per log id.
	if got := SegmentName(1, 7, 1024*mib); got != "000000010000000100000003" {
		t.Fatalf("1 GiB SegmentName = %q", got)
	}
	if got := HistoryFileName(0x1F); got != "0000001F.history" {
		t.Fatalf("HistoryFileName = %q", got)
	}
	if got := BackupHistoryFileName(1, 0x2000028, 16*mib); got != "000000010000000000000002.00000028.backup" {
		t.Fatalf("BackupHistoryFileName = %q", got)
	}
}

func TestSegmentNameRoundTrip(t *testing.T) {
	for _, segSize := range []int64{1 * mib, 16 * mib, 256 * mib, 1024 * mib} {
		for _, segno := range []uint64{0, 1, 255, 256, 4095, 4096, 1 << 33, 0xFFFFFFFF*SegmentsPerXLogID(segSize) + SegmentsPerXLogID(segSize) - 1} {
			name := SegmentName(7, segno, segSize)
			f, err := ParseFileName(name)
			if err != nil {
				t.Fatalf("%d/%d: %v", segSize, segno, err)
			}
			if f.SegNo(segSize) != segno || f.Timeline != 7 {
				t.Fatalf("%d/%d: round trip gave %+v (segno %d)", segSize, segno, f, f.SegNo(segSize))
			}
			if SegNoOf(SegmentStart(segno, segSize), segSize) != segno {
				t.Fatalf("%d/%d: SegmentStart/SegNoOf mismatch", segSize, segno)
			}
		}
	}
}

func TestValidSegmentSize(t *testing.T) {
	for n, want := range map[int64]bool{
		0: false, -1: false, 1: false, 512 * 1024: false, 1 * mib: true, 2 * mib: true,
		16 * mib: true, 16*mib + 1: false, 24 * mib: false, 1024 * mib: true, 2048 * mib: false,
		-16 * mib: false,
	} {
		if got := ValidSegmentSize(n); got != want {
			t.Errorf("ValidSegmentSize(%d) = %v", n, got)
		}
	}
}

func TestInvalidSegmentSizePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("want panic for segment size 0")
		}
	}()
	SegmentsPerXLogID(0)
}

// pg15Header is the first 40 bytes of pg_wal/000000010000000000000001 of a
// cluster created with PostgreSQL 15.18's initdb (defaults: 16 MiB segments,
// 8 KiB WAL blocks); pg_controldata reported system identifier
// 7711506016735900660.
const pg15Header = "10d102000100000000000001000000000000000000000000f4b3d46addc5046b0000000100200000"

func TestParseLongPageHeaderPG15(t *testing.T) {
	b, err := hex.DecodeString(pg15Header)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseLongPageHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := LongPageHeader{
		Magic:            0xD110,
		Info:             XLPLongHeader,
		Timeline:         1,
		PageAddr:         0x1000000,
		RemLen:           0,
		SystemIdentifier: 7711506016735900660,
		SegmentSize:      16 * mib,
		BlockSize:        8192,
	}
	if h != want {
		t.Fatalf("got %+v\nwant %+v", h, want)
	}
	if major, ok := MajorFromMagic(h.Magic); !ok || major != 15 {
		t.Fatalf("MajorFromMagic(%#x) = %d, %v", h.Magic, major, ok)
	}
	if h.SegmentName() != "000000010000000000000001" || h.SegNo() != 1 {
		t.Fatalf("SegmentName = %q, SegNo = %d", h.SegmentName(), h.SegNo())
	}
	// A whole page parses the same as its first 40 bytes.
	page := append(append([]byte{}, b...), make([]byte, 8192-len(b))...)
	if h2, err := ParseLongPageHeader(page); err != nil || h2 != h {
		t.Fatalf("full page: %+v, %v", h2, err)
	}
}

func TestParseLongPageHeaderRejects(t *testing.T) {
	good, _ := hex.DecodeString(pg15Header)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte{}, good...)
		f(b)
		return b
	}
	tests := map[string][]byte{
		"empty":              nil,
		"short":              good[:39],
		"no long flag":       mutate(func(b []byte) { b[2] = 0x01 }),
		"segment size 0":     mutate(func(b []byte) { copy(b[32:36], []byte{0, 0, 0, 0}) }),
		"segment size 3 MiB": mutate(func(b []byte) { copy(b[32:36], []byte{0, 0, 0x30, 0}) }),
		"segment size 2 GiB": mutate(func(b []byte) { copy(b[32:36], []byte{0, 0, 0, 0x80}) }),
		"block size 512":     mutate(func(b []byte) { copy(b[36:40], []byte{0, 2, 0, 0}) }),
		"block size 64k":     mutate(func(b []byte) { copy(b[36:40], []byte{0, 0, 1, 0}) }),
		"block size 3000":    mutate(func(b []byte) { copy(b[36:40], []byte{0xB8, 0x0B, 0, 0}) }),
		"pageaddr mid-seg":   mutate(func(b []byte) { b[9] = 0x20 }),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if h, err := ParseLongPageHeader(b); err == nil {
				t.Fatalf("want error, got %+v", h)
			}
		})
	}
}

func TestMajorFromMagic(t *testing.T) {
	for magic, want := range map[uint16]int{0xD106: 13, 0xD10D: 14, 0xD110: 15, 0xD113: 16, 0xD116: 17, 0xD118: 18} {
		if got, ok := MajorFromMagic(magic); !ok || got != want {
			t.Errorf("MajorFromMagic(%#x) = %d, %v; want %d", magic, got, ok, want)
		}
	}
	for _, magic := range []uint16{0, 0xD101, 0xD114, 0xD120, 0xFFFF} {
		if got, ok := MajorFromMagic(magic); ok {
			t.Errorf("MajorFromMagic(%#x) = %d, want unknown", magic, got)
		}
	}
}

func TestParseHistory(t *testing.T) {
	in := "# comment\n" +
		"1\t0/3000000\tno recovery target specified\n" +
		"\n" +
		"2\t0/5000108\tbefore 2026-11-01 12:00:00+00\n" +
		"   \n" +
		"5\t1/0\tat restore point \"x\"\twith tab\r\n" +
		"6\t1/0\n"
	got, err := ParseHistory([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []HistoryEntry{
		{1, 0x3000000, "no recovery target specified"},
		{2, 0x5000108, "before 2026-11-01 12:00:00+00"},
		{5, 0x1_00000000, "at restore point \"x\"\twith tab"},
		{6, 0x1_00000000, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if e, err := ParseHistory(nil); err != nil || len(e) != 0 {
		t.Fatalf("empty: %v, %v", e, err)
	}
}

func TestParseHistoryRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no tab":          "1 0/3000000 reason\n",
		"timeline 0":      "0\t0/3000000\tx\n",
		"hex timeline":    "A\t0/3000000\tx\n",
		"signed timeline": "+1\t0/3000000\tx\n",
		"bad lsn":         "1\t0-3000000\tx\n",
		"decreasing tli":  "2\t0/3000000\tx\n1\t0/4000000\tx\n",
		"repeated tli":    "1\t0/3000000\tx\n1\t0/4000000\tx\n",
		"decreasing lsn":  "1\t0/4000000\tx\n2\t0/3000000\tx\n",
		"garbage":         "hello\n",
	} {
		t.Run(name, func(t *testing.T) {
			if e, err := ParseHistory([]byte(in)); err == nil {
				t.Fatalf("want error, got %+v", e)
			} else if !strings.Contains(err.Error(), "line") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindSegment: "segment", KindHistory: "history", KindPartial: "partial", KindBackupHistory: "backup-history", 0: "Kind(0)"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q", int(k), k.String())
		}
	}
}
