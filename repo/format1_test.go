package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/restore/filestorefetch"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/restore/verify"
	"github.com/walvault/walvault/restore/walfetch"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
)

// format1Objects is every object of testdata/format1/repo: the SHA-256 of
// the stored file and of its plaintext, and the plaintext's size.
var format1Objects = []struct {
	key, stored, plain string
	size               int64
}{
	{"audit/20260301T110000.000000000Z-7ccff134", "013d8b89db95c2accfa1643c73b38f77b6d5302e2be2564567a8d2e5a5dd976d", "14acc665dc0cbeb46f74c295eba775d5f4730da73ff4913cbbf16770108a8054", 218},
	{"audit/20260301T120000.000000000Z-aaefb91f", "db47e72f297c021c230fcde025dc94c842b9d8127e3db85d604d85344ab95f7b", "7109b10a427c776197ad14e6959b5dbd0a71b0ce7a9ced0d69087621f0b5c56f", 200},
	{"backups/20260301T100000Z/backup.json", "19187d04d93a0efddc839ed899aaf7282c3479e7f17e4e772afdb944680a63c1", "6ca90e61b8abbf63445b83e529e00bf00b3cd4cfcae6ee03510d34c2fc0e82df", 2475},
	{"backups/20260301T100000Z/data/16385.tar/00000000", "c1d6c8df16f2df76af976bb597615597a19923c5f96f8c8b513b15f071032d90", "dbc73b94141db9a9219e49a593eb1c5b103dd24ec0872bb59d69e2c62dedc055", 4096},
	{"backups/20260301T100000Z/data/16385.tar/00000001", "9832797f505736ea9ff8c37defb2096d6487af898fc03f6becd5bf03032e0423", "24d2aa796d4031b10d19ac8d22c5ad661a131132d0197c04296d68db0f5be9a2", 4096},
	{"backups/20260301T100000Z/data/16385.tar/00000002", "47aef11c7c44327450c8dc9fb9cdcfc8d6a2a030ecaf5015f2d7fa3ea1906594", "182e2f2b84559d3a012b215dc043fee9473ba054b92d5c0a41e406bfbafe91db", 2048},
	{"backups/20260301T100000Z/data/backup_manifest/00000000", "1b2a8e04bc3a436c7348340af837fdd431031047de2e6f03525258de6a0d46b4", "90fb8a84a49e4fc7bcf1ae6aeda0c7e27e7fd3ff955e93f91fb259bb19e770d8", 279},
	{"backups/20260301T100000Z/data/base.tar/00000000", "30fda71ef241f526570643a9633a6bd71ba6e8f66bfea7124f63dd2d76213976", "2b8acdeda1c2360a4fac268163b70c4d0d839a4b54b0f041895d6b6177e7f7d4", 4096},
	{"backups/20260301T100000Z/data/base.tar/00000001", "20f292389f166eba3fd82090b6d040f892cb78bb5fb278781e2c261e75085c3a", "83502cfee06018d9d7904c436d3f9958ad6a5e2714af5f672fcfff355e5ca3bd", 4096},
	{"backups/20260301T100000Z/data/base.tar/00000002", "10742c3053a55d31e806a311cce1248a644ac9ec67c8904764f88979b2696ea1", "b66d631bbfe4770e9b8bca65bdf41ea4095fd52b817a92bec58af6d17e84fc6d", 4096},
	{"backups/20260301T100000Z/data/base.tar/00000003", "6420dbe687e050642eab74c49ee29eee598155c88d74c1019a192db03eeef55a", "4937f3b0e704dff3cb776ee3b1035b6a3904b63f60a943dbbd912d2e0bf0dbd6", 4096},
	{"backups/20260301T100000Z/data/base.tar/00000004", "11dda1949dfcbfe054597aaa0f68f89dbab3074857d33565ad95e3d4af3b9bfe", "8bc70aeef11dd161d2ad6ee4dfc39736ca3f8eacc073f234da490576e7935b07", 4096},
	{"backups/20260301T100000Z/data/base.tar/00000005", "27b712c4528617f437b90ceeafbb6035913eb267a877d62a17d1023f603acb58", "2025bb89b4c77d24e55f5c3f5dfb397959b2319552f6181aff7f9bec81ab73c4", 4096},
	{"backups/20260301T100000Z/data/base.tar/00000006", "4b67a840cc98010672b51a6f0691499f3eafb5790c4bd09b09ac144d728dec25", "a092649c155201e9325947ea1821a2f94f6c9d212312d121e0cd767b23dae23d", 3072},
	{"backups/20260301T100000Z/notes/20260301T110000.000000000Z-d00d6117", "13d8200a2e5d01e4f5c60ac18273f4841d6c582116e6a83bfcdb29a013679808", "f72ea534b553a50ba6cba143fb021b461b4c810c8d6ba8582222086911f35446", 150},
	{"filestore/db/prod/log/20260301T095900.000000000Z-1246e61a", "35cb02d74823161be9c2e89ed1f3e728ccc724953ceb84dec60633cdb37651f9", "d6b6caad2193fb5d384827e18c4586232af897221c358ed6e41dc6df8b57607c", 175},
	{"filestore/objects/04/04a3908541b20f297a9ac57f9fac8dd05a9bd3d9", "aed5b88d82190ed9d5466cd8bdc4d66591c87a2631fd622f5a7e56f33e93eb51", "0d4c13f87914acf5db21783a79949370b13da2b5520ffca9ca7f59f84f5e9d5e", 27},
	{"filestore/objects/40/406d166d6ea9b4c7aca0139d62f0e3dcffc042d1", "6ff6617e4dd3229dcab3d34e1dc952ca46455f2d6ecc7128bfa57b135d3d8d4b", "9ba913de476733a87363cf5e0e027748f433fadb3099821c8588605d60884b05", 9000},
	{"stream/00000002/000000020000000000000005.00002000", "1f33057b7ab2bcedeb0c7cb221377a3c7646d6182c7cd645c4014a5f12113275", "63374adf623037f61aed17421e093c16359a9587cce7ad756607bbe57892b4c9", 8192},
	{"wal/00000001/000000010000000000000001", "57ef6e689461b5f69d102b43087ba487cdfec4779d2eae25607c0223cb7a6760", "1b2343d3a1a75ce7ca0aa7cc6a1a126c8d73690de6620757ae57b32e18489665", 1048576},
	{"wal/00000001/000000010000000000000002", "6efece0ad3ed1aab7dbf130b61f7970161235852335da86fa665d6be68995c60", "494baf7086a0421c9a0356602b97f5942472f3db2245b0c986ad24212796ff0b", 1048576},
	{"wal/00000001/000000010000000000000002.00000028.backup", "2c1da35f63cd60fe5819baaaac910e4bc90e1351fc6b2155a187028b9932f729", "2cca987bf68c7087b7817bdf2c510623ae9fc397596947145f9bc2bbc37f759b", 318},
	{"wal/00000001/000000010000000000000003.partial", "5c00c8ebdc63a4b48d2f852e50c7c0949e4816a1fa9698c5ef1ca6235f91ddda", "1141a6d3cd83385eef12b0b4011148d3a6f21cb8f5ebfe44e23773f11ab03fd7", 1048576},
	{"wal/00000002/00000002.history", "8f0a1d57e92b7dcfc40b023e2ac844ef108a3df94d4d6acd46098459b4428bb4", "22979d9c7c9dfea409b0de6304d016e538b83ffbbf10ccda7aeafa8f18109f12", 40},
	{"wal/00000002/000000020000000000000003", "b83c54b3eb88bcad29fd8560f70d0a879f54990c9d76d045edc45d26fae9ffea", "f6cfb5af170186db8c26f1d845d4fc400128ae9e64d4cbf6ab9ee92c44587e83", 1048576},
	{"wal/00000002/000000020000000000000004", "f39ce40864b20fdcf79ac44586f13808befa1f48619f6927693a38ffee684ed3", "f0bf4562ccd5285ca3b82f97dd63196b904f008aecb5d5adaf5a5d70da3dc38a", 1048576},
	{"walvault.json", "77e0e53091ee309508269cb6ab6da1845f7f2c4ed44ea7e75ea5ed2a97fc0d56", "", 0},
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// copyTree copies the regular files under src into a new directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o700); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestFormat1 reads testdata/format1: a repository in format 1 written once
// (repo/format1_make_test.go shows how) and frozen there with the age
// identity that reads it (test data; it protects nothing). It holds what a
// format-1 repository can: the configuration; WAL of two timelines with a
// history file, a .partial segment and a streamed partial; a backup
// history file; a backup (a data directory and a tablespace as tar
// streams cut into chunks, the server's backup manifest, the manifest of
// the backup) with a keep note; audit records; an Odoo filestore (an
// object sealed in frames, one sealed as a stream, a log record). The test
// reads all of it through the code the commands use (catalog, verify,
// restore, wal-fetch, filestore restore) and checks every byte.
//
// This is the compatibility promise of docs/FORMAT.md made executable:
// every future walvault must pass this test, with testdata/format1 as it
// was committed. A change that makes it fail breaks repositories that
// users already have: fix the change, never the fixture or this test's
// expectations.
func TestFormat1(t *testing.T) {
	ctx := context.Background()
	fixture := filepath.Join("testdata", "format1")
	// A copy: no operation may change the fixture, whatever it writes.
	dir := copyTree(t, filepath.Join(fixture, "repo"))
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := crypto.LoadIdentities(filepath.Join(fixture, "identity-TEST-ONLY.txt"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, repo.Options{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	const (
		id        = "20260301T100000Z"
		segSize   = 1 << 20
		start     = pgwal.LSN(0x200028)
		stop      = pgwal.LSN(0x20246A)
		switchLSN = pgwal.LSN(0x3000B3)
	)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	t.Run("objects", func(t *testing.T) {
		var keys []string
		if err := st.List(ctx, "", func(oi storage.ObjectInfo) error {
			keys = append(keys, oi.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, o := range format1Objects {
			want = append(want, o.key)
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("objects\n%q\nwant\n%q", keys, want)
		}
		for _, o := range format1Objects {
			stored, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(o.key)))
			if err != nil {
				t.Fatal(err)
			}
			if got := hexSHA256(stored); got != o.stored {
				t.Errorf("%s: stored file changed (SHA-256 %s): the fixture must stay as committed", o.key, got)
			}
			if o.key == repo.ConfigKey {
				continue
			}
			plain, h, err := r.Get(ctx, o.key)
			if err != nil {
				t.Errorf("%s: %v", o.key, err)
				continue
			}
			if got := hexSHA256(plain); got != o.plain || int64(len(plain)) != o.size || h.SHA256Hex() != o.plain || !h.Encrypted || h.Version != 1 {
				t.Errorf("%s: %d bytes, SHA-256 %s, header %+v; want %d bytes, %s", o.key, len(plain), got, h, o.size, o.plain)
			}
		}
	})

	t.Run("config", func(t *testing.T) {
		want := repo.Config{Format: 1, SystemIdentifier: "7400000000000000001", PGMajor: 15, WALSegmentSize: segSize,
			Encryption: repo.EncryptionAge, CreatedAt: t0.Add(-time.Hour), CreatedBy: "odoo-db-1"}
		if !reflect.DeepEqual(r.Config, want) {
			t.Errorf("config %+v, want %+v", r.Config, want)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		c, err := catalog.Load(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Backups) != 1 || len(c.StopTimeProblems) != 0 {
			t.Fatalf("backups %v, stop time problems %v", c.Backups, c.StopTimeProblems)
		}
		b := c.Backups[0]
		serverStop := t0.Add(41 * time.Second)
		if b.ID != id || b.Format != 1 || b.Label != "walvault" || !b.StartTime.Equal(t0) || !b.StopTime.Equal(serverStop.Add(time.Second)) ||
			b.StopTimeSource != repo.StopTimeFromHistory || b.ServerStopTime == nil || !b.ServerStopTime.Equal(serverStop) || b.LogTimezone != "UTC" ||
			b.StartLSN != start || b.StopLSN != stop || b.Timeline != 1 || b.SystemIdentifier != "7400000000000000001" ||
			b.PGVersionNum != 150010 || b.WALSegmentSize != segSize || b.Host != "odoo-db-1" || b.Version != "0.1.0" {
			t.Errorf("backup %+v", b)
		}
		var archives []string
		for _, a := range b.Archives {
			archives = append(archives, a.Name)
			var sum int64
			for i, ch := range a.Chunks {
				if ch.Key != repo.BackupChunkKey(id, a.Name, i) {
					t.Errorf("%s chunk %d is %s", a.Name, i, ch.Key)
				}
				sum += ch.Size
			}
			if sum != a.Bytes {
				t.Errorf("%s: chunks hold %d bytes, archive %d", a.Name, sum, a.Bytes)
			}
		}
		if !slices.Equal(archives, []string{"base.tar", "16385.tar", repo.ServerManifestArchive}) || b.Archives[1].TablespaceOID != 16385 ||
			b.Archives[1].TablespacePath != "/srv/ts1" || b.Bytes != 27648+10240+279 {
			t.Errorf("archives %+v, %d bytes", b.Archives, b.Bytes)
		}
		var wal []string
		for _, w := range c.WAL {
			wal = append(wal, w.Key)
		}
		if want := []string{
			"wal/00000001/000000010000000000000001", "wal/00000001/000000010000000000000002",
			"wal/00000001/000000010000000000000002.00000028.backup", "wal/00000001/000000010000000000000003.partial",
			"wal/00000002/00000002.history", "wal/00000002/000000020000000000000003", "wal/00000002/000000020000000000000004",
		}; !slices.Equal(wal, want) {
			t.Errorf("WAL %q, want %q", wal, want)
		}
		if h := c.Timelines[2]; len(h) != 1 || h[0].Timeline != 1 || h[0].SwitchLSN != switchLSN {
			t.Errorf("history of timeline 2: %+v", h)
		}
		if len(c.Partials) != 1 || c.Partials[0].Valid != 0x2000 || c.Partials[0].File.Name != "000000020000000000000005" {
			t.Errorf("streamed partials %+v", c.Partials)
		}
		w, ok := c.Reach(b)
		if !ok || w.FromLSN != stop || !w.From.Equal(b.StopTime) || w.Timeline != 2 || w.ToLSN != pgwal.SegmentStart(5, segSize)+0x2000 {
			t.Errorf("window %+v, %v", w, ok)
		}
		marks, err := r.AllBackupMarks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := marks[id]
		if len(marks) != 1 || !m.Keep || len(m.Notes) != 1 || m.Notes[0].Note != "before the v17 upgrade" || !m.Notes[0].Time.Equal(t0.Add(time.Hour)) ||
			m.Notes[0].Actor != format1Actor {
			t.Errorf("marks %+v", marks)
		}
	})

	t.Run("audit", func(t *testing.T) {
		recs, err := r.AuditRecords(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 {
			t.Fatalf("audit records %+v", recs)
		}
		for i, want := range []struct{ command, action, detail string }{
			{"backup", "backup " + id + " stored", repo.BackupManifestKey(id)},
			{"keep", "backup " + id + " kept", "before the v17 upgrade"},
		} {
			got := recs[i]
			if got.Command != want.command || got.Action != want.action || !slices.Equal(got.Details, []string{want.detail}) ||
				got.Actor != format1Actor || !got.Time.Equal(t0.Add(time.Duration(i+1)*time.Hour)) || got.Key != format1Objects[i].key {
				t.Errorf("audit record %d: %+v", i, got)
			}
		}
	})

	t.Run("verify", func(t *testing.T) {
		rep, err := verify.Run(ctx, r, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Every object but walvault.json and the three of the filestore.
		if !rep.OK || len(rep.Problems) != 0 || len(rep.Gaps) != 0 || len(rep.Warnings) != 0 || rep.Objects != int64(len(format1Objects)-4) {
			t.Errorf("verify: ok %v, %d objects, problems %v, gaps %v, warnings %v", rep.OK, rep.Objects, rep.Problems, rep.Gaps, rep.Warnings)
		}
		if rec := rep.Recoverable; rec == nil || rec.Timeline != 2 || rec.FromLSN != stop.String() || rec.ToLSN != "0/502000" {
			t.Errorf("recoverable %+v", rep.Recoverable)
		}
	})

	t.Run("restore", func(t *testing.T) {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		data, ts := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "ts1")
		res, err := pitr.Run(ctx, r, pitr.Options{
			PGData: data, TablespaceMap: map[string]string{"/srv/ts1": ts}, Owner: u.Username, Workers: 2,
			RestoreCommand: `'/usr/bin/walvault' wal-fetch %f %p`,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Backup.ID != id || res.Bytes != 27648+10240+279 || res.Window.Timeline != 2 {
			t.Errorf("restore: backup %s, %d bytes, window %+v", res.Backup.ID, res.Bytes, res.Window)
		}
		label := "START WAL LOCATION: 0/200028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/200060\n" +
			"BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-03-01 10:00:00 UTC\nLABEL: walvault\nSTART TIMELINE: 1\n"
		manifest := `{ "PostgreSQL-Backup-Manifest-Version": 1,` + "\n" + `"Files": [` + "\n" +
			`{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-03-01 09:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" }` + "\n" +
			`],` + "\n" + `"WAL-Ranges": [` + "\n" + `{ "Timeline": 1, "Start-LSN": "0/200028", "End-LSN": "0/20246A" }` + "\n" + `] }` + "\n"
		for p, want := range map[string]string{
			filepath.Join(data, "backup_label"):      label,
			filepath.Join(data, "PG_VERSION"):        "15\n",
			filepath.Join(data, "global/pg_control"): strings.Repeat("pg_control ", 744),
			filepath.Join(data, "base/5/1259"):       strings.Repeat("heap page of pg_class ", 500),
			filepath.Join(data, "backup_manifest"):   manifest,
			// Rewritten for the new location (pitr's doc.go).
			filepath.Join(data, "tablespace_map"):        "16385 " + ts + "\n",
			filepath.Join(ts, "PG_15_202209061/5/16386"): strings.Repeat("a table in a tablespace ", 300),
		} {
			got, err := os.ReadFile(p)
			if err != nil {
				t.Error(err)
				continue
			}
			if string(got) != want {
				t.Errorf("%s: %d bytes %.40q..., want %d bytes %.40q...", p, len(got), got, len(want), want)
			}
		}
		if link, err := os.Readlink(filepath.Join(data, "pg_tblspc", "16385")); err != nil || link != ts {
			t.Errorf("pg_tblspc/16385 -> %q (%v), want %s", link, err, ts)
		}
	})

	t.Run("wal-fetch", func(t *testing.T) {
		plain := func(key string) string {
			for _, o := range format1Objects {
				if o.key == key {
					return o.plain
				}
			}
			t.Fatalf("no object %s", key)
			return ""
		}
		for name, want := range map[string]string{
			"000000010000000000000002":                 plain("wal/00000001/000000010000000000000002"),
			"000000020000000000000003":                 plain("wal/00000002/000000020000000000000003"),
			"000000020000000000000004":                 plain("wal/00000002/000000020000000000000004"),
			"00000002.history":                         plain("wal/00000002/00000002.history"),
			"000000010000000000000002.00000028.backup": plain("wal/00000001/000000010000000000000002.00000028.backup"),
		} {
			dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
			if _, err := walfetch.Fetch(ctx, r, name, dest, ""); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			got, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			if hexSHA256(got) != want {
				t.Errorf("%s: SHA-256 %s, want %s", name, hexSHA256(got), want)
			}
		}
		// Segment 5 of timeline 2 exists only as a streamed partial: its
		// 0x2000 bytes, zero-padded to a segment.
		dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		if _, err := walfetch.Fetch(ctx, r, "000000020000000000000005", dest, ""); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != segSize || hexSHA256(got[:0x2000]) != plain("stream/00000002/000000020000000000000005.00002000") ||
			!bytes.Equal(got[0x2000:], make([]byte, segSize-0x2000)) {
			t.Errorf("000000020000000000000005: %d bytes, not the streamed partial zero-padded", len(got))
		}
	})

	t.Run("filestore", func(t *testing.T) {
		if dbs, err := r.FilestoreDBs(ctx); err != nil || !slices.Equal(dbs, []string{"prod"}) {
			t.Fatalf("filestore databases %v, %v", dbs, err)
		}
		recs, err := r.FilestoreLog(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		invoice, logo := "04/04a3908541b20f297a9ac57f9fac8dd05a9bd3d9", "40/406d166d6ea9b4c7aca0139d62f0e3dcffc042d1"
		if len(recs) != 1 || recs[0].Kind != repo.FilestoreSnapshot || recs[0].Version != 1 || recs[0].DB != "prod" ||
			!recs[0].Time.Equal(t0.Add(-time.Minute)) || !slices.Equal(recs[0].Added, []string{invoice, logo}) {
			t.Fatalf("filestore log %+v", recs)
		}
		out := filepath.Join(t.TempDir(), "filestore", "prod")
		refs := []filestorefetch.Ref{{StoreFname: invoice, Checksum: invoice[3:]}, {StoreFname: logo, Checksum: logo[3:]}}
		rep, err := filestorefetch.Fetch(ctx, r, refs, out, filestorefetch.FetchOptions{})
		if err != nil || rep.Fetched != 2 {
			t.Fatalf("filestore restore: %+v, %v", rep, err)
		}
		for name, want := range map[string][]byte{
			invoice: []byte("%PDF-1.4 invoice 2026/0042\n"),
			logo:    bytes.Repeat([]byte("PNG logo "), 1000),
		} {
			if got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name))); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
			}
		}
	})
}

// TestFormat1Unencrypted reads testdata/format1/plain, a repository of the
// same cluster created without encryption (init --no-encryption), frozen
// with the same promise as TestFormat1: its envelopes say "not encrypted",
// and a reader without keys reads them.
func TestFormat1Unencrypted(t *testing.T) {
	ctx := context.Background()
	dir := copyTree(t, filepath.Join("testdata", "format1", "plain"))
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Config.Encrypted() || r.Config.SysID() != 7400000000000000001 || r.Config.WALSegmentSize != 1<<20 {
		t.Fatalf("config %+v", r.Config)
	}
	for _, o := range []struct{ key, stored, plain string }{
		{"filestore/objects/04/04a3908541b20f297a9ac57f9fac8dd05a9bd3d9", "6837b303f7efa1406b413195cdcaf95e00443908cafd25b2eb586ed2d91656b9", "0d4c13f87914acf5db21783a79949370b13da2b5520ffca9ca7f59f84f5e9d5e"},
		{"wal/00000001/000000010000000000000001", "4f401c44f24fb1c8393e96d506db6966cedd4ef2702efc513ad00bbe65b57f8a", "1b2343d3a1a75ce7ca0aa7cc6a1a126c8d73690de6620757ae57b32e18489665"},
		{"walvault.json", "f9402f83bd4bd6da6ce2cda76ff405c87c5e166608fecdab44d5d7970c2f58d4", ""},
	} {
		stored, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(o.key)))
		if err != nil {
			t.Fatal(err)
		}
		if got := hexSHA256(stored); got != o.stored {
			t.Errorf("%s: stored file changed (SHA-256 %s): the fixture must stay as committed", o.key, got)
		}
		if o.key == repo.ConfigKey {
			continue
		}
		plain, h, err := r.Get(ctx, o.key)
		if err != nil || hexSHA256(plain) != o.plain || h.Encrypted {
			t.Errorf("%s: SHA-256 %s, header %+v, %v", o.key, hexSHA256(plain), h, err)
		}
	}
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	if _, err := walfetch.Fetch(ctx, r, "000000010000000000000001", dest, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dest); err != nil || hexSHA256(got) != "1b2343d3a1a75ce7ca0aa7cc6a1a126c8d73690de6620757ae57b32e18489665" {
		t.Errorf("wal-fetch: %v", err)
	}
}

var format1Actor = repo.Actor{Host: "odoo-db-1", User: "postgres", PID: 4242, Version: "0.1.0"}
