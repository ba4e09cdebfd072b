package repo

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/walvault/walvault/storage"
)

// Odoo filestore objects and the log of what each database's filestore held
// when (docs/FORMAT.md, "Odoo filestore"):
//
//	filestore/objects/<xx>/<sha1>            one object per file, plaintext = the
//	                                         file; xx = the SHA-1's first two hex
//	                                         digits; shared by all databases
//	filestore/db/<db>/log/<time>-<rand>      a log record (sealed JSON)
//
// Objects are add-only: the same name always holds the same bytes, so a
// second upload of a name is never needed.
const (
	FilestorePrefix        = "filestore/"
	FilestoreObjectPrefix  = FilestorePrefix + "objects/"
	filestoreDBPrefix      = FilestorePrefix + "db/"
	filestoreLogTimeFormat = "20060102T150405.000000000Z"
)

// ValidFilestoreName reports whether name is an Odoo store_fname of the
// current shape: two lowercase hex digits, a slash, and the 40-digit
// lowercase SHA-1 those two digits start.
func ValidFilestoreName(name string) bool {
	if len(name) != 43 || name[2] != '/' || name[:2] != name[3:5] {
		return false
	}
	return isLowerHex(name[3:])
}

// FilestoreNameOf is the store_fname of content with SHA-1 sum (40 hex).
func FilestoreNameOf(sha1hex string) string { return sha1hex[:2] + "/" + sha1hex }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// FilestoreObjectKey is the key of the object holding the file name
// (a ValidFilestoreName).
func FilestoreObjectKey(name string) string { return FilestoreObjectPrefix + name }

// ParseFilestoreObjectKey returns the file name an object key holds.
func ParseFilestoreObjectKey(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, FilestoreObjectPrefix)
	if !ok || !ValidFilestoreName(name) {
		return "", false
	}
	return name, true
}

// ValidFilestoreDB reports whether db is a database name walvault keeps a
// filestore log for: Odoo's own rule (letters, digits, '_', '.', '-', not
// starting with a punctuation mark), at most 63 bytes as PostgreSQL allows.
func ValidFilestoreDB(db string) bool {
	if db == "" || len(db) > 63 {
		return false
	}
	for i := 0; i < len(db); i++ {
		c := db[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// FilestoreLogPrefix is the prefix of database db's log records.
func FilestoreLogPrefix(db string) string { return filestoreDBPrefix + db + "/log/" }

// FilestoreLogKey names a log record of db taken at t; suffix makes keys of
// the same nanosecond distinct.
func FilestoreLogKey(db string, t time.Time, suffix string) string {
	return FilestoreLogPrefix(db) + t.UTC().Format(filestoreLogTimeFormat) + "-" + suffix
}

// ParseFilestoreLogKey returns the database and the time of a log record key.
func ParseFilestoreLogKey(key string) (db string, t time.Time, err error) {
	rest, ok := strings.CutPrefix(key, filestoreDBPrefix)
	if !ok {
		return "", t, fmt.Errorf("key %q is not under %s", key, filestoreDBPrefix)
	}
	db, name, ok := strings.Cut(rest, "/log/")
	if !ok || !ValidFilestoreDB(db) {
		return "", t, fmt.Errorf("key %q: no valid database folder", key)
	}
	ts, suffix, ok := strings.Cut(name, "-")
	if !ok || suffix == "" || strings.Contains(suffix, "/") {
		return "", t, fmt.Errorf("key %q: record name is not <time>-<suffix>", key)
	}
	t, err = time.Parse(filestoreLogTimeFormat, ts)
	if err != nil || t.Format(filestoreLogTimeFormat) != ts {
		return "", time.Time{}, fmt.Errorf("key %q: bad time %q", key, ts)
	}
	return db, t, nil
}

// Kinds of filestore log record.
const (
	FilestoreSnapshot = "snapshot" // Added is everything the filestore held
	FilestoreDelta    = "delta"    // changes since the record before
)

// FilestoreRecord is one log record: what a scan of db's filestore at Time
// found. A snapshot lists every file present; a delta the files that
// appeared and disappeared since the previous record. Only files whose
// object is stored are listed.
type FilestoreRecord struct {
	Version int       `json:"version"`
	DB      string    `json:"db"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Added   []string  `json:"added,omitempty"`
	Removed []string  `json:"removed,omitempty"`
	// Key is the record's object key (set when read).
	Key string `json:"-"`
}

const filestoreRecordVersion = 1

// MarshalFilestoreRecord encodes rec (names sorted) after checking it.
func MarshalFilestoreRecord(rec FilestoreRecord) ([]byte, error) {
	rec.Version = filestoreRecordVersion
	rec.Time = rec.Time.UTC()
	sort.Strings(rec.Added)
	sort.Strings(rec.Removed)
	if err := rec.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(rec)
}

// ParseFilestoreRecord decodes and checks a log record.
func ParseFilestoreRecord(data []byte) (FilestoreRecord, error) {
	var rec FilestoreRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("%w: filestore log record: %v", ErrIntegrity, err)
	}
	if rec.Version > filestoreRecordVersion {
		return rec, fmt.Errorf("%w: filestore log record version %d is newer than this walvault reads (%d)", ErrUnsupportedFormat, rec.Version, filestoreRecordVersion)
	}
	if err := rec.validate(); err != nil {
		return rec, fmt.Errorf("%w: %v", ErrIntegrity, err)
	}
	return rec, nil
}

func (rec FilestoreRecord) validate() error {
	if rec.Version < 1 {
		return fmt.Errorf("filestore log record version %d", rec.Version)
	}
	if !ValidFilestoreDB(rec.DB) {
		return fmt.Errorf("filestore log record: bad database name %q", rec.DB)
	}
	if rec.Kind != FilestoreSnapshot && rec.Kind != FilestoreDelta {
		return fmt.Errorf("filestore log record: unknown kind %q", rec.Kind)
	}
	if rec.Kind == FilestoreSnapshot && len(rec.Removed) > 0 {
		return errors.New("filestore log record: a snapshot removes nothing")
	}
	for _, list := range [][]string{rec.Added, rec.Removed} {
		for _, n := range list {
			if !ValidFilestoreName(n) {
				return fmt.Errorf("filestore log record: bad file name %q", n)
			}
		}
	}
	return nil
}

// Apply folds rec into state (the set of names present).
func (rec FilestoreRecord) Apply(state map[string]bool) {
	if rec.Kind == FilestoreSnapshot {
		clear(state)
	}
	for _, n := range rec.Added {
		state[n] = true
	}
	for _, n := range rec.Removed {
		delete(state, n)
	}
}

// PutFilestoreRecord stores rec as a new log record (never replacing one)
// and returns its key. A put retried after its answer was lost finds its
// own record (same size and checksum) and succeeds; the key has a random
// part, so anything else under it is a conflict.
func (r *Repository) PutFilestoreRecord(ctx context.Context, rec FilestoreRecord) (string, error) {
	data, err := MarshalFilestoreRecord(rec)
	if err != nil {
		return "", err
	}
	key := FilestoreLogKey(rec.DB, rec.Time, randomHex(4))
	_, err = r.Put(ctx, key, data, storage.PutOptions{IfAbsent: true})
	if storage.IsExist(err) {
		if h, herr := r.Header(ctx, key); herr == nil && h.PlainSize == int64(len(data)) && h.SHA256 == sha256.Sum256(data) {
			return key, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("store filestore log record: %w", err)
	}
	return key, nil
}

// FilestoreLogKeys lists db's log record keys, oldest first (key order),
// without reading them.
func (r *Repository) FilestoreLogKeys(ctx context.Context, db string) ([]string, error) {
	var keys []string
	err := r.store.List(ctx, FilestoreLogPrefix(db), func(oi storage.ObjectInfo) error {
		if d, _, err := ParseFilestoreLogKey(oi.Key); err == nil && d == db {
			keys = append(keys, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list filestore log of %s: %w", db, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// FilestoreDBs lists the databases that have a filestore log.
func (r *Repository) FilestoreDBs(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := r.store.List(ctx, filestoreDBPrefix, func(oi storage.ObjectInfo) error {
		if db, _, err := ParseFilestoreLogKey(oi.Key); err == nil && !seen[db] {
			seen[db] = true
			out = append(out, db)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list filestore logs: %w", err)
	}
	return out, nil
}

// FilestoreLog reads db's log records, oldest first (key order). Reading
// needs an identity: records are sealed like every object.
func (r *Repository) FilestoreLog(ctx context.Context, db string) ([]FilestoreRecord, error) {
	keys, err := r.FilestoreLogKeys(ctx, db)
	if err != nil {
		return nil, err
	}
	out := make([]FilestoreRecord, 0, len(keys))
	for _, k := range keys {
		data, _, err := r.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read filestore log: %w", err)
		}
		rec, err := ParseFilestoreRecord(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if rec.DB != db {
			return nil, fmt.Errorf("%w: %s holds a record of database %q", ErrIntegrity, k, rec.DB)
		}
		// The name carries the record's time: a record replayed under
		// another time is refused in every format (format 2 also binds
		// the whole name by its signature).
		if _, t, err := ParseFilestoreLogKey(k); err != nil || !t.Equal(rec.Time) {
			return nil, fmt.Errorf("%w: %s holds a record taken at %s, not at the time its name says (copied from another record?)", ErrIntegrity, k, rec.Time.Format(time.RFC3339Nano))
		}
		rec.Key = k
		out = append(out, rec)
	}
	return out, nil
}

// FilestoreObjects lists the stored filestore objects by file name.
func (r *Repository) FilestoreObjects(ctx context.Context) (map[string]storage.ObjectInfo, error) {
	out := make(map[string]storage.ObjectInfo)
	err := r.store.List(ctx, FilestoreObjectPrefix, func(oi storage.ObjectInfo) error {
		if name, ok := ParseFilestoreObjectKey(oi.Key); ok {
			out[name] = oi
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list filestore objects: %w", err)
	}
	return out, nil
}

// HasFilestoreObject reports whether the object holding file name (a
// ValidFilestoreName) is stored. Errors are the store's.
func (r *Repository) HasFilestoreObject(ctx context.Context, name string) (bool, error) {
	return r.exists(ctx, FilestoreObjectKey(name))
}

// PutFilestoreObject seals data, the content of file name whose SHA-256 is
// sum, and stores it unless the object is there already: then it fails
// with an error for which storage.IsExist is true, leaving the stored
// object (the same bytes: names are content hashes) untouched.
func (r *Repository) PutFilestoreObject(ctx context.Context, name string, data []byte, sum [32]byte) (ObjectInfo, error) {
	return r.PutSum(ctx, FilestoreObjectKey(name), data, sum, storage.PutOptions{IfAbsent: true})
}

// PutSealedFilestoreObject stores sealed, the object SealStream wrote for
// file name, read from its current position to EOF (the store may seek
// back to retry), with PutFilestoreObject's rule for an object already
// there.
func (r *Repository) PutSealedFilestoreObject(ctx context.Context, name string, sealed io.ReadSeeker) error {
	key := FilestoreObjectKey(name)
	if err := r.store.Put(ctx, key, sealed, storage.PutOptions{IfAbsent: true}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// OpenFilestoreObject streams the content of file name as Open does.
func (r *Repository) OpenFilestoreObject(ctx context.Context, name string) (io.ReadCloser, ObjectHeader, error) {
	return r.Open(ctx, FilestoreObjectKey(name))
}

// SealFilestoreObject writes the object of file name (size bytes read
// from src, whose SHA-256 is sum) to dst, for PutSealedFilestoreObject: the
// same envelope Seal produces (one zstd stream instead of independent
// frames, which every reader decodes alike), without holding the data in
// memory. If src does not yield exactly size bytes with that SHA-256, it
// fails with ErrIntegrity and dst holds garbage.
func (r *Repository) SealFilestoreObject(dst io.Writer, name string, src io.Reader, size int64, sum [32]byte) error {
	return r.sealStream(FilestoreObjectKey(name), dst, src, size, sum)
}

func (r *Repository) sealStream(key string, dst io.Writer, src io.Reader, size int64, sum [32]byte) error {
	h := ObjectHeader{Version: objectVersion, Encrypted: r.Config.Encrypted(), PlainSize: size, SHA256: sum}
	if size < 0 || size > maxPlainSize {
		return fmt.Errorf("object of %d bytes exceeds the %d-byte limit", size, maxPlainSize)
	}
	if h.Encrypted && len(r.opts.Recipients) == 0 {
		return fmt.Errorf("%w: set WALVAULT_AGE_RECIPIENTS or --age-recipients-file", ErrNoRecipients)
	}
	if err := r.canSign(); err != nil {
		return err
	}
	r.sign(key, &h)
	if _, err := dst.Write(h.MarshalBinary()); err != nil {
		return err
	}
	body := dst
	var aw io.WriteCloser
	if h.Encrypted {
		var err error
		aw, err = age.Encrypt(dst, r.opts.Recipients...)
		if err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
		body = aw
	}
	zw, err := zstd.NewWriter(body, zstd.WithEncoderLevel(r.opts.Level), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(windowSize))
	if err != nil {
		return err
	}
	hs := sha256.New()
	n, err := io.Copy(zw, io.TeeReader(io.LimitReader(src, size+1), hs))
	if err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if n != size || [32]byte(hs.Sum(nil)) != sum {
		return fmt.Errorf("%w: the data changed while it was being stored (%d bytes read, %d expected)", ErrIntegrity, n, size)
	}
	if aw != nil {
		if err := aw.Close(); err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
	}
	return nil
}

// Open streams the plaintext of the object under key without holding it
// in memory. The reader returns ErrIntegrity (instead of io.EOF) when the
// data does not match the header's size and SHA-256, so a caller that
// reads to EOF without error has the whole, verified content. The caller
// must Close it.
func (r *Repository) Open(ctx context.Context, key string) (io.ReadCloser, ObjectHeader, error) {
	rc, err := r.store.Get(ctx, key)
	if err != nil {
		return nil, ObjectHeader{}, fmt.Errorf("get %s: %w", key, err)
	}
	src := &errRecorder{r: rc}
	br := bufio.NewReaderSize(src, 64<<10)
	hb := make([]byte, HeaderSize, MaxSignedHeaderSize)
	short := func(err error) (io.ReadCloser, ObjectHeader, error) {
		rc.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ObjectHeader{}, fmt.Errorf("object %s: %w: shorter than its header", key, ErrIntegrity)
		}
		return nil, ObjectHeader{}, fmt.Errorf("get %s: %w", key, err)
	}
	if _, err := io.ReadFull(br, hb); err != nil {
		return short(err)
	}
	if hb[4] >= signedVersion {
		// The fixed part, then the certificate and the signature.
		hb = hb[:signedFixed]
		if _, err := io.ReadFull(br, hb[HeaderSize:]); err != nil {
			return short(err)
		}
		n := int(binary.BigEndian.Uint16(hb[64:66]))
		if n == 0 || n > maxCertSize {
			rc.Close()
			return nil, ObjectHeader{}, fmt.Errorf("object %s: %w: signed header with a %d-byte certificate", key, ErrIntegrity, n)
		}
		hb = hb[:signedFixed+n+64]
		if _, err := io.ReadFull(br, hb[signedFixed:]); err != nil {
			return short(err)
		}
	}
	h, err := ParseObjectHeader(hb)
	if err != nil {
		rc.Close()
		return nil, h, fmt.Errorf("object %s: %w", key, err)
	}
	if err := r.verifyHeader(ctx, key, h, hb); err != nil {
		rc.Close()
		return nil, h, fmt.Errorf("object %s: %w", key, err)
	}
	if h.Encrypted != r.Config.Encrypted() {
		rc.Close()
		return nil, h, fmt.Errorf("object %s: %w: its encryption does not match the repository's", key, ErrIntegrity)
	}
	var body io.Reader = br
	if h.Encrypted {
		if len(r.opts.Identities) == 0 {
			rc.Close()
			return nil, h, fmt.Errorf("%w: set WALVAULT_AGE_IDENTITY_FILE or --age-identity-file", ErrNoIdentity)
		}
		ar, err := age.Decrypt(br, r.opts.Identities...)
		if err != nil {
			rc.Close()
			var noMatch *age.NoIdentityMatchError
			if src.err != nil {
				// The storage failed while age read its header: not
				// damage.
				return nil, h, fmt.Errorf("get %s: %w", key, src.err)
			}
			if errors.As(err, &noMatch) {
				return nil, h, fmt.Errorf("object %s: %w", key, ErrWrongKey)
			}
			return nil, h, fmt.Errorf("object %s: %w: decrypt: %v", key, ErrIntegrity, err)
		}
		body = ar
	}
	zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxPlainSize), zstd.WithDecoderMaxWindow(maxDecodeWindow))
	if err != nil {
		rc.Close()
		return nil, h, err
	}
	return &verifyingReader{key: key, rc: rc, src: src, zr: zr, h: h, sum: sha256.New()}, h, nil
}

// errRecorder remembers the storage's read error, so that a failure to
// read is told from damaged data.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// verifyingReader checks size and SHA-256 of what it returns.
type verifyingReader struct {
	key  string
	rc   io.ReadCloser
	src  *errRecorder
	zr   *zstd.Decoder
	h    ObjectHeader
	sum  hash.Hash
	n    int64
	done error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.done != nil {
		return 0, v.done
	}
	n, err := v.zr.Read(p)
	v.n += int64(n)
	v.sum.Write(p[:n])
	if v.n > v.h.PlainSize {
		v.done = fmt.Errorf("object %s: %w: more data than the header's %d bytes", v.key, ErrIntegrity, v.h.PlainSize)
		return 0, v.done
	}
	switch {
	case err == io.EOF:
		if v.n != v.h.PlainSize {
			v.done = fmt.Errorf("object %s: %w: %d bytes of data, header says %d", v.key, ErrIntegrity, v.n, v.h.PlainSize)
		} else if [32]byte(v.sum.Sum(nil)) != v.h.SHA256 {
			v.done = fmt.Errorf("object %s: %w: SHA-256 of the data does not match the header", v.key, ErrIntegrity)
		} else {
			v.done = io.EOF
		}
		return n, v.done
	case err != nil:
		if v.src.err != nil {
			v.done = fmt.Errorf("get %s: %w", v.key, v.src.err)
		} else {
			v.done = fmt.Errorf("object %s: %w: %v", v.key, ErrIntegrity, err)
		}
		return n, v.done
	}
	return n, nil
}

func (v *verifyingReader) Close() error {
	v.zr.Close()
	return v.rc.Close()
}

// maxDecodeWindow bounds the zstd window a streamed object may ask for:
// walvault writes with a 1 MiB window (windowSize), so a window beyond this
// is not walvault's and would only make the reader allocate.
const maxDecodeWindow = 64 << 20
