#!/usr/bin/env bash
# Tools the filter's build and tests need on a fresh Debian/Ubuntu machine (as root):
# the wasm32-wasip1 Rust target and wasm-opt (binaryen). Envoy itself comes from
# envoy/install-envoy.sh; knot and dnsdist from lab/install.sh.
#
# wasm-opt: binaryen 132 from the npm registry (package `binaryen`, its JS/wasm build,
# run by node) into <workspace>/target/binaryen, where build-wasm.sh looks first: it
# shrinks the filter ~3.5 KiB more than Debian's binaryen 108. Debian's binaryen is the
# fallback (also when node/npm or the npm registry is not available): the module stays
# under its 160 KiB ceiling with either.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rustup target add wasm32-wasip1
BINARYEN_VERSION=${BINARYEN_VERSION:-132.0.0}
if ! command -v npm >/dev/null 2>&1; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm ||
        echo "install-tools: nodejs/npm not installable; using Debian's wasm-opt" >&2
fi
npm_opt="$root/target/binaryen/node_modules/binaryen/bin/wasm-opt"
if command -v npm >/dev/null 2>&1 &&
    { [ ! -x "$npm_opt" ] || [[ $("$npm_opt" --version) != *"version ${BINARYEN_VERSION%%.*} "* ]]; }; then
    npm install --no-audit --no-fund --prefix "$root/target/binaryen" "binaryen@$BINARYEN_VERSION" >&2 ||
        echo "install-tools: npm binaryen@$BINARYEN_VERSION not installable; using Debian's wasm-opt" >&2
fi
if ! command -v wasm-opt >/dev/null 2>&1; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen
fi
if [ -x "$npm_opt" ]; then "$npm_opt" --version; fi
wasm-opt --version
