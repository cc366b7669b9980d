#!/usr/bin/env bash
# One fuzz target under ctest (tests/fuzz.cmake): first every input of the regression corpus once
# (a past finding that comes back fails here), then fuzzing from that corpus for SECONDS.
#   run_target.sh <fuzz binary> <corpus folder> <seconds> <work folder> [libFuzzer options...]
# New inputs go to <work>/corpus, never into the committed corpus; a finding is written to
# <work>/crash-* (or leak-*, timeout-*, oom-*) and printed with the command to reproduce it.
set -euo pipefail
binary="$1" corpus="$2" seconds="$3" work="$4"
shift 4
rm -rf "$work"
mkdir -p "$work/corpus"
# Limits: 10 s per input, 2 GB of memory, at most 64 KB per input (the seeds are a few KB).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="suppressions=$here/asan.supp${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
common=(-timeout=10 -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$work/")
echo "== regression corpus: $corpus ($(find "$corpus" -type f | wc -l) files)"
"$binary" "${common[@]}" -runs=0 "$corpus"
echo "== fuzzing for $seconds s"
if ! "$binary" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "$@" "$work/corpus" "$corpus"; then
  echo "fuzz finding: reproduce with: $binary $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -1)"
  exit 1
fi
