#!/usr/bin/env python3
"""Turns the benchmark's raw samples (JSON lines) into one table of medians,
with the ratios Ferry/Squid and Ferry/direct and the targets they are held to.

Usage: report.py RESULTS.jsonl HEADER.md > latest.md
       report.py --ab RESULTS.jsonl HEADER.md > ab-latest.md   (base against new)
"""
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    samples = defaultdict(list)
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        s = json.loads(line)
        samples[(s["scenario"], s["target"], s["metric"])].append(s["value"])
    return samples


def median(samples, scenario, target, metric):
    values = samples.get((scenario, target, metric))
    if not values:
        return None
    return statistics.median(values)


def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.{digits}f}"
    return f"{int(v):,}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# (row label, scenario, metric, higher is better, target text, check(ferry, squid, direct))
ROWS = [
    ("(a) hit 1 KiB, 64 conns — req/s", "a", "rps", True,
     "≥ 2.2× Squid, ≥ 0.8× direct", lambda f, s, d: f >= 2.2 * s and f >= 0.8 * d),
    ("(a) hit — p50 latency ms", "a", "p50_ms", False, "", None),
    ("(a) hit — p99 latency ms", "a", "p99_ms", False, "p99 ≤ Squid's", lambda f, s, d: f <= s),
    ("(a) hit — CPU µs per request (serving process)", "a", "cpu_us_per_req", False, "", None),
    ("(a) hit — wrk's own CPU µs per request (load generator)", "a", "wrk_cpu_us_per_req", False, "", None),
    ("(b) miss (no-store) 1 KiB, 64 conns — req/s", "b", "rps", True,
     "≥ 1.5× Squid", lambda f, s, d: f >= 1.5 * s),
    ("(b) miss — p99 latency ms", "b", "p99_ms", False, "", None),
    ("(b) miss — CPU µs per request (serving process)", "b", "cpu_us_per_req", False, "", None),
    ("(b) miss — wrk's own CPU µs per request (load generator)", "b", "wrk_cpu_us_per_req", False, "", None),
    ("(c) 100 MiB first fetch (miss) — MB/s", "c", "miss_mbps", True,
     "≥ 0.5× direct", lambda f, s, d: f >= 0.5 * d),
    ("(c) 100 MiB second fetch (hit) — MB/s", "c", "hit_mbps", True,
     "≥ 1000 MB/s", lambda f, s, d: f >= 1000),
    ("(c) peak RSS during both — MiB", "c", "peak_rss_mib", False,
     "< 64 MiB", lambda f, s, d: f < 64),
    ("(d) 10,000 idle keep-alive conns — RSS MiB", "d", "rss_mib", False,
     "< 150 MiB", lambda f, s, d: f < 150),
    ("(e) 200 concurrent cold requests — origin requests", "e", "origin_requests", False,
     "exactly 1", lambda f, s, d: f == 1),
    ("(f) hits with 1,000 objects — req/s", "f", "rps_1k", True, "", None),
    ("(f) hits with 100,000 objects — req/s", "f", "rps_100k", True,
     "within 10% of 1,000", None),
]


def raw_table(samples):
    """Every sample, in a collapsed table under the medians."""
    out = ["<details><summary>raw samples</summary>\n",
           "| scenario | target | metric | samples |",
           "|---|---|---|---|"]
    for (scen, target, metric), values in sorted(samples.items()):
        out.append(f"| {scen} | {target} | {metric} | {', '.join(fmt(v, 2) for v in values)} |")
    out.append("\n</details>")
    return out


AB_ROWS = [
    ("(a) hit 1 KiB — req/s", "a", "rps"),
    ("(a) hit — p99 ms", "a", "p99_ms"),
    ("(a) hit — CPU µs per request", "a", "cpu_us_per_req"),
    ("(b) miss 1 KiB — req/s", "b", "rps"),
    ("(b) miss — p99 ms", "b", "p99_ms"),
    ("(b) miss — CPU µs per request", "b", "cpu_us_per_req"),
]


def load_ordered(path):
    """Samples in the order they were taken (one per round and target)."""
    samples = defaultdict(list)
    for line in open(path):
        line = line.strip()
        if line:
            s = json.loads(line)
            samples[(s["scenario"], s["target"], s["metric"])].append(s["value"])
    return samples


def ab(results, header_path):
    samples = load_ordered(results)
    header = open(header_path).read() if header_path else ""
    out = [header.rstrip(), ""]
    out.append("| measurement | direct | Squid | Ferry base | Ferry new | new/base (medians) "
               "| new/base per round | new/Squid |")
    out.append("|---|---:|---:|---:|---:|---:|---|---:|")
    for label, scen, metric in AB_ROWS:
        d = median(samples, scen, "direct", metric)
        s = median(samples, scen, "squid", metric)
        b = median(samples, scen, "ferry-base", metric)
        n = median(samples, scen, "ferry", metric)
        base_runs = samples.get((scen, "ferry-base", metric), [])
        new_runs = samples.get((scen, "ferry", metric), [])
        per_round = [x / y for x, y in zip(new_runs, base_runs) if y]
        rounds = ", ".join(f"{r:.2f}" for r in per_round)
        if per_round:
            rounds += f" (median {statistics.median(per_round):.2f})"

        def times(r):
            return "—" if r is None else f"{r:.2f}×"

        out.append(f"| {label} | {fmt(d)} | {fmt(s)} | {fmt(b)} | {fmt(n)} | {times(ratio(n, b))} "
                   f"| {rounds} | {times(ratio(n, s))} |")
    out.append("")
    out.extend(raw_table(samples))
    print("\n".join(out))


def main():
    if sys.argv[1] == "--ab":
        ab(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
        return
    samples = load(sys.argv[1])
    header = open(sys.argv[2]).read() if len(sys.argv) > 2 else ""
    out = [header.rstrip(), ""]
    out.append("| measurement | direct | Squid | Squid, no access log | Ferry | Ferry (max-concurrent 5) "
               "| Ferry/Squid | Ferry/Squid no log | Ferry/direct | target (vs Squid) | met |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for label, scen, metric, _higher, target, check in ROWS:
        d = median(samples, scen, "direct", metric)
        s = median(samples, scen, "squid", metric)
        sn = median(samples, scen, "squid-nolog", metric)
        f = median(samples, scen, "ferry", metric)
        f5 = median(samples, scen, "ferry-default", metric)
        met = ""
        if check is not None and f is not None:
            try:
                met = "yes" if check(f, s if s is not None else 0, d if d is not None else 0) else "**no**"
            except TypeError:
                met = ""
        if scen == "f" and metric == "rps_100k" and f is not None:
            f1k = median(samples, "f", "ferry", "rps_1k")
            if f1k:
                met = "yes" if f >= 0.9 * f1k else "**no**"
                target += f" (Ferry: {f / f1k:.2f}×)"
        def times(r):
            return "—" if r is None else f"{r:.2f}×"

        out.append(
            f"| {label} | {fmt(d)} | {fmt(s)} | {fmt(sn)} | {fmt(f)} | {fmt(f5)} | "
            f"{times(ratio(f, s))} | {times(ratio(f, sn))} | {times(ratio(f, d))} | {target} | {met} |"
        )
    out.append("")
    out.append("Each figure is the median of the runs listed below (raw samples).")
    out.append("")
    out.extend(raw_table(samples))
    print("\n".join(out))


if __name__ == "__main__":
    main()
