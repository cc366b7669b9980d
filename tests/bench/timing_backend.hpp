#pragma once
// A backend that forwards every primitive to another backend and times each call, keyed by the
// primitive and the shape it ran on (`bench_epoch --profile`): where an epoch's time goes, call by
// call, with the number of calls per epoch. The time is the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID), so a loaded machine, where the process waits for a core, does not
// inflate it; reading that clock costs a few hundred ns per call (about 2 ms of a 35 ms ENZYMES
// epoch), so compare calls with each other, not the profiled epoch with an unprofiled one.
//
//   key                                what it names
//   gemm nt ~600x60x30 b1               op(A) op(B): m x n x k, transposes, beta (0 or 1)
//   gemm_batched nn 13x30x13 x20       the same per product, times the batch
//   spmm ~600x30 b0                    A [rows, cols] X [cols, F]: rows x F, beta
//   (counts of 100 and more are rounded down to hundreds, ~600: batches differ in their node rows)
//   map relu ~600x30 b0                 the MapOp, out's rows x cols, beta
//   batch_norm_forward ~600x30         the others: their first tensor's rows x cols
#include <fmt/format.h>

#include <time.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/backend/backend.hpp"

namespace diffpool::bench {

class TimingBackend final : public Backend {
 public:
  struct Stat {
    int64_t calls = 0;
    double seconds = 0;
  };

  // The exact shape of a dense product (`bench_epoch --ceiling` times each one alone).
  struct GemmShape {
    Trans trans_a, trans_b;
    int64_t m, n, k, batch;
    double beta;
    DType dtype;
    auto tie() const { return std::tie(trans_a, trans_b, m, n, k, batch, beta, dtype); }
    bool operator<(const GemmShape& o) const { return tie() < o.tie(); }
  };

  explicit TimingBackend(Backend& inner) : inner_(inner) { matmul_precision_ = inner.matmul_precision(); }
  void set_matmul_precision(MatmulPrecision precision) override {
    Backend::set_matmul_precision(precision);
    inner_.set_matmul_precision(precision);
  }

  const std::map<std::string, Stat>& stats() const { return stats_; }
  // Calls of every dense product shape since the last reset (batched products: batch > 1).
  const std::map<GemmShape, int64_t>& gemm_shapes() const { return gemm_shapes_; }
  void reset() {
    stats_.clear();
    gemm_shapes_.clear();
  }

  // The calls sorted by time, one line each, with the share of `total_seconds`, per `epochs`.
  std::string report(double total_seconds, int epochs) const {
    std::vector<std::pair<std::string, Stat>> rows(stats_.begin(), stats_.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    std::map<std::string, Stat> by_primitive;
    for (const auto& [key, stat] : rows) {
      Stat& s = by_primitive[key.substr(0, key.find(' '))];
      s.calls += stat.calls;
      s.seconds += stat.seconds;
    }
    std::vector<std::pair<std::string, Stat>> prims(by_primitive.begin(), by_primitive.end());
    std::sort(prims.begin(), prims.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    const double e = std::max(1, epochs);
    std::string out = fmt::format("profile: {:.2f} ms of CPU time per epoch in primitives\n", total_seconds / e * 1e3);
    out += fmt::format("{:<24} {:>12} {:>10} {:>7}\n", "primitive", "calls/epoch", "ms/epoch", "share");
    for (const auto& [key, s] : prims)
      out += fmt::format("{:<24} {:>12.0f} {:>10.3f} {:>6.1f}%\n", key, s.calls / e, s.seconds / e * 1e3,
                         100.0 * s.seconds / total_seconds);
    out += fmt::format("\n{:<44} {:>12} {:>10} {:>7} {:>9}\n", "call (shape)", "calls/epoch", "ms/epoch", "share", "us/call");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& [key, s] = rows[i];
      out += fmt::format("{:<44} {:>12.0f} {:>10.3f} {:>6.1f}% {:>9.2f}\n", key, s.calls / e, s.seconds / e * 1e3,
                         100.0 * s.seconds / total_seconds, s.seconds / static_cast<double>(s.calls) * 1e6);
    }
    return out;
  }
  double total_seconds() const {
    double t = 0;
    for (const auto& [key, s] : stats_) t += s.seconds;
    return t;
  }

  Device device() const override { return inner_.device(); }
  std::string name() const override { return inner_.name(); }
  void* allocate(std::size_t bytes) override { return inner_.allocate(bytes); }
  void deallocate(void* ptr) noexcept override { inner_.deallocate(ptr); }
  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) override {
    timed(fmt::format("copy_bytes {}", bytes), [&] { inner_.copy_bytes(dst, dst_device, src, src_device, bytes); });
  }
  void* staging_buffer(std::size_t bytes) override { return inner_.staging_buffer(bytes); }
  void fill(Tensor& out, double value) override { timed("fill " + shape(out), [&] { inner_.fill(out, value); }); }
  void copy_2d(int64_t rows, int64_t cols, DType dtype, const void* src, int64_t src_ld, void* dst, int64_t dst_ld,
               double alpha, double beta) override {
    timed(fmt::format("copy_2d {}x{} ld{}->{} b{}", rounded(rows), cols, src_ld, dst_ld, beta),
          [&] { inner_.copy_2d(rows, cols, dtype, src, src_ld, dst, dst_ld, alpha, beta); });
  }
  void gemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a, int64_t lda,
            const void* b, int64_t ldb, double beta, void* c, int64_t ldc, DType dtype) override {
    ++gemm_shapes_[GemmShape{trans_a, trans_b, m, n, k, 1, beta, dtype}];
    timed(fmt::format("gemm {}{} {}x{}x{} b{}", t(trans_a), t(trans_b), rounded(m), rounded(n), rounded(k), beta),
          [&] { inner_.gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, dtype); });
  }
  void gemm_strided_batched(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
                            int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta,
                            void* c, int64_t ldc, int64_t stride_c, int64_t batch, DType dtype) override {
    ++gemm_shapes_[GemmShape{trans_a, trans_b, m, n, k, batch, beta, dtype}];
    timed(fmt::format("gemm_batched {}{} {}x{}x{} x{} b{}", t(trans_a), t(trans_b), m, n, k, batch, beta), [&] {
      inner_.gemm_strided_batched(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                                  stride_c, batch, dtype);
    });
  }
  void gemm_grouped(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha, double beta,
                    DType dtype) override {
    int64_t m = 0, n = 0, k = 0;
    for (const GemmGroup& g : groups) {
      ++gemm_shapes_[GemmShape{trans_a, trans_b, g.m, g.n, g.k, 1, beta, dtype}];
      m = std::max(m, g.m), n = std::max(n, g.n), k = std::max(k, g.k);
    }
    timed(fmt::format("gemm_grouped {}{} up to {}x{}x{} x{} b{}", t(trans_a), t(trans_b), rounded(m), rounded(n),
                      rounded(k), groups.size(), beta),
          [&] { inner_.gemm_grouped(trans_a, trans_b, groups, alpha, beta, dtype); });
  }
  void gemm_grouped_sum(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha,
                        DType dtype) override {
    int64_t m = 0, n = 0, k = 0;
    for (const GemmGroup& g : groups) {
      ++gemm_shapes_[GemmShape{trans_a, trans_b, g.m, g.n, g.k, 1, 1.0, dtype}];
      m = std::max(m, g.m), n = std::max(n, g.n), k = std::max(k, g.k);
    }
    timed(fmt::format("gemm_grouped_sum {}{} up to {}x{}x{} x{}", t(trans_a), t(trans_b), rounded(m), rounded(n),
                      rounded(k), groups.size()),
          [&] { inner_.gemm_grouped_sum(trans_a, trans_b, groups, alpha, dtype); });
  }
  void gemm_sum_from_row(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, const void* start,
                         double alpha, DType dtype) override {
    int64_t m = 0, n = 0, k = 0;
    for (const GemmGroup& g : groups) {  // beta as the default implementation's gemm calls have it
      ++gemm_shapes_[GemmShape{trans_a, trans_b, g.m, g.n, g.k, 1, start || &g != &groups.front() ? 1.0 : 0.0, dtype}];
      m = std::max(m, g.m), n = std::max(n, g.n), k = std::max(k, g.k);
    }
    timed(fmt::format("gemm_sum_from_row {}{} {}x{} up to k {} x{}{}", t(trans_a), t(trans_b), rounded(m), rounded(n),
                      rounded(k), groups.size(), start ? " with bias" : ""),
          [&] { inner_.gemm_sum_from_row(trans_a, trans_b, groups, start, alpha, dtype); });
  }
  void weight_gradients(const std::vector<GemmGroup>& terms, double beta, const RowsGroup* bias, double bias_beta,
                        DType dtype) override {
    int64_t m = 0, n = 0, k = 0;
    for (const GemmGroup& g : terms) {
      ++gemm_shapes_[GemmShape{Trans::yes, Trans::no, g.m, g.n, g.k, 1, beta, dtype}];
      m = std::max(m, g.m), n = std::max(n, g.n), k = std::max(k, g.k);
    }
    timed(fmt::format("weight_gradients tn up to {}x{}x{} x{}{}", rounded(m), rounded(n), rounded(k), terms.size(),
                      bias ? " with bias" : ""),
          [&] { inner_.weight_gradients(terms, beta, bias, bias_beta, dtype); });
  }
  void reduce_cols_grouped_sum(const std::vector<RowsGroup>& groups, double alpha, DType dtype) override {
    timed(fmt::format("reduce_cols_grouped_sum x{}", groups.size()),
          [&] { inner_.reduce_cols_grouped_sum(groups, alpha, dtype); });
  }
  void dot_grouped(const std::vector<DotGroup>& groups, double alpha, double beta, DType dtype) override {
    timed(fmt::format("dot_grouped x{}", groups.size()), [&] { inner_.dot_grouped(groups, alpha, beta, dtype); });
  }
  void spmm_grouped(const std::vector<SpmmGroup>& groups, double alpha, double beta, DType dtype) override {
    timed(fmt::format("spmm_grouped x{} b{}", groups.size(), beta), [&] { inner_.spmm_grouped(groups, alpha, beta, dtype); });
  }
  void map_grouped(MapOp op, const std::vector<RowsGroup>& groups, Broadcast b_mode, double c, double alpha, double beta,
                   DType dtype) override {
    timed(fmt::format("map_grouped {} x{} b{}", map_op_name(op), groups.size(), beta),
          [&] { inner_.map_grouped(op, groups, b_mode, c, alpha, beta, dtype); });
  }
  void reduce_rows_grouped(Reduce kind, const std::vector<RowsGroup>& groups, double alpha, double beta,
                           DType dtype) override {
    timed(fmt::format("reduce_rows_grouped x{}", groups.size()),
          [&] { inner_.reduce_rows_grouped(kind, groups, alpha, beta, dtype); });
  }
  void softmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) override {
    timed(fmt::format("softmax_rows_grouped x{}", groups.size()), [&] { inner_.softmax_rows_grouped(groups, dtype); });
  }

  void spmm(const Csr& a, const Tensor& x, double alpha, double beta, Tensor& y) override {
    timed(fmt::format("spmm {}x{} b{}", rounded(a.rows), x.cols(), beta),
          [&] { inner_.spmm(a, x, alpha, beta, y); });
  }
  void map(MapOp op, const Tensor& a, const Tensor* b, Broadcast b_mode, double c, double alpha, double beta,
           Tensor& out) override {
    timed(fmt::format("map {} {} b{}", map_op_name(op), shape(out), beta),
          [&] { inner_.map(op, a, b, b_mode, c, alpha, beta, out); });
  }
  void reduce_rows(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    timed("reduce_rows " + shape(a), [&] { inner_.reduce_rows(kind, a, b, alpha, beta, out); });
  }
  void reduce_cols(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    timed("reduce_cols " + shape(a), [&] { inner_.reduce_cols(kind, a, b, alpha, beta, out); });
  }
  void reduce_all(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    timed("reduce_all " + shape(a), [&] { inner_.reduce_all(kind, a, b, alpha, beta, out); });
  }
  void segment_reduce_forward(SegmentReduce kind, const Tensor& x, const Tensor& offsets, Tensor& y,
                              Tensor* argmax) override {
    timed(fmt::format("segment_reduce_forward {} {}", segment_reduce_name(kind), shape(x)),
          [&] { inner_.segment_reduce_forward(kind, x, offsets, y, argmax); });
  }
  void segment_reduce_backward(SegmentReduce kind, const Tensor& dy, const Tensor& offsets, const Tensor* argmax,
                               Tensor& dx) override {
    timed(fmt::format("segment_reduce_backward {} {}", segment_reduce_name(kind), shape(dx)),
          [&] { inner_.segment_reduce_backward(kind, dy, offsets, argmax, dx); });
  }
  void link_bce_forward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, Tensor& loss) override {
    timed("link_bce_forward " + shape(s), [&] { inner_.link_bce_forward(s, a, offsets, eps, loss); });
  }
  void link_bce_backward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, const Tensor& w,
                         double beta, Tensor& ds) override {
    timed("link_bce_backward " + shape(s), [&] { inner_.link_bce_backward(s, a, offsets, eps, w, beta, ds); });
  }
  void softmax_rows_forward(const Tensor& x, Tensor& y) override {
    timed("softmax_rows_forward " + shape(x), [&] { inner_.softmax_rows_forward(x, y); });
  }
  void softmax_rows_backward(const Tensor& dy, const Tensor& y, double beta, Tensor& dx) override {
    timed("softmax_rows_backward " + shape(y), [&] { inner_.softmax_rows_backward(dy, y, beta, dx); });
  }
  void l2_normalize_rows_forward(const Tensor& x, double eps, Tensor& y, Tensor& norms, Tensor* relu_out) override {
    timed(std::string(relu_out ? "l2_normalize_relu_rows_forward " : "l2_normalize_rows_forward ") + shape(x),
          [&] { inner_.l2_normalize_rows_forward(x, eps, y, norms, relu_out); });
  }
  void l2_normalize_rows_backward(const Tensor& dy, const Tensor& y, const Tensor& norms, double eps, bool relu,
                                  double beta, Tensor& dx) override {
    timed(std::string(relu ? "l2_normalize_relu_rows_backward " : "l2_normalize_rows_backward ") + shape(y),
          [&] { inner_.l2_normalize_rows_backward(dy, y, norms, eps, relu, beta, dx); });
  }
  void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, bool training, double momentum,
                          double eps, Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean,
                          Tensor& invstd) override {
    timed("batch_norm_forward " + shape(x), [&] {
      inner_.batch_norm_forward(x, gamma, beta, training, momentum, eps, running_mean, running_var, y, mean, invstd);
    });
  }
  void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& invstd, double beta, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override {
    timed("batch_norm_backward " + shape(x),
          [&] { inner_.batch_norm_backward(dy, x, gamma, mean, invstd, beta, dx, dgamma, dbeta); });
  }
  void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& losses) override {
    timed("cross_entropy_forward " + shape(logits), [&] { inner_.cross_entropy_forward(logits, labels, probs, losses); });
  }
  void cross_entropy_backward(const Tensor& probs, const Tensor& labels, const Tensor& dlosses,
                              Tensor& dlogits) override {
    timed("cross_entropy_backward " + shape(probs),
          [&] { inner_.cross_entropy_backward(probs, labels, dlosses, dlogits); });
  }
  void count_correct(const Tensor& logits, const Tensor& labels, Tensor& count) override {
    timed("count_correct " + shape(logits), [&] { inner_.count_correct(logits, labels, count); });
  }
  void argmax_rows(const Tensor& x, Tensor& predictions) override {
    timed("argmax_rows " + shape(x), [&] { inner_.argmax_rows(x, predictions); });
  }
  void argmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) override {
    timed(fmt::format("argmax_rows_grouped x{}", groups.size()), [&] { inner_.argmax_rows_grouped(groups, dtype); });
  }
  void dropout(const Tensor& x, double p, uint64_t seed, double beta, Tensor& y) override {
    timed("dropout " + shape(x), [&] { inner_.dropout(x, p, seed, beta, y); });
  }
  void adam_step(const AdamSettings& settings, int64_t step, const Tensor& grad_scale, Tensor& params,
                 const Tensor& grads, Tensor& m, Tensor& v) override {
    timed("adam_step " + shape(params), [&] { inner_.adam_step(settings, step, grad_scale, params, grads, m, v); });
  }
  void synchronize() override { inner_.synchronize(); }
  // A step goes on to the wrapped backend whole (the CUDA backend's step as one CUDA graph).
  void begin_step() override { inner_.begin_step(); }
  void end_step() override { inner_.end_step(); }
  void abandon_step() noexcept override { inner_.abandon_step(); }
  std::string step_statistics() const override { return inner_.step_statistics(); }

 private:
  static const char* t(Trans trans) { return trans == Trans::yes ? "t" : "n"; }
  // Node-row counts vary from batch to batch: rounded down to hundreds so one shape is one key.
  static std::string rounded(int64_t n) { return n >= 100 ? fmt::format("~{}", n / 100 * 100) : fmt::format("{}", n); }
  static std::string shape(const Tensor& x) { return fmt::format("{}x{}", rounded(x.rows()), rounded(x.cols())); }
  static double thread_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  template <class F> void timed(const std::string& key, F&& call) {
    const double start = thread_seconds();
    call();
    inner_.synchronize();
    Stat& s = stats_[key];
    s.calls += 1;
    s.seconds += thread_seconds() - start;
  }

  Backend& inner_;
  std::map<std::string, Stat> stats_;
  std::map<GemmShape, int64_t> gemm_shapes_;
};

}  // namespace diffpool::bench
