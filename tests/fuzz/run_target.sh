#!/usr/bin/env bash
# One fuzz target under ctest (tests/fuzz.cmake): first every input of the regression corpus once
# (a past finding that comes back fails here), then fuzzing from that corpus for SECONDS.
#   run_target.sh <fuzz binary> <corpus folder> <seconds> <work folder> [libFuzzer options...]
# New inputs go to <work>/corpus, never into the committed corpus. Fuzzing runs in libFuzzer's fork
# mode and keeps going after a finding; each finding (<work>/crash-*, oom-*, timeout-*, leak-*) is
# then replayed and sorted by where it happened: in this project's code (the test fails, with the
# command to reproduce it), or inside Debian's libhdf5, which is not ours to fix (listed, and kept
# under <work> for tests/fuzz/known/). libhdf5 still crashes within seconds on the bytes that
# fuzz_job_record gives it unchecked: files without a checksum block (earlier versions) and bytes
# behind a block whose CRC-32 matches; a file of this version damaged on disk never reaches it.
set -euo pipefail
binary="$1" corpus="$2" seconds="$3" work="$4"
shift 4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="suppressions=$here/asan.supp${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
rm -rf "$work"
mkdir -p "$work/corpus" "$work/findings"
# Limits: 10 s per input, 2 GB of memory, at most 64 KB per input (the seeds are a few KB).
common=(-timeout=10 -rss_limit_mb=2048 -max_len=65536)
echo "== regression corpus: $corpus ($(find "$corpus" -type f | wc -l) files)"
"$binary" "${common[@]}" -artifact_prefix="$work/" -runs=0 "$corpus"
echo "== fuzzing for $seconds s"
# With -fork and -ignore_crashes, libFuzzer's own exit status says whether its last child crashed
# (often inside libhdf5), not whether the run worked: the run is judged by its log and by the
# findings below.
"$binary" "${common[@]}" -artifact_prefix="$work/findings/" -max_total_time="$seconds" -fork=1 -ignore_crashes=1 \
  -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 "$@" "$work/corpus" "$corpus" 2>"$work/fuzz.log" || true
grep -qE "INFO: (fuzzed for|exiting)|Done [0-9]+ runs" "$work/fuzz.log" ||
  { echo "the fuzzer did not run:"; tail -40 "$work/fuzz.log"; exit 1; }
grep -E "^#[0-9]+: cov|INFO: (fuzzed|exiting)" "$work/fuzz.log" | tail -3 || true
# The first stack frame that is in this project's sources or in libhdf5 says whose finding it is.
where='^ +#[0-9]+ .*(libhdf5|/(engine|results|runner|tests/fuzz)/[^ ]+\.(cpp|hpp):[0-9]+)'
ours=0 upstream=0
for finding in "$work"/findings/*; do
  [[ -e "$finding" ]] || continue
  report="$("$binary" "${common[@]}" "$finding" 2>&1 || true)"
  frame="$(grep -m1 -E "$where" <<<"$report" || true)"
  if [[ -z "$frame" ]]; then
    # No stack: libFuzzer's RSS watchdog reports an out-of-memory without one. Replayed with a
    # malloc limit under the RSS limit, the allocation that grows past it reports its stack.
    report="$("$binary" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=512 -max_len=65536 "$finding" 2>&1 || true)"
    frame="$(grep -m1 -E "$where" <<<"$report" || true)"
  fi
  if [[ "$frame" == *libhdf5* ]]; then
    upstream=$((upstream + 1))
    echo "inside libhdf5: $finding: $(grep -m1 -E 'ERROR|runtime error' <<<"$report" | cut -c1-160)"
  elif grep -qE 'ERROR|runtime error|terminate called' <<<"$report"; then
    ours=$((ours + 1))
    echo "FINDING: $finding"
    grep -m1 -E 'ERROR|runtime error|terminate called' <<<"$report"
    echo "${frame:-  (no frame in the sources of this project or in libhdf5)}"
    echo "reproduce: $binary $finding"
  fi
done
echo "== findings: $ours in this project's code, $upstream inside libhdf5"
((ours == 0))
