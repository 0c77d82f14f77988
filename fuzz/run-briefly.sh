#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each (default 30), seeded from the
# captured fixtures in core/tests/fixtures. Needs a nightly toolchain and cargo-fuzz;
# without them it prints a clear skip and exits 0, so CI can always call it.
#
#   fuzz/run-briefly.sh 60
#
# Exit status: 0 when every target ran clean (or the run was skipped), 1 when a target
# found a crash (libFuzzer leaves the input in fuzz/artifacts/<target>/ and this script
# prints it as hex).
set -euo pipefail

SECONDS_PER_TARGET="${1:-30}"
case "$SECONDS_PER_TARGET" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS]  (a whole number of seconds per target)" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list | grep -q '^nightly'; then
  echo "SKIP fuzz: no nightly toolchain (rustup toolchain install nightly) - fuzz targets not run"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "SKIP fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz --locked) - fuzz targets not run"
  exit 0
fi

targets=(parse_walk framer differential)

# Seed corpora: every captured message. The framer target reads
# [capacity selector][8-octet split seed][stream], so its seeds are fixtures framed
# with TCP length prefixes behind a fixed 9-octet head.
fixtures="$here/../core/tests/fixtures"
for t in "${targets[@]}"; do mkdir -p "corpus/$t"; done
if compgen -G "$fixtures/*.bin" >/dev/null; then
  for f in "$fixtures"/*.bin; do
    name="$(basename "$f" .bin)"
    cp -f "$f" "corpus/parse_walk/fixture-$name"
    cp -f "$f" "corpus/differential/fixture-$name"
    len=$(stat -c %s "$f")
    if [ "$len" -le 65535 ]; then
      for sel in 0 4 8 13; do
        {
          printf '%b' "\\x$(printf %02x "$sel")" '\x9e\x37\x79\xb9\x7f\x4a\x7c\x15'
          printf '%b' "\\x$(printf %02x $((len >> 8)))" "\\x$(printf %02x $((len & 255)))"
          cat "$f"
          printf '%b' "\\x$(printf %02x $((len >> 8)))" "\\x$(printf %02x $((len & 255)))"
          cat "$f"
        } > "corpus/framer/fixture-$name-$sel"
      done
    fi
  done
else
  echo "note: no fixtures in $fixtures; starting from empty corpora"
fi

if ! cargo +nightly fuzz build -O >fuzz-build.log 2>&1; then
  cat fuzz-build.log >&2
  echo "fuzz targets failed to build" >&2
  exit 1
fi

status=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${SECONDS_PER_TARGET}s"
  if ! cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 2>"fuzz-$t.log"; then
    status=1
    echo "CRASH in $t (log: fuzz/fuzz-$t.log)"
    grep -E "panicked|ERROR: AddressSanitizer|SUMMARY" "fuzz-$t.log" | head -5 || true
    for a in artifacts/"$t"/*; do
      [ -f "$a" ] || continue
      echo "input $a: $(od -An -v -tx1 "$a" | tr -d ' \n')"
    done
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "fuzz-$t.log" | sed "s/^/  /" || true
    echo "  ok: $t"
  fi
done
exit "$status"
