#!/usr/bin/env python3
"""Turns the raw oha / stream-probe JSON of bench/run.sh into the table and latest.json.

summarize.py brief FILE            one line about one raw result (for the log)
summarize.py report RAW OUT.json   the table on stdout; meta JSON on stdin
"""
import json
import os
import sys

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


def report(raw, out_path):
    meta = json.load(sys.stdin)
    res = {}
    for name in os.listdir(raw):
        if name.endswith(".json"):
            scen, target = name[:-5].rsplit("-", 1)
            res.setdefault(scen, {})[target] = load(os.path.join(raw, name))
    rows = []

    def errors_note(scen):
        notes = []
        for t in TARGETS:
            r = res.get(scen, {}).get(t)
            if r is not None:
                good, total = ok_count(r)
                if good != total:
                    notes.append(f"{t}: {total - good} of {total} failed")
        return "; ".join(notes)

    def row(scen, metric, vals, versus, target, passed, unit=""):
        rows.append({
            "scenario": scen, "metric": metric, "unit": unit,
            "direct": vals.get("direct"), "floor": vals.get("floor"), "gateway": vals.get("gateway"),
            "vs_floor": versus.get("floor"), "vs_direct": versus.get("direct"),
            "target": target, "pass": passed, "errors": errors_note(scen.split()[0]),
        })

    def all_ok(scen):
        return not errors_note(scen)

    # 1. throughput
    if "s1" in res:
        v = {t: res["s1"][t]["summary"]["requestsPerSec"] for t in TARGETS if t in res["s1"]}
        ratio_f = v["gateway"] / v["floor"]
        ratio_d = v["gateway"] / v["direct"]
        row("s1 throughput", "req/s", v, {"floor": f"{ratio_f:.2f}x", "direct": f"{ratio_d:.2f}x"},
            ">= 0.85x floor", ratio_f >= 0.85 and all_ok("s1"))
        row("s1 throughput", "floor/direct", {"floor": v["floor"] / v["direct"]}, {}, "(~0.5x expected)", None)

    def latency(scen, label, limits, base=None):
        if scen not in res:
            return {}
        added = {}
        for p, limit in limits:
            v = {t: us(res[scen][t], p) for t in TARGETS if t in res[scen]}
            df, dd = v["gateway"] - v["floor"], v["gateway"] - v["direct"]
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
            row(f"{scen} {label}", f"{p} latency", v, {"floor": f"{df:+.0f} us", "direct": f"{dd:+.0f} us"},
                target, passed, " us")
        return added

    lat = [("p50", 30), ("p99", 150), ("p99.9", None)]
    s2 = latency("s2", f"latency @{meta['rate']}/s", lat)

    # 3. streaming
    if "s3" in res:
        s3 = res["s3"]
        for p, limit in (("p50", 50), ("p99", None)):
            v = {t: s3[t]["ttft_us"][p] for t in TARGETS if t in s3}
            df, dd = v["gateway"] - v["floor"], v["gateway"] - v["direct"]
            row("s3 streaming", f"TTFT {p}", v, {"floor": f"{df:+.0f} us", "direct": f"{dd:+.0f} us"},
                f"<= +{limit} us over floor" if limit else "(info)",
                (df <= limit and all_ok("s3")) if limit else None, " us")
        v = {t: s3[t]["streams_per_s"] for t in TARGETS if t in s3}
        row("s3 streaming", "streams/s", v,
            {"floor": f"{v['gateway'] / v['floor']:.2f}x", "direct": f"{v['gateway'] / v['direct']:.2f}x"},
            "(info)", None)
        v = {t: f"{s3[t]['coalesced_frames']} coal, {s3[t]['gaps_us']['short']} short, "
                f"{s3[t]['gaps_us']['long']} long / {s3[t]['gaps_us']['count']}" for t in TARGETS if t in s3}
        g, f = s3["gateway"], s3["floor"]

        def short_share(r):
            return r["gaps_us"]["short"] / max(1, r["gaps_us"]["count"])

        # Even direct sees a few short gaps when the scheduler runs two wake-ups back to
        # back, so "never delayed" is judged against the floor: at most 0.1 point more.
        row("s3 streaming", "coalesced frames, gaps <2.5/>10 ms", v, {},
            "0 coalesced, short gaps <= floor's + 0.1 %",
            g["coalesced_frames"] == 0 and short_share(g) <= short_share(f) + 0.001, "")
        v = {t: f"{s3[t]['gaps_us']['p1']}/{s3[t]['gaps_us']['p50']}/{s3[t]['gaps_us']['p99']}"
             for t in TARGETS if t in s3}
        row("s3 streaming", "gap p1/p50/p99 (us)", v, {}, "(info, 5000 expected)", None)

    latency("s4", "100 KB body", [("p50", None), ("p99", None)])

    # 5. open streams
    if "s5" in res:
        s5 = res["s5"]
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
