package basebackup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/repo"
)

// Incremental backups (PostgreSQL 17 and later, summarize_wal on): the
// previous block backup's backup_manifest is sent with UPLOAD_MANIFEST,
// then BASE_BACKUP (…, INCREMENTAL) sends each relation segment whose
// blocks changed, or that did not change, as an INCREMENTAL.<name> file:
//
//	magic 0xd3ae1f0d, block count n, truncation length t (uint32 each,
//	the server's byte order: little-endian on every platform PostgreSQL
//	runs walvault on), n block numbers relative to the segment, zeros up
//	to a multiple of 8 KiB when n > 0, then the n blocks.
//
// walvault never stores such a file: the block writer turns it into the
// whole segment's file list entry at once, taking the blocks that did not
// change from the previous backup's file list (repo.PriorFiles), as
// pg_combinebackup would rebuild it. Blocks below t that were not sent
// come from the previous backup; a block at or past t that was not sent
// is zeros; the file is max(t, last sent + 1) blocks long. So every
// backup still has a complete file list of its own: no chain at restore.
//
// The server's backup_label then has "INCREMENTAL FROM" lines that make
// PostgreSQL refuse to start, and its manifest names the INCREMENTAL
// files: both are rewritten as pg_combinebackup writes them (fullManifest).

// incrementalMagic begins an INCREMENTAL file.
const incrementalMagic = 0xd3ae1f0d

// relsegBlocks is the most blocks of one relation segment.
const relsegBlocks = repo.MaxRelationSegment / repo.BlockSize

// maxIncrementalLabel bounds a backup_label read whole to rewrite it.
const maxIncrementalLabel = 1 << 20

// incremental is what a block writer needs for an incremental backup.
type incremental struct {
	priorID string
	prior   *repo.PriorFiles
	// sizes: each rebuilt file's size, by its path in the manifest.
	sizes map[string]int64
	// label: backup_label without its INCREMENTAL lines (nil until read).
	label   []byte
	scratch []repo.PriorBlock
	// rebuilt, sent: files rebuilt, and blocks the server sent for them.
	rebuilt, sent int64
}

// incrementalTarget returns the name of the whole file an INCREMENTAL
// file stands for.
func incrementalTarget(name string) (string, bool) {
	dir, base := path.Split(name)
	rest, ok := strings.CutPrefix(base, "INCREMENTAL.")
	if !ok || rest == "" {
		return "", false
	}
	return dir + rest, true
}

// manifestPath is the path of an archive's member in backup_manifest.
func manifestPath(archive, name string) string {
	if archive == "base.tar" {
		return name
	}
	return "pg_tblspc/" + strings.TrimSuffix(archive, ".tar") + "/" + name
}

// readIncrementalHeader reads an INCREMENTAL file's header, and the
// padding after it, from r; size is the file's size, which must be the
// header's and its blocks'. The block numbers are strictly increasing.
func readIncrementalHeader(r io.Reader, size int64) (blocks []uint32, truncation uint32, err error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, 0, fmt.Errorf("header: %w", err)
	}
	le := binary.LittleEndian
	magic, n, t := le.Uint32(h[0:]), le.Uint32(h[4:]), le.Uint32(h[8:])
	if magic != incrementalMagic {
		return nil, 0, fmt.Errorf("magic %#x, want %#x", magic, incrementalMagic)
	}
	if n > relsegBlocks || t > relsegBlocks {
		return nil, 0, fmt.Errorf("%d blocks, truncation length %d: a segment has at most %d", n, t, relsegBlocks)
	}
	hdr := 12 + 4*int64(n)
	if n > 0 && hdr%repo.BlockSize != 0 {
		hdr += repo.BlockSize - hdr%repo.BlockSize
	}
	if want := hdr + int64(n)*repo.BlockSize; size != want {
		return nil, 0, fmt.Errorf("%d bytes, its header (%d blocks) makes it %d", size, n, want)
	}
	raw := make([]byte, 4*int(n))
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, 0, fmt.Errorf("block numbers: %w", err)
	}
	blocks = make([]uint32, n)
	for i := range blocks {
		blocks[i] = le.Uint32(raw[4*i:])
		if blocks[i] >= relsegBlocks || (i > 0 && blocks[i] <= blocks[i-1]) {
			return nil, 0, fmt.Errorf("block number %d (after %v) out of order or past a segment", blocks[i], blocks[max(0, i-1)])
		}
	}
	if _, err := io.CopyN(io.Discard, r, hdr-12-4*int64(n)); err != nil {
		return nil, 0, fmt.Errorf("header padding: %w", err)
	}
	return blocks, t, nil
}

// stripIncrementalLabel drops the "INCREMENTAL FROM" lines of an
// incremental backup's backup_label, as pg_combinebackup does.
func stripIncrementalLabel(label []byte) []byte {
	var out []byte
	for line := range bytes.Lines(label) {
		if bytes.HasPrefix(line, []byte("INCREMENTAL FROM ")) {
			continue
		}
		out = append(out, line...)
	}
	return out
}

// pgManifest is a backup_manifest (PostgreSQL's src/common/parse_manifest.c).
type pgManifest struct {
	Version          json.Number      `json:"PostgreSQL-Backup-Manifest-Version"`
	SystemIdentifier json.Number      `json:"System-Identifier"`
	Files            []pgManifestFile `json:"Files"`
	WALRanges        []struct {
		Timeline json.Number `json:"Timeline"`
		StartLSN string      `json:"Start-LSN"`
		EndLSN   string      `json:"End-LSN"`
	} `json:"WAL-Ranges"`
	Checksum string `json:"Manifest-Checksum"`
}

type pgManifestFile struct {
	Path              string      `json:"Path"`
	EncodedPath       string      `json:"Encoded-Path"`
	Size              json.Number `json:"Size"`
	LastModified      string      `json:"Last-Modified"`
	ChecksumAlgorithm string      `json:"Checksum-Algorithm"`
	Checksum          string      `json:"Checksum"`
}

// manifestBody returns the part of a manifest its checksum covers (up to
// and including its second-to-last newline) and the checksum's hex.
func manifestBody(m []byte) ([]byte, error) {
	last := bytes.LastIndexByte(bytes.TrimSuffix(m, []byte("\n")), '\n')
	if last < 0 || !bytes.HasSuffix(m, []byte("\n")) {
		return nil, errors.New("manifest without its checksum line")
	}
	return m[:last+1], nil
}

// fullManifest rewrites the manifest PostgreSQL sent for an incremental
// backup as the manifest of the whole data directory a restore writes,
// as pg_combinebackup does: each INCREMENTAL.<name> becomes <name> of its
// rebuilt size (sizes, by manifest path), without a checksum (its
// unchanged blocks were not read: their keyed ids, checked at restore,
// vouch for them); backup_label gets the rewritten label's size and
// CRC-32C. Every other entry, and the WAL ranges, stay as they were, and
// the manifest gets its new SHA-256 checksum.
func fullManifest(inc []byte, sizes map[string]int64, label []byte) ([]byte, error) {
	body, err := manifestBody(inc)
	if err != nil {
		return nil, err
	}
	var m pgManifest
	d := json.NewDecoder(bytes.NewReader(inc))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("backup_manifest: %w", err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != strings.ToLower(m.Checksum) {
		return nil, errors.New("backup_manifest: its checksum does not match")
	}
	if m.Version != "2" {
		return nil, fmt.Errorf("backup_manifest version %s, an incremental backup's is 2", m.Version)
	}
	var b bytes.Buffer
	str := func(s string) string {
		var sb strings.Builder
		e := json.NewEncoder(&sb)
		e.SetEscapeHTML(false)
		e.Encode(s)
		return strings.TrimSuffix(sb.String(), "\n")
	}
	fmt.Fprintf(&b, "{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": %s,\n\"Files\": [", m.SystemIdentifier)
	rebuilt := 0
	for i, f := range m.Files {
		p := f.Path
		if f.EncodedPath != "" {
			raw, err := hex.DecodeString(f.EncodedPath)
			if err != nil {
				return nil, fmt.Errorf("backup_manifest: bad Encoded-Path %q", f.EncodedPath)
			}
			p = string(raw)
		}
		size, err := strconv.ParseInt(string(f.Size), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("backup_manifest: %s: bad size %q", p, f.Size)
		}
		alg, sum := f.ChecksumAlgorithm, f.Checksum
		if target, ok := incrementalTarget(p); ok {
			s, known := sizes[target]
			if !known {
				return nil, fmt.Errorf("backup_manifest names %s, which the backup did not send", p)
			}
			p, size, alg, sum = target, s, "", ""
			rebuilt++
		} else if p == "backup_label" {
			if label == nil {
				return nil, errors.New("backup_manifest: backup_label was not rewritten")
			}
			c := crc32.Checksum(label, crc32.MakeTable(crc32.Castagnoli))
			size, alg, sum = int64(len(label)), "CRC32C", hex.EncodeToString(binary.LittleEndian.AppendUint32(nil, c))
		}
		if i > 0 {
			b.WriteString(",")
		}
		if utf8.ValidString(p) {
			fmt.Fprintf(&b, "\n{ \"Path\": %s, ", str(p))
		} else {
			fmt.Fprintf(&b, "\n{ \"Encoded-Path\": \"%s\", ", hex.EncodeToString([]byte(p)))
		}
		fmt.Fprintf(&b, "\"Size\": %d, \"Last-Modified\": %s", size, str(f.LastModified))
		if alg != "" {
			fmt.Fprintf(&b, ", \"Checksum-Algorithm\": %s, \"Checksum\": %s", str(alg), str(sum))
		}
		b.WriteString(" }")
	}
	if rebuilt != len(sizes) {
		return nil, fmt.Errorf("backup_manifest names %d INCREMENTAL files, the backup sent %d", rebuilt, len(sizes))
	}
	b.WriteString(" ],\n\"WAL-Ranges\": [")
	for i, w := range m.WALRanges {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n{ \"Timeline\": %s, \"Start-LSN\": %s, \"End-LSN\": %s }", w.Timeline, str(w.StartLSN), str(w.EndLSN))
	}
	b.WriteString("\n],\n")
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "\"Manifest-Checksum\": \"%s\"}\n", hex.EncodeToString(sum[:]))
	return b.Bytes(), nil
}

// summarizes reports whether the server can take incremental backups:
// PostgreSQL 17 or later with summarize_wal on. A failed SHOW only means
// no.
func summarizes(ctx context.Context, conn *pgconn.PgConn, major int) bool {
	if major < 17 {
		return false
	}
	s, err := replconn.Show(ctx, conn, "summarize_wal")
	return err == nil && s == "on"
}

// prepareIncremental sends backup prevID's backup_manifest to the server
// (UPLOAD_MANIFEST). It returns why an incremental backup cannot be
// taken, or "" when the server took the manifest; damaged is set when the
// reason is a damaged or replaced object; an error only when the
// connection failed.
//
// The previous backup must be of the server's current timeline. After a
// promotion (or a point-in-time restore that was promoted), blocks it
// holds may come from WAL the new timeline branched away from before, and
// PostgreSQL 17's own checks do not refuse every such case: the first
// backup on a new timeline reads every block.
func prepareIncremental(ctx context.Context, conn *pgconn.PgConn, r *repo.Repository, prevID string, timeline uint32) (reason string, damaged bool, err error) {
	m, err := r.BackupManifest(ctx, prevID)
	if err != nil {
		return fmt.Sprintf("cannot read the previous backup's manifest: %v", err), errors.Is(err, repo.ErrIntegrity), nil
	}
	if m.PGVersionNum < 170000 {
		return fmt.Sprintf("the previous backup was taken from PostgreSQL %d", m.PGVersionNum/10000), false, nil
	}
	if m.Timeline != timeline {
		return fmt.Sprintf("the previous backup is of timeline %d, the server is on timeline %d (the first backup after a promotion reads every block)", m.Timeline, timeline), false, nil
	}
	data, err := r.ServerManifest(ctx, m)
	switch {
	case errors.Is(err, repo.ErrIntegrity):
		return fmt.Sprintf("cannot read the previous backup's backup_manifest: damaged or replaced (walvault verify names what): %v", err), true, nil
	case err != nil:
		return fmt.Sprintf("cannot read the previous backup's backup_manifest with the writer key (a backup stored by an older walvault stores it for identities only; walvault rekey seals it for writers too): %v", err), false, nil
	}
	err = uploadManifest(ctx, conn, data)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) {
		return "the server refused the previous backup's manifest: " + pgErr.Message, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return "", false, nil
}
