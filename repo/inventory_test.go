package repo

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/faulty"
)

const testSegSize = 16 << 20

func putKeys(t *testing.T, r *Repository, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := r.Put(context.Background(), k, []byte("content of "+k), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseBackupKey(t *testing.T) {
	const id = "20261123T100000Z"
	for _, tc := range []struct {
		key    string
		wantID string
		kind   BackupObjectKind
	}{
		{BackupManifestKey(id), id, BackupManifestObject},
		{BackupChunkKey(id, "base.tar", 3), id, BackupChunkObject},
		{BackupNoteKey(id, time.Unix(0, 0)), id, BackupNoteObject},
		{"backups/" + id + "/stray", id, UnknownBackupObject},
		{"backups/" + id, id, UnknownBackupObject},
		{"backups/not-an-id/backup.json", "", UnknownBackupObject},
		{"backups/x", "", UnknownBackupObject},
		{"wal/00000001/" + id + "/backup.json", "", UnknownBackupObject},
	} {
		id, kind := parseBackupKey(tc.key)
		if id != tc.wantID || kind != tc.kind {
			t.Errorf("parseBackupKey(%q) = %q, %d; want %q, %d", tc.key, id, kind, tc.wantID, tc.kind)
		}
	}
}

func FuzzParseBackupKey(f *testing.F) {
	const id = "20261123T100000Z"
	f.Add(BackupManifestKey(id))
	f.Add(BackupChunkKey(id, "base.tar", 0))
	f.Add(BackupNoteKey(id, time.Unix(0, 0)))
	f.Add("backups/x/y")
	f.Add("backups/" + id)
	f.Fuzz(func(t *testing.T, key string) {
		id, kind := parseBackupKey(key)
		if id == "" {
			if kind != UnknownBackupObject {
				t.Fatalf("%q: kind %d without a backup id", key, kind)
			}
			return
		}
		// Whatever names a backup lies in its folder (or is the bare
		// folder name), and the key functions agree with the
		// classification.
		if !ValidBackupID(id) || !IsBackupKey(id, key) && key != BackupPrefix+id {
			t.Fatalf("%q: id %q", key, id)
		}
		switch kind {
		case BackupManifestObject:
			if key != BackupManifestKey(id) {
				t.Fatalf("%q classified as the manifest of %s", key, id)
			}
		case BackupNoteObject:
			if !IsBackupNoteKey(id, key) {
				t.Fatalf("%q classified as a note of %s", key, id)
			}
		case BackupChunkObject:
			if !strings.HasPrefix(key, BackupFolder(id)+dataDir) {
				t.Fatalf("%q classified as a chunk of %s", key, id)
			}
		}
	})
}

func TestBackupObjects(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	const done, interrupted = "20261123T100000Z", "20261124T100000Z"
	if err := r.PutBackupManifest(ctx, &BackupManifest{ID: done}); err != nil {
		t.Fatal(err)
	}
	yes := true
	if err := r.AddBackupNote(ctx, done, BackupNote{Keep: &yes}); err != nil {
		t.Fatal(err)
	}
	putKeys(t, r, BackupChunkKey(done, "base.tar", 0), BackupChunkKey(interrupted, "base.tar", 0),
		"backups/"+done+"/stray", "backups/junk/x")

	objs, err := r.BackupObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id   string
		kind BackupObjectKind
	}
	got := map[string]row{}
	var keys []string
	for _, o := range objs {
		if o.Size <= 0 {
			t.Errorf("%s: size %d", o.Key, o.Size)
		}
		got[o.Key] = row{o.ID, o.Kind}
		keys = append(keys, o.Key)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("not in key order: %v", keys)
	}
	want := map[string]row{
		BackupManifestKey(done):                    {done, BackupManifestObject},
		BackupChunkKey(done, "base.tar", 0):        {done, BackupChunkObject},
		BackupChunkKey(interrupted, "base.tar", 0): {interrupted, BackupChunkObject},
		"backups/" + done + "/stray":               {done, UnknownBackupObject},
		"backups/junk/x":                           {"", UnknownBackupObject},
	}
	notes := 0
	for k, g := range got {
		if g.kind == BackupNoteObject {
			notes++
			if g.id != done || !IsBackupNoteKey(done, k) {
				t.Errorf("note %s of %q", k, g.id)
			}
			continue
		}
		if w, ok := want[k]; !ok || w != g {
			t.Errorf("%s: %+v, want %+v", k, g, want[k])
		}
	}
	if notes != 1 || len(got) != len(want)+1 {
		t.Errorf("listed %v", got)
	}

	// The listings that classify the same keys agree.
	if ids, err := r.BackupIDs(ctx); err != nil || !slices.Equal(ids, []string{done}) {
		t.Errorf("BackupIDs = %v, %v", ids, err)
	}
	if marks, err := r.AllBackupMarks(ctx); err != nil || len(marks) != 1 || !marks[done].Keep {
		t.Errorf("AllBackupMarks = %+v, %v", marks, err)
	}
}

func TestBackupIDUsedAndStoredAt(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionNone)
	ctx := context.Background()
	const id, other = "20261123T100000Z", "20261123T100001Z"
	if used, err := r.BackupIDUsed(ctx, id); used || err != nil {
		t.Fatalf("empty repository: used=%v, %v", used, err)
	}
	putKeys(t, r, BackupChunkKey(id, "base.tar", 0))
	if used, err := r.BackupIDUsed(ctx, id); !used || err != nil {
		t.Errorf("after a chunk: used=%v, %v", used, err)
	}
	// An id that shares a prefix with a used one is free.
	if used, err := r.BackupIDUsed(ctx, other); used || err != nil {
		t.Errorf("%s: used=%v, %v", other, used, err)
	}
	if _, err := r.BackupStoredAt(ctx, id); !storage.IsNotExist(err) {
		t.Errorf("stored-at of a backup without manifest: %v", err)
	}
	if err := r.PutBackupManifest(ctx, &BackupManifest{ID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BackupStoredAt(ctx, id); err != nil {
		t.Errorf("stored-at: %v", err)
	}
	if r.String() != "mem://" {
		t.Errorf("String() = %q, want the store's URL", r.String())
	}
}

func TestListWALReportsUnknownKeys(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionNone)
	ctx := context.Background()
	good := WALSegmentKey(1, 3, testSegSize)
	history := "wal/00000002/00000002.history"
	wrongFolder := "wal/00000002/" + pgwal.SegmentName(1, 4, testSegSize)
	putKeys(t, r, good, history, wrongFolder, "wal/junk")
	wal, unknown, err := r.ListWAL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, w := range wal {
		keys = append(keys, w.Key)
		if w.Size <= 0 {
			t.Errorf("%s: size %d", w.Key, w.Size)
		}
	}
	if !slices.Equal(keys, []string{good, history}) {
		t.Errorf("WAL %v", keys)
	}
	keys = nil
	for _, u := range unknown {
		keys = append(keys, u.Key)
		if u.Err == nil || u.Size <= 0 {
			t.Errorf("unknown %s: err %v, size %d", u.Key, u.Err, u.Size)
		}
	}
	if !slices.Equal(keys, []string{"wal/00000002/" + pgwal.SegmentName(1, 4, testSegSize), "wal/junk"}) {
		t.Errorf("unknown %v", keys)
	}
}

func TestHasWAL(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionNone)
	ctx := context.Background()
	seg := pgwal.SegmentName(1, 3, testSegSize)
	f, _ := pgwal.ParseFileName(seg)
	if found, err := r.HasWAL(ctx, f); found || err != nil {
		t.Fatalf("empty: %v, %v", found, err)
	}
	putKeys(t, r, WALKey(f))
	if found, err := r.HasWAL(ctx, f); !found || err != nil {
		t.Errorf("HasWAL: %v, %v", found, err)
	}
	if found, err := r.HasWALSegment(ctx, 1, 3); !found || err != nil {
		t.Errorf("HasWALSegment(1, 3): %v, %v", found, err)
	}
	if found, err := r.HasWALSegment(ctx, 2, 3); found || err != nil {
		t.Errorf("HasWALSegment(2, 3): %v, %v", found, err)
	}
}

func TestHasReturnsStoreErrors(t *testing.T) {
	r, st, _ := newTestRepo(t, EncryptionNone)
	// Every Stat fails as an unreachable store's would.
	fst := faulty.Wrap(st)
	fst.Inject(faulty.Fault{Ops: faulty.Stat, Err: storage.Transient(errors.New("connection refused"))})
	r.store = fst
	ctx := context.Background()
	if found, err := r.HasWALSegment(ctx, 1, 3); found || !storage.IsTransient(err) {
		t.Errorf("HasWALSegment: %v, %v", found, err)
	}
	if found, err := r.HasFilestoreObject(ctx, FilestoreNameOf(strings.Repeat("a", 40))); found || !storage.IsTransient(err) {
		t.Errorf("HasFilestoreObject: %v, %v", found, err)
	}
}

func TestBackupHistory(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	m := &BackupManifest{ID: "20261123T100000Z", Timeline: 1, StartLSN: pgwal.SegmentStart(2, testSegSize) + 0x28,
		StopLSN: pgwal.SegmentStart(2, testSegSize) + 0x138, WALSegmentSize: testSegSize}
	if found, err := r.HasBackupHistory(ctx, m); found || err != nil {
		t.Fatalf("empty: %v, %v", found, err)
	}
	if _, err := r.BackupHistory(ctx, m); !storage.IsNotExist(err) {
		t.Fatalf("read missing history: %v", err)
	}
	text := fmt.Sprintf("START WAL LOCATION: %s (file %s)\nSTOP WAL LOCATION: %s (file %s)\nSTART TIME: 2026-11-23 10:00:00 UTC\nSTOP TIME: 2026-11-23 10:00:09 UTC\n",
		m.StartLSN, pgwal.SegmentName(1, 2, testSegSize), m.StopLSN, pgwal.SegmentName(1, 2, testSegSize))
	if _, err := r.Put(ctx, BackupHistoryKey(m.Timeline, m.StartLSN, testSegSize), []byte(text), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if found, err := r.HasBackupHistory(ctx, m); !found || err != nil {
		t.Errorf("HasBackupHistory: %v, %v", found, err)
	}
	h, err := r.BackupHistory(ctx, m)
	if err != nil || h.StartLSN != m.StartLSN || h.StopLSN != m.StopLSN {
		t.Errorf("BackupHistory = %+v, %v", h, err)
	}
}

func TestStreamPartialListingAndRemoval(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionNone)
	ctx := context.Background()
	p := r.StreamPartialOf(1, 3, 0x2000)
	name := pgwal.SegmentName(1, 3, testSegSize)
	if p.Key != StreamPartialKey(1, name, 0x2000) || p.File.Name != name || p.File.Timeline != 1 || p.Valid != 0x2000 {
		t.Fatalf("StreamPartialOf = %+v", p)
	}
	small := r.StreamPartialOf(1, 3, 0x1000)
	tooBig := StreamPartialKey(1, pgwal.SegmentName(1, 4, testSegSize), testSegSize+1)
	putKeys(t, r, small.Key, p.Key, tooBig, "stream/00000001/junk")

	ps, unknown, err := r.AllStreamPartials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Key != small.Key || ps[1].Key != p.Key || ps[0].Size <= 0 {
		t.Errorf("partials %+v", ps)
	}
	var keys []string
	for _, u := range unknown {
		keys = append(keys, u.Key)
		if u.Err == nil {
			t.Errorf("unknown %s without a reason", u.Key)
		}
	}
	if !slices.Equal(keys, []string{tooBig, "stream/00000001/junk"}) {
		t.Errorf("unknown %v", keys)
	}

	if err := r.RemoveStreamPartial(ctx, small); err != nil {
		t.Fatal(err)
	}
	// Already gone is done.
	if err := r.RemoveStreamPartial(ctx, small); err != nil {
		t.Errorf("second removal: %v", err)
	}
	if ps, err := r.StreamPartials(ctx, 1, name); err != nil || len(ps) != 1 || ps[0].Key != p.Key {
		t.Errorf("after removal: %+v, %v", ps, err)
	}
}

func TestFilestoreObjectPut(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	content := []byte("an attachment")
	sum1 := fmt.Sprintf("%x", sha1.Sum(content))
	name := FilestoreNameOf(sum1)
	if found, err := r.HasFilestoreObject(ctx, name); found || err != nil {
		t.Fatalf("empty: %v, %v", found, err)
	}
	if _, err := r.PutFilestoreObject(ctx, name, content, sha256.Sum256(content)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutFilestoreObject(ctx, name, content, sha256.Sum256(content)); !storage.IsExist(err) {
		t.Errorf("second put: %v, want an IsExist error", err)
	}
	if found, err := r.HasFilestoreObject(ctx, name); !found || err != nil {
		t.Errorf("HasFilestoreObject: %v, %v", found, err)
	}

	// A large file: sealed as a stream, then stored.
	big := bytes.Repeat([]byte("large attachment "), 10000)
	bigName := FilestoreNameOf(fmt.Sprintf("%x", sha1.Sum(big)))
	var sealed bytes.Buffer
	if err := r.SealFilestoreObject(&sealed, bigName, bytes.NewReader(big), int64(len(big)), sha256.Sum256(big)); err != nil {
		t.Fatal(err)
	}
	if err := r.PutSealedFilestoreObject(ctx, bigName, bytes.NewReader(sealed.Bytes())); err != nil {
		t.Fatal(err)
	}
	err := r.PutSealedFilestoreObject(ctx, bigName, bytes.NewReader(sealed.Bytes()))
	if !storage.IsExist(err) || !strings.Contains(err.Error(), FilestoreObjectKey(bigName)) {
		t.Errorf("second put: %v, want an IsExist error naming the key", err)
	}
	for n, want := range map[string][]byte{name: content, bigName: big} {
		rc, _, err := r.OpenFilestoreObject(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read back %d bytes, %v", n, len(got), err)
		}
	}
	objs, err := r.FilestoreObjects(ctx)
	if err != nil || len(objs) != 2 || objs[bigName].Key != FilestoreObjectKey(bigName) {
		t.Errorf("FilestoreObjects = %+v, %v", objs, err)
	}
}

func TestSealedObjectsAuditAndRemove(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	ctx := context.Background()
	wal := WALSegmentKey(1, 3, testSegSize)
	chunk := BackupChunkKey("20261123T100000Z", "base.tar", 0)
	partial := StreamPartialKey(1, pgwal.SegmentName(1, 4, testSegSize), 0x100)
	fsObj := FilestoreObjectKey(FilestoreNameOf(strings.Repeat("b", 40)))
	putKeys(t, r, fsObj, partial, chunk, wal)
	if err := r.AppendAudit(ctx, AuditRecord{Command: "init", Action: "created"}); err != nil {
		t.Fatal(err)
	}
	lock, err := r.Lock(ctx, LockShared, "test", LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release(ctx)

	audit, err := r.AuditObjects(ctx)
	if err != nil || len(audit) != 1 || !strings.HasPrefix(audit[0].Key, AuditPrefix) || audit[0].Size <= 0 {
		t.Fatalf("AuditObjects = %+v, %v", audit, err)
	}
	objs, err := r.SealedObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, oi := range objs {
		keys = append(keys, oi.Key)
	}
	// In the order of the format's prefixes; walvault.json and the lock
	// are not sealed objects.
	if want := []string{wal, chunk, partial, audit[0].Key, fsObj}; !slices.Equal(keys, want) {
		t.Errorf("SealedObjects = %v, want %v", keys, want)
	}

	if err := r.Remove(ctx, chunk); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(ctx, chunk); !storage.IsNotExist(err) {
		t.Errorf("removing a removed object: %v, want an IsNotExist error", err)
	}
	if used, err := r.BackupIDUsed(ctx, "20261123T100000Z"); used || err != nil {
		t.Errorf("backup id still used after removing its only object: %v, %v", used, err)
	}
}
