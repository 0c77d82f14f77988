#!/usr/bin/env bash
# DNS-over-TCP throughput through a real Envoy: the dnswarden filter vs a plain tcp_proxy.
#
#   dnsperf -m tcp --> Envoy A [ tcp_proxy ]                      --> knot (lab/lab.sh)
#   dnsperf -m tcp --> Envoy B [ wasm dnswarden -> tcp_proxy ]    --> same knot
#
# Two Envoy processes (one worker thread each, same bootstrap but for the filter), both
# in front of the same authoritative knot on free loopback ports. dnsperf runs against
# them in interleaved rounds (A B, then B A, ...: slow drifts of the shared machine hit
# both sides alike). For each run the script reports queries/s and the Envoy process's
# CPU time (utime + stime from /proc/<pid>/stat) per completed query; at the end the
# median ratios filter/plain (issue 6 targets: throughput >= 0.95, CPU/query <= 1.10).
#
# Usage: wasm-plugin/bench/envoy-dnsperf.sh
#   ROUNDS=5 SECONDS_PER_RUN=10   rounds, and dnsperf -l per run
#   CLIENTS=4 OUTSTANDING=64      dnsperf -c (TCP connections) and -q
#   ENVOY_BIN                     envoy binary (default: wasm-plugin/envoy/install-envoy.sh)
#   DNSWARDEN_WASM                filter .wasm (default: wasm-plugin/build-wasm.sh)
#   BENCH_DIR                     state dir (default: a new mktemp -d; kept for the logs)
#   RUNTIME=envoy.wasm.runtime.v8 Wasm runtime of the filter Envoy
#   FILTER_CONFIG                 the filter's JSON configuration (default
#                                 {"mode": "network", "log_level": "warn"}; e.g. add
#                                 "tick_ms": 0 for counters written per message, unbatched)
#   FILTER=dnswarden              or `null`: the do-nothing module of null-filter/ (clock +
#                                 buffer copy per callback) instead, to measure the
#                                 proxy-wasm plumbing alone
#
# Needs dnsperf, knot (lab/install.sh), python3. Loopback only; stops only what it
# started (recorded PIDs), also on error or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-64}
RUNTIME=${RUNTIME:-envoy.wasm.runtime.v8}
FILTER=${FILTER:-dnswarden}
FILTER_CONFIG=${FILTER_CONFIG:-'{"mode": "network", "log_level": "warn"}'}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dnswarden-envoy-bench.XXXXXX")}
ADDR=127.0.0.1

die() { echo "envoy-dnsperf: $*" >&2; exit 1; }
case $FILTER_CONFIG in *"'"*) die "FILTER_CONFIG must not contain single quotes" ;; esac
for tool in dnsperf kdig knotd python3; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (apt-get install dnsperf knot knot-dnsutils)"
done

mkdir -p "$BENCH_DIR"
export LAB_DIR="$BENCH_DIR/lab"
envoy_pids=()

cleanup() {
  local pid
  for pid in "${envoy_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${envoy_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  "$root/lab/lab.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Poll a condition until it holds or 30 s pass (the 50 ms poll is the wait's
# granularity, not a guess at how long anything takes).
wait_for() { # description command...
  local what=$1 deadline=$((SECONDS + 30))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out waiting for $what (logs in $BENCH_DIR)"
    sleep 0.05
  done
}

# shellcheck source=wasm-plugin/bench/common.sh
. "$here/common.sh"
envoy=$(envoy_bin)
if [ "$FILTER" = null ]; then
  wasm=$(null_module)
else
  wasm=$(dnswarden_module)
fi
[ -r "$wasm" ] || die "no filter module at '$wasm'"

"$root/lab/lab.sh" start >"$BENCH_DIR/lab.out"
# shellcheck disable=SC1091
. "$LAB_DIR/lab.env"
[ -n "${LAB_KNOT_PORT:-}" ] || die "lab.sh did not report a knot port"

read -r plain_port plain_admin filter_port filter_admin <<<"$(python3 "$root/lab/freeport.py" 4 "$ADDR")"

lab_queries >"$BENCH_DIR/queries.txt"
[ -s "$BENCH_DIR/queries.txt" ] || die "no queries generated from the lab zone"

start_envoy() { # name listen admin [wasm]; records the PID
  local name=$1
  bootstrap "$@" >"$BENCH_DIR/$name.yaml"
  "$envoy" -c "$BENCH_DIR/$name.yaml" --concurrency 1 --base-id-path "$BENCH_DIR/$name.base-id" \
    --use-dynamic-base-id --log-level warn >"$BENCH_DIR/$name.log" 2>&1 &
  envoy_pids+=("$!")
}

start_envoy plain "$plain_port" "$plain_admin"
plain_pid=${envoy_pids[0]}
start_envoy filter "$filter_port" "$filter_admin" "$wasm"
filter_pid=${envoy_pids[1]}
wait_for "plain Envoy on port $plain_port" answers "$plain_port"
wait_for "filter Envoy on port $filter_port" answers "$filter_port"

cpu_ticks() { # pid -> utime + stime (fields 14 and 15; the command name may hold spaces)
  local stat f
  stat=$(<"/proc/$1/stat")
  # After "pid (comm) " the fields start at 3 (state): utime is f[11], stime f[12].
  read -ra f <<<"${stat##*) }"
  echo $((f[11] + f[12]))
}

hz=$(getconf CLK_TCK)
results="$BENCH_DIR/results.tsv"
printf 'round\tside\tqps\tqueries\tcpu_s\tcpu_us_per_query\n' >"$results"

run() { # round side port pid
  local round=$1 side=$2 port=$3 pid=$4 before after out qps done_q
  before=$(cpu_ticks "$pid")
  out=$(dnsperf -m tcp -s "$ADDR" -p "$port" -d "$BENCH_DIR/queries.txt" -l "$SECONDS_PER_RUN" \
    -c "$CLIENTS" -q "$OUTSTANDING" 2>&1) || die "dnsperf failed: $out"
  after=$(cpu_ticks "$pid")
  echo "$out" >"$BENCH_DIR/dnsperf-$round-$side.txt"
  qps=$(awk '/Queries per second:/ { print $4 }' <<<"$out")
  done_q=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
  if [ -z "$qps" ] || [ -z "$done_q" ] || [ "$done_q" -le 0 ]; then
    die "unreadable dnsperf output: $out"
  fi
  awk -v r="$round" -v s="$side" -v q="$qps" -v n="$done_q" -v t=$((after - before)) -v hz="$hz" \
    'BEGIN { printf "%s\t%s\t%.0f\t%d\t%.2f\t%.2f\n", r, s, q, n, t / hz, t / hz * 1e6 / n }' >>"$results"
  tail -n 1 "$results"
}

echo "envoy-dnsperf: $ROUNDS rounds x ${SECONDS_PER_RUN}s, dnsperf -m tcp -c $CLIENTS -q $OUTSTANDING," \
  "$(wc -l <"$BENCH_DIR/queries.txt") names; $FILTER filter $(stat -c %s "$wasm") bytes ($RUNTIME); logs in $BENCH_DIR" >&2
printf 'round\tside\tqps\tqueries\tcpu_s\tcpu_us_per_query\n'
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    run "$round" plain "$plain_port" "$plain_pid"
    run "$round" filter "$filter_port" "$filter_pid"
  else
    run "$round" filter "$filter_port" "$filter_pid"
    run "$round" plain "$plain_port" "$plain_pid"
  fi
done

# The filter really ran: its query counter in the filter Envoy's stats.
if [ "$FILTER" = null ]; then
  seen=0
else
  seen=$(python3 - "$filter_admin" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/stats?filter=wasmcustom", timeout=5).read().decode()
print(sum(int(l.rsplit(":", 1)[1]) for l in text.splitlines() if ".queries." in l))
PY
  )
  [ "$seen" -gt 0 ] || die "the filter Envoy reports no dnswarden queries: the filter did not run"
fi

python3 - "$results" "$seen" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["round"], {})[r["side"]] = r
qps = [float(v["filter"]["qps"]) / float(v["plain"]["qps"]) for v in by.values()]
cpu = [float(v["filter"]["cpu_us_per_query"]) / float(v["plain"]["cpu_us_per_query"]) for v in by.values()]
med = lambda side, k: statistics.median(float(r[k]) for r in rows if r["side"] == side)
print(f"median qps: plain {med('plain', 'qps'):.0f}, filter {med('filter', 'qps'):.0f}")
print(f"median Envoy CPU per query: plain {med('plain', 'cpu_us_per_query'):.2f} us, filter {med('filter', 'cpu_us_per_query'):.2f} us")
print(f"throughput ratio filter/plain: median {statistics.median(qps):.3f} (rounds: {', '.join(f'{x:.3f}' for x in qps)}; target >= 0.95)")
print(f"CPU per query ratio filter/plain: median {statistics.median(cpu):.3f} (rounds: {', '.join(f'{x:.3f}' for x in cpu)}; target <= 1.10)")
print(f"filter saw {sys.argv[2]} queries (wasmcustom dnswarden queries counters)")
PY
