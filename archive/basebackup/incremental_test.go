package basebackup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/walvault/walvault/repo"
)

// incrementalFile builds an INCREMENTAL file as PostgreSQL 17 sends it.
func incrementalFile(blocks []uint32, truncation uint32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, incrementalMagic)
	b = le.AppendUint32(b, uint32(len(blocks)))
	b = le.AppendUint32(b, truncation)
	for _, n := range blocks {
		b = le.AppendUint32(b, n)
	}
	if len(blocks) > 0 && len(b)%repo.BlockSize != 0 {
		b = append(b, make([]byte, repo.BlockSize-len(b)%repo.BlockSize)...)
	}
	for _, n := range blocks {
		b = append(b, bytes.Repeat([]byte{byte(n)}, repo.BlockSize)...)
	}
	return b
}

func TestReadIncrementalHeader(t *testing.T) {
	good := incrementalFile([]uint32{0, 5, 9}, 8)
	r := bytes.NewReader(good)
	blocks, tr, err := readIncrementalHeader(r, int64(len(good)))
	if err != nil || tr != 8 || len(blocks) != 3 || blocks[1] != 5 {
		t.Fatalf("got %v, %d, %v", blocks, tr, err)
	}
	if rest := r.Len(); rest != 3*repo.BlockSize {
		t.Errorf("%d bytes left after the header, want the 3 blocks", rest)
	}
	empty := incrementalFile(nil, 12)
	if blocks, tr, err := readIncrementalHeader(bytes.NewReader(empty), int64(len(empty))); err != nil || len(blocks) != 0 || tr != 12 || len(empty) != 12 {
		t.Errorf("no blocks: %v %d %v (%d bytes)", blocks, tr, err, len(empty))
	}
	bad := map[string]struct {
		b    []byte
		size int64
	}{
		"magic":        {append([]byte{1, 2, 3, 4}, good[4:]...), int64(len(good))},
		"size":         {good, int64(len(good)) - 1},
		"out of order": {incrementalFile([]uint32{5, 3}, 8), int64(len(incrementalFile([]uint32{5, 3}, 8)))},
		"repeated":     {incrementalFile([]uint32{5, 5}, 8), int64(len(incrementalFile([]uint32{5, 5}, 8)))},
		"past segment": {incrementalFile([]uint32{relsegBlocks}, 8), int64(len(incrementalFile([]uint32{relsegBlocks}, 8)))},
		"truncation":   {incrementalFile(nil, relsegBlocks+1), 12},
		"short":        {good[:10], int64(len(good))},
	}
	for name, c := range bad {
		if _, _, err := readIncrementalHeader(bytes.NewReader(c.b), c.size); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIncrementalTarget(t *testing.T) {
	for in, want := range map[string]string{
		"base/5/INCREMENTAL.16384":         "base/5/16384",
		"base/5/INCREMENTAL.16384_vm.1":    "base/5/16384_vm.1",
		"PG_17_x/5/INCREMENTAL.16390":      "PG_17_x/5/16390",
		"base/5/16384":                     "",
		"base/5/INCREMENTAL.":              "",
		"global/INCREMENTAL.1262":          "global/1262",
		"base/5/XINCREMENTAL.16384":        "",
		"base/INCREMENTAL.5/16384_fsm_bad": "",
	} {
		got, ok := incrementalTarget(in)
		if got != want || ok != (want != "") {
			t.Errorf("incrementalTarget(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got := manifestPath("16385.tar", "PG_17_x/5/16390"); got != "pg_tblspc/16385/PG_17_x/5/16390" {
		t.Errorf("manifestPath = %q", got)
	}
}

func TestStripIncrementalLabel(t *testing.T) {
	in := "START WAL LOCATION: 0/8000028 (file 000000010000000000000008)\nCHECKPOINT LOCATION: 0/8000080\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-12-07 12:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\nINCREMENTAL FROM LSN: 0/6000028\nINCREMENTAL FROM TLI: 1\n"
	got := string(stripIncrementalLabel([]byte(in)))
	if strings.Contains(got, "INCREMENTAL") || !strings.HasSuffix(got, "START TIMELINE: 1\n") || len(got) != len(in)-len("INCREMENTAL FROM LSN: 0/6000028\nINCREMENTAL FROM TLI: 1\n") {
		t.Errorf("stripped label:\n%s", got)
	}
}

// pgManifestText writes a manifest as PostgreSQL does, with its checksum.
func pgManifestText(files ...string) []byte {
	var b bytes.Buffer
	b.WriteString("{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": 7716535117813310667,\n\"Files\": [")
	for i, f := range files {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n" + f)
	}
	b.WriteString(" ],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/8000028\", \"End-LSN\": \"0/8000120\" }\n],\n")
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "\"Manifest-Checksum\": \"%x\"}\n", sum)
	return b.Bytes()
}

func TestFullManifest(t *testing.T) {
	label := []byte("START WAL LOCATION: 0/8000028 (file 000000010000000000000008)\n")
	inc := pgManifestText(
		`{ "Path": "backup_label", "Size": 300, "Last-Modified": "2026-12-07 12:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" }`,
		`{ "Path": "base/5/INCREMENTAL.16384", "Size": 12, "Last-Modified": "2026-12-07 12:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "11111111" }`,
		`{ "Path": "pg_tblspc/16385/PG_17_x/5/INCREMENTAL.16390", "Size": 16396, "Last-Modified": "2026-12-07 12:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "22222222" }`,
		`{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-12-07 12:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "33333333" }`,
	)
	sizes := map[string]int64{"base/5/16384": 8192 * 40, "pg_tblspc/16385/PG_17_x/5/16390": 8192 * 3}
	out, err := fullManifest(inc, sizes, label)
	if err != nil {
		t.Fatal(err)
	}
	body, err := manifestBody(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if !bytes.HasSuffix(out, []byte("\"Manifest-Checksum\": \""+hex.EncodeToString(sum[:])+"\"}\n")) {
		t.Errorf("manifest checksum not recomputed:\n%s", out)
	}
	crc := hex.EncodeToString(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(label, crc32.MakeTable(crc32.Castagnoli))))
	for _, want := range []string{
		`{ "Path": "backup_label", "Size": ` + fmt.Sprint(len(label)) + `, "Last-Modified": "2026-12-07 12:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "` + crc + `" }`,
		`{ "Path": "base/5/16384", "Size": 327680, "Last-Modified": "2026-12-07 12:00:00 GMT" }`,
		`{ "Path": "pg_tblspc/16385/PG_17_x/5/16390", "Size": 24576, "Last-Modified": "2026-12-07 12:00:00 GMT" }`,
		`{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-12-07 12:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "33333333" }`,
		`{ "Timeline": 1, "Start-LSN": "0/8000028", "End-LSN": "0/8000120" }`,
		`"System-Identifier": 7716535117813310667,`,
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("rewritten manifest lacks %s:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("INCREMENTAL")) {
		t.Errorf("rewritten manifest still names INCREMENTAL files:\n%s", out)
	}

	// Refusals: a file the backup did not rebuild, one it rebuilt that the
	// manifest does not name, a damaged manifest, no label.
	if _, err := fullManifest(inc, map[string]int64{"base/5/16384": 8192}, label); err == nil {
		t.Error("a rebuilt size missing: accepted")
	}
	more := map[string]int64{"x/1": 8192}
	for k, v := range sizes {
		more[k] = v
	}
	if _, err := fullManifest(inc, more, label); err == nil {
		t.Error("a rebuilt file the manifest does not name: accepted")
	}
	bad := bytes.Replace(inc, []byte(`"Size": 3,`), []byte(`"Size": 4,`), 1)
	if _, err := fullManifest(bad, sizes, label); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("damaged manifest: %v", err)
	}
	if _, err := fullManifest(inc, sizes, nil); err == nil {
		t.Error("no rewritten label: accepted")
	}
}
