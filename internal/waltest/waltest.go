// Package waltest builds repositories and WAL files for unit tests: a local
// store in a temp dir, real age keys, and segments with valid long page
// headers. End-to-end tests use a real PostgreSQL instead.
package waltest

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
)

// SegSize is the segment size of test repositories: the smallest PostgreSQL
// allows, so tests stay light.
const SegSize = 1 << 20

// SysID is the system identifier of the test cluster.
const SysID uint64 = 7312345678901234567

// Repo creates an encrypted repository on a local store in a temp dir.
func Repo(t testing.TB) (*repo.Repository, *age.X25519Identity, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := repo.Init(context.Background(), st, repo.Config{
		SystemIdentifier: strconv.FormatUint(SysID, 10), PGMajor: 15, WALSegmentSize: SegSize,
		Encryption: repo.EncryptionAge, CreatedAt: time.Now().UTC(),
	}, repo.Options{Recipients: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, id, dir
}

// Reopen opens the repository Repo created in dir again, with id to read
// and write, on the store wrap makes of dir's local store: a test puts a
// failing or counting store under a repository this way (the repository
// keeps its store to itself).
func Reopen(t testing.TB, dir string, id *age.X25519Identity, wrap func(storage.Store) storage.Store) *repo.Repository {
	t.Helper()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), wrap(st), repo.Options{Recipients: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Segment returns a WAL segment of SegSize bytes for (tli, segno) of the
// cluster sysid, with a valid PostgreSQL 15 long page header and
// pseudo-random content derived from seed.
func Segment(tli uint32, segno uint64, sysid uint64, seed uint64) []byte {
	b := make([]byte, SegSize)
	rng := rand.New(rand.NewPCG(seed, segno))
	for i := pgwal.LongPageHeaderSize; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64()&0x0f0f0f0f0f0f0f0f)
	}
	binary.LittleEndian.PutUint16(b[0:], 0xD110)
	binary.LittleEndian.PutUint16(b[2:], pgwal.XLPLongHeader)
	binary.LittleEndian.PutUint32(b[4:], tli)
	binary.LittleEndian.PutUint64(b[8:], segno*SegSize)
	binary.LittleEndian.PutUint32(b[16:], 0)
	binary.LittleEndian.PutUint64(b[24:], sysid)
	binary.LittleEndian.PutUint32(b[32:], SegSize)
	binary.LittleEndian.PutUint32(b[36:], 8192)
	return b
}
