package pgwal

import (
	"fmt"
	"strings"
)

// LSN is a PostgreSQL log sequence number (XLogRecPtr): a byte position in
// the write-ahead log, written as two hex numbers, "16/B374D848".
type LSN uint64

// ParseLSN parses the textual form of an LSN as PostgreSQL prints it
// ("16/B374D848"): two hexadecimal numbers of 1 to 8 digits each, separated
// by a slash. Upper- and lower-case digits are accepted (pg_lsn input accepts
// both); signs, spaces and prefixes such as "0x" are not.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("invalid LSN %q: want two hex numbers separated by a slash, like 16/B374D848", s)
	}
	h, okh := parseHex32(hi, 1, 8)
	l, okl := parseHex32(lo, 1, 8)
	if !okh || !okl {
		return 0, fmt.Errorf("invalid LSN %q: want two hex numbers of 1 to 8 digits separated by a slash, like 16/B374D848", s)
	}
	return LSN(uint64(h)<<32 | uint64(l)), nil
}

// String returns the LSN as PostgreSQL prints it, "%X/%X".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// MarshalText implements encoding.TextMarshaler using the String form.
func (l LSN) MarshalText() ([]byte, error) {
	return []byte(l.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using ParseLSN.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// parseHex32 parses between minDigits and maxDigits hex digits (either case)
// into a uint32. It is stricter than strconv.ParseUint: no sign, no prefix,
// no underscores.
func parseHex32(s string, minDigits, maxDigits int) (uint32, bool) {
	if len(s) < minDigits || len(s) > maxDigits {
		return 0, false
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		d, ok := hexDigit(s[i], true)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

// parseUpperHex32 parses exactly n upper-case hex digits, the form PostgreSQL
// uses in file names (%08X).
func parseUpperHex32(s string) (uint32, bool) {
	if len(s) != 8 {
		return 0, false
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		d, ok := hexDigit(s[i], false)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

func hexDigit(c byte, allowLower bool) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case allowLower && 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
