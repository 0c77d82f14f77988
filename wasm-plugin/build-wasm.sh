#!/usr/bin/env bash
# Builds the dnswarden proxy-wasm filter and prints the path of the .wasm to ship.
#
#   1. cargo build --target wasm32-wasip1 --profile wasm-release -p dnswarden-wasm,
#      with opt-level "z" (measured ~15 KiB smaller than the profile's "s" for this
#      crate) in its own target dir, so it never waits on another build's lock;
#   2. wasm-opt -Oz --converge when installed: a further ~20 %. First choice binaryen 132
#      from npm in <workspace>/target/binaryen (install-tools.sh puts it there; ~3.5 KiB
#      smaller output than Debian's binaryen 108), else `wasm-opt` on PATH;
#   3. export pruning: `wasm-metadce` (beside that wasm-opt, else on PATH) keeps every
#      export except the callbacks the filter never triggers (PRUNED below: it makes no
#      HTTP or gRPC calls and registers no queue or foreign function, so the host never
#      calls them; Envoy does not require them), then `wasm-opt -Oz --converge` again:
#      ~6.8 KiB. Skipped with a note when wasm-metadce/wasm-dis are missing.
#
# The result must stay within the 128 KiB budget (checked by the host tests).
#
#   DNSWARDEN_WASM_TARGET_DIR  target dir (default: <workspace>/target/wasm-filter)
#   WASM_OPT                   wasm-opt binary (default: target/binaryen's, else wasm-opt on
#                              PATH; "none" skips)
#
# Output: the last line is the path of the final artifact: dnswarden_wasm.opt.wasm when
# wasm-opt ran, else the plain cargo output dnswarden_wasm.wasm.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${DNSWARDEN_WASM_TARGET_DIR:-$root/target/wasm-filter}"
cargo="${CARGO:-cargo}"

(cd "$root" && CARGO_TARGET_DIR="$target" CARGO_PROFILE_WASM_RELEASE_OPT_LEVEL=z \
    "$cargo" build --quiet --target wasm32-wasip1 --profile wasm-release -p dnswarden-wasm)
out="$target/wasm32-wasip1/wasm-release"
wasm="$out/dnswarden_wasm.wasm"

npm_opt="$root/target/binaryen/node_modules/binaryen/bin/wasm-opt"
if [ -z "${WASM_OPT:-}" ] && [ -x "$npm_opt" ] && command -v node >/dev/null 2>&1; then
    WASM_OPT=$npm_opt
fi
opt="${WASM_OPT:-$(command -v wasm-opt || true)}"

# Callbacks the filter never triggers (no HTTP/gRPC calls, no queues, no foreign functions).
PRUNED="proxy_on_grpc_close proxy_on_grpc_receive proxy_on_grpc_receive_initial_metadata \
proxy_on_grpc_receive_trailing_metadata proxy_on_http_call_response proxy_on_foreign_function \
proxy_on_queue_ready"

# prune DIR FILE: drops the PRUNED exports of FILE and what only they reach, with
# DIR/wasm-metadce (else wasm-metadce on PATH), then re-optimises FILE in place.
prune() {
    local dir=$1 file=$2 metadce dis exports e sep=""
    metadce="$dir/wasm-metadce"; dis="$dir/wasm-dis"
    [ -x "$metadce" ] || metadce=$(command -v wasm-metadce || true)
    [ -x "$dis" ] || dis=$(command -v wasm-dis || true)
    if [ -z "$metadce" ] || [ -z "$dis" ]; then
        echo "build-wasm: wasm-metadce/wasm-dis not found: exports not pruned (~6.8 KiB larger)" >&2
        return 0
    fi
    exports=$("$dis" "$file" | sed -n 's/^ *(export "\([^"]*\)".*/\1/p')
    {
        echo "["
        for e in $exports; do
            case " $PRUNED " in *" $e "*) continue ;; esac
            printf '%s{"name": "export_%s", "export": "%s", "root": true}\n' "$sep" "$e" "$e"
            sep=","
        done
        echo "]"
    } >"$file.graph.json"
    "$metadce" "${features[@]}" -f "$file.graph.json" "$file" -o "$file.dce" >/dev/null
    "$opt" "${optimise[@]}" "$file.dce" -o "$file"
    rm -f "$file.dce" "$file.graph.json"
}
if [ -n "$opt" ] && [ "$opt" != none ]; then
    # The features rustc enables by default for wasm32 (bulk memory, sign extension,
    # saturating float-to-int, mutable globals, multi-value, reference types).
    # Redone when the module or the optimiser changed (a stamp names the optimiser used).
    # --low-memory-unused: addresses below 1024 are never used, so constant offsets fold
    # into loads and stores (~1 KiB). True for this module: wasm-ld puts the 1 MiB stack
    # first (growing down from 1 MiB) and the data above it, and the allocator
    # (src/heap.rs) starts past the initial memory; only a stack 1 MiB deep would reach it.
    features=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
        --enable-mutable-globals --enable-multivalue --enable-reference-types)
    optimise=(-Oz --converge --low-memory-unused "${features[@]}")
    stamp="$out/dnswarden_wasm.opt.wasm.by"
    if [ ! -e "$out/dnswarden_wasm.opt.wasm" ] || [ "$wasm" -nt "$out/dnswarden_wasm.opt.wasm" ] ||
        [ "$(cat "$stamp" 2>/dev/null)" != "$opt ${optimise[*]}" ]; then
        "$opt" "${optimise[@]}" "$wasm" -o "$out/dnswarden_wasm.opt.wasm.tmp"
        prune "$(dirname "$opt")" "$out/dnswarden_wasm.opt.wasm.tmp"
        mv "$out/dnswarden_wasm.opt.wasm.tmp" "$out/dnswarden_wasm.opt.wasm"
        echo "$opt ${optimise[*]}" >"$stamp"
    fi
    wasm="$out/dnswarden_wasm.opt.wasm"
else
    echo "build-wasm: wasm-opt not found (apt-get install binaryen): shipping the unoptimised module" >&2
fi
echo "build-wasm: $(stat -c %s "$wasm") bytes" >&2
echo "$wasm"
