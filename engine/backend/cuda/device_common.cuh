#pragma once
// Device helpers shared by the kernel files: launching, float/double math overloads with the
// semantics of the CPU backend's std:: calls, and deterministic warp/block reductions.
//
// Every reduction here combines values in a fixed tree order that depends only on the sizes, so
// a result is the same bit for bit run after run (no atomics on floating-point values).
#include <cfloat>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "engine/backend/cuda/kernels.hpp"

namespace diffpool::DP_CUDA_NS::kernels {

constexpr int kBlock = 256;       // threads per block of most kernels
constexpr int kWarp = 32;
constexpr int64_t kMaxGrid = 1 << 16;  // grid-stride loops cover the rest

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Blocks for a grid-stride loop over `items` with `per_block` items per block and pass.
inline unsigned grid_for(int64_t items, int64_t per_block) {
  const int64_t blocks = ceil_div(items, per_block);
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxGrid ? kMaxGrid : blocks));
}

#if defined(DIFFPOOL_CUDA_EMULATION)  // the emulation counts launches by site (emulator_counters.h)
#define DP_KERNEL_CALL(what, kernel, grid, block, stream, ...) ::emu::launch(what, kernel, grid, block, stream, __VA_ARGS__)
#else
#define DP_KERNEL_CALL(what, kernel, grid, block, stream, ...) kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif

// Launches `kernel` (a pointer to a __global__ function) and checks the launch. Empty grids are
// skipped (a zero-sized launch is an error in CUDA).
template <class... Params, class... Args>
void launch(const Site& site, void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
            Args... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  DP_KERNEL_CALL(site.what, kernel, grid, block, stream, static_cast<Params>(args)...);
  check_launch(site);
}

// Grid-stride loops over a flat index: for (i = first_index(); i < n; i += index_stride()).
__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t index_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- math with the CPU backend's semantics ----------------------------------------------------
__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log(float x) { return logf(x); }
__device__ __forceinline__ double dev_log(double x) { return log(x); }
__device__ __forceinline__ float dev_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double dev_sqrt(double x) { return sqrt(x); }
// std::max / std::min, including which argument wins when either is NaN.
template <class T> __device__ __forceinline__ T dev_max(T a, T b) { return (a < b) ? b : a; }
template <class T> __device__ __forceinline__ T dev_min(T a, T b) { return (b < a) ? b : a; }
// std::numeric_limits<T>::min(): the smallest normal number.
template <class T> __device__ __forceinline__ T tiny();
template <> __device__ __forceinline__ float tiny<float>() { return FLT_MIN; }
template <> __device__ __forceinline__ double tiny<double>() { return DBL_MIN; }

// ---- warp and block reductions ------------------------------------------------------------------
// Butterfly sums: every lane ends with the same value, bit for bit (a + b == b + a).
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
template <class T> __device__ __forceinline__ T warp_max(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = dev_max(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
// (value, index) with the larger value, the smaller index on a tie: the first maximum of a row
// when each lane scanned its columns in increasing order. index < 0 means "no element".
template <class T> struct ArgMax {
  T value;
  int64_t index;
};
template <class T> __device__ __forceinline__ ArgMax<T> better(ArgMax<T> a, ArgMax<T> b) {
  if (b.index < 0) return a;
  if (a.index < 0) return b;
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}
template <class T> __device__ __forceinline__ ArgMax<T> warp_argmax(ArgMax<T> v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    ArgMax<T> other{__shfl_xor_sync(0xffffffffu, v.value, offset),
                    static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v.index), offset))};
    v = better(v, other);
  }
  return v;
}

// ---- the last block of a launch ----------------------------------------------------------------
// Reductions that need every block's partial result finish in the same launch: each block writes
// its partials, then counts itself on an integer ticket (after a memory fence, so its writes are
// visible before its arrival is); the block that arrives last reads every partial (with
// load_coherent, past the non-coherent L1) and finishes. The finishing block adds the partials in
// a fixed order, so the result does not depend on which block it is. Every thread of the block
// calls arrived_last; `arrivals` blocks share the ticket, which must be 0 at the launch and is 0
// again after it (the last block resets it), ready for the next launch on the stream.
__device__ __forceinline__ double load_coherent(const double* p) { return __ldcg(p); }
__device__ __forceinline__ bool arrived_last(unsigned* ticket, unsigned arrivals) {
  if (arrivals == 1) return true;
  __shared__ bool last;
  __threadfence();
  __syncthreads();  // every thread of the block has written and fenced its partials
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) {
    last = atomicAdd(ticket, 1u) == arrivals - 1;
    if (last) *ticket = 0;  // every other block has arrived: nothing else touches it in this launch
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// A "row group" handles one row of a row-wise kernel: a warp (kGroup = 32, eight rows per block)
// for rows of up to kWideRow columns, the whole block (kGroup = 256) for wider rows. The loops over
// rows are uniform within a group, so every lane reaches the collective reductions.
constexpr int64_t kWideRow = 1024;
template <int kGroup> struct RowGroup {
  static_assert(kGroup == kWarp || kGroup == kBlock, "a row group is a warp or a block");
  static constexpr int kRowsPerBlock = kBlock / kGroup;
  __device__ static int64_t first_row() { return static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kGroup; }
  __device__ static int64_t row_stride() { return static_cast<int64_t>(gridDim.x) * kRowsPerBlock; }
  __device__ static int lane() { return static_cast<int>(threadIdx.x % kGroup); }
  // The same over blockIdx.y, for grouped kernels whose blockIdx.x is the group.
  __device__ static int64_t first_row_y() { return static_cast<int64_t>(blockIdx.y) * kRowsPerBlock + threadIdx.x / kGroup; }
  __device__ static int64_t row_stride_y() { return static_cast<int64_t>(gridDim.y) * kRowsPerBlock; }

  __device__ static double sum(double v) {
    v = warp_sum(v);
    if constexpr (kGroup > kWarp) {
      __shared__ double partial[kGroup / kWarp];
      __syncthreads();  // the previous call's readers are done with `partial`
      if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = v;
      __syncthreads();
      const int lane = static_cast<int>(threadIdx.x % kWarp);
      v = warp_sum(lane < kGroup / kWarp ? partial[lane] : 0.0);
    }
    return v;
  }
  template <class T> __device__ static T max(T v) {
    v = warp_max(v);
    if constexpr (kGroup > kWarp) {
      __shared__ T partial[kGroup / kWarp];
      __syncthreads();
      if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = v;
      __syncthreads();
      const int lane = static_cast<int>(threadIdx.x % kWarp);
      v = warp_max(partial[lane < kGroup / kWarp ? lane : 0]);
    }
    return v;
  }
  template <class T> __device__ static ArgMax<T> argmax(ArgMax<T> v) {
    v = warp_argmax(v);
    if constexpr (kGroup > kWarp) {
      __shared__ T values[kGroup / kWarp];
      __shared__ int64_t indices[kGroup / kWarp];
      __syncthreads();
      if (threadIdx.x % kWarp == 0) {
        values[threadIdx.x / kWarp] = v.value;
        indices[threadIdx.x / kWarp] = v.index;
      }
      __syncthreads();
      const int lane = static_cast<int>(threadIdx.x % kWarp);
      v = lane < kGroup / kWarp ? ArgMax<T>{values[lane], indices[lane]} : ArgMax<T>{T(0), -1};
      v = warp_argmax(v);
    }
    return v;
  }
};

// Calls launch_with(std::integral_constant<int, kGroup>{}, grid) with the row group chosen from
// `cols` and a grid of 256-thread blocks covering `rows`.
template <class F> void for_row_group(int64_t rows, int64_t cols, F&& launch_with) {
  if (cols > kWideRow)
    launch_with(std::integral_constant<int, kBlock>{}, dim3(grid_for(rows, 1)));
  else
    launch_with(std::integral_constant<int, kWarp>{}, dim3(grid_for(rows, kBlock / kWarp)));
}

// ---- grouped launches (one launch for many independent blocks: per-graph pooling) ----------------
// A grouped kernel takes its groups' descriptors in its launch arguments, so nothing is copied to
// the device and nothing synchronises; up to kPerLaunch descriptors at a time, within the 4 KiB of
// kernel arguments. blockIdx.x is the group within the chunk.
template <class Desc, int kPerLaunch> struct GroupChunk {
  static constexpr int kCapacity = kPerLaunch;
  int32_t count;
  Desc groups[kPerLaunch];
};
// The capacity of a chunk's type: the template argument of the kernel that takes it.
template <class Chunk> constexpr int chunk_capacity = std::decay_t<Chunk>::kCapacity;

// A chunk comes in the smallest of three capacities that holds its groups (8, 24 or the
// kernel's largest), so a launch of a batch's 20 graphs passes 24 descriptors, not 48 or 64:
// the driver copies every launch's arguments, and recording a launch into a CUDA graph cost
// about 3.4 us for these kernels against 1.45 us for kernels with a few scalar arguments
// (docs/PERFORMANCE.md, "Steps as CUDA graphs on an H200"). DIFFPOOL_CUDA_FULL_CHUNKS=1 passes
// the largest capacity always (as before), to compare the two on a GPU.
constexpr int kSmallChunk = 8;
constexpr int kMediumChunk = 24;
inline bool full_group_chunks() {
  static const bool full = [] {
    const char* v = std::getenv("DIFFPOOL_CUDA_FULL_CHUNKS");
    return v != nullptr && v[0] == '1' && v[1] == '\0';
  }();
  return full;
}
template <int kCapacity, class Desc, class Group, class Describe, class LaunchChunk>
void launch_group_chunk(const Group* groups, int32_t count, Describe& describe, LaunchChunk& launch_chunk) {
  GroupChunk<Desc, kCapacity> chunk{};
  chunk.count = count;
  for (int32_t i = 0; i < count; ++i) chunk.groups[i] = describe(groups[i]);
  launch_chunk(chunk);
}
// For each run of up to kPerLaunch of `count` groups: a chunk of describe(group) each, then
// launch_chunk(chunk), a generic callable (the chunk's type says its capacity).
template <int kPerLaunch, class Group, class Describe, class LaunchChunk>
void for_each_group_chunk(const Group* groups, int64_t count, Describe&& describe, LaunchChunk&& launch_chunk) {
  using Desc = std::decay_t<decltype(describe(groups[0]))>;
  static_assert(sizeof(GroupChunk<Desc, kPerLaunch>) <= 3584, "group descriptors beyond the kernel argument space");
  static_assert(kPerLaunch > kMediumChunk, "the largest capacity is above the others");
  const bool full = full_group_chunks();
  for (int64_t first = 0; first < count; first += kPerLaunch) {
    const int32_t n = static_cast<int32_t>(count - first < kPerLaunch ? count - first : kPerLaunch);
    if (!full && n <= kSmallChunk)
      launch_group_chunk<kSmallChunk, Desc>(groups + first, n, describe, launch_chunk);
    else if (!full && n <= kMediumChunk)
      launch_group_chunk<kMediumChunk, Desc>(groups + first, n, describe, launch_chunk);
    else
      launch_group_chunk<kPerLaunch, Desc>(groups + first, n, describe, launch_chunk);
  }
}

// One block of a grouped row-wise kernel (Backend::RowsGroup, typed).
template <class T> struct RowsDesc {
  int64_t rows, cols;
  const T* a;
  const T* b;
  T* out;
};
constexpr int kRowsGroupsPerLaunch = 64;  // 64 descriptors of 40 bytes
template <class T, int kCapacity> using RowsChunk = GroupChunk<RowsDesc<T>, kCapacity>;
constexpr int64_t kMaxGroupBlocks = 64;  // blocks per group (blockIdx.y); the rest is strided over
// The grid of a grouped launch: a chunk's `groups` along x, `blocks` per group (1 to `cap`) along y.
inline dim3 group_grid(int32_t groups, int64_t blocks, int64_t cap = kMaxGroupBlocks) {
  return dim3(static_cast<unsigned>(groups), static_cast<unsigned>(blocks < 1 ? 1 : (blocks < cap ? blocks : cap)));
}
template <class T> RowsDesc<T> rows_desc(const RowsGroup& g) {
  return RowsDesc<T>{g.rows, g.cols, static_cast<const T*>(g.a), static_cast<const T*>(g.b), static_cast<T*>(g.out)};
}
// Calls launch_with(std::integral_constant<int, kGroup>{}, grid) for a chunk of row-wise groups:
// the row group (a warp, or a block for rows wider than kWideRow) chosen from the chunk's widest
// rows, grid (groups, blocks per group) covering its longest block.
template <class T, int kCapacity, class F> void for_grouped_rows(const RowsChunk<T, kCapacity>& chunk, F&& launch_with) {
  int64_t rows = 1, cols = 0;
  for (int32_t i = 0; i < chunk.count; ++i) {
    rows = chunk.groups[i].rows > rows ? chunk.groups[i].rows : rows;
    cols = chunk.groups[i].cols > cols ? chunk.groups[i].cols : cols;
  }
  if (cols > kWideRow)
    launch_with(std::integral_constant<int, kBlock>{}, group_grid(chunk.count, rows));
  else
    launch_with(std::integral_constant<int, kWarp>{}, group_grid(chunk.count, ceil_div(rows, kBlock / kWarp)));
}

}  // namespace diffpool::DP_CUDA_NS::kernels
