package repo_test

// How testdata/format1 was made. TestMakeFormat1 does not run in a normal
// `go test`: TestFormat1 reads the repository it wrote once, with walvault
// 0.1 (format 1), and that copy is frozen. Run
//
//	go test ./repo -run TestMakeFormat1 -format1.out=/tmp/format1
//
// to see what today's code writes; never copy its output over
// testdata/format1 (that would unfreeze the fixture: every future version
// must read the bytes committed there). The content is fixed (times, data);
// only the age encryption, the random suffixes of some keys and the
// identity differ from run to run.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/internal/waltest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage/local"
)

var format1Out = flag.String("format1.out", "", "write a new format-1 fixture repository into this directory (which must not exist)")

// The cluster of the fixture: PostgreSQL 15 with 1 MiB WAL segments.
const (
	f1SysID   uint64 = 7400000000000000001
	f1SegSize        = 1 << 20
	f1Block          = 8192
)

// f1Time is when the fixture's backup started on the server's clock.
var f1Time = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestMakeFormat1(t *testing.T) {
	if *format1Out == "" {
		t.Skip("set -format1.out=DIR to write a fixture repository")
	}
	out := *format1Out
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("%s exists: write a fixture into a new directory", out)
	}
	ctx := context.Background()
	st, err := local.New(filepath.Join(out, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	id := repotest.NewIdentity(t)
	tr := repotest.New(t, repotest.OnStore(st), repotest.WithIdentity(id), repotest.WithConfig(func(c *repo.Config) {
		c.SystemIdentifier, c.PGMajor, c.WALSegmentSize = fmt.Sprint(f1SysID), 15, f1SegSize
		c.CreatedAt, c.CreatedBy = f1Time.Add(-time.Hour), "odoo-db-1"
	}))
	key := "# TEST-ONLY identity of walvault's frozen format-1 test repository\n" +
		"# (repo/testdata/format1). It protects nothing; never use it for data.\n" + id.String() + "\n"
	if err := os.WriteFile(filepath.Join(out, "identity-TEST-ONLY.txt"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}

	// WAL. Timeline 1: segments 1 and 2 (the backup runs in 2), 3 until
	// the promotion at switchLSN, archived as .partial. Timeline 2: 3 (a
	// copy of timeline 1's up to switchLSN, then its own records), 4, and
	// a streamed partial of 5.
	w := waltest.NewWAL(pgwal.SegmentStart(1, f1SegSize), f1SegSize, f1Block, f1SysID)
	w.Heap(300)
	w.Commit(f1Time.Add(-10*time.Minute), 0)
	w.Switch()
	start := w.Heap(100) // 0/100028: the first record of segment 2
	if start != pgwal.SegmentStart(2, f1SegSize)+pgwal.LongPageHeaderSize {
		t.Fatalf("backup starts at %s", start)
	}
	w.Heap(9000) // across a page boundary
	w.Commit(f1Time.Add(20*time.Second), 16)
	stop := w.Pos()
	w.Switch()
	w.Commit(f1Time.Add(2*time.Minute), 0)
	w.Heap(50)
	switchLSN := w.Pos()
	// PostgreSQL archives the whole file, zeros after switchLSN.
	tl1Partial := make([]byte, f1SegSize)
	copy(tl1Partial, w.Buf[uint64(pgwal.SegmentStart(3, f1SegSize)-w.Start):])
	w.Timeline = 2
	w.Commit(f1Time.Add(3*time.Minute), 0)
	w.Switch()
	w.Heap(4000)
	w.Commit(f1Time.Add(4*time.Minute), 8)
	w.Switch()
	w.Heap(200)
	w.Commit(f1Time.Add(5*time.Minute), 0)
	streamed := w.Segment(5)[:0x2000]

	put := func(key string, data []byte) { tr.Write(t, key, data) }
	put(repo.WALSegmentKey(1, 1, f1SegSize), w.Segment(1))
	put(repo.WALSegmentKey(1, 2, f1SegSize), w.Segment(2))
	put("wal/00000001/"+pgwal.SegmentName(1, 3, f1SegSize)+".partial", tl1Partial)
	put("wal/00000002/00000002.history", []byte(fmt.Sprintf("1\t%s\tno recovery target specified\n", switchLSN)))
	put(repo.WALSegmentKey(2, 3, f1SegSize), w.Segment(3))
	put(repo.WALSegmentKey(2, 4, f1SegSize), w.Segment(4))
	put(repo.StreamPartialKey(2, pgwal.SegmentName(2, 5, f1SegSize), int64(len(streamed))), streamed)

	// The backup: its history file, archives in 4 KiB chunks, a keep note,
	// then the manifest.
	serverStop := f1Time.Add(41 * time.Second)
	history := fmt.Sprintf("START WAL LOCATION: %s (file %s)\nSTOP WAL LOCATION: %s (file %s)\nCHECKPOINT LOCATION: %s\n"+
		"BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: %s UTC\nLABEL: walvault\nSTART TIMELINE: 1\nSTOP TIME: %s UTC\nSTOP TIMELINE: 1\n",
		start, pgwal.SegmentName(1, 2, f1SegSize), stop, pgwal.SegmentName(1, 2, f1SegSize), start+0x38,
		f1Time.Format(time.DateTime), serverStop.Format(time.DateTime))
	put("wal/00000001/"+pgwal.BackupHistoryFileName(1, start, f1SegSize), []byte(history))

	id1 := repo.NewBackupID(f1Time)
	label := fmt.Sprintf("START WAL LOCATION: %s (file %s)\nCHECKPOINT LOCATION: %s\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n"+
		"START TIME: %s UTC\nLABEL: walvault\nSTART TIMELINE: 1\n", start, pgwal.SegmentName(1, 2, f1SegSize), start+0x38, f1Time.Format(time.DateTime))
	base := f1Tar(t, []f1Member{
		{name: "backup_label", body: label},
		{name: "tablespace_map", body: "16385 /srv/ts1\n"},
		{name: "PG_VERSION", body: "15\n"},
		{name: "global/", dir: true},
		{name: "global/pg_control", body: strings.Repeat("pg_control ", 744)},
		{name: "base/", dir: true},
		{name: "base/5/", dir: true},
		{name: "base/5/1259", body: strings.Repeat("heap page of pg_class ", 500)},
		{name: "pg_tblspc/", dir: true},
		{name: "pg_tblspc/16385", link: "/srv/ts1"},
		{name: "pg_wal/", dir: true},
	})
	ts := f1Tar(t, []f1Member{
		{name: "PG_15_202209061/", dir: true},
		{name: "PG_15_202209061/5/", dir: true},
		{name: "PG_15_202209061/5/16386", body: strings.Repeat("a table in a tablespace ", 300)},
	})
	manifest := []byte(`{ "PostgreSQL-Backup-Manifest-Version": 1,` + "\n" + `"Files": [` + "\n" +
		`{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-03-01 09:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" }` + "\n" +
		`],` + "\n" + `"WAL-Ranges": [` + "\n" +
		fmt.Sprintf(`{ "Timeline": 1, "Start-LSN": "%s", "End-LSN": "%s" }`, start, stop) + "\n" + `] }` + "\n")

	keep := true
	if err := tr.AddBackupNote(ctx, id1, repo.BackupNote{Time: f1Time.Add(time.Hour), Actor: f1Actor(), Keep: &keep, Note: "before the v17 upgrade"}); err != nil {
		t.Fatal(err)
	}
	stopUTC := serverStop
	m := &repo.BackupManifest{
		ID: id1, Label: "walvault", StartTime: f1Time, StopTime: serverStop.Add(time.Second),
		StopTimeSource: repo.StopTimeFromHistory, ServerStopTime: &stopUTC, LogTimezone: "UTC",
		StartLSN: start, StopLSN: stop, Timeline: 1,
		SystemIdentifier: fmt.Sprint(f1SysID), PGVersionNum: 150010, WALSegmentSize: f1SegSize,
		Host: "odoo-db-1", Version: "0.1.0",
	}
	tr.PutBackup(t, m, 4096,
		repotest.Archive{Name: "base.tar", Data: base},
		repotest.Archive{Name: "16385.tar", TablespaceOID: 16385, TablespacePath: "/srv/ts1", Data: ts},
		repotest.Archive{Name: repo.ServerManifestArchive, Data: manifest},
	)

	// The audit trail of the backup and the note.
	for i, a := range []repo.AuditRecord{
		{Command: "backup", Action: "backup " + id1 + " stored", Details: []string{repo.BackupManifestKey(id1)}},
		{Command: "keep", Action: "backup " + id1 + " kept", Details: []string{"before the v17 upgrade"}},
	} {
		a.Time, a.Actor = f1Time.Add(time.Duration(i+1)*time.Hour), f1Actor()
		if err := tr.AppendAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	// The filestore of database "prod": a small file sealed in frames, one
	// sealed as a stream (as files above 8 MiB are), and its log.
	invoice, logo := []byte("%PDF-1.4 invoice 2026/0042\n"), bytes.Repeat([]byte("PNG logo "), 1000)
	name := func(b []byte) string {
		sum := sha1.Sum(b)
		return repo.FilestoreNameOf(hex.EncodeToString(sum[:]))
	}
	put(repo.FilestoreObjectKey(name(invoice)), invoice)
	var sealed bytes.Buffer
	if err := tr.SealFilestoreObject(&sealed, name(logo), bytes.NewReader(logo), int64(len(logo)), sha256.Sum256(logo)); err != nil {
		t.Fatal(err)
	}
	tr.SetRaw(t, repo.FilestoreObjectKey(name(logo)), sealed.Bytes())
	if _, err := tr.PutFilestoreRecord(ctx, repo.FilestoreRecord{DB: "prod", Time: f1Time.Add(-time.Minute), Kind: repo.FilestoreSnapshot,
		Added: []string{name(invoice), name(logo)}}); err != nil {
		t.Fatal(err)
	}

	// An unencrypted repository of the same cluster: its envelope says so.
	pst, err := local.New(filepath.Join(out, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	plain := repotest.New(t, repotest.OnStore(pst), repotest.Plain(), repotest.WithConfig(func(c *repo.Config) {
		c.SystemIdentifier, c.PGMajor, c.WALSegmentSize = fmt.Sprint(f1SysID), 15, f1SegSize
		c.CreatedAt, c.CreatedBy = f1Time.Add(-time.Hour), "odoo-db-1"
	}))
	plain.Write(t, repo.WALSegmentKey(1, 1, f1SegSize), w.Segment(1))
	plain.Write(t, repo.FilestoreObjectKey(name(invoice)), invoice)
	t.Logf("fixture written to %s", out)
}

func f1Actor() repo.Actor {
	return repo.Actor{Host: "odoo-db-1", User: "postgres", PID: 4242, Version: "0.1.0"}
}

type f1Member struct {
	name, body, link string
	dir              bool
}

// f1Tar is a tar stream as PostgreSQL's BASE_BACKUP sends it (ustar,
// fixed owner and times).
func f1Tar(t *testing.T, members []f1Member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := f1Time.Add(-time.Hour)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: 0o600, Size: int64(len(m.body)), Typeflag: tar.TypeReg, ModTime: mtime,
			Uid: 26, Gid: 26, Uname: "postgres", Gname: "postgres", Format: tar.FormatUSTAR}
		switch {
		case m.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o700, 0
		case m.link != "":
			h.Typeflag, h.Linkname, h.Mode, h.Size = tar.TypeSymlink, m.link, 0o777, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
