package repo

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/walvault/walvault/storage"
)

// Block backups (format 2; docs/FORMAT.md, "Block backups").
//
// A block backup stores each file of the server's tar streams as a list of
// blocks of BlockSize bytes (aligned to PostgreSQL's pages: relation
// segments are multiples of 8 KiB; a file's last block may be short). A
// block is named by its BlockID, a keyed hash of its content under the
// repository's content key, which writers hold and the bucket does not: the
// bucket's owner learns from ids only which blocks are equal. A block a
// previous backup stored is not stored again.
//
// New blocks go into packs, packs/<backup id>/<seq>: a signed header whose
// body is the pack's data key (random, age-encrypted to the recipients),
// then frames of up to FrameBlocks consecutive new blocks, each frame
// compressed (zstd) and sealed with AES-256-GCM under the data key, its
// nonce the frame's offset in the pack and the pack's key bound in as
// additional data. A block is read with its frame, on its own, with a
// ranged GET.
//
// The file list, backups/<id>/files, says for every member of every tar
// stream of the backup its header (name, type, mode, owner, time, link,
// size) and, for a regular file, where each of its blocks is: block id,
// pack, frame offset and length, index in the frame. It is an ordinary signed object, encrypted to the
// recipients and also to the content key, so that a writer (which holds the
// content key but no identity) can read the previous backup's file list to
// know which blocks the repository already has. It reveals to a writer
// the tar headers and block locations, never data: the pack keys are
// encrypted to the recipients only. A file list alone restores its backup;
// there is no chain.

// BlockSize is the size of a block: PostgreSQL's page.
const BlockSize = 8192

// FrameBlocks is the most blocks stored together in one frame: up to 16
// consecutive new blocks are compressed as one zstd frame and sealed
// together. Measured on pgbench tables (zstd fastest, 200 MB of
// pgbench_accounts / 150 MB of its index): 8 KiB frames 17.6× / 3.6×,
// 32 KiB 30.9× / 5.2×, 128 KiB 37.8× / 6.0×, 1 MiB 39.6× / 6.3×. A block
// is still named, deduplicated and referenced alone (frame and index); a
// single block costs reading and opening its frame.
const FrameBlocks = 16

// Key layout of block backups.
const (
	PackPrefix   = "packs/"
	fileListName = "files"
	packMagic    = "WVPK"
	packVersion  = 1
	fileMagic    = "WVFL"
	fileVersion  = 1
	// maxPackHead bounds a pack's head (the wrapped data key).
	maxPackHead = 64 << 10
	// MaxPackSize bounds a pack: offsets are kept in 32 bits.
	MaxPackSize = 1 << 30
	// maxSealedFrame bounds one stored frame (18 bits: zstd's worst case
	// of FrameBlocks blocks, the frame's table and the tag fit).
	maxSealedFrame = 1<<18 - 1
	// maxFrameSize bounds a frame's plaintext.
	maxFrameSize   = 1 + 2*FrameBlocks + FrameBlocks*BlockSize
	blockAADDomain = "walvault block v1\x00"
	blockIDDomain  = "walvault block id v1\x00"
	fileListDomain = "walvault file list v1\x00"
	// contentKeyIDDomain names content keys (ContentKeyID).
	contentKeyIDDomain = "walvault content key id v1\x00"
	contentStanza      = "walvault-content"
)

// PackKey is the key of pack seq of backup id.
func PackKey(id string, seq int) string { return fmt.Sprintf("%s%s/%08d", PackPrefix, id, seq) }

// PackFolder is the prefix of backup id's packs.
func PackFolder(id string) string { return PackPrefix + id + "/" }

// ParsePackKey returns the backup id and sequence number of a pack key.
func ParsePackKey(key string) (id string, seq int, err error) {
	rest, ok := strings.CutPrefix(key, PackPrefix)
	if !ok {
		return "", 0, fmt.Errorf("key %q is not under %s", key, PackPrefix)
	}
	id, s, ok := strings.Cut(rest, "/")
	if !ok || !ValidBackupID(id) || len(s) != 8 {
		return "", 0, fmt.Errorf("key %q is not a pack key (packs/<backup id>/<8 digits>)", key)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strings.Trim(s, "0123456789") != "" {
		return "", 0, fmt.Errorf("key %q: bad pack number %q", key, s)
	}
	return id, n, nil
}

// FileListKey is the key of backup id's file list.
func FileListKey(id string) string { return BackupFolder(id) + fileListName }

// BlockID names a block: the first 16 bytes of HMAC-SHA256 of its content
// under the repository's content key.
type BlockID [16]byte

func (id BlockID) String() string { return hex.EncodeToString(id[:]) }

// ErrNoContentKey: block ids need the repository's content key, which a
// writer key carries (and the root derives).
var ErrNoContentKey = errors.New("no content key")

// BlockHasher computes block ids. It is not safe for concurrent use: make
// one per goroutine.
type BlockHasher struct {
	mac interface {
		io.Writer
		Sum([]byte) []byte
		Reset()
	}
	sum []byte
	// Key is the id of the content key it names blocks with.
	Key ContentKeyID
}

// ContentKeyID names a content key without revealing it: a file list
// records the one its block ids were made with, so that after a root
// rotation (a new content key) readers know which key checks them.
type ContentKeyID [8]byte

func (id ContentKeyID) String() string { return hex.EncodeToString(id[:]) }

func contentKeyID(ck [32]byte) ContentKeyID {
	s := subKey(ck, contentKeyIDDomain)
	return ContentKeyID(s[:8])
}

func newBlockHasher(ck [32]byte) *BlockHasher {
	k := subKey(ck, blockIDDomain)
	return &BlockHasher{mac: hmac.New(sha256.New, k[:]), sum: make([]byte, 0, 32), Key: contentKeyID(ck)}
}

// NewBlockHasher returns a hasher under the content key new backups use:
// the writer key's (else the first of Options.ContentKeys).
func (r *Repository) NewBlockHasher() (*BlockHasher, error) {
	return r.newHasher(newBlockHasher)
}

// BlockHasherFor returns a hasher under the content key id names (a file
// list's), if this host holds it.
func (r *Repository) BlockHasherFor(id ContentKeyID) (*BlockHasher, error) {
	return r.hasherFor(newBlockHasher, id, "the blocks were named")
}

// newHasher returns the hasher mk makes from the content key new backups
// use.
func (r *Repository) newHasher(mk func([32]byte) *BlockHasher) (*BlockHasher, error) {
	ck, ok := r.contentKey()
	if !ok {
		return nil, fmt.Errorf("%w: block backups need a writer key (walvault writer issue) or the root key", ErrNoContentKey)
	}
	return mk(ck), nil
}

// hasherFor returns the hasher mk makes from the content key id names,
// if this host holds it; what says what was made under that key.
func (r *Repository) hasherFor(mk func([32]byte) *BlockHasher, id ContentKeyID, what string) (*BlockHasher, error) {
	for _, ck := range r.contentKeys() {
		if contentKeyID(ck) == id {
			return mk(ck), nil
		}
	}
	return nil, fmt.Errorf("%w %s: %s under another root's content key (before a root rotation?); use an identity file that holds that root's key", ErrNoContentKey, id, what)
}

// ID returns the id of a block with this content.
func (h *BlockHasher) ID(block []byte) BlockID {
	h.mac.Reset()
	h.mac.Write(block)
	h.sum = h.mac.Sum(h.sum[:0])
	var id BlockID
	copy(id[:], h.sum)
	return id
}

// CanHashBlocks reports whether r holds a content key.
func (r *Repository) CanHashBlocks() bool {
	_, ok := r.contentKey()
	return ok
}

// contentKeys are the content keys r holds, the writer key's first.
func (r *Repository) contentKeys() [][32]byte {
	var out [][32]byte
	if w := r.opts.Writer; w != nil && w.ContentKey != ([32]byte{}) {
		out = append(out, w.ContentKey)
	}
	return append(out, r.opts.ContentKeys...)
}

func (r *Repository) contentKey() ([32]byte, bool) {
	if ks := r.contentKeys(); len(ks) > 0 {
		return ks[0], true
	}
	return [32]byte{}, false
}

func subKey(ck [32]byte, domain string) [32]byte {
	return sha256.Sum256(append([]byte(domain), ck[:]...))
}

// Pack writing.

// PackWriter fills one pack. It is not safe for concurrent use.
type PackWriter struct {
	r    *Repository
	key  string
	aead cipher.AEAD
	buf  []byte
	zbuf []byte
	pbuf []byte
	// start is where the blocks begin: offsets count from there, so that
	// a pack whose head is rewrapped (rekey) keeps its blocks' offsets.
	start int
}

// NewPackWriter starts pack seq of backup id. buf, if it has capacity,
// is used for the pack's bytes.
func (r *Repository) NewPackWriter(id string, seq int, buf []byte) (*PackWriter, error) {
	return r.newPackWriter(id, seq, buf, r)
}

// NewListPackWriter starts pack seq of backup id for the pieces of file
// list runs: its data key is wrapped to the content key too, so that the
// next backup, holding only a writer key, reads them (as it reads file
// lists).
func (r *Repository) NewListPackWriter(id string, seq int) (*PackWriter, error) {
	cr, err := r.withContentKey()
	if err != nil {
		return nil, err
	}
	defer cr.Close()
	return r.newPackWriter(id, seq, nil, cr)
}

// newPackWriter starts a pack whose head hr writes.
func (r *Repository) newPackWriter(id string, seq int, buf []byte, hr *Repository) (*PackWriter, error) {
	if !r.Signed() {
		return nil, fmt.Errorf("block backups need a format-2 repository; %s is format %d", r, r.Config.Format)
	}
	if err := r.canSign(); err != nil {
		return nil, err
	}
	var dk [32]byte
	if _, err := rand.Read(dk[:]); err != nil {
		return nil, err
	}
	key := PackKey(id, seq)
	hh, err := hr.packHead(key, dk[:])
	if err != nil {
		return nil, err
	}
	aead, err := newBlockAEAD(dk[:])
	if err != nil {
		return nil, err
	}
	buf = append(buf[:0], hh...)
	return &PackWriter{r: r, key: key, aead: aead, buf: buf, start: len(buf)}, nil
}

// packHead returns the signed header and head of a pack with data key dk.
func (r *Repository) packHead(key string, dk []byte) ([]byte, error) {
	head := append([]byte(packMagic), packVersion)
	if r.Config.Encrypted() {
		if len(r.opts.Recipients) == 0 {
			return nil, fmt.Errorf("%w: set WALVAULT_AGE_RECIPIENTS or --age-recipients-file", ErrNoRecipients)
		}
		var b bytes.Buffer
		w, err := age.Encrypt(&b, r.opts.Recipients...)
		if err != nil {
			return nil, fmt.Errorf("encrypt pack key: %w", err)
		}
		w.Write(dk)
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("encrypt pack key: %w", err)
		}
		head = append(head, b.Bytes()...)
	} else {
		head = append(head, dk...)
	}
	h := ObjectHeader{Version: objectVersion, Encrypted: r.Config.Encrypted(), PlainSize: int64(len(head)), SHA256: sha256.Sum256(head)}
	r.sign(key, &h)
	return append(h.MarshalBinary(), head...), nil
}

func newBlockAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// blockNonceAAD returns the nonce and additional data of the block at off
// in the pack under key.
func blockNonceAAD(key string, off int64, nonce, aad []byte) ([]byte, []byte) {
	nonce = append(nonce[:0], 0, 0, 0, 0)
	nonce = binary.BigEndian.AppendUint64(nonce, uint64(off))
	aad = append(append(append(aad[:0], blockAADDomain...), key...), 0)
	aad = binary.BigEndian.AppendUint64(aad, uint64(off))
	return nonce, aad
}

// Key is the pack's object key.
func (w *PackWriter) Key() string { return w.key }

// Size is the pack's size so far.
func (w *PackWriter) Size() int { return len(w.buf) }

// AddFrame compresses and seals up to FrameBlocks blocks (each at most
// BlockSize bytes) into the pack as one frame and returns where it is: its
// offset from the first frame, and its stored length. Block i of the frame
// is referenced as (offset, length, i).
func (w *PackWriter) AddFrame(blocks [][]byte) (off int64, length int, err error) {
	if len(blocks) == 0 || len(blocks) > FrameBlocks {
		return 0, 0, fmt.Errorf("frame of %d blocks", len(blocks))
	}
	if len(w.buf)+maxSealedFrame > MaxPackSize {
		return 0, 0, fmt.Errorf("pack %s is full", w.key)
	}
	// The frame's plaintext: block count, each block's length (uint16),
	// then the blocks.
	w.pbuf = append(w.pbuf[:0], byte(len(blocks)))
	for _, b := range blocks {
		if len(b) > BlockSize {
			return 0, 0, fmt.Errorf("block of %d bytes exceeds %d", len(b), BlockSize)
		}
		w.pbuf = binary.BigEndian.AppendUint16(w.pbuf, uint16(len(b)))
	}
	for _, b := range blocks {
		w.pbuf = append(w.pbuf, b...)
	}
	w.zbuf = w.r.enc.EncodeAll(w.pbuf, w.zbuf[:0])
	at := len(w.buf)
	off = int64(at - w.start)
	var nb [12]byte
	var ab [128]byte
	nonce, aad := blockNonceAAD(w.key, off, nb[:0], ab[:0])
	w.buf = w.aead.Seal(w.buf, nonce, w.zbuf, aad)
	if len(w.buf)-at > maxSealedFrame {
		return 0, 0, fmt.Errorf("frame of %d bytes exceeds %d", len(w.buf)-at, maxSealedFrame)
	}
	return off, len(w.buf) - at, nil
}

// Bytes is the whole pack, to store with PutPack. The writer must not be
// used afterwards.
func (w *PackWriter) Bytes() []byte { return w.buf }

// PutPack stores a finished pack. A pack is never replaced.
func (r *Repository) PutPack(ctx context.Context, w *PackWriter) (int64, error) {
	if err := r.store.Put(ctx, w.key, bytes.NewReader(w.buf), storage.PutOptions{IfAbsent: true}); err != nil {
		return 0, fmt.Errorf("put %s: %w", w.key, err)
	}
	return int64(len(w.buf)), nil
}

// Pack reading.

// Pack is an opened pack: its blocks can be read one by one.
type Pack struct {
	r    *Repository
	Key  string
	aead cipher.AEAD
	// DataStart is the offset of its first block.
	DataStart int64
	dk        []byte
	// wrapped is its data key as stored.
	wrapped []byte
}

// OpenPack reads and verifies a pack's header (its writer's signature over
// its key and head) and decrypts its data key.
func (r *Repository) OpenPack(ctx context.Context, key string) (*Pack, error) {
	if _, _, err := ParsePackKey(key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIntegrity, err)
	}
	b, err := r.readRange(ctx, key, 0, MaxSignedHeaderSize+1024)
	if err != nil {
		return nil, err
	}
	h, err := ParseObjectHeader(b)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", key, err)
	}
	if err := r.verifyHeader(ctx, key, h, b); err != nil {
		return nil, fmt.Errorf("pack %s: %w", key, err)
	}
	if h.Encrypted != r.Config.Encrypted() {
		return nil, fmt.Errorf("%w: pack %s: its encryption does not match the repository's", ErrIntegrity, key)
	}
	if h.PlainSize < int64(len(packMagic)+1) || h.PlainSize > maxPackHead {
		return nil, fmt.Errorf("%w: pack %s: head of %d bytes", ErrIntegrity, key, h.PlainSize)
	}
	end := int64(h.Size()) + h.PlainSize
	if int64(len(b)) < end {
		more, err := r.readRange(ctx, key, int64(len(b)), end-int64(len(b)))
		if err != nil {
			return nil, err
		}
		b = append(b, more...)
	}
	if int64(len(b)) < end {
		return nil, fmt.Errorf("%w: pack %s is shorter than its head", ErrIntegrity, key)
	}
	head := b[h.Size():end]
	if sha256.Sum256(head) != h.SHA256 {
		return nil, fmt.Errorf("%w: pack %s: head does not match its signed checksum", ErrIntegrity, key)
	}
	if string(head[:4]) != packMagic {
		return nil, fmt.Errorf("%w: pack %s: bad magic", ErrIntegrity, key)
	}
	if head[4] != packVersion {
		return nil, fmt.Errorf("%w: pack %s has version %d, this walvault reads %d", ErrUnsupportedFormat, key, head[4], packVersion)
	}
	wrapped := head[5:]
	var dk []byte
	if h.Encrypted {
		if len(r.opts.Identities) == 0 {
			return nil, fmt.Errorf("%w: set WALVAULT_AGE_IDENTITY_FILE or --age-identity-file", ErrNoIdentity)
		}
		ar, err := age.Decrypt(bytes.NewReader(wrapped), r.opts.Identities...)
		if err != nil {
			var noMatch *age.NoIdentityMatchError
			if errors.As(err, &noMatch) {
				return nil, fmt.Errorf("pack %s: %w", key, ErrWrongKey)
			}
			return nil, fmt.Errorf("%w: pack %s: decrypt key: %v", ErrIntegrity, key, err)
		}
		dk, err = io.ReadAll(io.LimitReader(ar, 64))
		if err != nil {
			return nil, fmt.Errorf("%w: pack %s: decrypt key: %v", ErrIntegrity, key, err)
		}

	} else {
		dk = wrapped
	}
	if len(dk) != 32 {
		return nil, fmt.Errorf("%w: pack %s: key of %d bytes", ErrIntegrity, key, len(dk))
	}
	aead, err := newBlockAEAD(dk)
	if err != nil {
		return nil, err
	}
	return &Pack{r: r, Key: key, aead: aead, DataStart: end, dk: dk, wrapped: wrapped}, nil
}

// wrappedToContentKey reports whether an age-wrapped pack key opens with
// a content key r holds.
func (r *Repository) wrappedToContentKey(wrapped []byte) bool {
	for _, ck := range r.contentKeys() {
		if _, err := age.Decrypt(bytes.NewReader(wrapped), &contentIdentity{kek: subKey(ck, fileListDomain)}); err == nil {
			return true
		}
	}
	return false
}

func (r *Repository) readRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	rc, err := r.store.GetRange(ctx, key, off, n)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, n))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// ReadRange reads n stored bytes of the pack from block offset off: one
// or several neighbouring blocks, to open with OpenBlock.
func (p *Pack) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > MaxPackSize || n > MaxPackSize {
		return nil, fmt.Errorf("%w: pack %s: range %d+%d outside its blocks", ErrIntegrity, p.Key, off, n)
	}
	b, err := p.r.readRange(ctx, p.Key, p.DataStart+off, n)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != n {
		return nil, fmt.Errorf("%w: pack %s is shorter than its file list says (%d bytes at %d, got %d)", ErrIntegrity, p.Key, n, off, len(b))
	}
	return b, nil
}

// OpenFrame authenticates, decrypts and decompresses the stored frame
// sealed, found at offset off in the pack, and returns its blocks (slices
// of one buffer).
func (p *Pack) OpenFrame(sealed []byte, off int64) ([][]byte, error) {
	if len(sealed) > maxSealedFrame || off < 0 {
		return nil, fmt.Errorf("%w: pack %s: frame at %d of %d bytes", ErrIntegrity, p.Key, off, len(sealed))
	}
	var nb [12]byte
	var ab [128]byte
	nonce, aad := blockNonceAAD(p.Key, off, nb[:0], ab[:0])
	z, err := p.aead.Open(make([]byte, 0, len(sealed)), nonce, sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: pack %s: the frame at %d does not authenticate (damaged or replaced)", ErrIntegrity, p.Key, off)
	}
	bad := func() ([][]byte, error) {
		return nil, fmt.Errorf("%w: pack %s: the frame at %d does not decompress to blocks", ErrIntegrity, p.Key, off)
	}
	if !frameBounded(z) {
		return bad()
	}
	plain, err := p.r.dec.DecodeAll(z, make([]byte, 0, maxFrameSize))
	if err != nil || len(plain) > maxFrameSize || len(plain) < 1 {
		return bad()
	}
	n := int(plain[0])
	if n == 0 || n > FrameBlocks || len(plain) < 1+2*n {
		return bad()
	}
	out := make([][]byte, n)
	at := 1 + 2*n
	for i := range out {
		l := int(binary.BigEndian.Uint16(plain[1+2*i:]))
		if l > BlockSize || at+l > len(plain) {
			return bad()
		}
		out[i] = plain[at : at+l : at+l]
		at += l
	}
	if at != len(plain) {
		return bad()
	}
	return out, nil
}

// maxZstdBlocks bounds the zstd blocks of one frame: a frame's plaintext
// (at most maxFrameSize) needs two of 128 KiB; a block decodes to at most
// 128 KiB, so a frame that passes frameBounded decodes to at most 8 MiB.
const maxZstdBlocks = 64

// frameBounded reports whether z is one zstd frame whose decoding cannot
// take more memory than a frame of blocks needs, read from its headers
// before anything is decoded: the decoder allocates a frame's declared
// content size at once (up to the repository's 1 GiB limit), so a few
// bytes of a frame sealed by a compromised writer, or by anyone in a
// repository without encryption, where the data keys are in the clear,
// would otherwise make a restore allocate a gigabyte per frame.
func frameBounded(z []byte) bool {
	var h zstd.Header
	if err := h.Decode(z); err != nil || h.Skippable || h.DictionaryID != 0 ||
		(h.HasFCS && h.FrameContentSize > maxFrameSize) || (!h.SingleSegment && h.WindowSize > windowSize) {
		return false
	}
	at := h.HeaderSize
	for n := 0; ; n++ {
		if n == maxZstdBlocks || len(z)-at < 3 {
			return false
		}
		bh := uint32(z[at]) | uint32(z[at+1])<<8 | uint32(z[at+2])<<16
		at += 3
		switch size := int(bh >> 3); (bh >> 1) & 3 {
		case 0, 2: // raw, compressed
			at += size
		case 1: // run of one byte
			at++
		default:
			return false
		}
		if at > len(z) {
			return false
		}
		if bh&1 == 1 {
			break
		}
	}
	if h.HasCheckSum {
		at += 4
	}
	return at == len(z)
}

// OpenBlock opens the frame sealed (at off) and returns its block index.
func (p *Pack) OpenBlock(sealed []byte, off int64, index uint8) ([]byte, error) {
	blocks, err := p.OpenFrame(sealed, off)
	if err != nil {
		return nil, err
	}
	if int(index) >= len(blocks) {
		return nil, fmt.Errorf("%w: pack %s: the frame at %d holds %d blocks, not block %d", ErrIntegrity, p.Key, off, len(blocks), index)
	}
	return blocks[index], nil
}

// File lists.

// BlockRef says where a block is stored: block Index of the frame of
// Length bytes at Offset in pack Pack.
type BlockRef struct {
	ID BlockID
	// Pack indexes FileList.Packs.
	Pack   uint32
	Offset int64
	Length int32
	Index  uint8
}

// FileEntry is one member of a tar stream.
type FileEntry struct {
	Name     string
	Typeflag byte
	Mode     int64
	UID, GID int
	ModTime  int64 // Unix seconds
	Linkname string
	Size     int64
	// Blocks of a regular file: ceil(Size/BlockSize) of them.
	Blocks []BlockRef
}

// IsRegular reports whether the entry is a regular file (with blocks).
func (e *FileEntry) IsRegular() bool { return e.Typeflag == '0' || e.Typeflag == 0 }

// FileArchive is the list of members of one tar stream.
type FileArchive struct {
	Name    string
	Entries []FileEntry
}

// FileList is a block backup's complete list of files.
type FileList struct {
	BackupID string
	// ContentKey names the content key its block ids were made with.
	ContentKey ContentKeyID
	// Packs are the packs its blocks are in (of this backup and of older
	// ones).
	Packs    []string
	Archives []FileArchive
	// ListBlocks are the pieces of the runs of a version-2 list
	// (blocks_runs.go): its own blocks, in packs like the others.
	ListBlocks []BlockRef
	// spans: where each archive's entries begin in the encoded list.
	spans []archiveSpan
}

// archiveSpan is the offset of an archive's first entry in an encoded
// file list, and its number of entries.
type archiveSpan struct{ off, n int }

const (
	maxFileName = 1 << 16
	maxFileSize = 1 << 46
)

// MarshalBinary encodes the file list (docs/FORMAT.md).
func (fl *FileList) MarshalBinary() []byte {
	version := byte(fileVersion)
	if len(fl.ListBlocks) > 0 {
		version = expandedVersion
	}
	b := appendListHead(make([]byte, 0, 1024), version, fl.BackupID, fl.ContentKey, fl.Packs, len(fl.Archives))
	for _, a := range fl.Archives {
		b = appendString(b, a.Name)
		b = binary.AppendUvarint(b, uint64(len(a.Entries)))
		var c continuation
		for i := range a.Entries {
			b = appendFileEntry(b, &a.Entries[i], &c)
		}
	}
	if len(fl.ListBlocks) > 0 {
		b = binary.AppendUvarint(b, uint64(len(fl.ListBlocks)))
		var c continuation
		for _, br := range fl.ListBlocks {
			b = appendRef(b, br, &c)
		}
	}
	return b
}

// appendListHead encodes a file list's head: magic, version, backup id,
// content key id, pack table and archive count.
func appendListHead(b []byte, version byte, id string, key ContentKeyID, packs []string, archives int) []byte {
	b = append(b, fileMagic...)
	b = append(b, version)
	b = appendString(b, id)
	b = append(b, key[:]...)
	b = binary.AppendUvarint(b, uint64(len(packs)))
	for _, p := range packs {
		b = appendString(b, p)
	}
	return binary.AppendUvarint(b, uint64(archives))
}

// appendFileEntry encodes one entry of an archive; c is the archive's
// previous block reference.
func appendFileEntry(b []byte, e *FileEntry, c *continuation) []byte {
	b = appendEntryHead(b, e)
	if e.IsRegular() {
		for _, br := range e.Blocks {
			b = appendRef(b, br, c)
		}
	}
	return b
}

// appendEntryHead encodes an entry up to its block references.
func appendEntryHead(b []byte, e *FileEntry) []byte {
	b = append(b, e.Typeflag)
	b = appendString(b, e.Name)
	b = appendString(b, e.Linkname)
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.ModTime)
	return binary.AppendUvarint(b, uint64(e.Size))
}

// appendRef encodes one block reference after c's.
func appendRef(b []byte, br BlockRef, c *continuation) []byte {
	b = append(b, br.ID[:]...)
	switch {
	case c.sameFrame(br):
		b = append(b, 0)
	case c.nextFrame(br):
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(br.Length))
	default:
		b = binary.AppendUvarint(b, uint64(br.Pack)+2)
		b = binary.AppendUvarint(b, uint64(br.Offset))
		b = binary.AppendUvarint(b, uint64(br.Length))
		b = append(b, br.Index)
	}
	c.set(br)
	return b
}

// continuation tracks the previous block reference of an archive: the
// next block of the same frame is encoded as 0, a block of the frame
// stored right after it (same pack) as 1 and the frame's length; others
// in full. Packs are written in file order, so most blocks take one byte
// after their id.
type continuation struct {
	ok     bool
	pack   uint32
	offset int64
	length int32
	index  uint8
}

func (c *continuation) sameFrame(br BlockRef) bool {
	return c.ok && br.Pack == c.pack && br.Offset == c.offset && br.Length == c.length && int(br.Index) == int(c.index)+1
}

func (c *continuation) nextFrame(br BlockRef) bool {
	return c.ok && br.Pack == c.pack && br.Offset == c.offset+int64(c.length) && br.Index == 0
}

func (c *continuation) set(br BlockRef) {
	c.ok, c.pack, c.offset, c.length, c.index = true, br.Pack, br.Offset, br.Length, br.Index
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type flReader struct {
	b   []byte
	err error
}

func (r *flReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: file list: %s", ErrIntegrity, fmt.Sprintf(format, args...))
	}
}

func (r *flReader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated %s", what)
		return 0
	}
	if n != uvarintLen(v) {
		r.fail("%s not in its shortest encoding", what)
		return 0
	}
	if v > max {
		r.fail("%s %d exceeds %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// uvarintLen is the length of v's shortest uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func (r *flReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated %s", what)
		return 0
	}
	if n != uvarintLen(uint64(v<<1)^uint64(v>>63)) {
		r.fail("%s not in its shortest encoding", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *flReader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated %s", what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *flReader) string(what string) string {
	n := r.uvarint(what+" length", maxFileName)
	return string(r.bytes(what, int(n)))
}

// count reads a number of items of at least minSize encoded bytes each,
// refusing more than the rest of the input could hold.
func (r *flReader) count(what string, minSize int) int {
	return int(r.uvarint(what, uint64(len(r.b)/minSize)))
}

// ParseFileList decodes and checks a file list: every block reference
// names a pack of its table, every regular file has as many blocks as its
// size needs, and names are plain.
func ParseFileList(data []byte) (*FileList, error) {
	return parseFileList(data, nil)
}

// parseFileList is ParseFileList; with visit, the entries are handed to
// visit one by one (with the packs of fl read already, and the number of
// bytes of data read so far) and not kept: e and its blocks are reused
// for the next entry.
func parseFileList(data []byte, visit func(fl *FileList, archive string, e *FileEntry, done int) error) (*FileList, error) {
	r := &flReader{b: data}
	var blocks []BlockRef
	if len(data) < 5 || string(data[:4]) != fileMagic {
		return nil, fmt.Errorf("%w: file list: bad magic", ErrIntegrity)
	}
	switch data[4] {
	case fileVersion, expandedVersion:
	case fileVersion2:
		return nil, fmt.Errorf("%w: a file list of version 2 is read through its repository (its runs are in packs)", ErrUnsupportedFormat)
	default:
		return nil, fmt.Errorf("%w: file list version %d, this walvault reads %d and %d", ErrUnsupportedFormat, data[4], fileVersion, fileVersion2)
	}
	r.b = data[5:]
	fl := &FileList{BackupID: r.string("backup id")}
	copy(fl.ContentKey[:], r.bytes("content key id", len(fl.ContentKey)))
	np := r.count("pack count", 2)
	for range np {
		p := r.string("pack key")
		if r.err == nil {
			if _, _, err := ParsePackKey(p); err != nil {
				r.fail("%v", err)
			}
		}
		fl.Packs = append(fl.Packs, p)
	}
	na := r.count("archive count", 2)
	for range na {
		a := FileArchive{Name: r.string("archive name")}
		var c continuation
		ne := r.count("entry count", 8)
		fl.spans = append(fl.spans, archiveSpan{off: len(data) - len(r.b), n: ne})
		for range ne {
			if r.err != nil {
				break
			}
			var e FileEntry
			blocks = parseEntry(r, &c, &e, len(fl.Packs), blocks, visit != nil)
			if visit == nil {
				a.Entries = append(a.Entries, e)
			} else if r.err == nil {
				if err := visit(fl, a.Name, &e, len(data)-len(r.b)); err != nil {
					return nil, err
				}
			}
		}
		fl.Archives = append(fl.Archives, a)
	}
	if data[4] == expandedVersion && r.err == nil {
		n := r.count("list block count", 17)
		fl.ListBlocks = make([]BlockRef, n)
		var c continuation
		for i := range fl.ListBlocks {
			parseRef(r, &c, &fl.ListBlocks[i], len(fl.Packs), "file list run")
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: file list: %d bytes after its end", ErrIntegrity, len(r.b))
	}
	return fl, nil
}

// parseEntry reads one file list entry into e; c is its archive's
// continuation. With reuse, e.Blocks is blocks, grown as needed (valid
// until the next call), else a new slice. It returns blocks.
func parseEntry(r *flReader, c *continuation, e *FileEntry, npacks int, blocks []BlockRef, reuse bool) []BlockRef {
	parseEntryHead(r, e)
	if e.IsRegular() && r.err == nil {
		nb := (e.Size + BlockSize - 1) / BlockSize
		if nb > int64(len(r.b)/(16+1)) {
			r.fail("%s: %d blocks cannot fit", e.Name, nb)
			return blocks
		}
		if reuse {
			// parseRef sets every field.
			blocks = slices.Grow(blocks[:0], int(nb))[:nb]
			e.Blocks = blocks
		} else {
			e.Blocks = make([]BlockRef, nb)
		}
		for i := range e.Blocks {
			parseRef(r, c, &e.Blocks[i], npacks, e.Name)
		}
	}
	return blocks
}

// parseEntryHead reads an entry up to its block references.
func parseEntryHead(r *flReader, e *FileEntry) {
	if t := r.bytes("type", 1); t != nil {
		e.Typeflag = t[0]
	}
	e.Name = r.string("name")
	e.Linkname = r.string("link name")
	e.Mode = int64(r.uvarint("mode", 1<<32))
	e.UID = int(r.uvarint("uid", 1<<32))
	e.GID = int(r.uvarint("gid", 1<<32))
	e.ModTime = r.varint("time")
	e.Size = int64(r.uvarint("size", maxFileSize))
	if r.err == nil && (e.Name == "" || strings.ContainsRune(e.Name, 0)) {
		r.fail("entry with an empty or NUL-bearing name")
	}
}

// parseRef reads one block reference after c's into br; name is the
// file it belongs to, for errors.
func parseRef(r *flReader, c *continuation, br *BlockRef, npacks int, name string) {
	copy(br.ID[:], r.bytes("block id", 16))
	switch tag := r.uvarint("pack index", uint64(npacks)+1); {
	case r.err != nil:
	case tag == 0:
		if !c.ok || c.index+1 >= FrameBlocks {
			r.fail("%s: a block continues no frame", name)
		}
		br.Pack, br.Offset, br.Length, br.Index = c.pack, c.offset, c.length, c.index+1
	case tag == 1:
		if !c.ok {
			r.fail("%s: a frame follows no frame", name)
		}
		br.Pack, br.Offset, br.Index = c.pack, c.offset+int64(c.length), 0
		br.Length = int32(r.uvarint("length", maxSealedFrame))
	default:
		br.Pack = uint32(tag - 2)
		br.Offset = int64(r.uvarint("offset", MaxPackSize))
		br.Length = int32(r.uvarint("length", maxSealedFrame))
		if t := r.bytes("index", 1); t != nil {
			br.Index = t[0]
		}
		if r.err == nil && (c.sameFrame(*br) || c.nextFrame(*br)) {
			r.fail("%s: a block not written in its short form", name)
		}
	}
	if r.err == nil && (br.Offset > MaxPackSize || br.Index >= FrameBlocks) {
		r.fail("%s: block at %d, index %d", name, br.Offset, br.Index)
	}
	c.set(*br)
}

// contentRecipient encrypts an age file key to the content key, so that
// writers can read file lists (and nothing else).
type contentRecipient struct {
	kek    [32]byte
	labels []string
}

func (c *contentRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, _, err := c.WrapWithLabels(fileKey)
	return s, err
}

// WrapWithLabels claims the labels of the other recipients: the content
// key is symmetric, so it is as strong as any of them, post-quantum ones
// included, and age refuses to mix recipients with different labels.
func (c *contentRecipient) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	aead, err := newBlockAEAD(c.kek[:])
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	body := aead.Seal(nil, nonce, fileKey, []byte(contentStanza))
	return []*age.Stanza{{Type: contentStanza, Args: []string{hex.EncodeToString(nonce)}, Body: body}}, c.labels, nil
}

type contentIdentity struct{ kek [32]byte }

func (c *contentIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	aead, err := newBlockAEAD(c.kek[:])
	if err != nil {
		return nil, err
	}
	for _, s := range stanzas {
		if s.Type != contentStanza || len(s.Args) != 1 {
			continue
		}
		nonce, err := hex.DecodeString(s.Args[0])
		if err != nil || len(nonce) != aead.NonceSize() {
			continue
		}
		if k, err := aead.Open(nil, nonce, s.Body, []byte(contentStanza)); err == nil {
			return k, nil
		}
	}
	return nil, age.ErrIncorrectIdentity
}

// withContentKey opens another handle on r whose objects are also
// encrypted to, and readable with, the content key.
func (r *Repository) withContentKey() (*Repository, error) {
	opts := r.opts
	if ck, ok := r.contentKey(); ok && r.Config.Encrypted() {
		kek := subKey(ck, fileListDomain)
		opts.Identities = append([]age.Identity(nil), opts.Identities...)
		for _, other := range r.contentKeys()[1:] {
			opts.Identities = append(opts.Identities, &contentIdentity{kek: subKey(other, fileListDomain)})
		}
		var labels []string
		for _, rc := range opts.Recipients {
			if l, ok := rc.(age.RecipientWithLabels); ok {
				_, labels, _ = l.WrapWithLabels(make([]byte, 16))
				break
			}
		}
		if len(opts.Recipients) > 0 {
			opts.Recipients = append(append([]age.Recipient(nil), opts.Recipients...), &contentRecipient{kek: kek, labels: labels})
		}
		opts.Identities = append(opts.Identities, &contentIdentity{kek: kek})
	}
	return newRepository(r.store, r.Config, opts)
}

// PutFileList stores a backup's file list. It returns the object's info.
func (r *Repository) PutFileList(ctx context.Context, fl *FileList) (ObjectInfo, error) {
	if !ValidBackupID(fl.BackupID) {
		return ObjectInfo{}, fmt.Errorf("invalid backup id %q", fl.BackupID)
	}
	if len(fl.ListBlocks) > 0 {
		return ObjectInfo{}, errors.New("an expanded file list is never stored")
	}
	cr, err := r.withContentKey()
	if err != nil {
		return ObjectInfo{}, err
	}
	defer cr.Close()
	return cr.Put(ctx, FileListKey(fl.BackupID), fl.MarshalBinary(), storage.PutOptions{IfAbsent: true})
}

// FileList reads backup id's file list, with an identity or, on a writer,
// with the content key.
func (r *Repository) FileList(ctx context.Context, id string) (*FileList, error) {
	if !ValidBackupID(id) {
		return nil, fmt.Errorf("backup id %q is not of the form 20060102T150405Z", id)
	}
	f, data, err := r.mapFileList(ctx, id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer unix.Munmap(data)
	fl, err := ParseFileList(data)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	if fl.BackupID != id {
		return nil, fmt.Errorf("%w: file list of backup %s names backup %q", ErrIntegrity, id, fl.BackupID)
	}
	return fl, nil
}

// FileListIndex indexes the blocks of backup id's file list (read as
// FileList reads it) without holding the list in memory: the object is
// opened into a temporary file (mapped while it is parsed, entry by
// entry), the index itself is in another (BlockIndex). It returns the
// content key the list's ids were made with.
func (r *Repository) FileListIndex(ctx context.Context, id string) (*BlockIndex, ContentKeyID, error) {
	x, _, key, err := r.fileListIndex(ctx, id, false)
	return x, key, err
}

// FileListIndexPrior is FileListIndex, and also returns where the blocks
// of each of the list's files are (PriorFiles), for an incremental
// backup against it. Both must be closed.
func (r *Repository) FileListIndexPrior(ctx context.Context, id string) (*BlockIndex, *PriorFiles, ContentKeyID, error) {
	return r.fileListIndex(ctx, id, true)
}

func (r *Repository) fileListIndex(ctx context.Context, id string, withPrior bool) (*BlockIndex, *PriorFiles, ContentKeyID, error) {
	f, data, err := r.mapStoredFileList(ctx, id)
	if err != nil {
		return nil, nil, ContentKeyID{}, err
	}
	defer f.Close()
	defer unix.Munmap(data)
	b, err := NewBlockIndexBuilder()
	if err != nil {
		return nil, nil, ContentKeyID{}, err
	}
	var prior *PriorFiles
	if withPrior {
		// The builder's records are written in the list's order: each
		// file's blocks are a run of them.
		b.keep = true
		prior = &PriorFiles{files: map[string]priorSpan{}}
	}
	var remap []uint32
	setPacks := func(packs []string) {
		remap = make([]uint32, len(packs))
		for i, p := range packs {
			remap[i] = b.pack(p)
		}
	}
	add := func(archive string, e *FileEntry) error {
		if prior != nil && e.IsRegular() && e.Size%BlockSize == 0 && e.Size <= MaxRelationSegment {
			prior.files[priorKey(archive, e.Name)] = priorSpan{first: int64(b.n), n: int32(len(e.Blocks))}
		}
		for _, br := range e.Blocks {
			if int(br.Pack) >= len(remap) {
				return fmt.Errorf("%w: file list of backup %s: bad block reference", ErrIntegrity, id)
			}
			if err := b.add(br, remap[br.Pack], id); err != nil {
				return err
			}
		}
		return nil
	}
	var key ContentKeyID
	if data[4] == fileVersion2 {
		// Read as it is expanded, without the expanded copy.
		var cr *Repository
		if cr, err = r.withContentKey(); err == nil {
			archive := ""
			err = cr.walkFileList(ctx, id, data, listVisitor{
				head: func(fl *FileList, _ int) error {
					key = fl.ContentKey
					setPacks(fl.Packs)
					return nil
				},
				archive: func(name string, _ int) error { archive = name; return nil },
				entry:   func(e *FileEntry) error { return add(archive, e) },
				// The pieces of its runs: the next list names those of
				// unchanged runs again.
				pieces: func(list []BlockRef) error { return add("", &FileEntry{Typeflag: '5', Blocks: list}) },
			})
			cr.Close()
		}
	} else {
		page := os.Getpagesize()
		dropped := 0
		var fl *FileList
		fl, err = parseFileList(data, func(fl *FileList, archive string, e *FileEntry, done int) error {
			// The pages read are dropped from the mapping (not from the
			// file) as the parse goes: they would count as the process's
			// memory.
			if done-dropped >= 8<<20 {
				end := done / page * page
				unix.Madvise(data[dropped:end], unix.MADV_DONTNEED)
				dropped = end
			}
			if remap == nil {
				setPacks(fl.Packs)
			}
			return add(archive, e)
		})
		if err == nil && fl.BackupID != id {
			err = fmt.Errorf("%w: file list of backup %s names backup %q", ErrIntegrity, id, fl.BackupID)
		}
		if err == nil {
			key = fl.ContentKey
		}
	}
	if err != nil {
		b.keep = false
		b.Close()
		return nil, nil, ContentKeyID{}, fmt.Errorf("backup %s: %w", id, err)
	}
	x, err := b.Finish()
	if err != nil {
		if b.keep {
			b.f.Close()
		}
		return nil, nil, ContentKeyID{}, err
	}
	if prior != nil {
		prior.f, prior.packs = b.f, x.packs
		b.f = nil
	}
	return x, prior, key, nil
}

// ArchiveBlocks is the Layout of an archive stored as blocks (its members
// are in the backup's file list; it has no chunks).
const ArchiveBlocks = "blocks"

// BlockStats counts what a block backup stored.
type BlockStats struct {
	// Blocks and Bytes: every block of the backup, and their plaintext.
	Blocks int64 `json:"blocks"`
	Bytes  int64 `json:"bytes"`
	// NewBlocks were stored by this backup, in NewBytes of packs.
	NewBlocks int64 `json:"new_blocks"`
	NewBytes  int64 `json:"new_bytes"`
	// SharedBlocks were stored by older backups: SharedBytes of their
	// packs.
	SharedBlocks int64 `json:"shared_blocks"`
	SharedBytes  int64 `json:"shared_bytes"`
	// RepeatedBlocks repeat a block of this same backup.
	RepeatedBlocks int64 `json:"repeated_blocks"`
	// The file list's runs (version 2): pieces stored by this backup
	// (their packs count in NewBytes) and pieces of older backups' runs
	// named again.
	ListNewPieces    int64 `json:"list_new_pieces,omitempty"`
	ListSharedPieces int64 `json:"list_shared_pieces,omitempty"`
	// IncrementalFrom is the backup PostgreSQL (17 and later) took this
	// one incrementally against: it sent only the blocks its WAL
	// summaries say changed since, IncrementalBlocks of them, for the
	// IncrementalFiles relation files it sent as INCREMENTAL files; their
	// other blocks are IncrementalFrom's. "" for a backup of every block.
	IncrementalFrom   string `json:"incremental_from,omitempty"`
	IncrementalFiles  int64  `json:"incremental_files,omitempty"`
	IncrementalBlocks int64  `json:"incremental_blocks,omitempty"`
	// RefreshedFrom is the previous backup, set when this one shared no
	// block with it because it used blocks older than the refresh period
	// (basebackup.Options.RefreshAfter).
	RefreshedFrom string `json:"refreshed_from,omitempty"`
}

// LatestBlockBackup returns the newest complete backup (with a manifest)
// that has a file list, or "" when there is none. It needs no identity.
func (r *Repository) LatestBlockBackup(ctx context.Context) (string, error) {
	objs, err := r.BackupObjects(ctx)
	if err != nil {
		return "", err
	}
	manifest, files := map[string]bool{}, map[string]bool{}
	for _, o := range objs {
		switch o.Kind {
		case BackupManifestObject:
			manifest[o.ID] = true
		case BackupFileListObject:
			files[o.ID] = true
		}
	}
	latest := ""
	for id := range files {
		if manifest[id] && id > latest {
			latest = id
		}
	}
	return latest, nil
}

// ResealBlockObject seals a block backup's object under key again with
// r's recipients and writer (rekey): a file list is read and stored again
// (encrypted to the content key too); a pack gets a new head, its data
// key wrapped to the current recipients, and keeps its blocks as they are
// (offsets count from the first block); a chunk of a server
// backup_manifest is sealed again to the content key too. handled is false
// for any other key. n is the plaintext bytes resealed.
func (r *Repository) ResealBlockObject(ctx context.Context, key string) (n int64, handled bool, err error) {
	if id, kind := parseBackupKey(key); kind == BackupFileListObject {
		// Checked whole (runs too) before it is stored again as it is.
		if _, err := r.FileListPacks(ctx, id); err != nil {
			return 0, true, err
		}
		cr, err := r.withContentKey()
		if err != nil {
			return 0, true, err
		}
		defer cr.Close()
		f, h, err := cr.getToFile(ctx, key)
		if err != nil {
			return 0, true, err
		}
		defer f.Close()
		_, err = cr.putPlainFile(ctx, key, func() io.Reader { return io.NewSectionReader(f, 0, h.PlainSize) }, storage.PutOptions{})
		return h.PlainSize, true, err
	}
	if id, kind := parseBackupKey(key); kind == BackupChunkObject && strings.HasPrefix(key, BackupArchiveFolder(id, ServerManifestArchive)) {
		// The server's backup_manifest stays readable by writers (the
		// next backup uploads it to PostgreSQL 17 for an incremental
		// backup: WriterReadable).
		plain, h, err := r.Get(ctx, key)
		if storage.IsNotExist(err) {
			return 0, true, nil // removed meanwhile (an expired backup)
		}
		if err != nil {
			return 0, true, err
		}
		cr, err := r.withContentKey()
		if err != nil {
			return 0, true, err
		}
		defer cr.Close()
		_, err = cr.PutSum(ctx, key, plain, h.SHA256, storage.PutOptions{})
		return int64(len(plain)), true, err
	}
	if !strings.HasPrefix(key, PackPrefix) {
		return 0, false, nil
	}
	p, err := r.OpenPack(ctx, key)
	if err != nil {
		return 0, true, err
	}
	rc, err := r.store.Get(ctx, key)
	if err != nil {
		return 0, true, fmt.Errorf("get %s: %w", key, err)
	}
	old, err := io.ReadAll(io.LimitReader(rc, MaxPackSize+1))
	rc.Close()
	if err != nil {
		return 0, true, fmt.Errorf("get %s: %w", key, err)
	}
	if int64(len(old)) < p.DataStart || len(old) > MaxPackSize {
		return 0, true, fmt.Errorf("%w: pack %s changed while it was read", ErrIntegrity, key)
	}
	hr := r
	if r.Config.Encrypted() && r.wrappedToContentKey(p.wrapped) {
		// A pack of file list runs stays readable by writers.
		cr, err := r.withContentKey()
		if err != nil {
			return 0, true, err
		}
		defer cr.Close()
		hr = cr
	}
	hh, err := hr.packHead(key, p.dk)
	if err != nil {
		return 0, true, err
	}
	blocks := old[p.DataStart:]
	if err := r.store.Put(ctx, key, bytes.NewReader(append(hh, blocks...)), storage.PutOptions{}); err != nil {
		return 0, true, fmt.Errorf("put %s: %w", key, err)
	}
	return int64(len(blocks)), true, nil
}
