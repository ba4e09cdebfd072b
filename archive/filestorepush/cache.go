package filestorepush

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/walvault/walvault/repo"
)

// Cache is the local state of one database's pushes: the files the last
// logged pass found stored (by name, with their stat), which is also the
// state the repository's log holds for the database, and how many delta
// records were written since the last snapshot.
type Cache struct {
	// Repo identifies the repository and the database the cache belongs
	// to (CacheOwner): a cache of another repository (or of one recreated
	// at the same URL) or of another database is ignored.
	Repo   string
	Deltas int
	// Log is what the database's log held when the cache was written: its
	// number of records and the key of the newest. A pass uses the cache
	// only while the log still says so; any other record (another pusher
	// of the same database, a pass that crashed between its record and
	// its cache, a state directory rolled back with a VM snapshot, expire
	// compacting the log) makes the cache's view of the log stale, and a
	// delta against a stale view can leave a present file out of the log.
	Log   LogMark
	Files map[string]FileStat
}

// LogMark identifies the state of one database's log: how many records
// it holds and the newest key ("" and 0 for an empty log).
type LogMark struct {
	Records int
	Newest  string
}

// cacheMagic names the cache format; a cache of another format (format 1
// had no log mark) is not used.
const cacheMagic = "walvault-filestore-cache 2"

// cacheFile is the cache's name inside the state directory.
const cacheFile = "cache"

// MarshalCache encodes c: a header, then one line per file
// "<name> <size> <mtime ns> <inode>", sorted.
func MarshalCache(c *Cache) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nrepo %s\ndeltas %d\nlog %d %s\n", cacheMagic, c.Repo, c.Deltas, c.Log.Records, c.Log.Newest)
	names := make([]string, 0, len(c.Files))
	for n := range c.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := c.Files[n]
		fmt.Fprintf(&b, "%s %d %d %d\n", n, st.Size, st.MtimeNs, st.Ino)
	}
	return b.Bytes()
}

// ParseCache decodes a cache written by MarshalCache.
func ParseCache(data []byte) (*Cache, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 4096)
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	if l, ok := next(); !ok || l != cacheMagic {
		return nil, errors.New("not a walvault filestore cache")
	}
	c := &Cache{Files: make(map[string]FileStat)}
	l, ok := next()
	id, found := strings.CutPrefix(l, "repo ")
	if !ok || !found || id == "" || strings.ContainsAny(id, " \t") {
		return nil, errors.New("cache line 2: no repository id")
	}
	c.Repo = id
	l, ok = next()
	d, found := strings.CutPrefix(l, "deltas ")
	n, err := strconv.Atoi(d)
	if !ok || !found || err != nil || n < 0 {
		return nil, errors.New("cache line 3: no delta count")
	}
	c.Deltas = n
	l, ok = next()
	lm, found := strings.CutPrefix(l, "log ")
	cnt, newest, _ := strings.Cut(lm, " ")
	n, err = strconv.Atoi(cnt)
	if !ok || !found || err != nil || n < 0 || (n == 0) != (newest == "") || strings.ContainsAny(newest, " \t") {
		return nil, errors.New("cache line 4: no log mark")
	}
	c.Log = LogMark{Records: n, Newest: newest}
	for {
		l, ok := next()
		if !ok {
			break
		}
		f := strings.Split(l, " ")
		if len(f) != 4 || !repo.ValidFilestoreName(f[0]) {
			return nil, fmt.Errorf("cache line %d: bad entry", line)
		}
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		mt, err2 := strconv.ParseInt(f[2], 10, 64)
		ino, err3 := strconv.ParseUint(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || size < 0 {
			return nil, fmt.Errorf("cache line %d: bad entry", line)
		}
		if _, dup := c.Files[f[0]]; dup {
			return nil, fmt.Errorf("cache line %d: %s twice", line, f[0])
		}
		c.Files[f[0]] = FileStat{Size: size, MtimeNs: mt, Ino: ino}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cache line %d: %w", line+1, err)
	}
	return c, nil
}

// CacheOwner is the Cache.Repo value of database db's cache in the
// repository repoID. A cache is bound to both: two pushes given the same
// state directory for two databases would otherwise share one cache, and
// the second would take files as stored and logged that its own log never
// named — files expire may then delete and a restore of it would miss.
func CacheOwner(repoID, db string) string { return repoID + "/" + url.PathEscape(db) }

// LoadCache reads the cache in stateDir. A missing, unreadable or foreign
// cache is nil (the pass then trusts the repository), with the reason.
func LoadCache(stateDir, repoID string) (*Cache, string) {
	data, err := os.ReadFile(filepath.Join(stateDir, cacheFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "no cache yet"
	}
	if err != nil {
		return nil, err.Error()
	}
	c, err := ParseCache(data)
	if err != nil {
		return nil, err.Error()
	}
	if c.Repo != repoID {
		return nil, "cache belongs to another repository or database"
	}
	return c, ""
}

// SaveCache writes c to stateDir atomically (temp file, fsync, rename,
// fsync of the directory).
func SaveCache(stateDir string, c *Cache) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("filestore state directory: %w", err)
	}
	f, err := os.CreateTemp(stateDir, cacheFile+".tmp*")
	if err != nil {
		return fmt.Errorf("write filestore cache: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := io.Copy(f, bytes.NewReader(MarshalCache(c))); err != nil {
		f.Close()
		return fmt.Errorf("write filestore cache: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write filestore cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write filestore cache: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(stateDir, cacheFile)); err != nil {
		return fmt.Errorf("write filestore cache: %w", err)
	}
	if d, err := os.Open(stateDir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
