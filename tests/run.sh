#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), builds in Release and runs the whole test suite
# with ctest. Exits non-zero on any failure. The build includes the CPU emulation of the CUDA
# backend (label cuda_emulation, about 1.5 minutes), so the CUDA kernels are run and checked
# against the CPU on every run, with or without a GPU.
#   BUILD_DIR   build folder (default: build)
#   DIFFPOOL_DATA   the TU datasets (default: ../shared/datasets beside the checkout)
#   CTEST_ARGS  extra ctest arguments, e.g. "-L gradcheck"
#   DIFFPOOL_FUZZ_SECONDS  seconds each fuzz target runs (default 60); 0 skips the fuzz part
# Then the fuzz targets (label fuzz): a second configure with clang into build-fuzz, built and run
# by tests/fuzz/build.sh (about 4 minutes, the three targets side by side). With CTEST_ARGS set it
# runs only when they name the label: CTEST_ARGS="-L fuzz" tests/run.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/jobs/install-deps.sh" --tests
build="${BUILD_DIR:-$root/build}"
export DIFFPOOL_DATA="${DIFFPOOL_DATA:-$(cd "$root/.." && pwd)/shared/datasets}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDIFFPOOL_TEST_DATA_DIR="$DIFFPOOL_DATA" \
  -DDIFFPOOL_CUDA_EMULATION=ON
cmake --build "$build" -j"$(nproc)"
if [[ "${CTEST_ARGS:-}" != "-L fuzz" ]]; then
  # shellcheck disable=SC2086
  ctest --test-dir "$build" --output-on-failure ${CTEST_ARGS:-}
fi
if [[ "${DIFFPOOL_FUZZ_SECONDS:-60}" != 0 && ( -z "${CTEST_ARGS:-}" || "${CTEST_ARGS}" == *fuzz* ) ]]; then
  FUZZ_BUILD_DIR="${FUZZ_BUILD_DIR:-$(dirname "$build")/build-fuzz}" "$root/tests/fuzz/build.sh"
fi
