// Reductions of the CUDA backend: over rows, columns and all elements, over graph segments, the
// CSR sparse product, and batch normalisation (whose statistics are column reductions).
//
// Shapes: a, x [rows, cols] (or [N, F] for graphs); segments are row ranges
// [offsets[s], offsets[s+1]) of x; y [S, F].
//
// Column reductions are deterministic and parallel over rows, in one launch: the rows are split
// into at most 128 ranges, each block (32 columns x 8 row lanes, so that loads along a row are
// coalesced) writes one double partial per (range, column) of its tile, and the last block of the
// tile to finish adds the tile's partials in range order (arrived_last, device_common.cuh).
#include "engine/backend/cuda/device_common.cuh"
#include "engine/core/tf32.hpp"

namespace diffpool::DP_CUDA_NS::kernels {
namespace {

constexpr int kTileCols = 32;  // columns per block of the column and segment kernels
constexpr int kRowLanes = 8;   // rows read in parallel per column

// ---- rows ---------------------------------------------------------------------------------------
// out[r] = alpha reduce(row r of a (, b)) + beta out[r], by one row group.
template <int kGroup, class T>
__device__ __forceinline__ void reduce_row(Reduce kind, int64_t r, int64_t cols, const T* a, const T* b, double alpha,
                                           double beta, T* out) {
  using Group = RowGroup<kGroup>;
  const T* ar = a + r * cols;
  double acc;
  if (kind == Reduce::max) {
    T m = cols > 0 ? ar[0] : T(0);
    for (int64_t c = Group::lane(); c < cols; c += kGroup) m = dev_max(m, ar[c]);
    acc = static_cast<double>(Group::max(m));
  } else {
    double s = 0;
    if (kind == Reduce::dot) {
      const T* br = b + r * cols;
      for (int64_t c = Group::lane(); c < cols; c += kGroup) s += static_cast<double>(ar[c]) * br[c];
    } else {
      for (int64_t c = Group::lane(); c < cols; c += kGroup) s += ar[c];
    }
    acc = Group::sum(s);
  }
  if (Group::lane() == 0) out[r] = static_cast<T>(alpha * acc + (beta != 0 ? beta * out[r] : 0.0));
}

template <class T, int kGroup>
__global__ void reduce_rows_kernel(Reduce kind, int64_t rows, int64_t cols, const T* a, const T* b, double alpha,
                                   double beta, T* out) {
  using Group = RowGroup<kGroup>;
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_stride())
    reduce_row<kGroup>(kind, r, cols, a, b, alpha, beta, out);
}

// Backend::reduce_rows_grouped: blockIdx.x the group, its rows strided over blockIdx.y.
template <class T, int kGroup, int kCapacity>
__global__ void reduce_rows_grouped_kernel(RowsChunk<T, kCapacity> chunk, Reduce kind, double alpha, double beta) {
  using Group = RowGroup<kGroup>;
  const RowsDesc<T> g = chunk.groups[blockIdx.x];
  for (int64_t r = Group::first_row_y(); r < g.rows; r += Group::row_stride_y())
    reduce_row<kGroup>(kind, r, g.cols, g.a, g.b, alpha, beta, g.out);
}

// ---- columns ------------------------------------------------------------------------------------
struct ColumnSplit {
  int64_t splits;          // row ranges, at most 128 (grid.y)
  int64_t rows_per_split;
};
ColumnSplit column_split(int64_t rows) {
  if (rows <= 0) return {1, 0};
  int64_t splits = ceil_div(rows, 512);
  splits = splits < 1 ? 1 : (splits > 128 ? 128 : splits);
  const int64_t per = ceil_div(rows, splits);
  return {ceil_div(rows, per), per};
}

// The row lanes' sums of acc[k] (a block of 32 columns x kLanes row lanes), added in lane order,
// for column threadIdx.x; every thread of the block calls it (it synchronises before and after),
// the result is meaningful in row lane 0.
template <int K, int kLanes> __device__ void add_row_lanes(const double (&acc)[K], double (&totals)[K]) {
  __shared__ double lanes[K][kLanes][kTileCols + 1];
  for (int k = 0; k < K; ++k) lanes[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  for (int k = 0; k < K; ++k) {
    double s = 0;
    if (threadIdx.y == 0)
      for (int j = 0; j < kLanes; ++j) s += lanes[k][j][threadIdx.x];
    totals[k] = s;
  }
  __syncthreads();  // lanes may be rewritten by the next call
}

// partial[(split * K + k) * cols + c] = sum over the split's rows r of f(r, c)[k], then, in the
// last block of the column tile to finish, finish(c, totals) with totals[k] the partials of column
// c added in split order.
template <int K, class F, class Finish>
__global__ void column_reduce_kernel(int64_t rows, int64_t cols, int64_t rows_per_split, F f, double* partial,
                                     unsigned* tickets, Finish finish) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kTileCols + threadIdx.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * rows_per_split;
  const int64_t end = begin + rows_per_split < rows ? begin + rows_per_split : rows;
  double acc[K];
  for (int k = 0; k < K; ++k) acc[k] = 0;
  if (c < cols)
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) f(r, c, acc);
  double lane_totals[K];
  add_row_lanes<K, kRowLanes>(acc, lane_totals);
  if (threadIdx.y == 0 && c < cols)
    for (int k = 0; k < K; ++k) partial[(static_cast<int64_t>(blockIdx.y) * K + k) * cols + c] = lane_totals[k];
  if (!arrived_last(tickets + blockIdx.x, gridDim.y)) return;
  if (threadIdx.y == 0 && c < cols) {
    double totals[K];
    for (int k = 0; k < K; ++k) {
      double s = 0;
      for (int64_t i = 0; i < gridDim.y; ++i) s += load_coherent(partial + (i * K + k) * cols + c);
      totals[k] = s;
    }
    finish(c, totals);
  }
}

template <class T> struct ColumnSum {
  const T* a;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const { acc[0] += a[r * cols + c]; }
};
template <class T> struct ColumnDot {
  const T* a;
  const T* b;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    acc[0] += static_cast<double>(a[r * cols + c]) * b[r * cols + c];
  }
};

// Launches column_reduce_kernel for functor f over rows x cols, its partials and tickets in scratch.
template <int K, class F, class Finish>
void column_reduce(const Site& site, cudaStream_t stream, ScratchSpace& scratch, int64_t rows, int64_t cols, F f,
                   Finish finish) {
  const ColumnSplit split = column_split(rows);
  const int64_t tiles = ceil_div(cols, kTileCols);
  double* partial = scratch.doubles(static_cast<std::size_t>(split.splits * K * cols));
  unsigned* tickets = scratch.tickets(static_cast<std::size_t>(tiles));
  launch(site, &column_reduce_kernel<K, F, Finish>,
         dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(split.splits)), dim3(kTileCols, kRowLanes), stream,
         rows, cols, split.rows_per_split, f, partial, tickets, finish);
}

// out[c] = alpha total + beta out[c].
template <class T> struct FinishColumnReduce {
  double alpha, beta;
  T* out;
  __device__ void operator()(int64_t c, const double* totals) const {
    out[c] = static_cast<T>(alpha * totals[0] + (beta != 0 ? beta * out[c] : 0.0));
  }
};

// Backend::reduce_cols_grouped_sum: blockIdx.x strides over the shared output's tiles of 32
// columns; a block adds the column sums of the groups wide enough to reach its tile in chunk
// order, each as reduce_cols with beta 1 would: out = alpha colsum + out, the sum in double.
template <class T, int kCapacity>
__global__ void reduce_cols_grouped_sum_kernel(RowsChunk<T, kCapacity> chunk, int64_t cols, double alpha) {
  T* const out = chunk.groups[0].out;
  for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTileCols; c0 < cols;
       c0 += static_cast<int64_t>(gridDim.x) * kTileCols) {
    const int64_t c = c0 + threadIdx.x;
    T value = threadIdx.y == 0 && c < cols ? out[c] : T(0);
    for (int32_t q = 0; q < chunk.count; ++q) {
      const RowsDesc<T>& g = chunk.groups[q];
      if (c0 >= g.cols) continue;  // uniform in the block
      double acc[1] = {0}, total[1];
      if (c < g.cols)
        for (int64_t r = threadIdx.y; r < g.rows; r += kRowLanes) acc[0] += g.a[r * g.cols + c];
      add_row_lanes<1, kRowLanes>(acc, total);
      if (threadIdx.y == 0 && c < g.cols) value = static_cast<T>(alpha * total[0] + static_cast<double>(value));
    }
    if (threadIdx.y == 0 && c < cols) out[c] = value;
  }
}

// ---- all elements -------------------------------------------------------------------------------
constexpr int64_t kMaxAllBlocks = 1024;

// partial[block] = the block's share of the sum; the last block to finish adds the partials in
// block order: out[0] = alpha total + beta out[0].
template <class T>
__global__ void all_reduce_kernel(int64_t n, const T* a, const T* b, double* partial, unsigned* ticket, double alpha,
                                  double beta, T* out) {
  double acc = 0;
  if (b) {
    for (int64_t i = first_index(); i < n; i += index_stride()) acc += static_cast<double>(a[i]) * b[i];
  } else {
    for (int64_t i = first_index(); i < n; i += index_stride()) acc += a[i];
  }
  acc = RowGroup<kBlock>::sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
  if (!arrived_last(ticket, gridDim.x)) return;
  double total = 0;
  for (int64_t i = threadIdx.x; i < gridDim.x; i += kBlock) total += load_coherent(partial + i);
  total = RowGroup<kBlock>::sum(total);
  if (threadIdx.x == 0) out[0] = static_cast<T>(alpha * total + (beta != 0 ? beta * out[0] : 0.0));
}

// ---- sparse x dense -----------------------------------------------------------------------------
// One thread per (row, feature); block 32 features x 8 rows. The sum runs over the row's non-zeros
// in order, as on the CPU: y = beta y, then y += (alpha a_e) x[col_e].
template <class T>
__device__ __forceinline__ void spmm_entry(int64_t r, int64_t c, int64_t f, const int32_t* row_ptr,
                                           const int32_t* col_idx, const T* values, const T* x, T alpha, T beta, T* y) {
  T* yr = y + r * f + c;
  T acc = beta == T(0) ? T(0) : (beta == T(1) ? *yr : *yr * beta);
  const int32_t end = row_ptr[r + 1];
  for (int32_t e = row_ptr[r]; e < end; ++e) acc += (alpha * values[e]) * x[static_cast<int64_t>(col_idx[e]) * f + c];
  *yr = acc;
}

template <class T>
__global__ void spmm_kernel(int64_t rows, int64_t f, const int32_t* row_ptr, const int32_t* col_idx, const T* values,
                            const T* x, T alpha, T beta, T* y) {
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kTileCols + threadIdx.x;
  if (c >= f) return;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kRowLanes + threadIdx.y; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kRowLanes)
    spmm_entry(r, c, f, row_ptr, col_idx, values, x, alpha, beta, y);
}

// Backend::spmm_grouped: blockIdx.x the group, blockIdx.y strides over its tiles of 8 rows x 32
// features, each entry computed as spmm_kernel computes it.
template <class T> struct SpmmDesc {
  int64_t rows, f;
  const int32_t* row_ptr;
  const int32_t* col_idx;
  const T* values;
  const T* x;
  T* y;
};
constexpr int kSpmmGroupsPerLaunch = 48;  // 48 descriptors of 56 bytes
template <class T, int kCapacity> using SpmmChunk = GroupChunk<SpmmDesc<T>, kCapacity>;
template <class T, int kCapacity> __global__ void spmm_grouped_kernel(SpmmChunk<T, kCapacity> chunk, T alpha, T beta) {
  const SpmmDesc<T> g = chunk.groups[blockIdx.x];
  const int64_t col_tiles = (g.f + kTileCols - 1) / kTileCols, tiles = ((g.rows + kRowLanes - 1) / kRowLanes) * col_tiles;
  for (int64_t t = blockIdx.y; t < tiles; t += gridDim.y) {
    const int64_t r = (t / col_tiles) * kRowLanes + threadIdx.y, c = (t % col_tiles) * kTileCols + threadIdx.x;
    if (r < g.rows && c < g.f) spmm_entry(r, c, g.f, g.row_ptr, g.col_idx, g.values, g.x, alpha, beta, g.y);
  }
}

// ---- segments -----------------------------------------------------------------------------------
// Block (32 features, 8 row lanes) per segment and feature tile; segments in a block-uniform loop.
template <class T>
__global__ void segment_forward_kernel(SegmentReduce kind, int64_t segments, int64_t f, const int32_t* offsets,
                                       const T* x, T* y, int32_t* argmax) {
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kTileCols + threadIdx.x;
  const bool active = c < f;
  __shared__ double sums[kRowLanes][kTileCols + 1];
  __shared__ T best_values[kRowLanes][kTileCols + 1];
  __shared__ int64_t best_rows[kRowLanes][kTileCols + 1];
  for (int64_t s = blockIdx.x; s < segments; s += gridDim.x) {
    const int64_t begin = offsets[s], end = offsets[s + 1];
    if (kind == SegmentReduce::max) {
      // Each lane keeps the first maximum of its rows; ties between lanes go to the lower row.
      ArgMax<T> best{T(0), -1};
      if (active)
        for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
          const T v = x[r * f + c];
          if (best.index < 0 || v > best.value) best = ArgMax<T>{v, r};
        }
      best_values[threadIdx.y][threadIdx.x] = best.value;
      best_rows[threadIdx.y][threadIdx.x] = best.index;
      __syncthreads();
      if (threadIdx.y == 0 && active) {
        for (int j = 1; j < kRowLanes; ++j)
          best = better(best, ArgMax<T>{best_values[j][threadIdx.x], best_rows[j][threadIdx.x]});
        y[s * f + c] = best.index < 0 ? T(0) : best.value;
        argmax[s * f + c] = static_cast<int32_t>(best.index);  // -1 for an empty segment
      }
    } else {
      double acc = 0;
      if (active)
        for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) acc += x[r * f + c];
      sums[threadIdx.y][threadIdx.x] = acc;
      __syncthreads();
      if (threadIdx.y == 0 && active) {
        double total = 0;
        for (int j = 0; j < kRowLanes; ++j) total += sums[j][threadIdx.x];
        const double scale =
            kind == SegmentReduce::mean && end > begin ? 1.0 / static_cast<double>(end - begin) : 1.0;
        y[s * f + c] = static_cast<T>(total * scale);
      }
    }
    __syncthreads();  // the shared arrays are reused by the next segment
  }
}

template <class T>
__global__ void segment_backward_kernel(SegmentReduce kind, int64_t segments, int64_t f, const int32_t* offsets,
                                        const T* dy, const int32_t* argmax, T* dx) {
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kTileCols + threadIdx.x;
  if (c >= f) return;
  for (int64_t s = blockIdx.x; s < segments; s += gridDim.x) {
    const T d = dy[s * f + c];
    if (kind == SegmentReduce::max) {
      // Each (segment, feature) owns its argmax row: no two threads write one element.
      if (threadIdx.y == 0) {
        const int32_t row = argmax[s * f + c];
        if (row >= 0) dx[static_cast<int64_t>(row) * f + c] += d;
      }
    } else {
      const int64_t begin = offsets[s], end = offsets[s + 1];
      const T scale = kind == SegmentReduce::mean && end > begin ? T(1) / static_cast<T>(end - begin) : T(1);
      for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) dx[r * f + c] += scale * d;
    }
  }
}

// ---- batch normalisation ----------------------------------------------------------------------
// Training statistics, as the CPU: mean = sum / n, var = sum (x - mean)^2 / n (biased, used for
// invstd), running statistics updated with the unbiased variance sum (x - mean)^2 / (n - 1).
template <class T> struct SquaredDeviation {
  const T* x;
  const double* mean;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    const double d = x[r * cols + c] - mean[c];
    acc[0] += d * d;
  }
};

// mean[c] = total / rows, in double for the squared deviations.
struct FinishColumnMean {
  int64_t rows;
  double* mean;
  __device__ void operator()(int64_t c, const double* totals) const {
    mean[c] = totals[0] / static_cast<double>(rows);
  }
};

// Column c's statistics from its mean md and the total sq of its squared deviations: the saved
// mean and invstd, and the running statistics.
template <class T>
__device__ void batch_norm_statistics(int64_t c, int64_t rows, double md, double sq, double momentum, double eps,
                                      T* running_mean, T* running_var, T* mean, T* invstd) {
  const double var = sq / static_cast<double>(rows);
  mean[c] = static_cast<T>(md);
  invstd[c] = static_cast<T>(1.0 / dev_sqrt(var + eps));
  const double unbiased = rows > 1 ? sq / static_cast<double>(rows - 1) : var;
  running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * md);
  running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
}

// From the squared deviations' total: the saved mean and invstd, and the running statistics.
template <class T> struct FinishBatchNormStatistics {
  int64_t rows;
  const double* mean_d;
  double momentum, eps;
  T* running_mean;
  T* running_var;
  T* mean;
  T* invstd;
  __device__ void operator()(int64_t c, const double* totals) const {
    batch_norm_statistics(c, rows, mean_d[c], totals[0], momentum, eps, running_mean, running_var, mean, invstd);
  }
};

// Evaluation: column c's saved mean and invstd from the running statistics.
template <class T>
__device__ void batch_norm_eval_statistics(int64_t c, double eps, const T* running_mean, const T* running_var, T* mean,
                                           T* invstd) {
  mean[c] = running_mean[c];
  invstd[c] = static_cast<T>(1.0 / dev_sqrt(static_cast<double>(running_var[c]) + eps));
}

template <class T>
__global__ void batch_norm_eval_statistics_kernel(int64_t cols, double eps, const T* running_mean,
                                                  const T* running_var, T* mean, T* invstd) {
  for (int64_t c = first_index(); c < cols; c += index_stride())
    batch_norm_eval_statistics(c, eps, running_mean, running_var, mean, invstd);
}

template <class T>
__global__ void batch_norm_apply_kernel(int64_t rows, int64_t cols, const T* x, const T* mean, const T* invstd,
                                        const T* gamma, const T* beta, T* y) {
  const int64_t n = rows * cols;
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const int64_t c = i % cols;
    y[i] = (x[i] - mean[c]) * invstd[c] * gamma[c] + beta[c];
  }
}

// Backward: with xhat = (x - mean) invstd, per column sum_dy = sum dy and sum_dy_xhat = sum dy xhat;
// dgamma += sum_dy_xhat, dbeta += sum_dy,
// dx += gamma invstd / n (n dy - sum_dy - xhat sum_dy_xhat).
template <class T> struct BatchNormGradientSums {
  const T* dy;
  const T* x;
  const T* mean;
  const T* invstd;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    const int64_t i = r * cols + c;
    acc[0] += dy[i];
    acc[1] += static_cast<double>(dy[i]) * (x[i] - mean[c]) * invstd[c];
  }
};

// sums = (sum dy, sum dy xhat) per column for the input gradient; dgamma, dbeta accumulate.
template <class T> struct FinishBatchNormGradients {
  int64_t cols;
  double* sums;
  T* dgamma;
  T* dbeta;
  __device__ void operator()(int64_t c, const double* totals) const {
    sums[c] = totals[0];
    sums[cols + c] = totals[1];
    dgamma[c] += static_cast<T>(totals[1]);
    dbeta[c] += static_cast<T>(totals[0]);
  }
};

// One element's input gradient (before it is added to dx or written), as on the CPU.
template <class T>
__device__ T batch_norm_input_gradient(T x, T dy, T mean, T invstd, T gamma, double n, double sum_dy,
                                       double sum_dy_xhat) {
  const double xhat = (x - mean) * invstd;
  return static_cast<T>(gamma * invstd / n * (n * dy - sum_dy - xhat * sum_dy_xhat));
}

template <class T>
__global__ void batch_norm_input_gradient_kernel(int64_t rows, int64_t cols, const T* dy, const T* x,
                                                 const T* gamma, const T* mean, const T* invstd, const double* sums,
                                                 bool accumulate, T* dx) {
  const int64_t total = rows * cols;
  const double n = static_cast<double>(rows);
  for (int64_t i = first_index(); i < total; i += index_stride()) {
    const int64_t c = i % cols;
    const T v = batch_norm_input_gradient(x[i], dy[i], mean[c], invstd[c], gamma[c], n, sums[c], sums[cols + c]);
    dx[i] = accumulate ? dx[i] + v : v;
  }
}

// ---- batch normalisation of a small batch in one launch ------------------------------------------
// Up to kTileBatchNormRows rows (a batch of small graphs: a few hundred to two thousand), one
// block of 32 columns x 32 row lanes owns a tile of 32 columns over all rows and does every pass
// of the layer itself, so the forward is one launch instead of three and the backward one instead
// of two. Each pass is the column kernel's arithmetic (in double, the lanes added in order); only
// the order of the partial sums differs from the multi-launch path. 32 row lanes keep a pass at
// most 64 loads deep per thread. Above the bound, the multi-launch path spreads the rows over
// more blocks.
constexpr int64_t kTileBatchNormRows = 2048;
constexpr int kTileRowLanes = 32;

template <class T>
__global__ void batch_norm_forward_tile_kernel(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* beta,
                                               bool training, double momentum, double eps, T* running_mean,
                                               T* running_var, T* y, T* mean, T* invstd) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kTileCols + threadIdx.x;
  const bool column = c < cols;
  __shared__ double mean_d[kTileCols];
  __shared__ T tile_mean[kTileCols], tile_invstd[kTileCols];
  if (training) {  // the arithmetic of ColumnSum, FinishColumnMean, SquaredDeviation, FinishBatchNormStatistics
    double acc[1] = {0}, totals[1];
    if (column)
      for (int64_t r = threadIdx.y; r < rows; r += kTileRowLanes) acc[0] += x[r * cols + c];
    add_row_lanes<1, kTileRowLanes>(acc, totals);
    if (threadIdx.y == 0) mean_d[threadIdx.x] = totals[0] / static_cast<double>(rows);
    __syncthreads();
    const double md = mean_d[threadIdx.x];
    acc[0] = 0;
    if (column)
      for (int64_t r = threadIdx.y; r < rows; r += kTileRowLanes) {
        const double d = x[r * cols + c] - md;
        acc[0] += d * d;
      }
    add_row_lanes<1, kTileRowLanes>(acc, totals);
    if (threadIdx.y == 0 && column) {
      batch_norm_statistics(c, rows, md, totals[0], momentum, eps, running_mean, running_var, mean, invstd);
      tile_mean[threadIdx.x] = mean[c];
      tile_invstd[threadIdx.x] = invstd[c];
    }
  } else if (threadIdx.y == 0 && column) {
    batch_norm_eval_statistics(c, eps, running_mean, running_var, mean, invstd);
    tile_mean[threadIdx.x] = mean[c];
    tile_invstd[threadIdx.x] = invstd[c];
  }
  __syncthreads();
  if (!column) return;
  const T m = tile_mean[threadIdx.x], is = tile_invstd[threadIdx.x], g = gamma[c], b = beta[c];
  for (int64_t r = threadIdx.y; r < rows; r += kTileRowLanes) {
    const int64_t i = r * cols + c;
    y[i] = (x[i] - m) * is * g + b;
  }
}

template <class T>
__global__ void batch_norm_backward_tile_kernel(int64_t rows, int64_t cols, const T* dy, const T* x, const T* gamma,
                                                const T* mean, const T* invstd, bool accumulate, T* dx, T* dgamma,
                                                T* dbeta) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kTileCols + threadIdx.x;
  const bool column = c < cols;
  __shared__ double sums[2][kTileCols];
  double acc[2] = {0, 0}, totals[2];
  if (column)
    for (int64_t r = threadIdx.y; r < rows; r += kTileRowLanes)
      BatchNormGradientSums<T>{dy, x, mean, invstd, cols}(r, c, acc);
  add_row_lanes<2, kTileRowLanes>(acc, totals);
  if (threadIdx.y == 0 && column) {
    sums[0][threadIdx.x] = totals[0];
    sums[1][threadIdx.x] = totals[1];
    dgamma[c] += static_cast<T>(totals[1]);
    dbeta[c] += static_cast<T>(totals[0]);
  }
  __syncthreads();
  if (!column) return;
  const double n = static_cast<double>(rows), sum_dy = sums[0][threadIdx.x], sum_dy_xhat = sums[1][threadIdx.x];
  const T m = mean[c], is = invstd[c], g = gamma[c];
  for (int64_t r = threadIdx.y; r < rows; r += kTileRowLanes) {
    const int64_t i = r * cols + c;
    const T v = batch_norm_input_gradient(x[i], dy[i], m, is, g, n, sum_dy, sum_dy_xhat);
    dx[i] = accumulate ? dx[i] + v : v;
  }
}

dim3 elementwise_grid(int64_t n) { return dim3(grid_for(n, kBlock)); }

}  // namespace

template <class T>
void reduce_rows(cudaStream_t stream, Reduce kind, int64_t rows, int64_t cols, const T* a, const T* b, double alpha,
                 double beta, T* out) {
  for_row_group(rows, cols, [&](auto group, dim3 grid) {
    launch(DP_CUDA_SITE("reduce_rows"), &reduce_rows_kernel<T, decltype(group)::value>, grid, dim3(kBlock), stream,
           kind, rows, cols, a, b, alpha, beta, out);
  });
}

template <class T>
void reduce_cols(cudaStream_t stream, ScratchSpace& scratch, Reduce kind, int64_t rows, int64_t cols, const T* a,
                 const T* b, double alpha, double beta, T* out) {
  if (cols == 0) return;
  const FinishColumnReduce<T> finish{alpha, beta, out};
  if (kind == Reduce::dot)
    column_reduce<1>(DP_CUDA_SITE("reduce_cols"), stream, scratch, rows, cols, ColumnDot<T>{a, b, cols}, finish);
  else
    column_reduce<1>(DP_CUDA_SITE("reduce_cols"), stream, scratch, rows, cols, ColumnSum<T>{a, cols}, finish);
}

// Backend::weight_gradients as one column reduction over the upstream gradient's k rows: the
// "columns" are every element of every term's C_t (row-major, term after term) and then the bias
// gradient's n elements; column (t, p, c) sums A_t[r, p] B[r, c] over the rows r, the bias's column
// c sums B[r, c]. The sums run in double (column_reduce_kernel), in the order of the row splits.
namespace {
template <class T> struct WeightTerm {
  const T* a;
  int64_t lda, m;
  T* c;
  int64_t ldc;
};
template <class T> struct WeightColumns {
  WeightTerm<T> terms[kMaxWeightTerms];
  int64_t first[kMaxWeightTerms + 1];  // the first column of each term; first[count]: the bias's
  int32_t count;
  const T* b;
  int64_t ldb, n;
  bool tf32;
  __device__ int term_of(int64_t col) const {
    int t = 0;
    while (t < count && col >= first[t + 1]) ++t;
    return t;  // count: the bias
  }
  __device__ void operator()(int64_t r, int64_t col, double* acc) const {
    const int t = term_of(col);
    const int64_t local = col - first[t];
    if (t == count) {
      acc[0] += b[r * ldb + local];
      return;
    }
    T av = terms[t].a[r * terms[t].lda + local / n], bv = b[r * ldb + local % n];
    if (tf32) av = to_tf32(av), bv = to_tf32(bv);
    acc[0] += static_cast<double>(av) * bv;
  }
};
// C_t[p, c] = total + beta C_t[p, c]; bias[c] = total + bias_beta bias[c] (beta 0 overwrites).
template <class T> struct FinishWeightColumns {
  WeightColumns<T> columns;
  double beta, bias_beta;
  T* bias;
  __device__ void operator()(int64_t col, const double* totals) const {
    const int t = columns.term_of(col);
    const int64_t local = col - columns.first[t];
    T* out = t == columns.count ? bias + local
                                : columns.terms[t].c + (local / columns.n) * columns.terms[t].ldc + local % columns.n;
    const double keep = t == columns.count ? bias_beta : beta;
    *out = static_cast<T>(totals[0] + (keep != 0 ? keep * static_cast<double>(*out) : 0.0));
  }
};
}  // namespace

template <class T>
void weight_gradients(cudaStream_t stream, ScratchSpace& scratch, const GemmGroup* terms, int64_t count, int64_t k,
                      int64_t n, const T* b, int64_t ldb, double beta, T* bias, double bias_beta, bool tf32) {
  WeightColumns<T> columns{};
  columns.count = static_cast<int32_t>(count);
  columns.b = b;
  columns.ldb = ldb;
  columns.n = n;
  columns.tf32 = tf32;
  int64_t cols = 0;
  for (int64_t t = 0; t < count; ++t) {
    columns.terms[t] = WeightTerm<T>{static_cast<const T*>(terms[t].a), terms[t].lda, terms[t].m,
                                     static_cast<T*>(terms[t].c), terms[t].ldc};
    columns.first[t] = cols;
    cols += terms[t].m * n;
  }
  columns.first[count] = cols;
  if (bias) cols += n;
  if (cols == 0) return;
  column_reduce<1>(DP_CUDA_SITE("weight_gradients"), stream, scratch, k, cols, columns,
                   FinishWeightColumns<T>{columns, beta, bias_beta, bias});
}
template void weight_gradients<float>(cudaStream_t, ScratchSpace&, const GemmGroup*, int64_t, int64_t, int64_t,
                                      const float*, int64_t, double, float*, double, bool);
template void weight_gradients<double>(cudaStream_t, ScratchSpace&, const GemmGroup*, int64_t, int64_t, int64_t,
                                       const double*, int64_t, double, double*, double, bool);

namespace {
template <class T> struct DotDesc {
  int64_t n;
  const T* a;
  const T* b;
  T* out;
};
constexpr int kDotsPerLaunch = 64;  // 64 descriptors of 32 bytes

template <class T, int kCapacity>
__global__ void dot_grouped_kernel(GroupChunk<DotDesc<T>, kCapacity> chunk, double alpha, double beta) {
  const DotDesc<T> g = chunk.groups[blockIdx.x];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < g.n; i += kBlock) acc += static_cast<double>(g.a[i]) * g.b[i];
  acc = RowGroup<kBlock>::sum(acc);
  if (threadIdx.x == 0) g.out[0] = static_cast<T>(alpha * acc + (beta != 0 ? beta * g.out[0] : 0.0));
}
}  // namespace

template <class T>
void dot_grouped(cudaStream_t stream, const DotGroup* groups, int64_t count, double alpha, double beta) {
  auto describe = [](const DotGroup& g) {
    return DotDesc<T>{g.n, static_cast<const T*>(g.a), static_cast<const T*>(g.b), static_cast<T*>(g.out)};
  };
  for_each_group_chunk<kDotsPerLaunch>(groups, count, describe, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    launch(DP_CUDA_SITE("dot_grouped"), &dot_grouped_kernel<T, kCap>, dim3(static_cast<unsigned>(chunk.count)),
           dim3(kBlock), stream, chunk, alpha, beta);
  });
}

template <class T>
void reduce_rows_grouped(cudaStream_t stream, Reduce kind, const RowsGroup* groups, int64_t count, double alpha,
                         double beta) {
  for_each_group_chunk<kRowsGroupsPerLaunch>(groups, count, &rows_desc<T>, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    for_grouped_rows(chunk, [&](auto group, dim3 grid) {
      launch(DP_CUDA_SITE("reduce_rows_grouped"), &reduce_rows_grouped_kernel<T, decltype(group)::value, kCap>, grid,
             dim3(kBlock), stream, chunk, kind, alpha, beta);
    });
  });
}

template void dot_grouped<float>(cudaStream_t, const DotGroup*, int64_t, double, double);
template void dot_grouped<double>(cudaStream_t, const DotGroup*, int64_t, double, double);
template <class T>
void reduce_cols_grouped_sum(cudaStream_t stream, const RowsGroup* groups, int64_t count, int64_t cols, double alpha) {
  // Chunks run one after another on the stream, so the groups still add in order.
  for_each_group_chunk<kRowsGroupsPerLaunch>(groups, count, &rows_desc<T>, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    launch(DP_CUDA_SITE("reduce_cols_grouped_sum"), &reduce_cols_grouped_sum_kernel<T, kCap>,
           dim3(grid_for(cols, kTileCols)), dim3(kTileCols, kRowLanes), stream, chunk, cols, alpha);
  });
}

template void reduce_cols_grouped_sum<float>(cudaStream_t, const RowsGroup*, int64_t, int64_t, double);
template void reduce_cols_grouped_sum<double>(cudaStream_t, const RowsGroup*, int64_t, int64_t, double);
template void reduce_rows_grouped<float>(cudaStream_t, Reduce, const RowsGroup*, int64_t, double, double);
template void reduce_rows_grouped<double>(cudaStream_t, Reduce, const RowsGroup*, int64_t, double, double);

template <class T>
void reduce_all(cudaStream_t stream, ScratchSpace& scratch, Reduce kind, int64_t n, const T* a, const T* b,
                double alpha, double beta, T* out) {
  int64_t blocks = ceil_div(n, kBlock * 4);
  blocks = blocks < 1 ? 1 : (blocks > kMaxAllBlocks ? kMaxAllBlocks : blocks);
  double* partial = scratch.doubles(static_cast<std::size_t>(blocks));
  unsigned* ticket = scratch.tickets(1);
  launch(DP_CUDA_SITE("reduce_all"), &all_reduce_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(kBlock), stream,
         n, a, kind == Reduce::dot ? b : nullptr, partial, ticket, alpha, beta, out);
}

template <class T>
void spmm(cudaStream_t stream, int64_t rows, int64_t f, const int32_t* row_ptr, const int32_t* col_idx,
          const T* values, const T* x, T alpha, T beta, T* y) {
  launch(DP_CUDA_SITE("spmm"), &spmm_kernel<T>,
         dim3(grid_for(rows, kRowLanes), static_cast<unsigned>(ceil_div(f, kTileCols))), dim3(kTileCols, kRowLanes),
         stream, rows, f, row_ptr, col_idx, values, x, alpha, beta, y);
}

template <class T>
void spmm_grouped(cudaStream_t stream, const SpmmGroup* groups, int64_t count, T alpha, T beta) {
  auto describe = [](const SpmmGroup& g) {
    return SpmmDesc<T>{g.a->rows, g.cols, g.a->row_ptr.template ptr<int32_t>(),
                       g.a->nnz > 0 ? g.a->col_idx.template ptr<int32_t>() : nullptr,
                       g.a->nnz > 0 ? g.a->values.template ptr<T>() : nullptr, static_cast<const T*>(g.x),
                       static_cast<T*>(g.y)};
  };
  for_each_group_chunk<kSpmmGroupsPerLaunch>(groups, count, describe, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    int64_t most = 1;
    for (int32_t i = 0; i < chunk.count; ++i) {
      const int64_t tiles = ceil_div(chunk.groups[i].rows, kRowLanes) * ceil_div(chunk.groups[i].f, kTileCols);
      most = tiles > most ? tiles : most;
    }
    launch(DP_CUDA_SITE("spmm_grouped"), &spmm_grouped_kernel<T, kCap>, group_grid(chunk.count, most),
           dim3(kTileCols, kRowLanes), stream, chunk, alpha, beta);
  });
}

template <class T>
void segment_reduce_forward(cudaStream_t stream, SegmentReduce kind, int64_t segments, int64_t f,
                            const int32_t* offsets, const T* x, T* y, int32_t* argmax) {
  launch(DP_CUDA_SITE("segment_reduce_forward"), &segment_forward_kernel<T>,
         dim3(grid_for(segments, 1), static_cast<unsigned>(ceil_div(f, kTileCols))), dim3(kTileCols, kRowLanes),
         stream, kind, segments, f, offsets, x, y, argmax);
}

template <class T>
void segment_reduce_backward(cudaStream_t stream, SegmentReduce kind, int64_t segments, int64_t f,
                             const int32_t* offsets, const T* dy, const int32_t* argmax, T* dx) {
  launch(DP_CUDA_SITE("segment_reduce_backward"), &segment_backward_kernel<T>,
         dim3(grid_for(segments, 1), static_cast<unsigned>(ceil_div(f, kTileCols))), dim3(kTileCols, kRowLanes),
         stream, kind, segments, f, offsets, dy, argmax, dx);
}

template <class T>
void batch_norm_forward(cudaStream_t stream, ScratchSpace& scratch, int64_t rows, int64_t cols, const T* x,
                        const T* gamma, const T* beta, bool training, double momentum, double eps, T* running_mean,
                        T* running_var, T* y, T* mean, T* invstd) {
  if (cols == 0) return;
  if (rows <= kTileBatchNormRows) {
    launch(DP_CUDA_SITE("batch_norm_forward tile"), &batch_norm_forward_tile_kernel<T>,
           dim3(static_cast<unsigned>(ceil_div(cols, kTileCols))), dim3(kTileCols, kTileRowLanes), stream, rows, cols, x,
           gamma, beta, training, momentum, eps, running_mean, running_var, y, mean, invstd);
    return;
  }
  const dim3 col_grid = elementwise_grid(cols);
  if (training) {
    double* mean_d = scratch.doubles(static_cast<std::size_t>(cols));
    column_reduce<1>(DP_CUDA_SITE("batch_norm_forward mean"), stream, scratch, rows, cols, ColumnSum<T>{x, cols},
                     FinishColumnMean{rows, mean_d});
    column_reduce<1>(DP_CUDA_SITE("batch_norm_forward statistics"), stream, scratch, rows, cols,
                     SquaredDeviation<T>{x, mean_d, cols},
                     FinishBatchNormStatistics<T>{rows, mean_d, momentum, eps, running_mean, running_var, mean, invstd});
  } else {
    launch(DP_CUDA_SITE("batch_norm_forward eval statistics"), &batch_norm_eval_statistics_kernel<T>, col_grid,
           dim3(kBlock), stream, cols, eps, running_mean, running_var, mean, invstd);
  }
  launch(DP_CUDA_SITE("batch_norm_forward apply"), &batch_norm_apply_kernel<T>, elementwise_grid(rows * cols),
         dim3(kBlock), stream, rows, cols, x, mean, invstd, gamma, beta, y);
}

template <class T>
void batch_norm_backward(cudaStream_t stream, ScratchSpace& scratch, int64_t rows, int64_t cols, const T* dy,
                         const T* x, const T* gamma, const T* mean, const T* invstd, double beta, T* dx, T* dgamma,
                         T* dbeta) {
  if (cols == 0) return;
  if (rows <= kTileBatchNormRows) {
    launch(DP_CUDA_SITE("batch_norm_backward tile"), &batch_norm_backward_tile_kernel<T>,
           dim3(static_cast<unsigned>(ceil_div(cols, kTileCols))), dim3(kTileCols, kTileRowLanes), stream, rows, cols, dy,
           x, gamma, mean, invstd, beta != 0, dx, dgamma, dbeta);
    return;
  }
  double* sums = scratch.doubles(static_cast<std::size_t>(2 * cols));
  column_reduce<2>(DP_CUDA_SITE("batch_norm_backward parameters"), stream, scratch, rows, cols,
                   BatchNormGradientSums<T>{dy, x, mean, invstd, cols}, FinishBatchNormGradients<T>{cols, sums, dgamma, dbeta});
  launch(DP_CUDA_SITE("batch_norm_backward input"), &batch_norm_input_gradient_kernel<T>,
         elementwise_grid(rows * cols), dim3(kBlock), stream, rows, cols, dy, x, gamma, mean, invstd, sums, beta != 0,
         dx);
}

#define DP_INSTANTIATE(T)                                                                                         \
  template void reduce_rows<T>(cudaStream_t, Reduce, int64_t, int64_t, const T*, const T*, double, double, T*);   \
  template void reduce_cols<T>(cudaStream_t, ScratchSpace&, Reduce, int64_t, int64_t, const T*, const T*, double, \
                               double, T*);                                                                       \
  template void reduce_all<T>(cudaStream_t, ScratchSpace&, Reduce, int64_t, const T*, const T*, double, double,   \
                              T*);                                                                                \
  template void spmm<T>(cudaStream_t, int64_t, int64_t, const int32_t*, const int32_t*, const T*, const T*, T, T, \
                        T*);                                                                                      \
  template void spmm_grouped<T>(cudaStream_t, const SpmmGroup*, int64_t, T, T);                                   \
  template void segment_reduce_forward<T>(cudaStream_t, SegmentReduce, int64_t, int64_t, const int32_t*,          \
                                          const T*, T*, int32_t*);                                                \
  template void segment_reduce_backward<T>(cudaStream_t, SegmentReduce, int64_t, int64_t, const int32_t*,         \
                                           const T*, const int32_t*, T*);                                         \
  template void batch_norm_forward<T>(cudaStream_t, ScratchSpace&, int64_t, int64_t, const T*, const T*,          \
                                      const T*, bool, double, double, T*, T*, T*, T*, T*);                        \
  template void batch_norm_backward<T>(cudaStream_t, ScratchSpace&, int64_t, int64_t, const T*, const T*,         \
                                       const T*, const T*, const T*, double, T*, T*, T*);
DP_INSTANTIATE(float)
DP_INSTANTIATE(double)
#undef DP_INSTANTIATE

}  // namespace diffpool::DP_CUDA_NS::kernels
