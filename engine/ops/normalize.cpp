// Normalisation.
//
//   l2_normalize_rows: y_i = x_i / max(||x_i||, eps)          x, y (N,F)
//       dx_i += (dy_i - y_i <y_i, dy_i>) / ||x_i||           (dy_i / eps where ||x_i|| < eps)
//       The paper (section 4.1) l2-normalises the node embeddings of every GraphSAGE layer.
//       With relu, the op's output is max(y, 0), the layer's activation in the same pass: its
//       gradient is masked by y > 0 and goes through the l2 backward above. The same arithmetic
//       as relu(l2_normalize_rows(x)), one primitive each way instead of two.
//   batch_norm: y = gamma (x - mu) / sqrt(var + eps) + beta, per column over the rows
//       (training: batch mean and biased variance; evaluation: running statistics).
//       dx = gamma invstd / N (N dy - sum(dy) - xhat sum(dy xhat)),
//       dgamma += sum(dy xhat), dbeta += sum(dy)
#include "engine/ops/op_util.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::ops {

using detail::new_output;
using detail::wants_grad;

Variable* l2_normalize_rows(Tape& tape, Variable* x, double eps, bool relu) {
  Variable* out = new_output(tape, x->value.shape(), x->value.dtype());
  Workspace& ws = tape.workspace();
  Tensor norms = ws.empty(Shape{x->value.rows()}, x->value.dtype());
  // With relu the normalised rows are kept beside the op's output for the backward's mask.
  Tensor y = relu ? ws.empty(x->value.shape(), x->value.dtype()) : out->value;
  tape.backend().l2_normalize_rows_forward(x->value, eps, y, norms, relu ? &out->value : nullptr);
  Record r;
  r.kind = OpKind::l2_normalize_rows;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = out;
  r.saved = {norms, relu ? y : Tensor{}};
  r.scalars = {eps, relu ? 1.0 : 0.0, 0};
  detail::record(tape, r);
  return out;
}

void l2_normalize_rows_backward(Tape& tape, const Record& r) {
  auto dx = tape.grad_target(r.inputs[0]);
  const bool relu = r.scalars[1] != 0;
  tape.backend().l2_normalize_rows_backward(r.output->grad, relu ? r.saved[1] : r.output->value, r.saved[0],
                                            r.scalars[0], relu, dx.beta, dx.tensor);
}

Variable* batch_norm(Tape& tape, Variable* x, Variable* gamma, Variable* beta, Tensor running_mean,
                     Tensor running_var, bool training, double momentum, double eps) {
  const int64_t f = x->value.cols();
  DP_CHECK(gamma->value.numel() == f && beta->value.numel() == f && running_mean.numel() == f &&
               running_var.numel() == f,
           "batch_norm: x {} with gamma {}, beta {}", x->value.describe(), gamma->value.describe(),
           beta->value.describe());
  Variable* y = new_output(tape, x->value.shape(), x->value.dtype());
  Tensor mean = tape.workspace().empty(Shape{f}, x->value.dtype());
  Tensor invstd = tape.workspace().empty(Shape{f}, x->value.dtype());
  tape.backend().batch_norm_forward(x->value, gamma->value, beta->value, training, momentum, eps, running_mean,
                                    running_var, y->value, mean, invstd);
  if (!training) return y;  // evaluation is never differentiated
  Record r;
  r.kind = OpKind::batch_norm;
  r.inputs = {x, gamma, beta, nullptr};
  r.output = y;
  r.saved = {mean, invstd};
  detail::record(tape, r);
  return y;
}

void batch_norm_backward(Tape& tape, const Record& r) {
  Variable *x = r.inputs[0], *gamma = r.inputs[1], *beta = r.inputs[2];
  // x's gradient is written (beta 0) or added to (beta 1); when x needs none it goes to scratch.
  Tensor dx;
  double dx_beta = 0;
  if (wants_grad(x)) {
    auto target = tape.grad_target(x);
    dx = target.tensor;
    dx_beta = target.beta;
  } else {
    dx = tape.workspace().empty(x->value.shape(), x->value.dtype());
  }
  Tensor dgamma = wants_grad(gamma) ? tape.grad(gamma) : tape.workspace().zeros(gamma->value.shape(), gamma->value.dtype());
  Tensor dbeta = wants_grad(beta) ? tape.grad(beta) : tape.workspace().zeros(beta->value.shape(), beta->value.dtype());
  tape.backend().batch_norm_backward(r.output->grad, x->value, gamma->value, r.saved[0], r.saved[1], dx_beta, dx, dgamma,
                                     dbeta);
}

}  // namespace diffpool::ops
