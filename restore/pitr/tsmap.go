package pitr

import (
	"fmt"
	"strings"
)

// tablespaceLink is one line of tablespace_map: pg_tblspc/<OID> is to be a
// symbolic link to Path.
type tablespaceLink struct {
	OID  string
	Path string
}

// parseTablespaceMap reads tablespace_map as PostgreSQL's read_tablespace_map
// does: a backslash makes the next character literal (the server writes
// "\\", "\n" and "\r" that way); an unescaped line feed or carriage return
// ends a line; empty lines are skipped; a line is an OID, exactly one space,
// and a non-empty path (which may itself start with spaces). The server
// writes only decimal OIDs, so anything else is refused. A last line
// without a line ending is an error, as it is for the server.
func parseTablespaceMap(data []byte) ([]tablespaceLink, error) {
	var links []tablespaceLink
	var line []byte
	escaped := false
	for _, c := range data {
		switch {
		case !escaped && (c == '\n' || c == '\r'):
			if len(line) == 0 {
				continue
			}
			oid, path, ok := strings.Cut(string(line), " ")
			if !ok || !isDigits(oid) || path == "" {
				return nil, fmt.Errorf("invalid line %q in tablespace_map: want \"<oid> <path>\"", line)
			}
			links = append(links, tablespaceLink{OID: oid, Path: path})
			line = line[:0]
		case !escaped && c == '\\':
			escaped = true
		default:
			line = append(line, c)
			escaped = false
		}
	}
	if len(line) != 0 || escaped {
		return nil, fmt.Errorf("tablespace_map ends in the middle of a line")
	}
	return links, nil
}

// formatTablespaceMap writes links the way the server does (do_pg_backup_start):
// "<oid> <path>\n" with a backslash before each line feed, carriage return
// and backslash of the path.
func formatTablespaceMap(links []tablespaceLink) []byte {
	var b strings.Builder
	for _, l := range links {
		b.WriteString(l.OID)
		b.WriteByte(' ')
		for i := 0; i < len(l.Path); i++ {
			if c := l.Path[i]; c == '\n' || c == '\r' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(l.Path[i])
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
