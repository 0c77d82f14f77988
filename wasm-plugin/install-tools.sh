#!/usr/bin/env bash
# Tools the filter's build and tests need on a fresh Debian/Ubuntu machine (as root):
# the wasm32-wasip1 Rust target and wasm-opt (binaryen). Envoy itself comes from
# envoy/install-envoy.sh; knot and dnsdist from lab/install.sh.
#
# wasm-opt: binaryen 132 from the npm registry (package `binaryen`, its JS/wasm build,
# run by node) into <workspace>/target/binaryen, where build-wasm.sh looks first: it
# shrinks the filter ~3.5 KiB more than Debian's binaryen 108, which is what keeps the
# module under its 150 KiB ceiling. Debian's binaryen is the fallback.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rustup target add wasm32-wasip1
BINARYEN_VERSION=${BINARYEN_VERSION:-132.0.0}
if ! command -v npm >/dev/null 2>&1; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
npm_opt="$root/target/binaryen/node_modules/binaryen/bin/wasm-opt"
if [ ! -x "$npm_opt" ] || [[ $("$npm_opt" --version) != *"version ${BINARYEN_VERSION%%.*} "* ]]; then
    npm install --no-audit --no-fund --prefix "$root/target/binaryen" "binaryen@$BINARYEN_VERSION" >&2
fi
if ! command -v wasm-opt >/dev/null 2>&1; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen
fi
"$npm_opt" --version
wasm-opt --version
