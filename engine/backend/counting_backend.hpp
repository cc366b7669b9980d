#pragma once
// A backend that forwards every primitive to another backend and counts the floating-point work
// of the matrix products it was asked for, from the real shapes of each call. With execute =
// false it counts without computing: allocation and host <-> device copies still run (a batch is
// uploaded, its offsets can be read back), every other primitive, fills included, returns at once and
// leaves its output as it was, so a model's forward and backward passes can be priced from the real
// shapes in a fraction of their time and memory (engine/train/cost.hpp).
//
//
//   gemm            2 m n k            (one multiply and one add per term)
//   batched gemm    2 m n k * batch
//   spmm            2 nnz F            (sparse A [rows, cols] with nnz entries times X [cols, F])
//   link_bce        2 n^2 k per graph  (P = S S^T recomputed row by row: forward once, backward
//                                       twice, the s_i.s_j dot products and the sum over j)
//
// Elementwise maps, reductions, softmax, normalisation and the optimiser are not counted: they are
// O(size) passes, and "matrix-product FLOPs" is the figure a SGEMM rate is measured in. Used by the
// epoch benchmark (tests/bench/bench_epoch.cpp) to report the achieved GFLOP/s, and by the tests
// of the cost model (engine/nn/cost.hpp), which must predict these counts.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/backend.hpp"

namespace diffpool {

struct ProductFlops {
  double gemm = 0;     // single gemm calls
  double batched = 0;  // strided-batched gemm calls
  double sparse = 0;   // CSR sparse x dense
  double pairwise = 0; // the binary cross-entropy link loss's S S^T, row by row
  double total() const { return gemm + batched + sparse + pairwise; }
};

class CountingBackend final : public Backend {
 public:
  CountingBackend(Backend& inner, bool execute = true) : inner_(inner), execute_(execute) {
    matmul_precision_ = inner.matmul_precision();
  }

  const ProductFlops& flops() const { return flops_; }
  void reset() { flops_ = ProductFlops{}; }
  Backend& inner() { return inner_; }

  void set_matmul_precision(MatmulPrecision precision) override {
    Backend::set_matmul_precision(precision);
    inner_.set_matmul_precision(precision);
  }
  Device device() const override { return inner_.device(); }
  std::string name() const override { return inner_.name(); }
  void* allocate(std::size_t bytes) override { return inner_.allocate(bytes); }
  void deallocate(void* ptr) noexcept override { inner_.deallocate(ptr); }
  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) override {
    inner_.copy_bytes(dst, dst_device, src, src_device, bytes);
  }
  void* staging_buffer(std::size_t bytes) override { return inner_.staging_buffer(bytes); }
  void fill(Tensor& out, double value) override {
    if (execute_) inner_.fill(out, value);
  }
  void copy_2d(int64_t rows, int64_t cols, DType dtype, const void* src, int64_t src_ld, void* dst, int64_t dst_ld,
               double alpha, double beta) override {
    if (execute_) inner_.copy_2d(rows, cols, dtype, src, src_ld, dst, dst_ld, alpha, beta);
  }

  void gemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a, int64_t lda,
            const void* b, int64_t ldb, double beta, void* c, int64_t ldc, DType dtype) override {
    flops_.gemm += 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    if (execute_) inner_.gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, dtype);
  }
  void gemm_strided_batched(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
                            int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta,
                            void* c, int64_t ldc, int64_t stride_c, int64_t batch, DType dtype) override {
    flops_.batched += 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) *
                      static_cast<double>(batch);
    if (execute_) inner_.gemm_strided_batched(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                                stride_c, batch, dtype);
  }
  void gemm_grouped(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha, double beta,
                    DType dtype) override {
    for (const GemmGroup& g : groups)
      flops_.gemm += 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
    if (execute_) inner_.gemm_grouped(trans_a, trans_b, groups, alpha, beta, dtype);
  }
  void gemm_grouped_sum(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha,
                        DType dtype) override {
    for (const GemmGroup& g : groups)
      flops_.gemm += 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
    if (execute_) inner_.gemm_grouped_sum(trans_a, trans_b, groups, alpha, dtype);
  }
  void gemm_sum_from_row(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, const void* start,
                         double alpha, DType dtype) override {
    for (const GemmGroup& g : groups)
      flops_.gemm += 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
    if (execute_) inner_.gemm_sum_from_row(trans_a, trans_b, groups, start, alpha, dtype);
  }
  void weight_gradients(const std::vector<GemmGroup>& terms, double beta, const RowsGroup* bias, double bias_beta,
                        DType dtype) override {
    for (const GemmGroup& g : terms)
      flops_.gemm += 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
    if (execute_) inner_.weight_gradients(terms, beta, bias, bias_beta, dtype);
  }
  void reduce_cols_grouped_sum(const std::vector<RowsGroup>& groups, double alpha, DType dtype) override {
    if (execute_) inner_.reduce_cols_grouped_sum(groups, alpha, dtype);
  }
  void dot_grouped(const std::vector<DotGroup>& groups, double alpha, double beta, DType dtype) override {
    if (execute_) inner_.dot_grouped(groups, alpha, beta, dtype);
  }
  void spmm_grouped(const std::vector<SpmmGroup>& groups, double alpha, double beta, DType dtype) override {
    for (const SpmmGroup& g : groups) flops_.sparse += 2.0 * static_cast<double>(g.a->nnz) * static_cast<double>(g.cols);
    if (execute_) inner_.spmm_grouped(groups, alpha, beta, dtype);
  }
  void map_grouped(MapOp op, const std::vector<RowsGroup>& groups, Broadcast b_mode, double c, double alpha, double beta,
                   DType dtype) override {
    if (execute_) inner_.map_grouped(op, groups, b_mode, c, alpha, beta, dtype);
  }
  void reduce_rows_grouped(Reduce kind, const std::vector<RowsGroup>& groups, double alpha, double beta,
                           DType dtype) override {
    if (execute_) inner_.reduce_rows_grouped(kind, groups, alpha, beta, dtype);
  }
  void softmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) override {
    if (execute_) inner_.softmax_rows_grouped(groups, dtype);
  }
  void spmm(const Csr& a, const Tensor& x, double alpha, double beta, Tensor& y) override {
    flops_.sparse += 2.0 * static_cast<double>(a.nnz) * static_cast<double>(x.cols());
    if (execute_) inner_.spmm(a, x, alpha, beta, y);
  }

  void map(MapOp op, const Tensor& a, const Tensor* b, Broadcast b_mode, double c, double alpha, double beta,
           Tensor& out) override {
    if (execute_) inner_.map(op, a, b, b_mode, c, alpha, beta, out);
  }
  void reduce_rows(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    if (execute_) inner_.reduce_rows(kind, a, b, alpha, beta, out);
  }
  void reduce_cols(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    if (execute_) inner_.reduce_cols(kind, a, b, alpha, beta, out);
  }
  void reduce_all(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    if (execute_) inner_.reduce_all(kind, a, b, alpha, beta, out);
  }

  void segment_reduce_forward(SegmentReduce kind, const Tensor& x, const Tensor& offsets, Tensor& y,
                              Tensor* argmax) override {
    if (execute_) inner_.segment_reduce_forward(kind, x, offsets, y, argmax);
  }
  void segment_reduce_backward(SegmentReduce kind, const Tensor& dy, const Tensor& offsets, const Tensor* argmax,
                               Tensor& dx) override {
    if (execute_) inner_.segment_reduce_backward(kind, dy, offsets, argmax, dx);
  }
  void link_bce_forward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, Tensor& loss) override {
    flops_.pairwise += pairwise_flops(s, offsets);
    if (execute_) inner_.link_bce_forward(s, a, offsets, eps, loss);
  }
  void link_bce_backward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, const Tensor& w,
                         double beta, Tensor& ds) override {
    flops_.pairwise += 2.0 * pairwise_flops(s, offsets);
    if (execute_) inner_.link_bce_backward(s, a, offsets, eps, w, beta, ds);
  }

  void softmax_rows_forward(const Tensor& x, Tensor& y) override {
    if (execute_) inner_.softmax_rows_forward(x, y);
  }
  void softmax_rows_backward(const Tensor& dy, const Tensor& y, double beta, Tensor& dx) override {
    if (execute_) inner_.softmax_rows_backward(dy, y, beta, dx);
  }
  void l2_normalize_rows_forward(const Tensor& x, double eps, Tensor& y, Tensor& norms, Tensor* relu_out) override {
    if (execute_) inner_.l2_normalize_rows_forward(x, eps, y, norms, relu_out);
  }
  void l2_normalize_rows_backward(const Tensor& dy, const Tensor& y, const Tensor& norms, double eps, bool relu,
                                  double beta, Tensor& dx) override {
    if (execute_) inner_.l2_normalize_rows_backward(dy, y, norms, eps, relu, beta, dx);
  }
  void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, bool training, double momentum,
                          double eps, Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean,
                          Tensor& invstd) override {
    if (execute_) inner_.batch_norm_forward(x, gamma, beta, training, momentum, eps, running_mean, running_var, y, mean, invstd);
  }
  void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& invstd, double beta, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override {
    if (execute_) inner_.batch_norm_backward(dy, x, gamma, mean, invstd, beta, dx, dgamma, dbeta);
  }
  void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& losses) override {
    if (execute_) inner_.cross_entropy_forward(logits, labels, probs, losses);
  }
  void cross_entropy_backward(const Tensor& probs, const Tensor& labels, const Tensor& dlosses,
                              Tensor& dlogits) override {
    if (execute_) inner_.cross_entropy_backward(probs, labels, dlosses, dlogits);
  }
  void count_correct(const Tensor& logits, const Tensor& labels, Tensor& count) override {
    if (execute_) inner_.count_correct(logits, labels, count);
  }
  void argmax_rows(const Tensor& x, Tensor& predictions) override {
    if (execute_) inner_.argmax_rows(x, predictions);
  }
  void argmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) override {
    if (execute_) inner_.argmax_rows_grouped(groups, dtype);
  }
  void dropout(const Tensor& x, double p, uint64_t seed, double beta, Tensor& y) override {
    if (execute_) inner_.dropout(x, p, seed, beta, y);
  }
  void adam_step(const AdamSettings& settings, int64_t step, const Tensor& grad_scale, Tensor& params,
                 const Tensor& grads, Tensor& m, Tensor& v) override {
    if (execute_) inner_.adam_step(settings, step, grad_scale, params, grads, m, v);
  }
  void synchronize() override { inner_.synchronize(); }
  // A step goes on to the wrapped backend whole (the CUDA backend's step as one CUDA graph).
  void begin_step() override {
    if (execute_) inner_.begin_step();
  }
  void end_step() override {
    if (execute_) inner_.end_step();
  }
  void abandon_step() noexcept override {
    if (execute_) inner_.abandon_step();
  }
  std::string step_statistics() const override { return inner_.step_statistics(); }

 private:
  // 2 n^2 k summed over the segments (graphs) of s [N, K]; offsets i32 [S + 1] on the device.
  double pairwise_flops(const Tensor& s, const Tensor& offsets) {
    const std::vector<int32_t> off = download<int32_t>(inner_, offsets);
    double sum = 0;
    for (std::size_t g = 0; g + 1 < off.size(); ++g) {
      const double n = static_cast<double>(off[g + 1] - off[g]);
      sum += 2.0 * n * n * static_cast<double>(s.cols());
    }
    return sum;
  }

  Backend& inner_;
  bool execute_;
  ProductFlops flops_;
};

}  // namespace diffpool
