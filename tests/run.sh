#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), builds in Release and runs the whole test suite
# with ctest. Exits non-zero on any failure.
#   BUILD_DIR   build folder (default: build)
#   DIFFPOOL_DATA   the TU datasets (default: ../shared/datasets beside the checkout)
#   CTEST_ARGS  extra ctest arguments, e.g. "-L gradcheck"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/jobs/install-deps.sh" --tests
build="${BUILD_DIR:-$root/build}"
export DIFFPOOL_DATA="${DIFFPOOL_DATA:-$(cd "$root/.." && pwd)/shared/datasets}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDIFFPOOL_TEST_DATA_DIR="$DIFFPOOL_DATA"
cmake --build "$build" -j"$(nproc)"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure ${CTEST_ARGS:-}
