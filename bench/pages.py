#!/usr/bin/env python3
"""bench/pages.py: which 8 KiB pages of a data directory changed.

  pages.py snapshot PGDATA OUT    hash every page of every file (pg_wal excluded) into OUT
  pages.py diff OLD NEW           print "changed total" page counts between two snapshots

A page is changed when its hash differs or it is new; pages of removed files
do not count. Used by bench/incremental.sh to put the bytes a backup uploads
next to the share of pages that changed since the previous one.
"""
import hashlib
import os
import pickle
import sys

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


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "snapshot":
        snapshot(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
