#pragma once
// The backend interface: the small, fixed set of primitives every op is written against.
//
// The CPU backend (OpenBLAS plus plain loops) is the reference; every other backend is tested
// against it primitive by primitive (tests/unit/test_backend_parity.cpp). A backend is created
// once at start-up and passed explicitly; there are no globals.
//
// Conventions, for every primitive:
//   * Tensors are contiguous, row-major, and on this backend's device. Matrices are the
//     tensor's matrix view [rows, cols] (see Tensor::rows/cols).
//   * f32 and f64 are both supported (f64 is used by the gradient checks); index tensors are i32.
//   * "out = alpha * f(...) + beta * out": beta = 0 overwrites (out may hold garbage, even NaN),
//     beta = 1 accumulates. Backward primitives named *_backward always accumulate into dx.
//   * Scalars that live on the device (a loss, an upstream gradient, a clipping factor) are
//     passed as one-element tensors so that a training step never waits for the host.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/device_memory.hpp"
#include "engine/core/tensor.hpp"

namespace diffpool {

enum class Trans : uint8_t { no, yes };

// Elementwise functions of map(). a is always full-size; b may be broadcast (see Broadcast).
// `c` is the per-call constant named in each comment.
enum class MapOp : uint8_t {
  copy,                 // a
  broadcast,            // b                      (a unused: fill out with broadcast b)
  add,                  // a + c * b
  mul,                  // a * b
  div,                  // a / b
  relu,                 // max(a, 0)
  relu_backward,        // a * (b > 0)            a = dy, b = x
  sqrt,                 // sqrt(max(a, 0) + c)    c = eps
  reciprocal,           // 1 / (a + c)            c = eps
  reciprocal_backward,  // -a * b * b             a = dy, b = y = 1 / (x + eps)
  log,                  // log(max(a, tiny)), tiny the smallest normal number (finite at a = 0)
  plus_one_times,       // (a + 1) * b
  clip_coefficient,     // min(1, c / (sqrt(a) + 1e-6))  a = sum of squared gradients, c = max norm
  count
};
const char* map_op_name(MapOp op);

enum class Broadcast : uint8_t {
  full,    // b has the shape of a
  row,     // b is one row [cols], repeated for every row
  col,     // b is one column [rows], repeated for every column
  scalar,  // b is a single element
};

enum class Reduce : uint8_t {
  sum,    // sum of a
  dot,    // sum of a * b
  max,    // max of a (rows only)
};

enum class SegmentReduce : uint8_t { sum, mean, max };
const char* segment_reduce_name(SegmentReduce kind);

// Compressed sparse rows, on a device: row_ptr i32 [rows + 1], col_idx i32 [nnz], values [nnz].
struct Csr {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t nnz = 0;
  Tensor row_ptr;
  Tensor col_idx;
  Tensor values;
};

struct AdamSettings {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2 added to the gradient (as torch.optim.Adam)
};

// One product of a grouped gemm (Backend::gemm_grouped): sizes, device pointers and leading
// dimensions (elements), row-major as gemm's.
struct GemmGroup {
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  int64_t lda = 1;
  const void* b = nullptr;
  int64_t ldb = 1;
  void* c = nullptr;
  int64_t ldc = 1;
};

// One dot product of a grouped call (Backend::dot_grouped): out[0] = alpha sum_i a[i] b[i] +
// beta out[0] over n contiguous elements (n = 0: out = beta out), device pointers.
struct DotGroup {
  int64_t n = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* out = nullptr;
};
// One sparse product of a grouped call (Backend::spmm_grouped): Y [a->rows, cols] = alpha A X +
// beta Y with X [a->cols, cols], both row-major with leading dimension cols, device pointers.
struct SpmmGroup {
  const Csr* a = nullptr;
  int64_t cols = 0;
  const void* x = nullptr;
  void* y = nullptr;
};
// One block of a grouped row-wise call (Backend::map_grouped, reduce_rows_grouped,
// softmax_rows_grouped, argmax_rows_grouped): `rows` x `cols` elements, contiguous and row-major (leading dimension
// cols), device pointers. Each primitive says what a, b and out hold; b and out are shaped as in
// the one-block primitive the group stands for.
struct RowsGroup {
  int64_t rows = 0, cols = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* out = nullptr;
};

// The precision of f32 matrix products (gemm, gemm_strided_batched, gemm_grouped).
//   fp32: full f32 (the default, and the reference every parity test compares against).
//   tf32: every operand element reduced to TF32 (engine/core/tf32.hpp: 10 mantissa bits) before
//         it is multiplied, products accumulated in f32, as NVIDIA tensor cores compute. The CUDA
//         backend runs cuBLAS in its TF32 tensor-op math mode and reduces the operands of its own
//         grouped kernel; the CPU backend reduces copies of the operands before OpenBLAS, an
//         emulation that lets the accuracy of TF32 training be measured without a GPU.
// f64 products are never reduced. Nothing else (elementwise maps, reductions, spmm) changes.
enum class MatmulPrecision : uint8_t { fp32, tf32 };

class Backend : public DeviceMemory {
 public:
  virtual std::string name() const = 0;  // "cpu (OpenBLAS Haswell kernels, AVX2 loops, 1 thread)", "cuda:0 (NVIDIA H100)"
  // name(), and ", TF32 products" under MatmulPrecision::tf32: what logs and job files record.
  std::string description() const;

  // Set once after creation (make_backend does, from BackendOptions), before any product.
  virtual void set_matmul_precision(MatmulPrecision precision) { matmul_precision_ = precision; }
  MatmulPrecision matmul_precision() const { return matmul_precision_; }

  // ---- memory -------------------------------------------------------------------------------
  // device(), allocate, deallocate, copy_bytes and fill: see DeviceMemory
  // (engine/core/device_memory.hpp), the part of a backend the core types use.
  // dst[r, c] = alpha * src[r, c] + beta * dst[r, c] for r < rows, c < cols, with leading dims.
  virtual void copy_2d(int64_t rows, int64_t cols, DType dtype, const void* src, int64_t src_ld,
                       void* dst, int64_t dst_ld, double alpha, double beta) = 0;

  // ---- dense products -----------------------------------------------------------------------
  // C = alpha * op(A) op(B) + beta * C with op(A) [m, k], op(B) [k, n], C [m, n], row-major.
  virtual void gemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                    const void* a, int64_t lda, const void* b, int64_t ldb, double beta, void* c,
                    int64_t ldc, DType dtype) = 0;
  // The same for `batch` products at fixed strides (in elements).
  virtual void gemm_strided_batched(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k,
                                    double alpha, const void* a, int64_t lda, int64_t stride_a,
                                    const void* b, int64_t ldb, int64_t stride_b, double beta,
                                    void* c, int64_t ldc, int64_t stride_c, int64_t batch,
                                    DType dtype) = 0;

  // C_g = alpha * op(A_g) op(B_g) + beta * C_g for every group g: products of different sizes
  // with the same transposes, alpha and beta (one graph's blocks each, per-graph pooling). A
  // group with m or n 0 does nothing; k 0 sets C_g = beta C_g (beta 0 overwrites). The products'
  // outputs must not overlap. The default runs gemm group by group (the CPU backend's way:
  // OpenBLAS is fast per call); the CUDA backend computes the small ones in one kernel launch.
  // (Defined here, not in backend.cpp: an out-of-line virtual would make that file the home of
  // Backend's vtable, which the CUDA module does not link.)
  virtual void gemm_grouped(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha,
                            double beta, DType dtype) {
    for (const GemmGroup& g : groups)
      gemm(trans_a, trans_b, g.m, g.n, g.k, alpha, g.a, g.lda, g.b, g.ldb, beta, g.c, g.ldc, dtype);
  }

  // Products that add into one shared output, the weight gradient of a layer every graph uses at
  // its own width (per-graph pooling's assignment layer: dW[:, :k_g] += X_g^T dY_g):
  // C[:m_g, :n_g] += alpha op(A_g) op(B_g) for each group g in the order given, where every
  // group's c and ldc are the same (C's top-left corner is what each group adds to). The default
  // runs gemm group by group with beta 1 (the CPU backend's way, and the order the sum follows);
  // the CUDA backend sums the small groups in one launch per chunk of groups, a block per output
  // tile adding the groups in order. (Inline for the reason given at gemm_grouped.)
  virtual void gemm_grouped_sum(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha,
                                DType dtype) {
    for (const GemmGroup& g : groups)
      gemm(trans_a, trans_b, g.m, g.n, g.k, alpha, g.a, g.lda, g.b, g.ldb, 1.0, g.c, g.ldc, dtype);
  }
  // A layer's linear part in one call (ops::linear: y = b + x W_x + x2 W_x2, GraphSAGE's self and
  // neighbour terms): C [m, n] = start + sum_g alpha op(A_g) op(B_g), the groups added in the
  // order given, where every group is m x n and has the same c and ldc (= n), and `start` is a
  // device row of n elements broadcast over C's rows (a bias) or null (C starts from 0; what C
  // held before is never read). At least one group. The default makes the calls ops::linear made
  // before this primitive existed: a broadcast of `start`, then gemm group by group with beta 1
  // (without `start`, the first group with beta 0), so CPU results are those of that code; the
  // CUDA backend runs it as one launch of gemm_grouped_sum's kernel, whose tiles start from
  // `start`, when every group fits that kernel. (Inline for the reason given at gemm_grouped.)
  virtual void gemm_sum_from_row(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, const void* start,
                                 double alpha, DType dtype) {
    if (groups.empty()) return;
    const GemmGroup& first = groups.front();
    if (start) {
      Tensor c(first.c, Shape{first.m, first.n}, dtype, device());
      const Tensor row(const_cast<void*>(start), Shape{first.n}, dtype, device());
      map(MapOp::broadcast, c, &row, Broadcast::row, 0, 1, 0, c);
    }
    for (std::size_t i = 0; i < groups.size(); ++i) {
      const GemmGroup& g = groups[i];
      gemm(trans_a, trans_b, g.m, g.n, g.k, alpha, g.a, g.lda, g.b, g.ldb, start || i > 0 ? 1.0 : 0.0, g.c, g.ldc,
           dtype);
    }
  }
  // The parameter gradients of a layer's linear part in one call (ops::linear's backward): for
  // each term t, C_t = A_t^T B_t + beta C_t (A_t [k, m_t] with lda, B_t [k, n] with ldb, C_t
  // [m_t, n] with ldc: a GemmGroup of gemm(Trans::yes, Trans::no) with its m, n and k), then, with
  // `bias` (rows k, cols n, a the upstream gradient, out the bias gradient; b unused),
  // out = colsum(a) + bias_beta out. In ops::linear every term's B is the upstream gradient dY
  // and the terms are W's row blocks: dW_x = x^T dY, dW_x2 = x2^T dY, db = colsum(dY). The
  // default makes the calls ops::linear's backward made before (gemm per term, then reduce_cols),
  // so CPU results are those of that code; the CUDA backend does all of it in one launch of its
  // column-reduction kernel where the terms share B and are small (each at most 2^20
  // multiply-adds). Either part may be empty. (Inline for the reason given at gemm_grouped.)
  virtual void weight_gradients(const std::vector<GemmGroup>& terms, double beta, const RowsGroup* bias,
                                double bias_beta, DType dtype) {
    for (const GemmGroup& t : terms)
      gemm(Trans::yes, Trans::no, t.m, t.n, t.k, 1.0, t.a, t.lda, t.b, t.ldb, beta, t.c, t.ldc, dtype);
    if (bias) {
      const Tensor a(const_cast<void*>(bias->a), Shape{bias->rows, bias->cols}, dtype, device());
      Tensor out(bias->out, Shape{bias->cols}, dtype, device());
      reduce_cols(Reduce::sum, a, nullptr, 1.0, bias_beta, out);
    }
  }
  // Column sums that add into one shared output (the bias gradient of that layer: db[:k_g] +=
  // colsum(dY_g)): out[:cols_g] += alpha colsum(a_g) for each group in the order given, where
  // every group's out is the same (RowsGroup's b unused). The default is reduce_cols with beta 1
  // group by group; the CUDA backend does it in one launch per chunk of groups.
  virtual void reduce_cols_grouped_sum(const std::vector<RowsGroup>& groups, double alpha, DType dtype) {
    for (const RowsGroup& g : groups) {
      if (g.rows * g.cols == 0) continue;
      const Tensor a(const_cast<void*>(g.a), Shape{g.rows, g.cols}, dtype, device());
      Tensor out(g.out, Shape{g.cols}, dtype, device());
      reduce_cols(Reduce::sum, a, nullptr, alpha, 1.0, out);
    }
  }

  // Per-graph dot products (the Gram terms of the link loss, tr(S^T A S), graph by graph): by
  // default one reduce_all per group, so CPU results are those of the loop they replace; the
  // CUDA backend does every group in one launch per chunk of groups. The groups' outputs must not
  // overlap. (Inline for the reason given at gemm_grouped.)
  virtual void dot_grouped(const std::vector<DotGroup>& groups, double alpha, double beta, DType dtype) {
    for (const DotGroup& g : groups) {
      Tensor out(g.out, Shape{1}, dtype, device());
      if (g.n == 0) {
        scale_output(out, beta);
        continue;
      }
      const Tensor a(const_cast<void*>(g.a), Shape{g.n}, dtype, device());
      const Tensor b(const_cast<void*>(g.b), Shape{g.n}, dtype, device());
      reduce_all(Reduce::dot, a, &b, alpha, beta, out);
    }
  }

  // Row-wise primitives over many blocks at once (per-graph pooling: every graph's [n_g, k_g]
  // block). By default each group is one call of the one-block primitive, in the order given, so
  // CPU results are those of the per-graph loops they replace; the CUDA backend launches once per
  // chunk of groups. Groups of no elements are skipped; the groups' outputs must not overlap.
  //   map_grouped:          map(op, a_g, b_g, b_mode, c, alpha, beta, out_g) over [rows, cols];
  //                         b_g holds rows * cols, cols, rows or 1 elements as b_mode says.
  //   reduce_rows_grouped:  reduce_rows(kind, a_g, b_g, alpha, beta, out_g), out_g [rows]; rows of
  //                         no columns reduce to 0 (out_g = beta out_g).
  //   softmax_rows_grouped: softmax_rows_forward(a_g, out_g).
  // (Inline for the reason given at gemm_grouped.)
  virtual void map_grouped(MapOp op, const std::vector<RowsGroup>& groups, Broadcast b_mode, double c, double alpha,
                           double beta, DType dtype) {
    for (const RowsGroup& g : groups) {
      if (g.rows * g.cols == 0) continue;
      const int64_t b_size = b_mode == Broadcast::full ? g.rows * g.cols
                           : b_mode == Broadcast::row  ? g.cols
                           : b_mode == Broadcast::col  ? g.rows
                                                       : 1;
      const Tensor a(const_cast<void*>(g.a), Shape{g.rows, g.cols}, dtype, device());
      const Tensor b(const_cast<void*>(g.b), Shape{b_size}, dtype, device());
      Tensor out(g.out, Shape{g.rows, g.cols}, dtype, device());
      map(op, a, g.b ? &b : nullptr, b_mode, c, alpha, beta, out);
    }
  }
  virtual void reduce_rows_grouped(Reduce kind, const std::vector<RowsGroup>& groups, double alpha, double beta,
                                   DType dtype) {
    for (const RowsGroup& g : groups) {
      if (g.rows == 0) continue;
      Tensor out(g.out, Shape{g.rows, 1}, dtype, device());
      if (g.cols == 0) {  // rows of no columns reduce to 0
        scale_output(out, beta);
        continue;
      }
      const Tensor a(const_cast<void*>(g.a), Shape{g.rows, g.cols}, dtype, device());
      const Tensor b(const_cast<void*>(g.b), Shape{g.rows, g.cols}, dtype, device());
      reduce_rows(kind, a, g.b ? &b : nullptr, alpha, beta, out);
    }
  }
  virtual void softmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) {
    for (const RowsGroup& g : groups) {
      if (g.rows * g.cols == 0) continue;
      const Tensor x(const_cast<void*>(g.a), Shape{g.rows, g.cols}, dtype, device());
      Tensor y(g.out, Shape{g.rows, g.cols}, dtype, device());
      softmax_rows_forward(x, y);
    }
  }

  // ---- sparse x dense -----------------------------------------------------------------------
  // Y [A.rows, F] = alpha * A X + beta * Y, X [A.cols, F].
  virtual void spmm(const Csr& a, const Tensor& x, double alpha, double beta, Tensor& y) = 0;
  // The same for every group (one graph's sparse block each, per-graph pooling), by default one
  // spmm per group with rows and columns; the CUDA backend launches once per chunk of groups.
  // The groups' outputs must not overlap. (Inline for the reason given at gemm_grouped.)
  virtual void spmm_grouped(const std::vector<SpmmGroup>& groups, double alpha, double beta, DType dtype) {
    for (const SpmmGroup& g : groups) {
      if (g.a->rows == 0 || g.cols == 0) continue;
      const Tensor x(const_cast<void*>(g.x), Shape{g.a->cols, g.cols}, dtype, device());
      Tensor y(g.y, Shape{g.a->rows, g.cols}, dtype, device());
      spmm(*g.a, x, alpha, beta, y);
    }
  }

  // ---- elementwise --------------------------------------------------------------------------
  // out = alpha * f(a, b) + beta * out over out's matrix view (a has out's shape).
  virtual void map(MapOp op, const Tensor& a, const Tensor* b, Broadcast b_mode, double c,
                   double alpha, double beta, Tensor& out) = 0;
  // out [rows] = alpha * reduce over each row + beta * out (kind sum, dot or max).
  virtual void reduce_rows(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta,
                           Tensor& out) = 0;
  // out [cols] = alpha * reduce over each column + beta * out (kind sum or dot).
  virtual void reduce_cols(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta,
                           Tensor& out) = 0;
  // out [1] = alpha * reduce over all elements + beta * out (kind sum or dot).
  virtual void reduce_all(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta,
                          Tensor& out) = 0;

  // ---- graphs -------------------------------------------------------------------------------
  // Segments are row ranges [offsets[s], offsets[s+1]) of x; offsets is i32 [S + 1] on the device.
  // y [S, F] = reduce over each segment's rows (an empty segment gives 0). For max, argmax
  // (i32 [S, F]) receives the winning row (-1 for an empty segment).
  virtual void segment_reduce_forward(SegmentReduce kind, const Tensor& x, const Tensor& offsets,
                                      Tensor& y, Tensor* argmax) = 0;
  virtual void segment_reduce_backward(SegmentReduce kind, const Tensor& dy, const Tensor& offsets,
                                       const Tensor* argmax, Tensor& dx) = 0;
  // The authors' link-prediction loss: binary cross-entropy between the adjacency A and
  // P = min(S S^T, 1) over every pair of rows of the same segment (graph), with P recomputed
  // row by row and never stored (O(n^2 k) work per graph of n rows, O(1) extra memory):
  //   loss[i] = -sum_{j in seg(i)} [A_ij log(P_ij + eps) + (1 - A_ij) log(1 - P_ij + eps)]
  // s [N, K]; a: block-diagonal [N, N] whose sorted pattern is A (values unused); loss [N, 1].
  virtual void link_bce_forward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, Tensor& loss) = 0;
  // The gradient of sum_i w_i loss[i]:
  //   ds_i = beta ds_i + sum_{j in seg(i)} (w_i l'(P_ij, A_ij) + w_j l'(P_ij, A_ji)) s_j,
  //   l'(P, a) = [P < 1] ((1 - a) / (1 - P + eps) - a / (P + eps)); w [N, 1].
  virtual void link_bce_backward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, const Tensor& w,
                                 double beta, Tensor& ds) = 0;

  // ---- fused row and column operations --------------------------------------------------------
  // y = softmax over each row of x; backward dx = beta dx + y * (dy - rowsum(dy * y)).
  // The backwards here take beta 0 (dx is overwritten, never read: a new gradient needs no zero
  // fill first) or 1 (they add to dx).
  virtual void softmax_rows_forward(const Tensor& x, Tensor& y) = 0;
  virtual void softmax_rows_backward(const Tensor& dy, const Tensor& y, double beta, Tensor& dx) = 0;
  // y = x / max(||x||_2, eps) per row, norms [rows] = ||x||_2; with relu_out (the GraphSAGE
  // layer's normalisation and ReLU in one pass) also relu_out = max(y, 0), y kept for the backward.
  // The backward's dy is the gradient of y, or with relu that of max(y, 0), masked by y > 0 first.
  virtual void l2_normalize_rows_forward(const Tensor& x, double eps, Tensor& y, Tensor& norms,
                                         Tensor* relu_out) = 0;
  virtual void l2_normalize_rows_backward(const Tensor& dy, const Tensor& y, const Tensor& norms,
                                          double eps, bool relu, double beta, Tensor& dx) = 0;
  // Batch normalisation over rows, per column. Training: batch statistics (biased variance) are
  // used and saved (mean, invstd), and running statistics are updated with `momentum` using the
  // unbiased variance (as torch.nn.BatchNorm1d). Evaluation: running statistics are used.
  virtual void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  bool training, double momentum, double eps, Tensor& running_mean,
                                  Tensor& running_var, Tensor& y, Tensor& mean, Tensor& invstd) = 0;
  // Training-mode backward: dx = beta dx + its gradient (beta 0 or 1); dgamma, dbeta accumulate.
  virtual void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                   const Tensor& mean, const Tensor& invstd, double beta, Tensor& dx,
                                   Tensor& dgamma, Tensor& dbeta) = 0;
  // losses [B] = -log softmax(logits)[label] per row; probs [B, C] = softmax(logits).
  virtual void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& probs,
                                     Tensor& losses) = 0;
  // dlogits += dlosses[b] * (probs[b] - onehot(label[b])).
  virtual void cross_entropy_backward(const Tensor& probs, const Tensor& labels,
                                      const Tensor& dlosses, Tensor& dlogits) = 0;
  // count [1] += number of rows whose argmax equals the label (first maximum wins).
  virtual void count_correct(const Tensor& logits, const Tensor& labels, Tensor& count) = 0;
  // predictions i32 [rows] = argmax of each row (first maximum wins).
  virtual void argmax_rows(const Tensor& x, Tensor& predictions) = 0;
  // argmax_rows over many blocks at once (per-graph pooling's [n_g, k_g] assignment blocks): a
  // group's a is its [rows, cols] block of `dtype`, its out i32 [rows]. Groups of no elements are
  // skipped (their out is left as it is). By default one argmax_rows per group; the CUDA backend
  // launches once per chunk of groups. (Inline for the reason given at gemm_grouped.)
  virtual void argmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) {
    for (const RowsGroup& g : groups) {
      if (g.rows * g.cols == 0) continue;
      const Tensor x(const_cast<void*>(g.a), Shape{g.rows, g.cols}, dtype, device());
      Tensor predictions(g.out, Shape{g.rows}, DType::i32, device());
      argmax_rows(x, predictions);
    }
  }
  // y = beta * y + x * keep(seed, i) / (1 - p): inverted dropout with a counter-based mask, the
  // same on every backend for the same seed (see engine/core/random.hpp). Used for backward too.
  virtual void dropout(const Tensor& x, double p, uint64_t seed, double beta, Tensor& y) = 0;

  // ---- optimiser ------------------------------------------------------------------------------
  // One Adam step over flat arenas of n elements; the gradient is multiplied by grad_scale[0]
  // (a device scalar, for norm clipping) before use. `step` counts from 1.
  virtual void adam_step(const AdamSettings& settings, int64_t step, const Tensor& grad_scale,
                         Tensor& params, const Tensor& grads, Tensor& m, Tensor& v) = 0;

  virtual void synchronize() = 0;

  // ---- steps ----------------------------------------------------------------------------------
  // The work of one training or evaluation step (a batch's upload, forward, backward, optimiser),
  // issued between begin_step and end_step, which the backend may record and submit as one unit:
  // the CUDA backend captures it into a CUDA graph and launches that (engine/backend/cuda/
  // README.md, "Steps as CUDA graphs"). Host reads of device memory and synchronize() inside a
  // step stay correct (the work recorded so far is submitted first). abandon_step ends a step
  // whose work is not to run (an exception left it half issued). Pairs, never nested; use
  // StepScope. The CPU backend runs everything as it is issued: these do nothing.
  virtual void begin_step() {}
  virtual void end_step() {}
  virtual void abandon_step() noexcept {}
  // One line on how the backend has run the steps so far (the CUDA backend: its CUDA graphs
  // launched, updated and instantiated), for benchmarks; empty where there is nothing to say.
  virtual std::string step_statistics() const { return {}; }

 protected:
  // out = beta out (beta 0 writes zeros, whatever out held): a reduction over nothing.
  void scale_output(Tensor& out, double beta) {
    if (beta == 0) fill(out, 0.0);
    else map(MapOp::copy, out, nullptr, Broadcast::full, 0, beta, 0.0, out);
  }

  MatmulPrecision matmul_precision_ = MatmulPrecision::fp32;
};

// One step (Backend::begin_step): begun at construction; end() submits it; a scope left without
// end() (an exception) abandons it.
class StepScope {
 public:
  explicit StepScope(Backend& backend) : backend_(backend) { backend_.begin_step(); }
  ~StepScope() {
    if (!ended_) backend_.abandon_step();
  }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;
  void end() {
    ended_ = true;
    backend_.end_step();
  }

 private:
  Backend& backend_;
  bool ended_ = false;
};

enum class BackendKind : uint8_t { cpu, cuda, automatic };
template <class E> class EnumNames;  // engine/core/setting.hpp
const EnumNames<BackendKind>& backend_kind_names();  // "gpu" is accepted for cuda
const char* backend_kind_name(BackendKind kind);
BackendKind parse_backend_kind(const std::string& text);  // "cpu", "cuda", "auto"
const EnumNames<MatmulPrecision>& matmul_precision_names();  // "fp32", "tf32"
const char* matmul_precision_name(MatmulPrecision precision);

// Transparent huge pages (2 MiB) for the CPU backend's large allocations, the step workspace
// above all: its products read operands spread over hundreds of MiB, and with 4 KiB pages every
// one of them costs page walks. `automatic` asks for them for allocations of kHugePagesAutoBytes and
// more, `on` for every allocation of 2 MiB and more, `off` never. The kernel decides
// (/sys/kernel/mm/transparent_hugepage/enabled: `madvise` honours the request, `always` gives them
// whatever is asked, `never` refuses); results are bit-identical either way (docs/PERFORMANCE.md,
// "Huge pages for the step workspace").
enum class HugePages : uint8_t { automatic, on, off };
inline constexpr std::size_t kHugePagesAutoBytes = std::size_t{128} << 20;
const EnumNames<HugePages>& huge_pages_names();  // "auto", "on", "off"

struct BackendOptions {
  BackendKind kind = BackendKind::cpu;
  int cpu_threads = 1;   // BLAS threads per process
  HugePages huge_pages = HugePages::automatic;  // CPU backend only
  int cuda_device = -1;  // -1: chosen by node-local rank (see runner)
  int heartbeat_seconds = 60;  // the task farm's silence limit between ranks (runner/task_farm.hpp)
  MatmulPrecision matmul_precision = MatmulPrecision::fp32;  // f32 products (see MatmulPrecision)
};

// Creates the backend. Throws a clear error when CUDA is asked for and is not built or no GPU is
// present; `automatic` picks CUDA when a GPU is usable, else the CPU.
std::unique_ptr<Backend> make_backend(const BackendOptions& options);
// Which compilation of the CPU backend's own loops (not OpenBLAS's) a CPU backend runs: the
// x86-64 baseline's (SSE2), or the AVX2 one (docs/PERFORMANCE.md, "AVX2 loops"). Both give
// bit-identical results. `automatic`: the environment's DIFFPOOL_CPU_LOOPS (auto, baseline, avx2)
// when set, else AVX2 where the CPU runs it.
enum class CpuLoops { automatic, baseline, avx2 };
// Throws InputError for DIFFPOOL_CPU_LOOPS with another value, or avx2 where it cannot run.
std::unique_ptr<Backend> make_cpu_backend(int threads, HugePages huge_pages = HugePages::automatic,
                                          CpuLoops loops = CpuLoops::automatic);
// Whether this CPU (and its OS) runs AVX2.
bool cpu_has_avx2();
// The kernels OpenBLAS chose for this process ("Haswell", "SkylakeX", "Cooperlake", ...): it picks
// them once, when the library is loaded, from the CPU or from OPENBLAS_CORETYPE.
std::string blas_kernels();
// A note for the user when those kernels leave the CPU's AVX-512 unused (OPENBLAS_CORETYPE set to
// an AVX2 core, or an OpenBLAS older than the CPU); empty otherwise. The second form decides from
// its arguments: whether the CPU has AVX-512 (F, BW, DQ, VL), the kernels' name, and the value
// of OPENBLAS_CORETYPE (nullptr: not set).
std::string blas_kernel_advice();
// Whether this CPU (and its OS) runs AVX-512 F, BW, DQ and VL: what OpenBLAS's SkylakeX kernels need.
bool cpu_has_avx512();
std::string blas_kernel_advice(bool cpu_has_avx512, const std::string& kernels, const char* coretype_variable);
bool cuda_backend_built();
int cuda_device_count();  // 0 when not built, the module cannot be loaded, or no device
// Why the CUDA backend module (libdiffpool_cuda.so, loaded on first use) cannot be loaded, naming
// the file or library missing; empty when it loads or the build has no CUDA backend.
std::string cuda_module_problem();
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace diffpool

namespace diffpool {

// ---- owned tensors and host transfers (helpers over the primitives above) --------------------
// A tensor that owns memory on the backend's device (freed when the last copy goes).
Tensor allocate_tensor(Backend& backend, Shape shape, DType dtype);
// Copies host data into a new owned tensor on the backend's device.
template <class T> Tensor upload(Backend& backend, const T* data, Shape shape);
template <class T> Tensor upload(Backend& backend, const std::vector<T>& data, Shape shape) {
  return upload<T>(backend, data.data(), shape);
}
// Copies a tensor's elements to the host.
template <class T> std::vector<T> download(Backend& backend, const Tensor& tensor);
// Host values into an existing f32 or f64 tensor on the device, converted to its dtype (each
// value rounded once, as static_cast does): the one place a host double becomes a device float.
// Takes any DeviceMemory, so a Workspace's backend() will do.
void upload_converted(DeviceMemory& memory, const std::vector<double>& host, Tensor& dst);
// An f32 or f64 tensor's elements to the host as T (float or double), whatever its dtype.
template <class T> std::vector<T> download_converted(Backend& backend, const Tensor& tensor);
// Copies src into dst (same dtype and size), on the backend's device.
void copy_tensor(Backend& backend, const Tensor& src, Tensor& dst);
// Reads one element (index into the flat data) to the host as double.
double read_scalar(Backend& backend, const Tensor& tensor, int64_t index = 0);

}  // namespace diffpool
