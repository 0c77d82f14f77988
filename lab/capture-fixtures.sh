#!/usr/bin/env bash
# Regenerate core/tests/fixtures/: raw DNS responses captured from real servers.
#
#   lab/capture-fixtures.sh [OUT_DIR]     (default: core/tests/fixtures of this repo)
#
# Starts, on free loopback ports and with PIDs recorded under a private state dir:
#   the lab (lab.sh: knot, empty-zone knot, dnsdist in front of knot),
#   nsd, unbound (auth-zone for cluster.local, everything else forwarded to a dead
#   loopback port, so nothing ever leaves the machine) and bind9 named,
# all serving lab/zones/cluster.local.zone; then runs capture-fixtures.py, which sends
# fixed queries (fixed ids) and writes <server>-<case>.bin, <server>-<case>.query.bin
# and MANIFEST.tsv. Everything it started is stopped on exit, by recorded PID only.
#
# Environment: KEEP=1 keeps the state dir for inspection; CAPTURE_ARGS adds arguments
# to capture-fixtures.py (e.g. --verify to compare every answer with kdig).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${1:-$repo/core/tests/fixtures}
zones=$here/zones
timeout_s=15

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "capture: '$tool' not found: run lab/install.sh" >&2; exit 1; }
  done
}
need knotd kdig dnsdist nsd unbound named python3

state=$(mktemp -d "${TMPDIR:-/tmp}/dnswarden-capture.XXXXXX")
export LAB_DIR=$state/lab
pids=()

cleanup() {
  local rc=$? pid deadline
  "$here/lab.sh" stop >/dev/null 2>&1 || true
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + timeout_s))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "capture: state kept in $state" >&2
  else
    rm -rf "$state"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Poll until a server answers the SOA of cluster.local over UDP and TCP, failing fast
# when the process died. 50 ms is the poll interval, not a guess at start-up time.
wait_ready() { # name pid port log
  local deadline=$((SECONDS + timeout_s))
  until kdig +retry=0 +timeout=1 +short @127.0.0.1 -p "$3" cluster.local SOA 2>/dev/null | grep -q '^ns.dns.cluster.local.' &&
    kdig +tcp +retry=0 +timeout=1 +short @127.0.0.1 -p "$3" cluster.local SOA 2>/dev/null | grep -q '^ns.dns.cluster.local.'; do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "capture: $1 exited; log:" >&2; tail -n 20 "$4" >&2 || true; return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || { echo "capture: $1 not ready after ${timeout_s}s" >&2; return 1; }
    sleep 0.05
  done
}

"$here/lab.sh" start >/dev/null
# shellcheck source=/dev/null
. "$LAB_DIR/lab.env"

read -r nsd_port unbound_port named_port dead_port <<<"$(python3 "$here/freeport.py" 4)"

# --- nsd ----------------------------------------------------------------------------
mkdir -p "$state/nsd"
cat >"$state/nsd/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$nsd_port
    do-ip6: no
    server-count: 1
    reuseport: no
    username: ""
    chroot: ""
    database: ""
    zonelistfile: "$state/nsd/zone.list"
    xfrdfile: "$state/nsd/xfrd.state"
    xfrdir: "$state/nsd"
    pidfile: "$state/nsd/nsd.pid"
    logfile: "$state/nsd/nsd.log"
    verbosity: 1
    nsid: "ascii_nsd.lab.dnswarden"
    round-robin: no
    minimal-responses: no
    ipv4-edns-size: 1232
remote-control:
    control-enable: no
zone:
    name: cluster.local
    zonefile: "$zones/cluster.local.zone"
zone:
    name: broken.cluster.local
    zonefile: "$state/nsd/missing-on-purpose.zone"
CONF
nsd -d -c "$state/nsd/nsd.conf" </dev/null >"$state/nsd/stdout.log" 2>&1 &
pids+=("$!")
wait_ready nsd "$!" "$nsd_port" "$state/nsd/nsd.log"

# --- unbound ------------------------------------------------------------------------
mkdir -p "$state/unbound"
: >"$state/unbound/empty.zone"
cat >"$state/unbound/unbound.conf" <<CONF
server:
    interface: 127.0.0.1@$unbound_port
    port: $unbound_port
    do-ip6: no
    num-threads: 1
    so-reuseport: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$state/unbound"
    pidfile: "$state/unbound/unbound.pid"
    logfile: "$state/unbound/unbound.log"
    use-syslog: no
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    # queries from 127.0.0.2 are refused by policy: REFUSED with EDE 18 (Prohibited)
    access-control: 127.0.0.2/32 refuse
    module-config: "iterator"
    do-not-query-localhost: no
    qname-minimisation: no
    prefetch: no
    minimal-responses: no
    rrset-roundrobin: no
    edns-buffer-size: 1232
    max-udp-size: 1232
    nsid: "ascii_unbound.lab.dnswarden"
    ede: yes
    local-zone: "refused.cluster.local." always_refuse
# broken.cluster.local: an auth-zone whose file is empty (no SOA): SERVFAIL below it.
auth-zone:
    name: "broken.cluster.local"
    zonefile: "$state/unbound/empty.zone"
    for-downstream: yes
    for-upstream: no
    fallback-enabled: no
auth-zone:
    name: "cluster.local"
    zonefile: "$zones/cluster.local.zone"
    for-downstream: yes
    for-upstream: yes
    fallback-enabled: no
# Everything that is not cluster.local goes to a loopback port where nothing listens:
# unbound answers SERVFAIL for it, and no query can leave the machine.
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$dead_port
remote-control:
    control-enable: no
CONF
unbound -d -c "$state/unbound/unbound.conf" </dev/null >"$state/unbound/stdout.log" 2>&1 &
pids+=("$!")
wait_ready unbound "$!" "$unbound_port" "$state/unbound/unbound.log"

# --- bind9 named --------------------------------------------------------------------
mkdir -p "$state/named"
cat >"$state/named/named.conf" <<CONF
options {
    directory "$state/named";
    pid-file "$state/named/named.pid";
    session-keyfile "$state/named/session.key";
    listen-on port $named_port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    notify no;
    dnssec-validation no;
    edns-udp-size 1232;
    max-udp-size 1232;
    minimal-responses no;
    // zone order, not random: reruns must give the same bytes (also the same subset
    // of records in a partially truncated answer)
    rrset-order { order none; };
    server-id "named.lab.dnswarden";
};
controls { };
zone "cluster.local" { type primary; file "$zones/cluster.local.zone"; };
zone "broken.cluster.local" { type primary; file "$state/named/missing-on-purpose.zone"; };
CONF
named -g -n 1 -c "$state/named/named.conf" </dev/null >"$state/named/named.log" 2>&1 &
pids+=("$!")
wait_ready named "$!" "$named_port" "$state/named/named.log"

cat >"$state/servers.env" <<ENV
knot=127.0.0.1:$LAB_KNOT_PORT
nsd=127.0.0.1:$nsd_port
unbound=127.0.0.1:$unbound_port
bind=127.0.0.1:$named_port
dnsdist=127.0.0.1:$LAB_DNSDIST_PORT
dnsdist_doh=$LAB_DOH_URL
ENV

# shellcheck disable=SC2086 # CAPTURE_ARGS is a list of arguments
python3 "$here/capture-fixtures.py" --servers "$state/servers.env" \
  --lab "$here/lab.sh" --out "$out" ${CAPTURE_ARGS:-}
