#!/usr/bin/env bash
# Builds what the GPU checks need on a machine WITHOUT a GPU (CUDA for sm_80 and sm_90) and packs
# it into one archive that tests/gpu/run_on_gpu.sh runs on a GPU machine lacking this project's
# Debian libraries and the internet (tests/README.md, "GPU machine").
#
#   tests/gpu/bundle.sh [--no-build] [--with-cublas]
#
# Archive layout (one folder, diffpool-gpu/):
#   bin/      diffpool, test_backend_parity, test_cuda_ops, test_cuda_module, bench_epoch,
#             bench_cuda_host (the CUDA step's host side under the CPU emulation), and
#             libdiffpool_cuda.so, the CUDA backend module the programs load from their own folder
#             when a CUDA device is asked for (cudart and cuBLAS are its dependencies, not theirs)
#   lib/      every shared library they and Open MPI need, from ldd, except glibc and the CUDA driver
#   ompi/     an Open MPI prefix: bin/mpirun (orterun), bin/orted, the libraries and the components
#             folder (lib/x86_64-linux-gnu/openmpi/lib/openmpi3), share/openmpi (help texts); used
#             with OPAL_PREFIX=<bundle>/ompi, which Debian's Open MPI relocates every folder by
#   pmix/     PMIx's own plugins (PMIX_MCA_mca_base_component_path)
#   data/     ENZYMES and DD, every file gzipped (the TU reader reads .gz)
#   configs/  the repository's configs/
#   run_on_gpu.sh, MANIFEST (what was bundled, from where)
#
# cuBLAS: libcublasLt alone is over 500 MB, so it cannot ride in an archive of under 64 MiB. By
# default libcudart is bundled and cuBLAS is not: run_on_gpu.sh then takes it from the GPU
# machine's CUDA toolkit (/usr/local/cuda/lib64, same major version) and its ldd step fails,
# naming the library, if it is not there. --with-cublas bundles it too, for a transfer without
# that limit (the size check below then only warns).
#
# Environment:
#   GPU_BUILD_DIR   build folder (default: build-gpu beside CMakeLists.txt)
#   DIFFPOOL_DATA   the TU datasets (default: ../shared/datasets beside the checkout)
#   GPU_BUNDLE      archive path (default: $GPU_BUILD_DIR/diffpool-gpu.tar.xz)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${GPU_BUILD_DIR:-$root/build-gpu}"
data="${DIFFPOOL_DATA:-$(cd "$root/.." && pwd)/shared/datasets}"
archive="${GPU_BUNDLE:-$build/diffpool-gpu.tar.xz}"
do_build=1
with_cublas=0
for arg in "$@"; do
  case "$arg" in
    --no-build) do_build=0 ;;
    --with-cublas) with_cublas=1 ;;
    *) echo "bundle.sh: unknown argument '$arg' (allowed: --no-build, --with-cublas)" >&2; exit 2 ;;
  esac
done
targets=(diffpool test_backend_parity test_cuda_ops test_cuda_module bench_epoch bench_cuda_host)
module=libdiffpool_cuda.so
ompi_libdir=/usr/lib/x86_64-linux-gnu/openmpi/lib
pmix_plugins=/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix
for dataset in ENZYMES DD; do
  [[ -d "$data/$dataset" ]] || { echo "bundle.sh: dataset folder $data/$dataset not found (set DIFFPOOL_DATA)" >&2; exit 2; }
done
[[ -d "$ompi_libdir/openmpi3" ]] || { echo "bundle.sh: Debian's Open MPI not found ($ompi_libdir/openmpi3)" >&2; exit 2; }

if (( do_build )); then
  launcher=()  # ccache where installed (rebuilds of the CUDA objects are minutes otherwise)
  command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDIFFPOOL_BUILD_TESTS=ON -DDIFFPOOL_CUDA=ON -DDIFFPOOL_CUDA_EMULATION=ON \
        -DCMAKE_CUDA_ARCHITECTURES="80;90" -DDIFFPOOL_TEST_DATA_DIR="$data" "${launcher[@]}"
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" diffpool_cuda
fi

stage="$build/gpu-bundle"
rm -rf "$stage"
b="$stage/diffpool-gpu"
mkdir -p "$b/bin" "$b/lib" "$b/data" "$b/pmix"
manifest="$b/MANIFEST"
{
  echo "diffpool GPU bundle, built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "nvcc $(/usr/local/cuda/bin/nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), architectures 80;90"
} > "$manifest"

for t in "${targets[@]}"; do
  path="$(find "$build" -type f -name "$t" -perm -u+x -print -quit)"
  [[ -n "$path" ]] || { echo "bundle.sh: target $t not built in $build" >&2; exit 2; }
  cp "$path" "$b/bin/$t"
  echo "bin/$t <- ${path#"$build/"}" >> "$manifest"
done
[[ -f "$build/$module" ]] ||
  { echo "bundle.sh: $build/$module not built: not a CUDA build (-DDIFFPOOL_CUDA=ON), or build target diffpool_cuda" >&2; exit 2; }
cp "$build/$module" "$b/bin/$module"
echo "bin/$module <- $module" >> "$manifest"
# (ldd's output read whole first: with pipefail, `grep -q` closing the pipe early can fail ldd)
module_libs="$(ldd "$b/bin/$module")"
grep -q libcudart <<< "$module_libs" ||
  { echo "bundle.sh: $build/$module does not link the CUDA runtime" >&2; exit 2; }

# Open MPI as a relocatable prefix. The ranks' own libmpi comes through lib/ (ldd below) and is
# the same file as the one here.
ompi="$b/ompi"
mkdir -p "$ompi/bin" "$ompi/lib/x86_64-linux-gnu/openmpi" "$ompi/share"
cp -a "$ompi_libdir" "$ompi/lib/x86_64-linux-gnu/openmpi/"
rm -rf "$ompi/lib/x86_64-linux-gnu/openmpi/lib/pkgconfig" "$ompi/lib/x86_64-linux-gnu/openmpi/lib/"*.a
cp -L /usr/bin/orterun "$ompi/bin/orterun"
cp -L /usr/bin/orted "$ompi/bin/orted"
ln -s orterun "$ompi/bin/mpirun"
cp -a /usr/share/openmpi "$ompi/share/openmpi"
[[ -d "$pmix_plugins" ]] && cp -a "$pmix_plugins/." "$b/pmix/"
echo "ompi/ <- $ompi_libdir, /usr/bin/orterun, /usr/bin/orted, /usr/share/openmpi ($(mpirun --version | head -n 1))" >> "$manifest"

# Every shared library the binaries, Open MPI's programs and its components load, resolved by the
# dynamic linker here. Left out: glibc (the loader, libc, libm, ...: the GPU machine's own must be
# used with its loader) and the CUDA driver (libcuda, libnvidia-*: the GPU machine's own matches
# its kernel module).
is_base_system() {
  case "$(basename "$1")" in
    ld-linux*|libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|libutil.so*|libmvec.so*) return 0 ;;
    libcuda.so*|libnvidia-*) return 0 ;;
  esac
  return 1
}
is_cublas() { case "$(basename "$1")" in libcublas.so*|libcublasLt.so*) return 0 ;; esac; return 1; }
mapfile -t objects < <(printf '%s\n' "$b/bin/"* "$ompi/bin/orterun" "$ompi/bin/orted"
                       find "$ompi/lib" "$b/pmix" -name '*.so*' -type f)
missing=()
declare -A seen=()
while read -r name path; do
  [[ -n "${seen[$name]:-}" ]] && continue
  seen[$name]=1
  if [[ "$path" == "not" ]]; then missing+=("$name"); continue; fi
  is_base_system "$name" && continue
  if is_cublas "$name" && (( ! with_cublas )); then
    echo "lib/$name: not bundled (from the GPU machine's /usr/local/cuda/lib64; --with-cublas bundles $path)" >> "$manifest"
    continue
  fi
  cp -L "$path" "$b/lib/$name"
  echo "lib/$name <- $path" >> "$manifest"
done < <(for o in "${objects[@]}"; do ldd "$o" 2>/dev/null; done |
         awk '$2 == "=>" && $3 != "" {print $1, ($3 == "not" ? "not" : $3)}' | sort -u -k1,1)
if (( ${#missing[@]} )); then
  echo "bundle.sh: ldd finds no file for: ${missing[*]} (install them here first)" >&2
  exit 1
fi

for dataset in ENZYMES DD; do
  mkdir -p "$b/data/$dataset"
  for f in "$data/$dataset/"*.txt; do
    gzip -9 -c "$f" > "$b/data/$dataset/$(basename "$f").gz"
  done
  echo "data/$dataset/*.txt.gz <- $data/$dataset" >> "$manifest"
done
cp -a "$root/configs" "$b/configs"
cp "$root/tests/gpu/run_on_gpu.sh" "$b/run_on_gpu.sh"
chmod +x "$b/run_on_gpu.sh"

mkdir -p "$(dirname "$archive")"
tar -C "$stage" -cf - diffpool-gpu | xz -T0 -6 > "$archive.tmp"
mv "$archive.tmp" "$archive"
size=$(stat -c %s "$archive")
printf 'bundle.sh: %s, %s MiB (%s bytes; unpacked %s)\n' "$archive" "$(awk -v s="$size" 'BEGIN {printf "%.1f", s / 1048576}')" "$size" \
       "$(du -sh "$b" | cut -f1)"
if (( size >= 64 * 1048576 )); then
  echo "bundle.sh: the archive is over 64 MiB, the transfer limit to the GPU machine" >&2
  (( with_cublas )) || exit 1
fi
