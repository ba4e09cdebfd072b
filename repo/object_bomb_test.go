package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// TestGetBoundsDecompression: an object whose signed header is genuine but
// whose body was replaced by a tiny zstd frame declaring 256 MiB of content
// is refused without the decoder allocating that much first (whoever can
// write the bucket can do it in a repository without encryption, and so can
// anyone holding the recipient in an encrypted one).
func TestGetBoundsDecompression(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repotest.Plain(), repotest.Signed())
	const key = "backups/20261207T000000Z/backup.json"
	if _, err := tr.Put(ctx, key, bytes.Repeat([]byte("x"), 1000), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := tr.Store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	h, err := repo.ParseObjectHeader(sealed)
	if err != nil {
		t.Fatal(err)
	}
	// One zstd frame, single segment, content size 256 MiB, then one
	// run-length block of 128 KiB: 17 bytes.
	bomb := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}
	bomb = binary.LittleEndian.AppendUint64(bomb, 256<<20)
	bomb = append(bomb, 0x03, 0x00, 0x10, 'A')
	forged := append(append([]byte(nil), sealed[:h.Size()]...), bomb...)
	if err := tr.Store.Put(ctx, key, bytes.NewReader(forged), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err = tr.Get(ctx, key)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, repo.ErrIntegrity) {
		t.Fatalf("Get of a forged body: %v, want ErrIntegrity", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Fatalf("Get allocated %d bytes for a body of %d", n, len(bomb))
	}
}
