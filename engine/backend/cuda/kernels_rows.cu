// Fused row kernels of the CUDA backend: softmax, l2 normalisation, cross entropy, accuracy count
// and argmax. A row group (a warp, or a whole block for rows wider than 1024 columns) handles one
// row: its lanes stride over the columns and combine through warp shuffles (device_common.cuh).
//
// Shapes: x, y, dy, dx [rows, cols]; norms, losses, labels, predictions [rows].
#include <cmath>

#include "engine/backend/cuda/device_common.cuh"

namespace diffpool::DP_CUDA_NS::kernels {
namespace {

// Maximum of a row over the group (the row's first element when cols = 0 is never read).
template <int kGroup, class T> __device__ __forceinline__ T row_max(const T* xr, int64_t cols) {
  using Group = RowGroup<kGroup>;
  T m = cols > 0 ? xr[0] : T(0);
  for (int64_t c = Group::lane(); c < cols; c += kGroup) m = dev_max(m, xr[c]);
  return Group::max(m);
}

// First maximum of a row: (value, column), column -1 when cols = 0.
template <int kGroup, class T> __device__ __forceinline__ ArgMax<T> row_argmax(const T* xr, int64_t cols) {
  using Group = RowGroup<kGroup>;
  ArgMax<T> best{T(0), -1};
  for (int64_t c = Group::lane(); c < cols; c += kGroup)
    if (best.index < 0 || xr[c] > best.value) best = ArgMax<T>{xr[c], c};
  return Group::argmax(best);
}

// y = exp(x - max) / sum exp(x - max) over one row; the sum accumulates in double, as on the CPU.
template <int kGroup, class T> __device__ __forceinline__ void softmax_row(const T* xr, int64_t cols, T* yr) {
  using Group = RowGroup<kGroup>;
  const T m = row_max<kGroup>(xr, cols);
  double s = 0;
  for (int64_t c = Group::lane(); c < cols; c += kGroup) s += dev_exp(static_cast<T>(xr[c] - m));
  const T inv = static_cast<T>(1.0 / Group::sum(s));
  for (int64_t c = Group::lane(); c < cols; c += kGroup) yr[c] = dev_exp(static_cast<T>(xr[c] - m)) * inv;
}

template <class T, int kGroup> __global__ void softmax_forward_kernel(int64_t rows, int64_t cols, const T* x, T* y) {
  using Group = RowGroup<kGroup>;
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_stride())
    softmax_row<kGroup>(x + r * cols, cols, y + r * cols);
}

// Backend::softmax_rows_grouped: blockIdx.x the group (a, out), its rows strided over blockIdx.y.
template <class T, int kGroup, int kCapacity> __global__ void softmax_grouped_kernel(RowsChunk<T, kCapacity> chunk) {
  using Group = RowGroup<kGroup>;
  const RowsDesc<T> g = chunk.groups[blockIdx.x];
  for (int64_t r = Group::first_row_y(); r < g.rows; r += Group::row_stride_y())
    softmax_row<kGroup>(g.a + r * g.cols, g.cols, g.out + r * g.cols);
}

// dx = y (dy - sum(dy y)), added to dx when accumulate.
template <class T, int kGroup>
__global__ void softmax_backward_kernel(int64_t rows, int64_t cols, const T* dy, const T* y, bool accumulate, T* dx) {
  using Group = RowGroup<kGroup>;
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_stride()) {
    const T* dyr = dy + r * cols;
    const T* yr = y + r * cols;
    T* dxr = dx + r * cols;
    double dot = 0;
    for (int64_t c = Group::lane(); c < cols; c += kGroup) dot += static_cast<double>(dyr[c]) * yr[c];
    const T d = static_cast<T>(Group::sum(dot));
    for (int64_t c = Group::lane(); c < cols; c += kGroup) {
      const T v = yr[c] * (dyr[c] - d);
      dxr[c] = accumulate ? dxr[c] + v : v;
    }
  }
}

// norms = ||x||, y = x / max(||x||, eps).
template <class T, int kGroup>
__global__ void l2_forward_kernel(int64_t rows, int64_t cols, const T* x, double eps, T* y, T* norms, T* relu_out) {
  using Group = RowGroup<kGroup>;
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_stride()) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double ss = 0;
    for (int64_t c = Group::lane(); c < cols; c += kGroup) ss += static_cast<double>(xr[c]) * xr[c];
    const double norm = dev_sqrt(Group::sum(ss));
    if (Group::lane() == 0) norms[r] = static_cast<T>(norm);
    const T inv = static_cast<T>(1.0 / dev_max(norm, eps));
    for (int64_t c = Group::lane(); c < cols; c += kGroup) yr[c] = xr[c] * inv;
    if (relu_out) {  // as MapOp::relu
      T* outr = relu_out + r * cols;
      for (int64_t c = Group::lane(); c < cols; c += kGroup) outr[c] = yr[c] > T(0) ? yr[c] : T(0);
    }
  }
}

// The gradient the l2 backward starts from: dy, or with relu dy masked by y > 0 (as MapOp::relu_backward).
template <class T> __device__ __forceinline__ T incoming(bool relu, T dy, T y) {
  return relu && !(y > T(0)) ? T(0) : dy;
}

// dx = (dy - y (dy . y)) / ||x||, or dy / eps where ||x|| < eps (there y = x / eps is linear); added
// to dx when accumulate. With relu, dy is incoming(...) throughout.
template <class T, int kGroup>
__global__ void l2_backward_kernel(int64_t rows, int64_t cols, const T* dy, const T* y, const T* norms, double eps,
                                   bool relu, bool accumulate, T* dx) {
  using Group = RowGroup<kGroup>;
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_stride()) {
    const T* dyr = dy + r * cols;
    const T* yr = y + r * cols;
    T* dxr = dx + r * cols;
    const double norm = norms[r];
    if (norm < eps) {  // uniform over the group: every lane reads the same norm
      const T inv = static_cast<T>(1.0 / eps);
      for (int64_t c = Group::lane(); c < cols; c += kGroup) {
        const T v = incoming(relu, dyr[c], yr[c]) * inv;
        dxr[c] = accumulate ? dxr[c] + v : v;
      }
      continue;
    }
    double dot = 0;
    for (int64_t c = Group::lane(); c < cols; c += kGroup)
      dot += static_cast<double>(incoming(relu, dyr[c], yr[c])) * yr[c];
    const T d = static_cast<T>(Group::sum(dot));
    const T inv = static_cast<T>(1.0 / norm);
    for (int64_t c = Group::lane(); c < cols; c += kGroup) {
      const T v = (incoming(relu, dyr[c], yr[c]) - yr[c] * d) * inv;
      dxr[c] = accumulate ? dxr[c] + v : v;
    }
  }
}

// probs = softmax(logits) (as softmax_forward_kernel), loss = log sum exp(x - max) + max - x[label],
// with the exponentials of the loss taken in double as on the CPU.
template <class T, int kGroup>
__global__ void cross_entropy_forward_kernel(int64_t rows, int64_t cols, const T* logits, const int32_t* labels,
                                             T* probs, T* losses) {
  using Group = RowGroup<kGroup>;
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_stride()) {
    const T* xr = logits + r * cols;
    T* pr = probs + r * cols;
    const T m = row_max<kGroup>(xr, cols);
    double s_probs = 0, s_loss = 0;
    for (int64_t c = Group::lane(); c < cols; c += kGroup) {
      const T shifted = xr[c] - m;
      s_probs += dev_exp(shifted);
      s_loss += dev_exp(static_cast<double>(shifted));
    }
    s_probs = Group::sum(s_probs);
    s_loss = Group::sum(s_loss);
    const T inv = static_cast<T>(1.0 / s_probs);
    for (int64_t c = Group::lane(); c < cols; c += kGroup) pr[c] = dev_exp(static_cast<T>(xr[c] - m)) * inv;
    if (Group::lane() == 0) {
      const int32_t label = labels[r];
      losses[r] = label >= 0 && label < cols ? static_cast<T>(dev_log(s_loss) + m - xr[label]) : static_cast<T>(NAN);
    }
  }
}

// One block: warps take rows in turn; the count is exact (an integer) and added once.
template <class T>
__global__ void count_correct_kernel(int64_t rows, int64_t cols, const T* logits, const int32_t* labels, T* count) {
  using Group = RowGroup<kWarp>;
  long long correct = 0;
  for (int64_t r = threadIdx.x / kWarp; r < rows; r += kBlock / kWarp) {
    const ArgMax<T> best = row_argmax<kWarp>(logits + r * cols, cols);
    if (Group::lane() == 0) correct += (best.index < 0 ? 0 : best.index) == labels[r];
  }
  __shared__ long long per_warp[kBlock / kWarp];
  if (Group::lane() == 0) per_warp[threadIdx.x / kWarp] = correct;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long total = 0;
    for (int w = 0; w < kBlock / kWarp; ++w) total += per_warp[w];
    count[0] += static_cast<T>(total);
  }
}

template <class T, int kGroup>
__global__ void argmax_rows_kernel(int64_t rows, int64_t cols, const T* x, int32_t* predictions) {
  using Group = RowGroup<kGroup>;
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_stride()) {
    const ArgMax<T> best = row_argmax<kGroup>(x + r * cols, cols);
    if (Group::lane() == 0) predictions[r] = static_cast<int32_t>(best.index < 0 ? 0 : best.index);
  }
}

// Backend::argmax_rows_grouped: blockIdx.x the group, its rows strided over blockIdx.y. The
// descriptor's out is the group's i32 [rows] predictions (RowsDesc types it as T*).
template <class T, int kGroup, int kCapacity> __global__ void argmax_grouped_kernel(RowsChunk<T, kCapacity> chunk) {
  using Group = RowGroup<kGroup>;
  const RowsDesc<T> g = chunk.groups[blockIdx.x];
  int32_t* predictions = reinterpret_cast<int32_t*>(g.out);
  for (int64_t r = Group::first_row_y(); r < g.rows; r += Group::row_stride_y()) {
    const ArgMax<T> best = row_argmax<kGroup>(g.a + r * g.cols, g.cols);
    if (Group::lane() == 0) predictions[r] = static_cast<int32_t>(best.index < 0 ? 0 : best.index);
  }
}

// ---- binary cross-entropy link loss (the authors' link-prediction loss) --------------------------
// One block per row i of graph g; P_ij = s_i . s_j is recomputed, never stored.
__device__ __forceinline__ int64_t segment_of(const int32_t* offsets, int64_t segments, int64_t row) {
  int64_t lo = 0, hi = segments;  // offsets[lo] <= row < offsets[hi]
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (offsets[mid] <= row) lo = mid;
    else hi = mid;
  }
  return lo;
}
// Whether j is among the sorted column ids col_idx[begin, end).
__device__ __forceinline__ bool has_column(const int32_t* col_idx, int32_t begin, int32_t end, int64_t j) {
  int32_t lo = begin, hi = end;  // the first position in [begin, end) whose column is >= j
  while (lo < hi) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (col_idx[mid] < j) lo = mid + 1;
    else hi = mid;
  }
  return lo < end && col_idx[lo] == j;
}
template <class T> __device__ __forceinline__ double row_dot(const T* a, const T* b, int64_t k) {
  double p = 0;
  for (int64_t c = 0; c < k; ++c) p += static_cast<double>(a[c]) * static_cast<double>(b[c]);
  return p;
}

template <class T>
__global__ void link_bce_forward_kernel(int64_t rows, int64_t k, int64_t segments, const T* s, const int32_t* row_ptr,
                                        const int32_t* col_idx, const int32_t* offsets, double eps, T* loss) {
  using Group = RowGroup<kBlock>;
  for (int64_t i = Group::first_row(); i < rows; i += Group::row_stride()) {
    const int64_t g = segment_of(offsets, segments, i);
    double acc = 0;
    for (int64_t j = offsets[g] + Group::lane(); j < offsets[g + 1]; j += kBlock) {
      const double p = dev_min(row_dot(s + i * k, s + j * k, k), 1.0);
      acc -= has_column(col_idx, row_ptr[i], row_ptr[i + 1], j) ? log(p + eps) : log(1 - p + eps);
    }
    acc = Group::sum(acc);
    if (Group::lane() == 0) loss[i] = static_cast<T>(acc);
  }
}

template <class T>
__global__ void link_bce_backward_kernel(int64_t rows, int64_t k, int64_t segments, const T* s, const int32_t* row_ptr,
                                         const int32_t* col_idx, const int32_t* offsets, double eps, const T* w,
                                         double beta, T* ds) {
  using Group = RowGroup<kBlock>;
  __shared__ double coefficient[kBlock];
  for (int64_t i = Group::first_row(); i < rows; i += Group::row_stride()) {
    const int64_t g = segment_of(offsets, segments, i);
    const int64_t begin = offsets[g], end = offsets[g + 1];
    T* dsi = ds + i * k;
    for (int64_t c = Group::lane(); c < k; c += kBlock) dsi[c] = beta == 0 ? T(0) : static_cast<T>(beta * dsi[c]);
    for (int64_t tile = begin; tile < end; tile += kBlock) {
      const int64_t j = tile + Group::lane();
      double coef = 0;
      if (j < end) {
        const double p = row_dot(s + i * k, s + j * k, k);
        if (p < 1) {  // d/dP of loss[i] (through A_ij) and of loss[j] (through A_ji)
          const double d_edge = -1 / (p + eps), d_none = 1 / (1 - p + eps);
          coef = static_cast<double>(w[i]) * (has_column(col_idx, row_ptr[i], row_ptr[i + 1], j) ? d_edge : d_none) +
                 static_cast<double>(w[j]) * (has_column(col_idx, row_ptr[j], row_ptr[j + 1], i) ? d_edge : d_none);
        }
      }
      __syncthreads();  // the previous tile's readers are done with `coefficient`
      coefficient[Group::lane()] = coef;
      __syncthreads();
      const int64_t count = end - tile < kBlock ? end - tile : kBlock;
      for (int64_t c = Group::lane(); c < k; c += kBlock) {
        double acc = 0;
        for (int64_t t = 0; t < count; ++t) acc += coefficient[t] * static_cast<double>(s[(tile + t) * k + c]);
        dsi[c] = static_cast<T>(dsi[c] + acc);
      }
    }
    __syncthreads();
  }
}

}  // namespace

template <class T>
void link_bce_forward(cudaStream_t stream, int64_t rows, int64_t k, int64_t segments, const T* s,
                      const int32_t* row_ptr, const int32_t* col_idx, const int32_t* offsets, double eps, T* loss) {
  if (rows == 0) return;
  launch(DP_CUDA_SITE("link_bce_forward"), &link_bce_forward_kernel<T>, dim3(grid_for(rows, 1)), dim3(kBlock), stream,
         rows, k, segments, s, row_ptr, col_idx, offsets, eps, loss);
}

template <class T>
void link_bce_backward(cudaStream_t stream, int64_t rows, int64_t k, int64_t segments, const T* s,
                       const int32_t* row_ptr, const int32_t* col_idx, const int32_t* offsets, double eps, const T* w,
                       double beta, T* ds) {
  if (rows == 0) return;
  launch(DP_CUDA_SITE("link_bce_backward"), &link_bce_backward_kernel<T>, dim3(grid_for(rows, 1)), dim3(kBlock),
         stream, rows, k, segments, s, row_ptr, col_idx, offsets, eps, w, beta, ds);
}

template <class T> void softmax_rows_forward(cudaStream_t stream, int64_t rows, int64_t cols, const T* x, T* y) {
  for_row_group(rows, cols, [&](auto group, dim3 grid) {
    launch(DP_CUDA_SITE("softmax_rows_forward"), &softmax_forward_kernel<T, decltype(group)::value>, grid,
           dim3(kBlock), stream, rows, cols, x, y);
  });
}

template <class T> void softmax_rows_grouped(cudaStream_t stream, const RowsGroup* groups, int64_t count) {
  for_each_group_chunk<kRowsGroupsPerLaunch>(groups, count, &rows_desc<T>, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    for_grouped_rows(chunk, [&](auto group, dim3 grid) {
      launch(DP_CUDA_SITE("softmax_rows_grouped"), &softmax_grouped_kernel<T, decltype(group)::value, kCap>, grid,
             dim3(kBlock), stream, chunk);
    });
  });
}

template <class T>
void softmax_rows_backward(cudaStream_t stream, int64_t rows, int64_t cols, const T* dy, const T* y, double beta,
                           T* dx) {
  const bool accumulate = beta != 0;
  for_row_group(rows, cols, [&](auto group, dim3 grid) {
    launch(DP_CUDA_SITE("softmax_rows_backward"), &softmax_backward_kernel<T, decltype(group)::value>, grid,
           dim3(kBlock), stream, rows, cols, dy, y, accumulate, dx);
  });
}

template <class T>
void l2_normalize_rows_forward(cudaStream_t stream, int64_t rows, int64_t cols, const T* x, double eps, T* y,
                               T* norms, T* relu_out) {
  for_row_group(rows, cols, [&](auto group, dim3 grid) {
    launch(DP_CUDA_SITE("l2_normalize_rows_forward"), &l2_forward_kernel<T, decltype(group)::value>, grid,
           dim3(kBlock), stream, rows, cols, x, eps, y, norms, relu_out);
  });
}

template <class T>
void l2_normalize_rows_backward(cudaStream_t stream, int64_t rows, int64_t cols, const T* dy, const T* y,
                                const T* norms, double eps, bool relu, double beta, T* dx) {
  const bool accumulate = beta != 0;
  for_row_group(rows, cols, [&](auto group, dim3 grid) {
    launch(DP_CUDA_SITE("l2_normalize_rows_backward"), &l2_backward_kernel<T, decltype(group)::value>, grid,
           dim3(kBlock), stream, rows, cols, dy, y, norms, eps, relu, accumulate, dx);
  });
}

template <class T>
void cross_entropy_forward(cudaStream_t stream, int64_t rows, int64_t cols, const T* logits, const int32_t* labels,
                           T* probs, T* losses) {
  for_row_group(rows, cols, [&](auto group, dim3 grid) {
    launch(DP_CUDA_SITE("cross_entropy_forward"), &cross_entropy_forward_kernel<T, decltype(group)::value>, grid,
           dim3(kBlock), stream, rows, cols, logits, labels, probs, losses);
  });
}

template <class T>
void count_correct(cudaStream_t stream, int64_t rows, int64_t cols, const T* logits, const int32_t* labels,
                   T* count) {
  launch(DP_CUDA_SITE("count_correct"), &count_correct_kernel<T>, dim3(1), dim3(kBlock), stream, rows, cols, logits,
         labels, count);
}

template <class T>
void argmax_rows(cudaStream_t stream, int64_t rows, int64_t cols, const T* x, int32_t* predictions) {
  for_row_group(rows, cols, [&](auto group, dim3 grid) {
    launch(DP_CUDA_SITE("argmax_rows"), &argmax_rows_kernel<T, decltype(group)::value>, grid, dim3(kBlock), stream,
           rows, cols, x, predictions);
  });
}

template <class T> void argmax_rows_grouped(cudaStream_t stream, const RowsGroup* groups, int64_t count) {
  for_each_group_chunk<kRowsGroupsPerLaunch>(groups, count, &rows_desc<T>, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    for_grouped_rows(chunk, [&](auto group, dim3 grid) {
      launch(DP_CUDA_SITE("argmax_rows_grouped"), &argmax_grouped_kernel<T, decltype(group)::value, kCap>, grid,
             dim3(kBlock), stream, chunk);
    });
  });
}

#define DP_INSTANTIATE(T)                                                                                        \
  template void softmax_rows_forward<T>(cudaStream_t, int64_t, int64_t, const T*, T*);                           \
  template void softmax_rows_grouped<T>(cudaStream_t, const RowsGroup*, int64_t);                                \
  template void softmax_rows_backward<T>(cudaStream_t, int64_t, int64_t, const T*, const T*, double, T*);                \
  template void l2_normalize_rows_forward<T>(cudaStream_t, int64_t, int64_t, const T*, double, T*, T*, T*);          \
  template void l2_normalize_rows_backward<T>(cudaStream_t, int64_t, int64_t, const T*, const T*, const T*,      \
                                              double, bool, double, T*);                                                 \
  template void cross_entropy_forward<T>(cudaStream_t, int64_t, int64_t, const T*, const int32_t*, T*, T*);      \
  template void count_correct<T>(cudaStream_t, int64_t, int64_t, const T*, const int32_t*, T*);                  \
  template void argmax_rows<T>(cudaStream_t, int64_t, int64_t, const T*, int32_t*);                            \
  template void argmax_rows_grouped<T>(cudaStream_t, const RowsGroup*, int64_t);                               \
  template void link_bce_forward<T>(cudaStream_t, int64_t, int64_t, int64_t, const T*, const int32_t*,           \
                                    const int32_t*, const int32_t*, double, T*);                                 \
  template void link_bce_backward<T>(cudaStream_t, int64_t, int64_t, int64_t, const T*, const int32_t*,          \
                                     const int32_t*, const int32_t*, double, const T*, double, T*);
DP_INSTANTIATE(float)
DP_INSTANTIATE(double)
#undef DP_INSTANTIATE

}  // namespace diffpool::DP_CUDA_NS::kernels
