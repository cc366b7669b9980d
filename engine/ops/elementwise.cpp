// Elementwise ops.
//
//   add:        y = alpha a + beta b          da += alpha dy,  db += beta dy
//   mul:        y = a * b                     da += dy * b,    db += dy * a
//   scale_rows: y = x * r (r per row)         x (N,F), r (N,1)
//               dx += dy * r,  dr += sum_cols(dy * x)
//   relu:       y = max(x, 0)                 dx += dy * [x > 0]
//   sqrt:       y = sqrt(max(x,0) + eps)      dx += dy / (2 y)   (zero where x < 0)
//   reciprocal: y = 1 / (x + eps)             dx += -dy y^2
//   dropout:    y = x m / (1 - p), m ~ Bernoulli(1 - p) from (seed, index)     dx += dy m / (1 - p)
#include "engine/ops/op_util.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::ops {

using detail::new_output;
using detail::wants_grad;

namespace {
Variable* unary(Tape& tape, OpKind kind, MapOp op, Variable* x, double c) {
  Variable* y = new_output(tape, x->value.shape(), x->value.dtype());
  tape.backend().map(op, x->value, nullptr, Broadcast::full, c, 1.0, 0.0, y->value);
  Record r;
  r.kind = kind;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  r.scalars = {c, 0, 0};
  detail::record(tape, r);
  return y;
}
}  // namespace

Variable* add(Tape& tape, Variable* a, Variable* b, double alpha, double beta) {
  if (b) {
    DP_CHECK(a->value.shape() == b->value.shape(), "add: shapes differ: {} and {}", a->value.describe(),
             b->value.describe());
    detail::check_float_pair("add", a, b);
  }
  Variable* y = new_output(tape, a->value.shape(), a->value.dtype());
  // With alpha 1 (every sum of losses), y = a + beta b is one pass (MapOp::add), bit for bit the
  // two passes' beta b + a. Otherwise y = alpha (a + (beta / alpha) b) would divide by alpha, so
  // two passes keep it exact.
  if (b && alpha == 1.0) {
    tape.backend().map(MapOp::add, a->value, &b->value, Broadcast::full, beta, 1.0, 0.0, y->value);
  } else {
    tape.backend().map(MapOp::copy, a->value, nullptr, Broadcast::full, 0, alpha, 0.0, y->value);
    if (b) tape.backend().map(MapOp::copy, b->value, nullptr, Broadcast::full, 0, beta, 1.0, y->value);
  }
  Record r;
  r.kind = OpKind::add;
  r.inputs = {a, b, nullptr, nullptr};
  r.output = y;
  r.scalars = {alpha, beta, 0};
  detail::record(tape, r);
  return y;
}

void add_backward(Tape& tape, const Record& r) {
  const Tensor& dy = r.output->grad;
  bool passed = false;  // dy handed on to one input as its gradient; the other gets a copy
  for (int i = 0; i < 2; ++i) {
    Variable* in = r.inputs[static_cast<std::size_t>(i)];
    if (!wants_grad(in)) continue;
    // Unscaled into an input with no gradient yet: that input's gradient is dy itself. The copy
    // for the other input (if any) is made here, before anything adds into dy's memory.
    if (!passed && r.inputs[0] != r.inputs[1] && r.scalars[static_cast<std::size_t>(i)] == 1.0 &&
        tape.pass_grad(in, dy)) {
      passed = true;
      continue;
    }
    auto d = tape.grad_target(in);
    tape.backend().map(MapOp::copy, dy, nullptr, Broadcast::full, 0, r.scalars[static_cast<std::size_t>(i)], d.beta, d.tensor);
  }
}

Variable* mul(Tape& tape, Variable* a, Variable* b) {
  DP_CHECK(a->value.shape() == b->value.shape(), "mul: shapes differ: {} and {}", a->value.describe(),
           b->value.describe());
  detail::check_float_pair("mul", a, b);
  Variable* y = new_output(tape, a->value.shape(), a->value.dtype());
  tape.backend().map(MapOp::mul, a->value, &b->value, Broadcast::full, 0, 1.0, 0.0, y->value);
  Record r;
  r.kind = OpKind::mul;
  r.inputs = {a, b, nullptr, nullptr};
  r.output = y;
  detail::record(tape, r);
  return y;
}

void mul_backward(Tape& tape, const Record& r) {
  Variable *a = r.inputs[0], *b = r.inputs[1];
  const Tensor& dy = r.output->grad;
  if (wants_grad(a)) {
    auto d = tape.grad_target(a);
    tape.backend().map(MapOp::mul, dy, &b->value, Broadcast::full, 0, 1.0, d.beta, d.tensor);
  }
  if (wants_grad(b)) {
    auto d = tape.grad_target(b);
    tape.backend().map(MapOp::mul, dy, &a->value, Broadcast::full, 0, 1.0, d.beta, d.tensor);
  }
}

Variable* scale_rows(Tape& tape, Variable* x, Variable* rfac) {
  DP_CHECK(rfac->value.numel() == x->value.rows(), "scale_rows: x {} with factors {}", x->value.describe(),
           rfac->value.describe());
  detail::check_float_pair("scale_rows", x, rfac);
  Variable* y = new_output(tape, x->value.shape(), x->value.dtype());
  tape.backend().map(MapOp::mul, x->value, &rfac->value, Broadcast::col, 0, 1.0, 0.0, y->value);
  Record r;
  r.kind = OpKind::scale_rows;
  r.inputs = {x, rfac, nullptr, nullptr};
  r.output = y;
  detail::record(tape, r);
  return y;
}

void scale_rows_backward(Tape& tape, const Record& r) {
  Variable *x = r.inputs[0], *rfac = r.inputs[1];
  const Tensor& dy = r.output->grad;
  if (wants_grad(x)) {
    auto d = tape.grad_target(x);
    tape.backend().map(MapOp::mul, dy, &rfac->value, Broadcast::col, 0, 1.0, d.beta, d.tensor);
  }
  if (wants_grad(rfac)) {
    auto d = tape.grad_target(rfac);
    tape.backend().reduce_rows(Reduce::dot, dy, &x->value, 1.0, d.beta, d.tensor);
  }
}

Variable* relu(Tape& tape, Variable* x) { return unary(tape, OpKind::relu, MapOp::relu, x, 0.0); }

void relu_backward(Tape& tape, const Record& r) {
  Variable* x = r.inputs[0];
  auto d = tape.grad_target(x);
  tape.backend().map(MapOp::relu_backward, r.output->grad, &x->value, Broadcast::full, 0, 1.0, d.beta, d.tensor);
}

Variable* sqrt(Tape& tape, Variable* x, double eps) { return unary(tape, OpKind::sqrt, MapOp::sqrt, x, eps); }

void sqrt_backward(Tape& tape, const Record& r) {
  Variable* x = r.inputs[0];
  // dx += 0.5 dy / y where x > 0; the relu_backward mask drops the clamped region x < 0.
  Tensor tmp = tape.workspace().empty(x->value.shape(), x->value.dtype());
  tape.backend().map(MapOp::div, r.output->grad, &r.output->value, Broadcast::full, 0, 0.5, 0.0, tmp);
  auto d = tape.grad_target(x);
  tape.backend().map(MapOp::relu_backward, tmp, &x->value, Broadcast::full, 0, 1.0, d.beta, d.tensor);
}

Variable* reciprocal(Tape& tape, Variable* x, double eps) {
  return unary(tape, OpKind::reciprocal, MapOp::reciprocal, x, eps);
}

void reciprocal_backward(Tape& tape, const Record& r) {
  auto d = tape.grad_target(r.inputs[0]);
  tape.backend().map(MapOp::reciprocal_backward, r.output->grad, &r.output->value, Broadcast::full, 0, 1.0, d.beta,
                     d.tensor);
}

Variable* dropout(Tape& tape, Variable* x, double p, uint64_t seed) {
  DP_CHECK(p >= 0.0 && p < 1.0, "dropout probability {} outside [0, 1)", p);
  if (p == 0.0) return x;
  Variable* y = new_output(tape, x->value.shape(), x->value.dtype());
  tape.backend().dropout(x->value, p, seed, 0.0, y->value);
  Record r;
  r.kind = OpKind::dropout;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  r.scalars = {p, 0, 0};
  r.ints = {static_cast<int64_t>(seed), 0};
  detail::record(tape, r);
  return y;
}

void dropout_backward(Tape& tape, const Record& r) {
  auto d = tape.grad_target(r.inputs[0]);
  tape.backend().dropout(r.output->grad, r.scalars[0], static_cast<uint64_t>(r.ints[0]), d.beta, d.tensor);
}

}  // namespace diffpool::ops
