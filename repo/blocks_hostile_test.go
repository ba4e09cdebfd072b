package repo_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// sealPlainFrame seals z as the frame at off of pack p of a repository
// without encryption, whose data key anyone reads in the pack's head: what
// whoever can write such a bucket can do.
func sealPlainFrame(t *testing.T, tr *repotest.Repo, p *repo.Pack, off int64, z []byte) []byte {
	t.Helper()
	rc, err := tr.Store.Get(context.Background(), p.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	stored, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	dk := stored[p.DataStart-32 : p.DataStart]
	b, err := aes.NewCipher(dk)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	nonce := binary.BigEndian.AppendUint64(make([]byte, 4), uint64(off))
	aad := binary.BigEndian.AppendUint64(append([]byte("walvault block v1\x00"+p.Key), 0), uint64(off))
	return aead.Seal(nil, nonce, z, aad)
}

// TestOpenFrameBoundsDecoding: a frame whose zstd header declares a huge
// content size, or that holds many frames, is refused before the decoder
// allocates for it.
func TestOpenFrameBoundsDecoding(t *testing.T) {
	tr := repotest.New(t, repotest.Plain(), repotest.Signed())
	fl := writePack(t, tr, testBlocks(3, 1))
	p, err := tr.OpenPack(context.Background(), fl.Packs[0])
	if err != nil {
		t.Fatal(err)
	}
	// One zstd frame, single segment, content size 256 MiB, then one
	// run-length block of 128 KiB: 17 bytes.
	huge := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}
	huge = binary.LittleEndian.AppendUint64(huge, 256<<20)
	huge = append(huge, 0x03, 0x00, 0x10, 'A')
	// A small valid frame (content size 1) followed by the huge one.
	small := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x01, 0x09, 0x00, 0x00, 'A'}
	for name, z := range map[string][]byte{"huge": huge, "two frames": append(small, huge...)} {
		t.Run(name, func(t *testing.T) {
			const off = 1 << 20
			sealed := sealPlainFrame(t, tr, p, off, z)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := p.OpenFrame(sealed, off)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, repo.ErrIntegrity) {
				t.Fatalf("OpenFrame: %v, want ErrIntegrity", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
				t.Fatalf("OpenFrame allocated %d bytes for a frame of %d", n, len(z))
			}
		})
	}
}
