#!/usr/bin/env bash
# dnswarden DNS lab on loopback.
#
#   knot   authoritative cluster.local (lab/zones/cluster.local.zone) + 10.in-addr.arpa
#   empty  a second knot serving an empty cluster.local: real NXDOMAIN answers with SOA
#   dnsdist in front of knot (UDP+TCP, DoH as plain HTTP on /dns-query), fault injector
#          whose rules are switched at runtime through its console
#
# Usage: lab.sh COMMAND [ARGS]
#   start                 pick free ports, start everything, wait until it answers
#   stop                  stop what start started (recorded PIDs only), wait for exit
#   status                show the recorded processes and whether they are alive
#   env                   print the env file (source it: . "$LAB_DIR/lab.env")
#   fault NAME [ARG]      switch one fault on in dnsdist (replaces the previous fault)
#   clear                 switch faults off
#   console               interactive (or stdin-fed) dnsdist console, one Lua line each
#   ctl LUA               run one Lua statement on the dnsdist console, print its output
#
# Faults: delay MS | servfail | nxdomain | refused | drop | tc | servfail-name QNAME |
#         servfail-prob P | spoof IP | ratelimit QPS | ede CODE [TEXT]
#   delay is UDP only in dnsdist < 1.8 (TCP answers are not delayed); tc truncates UDP
#   only (clients retry over TCP and get the real answer); nxdomain sends every query to
#   the empty zone; ratelimit answers REFUSED above QPS; ede answers SERVFAIL with an
#   Extended DNS Error option (RFC 8914) carrying CODE and TEXT.
#
# Environment: LAB_DIR (state dir, default ${TMPDIR:-/tmp}/dnswarden-lab; use one per
# test run), LAB_TIMEOUT (seconds to wait for readiness, default 15).
# Only loopback addresses are used. Ports are picked free at start, never fixed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_DIR=${LAB_DIR:-${TMPDIR:-/tmp}/dnswarden-lab}
LAB_TIMEOUT=${LAB_TIMEOUT:-15}
ENV_FILE=$LAB_DIR/lab.env
ADDR=127.0.0.1

die() { echo "lab: $*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: run lab/install.sh (as root)"
  done
}

# --- process bookkeeping ---------------------------------------------------------------

# A recorded PID is ours only while its command line still names our state dir; this
# guards against killing an unrelated process that reused the PID.
is_ours() { # pid
  local pid=$1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$LAB_DIR/"
}

# Poll a condition until it holds or LAB_TIMEOUT elapses. The 50 ms poll interval is
# the granularity of the wait, not a guess at how long things take.
wait_for() { # description command...
  local what=$1 deadline
  shift
  deadline=$((SECONDS + LAB_TIMEOUT))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "lab: timed out after ${LAB_TIMEOUT}s waiting for $what" >&2; return 1; }
    sleep 0.05
  done
}

# Alive and not a zombie. Used while starting: right after fork the child's command line
# is still lab.sh's own, so is_ours would be wrong there.
alive() { # pid
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

alive_or_die() { # name pid log
  alive "$2" || { echo "lab: $1 (pid $2) exited; last log lines:" >&2; tail -n 20 "$3" >&2 || true; return 1; }
}

# --- readiness checks ------------------------------------------------------------------

answers() { # port qname qtype expect [proto-flag]
  kdig +retry=0 +timeout=1 +short ${5:+"$5"} "@$ADDR" -p "$1" "$2" "$3" 2>/dev/null | grep -qxF "$4"
}

server_ready() { # name pid log port qname qtype expect
  alive_or_die "$1" "$2" "$3" || return 2
  answers "$4" "$5" "$6" "$7" && answers "$4" "$5" "$6" "$7" +tcp
}

doh_ready() {
  python3 "$here/labdns.py" doh "http://$ADDR:$LAB_DOH_PORT/dns-query" kubernetes.default.svc.cluster.local A 2>/dev/null |
    grep -qxF 10.96.0.1
}

console_ready() { ctl_raw 'showVersion()' 2>/dev/null | grep -q dnsdist; }

# Wait for a server, failing fast (instead of at the timeout) when it died.
wait_server() { # name pid log port qname qtype expect
  local rc=0 deadline=$((SECONDS + LAB_TIMEOUT))
  while :; do
    server_ready "$@" && return 0 || rc=$?
    [ "$rc" -ne 2 ] || return 1
    [ "$SECONDS" -lt "$deadline" ] || { echo "lab: timed out after ${LAB_TIMEOUT}s waiting for $1 on port $4" >&2; return 1; }
    sleep 0.05
  done
}

# --- configuration ---------------------------------------------------------------------

knot_conf() { # name port zonedir with-reverse(0|1)
  cat <<CONF
server:
    rundir: "$LAB_DIR/$1"
    listen: $ADDR@$2
    udp-max-payload: 1232
    identity: "$1.lab.dnswarden"
    nsid: "$1.lab.dnswarden"
control:
    listen: "$LAB_DIR/$1/knot.sock"
database:
    storage: "$LAB_DIR/$1/db"
log:
  - target: "$LAB_DIR/$1/knotd.log"
    any: info
template:
  - id: default
    storage: "$3"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: cluster.local
    file: cluster.local.zone
CONF
  if [ "$4" = 1 ]; then
    # broken.cluster.local has no zone file on purpose: knot answers SERVFAIL below it.
    printf '  - domain: %s\n    file: %s\n' 10.in-addr.arpa 10.in-addr.arpa.zone \
      broken.cluster.local missing-on-purpose.zone
  fi
}

console_conf() {
  cat <<CONF
controlSocket('$ADDR:$LAB_CONSOLE_PORT')
setKey('$LAB_CONSOLE_KEY')
CONF
}

dnsdist_conf() {
  console_conf
  cat <<CONF
setConsoleACL({'127.0.0.0/8'})
setLocal('$ADDR:$LAB_DNSDIST_PORT')
addDOHLocal('$ADDR:$LAB_DOH_PORT', nil, nil, '/dns-query')
setACL({'127.0.0.0/8'})
setSecurityPollSuffix('')
setServFailWhenNoServer(true)
newServer({address='$ADDR:$LAB_KNOT_PORT', name='knot', checkName='cluster.local.', checkType='SOA', checkInterval=1, mustResolve=true})
newServer({address='$ADDR:$LAB_EMPTY_PORT', name='empty', pool='nx', checkName='cluster.local.', checkType='SOA', checkInterval=1, mustResolve=true})
dofile('$here/faults.lua')
CONF
}

# --- dnsdist console -------------------------------------------------------------------

load_env() {
  [ -f "$ENV_FILE" ] || die "no lab in $LAB_DIR (run: lab.sh start)"
  # shellcheck source=/dev/null
  . "$ENV_FILE"
}

ctl_raw() { dnsdist -c -C "$LAB_DIR/console.conf" -e "$1"; }

# Run a Lua statement; dnsdist's client exits 0 even when the statement failed, so its
# output is checked for the error marker.
ctl() {
  local out
  out=$(ctl_raw "$1" 2>&1) || die "console: $out"
  case $out in *rror*) die "console: $1: $out" ;; esac
  [ -z "$out" ] || printf '%s\n' "$out"
}

lua_str() { # quote a shell string as a Lua string literal
  local s=${1//\\/\\\\}
  s=${s//\'/\\\'}
  printf "'%s'" "$s"
}

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }

fault() {
  local name=${1:-} arg=${2:-}
  case $name in
    delay) is_uint "$arg" || die "fault delay MS: MS must be a whole number of milliseconds"
      ctl "labFault(AllRule(), DelayAction($arg))" ;;
    servfail) ctl "labFault(AllRule(), RCodeAction(DNSRCode.SERVFAIL))" ;;
    nxdomain) ctl "labFault(AllRule(), PoolAction('nx'))" ;;
    refused) ctl "labFault(AllRule(), RCodeAction(DNSRCode.REFUSED))" ;;
    drop) ctl "labFault(AllRule(), DropAction())" ;;
    tc) ctl "labFault(AllRule(), TCAction())" ;;
    servfail-name) [ -n "$arg" ] || die "fault servfail-name QNAME: QNAME missing"
      ctl "labFault(QNameRule($(lua_str "$arg")), RCodeAction(DNSRCode.SERVFAIL))" ;;
    servfail-prob) [[ $arg =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "fault servfail-prob P: P must be a probability in [0, 1], e.g. 0.3"
      ctl "labFault(ProbaRule($arg), RCodeAction(DNSRCode.SERVFAIL))" ;;
    spoof) [[ $arg =~ ^[0-9a-fA-F:.]+$ ]] || die "fault spoof IP: IP must be an IPv4 or IPv6 address (data only, never contacted)"
      ctl "labFault(AllRule(), SpoofAction({$(lua_str "$arg")}, {ttl=5}))" ;;
    ratelimit) is_uint "$arg" || die "fault ratelimit QPS: QPS must be a whole number"
      ctl "labFault(NotRule(MaxQPSRule($arg)), RCodeAction(DNSRCode.REFUSED))" ;;
    ede) if ! is_uint "$arg" || [ "$arg" -gt 65535 ]; then
        die "fault ede CODE [TEXT]: CODE must be an RFC 8914 info-code (0-65535)"
      fi
      ctl "labFaultEDE($arg, $(lua_str "${3:-}"))" ;;
    *) die "unknown fault '$name' (see: lab.sh help)" ;;
  esac
}

# --- start / stop ----------------------------------------------------------------------

write_env() {
  cat >"$ENV_FILE.tmp" <<ENV
# dnswarden lab state; source this file. Written by lab.sh start.
LAB_DIR='$LAB_DIR'
LAB_ADDR='$ADDR'
LAB_KNOT_PORT=$LAB_KNOT_PORT
LAB_EMPTY_PORT=$LAB_EMPTY_PORT
LAB_DNSDIST_PORT=$LAB_DNSDIST_PORT
LAB_DOH_PORT=$LAB_DOH_PORT
LAB_DOH_URL='http://$ADDR:$LAB_DOH_PORT/dns-query'
LAB_CONSOLE_PORT=$LAB_CONSOLE_PORT
LAB_CONSOLE_KEY='$LAB_CONSOLE_KEY'
LAB_CONSOLE_CONF='$LAB_DIR/console.conf'
LAB_KNOT_PID=${LAB_KNOT_PID:-}
LAB_EMPTY_PID=${LAB_EMPTY_PID:-}
LAB_DNSDIST_PID=${LAB_DNSDIST_PID:-}
ENV
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

start_once() {
  read -r LAB_KNOT_PORT LAB_EMPTY_PORT LAB_DNSDIST_PORT LAB_DOH_PORT LAB_CONSOLE_PORT \
    <<<"$(python3 "$here/freeport.py" 5 "$ADDR")"
  LAB_CONSOLE_KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
  LAB_KNOT_PID='' LAB_EMPTY_PID='' LAB_DNSDIST_PID=''
  mkdir -p "$LAB_DIR/knot/db" "$LAB_DIR/empty/db"
  knot_conf knot "$LAB_KNOT_PORT" "$here/zones" 1 >"$LAB_DIR/knot.conf"
  knot_conf empty "$LAB_EMPTY_PORT" "$here/zones/empty" 0 >"$LAB_DIR/empty.conf"
  console_conf >"$LAB_DIR/console.conf"
  dnsdist_conf >"$LAB_DIR/dnsdist.conf"
  write_env # record the ports before anything runs, PIDs as each process starts

  knotd -c "$LAB_DIR/knot.conf" </dev/null >"$LAB_DIR/knot/stdout.log" 2>&1 &
  LAB_KNOT_PID=$!
  write_env
  knotd -c "$LAB_DIR/empty.conf" </dev/null >"$LAB_DIR/empty/stdout.log" 2>&1 &
  LAB_EMPTY_PID=$!
  write_env
  wait_server knot "$LAB_KNOT_PID" "$LAB_DIR/knot/knotd.log" "$LAB_KNOT_PORT" \
    kubernetes.default.svc.cluster.local A 10.96.0.1 || return 1
  wait_server empty "$LAB_EMPTY_PID" "$LAB_DIR/empty/knotd.log" "$LAB_EMPTY_PORT" \
    ns.dns.cluster.local A 10.96.0.10 || return 1

  dnsdist --supervised --disable-syslog -C "$LAB_DIR/dnsdist.conf" \
    </dev/null >"$LAB_DIR/dnsdist.log" 2>&1 &
  LAB_DNSDIST_PID=$!
  write_env
  # Answers through dnsdist mean its health check saw knot up (SERVFAIL until then).
  wait_server dnsdist "$LAB_DNSDIST_PID" "$LAB_DIR/dnsdist.log" "$LAB_DNSDIST_PORT" \
    kubernetes.default.svc.cluster.local A 10.96.0.1 || return 1
  wait_for "dnsdist DoH on port $LAB_DOH_PORT" doh_ready || return 1
  wait_for "dnsdist console on port $LAB_CONSOLE_PORT" console_ready || return 1
  # The nx pool must be up too before the nxdomain fault can be trusted.
  wait_for "dnsdist health check of the empty zone" nx_pool_up || return 1
}

nx_pool_up() { ctl_raw 'showServers()' 2>/dev/null | grep -E '\bempty\b' | grep -qw up; }

stop_pids() {
  local pid pids=()
  for pid in "${LAB_DNSDIST_PID:-}" "${LAB_KNOT_PID:-}" "${LAB_EMPTY_PID:-}"; do
    if is_ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  local deadline=$((SECONDS + LAB_TIMEOUT))
  for pid in "${pids[@]}"; do
    while is_ours "$pid"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "lab: pid $pid ignored SIGTERM, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.05
    done
  done
}

running() { # true when any recorded PID is still ours
  [ -f "$ENV_FILE" ] || return 1
  (
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    for pid in "${LAB_KNOT_PID:-}" "${LAB_EMPTY_PID:-}" "${LAB_DNSDIST_PID:-}"; do
      is_ours "$pid" && exit 0
    done
    exit 1
  )
}

start() {
  need knotd kdig dnsdist python3
  ! running || die "a lab is already running in $LAB_DIR (lab.sh stop, or set LAB_DIR)"
  mkdir -p "$LAB_DIR"
  LAB_DIR=$(cd "$LAB_DIR" && pwd)
  ENV_FILE=$LAB_DIR/lab.env
  local try
  # A port found free can be taken before our server binds it; start again on new ports.
  for try in 1 2 3; do
    if start_once; then
      echo "lab: knot $ADDR:$LAB_KNOT_PORT, empty zone $ADDR:$LAB_EMPTY_PORT," \
        "dnsdist $ADDR:$LAB_DNSDIST_PORT (UDP+TCP), DoH http://$ADDR:$LAB_DOH_PORT/dns-query," \
        "console $ADDR:$LAB_CONSOLE_PORT"
      echo "lab: env file $ENV_FILE"
      return 0
    fi
    echo "lab: start attempt $try failed, stopping what it started" >&2
    stop_pids
  done
  die "could not start the lab (logs in $LAB_DIR)"
}

stop() {
  [ -f "$ENV_FILE" ] || { echo "lab: nothing recorded in $LAB_DIR"; return 0; }
  load_env
  stop_pids
  echo "lab: stopped (pids ${LAB_DNSDIST_PID:--} ${LAB_KNOT_PID:--} ${LAB_EMPTY_PID:--})"
}

status() {
  load_env
  local name pid rc=0
  for name in knot empty dnsdist; do
    case $name in
      knot) pid=${LAB_KNOT_PID:-} ;;
      empty) pid=${LAB_EMPTY_PID:-} ;;
      dnsdist) pid=${LAB_DNSDIST_PID:-} ;;
    esac
    if is_ours "$pid"; then echo "$name pid $pid running"; else echo "$name pid ${pid:--} not running"; rc=1; fi
  done
  return "$rc"
}

case "${1:-help}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) load_env; cat "$ENV_FILE" ;;
  fault) load_env; shift; fault "$@" ;;
  clear) load_env; ctl 'labClear()' ;;
  console) load_env; exec dnsdist -c -C "$LAB_DIR/console.conf" ;;
  ctl) load_env; [ -n "${2:-}" ] || die "ctl LUA: statement missing"; ctl "$2" ;;
  help | -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
