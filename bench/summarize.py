#!/usr/bin/env python3
"""Turns the raw oha / stream-probe JSON of bench/run.sh into the table and latest.json.

A scenario's targets are measured in rounds (NAME-TARGET-rK.json). A comparison with the
floor is made within each round, and the median of those per-round figures is what is
judged; each target's own figure shown is its median over the rounds.

summarize.py brief FILE            one line about one raw result (for the log)
summarize.py report RAW OUT.json   the table on stdout; meta JSON on stdin
"""
import json
import os
import re
import sys
from statistics import median

TARGETS = ("direct", "floor", "gateway")


def load(path):
    with open(path) as f:
        return json.load(f)


def is_probe(r):
    return "ttft_us" in r


def ok_count(r):
    if is_probe(r):
        return r["streams_ok"], r["streams"]
    codes = r.get("statusCodeDistribution", {})
    good = sum(n for c, n in codes.items() if str(c).startswith("2"))
    bad = sum(n for c, n in codes.items() if not str(c).startswith("2"))
    # oha -z cancels the requests in flight at the deadline: not a failure of the target.
    bad += sum(n for e, n in r.get("errorDistribution", {}).items() if e != "aborted due to deadline")
    return good, good + bad


def us(r, p):
    """Latency percentile of an oha result, in µs."""
    v = r["latencyPercentiles"].get(p)
    return None if v is None else v * 1e6


def brief(path):
    r = load(path)
    good, total = ok_count(r)
    if is_probe(r):
        return (f"{good}/{total} ok, {r['streams_per_s']:.0f} streams/s, ttft p50 "
                f"{r['ttft_us']['p50']} us p99 {r['ttft_us']['p99']} us, coalesced "
                f"{r['coalesced_frames']}, gaps {r['gaps_us']}, rss {r['rss_kib']}")
    s = r["summary"]
    return (f"{good}/{total} ok, {s['requestsPerSec']:.0f} req/s, p50 {us(r, 'p50'):.0f} us, "
            f"p99 {us(r, 'p99'):.0f} us, p99.9 {us(r, 'p99.9'):.0f} us")


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return f"{v}{unit}"


def load_rounds(raw):
    """res[scenario][target] = [round 1's result, round 2's, ...], from NAME-TARGET-rK.json."""
    found = {}
    for name in os.listdir(raw):
        m = re.fullmatch(r"(.+)-(direct|floor|gateway)-r([0-9]+)\.json", name)
        if m:
            scen, target, k = m.group(1), m.group(2), int(m.group(3))
            found.setdefault(scen, {}).setdefault(target, {})[k] = load(os.path.join(raw, name))
    return {scen: {t: [by_round[k] for k in sorted(by_round)] for t, by_round in targets.items()}
            for scen, targets in found.items()}


def rounds_text(values, form):
    """The per-round figures after the median, when there is more than one round."""
    return "" if len(values) < 2 else " (" + " ".join(form(x) for x in values) + ")"


def report(raw, out_path):
    meta = json.load(sys.stdin)
    res = load_rounds(raw)
    rows = []

    def errors_note(scen):
        notes = []
        for t in TARGETS:
            good = total = 0
            for r in res.get(scen, {}).get(t, []):
                g, n = ok_count(r)
                good, total = good + g, total + n
            if good != total:
                notes.append(f"{t}: {total - good} of {total} failed")
        return "; ".join(notes)

    def row(scen, metric, vals, versus, target, passed, unit="", rounds=None):
        rows.append({
            "scenario": scen, "metric": metric, "unit": unit,
            "direct": vals.get("direct"), "floor": vals.get("floor"), "gateway": vals.get("gateway"),
            "vs_floor": versus.get("floor"), "vs_direct": versus.get("direct"), "vs_floor_rounds": rounds,
            "target": target, "pass": passed, "errors": errors_note(scen.split()[0]),
        })

    def all_ok(scen):
        return not errors_note(scen)

    def series(scen, metric):
        """Each target's metric, round by round."""
        return {t: [metric(r) for r in res[scen][t]] for t in TARGETS if t in res[scen]}

    def compared(scen, metric, against, combine):
        """Per round: combine(gateway's, against's); both are measured within the round."""
        s = series(scen, metric)
        return [combine(g, a) for g, a in zip(s["gateway"], s[against])]

    ratio = lambda g, a: g / a  # noqa: E731
    difference = lambda g, a: g - a  # noqa: E731

    # 1. throughput
    if "s1" in res:
        rps = lambda r: r["summary"]["requestsPerSec"]  # noqa: E731
        v = {t: median(x) for t, x in series("s1", rps).items()}
        by_round = compared("s1", rps, "floor", ratio)
        ratio_f, ratio_d = median(by_round), median(compared("s1", rps, "direct", ratio))
        row("s1 throughput", "req/s", v,
            {"floor": f"{ratio_f:.2f}x" + rounds_text(by_round, lambda x: f"{x:.2f}"),
             "direct": f"{ratio_d:.2f}x"},
            ">= 0.85x floor", ratio_f >= 0.85 and all_ok("s1"), rounds=by_round)
        floor_direct = [f / d for f, d in zip(*(series("s1", rps)[t] for t in ("floor", "direct")))]
        row("s1 throughput", "floor/direct", {"floor": median(floor_direct)}, {}, "(~0.5x expected)", None)

    def latency(scen, label, limits, base=None):
        if scen not in res:
            return {}
        added = {}
        for p, limit in limits:
            metric = lambda r, p=p: us(r, p)  # noqa: E731
            v = {t: median(x) for t, x in series(scen, metric).items()}
            by_round = compared(scen, metric, "floor", difference)
            df, dd = median(by_round), median(compared(scen, metric, "direct", difference))
            added[p] = df
            if base is not None and p == "p50" and p in base:
                # "Added latency must not grow": judged at p50, where a 2-core box is
                # steady enough; p99 and above swing by milliseconds between runs.
                target = f"<= s2's {base[p]:+.0f} us + 15 us"
                passed = df <= base[p] + 15
            elif limit is not None:
                target = f"<= +{limit} us over floor"
                passed = df <= limit
            else:
                target, passed = "(info)", None
            if passed is not None:
                passed = passed and all_ok(scen)
            row(f"{scen} {label}", f"{p} latency", v,
                {"floor": f"{df:+.0f} us" + rounds_text(by_round, lambda x: f"{x:+.0f}"),
                 "direct": f"{dd:+.0f} us"},
                target, passed, " us", rounds=by_round)
        return added

    lat = [("p50", 30), ("p99", 150), ("p99.9", None)]
    s2 = latency("s2", f"latency @{meta['rate']}/s", lat)

    # 3. streaming
    if "s3" in res:
        s3 = res["s3"]
        for p, limit in (("p50", 50), ("p99", None)):
            metric = lambda r, p=p: r["ttft_us"][p]  # noqa: E731
            v = {t: median(x) for t, x in series("s3", metric).items()}
            by_round = compared("s3", metric, "floor", difference)
            df, dd = median(by_round), median(compared("s3", metric, "direct", difference))
            row("s3 streaming", f"TTFT {p}", v,
                {"floor": f"{df:+.0f} us" + rounds_text(by_round, lambda x: f"{x:+.0f}"),
                 "direct": f"{dd:+.0f} us"},
                f"<= +{limit} us over floor" if limit else "(info)",
                (df <= limit and all_ok("s3")) if limit else None, " us", rounds=by_round)
        sps = lambda r: r["streams_per_s"]  # noqa: E731
        v = {t: median(x) for t, x in series("s3", sps).items()}
        row("s3 streaming", "streams/s", v,
            {"floor": f"{median(compared('s3', sps, 'floor', ratio)):.2f}x",
             "direct": f"{median(compared('s3', sps, 'direct', ratio)):.2f}x"},
            "(info)", None)

        def total(t, metric):
            return sum(metric(r) for r in s3[t])

        def gaps(kind):
            return lambda r: r["gaps_us"][kind]

        coalesced = lambda r: r["coalesced_frames"]  # noqa: E731
        v = {t: f"{total(t, coalesced)} coal, {total(t, gaps('short'))} short, "
                f"{total(t, gaps('long'))} long / {total(t, gaps('count'))}" for t in TARGETS if t in s3}

        def short_share(t):
            return total(t, gaps("short")) / max(1, total(t, gaps("count")))

        # Even direct sees a few short gaps when the scheduler runs two wake-ups back to
        # back, so "never delayed" is judged against the floor: at most 0.1 point more.
        row("s3 streaming", "coalesced frames, gaps <2.5/>10 ms", v, {},
            "0 coalesced, short gaps <= floor's + 0.1 %",
            total("gateway", coalesced) == 0 and short_share("gateway") <= short_share("floor") + 0.001, "")
        v = {t: "/".join(f"{median([r['gaps_us'][q] for r in s3[t]]):.0f}" for q in ("p1", "p50", "p99"))
             for t in TARGETS if t in s3}
        row("s3 streaming", "gap p1/p50/p99 (us)", v, {}, "(info, 5000 expected)", None)

    latency("s4", "100 KB body", [("p50", None), ("p99", None)])

    # 5. open streams: one round (it measures memory, not a difference that drifts)
    if "s5" in res:
        s5 = {t: runs[0] for t, runs in res["s5"].items()}
        per = {}
        for t in TARGETS:
            if t in s5:
                r = s5[t]["rss_kib"]
                n = s5[t]["streams"] or 1
                per[t] = (r["peak"] - r["before"]) / n if r["peak"] and r["before"] else None
        row("s5 open streams", f"RSS KiB per stream ({meta['open_streams']})", per, {}, "<= 64 KiB",
            per.get("gateway") is not None and per["gateway"] <= 64 and all_ok("s5"))
        v = {t: s5[t]["rss_kib"]["peak"] for t in TARGETS if t in s5}
        row("s5 open streams", "peak RSS KiB", v, {}, "(info)", None)
    idle = meta["gateway_rss_kib"]["idle"]
    row("idle", "gateway RSS KiB after start", {"gateway": idle}, {}, "<= 30 MiB (30720 KiB)", idle <= 30720)
    # Older results did not measure a first start on a new database.
    first = meta["gateway_rss_kib"].get("first_start")
    if first is not None:
        row("idle", "gateway RSS KiB after a first start (new database)", {"gateway": first}, {},
            "<= 30 MiB (30720 KiB)", first <= 30720)
    row("idle", "gateway RSS KiB after s1 load", {"gateway": meta["gateway_rss_kib"]["after_load"]}, {}, "(info)", None)

    lat6 = [("p50", None), ("p99", None), ("p99.9", None)]
    latency("s6", "scaled state @rate", lat6, base=s2)

    if meta.get("soak"):
        s = meta["soak"]
        rss = s["rss_kib_series"]
        third = max(1, len(rss) // 3)
        flat = bool(rss) and max(rss[-third:]) <= 1.10 * max(rss[:third])
        row("s7 soak", "RSS KiB first/last/max", {"gateway": f"{rss[0]}/{rss[-1]}/{max(rss)}" if rss else "-"},
            {}, "last third <= 1.1 x first third", flat)
        # A request oha abandoned at the deadline may still have reached the gateway and
        # been recorded (every authenticated request leaves one record, disconnects too).
        ok, rec, aborted = s["ok"], s["usage_records_added"], s["aborted_at_deadline"]
        row("s7 soak", "usage records / 200s (+aborted at deadline)",
            {"gateway": f"{rec}/{ok} (+{aborted})"}, {}, "200s <= records <= 200s + aborted",
            ok <= rec <= ok + aborted and ok + aborted == s["requests"])

    # table
    head = ["scenario", "metric", "direct", "floor", "gateway", "gw vs floor", "gw vs direct", "target", "pass"]
    lines = []
    for r in rows:
        p = {True: "PASS", False: "FAIL", None: ""}[r["pass"]]
        lines.append([r["scenario"], r["metric"], fmt(r["direct"]), fmt(r["floor"]), fmt(r["gateway"]),
                      r["vs_floor"] or "", r["vs_direct"] or "", r["target"], p])
    widths = [max(len(str(x[i])) for x in [head] + lines) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")
    notes = sorted({f"{r['scenario'].split()[0]}: {r['errors']}" for r in rows if r["errors"]})
    for n in notes:
        print(f"errors {n}")
    print(f"load averages (1/5/15 min) at the start of each measurement: {json.dumps(meta['loads'])}")
    meta["rows"] = rows
    meta["raw"] = res
    with open(out_path, "w") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    if sys.argv[1] == "brief":
        print(brief(sys.argv[2]))
    else:
        report(sys.argv[2], sys.argv[3])
