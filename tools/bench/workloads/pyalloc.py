"""pyalloc: allocation-heavy CPython workload for the BuddyMalloc bench.

Run with PYTHONMALLOC=malloc so that every object allocation goes through
malloc/free (otherwise pymalloc serves objects <= 512 B from its own arenas).
Models a typical scripting workload: building and tearing down dicts of
records, string formatting/concatenation/splitting, list growth and sorting,
a cache with eviction. Deterministic (seeded); prints a digest so results can
be compared across allocators, and exits non-zero if an internal consistency
check fails.

usage: python3 pyalloc.py [scale=0.5] [seed=1]
"""
import hashlib
import random
import sys


def records(rng, n):
    out = {}
    for i in range(n):
        key = "user:%d:%s" % (i, "x" * rng.randrange(0, 40))
        out[key] = {
            "id": i,
            "name": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                            for _ in range(rng.randrange(3, 16))),
            "tags": [str(rng.randrange(1000)) for _ in range(rng.randrange(0, 8))],
            "score": rng.random(),
            "blob": bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))),
        }
    return out


def churn_dicts(rng, rounds, n, h):
    for r in range(rounds):
        d = records(rng, n)
        # mutate: delete a third, update a third, add new keys
        keys = list(d)
        rng.shuffle(keys)
        for k in keys[: n // 3]:
            del d[k]
        for k in keys[n // 3: 2 * n // 3]:
            d[k]["tags"].append("updated-%d" % r)
            d[k]["name"] = d[k]["name"].upper() * 2
        for i in range(n // 3):
            d["new:%d:%d" % (r, i)] = {"id": -i, "name": "n%d" % i, "tags": [],
                                      "score": 0.0, "blob": b""}
        if len(d) != n - n // 3 + n // 3:
            raise SystemExit("pyalloc: dict size mismatch")
        top = sorted(d.values(), key=lambda v: (v["score"], v["id"]))[-10:]
        h.update(repr([(v["id"], v["name"]) for v in top]).encode())


def strings(rng, n, h):
    parts = []
    for i in range(n):
        s = "%08x-%s-%d" % (rng.getrandbits(32), "ab" * rng.randrange(1, 50), i)
        parts.append(s)
    text = "\n".join(parts)
    words = text.replace("-", " ").split()
    counts = {}
    for w in words:
        counts[w[:6]] = counts.get(w[:6], 0) + 1
    acc = ""
    for i in range(n // 10):
        acc += parts[i][:8]
        if len(acc) > 4096:
            h.update(acc.encode())
            acc = ""
    h.update(str(sorted(counts.items())[:50]).encode())
    if len(parts) != n:
        raise SystemExit("pyalloc: string list size mismatch")


def lists(rng, n, h):
    lol = [[rng.randrange(10 ** 6) for _ in range(rng.randrange(1, 100))]
           for _ in range(n)]
    flat = [x for sub in lol for x in sub]
    flat.sort()
    tuples = [(x % 97, str(x)) for x in flat[::3]]
    tuples.sort()
    s = set(flat)
    h.update(("%d %d %d" % (len(flat), len(s), tuples[len(tuples) // 2][0])).encode())


def lru_cache(rng, ops, cap, h):
    cache = {}
    hits = 0
    for i in range(ops):
        k = rng.randrange(cap * 3)
        v = cache.pop(k, None)
        if v is not None:
            hits += 1
            if v[0] != k:
                raise SystemExit("pyalloc: cache corruption")
        else:
            v = (k, "v" * (k % 200), [k] * (k % 7))
        cache[k] = v
        if len(cache) > cap:
            del cache[next(iter(cache))]
    h.update(str(hits).encode())


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed)
    h = hashlib.sha256()
    churn_dicts(rng, max(1, int(6 * scale)), 6000, h)
    strings(rng, int(60000 * scale), h)
    lists(rng, int(8000 * scale), h)
    lru_cache(rng, int(200000 * scale), 20000, h)
    print("pyalloc ok digest=%s" % h.hexdigest())


if __name__ == "__main__":
    main()
