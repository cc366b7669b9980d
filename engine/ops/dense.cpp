// Dense products: linear layers, batched products of blocks, column concatenation.
//
//   linear:      y = x w + b                x (N,F), w (F,H), b (H), y (N,H)
//                dx += dy w^T,  dw += x^T dy,  db += sum_rows(dy)
//   bmm:         c_g = a_g b_g per block    a (B*M,K), b (B*K,N), c (B*M,N)
//                da_g += dc_g b_g^T,  db_g += a_g^T dc_g
//   concat_cols: y = [x1 | x2 | ...]        xi (N,Fi), y (N, sum Fi)
//                dxi += dy[:, columns of xi]
#include "engine/ops/op_util.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::ops {

using detail::new_output;
using detail::wants_grad;

Variable* linear(Tape& tape, Variable* x, Variable* w, Variable* b, Variable* x2) {
  const Tensor& X = x->value;
  const Tensor& W = w->value;
  const int64_t f2 = x2 ? x2->value.cols() : 0;
  DP_CHECK(X.cols() + f2 == W.rows(), "linear: x {}{} does not fit w {}", X.describe(),
           x2 ? " and x2 " + x2->value.describe() : std::string(), W.describe());
  detail::check_float_pair("linear", x, w);
  if (x2) {
    DP_CHECK(x2->value.rows() == X.rows(), "linear: x {} and x2 {} differ in rows", X.describe(), x2->value.describe());
    detail::check_float_pair("linear", x, x2);
  }
  const int64_t n = X.rows(), f = X.cols(), h = W.cols();
  Variable* y = new_output(tape, Shape{n, h}, X.dtype());
  if (b) DP_CHECK(b->value.numel() == h, "linear: bias {} for {} outputs", b->value.describe(), h);
  // y = b + x W[:f] + x2 W[f:], one backend call (one launch on CUDA for small batches).
  std::vector<GemmGroup> terms{GemmGroup{n, h, f, X.data(), f, W.data(), h, y->value.data(), h}};
  if (x2) terms.push_back(GemmGroup{n, h, f2, x2->value.data(), f2, detail::row_ptr(W, f), h, y->value.data(), h});
  tape.backend().gemm_sum_from_row(Trans::no, Trans::no, terms, b ? b->value.data() : nullptr, 1.0, X.dtype());
  Record r;
  r.kind = OpKind::linear;
  r.inputs = {x, w, b, x2};
  r.output = y;
  detail::record(tape, r);
  return y;
}

void linear_backward(Tape& tape, const Record& r) {
  Variable *x = r.inputs[0], *w = r.inputs[1], *b = r.inputs[2], *x2 = r.inputs[3];
  const Tensor& dy = r.output->grad;
  Backend& be = tape.backend();
  const int64_t n = x->value.rows(), f = x->value.cols(), h = w->value.cols();
  const int64_t f2 = x2 ? x2->value.cols() : 0;
  const DType dt = dy.dtype();
  // dx = dy W[:f]^T and dx2 = dy W[f:]^T: one grouped call when both start alike (one launch on
  // CUDA for small batches); the CPU runs them as the two products, in this order.
  std::vector<GemmGroup> inputs;
  double inputs_beta = 0;
  if (wants_grad(x)) {
    auto dx = tape.grad_target(x);
    inputs.push_back(GemmGroup{n, f, h, dy.data(), h, w->value.data(), h, dx.tensor.data(), f});
    inputs_beta = dx.beta;
  }
  if (wants_grad(x2)) {
    auto dx2 = tape.grad_target(x2);
    if (!inputs.empty() && (dx2.beta != inputs_beta || dx2.tensor.data() == inputs.front().c)) {
      be.gemm_grouped(Trans::no, Trans::yes, inputs, 1.0, inputs_beta, dt);  // x2 is x, or differs in beta
      inputs.clear();
    }
    inputs.push_back(GemmGroup{n, f2, h, dy.data(), h, detail::row_ptr(w->value, f), h, dx2.tensor.data(), f2});
    inputs_beta = dx2.beta;
  }
  if (!inputs.empty()) be.gemm_grouped(Trans::no, Trans::yes, inputs, 1.0, inputs_beta, dt);
  // dW = [x | x2]^T dy (W's two row blocks) and db = colsum(dy): one backend call (one launch on
  // CUDA for small batches); the CPU runs the two products and the column sum, in this order.
  std::vector<GemmGroup> weights;
  double weights_beta = 0;
  if (wants_grad(w)) {
    auto dw = tape.grad_target(w);
    weights.push_back(GemmGroup{f, h, n, x->value.data(), f, dy.data(), h, dw.tensor.data(), h});
    if (x2) weights.push_back(GemmGroup{f2, h, n, x2->value.data(), f2, dy.data(), h, detail::row_ptr(dw.tensor, f), h});
    weights_beta = dw.beta;
  }
  RowsGroup bias;
  double bias_beta = 0;
  if (wants_grad(b)) {
    auto db = tape.grad_target(b);
    bias = RowsGroup{n, h, dy.data(), nullptr, db.tensor.data()};
    bias_beta = db.beta;
  }
  if (!weights.empty() || bias.out) be.weight_gradients(weights, weights_beta, bias.out ? &bias : nullptr, bias_beta, dt);
}

Variable* bmm(Tape& tape, Variable* a, Variable* b, int64_t batch) {
  const Tensor& A = a->value;
  const Tensor& B = b->value;
  DP_CHECK(batch > 0 && A.rows() % batch == 0 && B.rows() % batch == 0, "bmm: a {} and b {} in {} blocks",
           A.describe(), B.describe(), batch);
  const int64_t m = A.rows() / batch, k = A.cols(), n = B.cols();
  DP_CHECK(B.rows() / batch == k, "bmm: blocks of a {} and b {} do not fit ({} blocks)", A.describe(),
           B.describe(), batch);
  detail::check_float_pair("bmm", a, b);
  Variable* c = new_output(tape, Shape{batch * m, n}, A.dtype());
  tape.backend().gemm_strided_batched(Trans::no, Trans::no, m, n, k, 1.0, A.data(), k, m * k, B.data(), n,
                                      k * n, 0.0, c->value.data(), n, m * n, batch, A.dtype());
  Record r;
  r.kind = OpKind::bmm;
  r.inputs = {a, b, nullptr, nullptr};
  r.output = c;
  r.ints = {batch, 0};
  detail::record(tape, r);
  return c;
}

void bmm_backward(Tape& tape, const Record& r) {
  Variable *a = r.inputs[0], *b = r.inputs[1];
  const int64_t batch = r.ints[0];
  const int64_t m = a->value.rows() / batch, k = a->value.cols(), n = b->value.cols();
  const Tensor& dc = r.output->grad;
  Backend& be = tape.backend();
  if (wants_grad(a)) {
    auto da = tape.grad_target(a);
    be.gemm_strided_batched(Trans::no, Trans::yes, m, k, n, 1.0, dc.data(), n, m * n, b->value.data(), n, k * n,
                            da.beta, da.tensor.data(), k, m * k, batch, dc.dtype());
  }
  if (wants_grad(b)) {
    auto db = tape.grad_target(b);
    be.gemm_strided_batched(Trans::yes, Trans::no, k, n, m, 1.0, a->value.data(), k, m * k, dc.data(), n, m * n,
                            db.beta, db.tensor.data(), n, k * n, batch, dc.dtype());
  }
}

Variable* concat_cols(Tape& tape, std::initializer_list<Variable*> inputs) {
  DP_CHECK(inputs.size() >= 1 && inputs.size() <= static_cast<std::size_t>(Record::kMaxInputs),
           "concat_cols takes 1 to {} inputs, got {}", Record::kMaxInputs, inputs.size());
  Variable* first = *inputs.begin();
  const int64_t n = first->value.rows();
  int64_t total = 0;
  for (Variable* v : inputs) {
    DP_CHECK(v->value.rows() == n, "concat_cols: {} rows and {}", n, v->value.describe());
    detail::check_float_pair("concat_cols", first, v);
    total += v->value.cols();
  }
  Variable* y = new_output(tape, Shape{n, total}, first->value.dtype());
  Record r;
  r.kind = OpKind::concat_cols;
  r.output = y;
  int64_t offset = 0;
  std::size_t i = 0;
  for (Variable* v : inputs) {
    const int64_t f = v->value.cols();
    tape.backend().copy_2d(n, f, v->value.dtype(), v->value.data(), f,
                           static_cast<char*>(y->value.data()) + offset * dtype_size(v->value.dtype()), total,
                           1.0, 0.0);
    offset += f;
    r.inputs[i++] = v;
  }
  r.ints = {static_cast<int64_t>(inputs.size()), 0};
  detail::record(tape, r);
  return y;
}

Variable* concat_all(Tape& tape, const std::vector<Variable*>& inputs) {
  DP_CHECK(!inputs.empty(), "concat_all of nothing");
  Variable* acc = inputs[0];
  std::size_t i = 1;
  while (i < inputs.size()) {
    const std::size_t take = std::min<std::size_t>(3, inputs.size() - i);
    acc = take == 1   ? concat_cols(tape, {acc, inputs[i]})
          : take == 2 ? concat_cols(tape, {acc, inputs[i], inputs[i + 1]})
                      : concat_cols(tape, {acc, inputs[i], inputs[i + 1], inputs[i + 2]});
    i += take;
  }
  return acc;
}

void concat_cols_backward(Tape& tape, const Record& r) {
  const Tensor& dy = r.output->grad;
  const int64_t n = dy.rows(), total = dy.cols();
  int64_t offset = 0;
  for (int64_t i = 0; i < r.ints[0]; ++i) {
    Variable* v = r.inputs[static_cast<std::size_t>(i)];
    const int64_t f = v->value.cols();
    if (wants_grad(v)) {
      auto dv = tape.grad_target(v);
      tape.backend().copy_2d(n, f, dy.dtype(), static_cast<const char*>(dy.data()) + offset * dtype_size(dy.dtype()),
                             total, dv.tensor.data(), f, 1.0, dv.beta);
    }
    offset += f;
  }
}

}  // namespace diffpool::ops
