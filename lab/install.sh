#!/usr/bin/env bash
# Install every Debian package dnswarden's tests, lab and fixture capture need.
# Idempotent, non-interactive, quiet; for root on Debian 12 (bookworm).
#
#   lab/install.sh            install what is missing (apt-get update first)
#   lab/install.sh --check    only report what is missing; exit 1 if anything is
#
# Daemons are never started by the install: on machines without a policy-rc.d, one
# that denies service starts is put in place for the duration of apt-get and removed
# afterwards, so no system-wide unbound/named/nsd/knot ends up listening on port 53.
set -euo pipefail

PACKAGES=(
  knot            # authoritative server for the lab's cluster.local (knotd)
  knot-dnsutils   # kdig: readiness checks and answer comparisons
  dnsdist         # fault injector in front of knot (UDP, TCP, DoH)
  nsd             # second authoritative implementation for fixtures
  unbound         # resolver implementation for fixtures (auth-zone, EDE)
  bind9           # named: third implementation for fixtures
  bind9-dnsutils  # dig, named-checkzone
  dnsperf         # dnsperf / resperf background load
  prometheus-blackbox-exporter # the runner's cost benchmark compares against it
  python3         # lab helpers (standard library only)
  shellcheck      # lint of the lab's shell scripts
  procps          # ps/pgrep for process checks in tests
  ca-certificates # apt over https mirrors
)

missing() {
  local pkg status
  for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [ "${status:0:2}" = ii ] || printf '%s\n' "$pkg"
  done
}

if [ "${1:-}" = --check ]; then
  todo=$(missing)
  [ -z "$todo" ] && { echo "install: all packages present"; exit 0; }
  echo "install: missing: $(tr "\n" " " <<<"$todo")"
  exit 1
fi

[ "$(id -u)" = 0 ] || { echo "install: run as root (apt-get install)" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "install: apt-get not found; Debian 12 expected" >&2; exit 1; }

mapfile -t todo < <(missing)
if [ "${#todo[@]}" -eq 0 ]; then
  echo "install: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

policy=/usr/sbin/policy-rc.d
cleanup() { :; }
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, from dnswarden lab/install.sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  cleanup() { rm -f "$policy"; }
fi
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
cleanup_log() { rm -f "$log"; cleanup; }
trap cleanup_log EXIT
# apt's own output goes to a log that is shown only when something fails
run() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "install: failed: $*" >&2; exit 1; }; }
run apt-get update -qq
run apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${todo[@]}"
echo "install: installed ${todo[*]}"
