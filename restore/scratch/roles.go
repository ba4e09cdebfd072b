package scratch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// The cluster's bootstrap superuser is the role initdb made (OID 10):
// "postgres" on Debian, "odoo" in the official Odoo container setup
// (POSTGRES_USER=odoo), whatever -U said elsewhere. Every superuser-owned
// step can connect as it; no other role is sure to exist. It is read from
// the restored data directory itself, before any server runs: the
// pg_authid catalog (a mapped relation, found through
// global/pg_filenode.map) holds one tuple per role version.

const (
	pageSize         = 8192
	authIDRelation   = 1260 // pg_authid's OID
	bootstrapRoleOID = 10
	relMapMagic      = 0x592717
	nameDataLen      = 64
	itemIDSize       = 4
	pageHeaderSize   = 24
	tupleHeaderSize  = 23
	lpNormal         = 1
	heapXminCommit   = 0x0100
	heapXminInvalid  = 0x0200
	heapXmaxInvalid  = 0x0800
	maxAuthIDBytes   = 1 << 30 // one segment: a role catalog is a few pages
)

// BootstrapSuperusers returns the name of the role with OID 10 in the data
// directory pgdata: the current version first when several versions of its
// row are on disk (a rename not yet vacuumed away), then older names.
func BootstrapSuperusers(pgdata string) ([]string, error) {
	node, err := mappedFilenode(filepath.Join(pgdata, "global", "pg_filenode.map"), authIDRelation)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(pgdata, "global", strconv.FormatUint(uint64(node), 10))
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAuthIDBytes))
	if err != nil {
		return nil, err
	}
	names, err := parseBootstrapRole(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return names, nil
}

// mappedFilenode reads a relation mapper file (RelMapFile: magic, count,
// then OID/filenode pairs) and returns the file node of relation oid.
func mappedFilenode(path string, oid uint32) (uint32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if len(b) < 8 || binary.LittleEndian.Uint32(b) != relMapMagic {
		return 0, fmt.Errorf("%s is not a relation map file", path)
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if n < 0 || 8+8*n > len(b) {
		return 0, fmt.Errorf("%s: %d mappings do not fit in %d bytes", path, n, len(b))
	}
	for i := 0; i < n; i++ {
		o := 8 + 8*i
		if binary.LittleEndian.Uint32(b[o:]) == oid {
			return binary.LittleEndian.Uint32(b[o+4:]), nil
		}
	}
	return 0, fmt.Errorf("%s does not map relation %d", path, oid)
}

// parseBootstrapRole scans heap pages of pg_authid for tuples whose first
// column (oid) is 10 and returns their rolname (the second column, a
// NUL-padded name): tuples not deleted first.
func parseBootstrapRole(data []byte) ([]string, error) {
	var live, dead []string
	for off := 0; off+pageSize <= len(data); off += pageSize {
		page := data[off : off+pageSize]
		lower := int(binary.LittleEndian.Uint16(page[12:]))
		if lower < pageHeaderSize || lower > pageSize {
			continue // a new, all-zero page
		}
		for lp := pageHeaderSize; lp+itemIDSize <= lower; lp += itemIDSize {
			v := binary.LittleEndian.Uint32(page[lp:])
			tOff, flags, tLen := int(v&0x7fff), (v>>15)&3, int(v>>17)
			if flags != lpNormal || tLen < tupleHeaderSize || tOff+tLen > pageSize {
				continue
			}
			tup := page[tOff : tOff+tLen]
			hoff := int(tup[22])
			if hoff < tupleHeaderSize || hoff+4+nameDataLen > len(tup) {
				continue
			}
			infomask := binary.LittleEndian.Uint16(tup[20:])
			if infomask&heapXminInvalid != 0 && infomask&heapXminCommit == 0 {
				continue // inserted by a transaction that aborted
			}
			if binary.LittleEndian.Uint32(tup[hoff:]) != bootstrapRoleOID {
				continue
			}
			name := tup[hoff+4 : hoff+4+nameDataLen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if len(name) == 0 {
				continue
			}
			xmax := binary.LittleEndian.Uint32(tup[4:])
			if xmax == 0 || infomask&heapXmaxInvalid != 0 {
				live = appendNew(live, string(name))
			} else {
				dead = appendNew(dead, string(name))
			}
		}
	}
	for _, n := range dead {
		live = appendNew(live, n)
	}
	if len(live) == 0 {
		return nil, errors.New("no role with OID 10 found")
	}
	return live, nil
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Roles is the list of roles to try on a restored cluster, in order: the
// one the operator named (alone: a named role that does not exist is an
// error, not a reason to try another), else the cluster's bootstrap
// superuser read from pgdata, then fallbacks (odoo.conf's db_user, the
// account's name). Duplicates and empty names are dropped.
func Roles(explicit, pgdata string, fallbacks ...string) []string {
	if explicit != "" {
		return []string{explicit}
	}
	var out []string
	if names, err := BootstrapSuperusers(pgdata); err == nil {
		out = append(out, names...)
	}
	for _, f := range fallbacks {
		if f != "" {
			out = appendNew(out, f)
		}
	}
	return out
}
