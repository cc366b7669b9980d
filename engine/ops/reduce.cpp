// Reductions.
//
//   row_sum:  y_i = sum_j x_ij              x (N,F), y (N,1)    dx_ij += dy_i
//   row_dot:  y_i = sum_j a_ij b_ij         a, b (N,F), y (N,1) da += dy_i b,  db += dy_i a
//   mean_all: y = mean of all elements      y (1)               dx += dy / numel
//   row_xlogx: y_i = sum_j x_ij log x_ij     x (N,F), y (N,1)    dx_ij += dy_i (log x_ij + 1)
//             The rows are processed in chunks, so only a chunk of log x is ever held: with
//             thousands of clusters (D&D) the full (N,F) intermediate would cost hundreds of MB.
//             When x fits in one chunk, its log x stays in the step's workspace anyway, so the
//             backward reuses it instead of computing the logarithms a second time.
#include <algorithm>

#include "engine/ops/op_util.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::ops {

using detail::new_output;
using detail::wants_grad;

Variable* row_sum(Tape& tape, Variable* x) {
  Variable* y = new_output(tape, Shape{x->value.rows(), 1}, x->value.dtype());
  tape.backend().reduce_rows(Reduce::sum, x->value, nullptr, 1.0, 0.0, y->value);
  Record r;
  r.kind = OpKind::row_sum;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  detail::record(tape, r);
  return y;
}

void row_sum_backward(Tape& tape, const Record& r) {
  Variable* x = r.inputs[0];
  auto d = tape.grad_target(x);
  tape.backend().map(MapOp::broadcast, x->value, &r.output->grad, Broadcast::col, 0, 1.0, d.beta, d.tensor);
}

Variable* row_dot(Tape& tape, Variable* a, Variable* b) {
  DP_CHECK(a->value.shape() == b->value.shape(), "row_dot: shapes differ: {} and {}", a->value.describe(),
           b->value.describe());
  detail::check_float_pair("row_dot", a, b);
  Variable* y = new_output(tape, Shape{a->value.rows(), 1}, a->value.dtype());
  tape.backend().reduce_rows(Reduce::dot, a->value, &b->value, 1.0, 0.0, y->value);
  Record r;
  r.kind = OpKind::row_dot;
  r.inputs = {a, b, nullptr, nullptr};
  r.output = y;
  detail::record(tape, r);
  return y;
}

void row_dot_backward(Tape& tape, const Record& r) {
  Variable *a = r.inputs[0], *b = r.inputs[1];
  const Tensor& dy = r.output->grad;
  // Both inputs may be the same variable (a sum of squares); each term then adds its share.
  if (wants_grad(a)) {
    auto d = tape.grad_target(a);
    tape.backend().map(MapOp::mul, b->value, &dy, Broadcast::col, 0, 1.0, d.beta, d.tensor);
  }
  if (wants_grad(b)) {
    auto d = tape.grad_target(b);
    tape.backend().map(MapOp::mul, a->value, &dy, Broadcast::col, 0, 1.0, d.beta, d.tensor);
  }
}

// scale * mean(x) in the reduction itself: scale -1 is a negated mean in one primitive, bit for
// bit the mean negated (a sign is exact).
Variable* mean_all(Tape& tape, Variable* x, double scale) {
  Variable* y = new_output(tape, Shape{1}, x->value.dtype());
  tape.backend().reduce_all(Reduce::sum, x->value, nullptr, scale / static_cast<double>(x->value.numel()), 0.0,
                            y->value);
  Record r;
  r.kind = OpKind::mean_all;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.scalars[0] = scale;
  r.output = y;
  detail::record(tape, r);
  return y;
}

void mean_all_backward(Tape& tape, const Record& r) {
  Variable* x = r.inputs[0];
  auto d = tape.grad_target(x);
  tape.backend().map(MapOp::broadcast, x->value, &r.output->grad, Broadcast::scalar, 0,
                     r.scalars[0] / static_cast<double>(x->value.numel()), d.beta, d.tensor);
}

namespace {
// Rows per chunk of row_xlogx: about a million elements of scratch.
int64_t chunk_rows(int64_t rows, int64_t cols) { return std::max<int64_t>(1, std::min<int64_t>(rows, (int64_t{1} << 20) / std::max<int64_t>(cols, 1))); }
}  // namespace

Variable* row_xlogx(Tape& tape, Variable* x) {
  const int64_t n = x->value.rows(), f = x->value.cols();
  Variable* y = new_output(tape, Shape{n, 1}, x->value.dtype());
  const int64_t chunk = chunk_rows(n, f);
  Tensor scratch = tape.workspace().empty(Shape{chunk, f}, x->value.dtype());
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t r1 = std::min(n, r0 + chunk);
    const Tensor xs = x->value.rows_slice(r0, r1);
    Tensor logs = scratch.rows_slice(0, r1 - r0);
    Tensor ys = y->value.rows_slice(r0, r1);
    tape.backend().map(MapOp::log, xs, nullptr, Broadcast::full, 0, 1.0, 0.0, logs);
    tape.backend().reduce_rows(Reduce::dot, xs, &logs, 1.0, 0.0, ys);
  }
  Record r;
  r.kind = OpKind::row_xlogx;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  if (chunk >= n) r.saved[0] = scratch;  // one chunk: log x of every row
  detail::record(tape, r);
  return y;
}

void row_xlogx_backward(Tape& tape, const Record& r) {
  Variable* x = r.inputs[0];
  const int64_t n = x->value.rows(), f = x->value.cols();
  auto dx = tape.grad_target(x);  // rows are disjoint across chunks: one beta for all
  if (r.saved[0].defined()) {  // the forward's log x, all rows
    tape.backend().map(MapOp::plus_one_times, r.saved[0], &r.output->grad, Broadcast::col, 0, 1.0, dx.beta, dx.tensor);
    return;
  }
  const int64_t chunk = chunk_rows(n, f);
  Tensor scratch = tape.workspace().empty(Shape{chunk, f}, x->value.dtype());
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t r1 = std::min(n, r0 + chunk);
    Tensor logs = scratch.rows_slice(0, r1 - r0);
    const Tensor dys = r.output->grad.rows_slice(r0, r1);
    Tensor dxs = dx.tensor.rows_slice(r0, r1);
    tape.backend().map(MapOp::log, x->value.rows_slice(r0, r1), nullptr, Broadcast::full, 0, 1.0, 0.0, logs);
    tape.backend().map(MapOp::plus_one_times, logs, &dys, Broadcast::col, 0, 1.0, dx.beta, dxs);
  }
}

}  // namespace diffpool::ops
