package connstr

import "strings"

// space is what libpq and pgx skip between keywords and values.
const space = " \t\n\r\v\f"

// HasPassword reports whether conn, a libpq URL or key=value connection
// string, holds a password: the user:password part or a password query
// parameter of a URL, or the password keyword of a key=value string.
// sslpassword (the passphrase of the client key) counts as well: it is as
// secret.
func HasPassword(conn string) bool {
	if rest, ok := strings.CutPrefix(conn, "postgresql://"); ok {
		return urlHasPassword(rest)
	}
	if rest, ok := strings.CutPrefix(conn, "postgres://"); ok {
		return urlHasPassword(rest)
	}
	return keywordValueHasPassword(conn)
}

func isPasswordKey(key string) bool { return key == "password" || key == "sslpassword" }

// urlHasPassword reads p, a URL after its scheme, as libpq's
// conninfo_uri_parse_options does (pgx's parseURLSettings follows it): the
// userinfo ends at the first '@' before any '/', so an '@' inside what
// looks like a query still ends it; the host list (bracketed IPv6 addresses
// included) and the database name come before the '?' of the query.
func urlHasPassword(p string) bool {
	if i := strings.IndexAny(p, "@/"); i >= 0 && p[i] == '@' {
		if _, pw, ok := strings.Cut(p[:i], ":"); ok && pw != "" {
			return true
		}
		p = p[i+1:]
	}
	for {
		if strings.HasPrefix(p, "[") {
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return strings.Contains(p, "password") // refused by pgx anyway
			}
			p = p[end+1:]
			if p != "" && strings.IndexByte(":/?,", p[0]) < 0 {
				return strings.Contains(p, "password") // refused by pgx anyway
			}
		} else if i := strings.IndexAny(p, ":/?,"); i >= 0 {
			p = p[i:]
		} else {
			return false
		}
		if strings.HasPrefix(p, ":") {
			i := strings.IndexAny(p, "/?,")
			if i < 0 {
				return false
			}
			p = p[i:]
		}
		if !strings.HasPrefix(p, ",") {
			break
		}
		p = p[1:]
	}
	if strings.HasPrefix(p, "/") {
		i := strings.IndexByte(p, '?')
		if i < 0 {
			return false
		}
		p = p[i:]
	}
	query, ok := strings.CutPrefix(p, "?")
	if !ok {
		return false
	}
	for pair := range strings.SplitSeq(query, "&") {
		key, _, _ := strings.Cut(pair, "=")
		if isPasswordKey(uriDecode(key)) {
			return true
		}
	}
	return false
}

// uriDecode percent-decodes a URL query key as libpq does (no '+' for
// space; leading and trailing spaces skipped). A malformed escape is kept
// as it is: the result then names no keyword, and pgx refuses the URL.
func uriDecode(s string) string {
	s = strings.Trim(s, " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// keywordValueHasPassword reads s as libpq's conninfo_parse does:
// keyword = value pairs separated by white space, a value either quoted
// with '...' or running to the next white space, a backslash escaping the
// next character in both. A keyword can follow a closing quote directly
// (host='h'password=x), which is why a search for " password=" is not
// enough.
func keywordValueHasPassword(s string) bool {
	orig := s
	s = strings.TrimLeft(s, space)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return strings.Contains(orig, "password") // refused by pgx anyway
		}
		key := strings.Trim(s[:eq], space)
		if key == "" || strings.ContainsAny(key, space) {
			return strings.Contains(orig, "password")
		}
		if isPasswordKey(key) {
			return true
		}
		s = strings.TrimLeft(s[eq+1:], space)
		switch {
		case s == "":
		case s[0] != '\'':
			end := 0
			for ; end < len(s); end++ {
				if strings.IndexByte(space, s[end]) >= 0 {
					break
				}
				if s[end] == '\\' {
					end++
					if end == len(s) {
						break
					}
				}
			}
			s = s[end:]
		default:
			s = s[1:]
			end := 0
			for ; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
					if end == len(s) {
						break
					}
				}
			}
			if end >= len(s) {
				return strings.Contains(orig, "password") // unterminated quote
			}
			s = s[end+1:]
		}
		s = strings.TrimLeft(s, space)
	}
	return false
}
