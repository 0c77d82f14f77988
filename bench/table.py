#!/usr/bin/env python3
"""Prints the BENCHMARKS.md "Wire parsing" table from criterion's results.

Usage: python3 bench/table.py [target/criterion]
Reads every parse_*/<implementation>/new/{benchmark,estimates}.json that
`cargo bench -p dnswarden-bench --bench parse` wrote, and prints one row per message:
median time and throughput of each implementation, and dnswarden-core's speed-up
against hickory-proto (target >= 10x) and domain (target >= 2x). When the run measured the
unvalidated reference walker (`floor`), its median and its own speed-ups are printed too:
what any parser doing the same job reaches on the same machine in the same run.
"""
import json
import pathlib
import sys

IMPLS = ["dnswarden-core", "domain", "hickory-proto"]


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    rows = {}
    for bench in sorted(root.glob("parse_*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        group = meta["group_id"].removeprefix("parse/")
        size = meta["throughput"]["Bytes"]
        rows.setdefault(group, {"size": size})[meta["function_id"]] = est["median"]["point_estimate"]

    def fmt_ns(ns):
        return f"{ns:,.0f}"

    def mbs(size, ns):
        return f"{size / ns * 1e3:,.0f}"

    has_floor = any("floor" in r for r in rows.values())
    extra_head = " floor ns | floor vs hickory | floor vs domain |" if has_floor else ""
    print("| message | bytes | core ns | core MB/s | domain ns | domain MB/s | hickory ns "
          "| hickory MB/s | vs hickory (≥10×) | vs domain (≥2×) |" + extra_head)
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" * 3 if has_floor else ""))
    misses = 0
    ratios_h, ratios_d, floor_h, floor_d = [], [], [], []
    for group, r in sorted(rows.items(), key=lambda kv: (not kv[0].startswith("syn/"), kv[0])):
        if not all(i in r for i in IMPLS):
            continue
        c, d, h = (r[i] for i in IMPLS)
        vh, vd = h / c, d / c
        ratios_h.append(vh)
        ratios_d.append(vd)
        ok_h = "" if vh >= 10 else " ✗"
        ok_d = "" if vd >= 2 else " ✗"
        misses += bool(ok_h or ok_d)
        extra = ""
        if has_floor and "floor" in r:
            f = r["floor"]
            floor_h.append(h / f)
            floor_d.append(d / f)
            extra = f" {fmt_ns(f)} | {h / f:.1f}× | {d / f:.1f}× |"
        print(f"| {group} | {r['size']} | {fmt_ns(c)} | {mbs(r['size'], c)} | {fmt_ns(d)} | "
              f"{mbs(r['size'], d)} | {fmt_ns(h)} | {mbs(r['size'], h)} | {vh:.1f}×{ok_h} | {vd:.1f}×{ok_d} |"
              + extra)
    print(f"\n{misses} message(s) miss a target (✗).")
    for who, name, rs, goal in (("dnswarden-core", "domain", ratios_d, 2),
                                ("dnswarden-core", "hickory-proto", ratios_h, 10),
                                ("floor (unvalidated)", "domain", floor_d, 2),
                                ("floor (unvalidated)", "hickory-proto", floor_h, 10)):
        if rs:
            rs = sorted(rs)
            q = lambda f: rs[min(len(rs) - 1, int(f * len(rs)))]
            print(f"{who} vs {name} (ratio of medians, {len(rs)} messages): "
                  f"min {rs[0]:.1f}×, quartiles {q(0.25):.1f}× / {q(0.5):.1f}× / {q(0.75):.1f}×, "
                  f"max {rs[-1]:.1f}×; {sum(r >= goal for r in rs)} at ≥ {goal}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
