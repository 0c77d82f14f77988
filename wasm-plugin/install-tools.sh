#!/usr/bin/env bash
# Tools the filter's build and tests need on a fresh Debian/Ubuntu machine (as root):
# the wasm32-wasip1 Rust target and wasm-opt (binaryen). Envoy itself comes from
# envoy/install-envoy.sh; knot and dnsdist from lab/install.sh.
set -euo pipefail
rustup target add wasm32-wasip1
if ! command -v wasm-opt >/dev/null 2>&1; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen
fi
wasm-opt --version
