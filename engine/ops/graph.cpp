// Graph ops: sparse aggregation, per-graph products for pooling, per-graph reductions.
//
//   spmm:              y = A x                    A (R,C) constant CSR, x (C,F), y (R,F)
//                      dx += A^T dy               (A^T is passed in, precomputed with the batch)
//   segment_matmul_tn: y_g = s_g^T z_g            s (N,K), z (N,F), y (B*K,F); rows of graph g
//                      ds_g += z_g dy_g^T,  dz_g += s_g dy_g
//                      This is the pooling product of DiffPool (paper eq. 3): X' = S^T Z and,
//                      with z = A S, A' = S^T A S. Uniform segments run as one strided batch.
//   segment_reduce:    y_g = sum / mean / max over the rows of graph g     x (N,F), y (B,F)
//                      sum: dx_i += dy_g, mean: dx_i += dy_g / n_g, max: dx_argmax += dy_g
//   segment_gram_sq:   y_g = ||s_g^T s_g||_F^2 = ||s_g s_g^T||_F^2     s (N,K), y (B,1)
//                      ds_g += 4 dy_g s_g (s_g^T s_g) = 4 dy_g (s_g s_g^T) s_g
//                      The link-prediction loss needs it per graph; the smaller of the two Gram
//                      matrices is formed (n_g x n_g for graphs smaller than K, as most of D&D's
//                      are with K = 1437), one graph at a time, and recomputed in backward.
#include <algorithm>

#include "engine/ops/op_util.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::ops {

using detail::new_output;
using detail::wants_grad;

Variable* spmm(Tape& tape, const Csr& a, const Csr& a_transposed, Variable* x) {
  DP_CHECK(a.cols == x->value.rows() && a_transposed.rows == a.cols && a_transposed.cols == a.rows,
           "spmm: A [{}, {}], A^T [{}, {}], x {}", a.rows, a.cols, a_transposed.rows, a_transposed.cols,
           x->value.describe());
  Variable* y = new_output(tape, Shape{a.rows, x->value.cols()}, x->value.dtype());
  tape.backend().spmm(a, x->value, 1.0, 0.0, y->value);
  Record r;
  r.kind = OpKind::spmm;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  r.context = &a_transposed;
  detail::record(tape, r);
  return y;
}

void spmm_backward(Tape& tape, const Record& r) {
  const Csr& at = *static_cast<const Csr*>(r.context);
  auto dx = tape.grad_target(r.inputs[0]);
  tape.backend().spmm(at, r.output->grad, 1.0, dx.beta, dx.tensor);
}

Variable* segment_matmul_tn(Tape& tape, Variable* s, Variable* z, const Segments& segments) {
  const Tensor& S = s->value;
  const Tensor& Z = z->value;
  DP_CHECK(S.rows() == Z.rows() && S.rows() == segments.total_rows(),
           "segment_matmul_tn: s {}, z {}, segments over {} rows", S.describe(), Z.describe(), segments.total_rows());
  detail::check_float_pair("segment_matmul_tn", s, z);
  const int64_t k = S.cols(), f = Z.cols(), b = segments.count();
  Variable* y = new_output(tape, Shape{b * k, f}, S.dtype());
  Backend& be = tape.backend();
  if (segments.uniform_size >= 0) {
    const int64_t n = segments.uniform_size;
    be.gemm_strided_batched(Trans::yes, Trans::no, k, f, n, 1.0, S.data(), k, n * k, Z.data(), f, n * f, 0.0,
                            y->value.data(), f, k * f, b, S.dtype());
  } else {
    const std::size_t es = dtype_size(S.dtype());
    std::vector<GemmGroup> groups;
    groups.reserve(static_cast<std::size_t>(b));
    for (int64_t g = 0; g < b; ++g) {
      const int64_t begin = segments.begin(g), n = segments.size(g);
      groups.push_back(GemmGroup{k, f, n, static_cast<const char*>(S.data()) + begin * k * es, k,
                                 static_cast<const char*>(Z.data()) + begin * f * es, f,
                                 static_cast<char*>(y->value.data()) + g * k * f * es, f});
    }
    be.gemm_grouped(Trans::yes, Trans::no, groups, 1.0, 0.0, S.dtype());
  }
  Record r;
  r.kind = OpKind::segment_matmul_tn;
  r.inputs = {s, z, nullptr, nullptr};
  r.output = y;
  r.context = &segments;
  detail::record(tape, r);
  return y;
}

void segment_matmul_tn_backward(Tape& tape, const Record& r) {
  Variable *s = r.inputs[0], *z = r.inputs[1];
  const Segments& segments = *static_cast<const Segments*>(r.context);
  const Tensor& dy = r.output->grad;
  const int64_t k = s->value.cols(), f = z->value.cols(), b = segments.count();
  const DType dt = dy.dtype();
  Backend& be = tape.backend();
  const bool ds = wants_grad(s), dz = wants_grad(z);
  // Segments cover every row, so a new gradient is written completely by the first product.
  // When s and z are the same variable, ds is written first (beta 0) and dz adds to it.
  if (segments.uniform_size >= 0) {
    const int64_t n = segments.uniform_size;
    if (ds) {
      auto t = tape.grad_target(s);
      be.gemm_strided_batched(Trans::no, Trans::yes, n, k, f, 1.0, z->value.data(), f, n * f, dy.data(), f, k * f,
                              t.beta, t.tensor.data(), k, n * k, b, dt);
    }
    if (dz) {
      auto t = tape.grad_target(z);
      be.gemm_strided_batched(Trans::no, Trans::no, n, f, k, 1.0, s->value.data(), k, n * k, dy.data(), f, k * f,
                              t.beta, t.tensor.data(), f, n * f, b, dt);
    }
    return;
  }
  const std::size_t es = dtype_size(dt);
  double ds_beta = 1.0, dz_beta = 1.0;
  char* dsp = nullptr;
  char* dzp = nullptr;
  if (ds) {
    auto t = tape.grad_target(s);
    dsp = static_cast<char*>(t.tensor.data());
    ds_beta = t.beta;
  }
  if (dz) {
    auto t = tape.grad_target(z);
    dzp = static_cast<char*>(t.tensor.data());
    dz_beta = t.beta;
  }
  // One grouped product per gradient over every graph (the graphs' rows do not overlap). When s
  // and z are the same variable, every row gets ds (beta 0) before dz adds to it, as graph by graph.
  std::vector<GemmGroup> groups;
  groups.reserve(static_cast<std::size_t>(b));
  if (ds) {
    for (int64_t g = 0; g < b; ++g) {
      const int64_t begin = segments.begin(g), n = segments.size(g);
      groups.push_back(GemmGroup{n, k, f, static_cast<const char*>(z->value.data()) + begin * f * es, f,
                                 static_cast<const char*>(dy.data()) + g * k * f * es, f, dsp + begin * k * es, k});
    }
    be.gemm_grouped(Trans::no, Trans::yes, groups, 1.0, ds_beta, dt);
  }
  if (dz) {
    groups.clear();
    for (int64_t g = 0; g < b; ++g) {
      const int64_t begin = segments.begin(g), n = segments.size(g);
      groups.push_back(GemmGroup{n, f, k, static_cast<const char*>(s->value.data()) + begin * k * es, k,
                                 static_cast<const char*>(dy.data()) + g * k * f * es, f, dzp + begin * f * es, f});
    }
    be.gemm_grouped(Trans::no, Trans::no, groups, 1.0, dz_beta, dt);
  }
}

Variable* segment_reduce(Tape& tape, Variable* x, const Segments& segments, SegmentReduce kind) {
  DP_CHECK(x->value.rows() == segments.total_rows(), "segment_reduce: x {} with segments over {} rows",
           x->value.describe(), segments.total_rows());
  const int64_t b = segments.count(), f = x->value.cols();
  Variable* y = new_output(tape, Shape{b, f}, x->value.dtype());
  Tensor argmax;
  if (kind == SegmentReduce::max) argmax = tape.workspace().empty(Shape{b, f}, DType::i32);
  tape.backend().segment_reduce_forward(kind, x->value, segments.device_offsets, y->value,
                                        kind == SegmentReduce::max ? &argmax : nullptr);
  Record r;
  r.kind = OpKind::segment_reduce;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  r.saved = {argmax, Tensor{}};
  r.ints = {static_cast<int64_t>(kind), 0};
  r.context = &segments;
  detail::record(tape, r);
  return y;
}

void segment_reduce_backward(Tape& tape, const Record& r) {
  const Segments& segments = *static_cast<const Segments*>(r.context);
  const auto kind = static_cast<SegmentReduce>(r.ints[0]);
  tape.backend().segment_reduce_backward(kind, r.output->grad, segments.device_offsets,
                                         kind == SegmentReduce::max ? &r.saved[0] : nullptr, tape.grad(r.inputs[0]));
}

namespace {
// The smaller Gram matrix of every segment g (s_g s_g^T when n_g <= k, else s_g^T s_g), packed:
// segment g's side^2 values from offset[g] of one workspace tensor, all in one grouped product
// (one launch on a GPU, the same gemm calls as graph by graph on the CPU). Empty segments get
// side 0.
struct Grams {
  Tensor values;
  std::vector<int64_t> offset, side;
  Tensor of(int64_t g) const {
    const auto i = static_cast<std::size_t>(g);
    return Tensor(static_cast<char*>(values.data()) + static_cast<std::size_t>(offset[i]) * dtype_size(values.dtype()),
                  Shape{side[i] * side[i]}, values.dtype(), values.device());
  }
};

Grams small_grams(Tape& tape, const Tensor& s, const Segments& segments) {
  const int64_t k = s.cols(), b = segments.count();
  const std::size_t es = dtype_size(s.dtype());
  Grams grams;
  int64_t total = 0;
  for (int64_t g = 0; g < b; ++g) {
    const int64_t side = std::min(segments.size(g), k);
    grams.offset.push_back(total);
    grams.side.push_back(side);
    total += side * side;
  }
  grams.values = tape.workspace().empty(Shape{std::max<int64_t>(total, 1)}, s.dtype());
  std::vector<GemmGroup> outer, inner;  // s_g s_g^T (n_g <= k) and s_g^T s_g
  for (int64_t g = 0; g < b; ++g) {
    const int64_t n = segments.size(g);
    if (n == 0) continue;
    const char* sg = static_cast<const char*>(s.data()) + static_cast<std::size_t>(segments.begin(g) * k) * es;
    void* m = grams.of(g).data();
    if (n <= k) outer.push_back(GemmGroup{n, n, k, sg, k, sg, k, m, n});
    else inner.push_back(GemmGroup{k, k, n, sg, k, sg, k, m, k});
  }
  Backend& be = tape.backend();
  if (!outer.empty()) be.gemm_grouped(Trans::no, Trans::yes, outer, 1.0, 0.0, s.dtype());
  if (!inner.empty()) be.gemm_grouped(Trans::yes, Trans::no, inner, 1.0, 0.0, s.dtype());
  return grams;
}

Tensor element(const Tensor& t, int64_t i) {
  return Tensor(static_cast<char*>(t.data()) + static_cast<std::size_t>(i) * dtype_size(t.dtype()), Shape{1}, t.dtype(),
                t.device());
}
}  // namespace

Variable* segment_gram_sq(Tape& tape, Variable* s, const Segments& segments) {
  DP_CHECK(s->value.rows() == segments.total_rows(), "segment_gram_sq: s {} with segments over {} rows", s->value.describe(),
           segments.total_rows());
  const int64_t b = segments.count();
  Variable* y = new_output(tape, Shape{b, 1}, s->value.dtype());
  Backend& be = tape.backend();
  const Grams grams = small_grams(tape, s->value, segments);
  std::vector<DotGroup> dots;  // y_g = |M_g|^2 (0 for an empty graph: n = 0 and beta 0)
  for (int64_t g = 0; g < b; ++g) {
    void* out = element(y->value, g).data();
    if (segments.size(g) == 0) {
      dots.push_back(DotGroup{0, nullptr, nullptr, out});
      continue;
    }
    const Tensor m = grams.of(g);
    dots.push_back(DotGroup{m.numel(), m.data(), m.data(), out});
  }
  be.dot_grouped(dots, 1.0, 0.0, s->value.dtype());
  Record r;
  r.kind = OpKind::segment_gram_sq;
  r.inputs = {s, nullptr, nullptr, nullptr};
  r.output = y;
  r.context = &segments;
  detail::record(tape, r);
  return y;
}

void segment_gram_sq_backward(Tape& tape, const Record& r) {
  Variable* s = r.inputs[0];
  const Segments& segments = *static_cast<const Segments*>(r.context);
  const int64_t k = s->value.cols();
  const DType dt = s->value.dtype();
  const std::size_t es = dtype_size(dt);
  Backend& be = tape.backend();
  const Grams grams = small_grams(tape, s->value, segments);
  auto ds = tape.grad_target(s);  // segments cover every row once: one beta for all of them
  std::vector<GemmGroup> groups;
  std::vector<RowsGroup> scales;  // dy_g (on the device) times each Gram matrix, before the products
  for (int64_t g = 0; g < segments.count(); ++g) {
    const int64_t n = segments.size(g);
    if (n == 0) continue;
    Tensor m = grams.of(g);
    scales.push_back(RowsGroup{1, m.numel(), m.data(), element(r.output->grad, g).data(), m.data()});
    const char* sg = static_cast<const char*>(s->value.data()) + static_cast<std::size_t>(segments.begin(g) * k) * es;
    char* dsg = static_cast<char*>(ds.tensor.data()) + static_cast<std::size_t>(segments.begin(g) * k) * es;
    if (n <= k) groups.push_back(GemmGroup{n, k, n, m.data(), n, sg, k, dsg, k});  // 4 (s s^T) s
    else groups.push_back(GemmGroup{n, k, k, sg, k, m.data(), k, dsg, k});         // 4 s (s^T s)
  }
  be.map_grouped(MapOp::mul, scales, Broadcast::scalar, 0, 1.0, 0.0, dt);
  be.gemm_grouped(Trans::no, Trans::no, groups, 4.0, ds.beta, dt);
}

Variable* link_bce(Tape& tape, Variable* s, const Csr& adjacency, const Segments& segments, double eps) {
  DP_CHECK(s->value.rows() == segments.total_rows() && adjacency.rows == s->value.rows() && adjacency.cols == adjacency.rows,
           "link_bce: s {}, adjacency [{}, {}], segments over {} rows", s->value.describe(), adjacency.rows,
           adjacency.cols, segments.total_rows());
  Variable* y = new_output(tape, Shape{s->value.rows(), 1}, s->value.dtype());
  tape.backend().link_bce_forward(s->value, adjacency, segments.device_offsets, eps, y->value);
  Record r;
  r.kind = OpKind::link_bce;
  r.inputs = {s, nullptr, nullptr, nullptr};
  r.output = y;
  r.saved = {adjacency.row_ptr, adjacency.col_idx};  // the pattern; the backward rebuilds the Csr
  r.ints = {adjacency.nnz, 0};
  r.scalars = {eps, 0, 0};
  r.context = &segments;
  detail::record(tape, r);
  return y;
}

void link_bce_backward(Tape& tape, const Record& r) {
  Variable* s = r.inputs[0];
  if (!wants_grad(s)) return;
  const Segments& segments = *static_cast<const Segments*>(r.context);
  Csr pattern;
  pattern.rows = pattern.cols = s->value.rows();
  pattern.nnz = r.ints[0];
  pattern.row_ptr = r.saved[0];
  pattern.col_idx = r.saved[1];
  auto ds = tape.grad_target(s);
  tape.backend().link_bce_backward(s->value, pattern, segments.device_offsets, r.scalars[0], r.output->grad, ds.beta,
                                   ds.tensor);
}

}  // namespace diffpool::ops
