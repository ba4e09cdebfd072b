// Package waltest builds WAL for unit tests: segments with valid long page
// headers, and WAL records laid out in pages as PostgreSQL writes them.
// Repositories to store them in come from internal/repotest. End-to-end
// tests use a real PostgreSQL instead.
package waltest

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/walvault/walvault/internal/pgwal"
)

// SegSize is the segment size of test repositories: the smallest PostgreSQL
// allows, so tests stay light.
const SegSize = 1 << 20

// SysID is the system identifier of the test cluster (and of the
// repositories internal/repotest makes).
const SysID uint64 = 7312345678901234567

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
