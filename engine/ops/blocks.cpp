// Ops over per-graph blocks (engine/ops/blocks.hpp): what pooling needs when every graph has its
// own cluster count k_g. Each op works on every graph's block at its own size, so the work is
// exactly that of the used rows and columns: nothing is padded, computed and masked. Most run
// as grouped backend calls (gemm_grouped, gemm_grouped_sum, dot_grouped, map_grouped,
// reduce_rows_grouped, reduce_cols_grouped_sum, softmax_rows_grouped) that take every graph's
// block at once: one call per graph each on the CPU, one kernel launch per chunk of graphs on CUDA.
//
// Glossary: B graphs; graph g has n_g rows at this level and k_g clusters at the next;
// F, D feature widths; K = max_g k_g (the width of the assignment GNN's last layer).
//
//   block_matmul:   C_g = op(A_g) op(B_g)           any mix of ragged and packed blocks
//                   dA_g += dC_g op(B_g)^T (or its transpose), dB_g += op(A_g)^T dC_g (idem)
//   block_linear:   Y_g = X_g W[:, :k_g] + b[:k_g]  X (N, F) packed, W (F, K), Y ragged (n_g, k_g)
//                   dX_g += dY_g W[:, :k_g]^T, dW[:, :k_g] += X_g^T dY_g, db[:k_g] += colsum(dY_g)
//   block_softmax:  Y_g = softmax over each row of X_g            dX_g += Y (dY - rowsum(dY Y))
//   block_spmm:     Y_g = A_g S_g   A_g the graph's sparse adjacency (symmetric), S ragged
//                   dS_g += A_g dY_g
//   block_dot:      y_g = sum(A_g * B_g)   (B, 1)                 dA_g += dy_g B_g, dB_g += dy_g A_g
//   block_gram_sq:  y_g = ||S_g^T S_g||_F^2 (B, 1)                dS_g += 4 dy_g S_g (S_g^T S_g)
//   block_row_sum:  y_i = sum_j X_g[i, j]  (rows, 1) packed       dX_g[i, j] += dy_i
//   block_row_xlogx: y_i = sum_j x_ij log x_ij (rows, 1) packed   dX_g[i, j] += dy_i (log x_ij + 1)
//   block_link_bce: the binary cross-entropy link loss of each graph's rows (rows, 1), as link_bce
//
// Every block list covers its tensor exactly once, so one gradient target (and its beta) serves
// all graphs of a backward, as in the segment ops of graph.cpp.
#include <algorithm>

#include "engine/ops/backward.hpp"
#include "engine/ops/blocks.hpp"
#include "engine/ops/op_util.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::ops {

using detail::new_output;
using detail::wants_grad;

namespace {

const BlockContext& context_of(const Record& r) { return *static_cast<const BlockContext*>(r.context); }

// [m, n] of op(X) for block g.
std::pair<int64_t, int64_t> op_shape(const Blocks& x, int64_t g, Trans t) {
  const auto i = static_cast<std::size_t>(g);
  return t == Trans::no ? std::pair{x.rows[i], x.cols[i]} : std::pair{x.cols[i], x.rows[i]};
}

int64_t ld(int64_t cols) { return std::max<int64_t>(1, cols); }

Tensor element(const Tensor& t, int64_t i) {
  return Tensor(static_cast<char*>(t.data()) + static_cast<std::size_t>(i) * dtype_size(t.dtype()), Shape{1}, t.dtype(),
                t.device());
}

// The group of one block product for Backend::gemm_grouped: C = op(A) op(B), sizes from C and A.
GemmGroup block_group(Trans ta, const Tensor& a, const Tensor& b, const Tensor& c) {
  return GemmGroup{c.rows(), c.cols(), ta == Trans::no ? a.cols() : a.rows(), a.data(), ld(a.cols()), b.data(),
                   ld(b.cols()),         c.data(), ld(c.cols())};
}

}  // namespace

Variable* block_matmul(Tape& tape, Variable* a, Variable* b, const BlockContext& context) {
  const Blocks &A = *context.a, &B = *context.b, &C = *context.c;
  DP_CHECK(A.count() == B.count() && A.count() == C.count() && a != b, "block_matmul: {}, {} and {} blocks",
           A.count(), B.count(), C.count());
  detail::check_float_pair("block_matmul", a, b);
  for (int64_t g = 0; g < A.count(); ++g) {
    const auto [m, ka] = op_shape(A, g, context.trans_a);
    const auto [kb, n] = op_shape(B, g, context.trans_b);
    const auto i = static_cast<std::size_t>(g);
    DP_CHECK(ka == kb && C.rows[i] == m && C.cols[i] == n, "block_matmul: graph {}: [{}, {}] x [{}, {}] into [{}, {}]", g,
             m, ka, kb, n, C.rows[i], C.cols[i]);
  }
  Variable* y = new_output(tape, C.shape(), a->value.dtype());
  std::vector<GemmGroup> groups;
  groups.reserve(static_cast<std::size_t>(C.count()));
  for (int64_t g = 0; g < C.count(); ++g)
    groups.push_back(block_group(context.trans_a, A.view(a->value, g), B.view(b->value, g), C.view(y->value, g)));
  tape.backend().gemm_grouped(context.trans_a, context.trans_b, groups, 1.0, 0.0, y->value.dtype());
  Record r;
  r.kind = OpKind::block_matmul;
  r.inputs = {a, b, nullptr, nullptr};
  r.output = y;
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_matmul_backward(Tape& tape, const Record& r) {
  const BlockContext& ctx = context_of(r);
  const Blocks &A = *ctx.a, &B = *ctx.b, &C = *ctx.c;
  Variable *a = r.inputs[0], *b = r.inputs[1];
  const Tensor& dc = r.output->grad;
  Backend& be = tape.backend();
  const Trans flip_b = ctx.trans_b == Trans::no ? Trans::yes : Trans::no;
  const Trans flip_a = ctx.trans_a == Trans::no ? Trans::yes : Trans::no;
  // One grouped product per gradient: every graph's block at once (the blocks do not overlap).
  std::vector<GemmGroup> groups;
  groups.reserve(static_cast<std::size_t>(A.count()));
  if (wants_grad(a)) {
    auto da = tape.grad_target(a);
    // op(A) = A: dA = dC op(B)^T.  op(A) = A^T: dA = op(B) dC^T.
    const Trans ta = ctx.trans_a == Trans::no ? Trans::no : ctx.trans_b;
    const Trans tb = ctx.trans_a == Trans::no ? flip_b : Trans::yes;
    for (int64_t g = 0; g < A.count(); ++g) {
      const Tensor dag = A.view(da.tensor, g);
      groups.push_back(ctx.trans_a == Trans::no ? block_group(ta, C.view(dc, g), B.view(b->value, g), dag)
                                                : block_group(ta, B.view(b->value, g), C.view(dc, g), dag));
    }
    be.gemm_grouped(ta, tb, groups, 1.0, da.beta, dc.dtype());
  }
  if (wants_grad(b)) {
    auto db = tape.grad_target(b);
    groups.clear();
    // op(B) = B: dB = op(A)^T dC.  op(B) = B^T: dB = dC^T op(A).
    const Trans ta = ctx.trans_b == Trans::no ? flip_a : Trans::yes;
    const Trans tb = ctx.trans_b == Trans::no ? Trans::no : ctx.trans_a;
    for (int64_t g = 0; g < B.count(); ++g) {
      const Tensor dbg = B.view(db.tensor, g);
      groups.push_back(ctx.trans_b == Trans::no ? block_group(ta, A.view(a->value, g), C.view(dc, g), dbg)
                                                : block_group(ta, C.view(dc, g), A.view(a->value, g), dbg));
    }
    be.gemm_grouped(ta, tb, groups, 1.0, db.beta, dc.dtype());
  }
}

Variable* block_linear(Tape& tape, Variable* x, Variable* w, Variable* b, const BlockContext& context, Variable* x2) {
  const Blocks& Y = *context.a;
  const Tensor &X = x->value, &W = w->value;
  const int64_t f2 = x2 ? x2->value.cols() : 0;
  DP_CHECK(X.rows() == Y.total_rows() && X.cols() + f2 == W.rows() && (!b || b->value.numel() == W.cols()) &&
               (!x2 || x2->value.rows() == X.rows()),
           "block_linear: x {}{}, w {}, {} block rows", X.describe(), x2 ? ", x2 " + x2->value.describe() : std::string(),
           W.describe(), Y.total_rows());
  for (int64_t g = 0; g < Y.count(); ++g)
    DP_CHECK(Y.cols[static_cast<std::size_t>(g)] <= W.cols(), "block_linear: graph {} needs {} of {} columns", g,
             Y.cols[static_cast<std::size_t>(g)], W.cols());
  detail::check_float_pair("block_linear", x, w);
  if (x2) detail::check_float_pair("block_linear", x, x2);
  const int64_t f = X.cols(), kmax = W.cols();
  Variable* y = new_output(tape, Y.shape(), X.dtype());
  Backend& be = tape.backend();
  // Per graph: the bias, then X_g W[:, :k_g] added (or written), then x2_g W2[:, :k_g] added; the
  // products of all graphs as one grouped call each.
  std::vector<GemmGroup> first, second;
  std::vector<RowsGroup> biases;  // Y_g = b[:k_g] on every row, all graphs in one call
  for (int64_t g = 0; g < Y.count(); ++g) {
    Tensor yg = Y.view(y->value, g);
    const int64_t n = yg.rows(), k = yg.cols();
    if (n == 0) continue;
    if (b) biases.push_back(RowsGroup{n, k, yg.data(), b->value.data(), yg.data()});
    first.push_back(GemmGroup{n, k, f, detail::row_ptr(X, Y.row_begin[g]), f, W.data(), kmax, yg.data(), k});
    if (x2)
      second.push_back(GemmGroup{n, k, f2, detail::row_ptr(x2->value, Y.row_begin[g]), f2, detail::row_ptr(W, f), kmax,
                                 yg.data(), k});
  }
  if (b) be.map_grouped(MapOp::broadcast, biases, Broadcast::row, 0, 1, 0, X.dtype());
  be.gemm_grouped(Trans::no, Trans::no, first, 1.0, b ? 1.0 : 0.0, X.dtype());
  if (x2) be.gemm_grouped(Trans::no, Trans::no, second, 1.0, 1.0, X.dtype());
  Record r;
  r.kind = OpKind::block_linear;
  r.inputs = {x, w, b, x2};
  r.output = y;
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_linear_backward(Tape& tape, const Record& r) {
  const Blocks& Y = *context_of(r).a;
  Variable *x = r.inputs[0], *w = r.inputs[1], *b = r.inputs[2], *x2 = r.inputs[3];
  const Tensor& dy = r.output->grad;
  Backend& be = tape.backend();
  const int64_t kmax = w->value.cols();
  const DType dt = dy.dtype();
  // dx_g = dy_g W_rows[:, :k_g]^T for the rows of W that input meets (from row `first`); x's and
  // x2's groups in one grouped call when their gradients start alike (the CPU runs them as
  // before, x's graphs then x2's).
  std::vector<GemmGroup> groups;
  double groups_beta = 0;
  const void* x_gradient = nullptr;
  const auto input_gradient = [&](Variable* in, int64_t first) {
    if (!wants_grad(in)) return;
    const int64_t f = in->value.cols();
    auto dx = tape.grad_target(in);  // every row of x belongs to one block
    if (!groups.empty() && (dx.beta != groups_beta || dx.tensor.data() == x_gradient)) {
      be.gemm_grouped(Trans::no, Trans::yes, groups, 1.0, groups_beta, dt);  // x2 is x, or differs in beta
      groups.clear();
    }
    x_gradient = dx.tensor.data();
    groups_beta = dx.beta;
    for (int64_t g = 0; g < Y.count(); ++g) {
      const Tensor dyg = Y.view(dy, g);
      const int64_t n = dyg.rows(), k = dyg.cols();
      if (n == 0) continue;
      groups.push_back(GemmGroup{n, f, k, dyg.data(), k, detail::row_ptr(w->value, first), kmax,
                                 detail::row_ptr(dx.tensor, Y.row_begin[g]), f});
    }
  };
  input_gradient(x, 0);
  if (x2) input_gradient(x2, x->value.cols());
  if (!groups.empty()) be.gemm_grouped(Trans::no, Trans::yes, groups, 1.0, groups_beta, dt);
  // The graphs share W's leading columns: their contributions add up, so a new gradient is zeroed first.
  auto accumulate_target = [&](Variable* v) -> Tensor& {
    auto t = tape.grad_target(v);
    if (t.beta == 0) be.fill(t.tensor, 0.0);
    return t.tensor;
  };
  // Every graph adds into dW's and db's leading columns, in graph order: one grouped sum each.
  if (wants_grad(w)) {
    Tensor& dw = accumulate_target(w);
    std::vector<GemmGroup> groups;
    for (Variable* in : {x, x2}) {
      if (!in) continue;
      const int64_t f = in->value.cols(), first = in == x ? 0 : x->value.cols();
      groups.clear();
      for (int64_t g = 0; g < Y.count(); ++g) {
        const Tensor dyg = Y.view(dy, g);
        const int64_t n = dyg.rows(), k = dyg.cols();
        if (n == 0) continue;
        groups.push_back(GemmGroup{f, k, n, detail::row_ptr(in->value, Y.row_begin[g]), f, dyg.data(), k,
                                   detail::row_ptr(dw, first), kmax});
      }
      be.gemm_grouped_sum(Trans::yes, Trans::no, groups, 1.0, dt);
    }
  }
  if (wants_grad(b)) {
    Tensor& db = accumulate_target(b);
    std::vector<RowsGroup> groups;
    for (int64_t g = 0; g < Y.count(); ++g) {
      const Tensor dyg = Y.view(dy, g);
      if (dyg.rows() == 0) continue;
      groups.push_back(RowsGroup{dyg.rows(), dyg.cols(), dyg.data(), nullptr, db.data()});
    }
    be.reduce_cols_grouped_sum(groups, 1.0, dt);
  }
}

Variable* block_softmax(Tape& tape, Variable* x, const BlockContext& context, bool in_place) {
  const Blocks& X = *context.a;
  // In place, the logits' memory holds the softmax: the backward needs only the output.
  Variable* y = in_place ? tape.make_output(x->value) : new_output(tape, X.shape(), x->value.dtype());
  std::vector<RowsGroup> groups;
  for (int64_t g = 0; g < X.count(); ++g) {
    const Tensor xg = X.view(x->value, g);
    groups.push_back(RowsGroup{xg.rows(), xg.cols(), xg.data(), nullptr, X.view(y->value, g).data()});
  }
  tape.backend().softmax_rows_grouped(groups, x->value.dtype());
  Record r;
  r.kind = OpKind::block_softmax;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_softmax_backward(Tape& tape, const Record& r) {
  const Blocks& X = *context_of(r).a;
  Variable* x = r.inputs[0];
  Backend& be = tape.backend();
  if (x->grad.defined()) {  // another op already gave x a gradient: accumulate into it
    Tensor& dx = x->grad;
    for (int64_t g = 0; g < X.count(); ++g) {
      Tensor dxg = X.view(dx, g);
      if (dxg.numel() > 0) be.softmax_rows_backward(X.view(r.output->grad, g), X.view(r.output->value, g), 1.0, dxg);
    }
    return;
  }
  // The usual case (x feeds only this softmax): dx = y * (dy - rowsum(dy * y)) is computed in dy's
  // memory, which nothing reads after this op, and becomes x's gradient. With thousands of nodes
  // and clusters per graph (D&D) that saves a whole [n_g, k_g] block per graph.
  Tensor& dy = r.output->grad;
  Tensor sums = tape.workspace().empty(Shape{std::max<int64_t>(1, X.total_rows()), 1}, dy.dtype());
  std::vector<RowsGroup> dots, subtract, scale;
  for (int64_t g = 0; g < X.count(); ++g) {
    Tensor dyg = X.view(dy, g);
    if (dyg.numel() == 0) continue;
    const Tensor yg = X.view(r.output->value, g);
    void* rows = X.row_view(sums.rows_slice(0, X.total_rows()), g).data();
    dots.push_back(RowsGroup{dyg.rows(), dyg.cols(), dyg.data(), yg.data(), rows});
    subtract.push_back(RowsGroup{dyg.rows(), dyg.cols(), dyg.data(), rows, dyg.data()});
    scale.push_back(RowsGroup{dyg.rows(), dyg.cols(), dyg.data(), yg.data(), dyg.data()});
  }
  const DType dt = dy.dtype();
  be.reduce_rows_grouped(Reduce::dot, dots, 1.0, 0.0, dt);                        // rowsum(dy * y)
  be.map_grouped(MapOp::add, subtract, Broadcast::col, -1.0, 1.0, 0.0, dt);       // dy - rowsum
  be.map_grouped(MapOp::mul, scale, Broadcast::full, 0.0, 1.0, 0.0, dt);          // y * (dy - rowsum)
  x->grad = dy;
}

Variable* block_spmm(Tape& tape, Variable* s, const BlockContext& context) {
  const Blocks& S = *context.a;
  DP_CHECK(context.adjacency && static_cast<int64_t>(context.adjacency->size()) == S.count(),
           "block_spmm: per-graph adjacency of {} graphs for {} blocks", context.adjacency ? context.adjacency->size() : 0,
           S.count());
  Variable* y = new_output(tape, S.shape(), s->value.dtype());
  std::vector<SpmmGroup> groups;  // Y_g = A_g S_g, every graph in one call
  for (int64_t g = 0; g < S.count(); ++g) {
    const Tensor yg = S.view(y->value, g);
    if (yg.numel() > 0)
      groups.push_back(SpmmGroup{&(*context.adjacency)[static_cast<std::size_t>(g)], yg.cols(), S.view(s->value, g).data(),
                                 yg.data()});
  }
  tape.backend().spmm_grouped(groups, 1.0, 0.0, s->value.dtype());
  Record r;
  r.kind = OpKind::block_spmm;
  r.inputs = {s, nullptr, nullptr, nullptr};
  r.output = y;
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_spmm_backward(Tape& tape, const Record& r) {
  const BlockContext& ctx = context_of(r);
  const Blocks& S = *ctx.a;
  auto ds = tape.grad_target(r.inputs[0]);
  std::vector<SpmmGroup> groups;  // A_g is symmetric: A_g^T dY_g = A_g dY_g
  for (int64_t g = 0; g < S.count(); ++g) {
    const Tensor dsg = S.view(ds.tensor, g);
    if (dsg.numel() > 0)
      groups.push_back(SpmmGroup{&(*ctx.adjacency)[static_cast<std::size_t>(g)], dsg.cols(),
                                 S.view(r.output->grad, g).data(), dsg.data()});
  }
  tape.backend().spmm_grouped(groups, 1.0, ds.beta, ds.tensor.dtype());
}

Variable* block_dot(Tape& tape, Variable* a, Variable* b, const BlockContext& context) {
  const Blocks& X = *context.a;
  detail::check_float_pair("block_dot", a, b);
  Variable* y = new_output(tape, Shape{X.count(), 1}, a->value.dtype());
  std::vector<DotGroup> dots;  // y_g = sum(A_g * B_g), 0 for an empty block, in one call
  for (int64_t g = 0; g < X.count(); ++g) {
    const Tensor ag = X.view(a->value, g);
    dots.push_back(DotGroup{ag.numel(), ag.data(), X.view(b->value, g).data(), element(y->value, g).data()});
  }
  tape.backend().dot_grouped(dots, 1.0, 0.0, a->value.dtype());
  Record r;
  r.kind = OpKind::block_dot;
  r.inputs = {a, b, nullptr, nullptr};
  r.output = y;
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_dot_backward(Tape& tape, const Record& r) {
  const Blocks& X = *context_of(r).a;
  Variable *a = r.inputs[0], *b = r.inputs[1];
  // Both inputs may be the same variable (a sum of squares); each term then adds its share.
  auto term = [&](Variable* target, Variable* other) {
    if (!wants_grad(target)) return;
    auto d = tape.grad_target(target);
    std::vector<RowsGroup> groups;  // dA_g = dy_g B_g (+ dA_g), every graph in one call
    for (int64_t g = 0; g < X.count(); ++g) {
      const Tensor dg = X.view(d.tensor, g);
      groups.push_back(RowsGroup{dg.rows(), dg.cols(), X.view(other->value, g).data(), element(r.output->grad, g).data(),
                                 dg.data()});
    }
    tape.backend().map_grouped(MapOp::mul, groups, Broadcast::scalar, 0, 1.0, d.beta, d.tensor.dtype());
  };
  term(a, b);
  term(b, a);
}

namespace {
// Where each block's smaller Gram matrix (s_g s_g^T when n <= k, else s_g^T s_g) lies in one
// packed scratch: side_g^2 values from offset_g (side 0 for an empty block).
struct GramLayout {
  std::vector<int64_t> offset, side;
  int64_t total = 0;
  explicit GramLayout(const Blocks& S) {
    for (int64_t g = 0; g < S.count(); ++g) {
      const auto i = static_cast<std::size_t>(g);
      const int64_t side = S.rows[i] * S.cols[i] == 0 ? 0 : std::min(S.rows[i], S.cols[i]);
      offset.push_back(total);
      this->side.push_back(side);
      total += side * side;
    }
  }
  Tensor of(const Tensor& scratch, int64_t g) const {
    const auto i = static_cast<std::size_t>(g);
    return Tensor(static_cast<char*>(scratch.data()) + static_cast<std::size_t>(offset[i]) * dtype_size(scratch.dtype()),
                  Shape{side[i] * side[i]}, scratch.dtype(), scratch.device());
  }
};

// Every block's smaller Gram matrix into its place of `scratch`, as grouped products.
void small_grams(Backend& be, const Blocks& S, const Tensor& s, const GramLayout& layout, const Tensor& scratch) {
  std::vector<GemmGroup> outer, inner;  // s_g s_g^T (n <= k) and s_g^T s_g
  for (int64_t g = 0; g < S.count(); ++g) {
    const Tensor sg = S.view(s, g);
    const int64_t n = sg.rows(), k = sg.cols();
    if (sg.numel() == 0) continue;
    void* m = layout.of(scratch, g).data();
    if (n <= k) outer.push_back(GemmGroup{n, n, k, sg.data(), k, sg.data(), k, m, n});
    else inner.push_back(GemmGroup{k, k, n, sg.data(), k, sg.data(), k, m, k});
  }
  if (!outer.empty()) be.gemm_grouped(Trans::no, Trans::yes, outer, 1.0, 0.0, s.dtype());
  if (!inner.empty()) be.gemm_grouped(Trans::yes, Trans::no, inner, 1.0, 0.0, s.dtype());
}
}  // namespace

Variable* block_gram_sq(Tape& tape, Variable* s, const BlockContext& context) {
  const Blocks& S = *context.a;
  Variable* y = new_output(tape, Shape{S.count(), 1}, s->value.dtype());
  Backend& be = tape.backend();
  const GramLayout layout(S);
  Tensor scratch = tape.workspace().empty(Shape{std::max<int64_t>(layout.total, 1)}, s->value.dtype());
  small_grams(be, S, s->value, layout, scratch);
  std::vector<DotGroup> dots;  // y_g = |M_g|^2, 0 for an empty block, in one call
  for (int64_t g = 0; g < S.count(); ++g) {
    void* out = element(y->value, g).data();
    if (layout.side[static_cast<std::size_t>(g)] == 0) {
      dots.push_back(DotGroup{0, nullptr, nullptr, out});
      continue;
    }
    const Tensor m = layout.of(scratch, g);
    dots.push_back(DotGroup{m.numel(), m.data(), m.data(), out});
  }
  be.dot_grouped(dots, 1.0, 0.0, s->value.dtype());
  Record r;
  r.kind = OpKind::block_gram_sq;
  r.inputs = {s, nullptr, nullptr, nullptr};
  r.output = y;
  r.saved = {scratch, Tensor{}};  // the backward recomputes the Gram matrices in the same scratch
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_gram_sq_backward(Tape& tape, const Record& r) {
  const Blocks& S = *context_of(r).a;
  Variable* s = r.inputs[0];
  const DType dt = s->value.dtype();
  Backend& be = tape.backend();
  const Tensor scratch = r.saved[0];  // a handle to the forward's scratch
  const GramLayout layout(S);
  small_grams(be, S, s->value, layout, scratch);
  auto ds = tape.grad_target(s);
  std::vector<GemmGroup> groups;
  std::vector<RowsGroup> scales;  // dy_g (on the device) times each Gram matrix, before the products
  for (int64_t g = 0; g < S.count(); ++g) {
    const Tensor sg = S.view(s->value, g);
    const Tensor dsg = S.view(ds.tensor, g);
    const int64_t n = sg.rows(), k = sg.cols();
    if (sg.numel() == 0) continue;
    Tensor m = layout.of(scratch, g);
    scales.push_back(RowsGroup{1, m.numel(), m.data(), element(r.output->grad, g).data(), m.data()});
    if (n <= k) groups.push_back(GemmGroup{n, k, n, m.data(), n, sg.data(), k, dsg.data(), k});  // 4 (s s^T) s
    else groups.push_back(GemmGroup{n, k, k, sg.data(), k, m.data(), k, dsg.data(), k});         // 4 s (s^T s)
  }
  be.map_grouped(MapOp::mul, scales, Broadcast::scalar, 0, 1.0, 0.0, dt);
  be.gemm_grouped(Trans::no, Trans::no, groups, 4.0, ds.beta, dt);
}

Variable* block_row_sum(Tape& tape, Variable* x, const BlockContext& context) {
  const Blocks& X = *context.a;
  Variable* y = new_output(tape, Shape{X.total_rows(), 1}, x->value.dtype());
  std::vector<RowsGroup> groups;  // a block of no columns sums to 0
  for (int64_t g = 0; g < X.count(); ++g) {
    const Tensor xg = X.view(x->value, g);
    groups.push_back(RowsGroup{xg.rows(), xg.cols(), xg.data(), nullptr, X.row_view(y->value, g).data()});
  }
  tape.backend().reduce_rows_grouped(Reduce::sum, groups, 1.0, 0.0, x->value.dtype());
  Record r;
  r.kind = OpKind::block_row_sum;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_row_sum_backward(Tape& tape, const Record& r) {
  const Blocks& X = *context_of(r).a;
  Variable* x = r.inputs[0];
  auto dx = tape.grad_target(x);
  std::vector<RowsGroup> groups;  // dX_g[i, :] = dy_i (+ dX_g), every graph in one call
  for (int64_t g = 0; g < X.count(); ++g) {
    const Tensor dxg = X.view(dx.tensor, g);
    groups.push_back(RowsGroup{dxg.rows(), dxg.cols(), dxg.data(), X.row_view(r.output->grad, g).data(), dxg.data()});
  }
  tape.backend().map_grouped(MapOp::broadcast, groups, Broadcast::col, 0, 1.0, dx.beta, dx.tensor.dtype());
}

namespace {
// x log x runs over chunks of rows, each chunk's log x in a scratch of about a million elements
// (a graph with thousands of nodes and clusters, D&D, never holds a full [n, k] intermediate):
// block g in chunks of xlogx_chunk_rows rows, and consecutive chunks of every graph packed side by
// side into the scratch, a pass of grouped calls per fill.
constexpr int64_t kXlogxScratch = int64_t{1} << 20;
int64_t xlogx_chunk_rows(int64_t rows, int64_t cols) {
  return std::max<int64_t>(1, std::min<int64_t>(rows, kXlogxScratch / std::max<int64_t>(cols, 1)));
}
// The scratch's elements: a million, or fewer when every block together needs fewer, or more when
// one row is wider.
int64_t xlogx_scratch(const Blocks& x) {
  int64_t most = 1, total = 0;
  for (int64_t g = 0; g < x.count(); ++g) {
    const auto i = static_cast<std::size_t>(g);
    most = std::max(most, xlogx_chunk_rows(x.rows[i], x.cols[i]) * x.cols[i]);
    total += x.rows[i] * x.cols[i];
  }
  return std::max(most, std::min(total, kXlogxScratch));
}
struct XlogxChunk {
  int64_t rows, cols;
  int64_t at;         // the chunk's first element in x (and in its gradient)
  void* logs;         // its place in the scratch
  int64_t first_row;  // in the (rows, 1) packed output
};
// Calls pass(chunks) for each fill of the scratch, in graph and row order.
template <class F> void for_each_xlogx_pass(const Blocks& X, const Tensor& scratch, F&& pass) {
  const std::size_t es = dtype_size(scratch.dtype());
  const int64_t capacity = scratch.numel();
  std::vector<XlogxChunk> chunks;
  int64_t used = 0;
  for (int64_t g = 0; g < X.count(); ++g) {
    const auto i = static_cast<std::size_t>(g);
    const int64_t n = X.rows[i], k = X.cols[i], chunk = xlogx_chunk_rows(n, k);
    if (n * k == 0) continue;
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
      const int64_t rows = std::min(n, r0 + chunk) - r0;
      if (used + rows * k > capacity) {
        pass(chunks);
        chunks.clear();
        used = 0;
      }
      chunks.push_back(XlogxChunk{rows, k, X.offset[i] + r0 * k,
                                  static_cast<char*>(scratch.data()) + static_cast<std::size_t>(used) * es,
                                  X.row_begin[i] + r0});
      used += rows * k;
    }
  }
  if (!chunks.empty()) pass(chunks);
}
}  // namespace

Variable* block_row_xlogx(Tape& tape, Variable* x, const BlockContext& context) {
  const Blocks& X = *context.a;
  const DType dt = x->value.dtype();
  Variable* y = new_output(tape, Shape{X.total_rows(), 1}, dt);
  Tensor scratch = tape.workspace().empty(Shape{xlogx_scratch(X)}, dt);
  Backend& be = tape.backend();
  std::vector<RowsGroup> empty_rows;  // rows of blocks with no columns: 0
  for (int64_t g = 0; g < X.count(); ++g) {
    const Tensor xg = X.view(x->value, g);
    if (xg.rows() > 0 && xg.cols() == 0) empty_rows.push_back(RowsGroup{xg.rows(), 0, xg.data(), nullptr, X.row_view(y->value, g).data()});
  }
  be.reduce_rows_grouped(Reduce::sum, empty_rows, 1.0, 0.0, dt);
  std::vector<RowsGroup> logs, sums;
  for_each_xlogx_pass(X, scratch, [&](const std::vector<XlogxChunk>& chunks) {
    logs.clear();
    sums.clear();
    for (const XlogxChunk& c : chunks) {
      const void* xc = element(x->value, c.at).data();
      logs.push_back(RowsGroup{c.rows, c.cols, xc, nullptr, c.logs});
      sums.push_back(RowsGroup{c.rows, c.cols, xc, c.logs, element(y->value, c.first_row).data()});
    }
    be.map_grouped(MapOp::log, logs, Broadcast::full, 0, 1.0, 0.0, dt);     // log x
    be.reduce_rows_grouped(Reduce::dot, sums, 1.0, 0.0, dt);                // sum_j x log x
  });
  Record r;
  r.kind = OpKind::block_row_xlogx;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  r.saved = {scratch, Tensor{}};  // reused by the backward for its chunks of log x
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_row_xlogx_backward(Tape& tape, const Record& r) {
  const Blocks& X = *context_of(r).a;
  Variable* x = r.inputs[0];
  const Tensor& scratch = r.saved[0];
  const DType dt = x->value.dtype();
  Backend& be = tape.backend();
  auto dx = tape.grad_target(x);
  std::vector<RowsGroup> logs, grads;
  for_each_xlogx_pass(X, scratch, [&](const std::vector<XlogxChunk>& chunks) {
    logs.clear();
    grads.clear();
    for (const XlogxChunk& c : chunks) {
      logs.push_back(RowsGroup{c.rows, c.cols, element(x->value, c.at).data(), nullptr, c.logs});
      grads.push_back(RowsGroup{c.rows, c.cols, c.logs, element(r.output->grad, c.first_row).data(),
                                element(dx.tensor, c.at).data()});
    }
    be.map_grouped(MapOp::log, logs, Broadcast::full, 0, 1.0, 0.0, dt);                       // log x
    be.map_grouped(MapOp::plus_one_times, grads, Broadcast::col, 0, 1.0, dx.beta, dt);        // dy (log x + 1)
  });
}

Variable* block_link_bce(Tape& tape, Variable* s, const BlockContext& context, double eps) {
  const Blocks& S = *context.a;
  DP_CHECK(context.adjacency && context.offsets && static_cast<int64_t>(context.adjacency->size()) == S.count() &&
               static_cast<int64_t>(context.offsets->size()) == S.count(),
           "block_link_bce: per-graph adjacency and offsets for {} blocks", S.count());
  Variable* y = new_output(tape, Shape{S.total_rows(), 1}, s->value.dtype());
  for (int64_t g = 0; g < S.count(); ++g) {
    Tensor yg = S.row_view(y->value, g);
    if (yg.numel() == 0) continue;
    const auto i = static_cast<std::size_t>(g);
    tape.backend().link_bce_forward(S.view(s->value, g), (*context.adjacency)[i], (*context.offsets)[i], eps, yg);
  }
  Record r;
  r.kind = OpKind::block_link_bce;
  r.inputs = {s, nullptr, nullptr, nullptr};
  r.output = y;
  r.scalars = {eps, 0, 0};
  r.context = &context;
  detail::record(tape, r);
  return y;
}

void block_link_bce_backward(Tape& tape, const Record& r) {
  const BlockContext& ctx = context_of(r);
  const Blocks& S = *ctx.a;
  Variable* s = r.inputs[0];
  if (!wants_grad(s)) return;
  auto ds = tape.grad_target(s);
  for (int64_t g = 0; g < S.count(); ++g) {
    Tensor dsg = S.view(ds.tensor, g);
    if (dsg.numel() == 0) continue;
    const auto i = static_cast<std::size_t>(g);
    tape.backend().link_bce_backward(S.view(s->value, g), (*ctx.adjacency)[i], (*ctx.offsets)[i], r.scalars[0],
                                     S.row_view(r.output->grad, g), ds.beta, dsg);
  }
}

}  // namespace diffpool::ops
