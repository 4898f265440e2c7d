"""Statistics over the samples: medians per cell, geometric means, output digests."""

import collections
import math
import statistics


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def summarize_cell(samples):
    n = len(samples)
    bad = [s for s in samples if s["status"] != "ok"]
    cell = {"runs": n, "ok": n - len(bad)}
    if bad:
        kinds = collections.Counter(s["status"] for s in bad)
        worst = "MISMATCH" if "MISMATCH" in kinds else (
            "TIMEOUT" if "TIMEOUT" in kinds and "FAIL" not in kinds else "FAIL")
        cell["status"] = worst
        cell["failures"] = ["rep %d: %s %s%s" % (
            s["rep"], s["status"], s.get("reason", ""),
            (": " + s["stderr_tail"].strip().splitlines()[-1][:200])
            if s.get("stderr_tail", "").strip() else "") for s in bad]
        return cell
    cell["status"] = "ok"
    walls = [s["wall_s"] for s in samples]
    rss = [s["maxrss_kb"] for s in samples if s.get("maxrss_kb") is not None]
    cell["median_wall_s"] = statistics.median(walls)
    cell["min_wall_s"] = min(walls)
    cell["max_wall_s"] = max(walls)
    cell["spread"] = (max(walls) - min(walls)) / cell["median_wall_s"] \
        if cell["median_wall_s"] else None
    cell["median_maxrss_kb"] = statistics.median(rss) if rss else None
    fr = [s["final_rss_kb"] for s in samples if s.get("final_rss_kb") is not None]
    if fr:
        cell["median_final_rss_kb"] = statistics.median(fr)
    rps = [s["extra"]["rps"] for s in samples if s.get("extra", {}).get("rps")]
    if rps:
        cell["median_rps"] = {k: statistics.median(r[k] for r in rps if k in r)
                              for k in rps[0]}
    return cell


def check_digests(results, baseline):
    """Marks runs whose output differs from the baseline's (or the majority)
    as MISMATCH."""
    msgs = []
    for wname, per_alloc in results.items():
        digests = collections.Counter()
        base = collections.Counter()
        for aname, samples in per_alloc.items():
            for s in samples:
                if s["status"] == "ok" and s.get("digest"):
                    digests[s["digest"]] += 1
                    if aname == baseline:
                        base[s["digest"]] += 1
        if not digests:
            continue
        ref = (base or digests).most_common(1)[0][0]
        for aname, samples in per_alloc.items():
            for s in samples:
                if s["status"] == "ok" and s.get("digest") and s["digest"] != ref:
                    s["status"] = "MISMATCH"
                    s["reason"] = "output differs from %s's" % (
                        baseline if base else "the majority")
                    msgs.append("%s / %s rep %d: output differs from the reference"
                                % (wname, aname, s["rep"]))
    return msgs
