#!/usr/bin/env python3
"""bench/pages.py: which 8 KiB pages of a data directory changed.

  pages.py snapshot PGDATA OUT    hash every page of every file (pg_wal excluded) into OUT
  pages.py diff OLD NEW           print "changed total" page counts between two snapshots
  pages.py weighted OLD NEW PGDATA
                                  print "changed total" compressed bytes: the pages of PGDATA
                                  that changed between OLD and NEW (taken after NEW, nothing
                                  written since), and all its pages, each file's pages
                                  compressed in independent 128 KiB frames of 16 pages with
                                  zstd -1 (the zstd program's benchmark mode, -B131072), as
                                  walvault stores new pages: what storing every changed page
                                  costs next to storing all of them

A page is changed when its hash differs or it is new; pages of removed files
do not count. Used by bench/incremental.sh to put the bytes a backup uploads
next to the share of pages that changed since the previous one.
"""
import hashlib
import os
import pickle
import re
import subprocess
import sys
import tempfile

PAGE = 8192


def snapshot(pgdata, out):
    pages = {}
    for root, dirs, files in os.walk(pgdata):
        rel = os.path.relpath(root, pgdata)
        if rel == "pg_wal" or rel.startswith("pg_wal" + os.sep):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    n = 0
                    while True:
                        b = f.read(PAGE)
                        if not b:
                            break
                        pages[(os.path.join(rel, name), n)] = hashlib.blake2b(b, digest_size=12).digest()
                        n += 1
            except OSError:
                continue
    with open(out, "wb") as f:
        pickle.dump(pages, f)


def diff(old, new):
    with open(old, "rb") as f:
        a = pickle.load(f)
    with open(new, "rb") as f:
        b = pickle.load(f)
    changed = sum(1 for k, v in b.items() if a.get(k) != v)
    print(changed, len(b))


def zstd_size(data):
    """Bytes of data compressed with zstd -1 in independent 128 KiB blocks."""
    if not data:
        return 0
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["zstd", "-q", "-b1", "-e1", "-i0", "-B131072", f.name],
                             capture_output=True, text=True, check=True)
    m = re.findall(r"^\s*-1\s+(\d+) \(", out.stdout + out.stderr, re.M)
    if not m:
        sys.exit("pages.py: cannot read zstd's benchmark output: " + out.stdout + out.stderr)
    return int(m[-1])


def weighted(old, new, pgdata):
    with open(old, "rb") as f:
        a = pickle.load(f)
    with open(new, "rb") as f:
        b = pickle.load(f)
    files = {}
    for (name, n), v in b.items():
        files.setdefault(name, []).append((n, a.get((name, n)) != v))
    changed = total = 0
    for name, pages in files.items():
        pages.sort()
        try:
            with open(os.path.join(pgdata, name), "rb") as f:
                data = f.read()
        except OSError:
            continue
        all_pages = bytearray()
        changed_pages = bytearray()
        for n, ch in pages:
            page = data[n * PAGE:(n + 1) * PAGE]
            all_pages += page
            if ch:
                changed_pages += page
        total += zstd_size(bytes(all_pages))
        changed += zstd_size(bytes(changed_pages))
    print(changed, total)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "snapshot":
        snapshot(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "weighted":
        weighted(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
