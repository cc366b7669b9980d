// Softmax and the classification loss.
//
//   softmax_rows:  y_ij = exp(x_ij) / sum_k exp(x_ik)          dx += y * (dy - sum_j(dy * y))
//                  DiffPool's assignment matrix S = softmax(GNN_pool(A, X)) (paper eq. 5).
//   cross_entropy: l_b = -log softmax(logits_b)[label_b]       logits (B,C), l (B,1)
//                  dlogits_b += dl_b (softmax(logits_b) - onehot(label_b))
#include "engine/ops/op_util.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::ops {

using detail::new_output;

Variable* softmax_rows(Tape& tape, Variable* x, bool in_place) {
  Variable* y = in_place ? tape.make_output(x->value) : new_output(tape, x->value.shape(), x->value.dtype());
  tape.backend().softmax_rows_forward(x->value, y->value);
  Record r;
  r.kind = OpKind::softmax_rows;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = y;
  detail::record(tape, r);
  return y;
}

void softmax_rows_backward(Tape& tape, const Record& r) {
  auto dx = tape.grad_target(r.inputs[0]);
  tape.backend().softmax_rows_backward(r.output->grad, r.output->value, dx.beta, dx.tensor);
}

Variable* cross_entropy(Tape& tape, Variable* logits, const Tensor& labels) {
  const int64_t b = logits->value.rows();
  DP_CHECK(labels.numel() == b && labels.dtype() == DType::i32, "cross_entropy: logits {} with labels {}",
           logits->value.describe(), labels.describe());
  Variable* losses = new_output(tape, Shape{b, 1}, logits->value.dtype());
  Tensor probs = tape.workspace().empty(logits->value.shape(), logits->value.dtype());
  tape.backend().cross_entropy_forward(logits->value, labels, probs, losses->value);
  Record r;
  r.kind = OpKind::cross_entropy;
  r.inputs = {logits, nullptr, nullptr, nullptr};
  r.output = losses;
  r.saved = {probs, labels};
  detail::record(tape, r);
  return losses;
}

void cross_entropy_backward(Tape& tape, const Record& r) {
  tape.backend().cross_entropy_backward(r.saved[0], r.saved[1], r.output->grad, tape.grad(r.inputs[0]));
}

}  // namespace diffpool::ops
