// Grouped small matrix products of the CUDA backend (Backend::gemm_grouped): one launch computes
// the products of every graph of a batch (per-graph pooling: S_g^T Z_g, A_g S_g and their
// gradients), where one cuBLAS call per graph would cost a launch each. Backend::gemm_grouped_sum
// (the assignment layer's weight gradient, every graph adding into the same columns) takes the
// same tiles, a block per tile of the shared output adding the groups in order.
//
// Each block of 16 x 16 threads computes 16 x 16 tiles of one group's C, the k dimension in steps
// of 16 through shared memory; blockIdx.x is the group, blockIdx.y strides over its tiles. Sums
// run over k in order in T (as cuBLAS's single-precision products do), so results differ from
// cuBLAS and the CPU only in rounding. The groups travel in the launch's arguments (up to
// kGroupsPerLaunch per launch), so nothing is copied to the device and nothing synchronises.
// Under backend.matmul_precision: tf32 every f32 operand element is reduced to TF32 as it is
// loaded into shared memory (the products then run on the CUDA cores, not the tensor cores: the
// kernel reproduces TF32's precision, the speed is that of its FP32 tiles).
#include "engine/backend/cuda/device_common.cuh"
#include "engine/core/tf32.hpp"

namespace diffpool::DP_CUDA_NS::kernels {
namespace {

constexpr int kTile = 16;
constexpr int kGroupsPerLaunch = 48;  // 48 descriptors of 48 bytes: well under the 4 KiB of kernel arguments
constexpr int kMaxTileBlocks = 32;    // blocks per group (blockIdx.y); more tiles are strided over

template <class T> struct GroupDesc {
  int32_t m, n, k, lda, ldb, ldc;
  const T* a;
  const T* b;
  T* c;
};

template <class T, int kCapacity> using GemmChunk = GroupChunk<GroupDesc<T>, kCapacity>;

// sum_p op(A)[i0 + ty, p] op(B)[p, j0 + tx] over p < g.k for the block's 16 x 16 tile at (i0, j0),
// in p order in T, 0 outside the product. Every thread of the block calls it (it synchronises).
template <class T, bool TransA, bool TransB>
__device__ T tile_product(const GroupDesc<T>& g, int i0, int j0, bool tf32, T (&a_tile)[kTile][kTile + 1],
                          T (&b_tile)[kTile][kTile + 1]) {
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  T acc = T(0);
  for (int p0 = 0; p0 < g.k; p0 += kTile) {
    // a_tile[r][q] = op(A)[i0 + r, p0 + q], b_tile[q][c] = op(B)[p0 + q, j0 + c]; zero outside.
    const int ai = i0 + ty, ap = p0 + tx;
    a_tile[ty][tx] = (ai < g.m && ap < g.k) ? (TransA ? g.a[static_cast<int64_t>(ap) * g.lda + ai]
                                                       : g.a[static_cast<int64_t>(ai) * g.lda + ap])
                                            : T(0);
    const int bp = p0 + ty, bj = j0 + tx;
    b_tile[ty][tx] = (bp < g.k && bj < g.n) ? (TransB ? g.b[static_cast<int64_t>(bj) * g.ldb + bp]
                                                       : g.b[static_cast<int64_t>(bp) * g.ldb + bj])
                                            : T(0);
    if (tf32) {
      a_tile[ty][tx] = to_tf32(a_tile[ty][tx]);
      b_tile[ty][tx] = to_tf32(b_tile[ty][tx]);
    }
    __syncthreads();
    const int steps = g.k - p0 < kTile ? g.k - p0 : kTile;
    for (int q = 0; q < steps; ++q) acc += a_tile[ty][q] * b_tile[q][tx];
    __syncthreads();
  }
  return acc;
}

template <class T, bool TransA, bool TransB, int kCapacity>
__global__ void gemm_grouped_kernel(GemmChunk<T, kCapacity> chunk, T alpha, T beta, bool tf32) {
  __shared__ T a_tile[kTile][kTile + 1];
  __shared__ T b_tile[kTile][kTile + 1];
  const GroupDesc<T> g = chunk.groups[blockIdx.x];
  const int tiles_n = (g.n + kTile - 1) / kTile;
  const int tiles = ((g.m + kTile - 1) / kTile) * tiles_n;
  for (int t = static_cast<int>(blockIdx.y); t < tiles; t += static_cast<int>(gridDim.y)) {
    const int i0 = (t / tiles_n) * kTile, j0 = (t % tiles_n) * kTile;
    const T acc = tile_product<T, TransA, TransB>(g, i0, j0, tf32, a_tile, b_tile);
    const int i = i0 + static_cast<int>(threadIdx.y), j = j0 + static_cast<int>(threadIdx.x);
    if (i < g.m && j < g.n) {
      T* cij = g.c + static_cast<int64_t>(i) * g.ldc + j;
      *cij = beta == T(0) ? alpha * acc : alpha * acc + beta * *cij;  // beta 0 overwrites (C may be garbage)
    }
  }
}

// Backend::gemm_grouped_sum: blockIdx.x strides over the 16 x 16 tiles of the shared C [m, n]; a
// block adds the groups that reach its tile in chunk order, each as gemm with beta 1 would:
// C = alpha (op(A_g) op(B_g)) + C. With `from_start` (Backend::gemm_sum_from_row's first chunk)
// C is not read: each element starts from start[j] (0 without start) and is written.
template <class T, bool TransA, bool TransB, int kCapacity>
__global__ void gemm_grouped_sum_kernel(GemmChunk<T, kCapacity> chunk, int m, int n, T alpha, bool tf32, const T* start,
                                        bool from_start) {
  __shared__ T a_tile[kTile][kTile + 1];
  __shared__ T b_tile[kTile][kTile + 1];
  T* const c = chunk.groups[0].c;
  const int ldc = chunk.groups[0].ldc;
  const int tiles_n = (n + kTile - 1) / kTile;
  const int tiles = ((m + kTile - 1) / kTile) * tiles_n;
  for (int t = static_cast<int>(blockIdx.x); t < tiles; t += static_cast<int>(gridDim.x)) {
    const int i0 = (t / tiles_n) * kTile, j0 = (t % tiles_n) * kTile;
    const int i = i0 + static_cast<int>(threadIdx.y), j = j0 + static_cast<int>(threadIdx.x);
    T* cij = c + static_cast<int64_t>(i) * ldc + j;
    T value = T(0);
    bool touched = false;
    if (from_start && i < m && j < n) {
      if (start) value = start[j];
      touched = true;
    }
    for (int32_t q = 0; q < chunk.count; ++q) {
      const GroupDesc<T>& g = chunk.groups[q];
      if (i0 >= g.m || j0 >= g.n) continue;  // the group does not reach this tile (uniform in the block)
      const T acc = tile_product<T, TransA, TransB>(g, i0, j0, tf32, a_tile, b_tile);
      if (i < g.m && j < g.n) {
        if (!touched) value = *cij, touched = true;
        value = alpha * acc + value;
      }
    }
    if (touched) *cij = value;
  }
}

// The kernels for a pair of transposes.
template <class T, int kCapacity> auto grouped_kernel(Trans trans_a, Trans trans_b) {
  return trans_a == Trans::no ? (trans_b == Trans::no ? &gemm_grouped_kernel<T, false, false, kCapacity>
                                                      : &gemm_grouped_kernel<T, false, true, kCapacity>)
                              : (trans_b == Trans::no ? &gemm_grouped_kernel<T, true, false, kCapacity>
                                                      : &gemm_grouped_kernel<T, true, true, kCapacity>);
}
template <class T, int kCapacity> auto grouped_sum_kernel(Trans trans_a, Trans trans_b) {
  return trans_a == Trans::no ? (trans_b == Trans::no ? &gemm_grouped_sum_kernel<T, false, false, kCapacity>
                                                      : &gemm_grouped_sum_kernel<T, false, true, kCapacity>)
                              : (trans_b == Trans::no ? &gemm_grouped_sum_kernel<T, true, false, kCapacity>
                                                      : &gemm_grouped_sum_kernel<T, true, true, kCapacity>);
}

template <class T> GroupDesc<T> group_desc(const GemmGroup& g) {
  return GroupDesc<T>{static_cast<int32_t>(g.m),   static_cast<int32_t>(g.n),   static_cast<int32_t>(g.k),
                      static_cast<int32_t>(g.lda), static_cast<int32_t>(g.ldb), static_cast<int32_t>(g.ldc),
                      static_cast<const T*>(g.a),  static_cast<const T*>(g.b),  static_cast<T*>(g.c)};
}

}  // namespace

template <class T>
void gemm_grouped(cudaStream_t stream, Trans trans_a, Trans trans_b, const GemmGroup* groups, int64_t count, T alpha,
                  T beta, bool tf32) {
  for_each_group_chunk<kGroupsPerLaunch>(groups, count, &group_desc<T>, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    int64_t most_tiles = 1;
    for (int32_t i = 0; i < chunk.count; ++i) {
      const int64_t tiles = ceil_div(chunk.groups[i].m, kTile) * ceil_div(chunk.groups[i].n, kTile);
      most_tiles = tiles > most_tiles ? tiles : most_tiles;
    }
    launch(DP_CUDA_SITE("gemm_grouped"), grouped_kernel<T, kCap>(trans_a, trans_b),
           group_grid(chunk.count, most_tiles, kMaxTileBlocks), dim3(kTile, kTile), stream, chunk, alpha, beta, tf32);
  });
}

template <class T>
void gemm_grouped_sum(cudaStream_t stream, Trans trans_a, Trans trans_b, const GemmGroup* groups, int64_t count,
                      int64_t m, int64_t n, T alpha, bool tf32, bool from_start, const T* start) {
  // Chunks run one after another on the stream, so the groups still add in order; only the first
  // starts from `start`.
  bool first = true;
  for_each_group_chunk<kGroupsPerLaunch>(groups, count, &group_desc<T>, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    launch(first && from_start ? DP_CUDA_SITE("gemm_sum_from_row") : DP_CUDA_SITE("gemm_grouped_sum"),
           grouped_sum_kernel<T, kCap>(trans_a, trans_b), dim3(grid_for(ceil_div(m, kTile) * ceil_div(n, kTile), 1)),
           dim3(kTile, kTile), stream, chunk, static_cast<int>(m), static_cast<int>(n), alpha, tf32, start,
           first && from_start);
    first = false;
  });
}

template void gemm_grouped<float>(cudaStream_t, Trans, Trans, const GemmGroup*, int64_t, float, float, bool);
template void gemm_grouped<double>(cudaStream_t, Trans, Trans, const GemmGroup*, int64_t, double, double, bool);
template void gemm_grouped_sum<float>(cudaStream_t, Trans, Trans, const GemmGroup*, int64_t, int64_t, int64_t, float,
                                      bool, bool, const float*);
template void gemm_grouped_sum<double>(cudaStream_t, Trans, Trans, const GemmGroup*, int64_t, int64_t, int64_t, double,
                                       bool, bool, const double*);

}  // namespace diffpool::DP_CUDA_NS::kernels
