#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into their own folder and runs them (ctest label fuzz):
# each target replays its regression corpus, then fuzzes for DIFFPOOL_FUZZ_SECONDS (default 60),
# the three side by side. tests/run.sh calls it after the gcc suite.
#   tests/fuzz/build.sh              build, then ctest -L fuzz
#   tests/fuzz/build.sh --build-only build only
#   FUZZ_BUILD_DIR  build folder (default: build-fuzz beside build)
# Long runs: tests/README.md ("Fuzzing").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool not found (jobs/install-deps.sh --tests installs it)" >&2; exit 2; }
done
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache); fi
# -O1 -g: libFuzzer's recommendation (fast enough, readable stacks). No CUDA: nothing fuzzed uses it.
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DDIFFPOOL_CUDA=OFF \
  -DDIFFPOOL_FUZZ=ON -DDIFFPOOL_FUZZ_SECONDS="${DIFFPOOL_FUZZ_SECONDS:-60}" "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_tu_reader fuzz_experiment fuzz_job_record
if [[ "${1:-}" == "--build-only" ]]; then exit 0; fi
ctest --test-dir "$build" -L fuzz -j3 --output-on-failure
