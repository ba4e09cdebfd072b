package filestorepush

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/walvault/walvault/repo"
)

// FileStat is what tells an unchanged file: the name is the content's
// hash, so size, mtime and inode only guard against a file replaced in
// place (which Odoo never does).
type FileStat struct {
	Size    int64
	MtimeNs int64
	Ino     uint64
}

// Entry is a file of the filestore shaped like an Odoo attachment.
type Entry struct {
	Name string // xx/<sha1>
	FileStat
}

// Scan lists the files of the filestore directory dir shaped like
// xx/<40 hex> (sorted by name) and counts the entries it skips:
// checklist/ (Odoo's deferred-deletion markers) and anything else.
func Scan(dir string) (entries []Entry, skipped int, err error) {
	top, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("read filestore %s: %w", dir, err)
	}
	for _, d := range top {
		if !d.IsDir() || len(d.Name()) != 2 || !isHex(d.Name()) {
			skipped++
			continue
		}
		sub := filepath.Join(dir, d.Name())
		files, err := os.ReadDir(sub)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, 0, fmt.Errorf("read filestore %s: %w", sub, err)
		}
		for _, f := range files {
			name := d.Name() + "/" + f.Name()
			if !f.Type().IsRegular() || !repo.ValidFilestoreName(name) {
				skipped++
				continue
			}
			fi, err := f.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, 0, fmt.Errorf("stat %s: %w", filepath.Join(sub, f.Name()), err)
			}
			entries = append(entries, Entry{Name: name, FileStat: statOf(fi)})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, skipped, nil
}

func statOf(fi fs.FileInfo) FileStat {
	st := FileStat{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Ino = s.Ino
	}
	return st
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
