#!/usr/bin/env python3
"""Instruction counts (callgrind) of the wire benchmark's job, per message and implementation.

Deterministic where criterion's wall-clock medians are not (the bench machine is shared):
for each implementation, `bench/examples/wire_ir.rs` walks every corpus message once to
warm up, then once more inside `measure`, and callgrind collects only inside `measure` and
dumps after each call. Prints a Markdown table (instructions per message, core/domain and
core/hickory ratios, and those of the unvalidated `floor` walker) and the totals over the corpus.

Usage (from the workspace root; valgrind must be installed):
    python3 bench/callgrind.py [--no-build] [--target-dir DIR] [NAME-SUBSTRING ...]
"""

import glob
import os
import subprocess
import sys
import tempfile

IMPS = ["core", "domain", "hickory", "floor"]


def run(binary, imp, filters):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        proc = subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--collect-atstart=no",
                "--toggle-collect=wire_ir::measure", "--dump-after=wire_ir::measure",
                f"--callgrind-out-file={out}", binary, imp, *filters,
            ],
            check=True, capture_output=True, text=True,
        )
        names = proc.stdout.split()
        dumps = []
        for path in glob.glob(out + ".*"):
            part = int(path.rsplit(".", 1)[1])
            with open(path) as f:
                total = next(
                    (int(line.split()[1]) for line in f if line.startswith(("totals:", "summary:"))),
                    0,
                )
            dumps.append((part, total))
        dumps.sort()
        # Dump N follows the N-th measured call; a final dump at exit holds nothing.
        counts = [t for _, t in dumps][: len(names)]
        if len(counts) != len(names):
            sys.exit(f"{imp}: {len(names)} messages but {len(counts)} dumps")
        return dict(zip(names, counts)), names


def main():
    args = sys.argv[1:]
    build = True
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    filters = []
    while args:
        a = args.pop(0)
        if a == "--no-build":
            build = False
        elif a == "--target-dir":
            target = args.pop(0)
        else:
            filters.append(a)
    if build:
        subprocess.run(
            ["cargo", "build", "--profile", "bench", "-p", "dnswarden-bench", "--example", "wire_ir",
             "--target-dir", target],
            check=True,
        )
    binary = os.path.join(target, "release", "examples", "wire_ir")
    results = {}
    order = None
    for imp in IMPS:
        results[imp], names = run(binary, imp, filters)
        order = order or names
    print("| message | core Ir | domain Ir | hickory Ir | floor Ir | core/domain (≤0.5) "
          "| core/hickory (≤0.1) | floor/domain | floor/hickory |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    worst_d = worst_h = 0.0
    for name in order:
        c, d, h, f = (results[i][name] for i in IMPS)
        rd, rh = c / d, c / h
        worst_d, worst_h = max(worst_d, rd), max(worst_h, rh)
        md = "" if rd <= 0.5 else " ✗"
        mh = "" if rh <= 0.1 else " ✗"
        print(f"| {name} | {c:,} | {d:,} | {h:,} | {f:,} | {rd:.2f}{md} | {rh:.2f}{mh} "
              f"| {f / d:.2f} | {f / h:.3f} |")

    def ratios(a, b):
        return sorted(results[a][n] / results[b][n] for n in order)

    rds, rhs = ratios("core", "domain"), ratios("core", "hickory")
    fds, fhs = ratios("floor", "domain"), ratios("floor", "hickory")
    tc, td, th, tf = (sum(results[i].values()) for i in IMPS)
    mid = len(order) // 2
    print()
    print(f"corpus ({len(order)} messages): core {tc:,} Ir, domain {td:,} Ir, hickory {th:,} Ir, "
          f"floor {tf:,} Ir; core/domain {tc / td:.2f}, core/hickory {th and tc / th:.3f}; "
          f"worst message core/domain {worst_d:.2f}, core/hickory {worst_h:.2f}")
    print(f"per message: core/domain median {rds[mid]:.2f}, "
          f"{sum(r <= 0.5 for r in rds)} of {len(rds)} at ≤ 0.5; core/hickory median "
          f"{rhs[mid]:.3f}, {sum(r <= 0.1 for r in rhs)} at ≤ 0.1")
    print(f"floor (unvalidated reference walker): floor/domain corpus {tf / td:.2f}, median "
          f"{fds[mid]:.2f}, range {fds[0]:.2f}–{fds[-1]:.2f}; floor/hickory corpus "
          f"{th and tf / th:.3f}, median {fhs[mid]:.3f}, {sum(r <= 0.1 for r in fhs)} of "
          f"{len(fhs)} at ≤ 0.1; core/floor corpus {tc / tf:.2f}")

if __name__ == "__main__":
    main()
