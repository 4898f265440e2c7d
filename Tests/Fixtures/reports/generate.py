# Writes the fixture reports of this folder (schema version 1) from a small buddy-allocator simulation,
# so that their figures are consistent (reserved = used + cached + free, used = the live blocks' bytes).
# python3 generate.py [OUTPUT_DIR]; the output is the same on every run (seeded).
import os
import json, random, math, sys, copy

MIN, MAXO = 16, 16            # orders 0..16: 16B..1M
TOP = MIN << MAXO
CACHE_MAX_ORDER = 11          # 32K
class Pool:
    def __init__(s, seed, initial=1<<20, growth=2.0):
        s.rng = random.Random(seed)
        s.free = [set() for _ in range(MAXO+1)]
        s.used = {}               # addr -> (order, requested)
        s.cache = [[] for _ in range(MAXO+1)]
        s.segments = []           # (base, size)
        s.next_base = 0x7f3a1c000000
        s.reserved = 0
        s.stats = [dict(allocations=0, splits=0, coalesces=0) for _ in range(MAXO+1)]
        s.calls = {k:0 for k in ["malloc","calloc","realloc","reallocarray","free","posix_memalign","aligned_alloc","memalign","valloc","pvalloc","malloc_usable_size","free_sized","free_aligned_sized"]}
        s.sizes = {}
        s.align = {}
        s.peak_used = 0; s.peak_live = 0
        s.system_calls = 0; s.system_bytes = 0
        s.added = 0; s.released = 0
        s.growth = growth
        s.add_segment(initial)
    def add_segment(s, size):
        size = max(size, TOP)
        base = (s.next_base + size - 1) // size * size
        s.next_base = base + size
        s.segments.append((base, size))
        s.reserved += size; s.added += 1
        for a in range(base, base+size, TOP): s.free[MAXO].add(a)
    def order_for(s, n):
        o = 0
        while (MIN << o) < max(n,1): o += 1
        return o
    def take(s, order):
        o = order
        while o <= MAXO and not s.free[o]: o += 1
        if o > MAXO: return None
        a = min(s.free[o]); s.free[o].remove(a)
        while o > order:
            o -= 1; s.stats[o+1]['splits'] += 1
            s.free[o].add(a + (MIN << o))
        return a
    def give(s, a, o):
        while o < MAXO:
            b = a ^ (MIN << o)
            if b in s.free[o]:
                s.free[o].remove(b); s.stats[o]['coalesces'] += 1
                a = min(a,b); o += 1
            else: break
        s.free[o].add(a)
    def malloc(s, n, entry="malloc", align=None):
        s.calls[entry] += 1
        if n > TOP:
            s.system_calls += 1; s.system_bytes += n; return None
        b = 1
        while b < max(n,1): b *= 2
        s.sizes[max(16,b)] = s.sizes.get(max(16,b),0)+1
        if align: s.align[align] = s.align.get(align,0)+1
        o = s.order_for(max(n, align or 0))
        if o <= CACHE_MAX_ORDER and s.cache[o]:
            a = s.cache[o].pop()
        else:
            a = s.take(o)
            if a is None:
                # flush caches, then grow
                for co in range(len(s.cache)):
                    for ca in s.cache[co]: s.give(ca, co)
                    s.cache[co] = []
                a = s.take(o)
                if a is None:
                    s.add_segment(1 << math.ceil(math.log2(s.reserved*(s.growth-1))))
                    a = s.take(o)
        s.stats[o]['allocations'] += 1
        s.used[a] = (o, n)
        u = s.used_bytes()
        s.peak_used = max(s.peak_used, u); s.peak_live = max(s.peak_live, len(s.used))
        return a
    def free_(s, a):
        s.calls["free"] += 1
        o, n = s.used.pop(a)
        if o <= CACHE_MAX_ORDER:
            bin_ = s.cache[o]
            if len(bin_) >= 64 or (len(bin_)+1) * (MIN<<o) > 32768:
                half = len(bin_)//2
                for ca in bin_[:half]: s.give(ca, o)
                del bin_[:half]
            bin_.append(a)
        else:
            s.give(a, o)
    def used_bytes(s): return sum(MIN << o for o,_ in s.used.values())
    def report(s, pid, program, reason, seq, created, now, profile=None, bad=None, errors=None, latency=None, on_error="abort"):
        used = s.used_bytes()
        cached = sum(len(c)*(MIN<<o) for o,c in enumerate(s.cache))
        free = s.reserved - used - cached
        requested = sum(n for _,n in s.used.values())
        free = s.reserved - used - cached
        largest = max([MIN<<o for o in range(MAXO+1) if s.free[o]] or [0])
        orders = []
        for o in range(MAXO+1):
            orders.append(dict(order=o, block_size=MIN<<o,
                live=sum(1 for oo,_ in s.used.values() if oo==o), free=len(s.free[o]), cached=len(s.cache[o]),
                **s.stats[o]))
        usage = used / s.reserved
        ext = 1 - largest/free if free else 0.0
        intl = 1 - requested/used if used else 0.0
        errors = errors or {"invalid_pointer":0,"double_free":0}
        nerr = sum(errors.values())
        status = "CRITICAL" if nerr else ("WARNING" if ext > 0.8 or usage < 0.05 else "HEALTHY")
        doc = {
          "format":"buddymalloc-report","version":1,"pid":pid,"program":program,"reason":reason,"sequence":seq,"pool":"process",
          "time":{"created":round(created,2),"now":round(now,2),"uptime":round(now-created,3),"last_activity":round(now-0.01,2)},
          "config":{"min_block":16,"max_block":TOP,"initial_size":1<<20,"growth_factor":s.growth,"max_pool_size":0,"thread_safety":"auto","on_error":on_error},
          "memory":{"reserved":s.reserved,"resident":min(s.reserved, (used+cached+4095)//4096*4096 + int(free*0.15)//4096*4096),
             "used":used,"cached":cached,"free":free,"usage":round(usage,4),"requested":requested,
             "internal_fragmentation":round(intl,4),"largest_free_block":largest,"external_fragmentation":round(ext,4),
             "peak_used":s.peak_used,"live_allocations":len(s.used),"peak_live_allocations":s.peak_live},
          "calls":dict(s.calls),
          "failures":{"malloc":0,"calloc":0,"realloc":0,"posix_memalign":0,"aligned_alloc":0,"memalign":0},
          "errors":errors,
          "system":{"calls":s.system_calls,"bytes":s.system_bytes},
          "segments":{"count":len(s.segments),"added":s.added,"released":s.released},
          "orders":orders,
          "sizes":[{"upto":k,"count":v} for k,v in sorted(s.sizes.items())],
          "alignments":[{"alignment":k,"count":v} for k,v in sorted(s.align.items())],
          "latency":latency or {"mode":"sampled","sample_period":64,"alloc_avg_ns":31.0,"alloc_max_ns":5100,"free_avg_ns":22.0,"free_max_ns":3000,"samples":(sum(s.calls.values()))//64},
          "health":{"status":status,"message":f"usage {round(usage*100)}%, external fragmentation {round(ext*100)}%, {nerr} errors"},
          "profile":profile or {"sample_bytes":0,"sites":[]},
          "bad_pointers":bad or [],
        }
        return doc

def size_sample(rng):
    r = rng.random()
    if r < 0.55: return int(rng.lognormvariate(3.6, 0.7)) + 1     # ~ 40B
    if r < 0.85: return int(rng.lognormvariate(5.5, 0.8)) + 1     # ~ 250B
    if r < 0.97: return int(rng.lognormvariate(7.8, 0.9)) + 1     # ~ 2.5K
    if r < 0.995: return rng.randint(8192, 65536)
    return rng.randint(100000, 600000)

def workload(pool, steps, live_target, rng, ptrs):
    for _ in range(steps):
        if ptrs and (len(ptrs) > live_target or rng.random() < 0.42):
            a = ptrs.pop(rng.randrange(len(ptrs)))
            pool.free_(a)
        else:
            r = rng.random()
            n = size_sample(rng)
            if r < 0.9: a = pool.malloc(n)
            elif r < 0.96: a = pool.malloc(n, "calloc")
            elif r < 0.99:
                # realloc modelled as a fresh allocation plus free of an old one
                a = pool.malloc(n, "realloc")
                if ptrs:
                    old = ptrs.pop(rng.randrange(len(ptrs))); o,_ = pool.used.pop(old); pool.give(old, o)
            else: a = pool.malloc(n, "posix_memalign", align=64)
            if a is not None: ptrs.append(a)
        if rng.random() < 0.02: pool.calls["malloc_usable_size"] += 1

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
T0 = 1764012345.12
# 1. python3 at exit.
rng = random.Random(1); p = Pool(1); ptrs = []
workload(p, 6000, 1500, rng, ptrs)
for _ in range(400): p.free_(ptrs.pop(rng.randrange(len(ptrs))))
doc = p.report(6513, "python3", "exit", 0, T0, T0+4.38)
json.dump(doc, open(f"{out}/python-exit.json","w"), indent=2); open(f"{out}/python-exit.json","a").write("\n")

# 2. A series: cc1 with periodic reports every 0.5 s, growing then shrinking, then exit.
rng = random.Random(2); p = Pool(2); ptrs = []
lines = []
targets = [800, 2000, 4000, 6000, 6500, 5000, 2500, 600]
for i, t in enumerate(targets):
    workload(p, 3500, t, rng, ptrs)
    lines.append(json.dumps(p.report(4242, "cc1", "interval", i, T0, T0 + 0.5*(i+1)), separators=(",",":")))
while len(ptrs) > 150: p.free_(ptrs.pop(rng.randrange(len(ptrs))))
lines.append(json.dumps(p.report(4242, "cc1", "exit", len(targets), T0, T0 + 0.5*len(targets) + 0.21), separators=(",",":")))
open(f"{out}/series.jsonl","w").write("\n".join(lines) + "\n")

# 3. Profile sites and bad pointers (a program with a double free under BUDDY_ON_ERROR=log).
rng = random.Random(3); p = Pool(3); ptrs = []
workload(p, 1500, 400, rng, ptrs)
profile = {"sample_bytes": 524288, "sites": [
  {"live_bytes": 262144, "live_count": 4, "frames": ["load_table+0x5c (/usr/local/bin/kvstore)", "open_store+0x1a0 (/usr/local/bin/kvstore)", "main+0x88 (/usr/local/bin/kvstore)"]},
  {"live_bytes": 131072, "live_count": 128, "frames": ["node_new+0x14 (/usr/local/bin/kvstore)", "tree_insert+0x9e (/usr/local/bin/kvstore)", "load_table+0x110 (/usr/local/bin/kvstore)", "open_store+0x1a0 (/usr/local/bin/kvstore)", "main+0x88 (/usr/local/bin/kvstore)"]},
  {"live_bytes": 32768, "live_count": 512, "frames": ["strdup+0x1a (/lib/x86_64-linux-gnu/libc.so.6)", "parse_key+0x33 (/usr/local/bin/kvstore)", "main+0xd2 (/usr/local/bin/kvstore)"]},
]}
bad = [
  {"kind":"double_free","function":"free","pointer":"0x7f3a1c2000a0","frames":["release_entry+0x1c (/usr/local/bin/kvstore)","evict+0x4e (/usr/local/bin/kvstore)","main+0x12a (/usr/local/bin/kvstore)"]},
  {"kind":"invalid_pointer","function":"realloc","pointer":"0x7f3a1c200418","frames":["grow_buffer+0x2f (/usr/local/bin/kvstore)","main+0x160 (/usr/local/bin/kvstore)"]},
]
doc = p.report(777, "kvstore", "exit", 0, T0, T0+1.25, profile=profile, bad=bad, errors={"invalid_pointer":1,"double_free":1}, on_error="log",
               latency={"mode":"exact","alloc_avg_ns":48.5,"alloc_max_ns":21000,"free_avg_ns":35.2,"free_max_ns":9100,"samples":p.calls["malloc"]+p.calls["free"]})
json.dump(doc, open(f"{out}/kvstore-errors.json","w"), indent=2); open(f"{out}/kvstore-errors.json","a").write("\n")

# The diff pair and the error fixtures.
a = json.load(open(f"{out}/python-exit.json"))
a["pid"] = 31337; a["program"] = "webapp"; a["reason"] = "interval"; a["sequence"] = 2
a["time"]["now"] = a["time"]["created"] + 10.0; a["time"]["uptime"] = 10.0; a["time"]["last_activity"] = a["time"]["now"] - 0.01
a["profile"] = {"sample_bytes": 65536, "sites": [
    {"live_bytes": 102400, "live_count": 10, "frames": ["cache_put+0x40 (/srv/webapp)", "handle_request+0x1f2 (/srv/webapp)", "worker+0x66 (/srv/webapp)"]},
    {"live_bytes": 51200, "live_count": 5, "frames": ["json_parse+0x88 (/srv/webapp)", "handle_request+0x120 (/srv/webapp)", "worker+0x66 (/srv/webapp)"]},
]}
b = copy.deepcopy(a)
b["sequence"] = 3
b["time"]["now"] += 5.0; b["time"]["uptime"] = 15.0; b["time"]["last_activity"] = b["time"]["now"] - 0.01
def order(d, o): return d["orders"][o]
# Known differences, B - A:
#   order 12 (64K) live +1, free -1; order 3 (128B) live +40, free -8 (the rest split from a 4K block)
order(b,12)["live"] += 1; order(b,12)["free"] -= 1; order(b,12)["allocations"] += 1
order(b,3)["live"] += 40; order(b,3)["free"] -= 8; order(b,3)["allocations"] += 40
m = b["memory"]
m["used"] += 65536 + 40*128          # +70656 = +69K
m["free"] -= 65536 + 40*128
m["requested"] += 60000 + 40*100
m["live_allocations"] += 41
m["peak_live_allocations"] = max(m["peak_live_allocations"], m["live_allocations"])
m["usage"] = round(m["used"]/m["reserved"], 4)
m["internal_fragmentation"] = round(1 - m["requested"]/m["used"], 4)
b["calls"]["malloc"] += 150
b["calls"]["free"] += 109
for s in b["sizes"]:
    if s["upto"] == 128: s["count"] += 40
    if s["upto"] == 65536: s["count"] += 1
if not any(s["upto"] == 65536 for s in b["sizes"]):
    b["sizes"].append({"upto": 65536, "count": 1}); b["sizes"].sort(key=lambda s: s["upto"])
b["profile"]["sites"] = [
    {"live_bytes": 167936, "live_count": 11, "frames": ["cache_put+0x40 (/srv/webapp)", "handle_request+0x1f2 (/srv/webapp)", "worker+0x66 (/srv/webapp)"]},
    {"live_bytes": 5120, "live_count": 40, "frames": ["session_new+0x12 (/srv/webapp)", "handle_login+0x3a (/srv/webapp)", "worker+0x66 (/srv/webapp)"]},
]
for name, d in (("diff-a.json", a), ("diff-b.json", b)):
    with open(f"{out}/{name}", "w") as f:
        json.dump(d, f, indent=2); f.write("\n")

# Error fixtures.
open(f"{out}/not-json.txt", "w").write("Hello, this is not JSON.\nIt is a plain text file.\n")
open(f"{out}/text-report.txt", "w").write("""BuddyMalloc report, pid 6513
  pool        4.0M in 3 segments; allocated 583K (20K in thread caches), free 3.4M, peak allocated 2.6M
  calls       allocations 3085, frees 2981, failed 0, resized in place 24
  system      0 calls, 0B (larger than the maximum block 1.0M)
  errors      invalid pointers 0, double frees 0
  blocks      splits 1975, coalesces 1748, segments added 4, released 1
  free area   16B:2 32B:6 64B:6 128B:3 256B:4 512B:3 1.0K:13 2.0K:24 4.0K:22 8.0K:12 ...
""")
with open(f"{out}/wrong-format.json", "w") as f:
    json.dump({"format": "mimalloc-stats", "version": 1, "elapsed": 4.2, "process": {"peak_rss": 10485760}}, f, indent=2); f.write("\n")
newer = json.load(open(f"{out}/python-exit.json")); newer["version"] = 2; newer["arenas"] = [{"id": 0, "reserved": 8388608}]
with open(f"{out}/newer-version.json", "w") as f:
    json.dump(newer, f, indent=2); f.write("\n")
missing = json.load(open(f"{out}/kvstore-errors.json")); del missing["memory"]["used"]
with open(f"{out}/missing-field.json", "w") as f:
    json.dump(missing, f, indent=2); f.write("\n")
lines = open(f"{out}/series.jsonl").read().splitlines()
open(f"{out}/truncated.jsonl", "w").write("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
