#!/usr/bin/env python3
"""Turns the benchmark's raw samples (JSON lines) into tables of medians: one
row per target (Squid, Apache Traffic Server, nginx proxy_cache, Varnish,
Ferry, the origin served directly) for the figures that compare them, then
every measurement with the ratios Ferry/Squid and Ferry/direct and the
targets they are held to.

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


def labels(samples):
    """The names run.sh recorded for the targets (with their versions)."""
    return {target: values[-1] for (scen, target, metric), values in samples.items()
            if scen == "meta" and metric == "label"}


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
    ("(a) hit — CPU µs per request (all its processes)", "a", "cpu_us_per_req", False, "", None),
    ("(a) hit — wrk's own CPU µs per request (load generator)", "a", "wrk_cpu_us_per_req", False, "", None),
    ("(a) hit — origin requests per request (0 for a hit)", "a", "origin_per_req", False, "", None),
    ("(b) miss (no-store) 1 KiB, 64 conns — req/s", "b", "rps", True,
     "≥ 1.5× Squid", lambda f, s, d: f >= 1.5 * s),
    ("(b) miss — p99 latency ms", "b", "p99_ms", False, "", None),
    ("(b) miss — CPU µs per request (all its processes)", "b", "cpu_us_per_req", False, "", None),
    ("(b) miss — wrk's own CPU µs per request (load generator)", "b", "wrk_cpu_us_per_req", False, "", None),
    ("(b) miss — origin requests per request (1 for a miss)", "b", "origin_per_req", False, "", None),
    ("(c) 100 MiB first fetch (miss) — MB/s", "c", "miss_mbps", True,
     "≥ 0.5× direct", lambda f, s, d: f >= 0.5 * d),
    ("(c) 100 MiB second fetch (hit) — MB/s", "c", "hit_mbps", True,
     "≥ 1000 MB/s", lambda f, s, d: f >= 1000),
    ("(c) peak RSS during both — MiB", "c", "peak_rss_mib", False,
     "< 64 MiB", lambda f, s, d: f < 64),
    ("(d) idle keep-alive conns — RSS before they open, MiB", "d", "rss_before_mib", False, "", None),
    ("(d) 10,000 idle keep-alive conns — RSS MiB", "d", "rss_mib", False,
     "< 150 MiB", lambda f, s, d: f < 150),
    ("(d) idle — KiB per connection (RSS with − before) / conns", "d", "kib_per_conn", False, "", None),
    ("(d) idle — connections opened", "d", "connections", True, "", None),
    ("(d) idle — connections still open after 20 s", "d", "held", True, "", None),
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
        if scen == "meta":
            continue
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
    out.append("| measurement | direct | Squid | HAProxy relay | Ferry base | Ferry new | new/base (medians) "
               "| new/base per round | new/Squid |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for label, scen, metric in AB_ROWS:
        d = median(samples, scen, "direct", metric)
        s = median(samples, scen, "squid", metric)
        r = median(samples, scen, "relay", metric)
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

        out.append(f"| {label} | {fmt(d)} | {fmt(s)} | {fmt(r)} | {fmt(b)} | {fmt(n)} | {times(ratio(n, b))} "
                   f"| {rounds} | {times(ratio(n, s))} |")
    out.append("")
    out.extend(raw_table(samples))
    print("\n".join(out))


# The per-target table: (target, name when run.sh recorded none).
SUMMARY_TARGETS = [
    ("squid", "Squid"),
    ("ats", "Apache Traffic Server"),
    ("nginx-cache", "nginx `proxy_cache`"),
    ("varnish", "Varnish"),
    ("ferry", "Ferry"),
    ("relay", "HAProxy (relay only, no cache)"),
    ("direct", "origin served directly"),
]
CACHES = [t for t, _ in SUMMARY_TARGETS if t not in ("direct", "relay")]


def num(v, digits):
    return "—" if v is None else f"{v:,.{digits}f}"


def summary(samples):
    names = labels(samples)
    out = ["| | hit req/s | CPU µs/hit | miss req/s | CPU µs/miss | 100 MiB miss MB/s "
           "| 100 MiB hit MB/s | idle KB/conn |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for target, default in SUMMARY_TARGETS:
        def m(scen, metric):
            return median(samples, scen, target, metric)
        name = names.get(target, default)
        if target == "ferry":
            name = f"**{name}**"
        direct = target == "direct"
        if target == "relay" and m("b", "rps") is None:
            continue
        cells = [
            num(m("a", "rps"), 0),
            num(m("a", "cpu_us_per_req"), 1),
            "—" if direct else num(m("b", "rps"), 0),
            "—" if direct else num(m("b", "cpu_us_per_req"), 1),
            num(m("c", "miss_mbps"), 0),
            "—" if direct else num(m("c", "hit_mbps"), 0),
            num(m("d", "kib_per_conn"), 1),
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Medians over the runs. CPU: user + system time of all the target's processes and threads per "
               "request. Miss: the `no-store` URL, fetched from the origin every time. The origin served "
               "directly has no miss; its one 100 MiB figure is a plain fetch from it. HAProxy relays "
               "the miss's requests to the origin without a cache (its figures are the cost of relaying "
               "alone) and runs in (b) only. Idle KB/conn: "
               "(RSS with the idle connections − RSS before they opened) / connections, in KiB "
               "(nginx: its worker; the others: all their processes).")
    out.append("")

    def miss_per_hit(target):
        return ratio(median(samples, "b", target, "cpu_us_per_req"),
                     median(samples, "a", target, "cpu_us_per_req"))
    r = miss_per_hit("ferry")
    if r is not None:
        others = [f"{names.get(t, d)} {miss_per_hit(t):.2f}×" for t, d in SUMMARY_TARGETS
                  if t in CACHES and t != "ferry" and miss_per_hit(t) is not None]
        out.append(f"Ferry's CPU per miss / CPU per hit: **{r:.2f}×**"
                   + (f" ({', '.join(others)})." if others else "."))
        relay = median(samples, "b", "relay", "cpu_us_per_req")
        ferry_hit = median(samples, "a", "ferry", "cpu_us_per_req")
        ferry_miss = median(samples, "b", "ferry", "cpu_us_per_req")
        if relay and ferry_hit and ferry_miss:
            out.append(f"Relaying alone (HAProxy, no cache) costs {ratio(relay, ferry_hit):.2f}× Ferry's CPU per "
                       f"hit; Ferry's CPU per miss is {ratio(ferry_miss, relay):.2f}× HAProxy's per relayed "
                       "request.")
        out.append("")

    # What would make a figure mean something else: a hit that went to the
    # origin, a miss that did not, idle connections a peer did not keep.
    warnings = []
    for target, default in SUMMARY_TARGETS:
        name = names.get(target, default)
        hit_origin = median(samples, "a", target, "origin_per_req")
        if target in CACHES and hit_origin is not None and hit_origin > 0.01:
            warnings.append(f"{name}: (a) reached the origin for {hit_origin:.2f} of its requests (not all hits).")
        miss_origin = median(samples, "b", target, "origin_per_req")
        if target in CACHES and miss_origin is not None and miss_origin < 0.99:
            warnings.append(f"{name}: (b) reached the origin for only {miss_origin:.2f} of its requests.")
        requested = samples.get(("d", target, "requested"), [])
        opened = samples.get(("d", target, "connections"), [])
        held = samples.get(("d", target, "held"), [])
        if requested and (min(opened or [0]) < max(requested) or min(held or [0]) < max(requested)):
            warnings.append(f"{name}: of {int(max(requested)):,} idle connections asked for, opened "
                            f"{', '.join(fmt(v) for v in opened)} and still open after 20 s "
                            f"{', '.join(fmt(v) for v in held)} (per run).")
    if warnings:
        out.append("**Check:** " + " ".join(warnings))
        out.append("")
    return out


def main():
    if sys.argv[1] == "--ab":
        ab(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
        return
    samples = load(sys.argv[1])
    header = open(sys.argv[2]).read() if len(sys.argv) > 2 else ""
    out = [header.rstrip(), ""]
    out.extend(summary(samples))
    out.append("Every measurement:")
    out.append("")
    out.append("| measurement | direct | Squid | Squid, no access log | ATS | nginx `proxy_cache` | Varnish "
               "| Ferry | Ferry (max-concurrent 5) "
               "| Ferry/Squid | Ferry/Squid no log | Ferry/direct | target (vs Squid) | met |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for label, scen, metric, _higher, target, check in ROWS:
        d = median(samples, scen, "direct", metric)
        s = median(samples, scen, "squid", metric)
        sn = median(samples, scen, "squid-nolog", metric)
        ats = median(samples, scen, "ats", metric)
        nc = median(samples, scen, "nginx-cache", metric)
        v = median(samples, scen, "varnish", metric)
        f = median(samples, scen, "ferry", metric)
        f5 = median(samples, scen, "ferry-default", metric)
        digits = 3 if metric == "origin_per_req" else 1
        if scen == "d" and metric == "rss_mib":
            asked = median(samples, "d", "ferry", "requested")
            if asked:
                label = label.replace("10,000", fmt(asked))
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
            f"| {label} | {fmt(d, digits)} | {fmt(s, digits)} | {fmt(sn, digits)} | {fmt(ats, digits)} "
            f"| {fmt(nc, digits)} | {fmt(v, digits)} | {fmt(f, digits)} | {fmt(f5, digits)} | "
            f"{times(ratio(f, s))} | {times(ratio(f, sn))} | {times(ratio(f, d))} | {target} | {met} |"
        )
    out.append("")
    out.append("Each figure is the median of the runs listed below (raw samples).")
    out.append("")
    out.extend(raw_table(samples))
    print("\n".join(out))


if __name__ == "__main__":
    main()
