#!/usr/bin/env python3
"""Picks the committed corpus out of a (cmin-minimised) pool of inputs.

    python3 seeds/cap_corpus.py POOL_DIR OUT_DIR [MAX_FILES] [MAX_BYTES]

Every file whose name is not a 40-hex content hash (the `tests/corpus/*.xml`
copies and the `seed-*` edge cases) is always kept. The rest are added
greedily, most new coverage features per byte first, until MAX_FILES
(default 300) or MAX_BYTES (default 2,000,000) is reached. Files with the same
content are kept once (a named file wins over its hash-named twin).

Each input's features come from running the fuzz target alone on it in
libFuzzer's merge mode (`-merge=1 -merge_control_file=...`); an input that
crashes the target has no features and is never picked.
Build the target first (`RUSTC_BOOTSTRAP=1 cargo fuzz build envelope`). Run
from `fuzz/`. OUT_DIR is replaced. For another target than `envelope`, set
FUZZ_TARGET (e.g. `FUZZ_TARGET=digest python3 seeds/cap_corpus.py ...`).
"""
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# The target whose binary measures coverage: `envelope` unless the
# FUZZ_TARGET environment variable names another (`FUZZ_TARGET=digest`).
TARGET = os.environ.get("FUZZ_TARGET", "envelope")
BINARY = os.path.join(
    HERE, "..", "target", "x86_64-unknown-linux-gnu", "release", TARGET
)
HASH_NAME = re.compile(r"^[0-9a-f]{40}$")


def features(path):
    """The set of libFuzzer features `path` alone covers (empty if it crashes)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in")
        dst = os.path.join(tmp, "out")
        os.mkdir(src)
        os.mkdir(dst)
        shutil.copy(path, src)
        ctl = os.path.join(tmp, "control")
        subprocess.run(
            [BINARY, "-merge=1", f"-merge_control_file={ctl}", "-max_len=65536", dst, src],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        out = set()
        if os.path.exists(ctl):
            for line in open(ctl):
                if line.startswith("FT "):
                    out.update(int(x) for x in line.split()[2:])
        return out


def main():
    pool, out_dir = sys.argv[1], sys.argv[2]
    max_files = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    max_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 2_000_000
    names = sorted(n for n in os.listdir(pool) if os.path.isfile(os.path.join(pool, n)))

    by_content = {}
    for n in names:
        digest = hashlib.sha1(open(os.path.join(pool, n), "rb").read()).hexdigest()
        kept = by_content.get(digest)
        if kept is None or (HASH_NAME.match(kept) and not HASH_NAME.match(n)):
            by_content[digest] = n
    candidates = sorted(by_content.values())

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        feats = dict(zip(candidates, ex.map(lambda n: features(os.path.join(pool, n)), candidates)))
    size = {n: os.path.getsize(os.path.join(pool, n)) for n in candidates}
    every = set().union(*feats.values()) if feats else set()

    chosen = [n for n in candidates if not HASH_NAME.match(n)]
    covered = set().union(*(feats[n] for n in chosen)) if chosen else set()
    total = sum(size[n] for n in chosen)
    rest = [n for n in candidates if HASH_NAME.match(n)]
    while len(chosen) < max_files:
        best, best_score = None, 0.0
        for n in rest:
            gain = len(feats[n] - covered)
            if gain == 0 or total + size[n] > max_bytes:
                continue
            score = gain / (1 + size[n] / 4096)
            if score > best_score:
                best, best_score = n, score
        if best is None:
            break
        chosen.append(best)
        rest.remove(best)
        covered |= feats[best]
        total += size[best]

    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    for n in chosen:
        shutil.copy(os.path.join(pool, n), os.path.join(out_dir, n))
    print(
        f"{len(chosen)} files, {total} bytes, {len(covered)} of {len(every)} features "
        f"(pool: {len(names)} files)"
    )


if __name__ == "__main__":
    main()
