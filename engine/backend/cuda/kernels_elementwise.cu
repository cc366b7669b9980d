// Elementwise kernels of the CUDA backend: fill, strided copies, map (every MapOp under every
// Broadcast mode), dropout, Adam and the cross-entropy gradient.
//
// All are grid-stride loops over the flat index i of a rows x cols matrix (r = i / cols,
// c = i % cols), one thread per element per pass. The arithmetic is written as the CPU backend
// writes it, so results differ only where nvcc contracts a * b + c into one fused multiply-add.
#include "engine/backend/cuda/device_common.cuh"
#include "engine/core/random.hpp"

namespace diffpool::DP_CUDA_NS::kernels {
namespace {

template <class U> __global__ void fill_kernel(int64_t n, U value, U* out) {
  for (int64_t i = first_index(); i < n; i += index_stride()) out[i] = value;
}

template <class W>
__global__ void copy_rows_kernel(int64_t rows, int64_t row_words, const W* src, int64_t src_pitch, W* dst,
                                 int64_t dst_pitch) {
  const int64_t n = rows * row_words;
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const int64_t r = i / row_words, c = i % row_words;
    dst[r * dst_pitch + c] = src[r * src_pitch + c];
  }
}

// dst = alpha src + beta dst, beta = 0 overwrites.
template <class T>
__global__ void copy_2d_kernel(int64_t rows, int64_t cols, const T* src, int64_t src_ld, T* dst, int64_t dst_ld,
                               T alpha, T beta) {
  const int64_t n = rows * cols;
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const int64_t r = i / cols, c = i % cols;
    const T value = alpha * src[r * src_ld + c];
    T* d = dst + r * dst_ld + c;
    *d = beta == T(0) ? value : value + beta * *d;
  }
}

template <class T> __global__ void scale_2d_kernel(int64_t rows, int64_t cols, T* c, int64_t ldc, T beta) {
  const int64_t n = rows * cols;
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    T* p = c + (i / cols) * ldc + i % cols;
    *p = beta == T(0) ? T(0) : beta * *p;
  }
}

// f(x, y) of each MapOp (see backend.hpp); k is the per-call constant.
template <class T> __device__ __forceinline__ T map_value(MapOp op, T x, T y, T k) {
  switch (op) {
    case MapOp::copy: return x;
    case MapOp::broadcast: return y;
    case MapOp::add: return x + k * y;
    case MapOp::mul: return x * y;
    case MapOp::div: return x / y;
    case MapOp::relu: return x > T(0) ? x : T(0);
    case MapOp::relu_backward: return y > T(0) ? x : T(0);
    case MapOp::sqrt: return dev_sqrt(dev_max(x, T(0)) + k);
    case MapOp::reciprocal: return T(1) / (x + k);
    case MapOp::reciprocal_backward: return -x * y * y;
    case MapOp::log: return dev_log(dev_max(x, tiny<T>()));
    case MapOp::plus_one_times: return (x + T(1)) * y;
    case MapOp::clip_coefficient: return dev_min(T(1), k / (dev_sqrt(dev_max(x, T(0))) + T(1e-6)));
    case MapOp::count: break;
  }
  return T(0);
}

// out[i] = alpha f(a[i], b[...]) + beta out[i] for element i of a rows x cols matrix.
template <class T>
__device__ __forceinline__ void map_element(MapOp op, int64_t i, int64_t cols, const T* a, const T* b, Broadcast mode,
                                            T k, T alpha, T beta, T* out) {
  const T x = a ? a[i] : T(0);
  T y = T(0);
  if (b) {
    switch (mode) {
      case Broadcast::full: y = b[i]; break;
      case Broadcast::row: y = b[i % cols]; break;
      case Broadcast::col: y = b[i / cols]; break;
      case Broadcast::scalar: y = b[0]; break;
    }
  }
  const T value = alpha * map_value(op, x, y, k);
  out[i] = beta != T(0) ? value + beta * out[i] : value;
}

template <class T>
__global__ void map_kernel(MapOp op, int64_t rows, int64_t cols, const T* a, const T* b, Broadcast mode, T k,
                           T alpha, T beta, T* out) {
  const int64_t n = rows * cols;
  for (int64_t i = first_index(); i < n; i += index_stride()) map_element(op, i, cols, a, b, mode, k, alpha, beta, out);
}

// Backend::map_grouped: blockIdx.x the group, its elements strided over blockIdx.y.
template <class T, int kCapacity>
__global__ void map_grouped_kernel(RowsChunk<T, kCapacity> chunk, MapOp op, Broadcast mode, T k, T alpha, T beta) {
  const RowsDesc<T> g = chunk.groups[blockIdx.x];
  const int64_t n = g.rows * g.cols;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * kBlock + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.y) * kBlock)
    map_element(op, i, g.cols, op == MapOp::broadcast ? nullptr : g.a, g.b, mode, k, alpha, beta, g.out);
}

template <class T> __global__ void dropout_kernel(int64_t n, const T* x, double p, uint64_t seed, T scale, T beta, T* y) {
  const bool accumulate = beta != T(0);
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const T keep = uniform_hash(seed, static_cast<uint64_t>(i)) >= p ? scale : T(0);
    y[i] = x[i] * keep + (accumulate ? beta * y[i] : T(0));
  }
}

template <class T>
__global__ void adam_kernel(int64_t n, AdamConstants<T> k, const T* grad_scale, T* params, const T* grads, T* m,
                            T* v) {
  const T scale = grad_scale[0];
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const T g = grads[i] * scale + k.weight_decay * params[i];
    const T mi = k.beta1 * m[i] + (T(1) - k.beta1) * g;
    const T vi = k.beta2 * v[i] + (T(1) - k.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] -= k.step_size * mi / (dev_sqrt(vi) * k.inv_sqrt_bias_correction2 + k.eps);
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(int64_t rows, int64_t cols, const T* probs, const int32_t* labels,
                                              const T* dlosses, T* dlogits) {
  const int64_t n = rows * cols;
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const int64_t r = i / cols, c = i % cols;
    dlogits[i] += dlosses[r] * (probs[i] - (c == labels[r] ? T(1) : T(0)));
  }
}

dim3 elementwise_grid(int64_t n) { return dim3(grid_for(n, kBlock)); }

}  // namespace

void fill(cudaStream_t stream, void* out, DType dtype, int64_t n, double value) {
  const dim3 grid = elementwise_grid(n);
  switch (dtype) {
    case DType::f32:
      launch(DP_CUDA_SITE("fill f32"), &fill_kernel<float>, grid, dim3(kBlock), stream, n, static_cast<float>(value),
             static_cast<float*>(out));
      return;
    case DType::f64:
      launch(DP_CUDA_SITE("fill f64"), &fill_kernel<double>, grid, dim3(kBlock), stream, n, value,
             static_cast<double*>(out));
      return;
    case DType::i32:
      launch(DP_CUDA_SITE("fill i32"), &fill_kernel<int32_t>, grid, dim3(kBlock), stream, n,
             static_cast<int32_t>(value), static_cast<int32_t*>(out));
      return;
  }
}

void copy_rows(cudaStream_t stream, int64_t rows, std::size_t row_bytes, const void* src, std::size_t src_pitch,
               void* dst, std::size_t dst_pitch) {
  if (rows <= 0 || row_bytes == 0) return;
  const auto fits = [&](std::size_t word) {
    return row_bytes % word == 0 && src_pitch % word == 0 && dst_pitch % word == 0 &&
           reinterpret_cast<uintptr_t>(src) % word == 0 && reinterpret_cast<uintptr_t>(dst) % word == 0;
  };
  const auto run = [&](auto word, const char* what) {
    using W = decltype(word);
    const auto w = static_cast<int64_t>(sizeof(W));
    const int64_t row_words = static_cast<int64_t>(row_bytes) / w;
    launch(DP_CUDA_SITE(what), &copy_rows_kernel<W>, elementwise_grid(rows * row_words), dim3(kBlock), stream, rows, row_words,
           static_cast<const W*>(src), static_cast<int64_t>(src_pitch) / w, static_cast<W*>(dst),
           static_cast<int64_t>(dst_pitch) / w);
  };
  if (fits(8)) {
    run(uint64_t{}, "copy_rows 8-byte words");
  } else if (fits(4)) {
    run(uint32_t{}, "copy_rows 4-byte words");
  } else {
    run(uint8_t{}, "copy_rows bytes");
  }
}

template <class T>
void copy_2d(cudaStream_t stream, int64_t rows, int64_t cols, const T* src, int64_t src_ld, T* dst, int64_t dst_ld,
             T alpha, T beta) {
  launch(DP_CUDA_SITE("copy_2d"), &copy_2d_kernel<T>, elementwise_grid(rows * cols), dim3(kBlock), stream, rows, cols,
         src, src_ld, dst, dst_ld, alpha, beta);
}

template <class T> void scale_2d(cudaStream_t stream, int64_t rows, int64_t cols, T* c, int64_t ldc, T beta) {
  launch(DP_CUDA_SITE("scale_2d"), &scale_2d_kernel<T>, elementwise_grid(rows * cols), dim3(kBlock), stream, rows,
         cols, c, ldc, beta);
}

template <class T>
void map(cudaStream_t stream, MapOp op, int64_t rows, int64_t cols, const T* a, const T* b, Broadcast mode, T c,
         T alpha, T beta, T* out) {
  launch(DP_CUDA_SITE("map"), &map_kernel<T>, elementwise_grid(rows * cols), dim3(kBlock), stream, op, rows, cols, a,
         b, mode, c, alpha, beta, out);
}

template <class T>
void map_grouped(cudaStream_t stream, MapOp op, const RowsGroup* groups, int64_t count, Broadcast mode, T c, T alpha,
                 T beta) {
  for_each_group_chunk<kRowsGroupsPerLaunch>(groups, count, &rows_desc<T>, [&](const auto& chunk) {
    constexpr int kCap = chunk_capacity<decltype(chunk)>;
    int64_t most = 1;
    for (int32_t i = 0; i < chunk.count; ++i) {
      const int64_t n = chunk.groups[i].rows * chunk.groups[i].cols;
      most = n > most ? n : most;
    }
    launch(DP_CUDA_SITE("map_grouped"), &map_grouped_kernel<T, kCap>, group_grid(chunk.count, ceil_div(most, kBlock)),
           dim3(kBlock), stream, chunk, op, mode, c, alpha, beta);
  });
}

template <class T> void dropout(cudaStream_t stream, int64_t n, const T* x, double p, uint64_t seed, double beta, T* y) {
  launch(DP_CUDA_SITE("dropout"), &dropout_kernel<T>, elementwise_grid(n), dim3(kBlock), stream, n, x, p, seed,
         static_cast<T>(1.0 / (1.0 - p)), static_cast<T>(beta), y);
}

template <class T>
void adam_step(cudaStream_t stream, int64_t n, const AdamConstants<T>& constants, const T* grad_scale, T* params,
               const T* grads, T* m, T* v) {
  launch(DP_CUDA_SITE("adam_step"), &adam_kernel<T>, elementwise_grid(n), dim3(kBlock), stream, n, constants,
         grad_scale, params, grads, m, v);
}

template <class T>
void cross_entropy_backward(cudaStream_t stream, int64_t rows, int64_t cols, const T* probs, const int32_t* labels,
                            const T* dlosses, T* dlogits) {
  launch(DP_CUDA_SITE("cross_entropy_backward"), &cross_entropy_backward_kernel<T>, elementwise_grid(rows * cols),
         dim3(kBlock), stream, rows, cols, probs, labels, dlosses, dlogits);
}

#define DP_INSTANTIATE(T)                                                                                      \
  template void copy_2d<T>(cudaStream_t, int64_t, int64_t, const T*, int64_t, T*, int64_t, T, T);              \
  template void scale_2d<T>(cudaStream_t, int64_t, int64_t, T*, int64_t, T);                                   \
  template void map<T>(cudaStream_t, MapOp, int64_t, int64_t, const T*, const T*, Broadcast, T, T, T, T*);     \
  template void map_grouped<T>(cudaStream_t, MapOp, const RowsGroup*, int64_t, Broadcast, T, T, T);            \
  template void dropout<T>(cudaStream_t, int64_t, const T*, double, uint64_t, double, T*);                     \
  template void adam_step<T>(cudaStream_t, int64_t, const AdamConstants<T>&, const T*, T*, const T*, T*, T*);  \
  template void cross_entropy_backward<T>(cudaStream_t, int64_t, int64_t, const T*, const int32_t*, const T*, T*);
DP_INSTANTIATE(float)
DP_INSTANTIATE(double)
#undef DP_INSTANTIATE

}  // namespace diffpool::DP_CUDA_NS::kernels
