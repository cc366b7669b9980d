// Reductions.
//
//   row_sum:  y_i = sum_j x_ij              x (N,F), y (N,1)    dx_ij += dy_i
//   row_dot:  y_i = sum_j a_ij b_ij         a, b (N,F), y (N,1) da += dy_i b,  db += dy_i a
//   mean_all: y = mean of all elements      y (1)               dx += dy / numel
#include "engine/ops/backward.hpp"
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
  tape.record(r);
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
  tape.record(r);
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

Variable* mean_all(Tape& tape, Variable* x) {
  Variable* y = new_output(tape, Shape{1}, x->value.dtype());
  tape.backend().reduce_all(Reduce::sum, x->value, nullptr, 1.0 / static_cast<double>(x->value.numel()), 0.0,
                            y->value);
  Record r;
  r.kind = OpKind::mean_all;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  tape.record(r);
  return y;
}

void mean_all_backward(Tape& tape, const Record& r) {
  Variable* x = r.inputs[0];
  auto d = tape.grad_target(x);
  tape.backend().map(MapOp::broadcast, x->value, &r.output->grad, Broadcast::scalar, 0,
                     1.0 / static_cast<double>(x->value.numel()), d.beta, d.tensor);
}

}  // namespace diffpool::ops
