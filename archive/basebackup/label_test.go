package basebackup

import (
	"archive/tar"
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// pg15Label is a backup_label as PostgreSQL 15 writes it.
const pg15Label = `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-23 17:57:00 EST
LABEL: walvault 20261123T225700Z
START TIMELINE: 1
`

func makeTar(t testing.TB, members ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o600, Size: int64(len(m[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFirstTarMember(t *testing.T) {
	full := makeTar(t, [2]string{"backup_label", pg15Label}, [2]string{"tablespace_map", "16385 /srv/ts1\n"})
	need := 512 + len(pg15Label)
	for n := 0; n <= len(full); n++ {
		name, content, err := firstTarMember(full[:n])
		if n < need {
			if !errors.Is(err, errLabelIncomplete) {
				t.Fatalf("prefix %d: %q, %v; want incomplete", n, name, err)
			}
			continue
		}
		if err != nil || name != "backup_label" || string(content) != pg15Label {
			t.Fatalf("prefix %d: %q, %q, %v", n, name, content, err)
		}
	}
	if _, _, err := firstTarMember(bytes.Repeat([]byte("x"), 1024)); err == nil || errors.Is(err, errLabelIncomplete) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestLabelCapture(t *testing.T) {
	t.Run("byte by byte", func(t *testing.T) {
		var l labelCapture
		for _, c := range makeTar(t, [2]string{"backup_label", pg15Label}, [2]string{"PG_VERSION", "15\n"}) {
			l.add([]byte{c})
		}
		if l.err != nil || string(l.text) != pg15Label || l.prefix != nil {
			t.Fatalf("%+v", l)
		}
	})
	t.Run("wrong first member", func(t *testing.T) {
		var l labelCapture
		l.add(makeTar(t, [2]string{"PG_VERSION", "15\n"}, [2]string{"backup_label", pg15Label}))
		if l.err == nil || l.text != nil {
			t.Fatalf("%+v", l)
		}
	})
}

func TestParseBackupLabel(t *testing.T) {
	l, err := parseBackupLabel([]byte(pg15Label))
	if err != nil {
		t.Fatal(err)
	}
	want := backupLabel{StartLSN: pgwal.LSN(0x2000028), StartTimeline: 1, StartTime: "2026-11-23 17:57:00 EST", Label: "walvault 20261123T225700Z"}
	if l != want {
		t.Fatalf("got %+v, want %+v", l, want)
	}
	for _, bad := range []string{
		"",
		"START TIME: 2026-11-23 17:57:00 UTC\n",
		"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
		"START WAL LOCATION: zz (file x)\nSTART TIME: 2026-11-23 17:57:00 UTC\n",
		pg15Label + "START TIMELINE: 0\n",
	} {
		if _, err := parseBackupLabel([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzBackupLabel(f *testing.F) {
	f.Add([]byte(pg15Label), "Europe/Paris")
	f.Add([]byte("START WAL LOCATION: 1/2\nSTART TIME: 2026-01-01 00:00:00 +0100\n"), "")
	f.Add(makeTar(f, [2]string{"backup_label", pg15Label}), "UTC")
	f.Fuzz(func(t *testing.T, b []byte, zone string) {
		// The tar reader must cope with any prefix of any stream.
		name, content, err := firstTarMember(b)
		if err == nil && len(content) > maxLabelPrefix {
			t.Fatalf("member %q of %d bytes", name, len(content))
		}
		l, err := parseBackupLabel(b)
		if err != nil {
			return
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			loc = nil
		}
		if tm, err := pgwal.ParseServerTime(l.StartTime, loc); err == nil {
			// A parsed time prints back as the wall clock it came from.
			if tm.Format("2006-01-02 15:04:05") != l.StartTime[:19] {
				t.Fatalf("%q parsed as %v", l.StartTime, tm)
			}
		}
	})
}

// TestOldestPack: the oldest pack is found by its backup's id, whatever
// the order; keys that are not pack keys are passed over.
func TestOldestPack(t *testing.T) {
	id, at, ok := oldestPack([]string{
		repo.PackKey("20261207T050000Z", 3),
		"packs/not-a-backup/00000001",
		repo.PackKey("20261101T235959Z", 0),
		repo.PackKey("20261130T000000Z", 12),
	})
	if !ok || id != "20261101T235959Z" || !at.Equal(time.Date(2026, 11, 1, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("oldestPack = %s %v %v, want 20261101T235959Z", id, at, ok)
	}
	if _, _, ok := oldestPack([]string{"packs/x/1"}); ok {
		t.Error("oldestPack found a pack among keys that are none")
	}
}
