#!/usr/bin/env bash
# Checks the GPU bundle on this machine, without a GPU: unpacks the archive into a temporary folder
# and runs its run_on_gpu.sh --no-gpu there with an empty environment (no LD_LIBRARY_PATH) and,
# as root, in a private mount namespace where the system's copy of every bundled library, Debian's
# Open MPI (programs, components, help texts) and PMIx's plugins are hidden (/dev/null or an empty
# folder mounted over them). So every program must start from the bundle, the CUDA tests must
# skip for want of a device, bench_epoch must read the gzipped datasets, and the bundle's mpirun
# must run the paper ENZYMES experiment on the CPU, be SIGKILLed and resume.
# Then: every library ldd resolves outside the bundle must be glibc, the CUDA driver or (when not
# bundled) cuBLAS from the CUDA toolkit.
#
#   tests/gpu/check_bundle.sh [--archive FILE] [bundle.sh options...]
#     without --archive, runs tests/gpu/bundle.sh first (with the options given) and checks its archive
# Exit 0 when every step passed; the report is printed and kept in $GPU_CHECK_REPORT (default:
# <archive folder>/check-report).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
archive=""
if [[ "${1:-}" == "--archive" ]]; then
  archive="$2"; shift 2
else
  "$root/tests/gpu/bundle.sh" "$@"
  archive="${GPU_BUNDLE:-${GPU_BUILD_DIR:-$root/build-gpu}/diffpool-gpu.tar.xz}"
fi
[[ -f "$archive" ]] || { echo "check_bundle.sh: no archive at $archive" >&2; exit 2; }
report="${GPU_CHECK_REPORT:-$(cd "$(dirname "$archive")" && pwd)/check-report}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/diffpool-gpu-check.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$archive" -C "$tmp"
b="$tmp/diffpool-gpu"
rm -rf "$report"

# What to hide: the real file behind every system copy of a bundled library, and Open MPI's folders.
hide_files=()
for lib in "$b"/lib/*; do
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64; do
    [[ -e "$d/$(basename "$lib")" ]] && hide_files+=("$(realpath "$d/$(basename "$lib")")")
  done
done
for f in /usr/bin/orterun /usr/bin/orted; do [[ -e "$f" ]] && hide_files+=("$(realpath "$f")"); done
hide_dirs=()
for d in /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2 /usr/share/openmpi /etc/openmpi; do
  [[ -d "$d" ]] && hide_dirs+=("$d")
done
mapfile -t hide_files < <(printf '%s\n' "${hide_files[@]}" | sort -u)

run_check=(env -i PATH=/usr/bin:/bin HOME="${HOME:-/root}" TMPDIR="$tmp" "$b/run_on_gpu.sh" --no-gpu --report "$report")
status=0
if [[ $(id -u) == 0 ]] && unshare -m true 2>/dev/null; then
  echo "check_bundle.sh: hiding ${#hide_files[@]} system libraries and programs, ${#hide_dirs[@]} folders" >&2
  unshare -m --propagation private bash -c '
    set -e
    n="$1"; shift
    for (( i = 0; i < n; i++ )); do mount --bind /dev/null "$1"; shift; done
    m="$1"; shift
    for (( i = 0; i < m; i++ )); do mount -t tmpfs -o ro,size=4k none "$1"; shift; done
    exec "$@"' _ "${#hide_files[@]}" "${hide_files[@]}" "${#hide_dirs[@]}" "${hide_dirs[@]}" "${run_check[@]}" ||
    status=$?
else
  echo "check_bundle.sh: not root or no mount namespaces: the system libraries stay visible (only LD_LIBRARY_PATH is empty)" >&2
  "${run_check[@]}" || status=$?
fi
cat "$report/report.md"

# Libraries resolved outside the bundle: only glibc, the CUDA driver and cuBLAS may be.
unexpected="$(grep '^outside: ' "$report/logs/ldd.log" |
  grep -Ev '^outside: (ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so|libmvec\.so|libcuda\.so|libnvidia-|libcublas\.so|libcublasLt\.so)' || true)"
if [[ -n "$unexpected" ]]; then
  echo "check_bundle.sh: resolved outside the bundle:" >&2
  echo "$unexpected" >&2
  status=1
fi
echo "check_bundle.sh: $( ((status == 0)) && echo passed || echo "FAILED ($status)"); report: $report/report.md" >&2
exit "$status"
