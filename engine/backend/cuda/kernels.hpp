#pragma once
// Kernel launchers of the CUDA backend, shared by the host code (cuda_backend.cpp, compiled by the
// C++ compiler) and the kernels (kernels_*.cu, compiled by nvcc).
//
// Every launcher enqueues work on `stream` and returns at once: no host synchronisation. Pointers
// are device pointers; sizes are elements. T is float or double (explicit instantiations in the
// .cu files). The semantics of each launcher are those of the Backend primitive of the same name
// (engine/backend/backend.hpp); the CPU backend is the reference.
//
// Precision: every reduction (row, column, all, segment, softmax/l2/batch-norm statistics)
// accumulates in double, as the CPU backend does, so f32 results differ from the CPU only by the
// order of double additions and by last-bit differences of expf/logf. Sparse products accumulate
// in T in the same order as the CPU (row by row over the non-zeros).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "engine/backend/backend.hpp"

// The namespace of the CUDA backend's internals. The CPU emulation used to test the kernels on
// machines without a GPU (tests/cuda_emulation) compiles the same sources into another namespace.
#ifndef DP_CUDA_NS
#define DP_CUDA_NS cuda
#endif

namespace diffpool::DP_CUDA_NS {

// Where a CUDA call or a kernel launch happened, for error messages.
struct Site {
  const char* what;
  const char* file;
  int line;
};
#define DP_CUDA_SITE(what) ::diffpool::DP_CUDA_NS::Site{what, __FILE__, __LINE__}

// Throw diffpool::LibraryError carrying the CUDA runtime's name and text for `status`, the failed
// call and its place. Defined in cuda_backend.cpp.
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);

// Checks the last launch (cudaGetLastError) and throws with the kernel's name and place.
void check_launch(const Site& site);

}  // namespace diffpool::DP_CUDA_NS

// DP_CUDA_CHECK(cudaMemcpyAsync(...)): throws diffpool::LibraryError on any status but cudaSuccess.
#define DP_CUDA_CHECK(call)                                                                   \
  do {                                                                                        \
    const cudaError_t dp_cuda_status_ = (call);                                               \
    if (dp_cuda_status_ != cudaSuccess) [[unlikely]]                                          \
      ::diffpool::DP_CUDA_NS::throw_cuda_error(dp_cuda_status_, #call, __FILE__, __LINE__);   \
  } while (0)

namespace diffpool::DP_CUDA_NS::kernels {

// Temporary device memory for multi-pass reductions. The backend hands out blocks from its
// caching allocator and takes them back when the primitive returns; this is safe without a
// synchronisation because all work runs on the backend's one stream, in order.
class ScratchSpace {
 public:
  virtual double* doubles(std::size_t count) = 0;
  // `count` arrival tickets of the single-launch reductions (arrived_last, device_common.cuh):
  // 0 when the primitive's kernel starts, and left 0 by it. The backend keeps one zeroed array for
  // all its primitives (each launch returns its tickets to 0 before the next one on the stream
  // starts), grown when a launch needs more.
  virtual unsigned* tickets(std::size_t count) = 0;

 protected:
  ~ScratchSpace() = default;
};

// ---- memory and elementwise (kernels_elementwise.cu) ------------------------------------------
// out[0..n) = value, for f32, f64 or i32.
void fill(cudaStream_t stream, void* out, DType dtype, int64_t n, double value);
// Copies `rows` rows of row_bytes bytes, each src_pitch and dst_pitch bytes apart, bit for bit (a
// cudaMemcpy2DAsync as a kernel: inside a captured step a kernel node updates where a memcpy node
// may not; see CudaBackend::fill). In 8- or 4-byte words where every address and size allows.
void copy_rows(cudaStream_t stream, int64_t rows, std::size_t row_bytes, const void* src, std::size_t src_pitch,
               void* dst, std::size_t dst_pitch);
// dst[r, c] = alpha src[r, c] + beta dst[r, c] (beta = 0 overwrites); src may equal dst.
template <class T>
void copy_2d(cudaStream_t stream, int64_t rows, int64_t cols, const T* src, int64_t src_ld, T* dst,
             int64_t dst_ld, T alpha, T beta);
// c[r, c] = beta c[r, c], and exactly 0 when beta = 0 (the k = 0 case of gemm).
template <class T>
void scale_2d(cudaStream_t stream, int64_t rows, int64_t cols, T* c, int64_t ldc, T beta);
// out = alpha f(a, b) + beta out over rows x cols (see MapOp and Broadcast). a may be null (op
// broadcast), b may be null (unary ops).
template <class T>
void map(cudaStream_t stream, MapOp op, int64_t rows, int64_t cols, const T* a, const T* b, Broadcast mode,
         T c, T alpha, T beta, T* out);
// y = x keep(seed, i) / (1 - p) + beta y.
// Backend::map_grouped over `count` groups with no empty ones (the caller drops those).
template <class T>
void map_grouped(cudaStream_t stream, MapOp op, const RowsGroup* groups, int64_t count, Broadcast mode, T c, T alpha,
                 T beta);
template <class T>
void dropout(cudaStream_t stream, int64_t n, const T* x, double p, uint64_t seed, double beta, T* y);

// Constants of one Adam step, computed on the host exactly as the CPU backend does.
template <class T> struct AdamConstants {
  T beta1, beta2, step_size, inv_sqrt_bias_correction2, eps, weight_decay;
};
// grad_scale: a device scalar that multiplies every gradient.
template <class T>
void adam_step(cudaStream_t stream, int64_t n, const AdamConstants<T>& constants, const T* grad_scale, T* params,
               const T* grads, T* m, T* v);
// dlogits [rows, cols] += dlosses[r] (probs - onehot(labels[r])).
template <class T>
void cross_entropy_backward(cudaStream_t stream, int64_t rows, int64_t cols, const T* probs, const int32_t* labels,
                            const T* dlosses, T* dlogits);

// ---- grouped small products (kernels_gemm.cu) -------------------------------------------------
// C_g = alpha op(A_g) op(B_g) + beta C_g for `count` groups (Backend::gemm_grouped), every size,
// leading dimension and product below 2^31; groups with m or n 0 are skipped by the caller.
// tf32: every f32 operand element is reduced to TF32 (engine/core/tf32.hpp) as it is loaded.
template <class T>
void gemm_grouped(cudaStream_t stream, Trans trans_a, Trans trans_b, const GemmGroup* groups, int64_t count, T alpha,
                  T beta, bool tf32);
// C[:m_g, :n_g] += alpha op(A_g) op(B_g) for `count` groups sharing C (Backend::gemm_grouped_sum:
// every group's c and ldc the same), in group order, the same limits; C is `m` x `n` (the
// largest m_g and n_g). from_start (Backend::gemm_sum_from_row, every group m x n): C is not
// read; it starts from the row `start` [n] broadcast over its rows, or from 0 where start is null.
template <class T>
void gemm_grouped_sum(cudaStream_t stream, Trans trans_a, Trans trans_b, const GemmGroup* groups, int64_t count,
                      int64_t m, int64_t n, T alpha, bool tf32, bool from_start = false, const T* start = nullptr);

// ---- reductions, graphs and batch norm (kernels_reduce.cu) --------------------------------------
// Backend::weight_gradients in one launch: C_t = A_t^T B + beta C_t for `count` terms (at most
// kMaxWeightTerms, each a GemmGroup with m_t, lda, c and ldc; k and n shared), and with `bias`
// bias = colsum(B) + bias_beta bias; B [k, n] with ldb. Sums in double; tf32 reduces the
// products' f32 operands to TF32.
constexpr int kMaxWeightTerms = 4;
template <class T>
void weight_gradients(cudaStream_t stream, ScratchSpace& scratch, const GemmGroup* terms, int64_t count, int64_t k,
                      int64_t n, const T* b, int64_t ldb, double beta, T* bias, double bias_beta, bool tf32);
// Grouped launches take their groups in the launch arguments (device_common.cuh), 64 per launch.
// Backend::dot_grouped: one block per group; the dot sums in double in a fixed tree order.
template <class T>
void dot_grouped(cudaStream_t stream, const DotGroup* groups, int64_t count, double alpha, double beta);
// Backend::reduce_cols_grouped_sum over `count` groups of elements, sharing out [cols] (cols the
// widest group's).
template <class T>
void reduce_cols_grouped_sum(cudaStream_t stream, const RowsGroup* groups, int64_t count, int64_t cols, double alpha);
// Backend::reduce_rows_grouped over `count` groups of at least one row each.
template <class T>
void reduce_rows_grouped(cudaStream_t stream, Reduce kind, const RowsGroup* groups, int64_t count, double alpha,
                         double beta);
// out [rows] = alpha reduce_row(a (, b)) + beta out.
template <class T>
void reduce_rows(cudaStream_t stream, Reduce kind, int64_t rows, int64_t cols, const T* a, const T* b,
                 double alpha, double beta, T* out);
// out [cols] = alpha reduce_col(a (, b)) + beta out; kind sum or dot.
template <class T>
void reduce_cols(cudaStream_t stream, ScratchSpace& scratch, Reduce kind, int64_t rows, int64_t cols, const T* a,
                 const T* b, double alpha, double beta, T* out);
// out [1] = alpha reduce_all(a (, b)) + beta out; kind sum or dot.
template <class T>
void reduce_all(cudaStream_t stream, ScratchSpace& scratch, Reduce kind, int64_t n, const T* a, const T* b,
                double alpha, double beta, T* out);
// Y [rows, f] = alpha A X + beta Y with A in CSR (i32 indices), X [A.cols, f].
template <class T>
void spmm(cudaStream_t stream, int64_t rows, int64_t f, const int32_t* row_ptr, const int32_t* col_idx,
          const T* values, const T* x, T alpha, T beta, T* y);
// Backend::spmm_grouped over `count` groups with rows and columns (the caller drops the others),
// each entry as spmm computes it; 48 groups per launch.
template <class T>
void spmm_grouped(cudaStream_t stream, const SpmmGroup* groups, int64_t count, T alpha, T beta);
// y [segments, f] = reduce over rows [offsets[s], offsets[s+1]) of x; argmax for max.
template <class T>
void segment_reduce_forward(cudaStream_t stream, SegmentReduce kind, int64_t segments, int64_t f,
                            const int32_t* offsets, const T* x, T* y, int32_t* argmax);
template <class T>
void segment_reduce_backward(cudaStream_t stream, SegmentReduce kind, int64_t segments, int64_t f,
                             const int32_t* offsets, const T* dy, const int32_t* argmax, T* dx);
template <class T>
void batch_norm_forward(cudaStream_t stream, ScratchSpace& scratch, int64_t rows, int64_t cols, const T* x,
                        const T* gamma, const T* beta, bool training, double momentum, double eps,
                        T* running_mean, T* running_var, T* y, T* mean, T* invstd);
template <class T>
void batch_norm_backward(cudaStream_t stream, ScratchSpace& scratch, int64_t rows, int64_t cols, const T* dy,
                         const T* x, const T* gamma, const T* mean, const T* invstd, double beta, T* dx, T* dgamma,
                         T* dbeta);

// ---- fused row operations (kernels_rows.cu) -----------------------------------------------------
template <class T>
void link_bce_forward(cudaStream_t stream, int64_t rows, int64_t k, int64_t segments, const T* s,
                      const int32_t* row_ptr, const int32_t* col_idx, const int32_t* offsets, double eps, T* loss);
template <class T>
void link_bce_backward(cudaStream_t stream, int64_t rows, int64_t k, int64_t segments, const T* s,
                       const int32_t* row_ptr, const int32_t* col_idx, const int32_t* offsets, double eps, const T* w,
                       double beta, T* ds);
template <class T>
void softmax_rows_forward(cudaStream_t stream, int64_t rows, int64_t cols, const T* x, T* y);
// Backend::softmax_rows_grouped over `count` groups with no empty ones.
template <class T> void softmax_rows_grouped(cudaStream_t stream, const RowsGroup* groups, int64_t count);
template <class T>
void softmax_rows_backward(cudaStream_t stream, int64_t rows, int64_t cols, const T* dy, const T* y, double beta,
                           T* dx);
template <class T>
void l2_normalize_rows_forward(cudaStream_t stream, int64_t rows, int64_t cols, const T* x, double eps, T* y,
                               T* norms, T* relu_out);
template <class T>
void l2_normalize_rows_backward(cudaStream_t stream, int64_t rows, int64_t cols, const T* dy, const T* y,
                                const T* norms, double eps, bool relu, double beta, T* dx);
// probs = softmax(logits); losses[r] = -log probs[r, labels[r]], NaN for a label outside [0, cols)
// (the CPU backend throws there; a kernel cannot, and the NaN makes the step fail as non-finite).
template <class T>
void cross_entropy_forward(cudaStream_t stream, int64_t rows, int64_t cols, const T* logits, const int32_t* labels,
                           T* probs, T* losses);
// count[0] += number of rows whose argmax (first maximum) equals the label.
template <class T>
void count_correct(cudaStream_t stream, int64_t rows, int64_t cols, const T* logits, const int32_t* labels,
                   T* count);
template <class T>
void argmax_rows(cudaStream_t stream, int64_t rows, int64_t cols, const T* x, int32_t* predictions);
// Backend::argmax_rows_grouped over `count` groups with no empty ones (out: i32 [rows] each).
template <class T> void argmax_rows_grouped(cudaStream_t stream, const RowsGroup* groups, int64_t count);

}  // namespace diffpool::DP_CUDA_NS::kernels
