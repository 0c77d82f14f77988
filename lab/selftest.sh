#!/usr/bin/env bash
# Self-test of the lab and the fixture capture, for CI:
#   - shellcheck of lab/*.sh, syntax check of lab/*.py
#   - lab.sh start / every fault / clear / console / stop, each checked with dig through
#     dnsdist, and no process left behind (checked against the recorded PIDs)
#   - capture-fixtures.sh --verify into a temp dir (kdig must agree with every answer),
#     and the result must equal the committed core/tests/fixtures byte for byte
# Ends with the line "N passed, M failed"; exits non-zero when anything failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
lab=$here/lab.sh
passed=0 failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnswarden-selftest.XXXXXX")
export LAB_DIR=$tmp/lab

# Processes (other than this shell) whose command line contains $1.
procs_naming() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [ "$pid" != "$BASHPID" ] || continue
    tr '\0' ' ' <"$f" 2>/dev/null | grep -qF -- "$1" && echo "$pid"
  done
  return 0
}

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
check() { # name command...
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(printf '%s' "$out" | tail -n 5)"; fi
}

cleanup() {
  "$lab" stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# dig through dnsdist; prints the full answer
q() { dig +tries=1 +time=1 @127.0.0.1 -p "$LAB_DNSDIST_PORT" "$@" 2>&1; }
status_is() { # rcode qname [dig options]
  local want=$1
  shift
  q "$@" | grep -q "status: $want,"
}
answer_is() { # ip qname
  [ "$(dig +short +tries=1 +time=1 @127.0.0.1 -p "$LAB_DNSDIST_PORT" "$2" A)" = "$1" ]
}
K8S=kubernetes.default.svc.cluster.local

# --- static checks ------------------------------------------------------------------
if command -v shellcheck >/dev/null; then
  check "shellcheck lab/*.sh" shellcheck "$here"/*.sh
else
  fail "shellcheck lab/*.sh" "shellcheck not installed (lab/install.sh)"
fi
check "python syntax lab/*.py" python3 -c \
  'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' "$here"/*.py

# --- lab lifecycle ------------------------------------------------------------------
if ! "$lab" start >"$tmp/start.log" 2>&1; then
  fail "lab.sh start" "$(tail -n 20 "$tmp/start.log")"
  echo "$passed passed, $failed failed"
  exit 1
fi
ok "lab.sh start"
# shellcheck source=/dev/null
. "$LAB_DIR/lab.env"
ports_distinct() {
  local n
  n=$(printf '%s\n' "$LAB_KNOT_PORT" "$LAB_EMPTY_PORT" "$LAB_DNSDIST_PORT" "$LAB_DOH_PORT" "$LAB_CONSOLE_PORT" | sort -u | wc -l)
  [ "$n" = 5 ] && [ -n "$LAB_KNOT_PID" ] && [ -n "$LAB_EMPTY_PID" ] && [ -n "$LAB_DNSDIST_PID" ]
}
check "env file: 5 distinct ports, 3 PIDs" ports_distinct
check "second start in the same LAB_DIR is refused" bash -c "! '$lab' start"
check "status: all running" "$lab" status
check "dnsdist UDP answer" answer_is 10.96.0.1 "$K8S"
check "dnsdist TCP answer" bash -c "dig +tcp +short +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | grep -qx 10.96.0.1"
check "dnsdist DoH answer" bash -c "python3 '$here/labdns.py' doh '$LAB_DOH_URL' $K8S A | grep -qx 10.96.0.1"
check "knot SERVFAIL zone" bash -c "dig +tries=1 @127.0.0.1 -p $LAB_KNOT_PORT x.broken.cluster.local A | grep -q 'status: SERVFAIL,'"

# dig, asked the lab's knot the same questions, must see what the committed knot-*
# fixtures hold (rcode and answer rdata): the fixtures are what real clients get.
dig_matches_fixtures() {
  python3 - "$repo/core/tests/fixtures" "$LAB_KNOT_PORT" "$here" <<'PY'
import os, subprocess, sys
fixtures, port, here = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, here)
import labdns
bad = checked = 0
with open(os.path.join(fixtures, "MANIFEST.tsv")) as f:
    rows = [line.rstrip("\n").split("\t") for line in f][1:]
for file, server, transport, qname, qtype, _ in rows:
    if server != "knot" or transport not in ("udp", "tcp"):
        continue
    info = labdns.decode(open(os.path.join(fixtures, file), "rb").read())
    if info["tc"]:
        continue  # dig would retry over TCP; the truncated bytes are the point there
    args = ["dig", "@127.0.0.1", "-p", port, "+tries=1", "+time=2", qname, qtype]
    if transport == "tcp":
        args.append("+tcp")
    out = subprocess.run(args, capture_output=True, text=True).stdout
    short = subprocess.run(args + ["+short"], capture_output=True, text=True).stdout
    rcode = labdns.RCODES[info["rcode"]]
    want = sorted(r[3].lower() for r in info["answer"])
    got = sorted(line.strip().lower() for line in short.splitlines() if line.strip())
    checked += 1
    if f"status: {rcode}," not in out or want != got:
        bad += 1
        print(f"{file}: fixture {rcode} {want}, dig {got}")
print(f"{checked} knot fixtures compared with dig, {bad} differ")
sys.exit(1 if bad or not checked else 0)
PY
}
check "dig sees what the knot fixtures hold" dig_matches_fixtures

fault() { "$lab" fault "$@" >/dev/null; }

fault servfail && check "fault servfail" status_is SERVFAIL "$K8S" A
fault nxdomain && check "fault nxdomain (real, with SOA)" bash -c \
  "dig +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | grep -q 'status: NXDOMAIN,.*' && dig +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | grep -q 'AUTHORITY: 1'"
fault refused && check "fault refused" status_is REFUSED "$K8S" A
fault drop && check "fault drop: no answer" bash -c "! dig +tries=1 +time=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A >/dev/null"
fault tc && check "fault tc: UDP truncated, TCP answers" bash -c \
  "dig +ignore +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | grep -q 'flags: qr tc' && dig +tcp +short +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | grep -qx 10.96.0.1"
fault delay 200 && check "fault delay 200: query time >= 200 ms" bash -c \
  "t=\$(dig +tries=1 +time=2 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | sed -n 's/.*Query time: \([0-9]*\) msec.*/\1/p'); [ \"\${t:-0}\" -ge 200 ]"
fault servfail-name my-svc.default.svc.cluster.local && check "fault servfail-name: only that name" bash -c \
  "dig +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT my-svc.default.svc.cluster.local A | grep -q 'status: SERVFAIL,' && dig +short +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | grep -qx 10.96.0.1"
mixed() { # n: both NOERROR and the other rcode $1 appear among $2 queries
  local seen
  seen=$(for _ in $(seq "$2"); do q "$K8S" A | grep -o 'status: [A-Z]*'; done | sort -u | tr '\n' ' ')
  [[ $seen == *NOERROR* && $seen == *"$1"* ]]
}
fault servfail-prob 0.5 && check "fault servfail-prob 0.5: some SERVFAIL, some NOERROR (40 queries)" mixed SERVFAIL 40
fault spoof 10.96.0.99 && check "fault spoof" answer_is 10.96.0.99 "$K8S"
fault ratelimit 5 && check "fault ratelimit 5: REFUSED above the rate (30 queries)" mixed REFUSED 30
fault ede 22 "no reachable authority" && check "fault ede 22 (dig shows the EDE)" bash -c \
  "dig +tries=1 @127.0.0.1 -p $LAB_DNSDIST_PORT $K8S A | grep -q 'EDE: 22 (No Reachable Authority): (no reachable authority)'"
"$lab" clear >/dev/null && check "clear: normal answers again" answer_is 10.96.0.1 "$K8S"
check "bad fault arguments are rejected" bash -c \
  "! '$lab' fault delay x 2>/dev/null && ! '$lab' fault nosuch 2>/dev/null && ! '$lab' fault servfail-prob 2 2>/dev/null"

# a long-lived console fed on stdin acknowledges each switch with one line
console_ack() {
  local line1 line2 rc=0
  coproc CON { "$lab" console 2>&1; }
  echo "labFault(AllRule(), RCodeAction(DNSRCode.REFUSED))" >&"${CON[1]}"
  read -r -t 5 line1 <&"${CON[0]}" || rc=1
  status_is REFUSED "$K8S" A || rc=1
  echo "labClear()" >&"${CON[1]}"
  read -r -t 5 line2 <&"${CON[0]}" || rc=1
  answer_is 10.96.0.1 "$K8S" || rc=1
  local fd=${CON[1]}
  exec {fd}>&-
  wait "$CON_PID" || rc=1
  [ "$line1" = "lab: fault set" ] && [ "$line2" = "lab: faults cleared" ] && return "$rc"
}
check "console on stdin: switch, ack line, clear" console_ack

pids="$LAB_KNOT_PID $LAB_EMPTY_PID $LAB_DNSDIST_PID"
check "lab.sh stop" "$lab" stop
# Exited: no /proc entry, or a zombie waiting for init to reap it (the lab's daemons are
# re-parented to init once lab.sh start returns).
exited() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [ -z "$state" ] || [ "$state" = Z ]
}
gone() {
  local pid left
  for pid in $pids; do exited "$pid" || { echo "pid $pid still running"; return 1; }; done
  left=$(procs_naming "$LAB_DIR/")
  [ -z "$left" ] || { echo "processes naming $LAB_DIR: $left"; return 1; }
}
check "no lab process left (recorded PIDs gone, none names LAB_DIR)" gone

# --- fixtures -----------------------------------------------------------------------
if [ "${SKIP_FIXTURES:-0}" != 1 ]; then
  if CAPTURE_ARGS=--verify "$here/capture-fixtures.sh" "$tmp/fixtures" >"$tmp/capture.log" 2>&1; then
    ok "capture-fixtures --verify (kdig agrees)"
    check "captured fixtures equal the committed ones" diff -r "$tmp/fixtures" "$repo/core/tests/fixtures" -x README.md
  else
    fail "capture-fixtures --verify" "$(tail -n 20 "$tmp/capture.log")"
  fi
  no_capture_left() { [ -z "$(procs_naming "${TMPDIR:-/tmp}/dnswarden-capture.")" ]; }
  check "no capture process left" no_capture_left
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
