package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// hsBucket is what the hostile-bucket suite's attacker holds: raw write
// access to the repository's objects, by key, with no key of walvault's.
// Snapshots keep named states of the repository so that every case starts
// from the same pristine one.
type hsBucket interface {
	Keys() map[string]bool
	Get(key string) []byte
	Put(key string, data []byte)
	Delete(key string)
	Snapshot(name string)
	Restore(name string)
	// SnapshotGet reads key as it was in snapshot name (nil: absent).
	SnapshotGet(name, key string) []byte
	SnapshotKeys(name string) map[string]bool
}

// hsDirBucket is a directory repository, changed with os as its owner
// could.
type hsDirBucket struct {
	t    testing.TB
	h    *Harness
	root string
}

func (b *hsDirBucket) path(key string) string { return filepath.Join(b.root, filepath.FromSlash(key)) }

func (b *hsDirBucket) snapDir(name string) string { return b.root + ".snapshot-" + name }

func dirKeys(t testing.TB, root string) map[string]bool {
	keys := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".tmp" {
				return filepath.SkipDir
			}
			return nil
		}
		keys[rel] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func (b *hsDirBucket) Keys() map[string]bool { return dirKeys(b.t, b.root) }

func (b *hsDirBucket) Get(key string) []byte {
	data, err := os.ReadFile(b.path(key))
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

// Put replaces the file (a new inode: snapshots are never written through).
func (b *hsDirBucket) Put(key string, data []byte) {
	p := b.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		b.t.Fatal(err)
	}
	tmp := p + ".attacker-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		b.t.Fatal(err)
	}
	b.h.ChownTree(b.root)
}

func (b *hsDirBucket) Delete(key string) {
	if err := os.Remove(b.path(key)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *hsDirBucket) cpa(src, dst string) {
	if err := os.RemoveAll(dst); err != nil {
		b.t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		b.t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}

func (b *hsDirBucket) Snapshot(name string) { b.cpa(b.root, b.snapDir(name)) }
func (b *hsDirBucket) Restore(name string)  { b.cpa(b.snapDir(name), b.root) }

func (b *hsDirBucket) SnapshotGet(name, key string) []byte {
	data, err := os.ReadFile(filepath.Join(b.snapDir(name), filepath.FromSlash(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

func (b *hsDirBucket) SnapshotKeys(name string) map[string]bool { return dirKeys(b.t, b.snapDir(name)) }

// hsS3Bucket is a repository under a prefix of a MinIO bucket, changed
// with minio-go and the bucket's credentials. Snapshots are copies under
// snapshots/<name>/ in the same bucket.
type hsS3Bucket struct {
	t      testing.TB
	c      *minio.Client
	bucket string
	prefix string // the repository's prefix, without a trailing slash
}

func (b *hsS3Bucket) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

type s3Obj struct{ etag string }

func (b *hsS3Bucket) list(prefix string) map[string]s3Obj {
	ctx, cancel := b.ctx()
	defer cancel()
	objs := map[string]s3Obj{}
	for info := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			b.t.Fatalf("list s3://%s/%s: %v", b.bucket, prefix, info.Err)
		}
		objs[strings.TrimPrefix(info.Key, prefix)] = s3Obj{etag: info.ETag}
	}
	return objs
}

func (b *hsS3Bucket) snapPrefix(name string) string { return "snapshots/" + name + "/" }

func keySet(objs map[string]s3Obj) map[string]bool {
	keys := map[string]bool{}
	for k := range objs {
		keys[k] = true
	}
	return keys
}

func (b *hsS3Bucket) Keys() map[string]bool { return keySet(b.list(b.prefix + "/")) }

func (b *hsS3Bucket) getFull(full string) []byte {
	ctx, cancel := b.ctx()
	defer cancel()
	obj, err := b.c.GetObject(ctx, b.bucket, full, minio.GetObjectOptions{})
	if err != nil {
		b.t.Fatalf("get %s: %v", full, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		b.t.Fatalf("read %s: %v", full, err)
	}
	return data
}

func (b *hsS3Bucket) Get(key string) []byte {
	data := b.getFull(b.prefix + "/" + key)
	if data == nil {
		b.t.Fatalf("get %s: no such object", key)
	}
	return data
}

func (b *hsS3Bucket) Put(key string, data []byte) {
	ctx, cancel := b.ctx()
	defer cancel()
	if _, err := b.c.PutObject(ctx, b.bucket, b.prefix+"/"+key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		b.t.Fatalf("put %s: %v", key, err)
	}
}

func (b *hsS3Bucket) Delete(key string) {
	ctx, cancel := b.ctx()
	defer cancel()
	if err := b.c.RemoveObject(ctx, b.bucket, b.prefix+"/"+key, minio.RemoveObjectOptions{}); err != nil {
		b.t.Fatalf("delete %s: %v", key, err)
	}
}

// sync makes the objects under dst what they are under src: copies what
// is missing or differs (by ETag), removes what src lacks.
func (b *hsS3Bucket) sync(src, dst string) {
	from, to := b.list(src), b.list(dst)
	ctx, cancel := b.ctx()
	defer cancel()
	var keys []string
	for k := range from {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if o, ok := to[k]; ok && o.etag == from[k].etag {
			continue
		}
		_, err := b.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: b.bucket, Object: dst + k},
			minio.CopySrcOptions{Bucket: b.bucket, Object: src + k})
		if err != nil {
			b.t.Fatalf("copy %s to %s: %v", src+k, dst+k, err)
		}
	}
	for k := range to {
		if _, ok := from[k]; !ok {
			if err := b.c.RemoveObject(ctx, b.bucket, dst+k, minio.RemoveObjectOptions{}); err != nil {
				b.t.Fatalf("delete %s: %v", dst+k, err)
			}
		}
	}
}

func (b *hsS3Bucket) Snapshot(name string) { b.sync(b.prefix+"/", b.snapPrefix(name)) }
func (b *hsS3Bucket) Restore(name string)  { b.sync(b.snapPrefix(name), b.prefix+"/") }

func (b *hsS3Bucket) SnapshotGet(name, key string) []byte {
	return b.getFull(b.snapPrefix(name) + key)
}

func (b *hsS3Bucket) SnapshotKeys(name string) map[string]bool {
	return keySet(b.list(b.snapPrefix(name)))
}
