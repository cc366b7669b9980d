// Gradient checks in double precision: every op, then every layer and loss of the model, against
// central differences. Batches have more than one graph and graphs of unequal sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/nn/model.hpp"
#include "engine/ops/ops.hpp"
#include "tests/unit/gradcheck.hpp"
#include "tests/unit/synthetic.hpp"

namespace diffpool {
namespace {

using testing::expect_gradients_match;
using testing::GradInput;
using testing::random_input;

class GradCheck : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  // Segments of unequal sizes (4, 1, 3, 6 rows) and uniform ones (3 graphs x 4 rows).
  std::vector<int64_t> offsets = {0, 4, 5, 8, 14};
};

// A random sparse matrix over rows of several blocks, with its transpose, in a workspace that
// lives as long as the test.
struct SparseFixture {
  HostCsr host;
  HostCsr host_t;
  Csr a, at;
};

SparseFixture random_block_csr(Workspace& ws, const std::vector<int64_t>& offsets, uint64_t seed) {
  Rng rng(seed);
  SparseFixture f;
  const int64_t n = offsets.back();
  f.host.rows = f.host.cols = n;
  f.host.row_ptr.push_back(0);
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g)
    for (int64_t r = offsets[g]; r < offsets[g + 1]; ++r) {
      for (int64_t c = offsets[g]; c < offsets[g + 1]; ++c)
        if (c != r && rng.uniform() < 0.6) {
          f.host.col_idx.push_back(static_cast<int32_t>(c));
          f.host.values.push_back(rng.uniform(0.1, 1.0));
        }
      f.host.row_ptr.push_back(static_cast<int32_t>(f.host.col_idx.size()));
    }
  f.host_t = transpose(f.host);
  f.a = upload_csr(ws, f.host, DType::f64);
  f.at = upload_csr(ws, f.host_t, DType::f64);
  return f;
}

TEST_F(GradCheck, Linear) {
  expect_gradients_match(*backend, {random_input("x", {5, 3}, 1), random_input("w", {3, 4}, 2), random_input("b", {4}, 3)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::linear(t, v[0], v[1], v[2]); });
  expect_gradients_match(*backend, {random_input("x", {5, 3}, 4), random_input("w", {3, 2}, 5)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::linear(t, v[0], v[1], nullptr); });
  // [x | x2] w + b as two products (the GraphSAGE layer): every gradient, and the value of the
  // product with the concatenation.
  expect_gradients_match(*backend,
                         {random_input("x", {5, 3}, 6), random_input("w", {5, 4}, 7), random_input("b", {4}, 8),
                          random_input("x2", {5, 2}, 9)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::linear(t, v[0], v[1], v[2], v[3]); });
  expect_gradients_match(*backend,
                         {random_input("x", {5, 3}, 10), random_input("w", {5, 4}, 11), random_input("x2", {5, 2}, 12)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::linear(t, v[0], v[1], nullptr, v[2]); });
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  auto constant = [&](const GradInput& in) { return constant_input(tape, in); };
  Variable* x = constant(random_input("x", {6, 3}, 13));
  Variable* x2 = constant(random_input("x2", {6, 4}, 14));
  Variable* w = constant(random_input("w", {7, 5}, 15));
  Variable* b = constant(random_input("b", {5}, 16));
  const auto split = download<double>(*backend, ops::linear(tape, x, w, b, x2)->value);
  const auto joined = download<double>(*backend, ops::linear(tape, ops::concat_cols(tape, {x, x2}), w, b)->value);
  ASSERT_EQ(split.size(), joined.size());
  for (std::size_t i = 0; i < split.size(); ++i) EXPECT_NEAR(split[i], joined[i], 1e-12) << "element " << i;
}

TEST_F(GradCheck, BatchedMatmul) {
  expect_gradients_match(*backend, {random_input("a", {3 * 2, 4}, 1), random_input("b", {3 * 4, 5}, 2)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::bmm(t, v[0], v[1], 3); });
}

TEST_F(GradCheck, ConcatColumns) {
  expect_gradients_match(*backend,
                         {random_input("a", {4, 2}, 1), random_input("b", {4, 3}, 2), random_input("c", {4, 1}, 3),
                          random_input("d", {4, 2}, 4), random_input("e", {4, 2}, 5)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::concat_all(t, v); });
}

TEST_F(GradCheck, SparseTimesDense) {
  Workspace fixture_ws(*backend);
  SparseFixture f = random_block_csr(fixture_ws, offsets, 7);
  expect_gradients_match(*backend, {random_input("x", {14, 3}, 1)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::spmm(t, f.a, f.at, v[0]); });
}

TEST_F(GradCheck, SegmentMatmulUnequalAndUniform) {
  Workspace fixture_ws(*backend);
  Segments unequal = make_segments(fixture_ws, offsets);
  Segments uniform = make_uniform_segments(fixture_ws, 3, 4);
  expect_gradients_match(*backend, {random_input("s", {14, 3}, 1), random_input("z", {14, 5}, 2)},
                         [&](Tape& t, const std::vector<Variable*>& v) {
                           return ops::segment_matmul_tn(t, v[0], v[1], unequal);
                         });
  expect_gradients_match(*backend, {random_input("s", {12, 3}, 3), random_input("z", {12, 2}, 4)},
                         [&](Tape& t, const std::vector<Variable*>& v) {
                           return ops::segment_matmul_tn(t, v[0], v[1], uniform);
                         });
  // The same variable on both sides (S^T S, as in the link-prediction loss).
  expect_gradients_match(*backend, {random_input("s", {14, 3}, 5)}, [&](Tape& t, const std::vector<Variable*>& v) {
    return ops::segment_matmul_tn(t, v[0], v[0], unequal);
  });
}

TEST_F(GradCheck, SegmentGramSquared) {
  Workspace fixture_ws(*backend);
  // Segments smaller and larger than the 3 columns (both Gram forms) and an empty one.
  Segments mixed = make_segments(fixture_ws, {0, 2, 2, 7, 10, 14});
  expect_gradients_match(*backend, {random_input("s", {14, 3}, 21)}, [&](Tape& t, const std::vector<Variable*>& v) {
    return ops::segment_gram_sq(t, v[0], mixed);
  });
  // Against its definition through S^T S.
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  GradInput in = random_input("s", {14, 3}, 22);
  Tensor st = ws.empty(in.shape, DType::f64);
  backend->copy_bytes(st.data(), st.device(), in.values.data(), Device::cpu, st.bytes());
  Variable* s = tape.input(st, false);
  Segments five = make_uniform_segments(fixture_ws, 5, 3);
  const auto direct = download<double>(*backend, ops::segment_gram_sq(tape, s, mixed)->value);
  Variable* gram = ops::segment_matmul_tn(tape, s, s, mixed);
  const auto reference = download<double>(*backend, ops::segment_reduce(tape, ops::row_dot(tape, gram, gram), five,
                                                                        SegmentReduce::sum)->value);
  for (std::size_t g = 0; g < direct.size(); ++g) EXPECT_NEAR(direct[g], reference[g], 1e-12 * (1 + reference[g]));
}

// Rows in [0.02, 0.3] with 4 columns: every P_ij = s_i . s_j lies in (0, 0.36], inside the
// domain of both logarithms and below the clamp at 1.
GradInput assignment_like_input(std::string name, Shape shape, uint64_t seed) {
  GradInput in = random_input(std::move(name), shape, seed);
  for (double& v : in.values) v = 0.02 + 0.28 * (v - std::floor(v));
  return in;
}

TEST_F(GradCheck, LinkBinaryCrossEntropy) {
  Workspace fixture_ws(*backend);
  SparseFixture f = random_block_csr(fixture_ws, offsets, 31);
  Segments segments = make_segments(fixture_ws, offsets);
  const GradInput in = assignment_like_input("s", {14, 4}, 32);
  expect_gradients_match(*backend, {in}, [&](Tape& t, const std::vector<Variable*>& v) {
    return ops::link_bce(t, v[0], f.a, segments);
  });
  // Against its definition with a dense n x n block per graph.
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  Tensor st = ws.empty(in.shape, DType::f64);
  backend->copy_bytes(st.data(), st.device(), in.values.data(), Device::cpu, st.bytes());
  const auto rows = download<double>(*backend, ops::link_bce(tape, tape.input(st, false), f.a, segments)->value);
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g)
    for (int64_t i = offsets[g]; i < offsets[g + 1]; ++i) {
      double expected = 0;
      for (int64_t j = offsets[g]; j < offsets[g + 1]; ++j) {
        double p = 0;
        for (int64_t c = 0; c < 4; ++c)
          p += in.values[static_cast<std::size_t>(i * 4 + c)] * in.values[static_cast<std::size_t>(j * 4 + c)];
        bool edge = false;
        for (int32_t e = f.host.row_ptr[static_cast<std::size_t>(i)]; e < f.host.row_ptr[static_cast<std::size_t>(i) + 1]; ++e)
          edge = edge || f.host.col_idx[static_cast<std::size_t>(e)] == j;
        expected -= edge ? std::log(std::min(p, 1.0) + 1e-7) : std::log(1 - std::min(p, 1.0) + 1e-7);
      }
      EXPECT_NEAR(rows[static_cast<std::size_t>(i)], expected, 1e-12 * (1 + std::abs(expected))) << "row " << i;
    }
}

TEST_F(GradCheck, SegmentReduce) {
  Workspace fixture_ws(*backend);
  Segments unequal = make_segments(fixture_ws, {0, 4, 4, 5, 8, 14});  // includes an empty segment
  for (SegmentReduce kind : {SegmentReduce::sum, SegmentReduce::mean, SegmentReduce::max}) {
    SCOPED_TRACE(segment_reduce_name(kind));
    // Distinct values, so max has no ties within the step.
    GradInput x = random_input("x", {14, 3}, 11);
    for (std::size_t i = 0; i < x.values.size(); ++i) x.values[i] += 0.01 * static_cast<double>(i);
    expect_gradients_match(*backend, {x}, [&](Tape& t, const std::vector<Variable*>& v) {
      return ops::segment_reduce(t, v[0], unequal, kind);
    });
  }
}

TEST_F(GradCheck, Elementwise) {
  auto two = [&](auto op) {
    expect_gradients_match(*backend, {random_input("a", {4, 3}, 1), random_input("b", {4, 3}, 2)},
                           [op](Tape& t, const std::vector<Variable*>& v) { return op(t, v[0], v[1]); });
  };
  two([](Tape& t, Variable* a, Variable* b) { return ops::add(t, a, b, 0.7, -1.3); });
  two([](Tape& t, Variable* a, Variable* b) { return ops::mul(t, a, b); });
  two([](Tape& t, Variable* a, Variable* b) { return ops::row_dot(t, a, b); });
  expect_gradients_match(*backend, {random_input("a", {4, 3}, 3)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::add(t, v[0], nullptr, -2.5); });
  expect_gradients_match(*backend, {random_input("a", {4, 3}, 3)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::row_dot(t, v[0], v[0]); });
  expect_gradients_match(*backend, {random_input("x", {4, 3}, 4), random_input("r", {4, 1}, 5)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::scale_rows(t, v[0], v[1]); });
  // ReLU away from its kink.
  GradInput x = random_input("x", {5, 4}, 6);
  for (double& value : x.values) value += value >= 0 ? 0.05 : -0.05;
  expect_gradients_match(*backend, {x}, [](Tape& t, const std::vector<Variable*>& v) { return ops::relu(t, v[0]); });
  expect_gradients_match(*backend, {random_input("x", {5, 4}, 7, 0.2, 2.0)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::sqrt(t, v[0], 1e-12); });
  expect_gradients_match(*backend, {random_input("x", {5, 4}, 8, 0.2, 2.0)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::reciprocal(t, v[0], 1e-3); });
  expect_gradients_match(*backend, {random_input("x", {5, 4}, 9, 0.05, 1.0)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::row_xlogx(t, v[0]); });
  expect_gradients_match(*backend, {random_input("x", {6, 5}, 10)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::dropout(t, v[0], 0.3, 1234); });
}

// The l2 normalisation with the ReLU in the same op is, value and gradient, bit for bit what the
// two ops in a row give (the model relies on it: training output is unchanged by the fusion), in
// f32 and f64, with zero rows, rows under eps and a gradient added to an existing one.
TEST_F(GradCheck, L2NormalizeReluIsTheTwoOpsExactly) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dtype));
    const int64_t rows = 9, cols = 13;
    Rng rng(21);
    std::vector<double> x(static_cast<std::size_t>(rows * cols)), dy(x.size());
    for (double& v : x) v = rng.uniform(-2, 2);
    for (double& v : dy) v = rng.uniform(-1, 1);
    for (int64_t c = 0; c < cols; ++c) {
      x[static_cast<std::size_t>(c)] = 0;                      // a zero row
      x[static_cast<std::size_t>(cols + c)] = 1e-14 * (c % 3);  // a row under eps
    }
    auto run = [&](bool fused) {
      Workspace ws(*backend);
      Tape tape(*backend, ws);
      Tensor xt = ws.empty(Shape{rows, cols}, dtype), dyt = ws.empty(Shape{rows, cols}, dtype);
      upload_converted(ws.backend(), x, xt);
      upload_converted(ws.backend(), dy, dyt);
      Variable* input = tape.input(xt, true);
      Variable* y = fused ? ops::l2_normalize_rows(tape, input, 1e-12, true)
                          : ops::relu(tape, ops::l2_normalize_rows(tape, input));
      // row_sum(input) too, so that one of the two gradients of input is added to the other
      Variable* loss = ops::add(tape, ops::row_dot(tape, y, tape.constant(dyt)), ops::row_sum(tape, input));
      tape.backward(ops::mean_all(tape, loss));
      return std::make_pair(download_converted<double>(*backend, y->value),
                            download_converted<double>(*backend, input->grad));
    };
    const auto fused = run(true), two = run(false);
    ASSERT_EQ(fused.first.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(std::memcmp(&fused.first[i], &two.first[i], sizeof(double)), 0) << "value " << i;
      ASSERT_EQ(std::memcmp(&fused.second[i], &two.second[i], sizeof(double)), 0) << "gradient " << i;
    }
  }
}

// mean_all(x, -1) (the entropy loss's sign folded into its mean) is bit for bit
// add(mean_all(x), nullptr, -1), forward and backward, with a gradient of x already there to add to.
TEST_F(GradCheck, NegatedMeanIsTheMeanNegatedExactly) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dtype));
    const int64_t rows = 23, cols = 3;
    Rng rng(22);
    std::vector<double> x(static_cast<std::size_t>(rows * cols));
    for (double& v : x) v = rng.uniform(-3, 3);
    auto run = [&](bool folded) {
      Workspace ws(*backend);
      Tape tape(*backend, ws);
      Tensor xt = ws.empty(Shape{rows, cols}, dtype);
      upload_converted(ws.backend(), x, xt);
      Variable* input = tape.input(xt, true);
      Variable* m = folded ? ops::mean_all(tape, input, -1.0) : ops::add(tape, ops::mean_all(tape, input), nullptr, -1.0);
      Variable* loss = ops::add(tape, ops::mul(tape, m, m), ops::mean_all(tape, input), 1.0, 0.7);
      tape.backward(loss);
      return std::make_pair(download_converted<double>(*backend, m->value),
                            download_converted<double>(*backend, input->grad));
    };
    const auto folded = run(true), two = run(false);
    ASSERT_EQ(folded.second.size(), x.size());
    ASSERT_EQ(std::memcmp(&folded.first[0], &two.first[0], sizeof(double)), 0) << "value";
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(std::memcmp(&folded.second[i], &two.second[i], sizeof(double)), 0) << "gradient " << i;
  }
}

// row_xlogx keeps the forward's log x for the backward when x fits in one chunk of scratch
// (2^20 elements) and recomputes it chunk by chunk otherwise: both paths, against the closed
// forms y_i = sum_j x_ij log x_ij and, for the loss mean(y), dx_ij = (log x_ij + 1) / n.
TEST_F(GradCheck, RowXlogxOneChunkAndSeveral) {
  for (const int64_t rows : {int64_t{7}, (int64_t{1} << 20) / 4 * 2 + 5}) {  // 1 chunk, then 3 of 2^18 rows
    SCOPED_TRACE(rows);
    const int64_t cols = 4;
    Rng rng(11);
    std::vector<double> x(static_cast<std::size_t>(rows * cols));
    for (double& v : x) v = rng.uniform(0.05, 1.0);
    Workspace ws(*backend);
    Tape tape(*backend, ws);
    Variable* input = tape.input(upload<double>(*backend, x, Shape{rows, cols}), true);
    Variable* y = ops::row_xlogx(tape, input);
    tape.backward(ops::mean_all(tape, y));
    const std::vector<double> y_host = download<double>(*backend, y->value);
    const std::vector<double> dx_host = download<double>(*backend, input->grad);
    for (int64_t r = 0; r < rows; ++r) {
      double expected = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const std::size_t i = static_cast<std::size_t>(r * cols + c);
        expected += x[i] * std::log(x[i]);
        ASSERT_NEAR(dx_host[i], (std::log(x[i]) + 1.0) / static_cast<double>(rows), 1e-15) << "row " << r << " col " << c;
      }
      ASSERT_NEAR(y_host[static_cast<std::size_t>(r)], expected, 1e-14) << "row " << r;
    }
  }
}

TEST_F(GradCheck, Reductions) {
  expect_gradients_match(*backend, {random_input("x", {5, 3}, 1)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::row_sum(t, v[0]); });
  expect_gradients_match(*backend, {random_input("x", {5, 3}, 2)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::mean_all(t, v[0]); });
  expect_gradients_match(*backend, {random_input("x", {5, 3}, 3)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::mean_all(t, v[0], -2.5); });
}

TEST_F(GradCheck, Normalisation) {
  expect_gradients_match(*backend, {random_input("x", {6, 4}, 1)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::l2_normalize_rows(t, v[0]); });
  // With the ReLU in the same op (entries of both signs; the zero rows, where neither the norm nor
  // the ReLU is differentiable, are in L2NormalizeReluIsTheTwoOpsExactly).
  expect_gradients_match(*backend, {random_input("x", {7, 5}, 2)}, [](Tape& t, const std::vector<Variable*>& v) {
    return ops::l2_normalize_rows(t, v[0], 1e-12, true);
  });
  Tensor mean = allocate_tensor(*backend, Shape{3}, DType::f64);
  Tensor var = allocate_tensor(*backend, Shape{3}, DType::f64);
  backend->fill(mean, 0.0);
  backend->fill(var, 1.0);
  expect_gradients_match(*backend,
                         {random_input("x", {7, 3}, 2), random_input("gamma", {3}, 3, 0.5, 1.5), random_input("beta", {3}, 4)},
                         [&](Tape& t, const std::vector<Variable*>& v) {
                           return ops::batch_norm(t, v[0], v[1], v[2], mean, var, true);
                         });
}

TEST_F(GradCheck, SoftmaxAndCrossEntropy) {
  expect_gradients_match(*backend, {random_input("x", {5, 4}, 1, -2, 2)},
                         [](Tape& t, const std::vector<Variable*>& v) { return ops::softmax_rows(t, v[0]); });
  Tensor labels = upload<int32_t>(*backend, std::vector<int32_t>{2, 0, 3, 1, 3}, Shape{5});
  expect_gradients_match(*backend, {random_input("logits", {5, 4}, 2, -2, 2)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::cross_entropy(t, v[0], labels); });
}

// ---- layers and losses of the model, through the whole forward pass --------------------------

struct ModelCase {
  std::string name;
  ModelConfig config;
  enum class Loss { total, classification, link, entropy } loss = Loss::total;
  // The batch: five graphs of unequal sizes, 35% of node pairs linked (level 0 on the CSR path),
  // or dense graphs whose level 0 takes the dense per-graph blocks (GraphBatch::dense()).
  bool dense_graphs = false;
};

void check_model_gradients(Backend& backend, const ModelCase& c) {
  SCOPED_TRACE(c.name);
  // Five graphs of unequal sizes, batch of all five.
  GraphDataset data = c.dense_graphs ? testing::synthetic_dataset({11, 9, 13, 10, 12}, 3, 3, 42, 0.9)
                                     : testing::synthetic_dataset({7, 3, 9, 5, 6}, 3, 3, 42);
  DiffPoolModel model(c.config, data.num_features, data.num_classes(), data.max_nodes());
  model.parameters().allocate(backend, DType::f64);
  model.parameters().initialize(7);
  {  // Move every parameter off zero (biases start at 0), away from the kinks of l2-normalising a
     // zero row and of ReLU at 0.
    std::vector<double> v = download<double>(backend, model.parameters().values());
    Rng rng(8);
    for (double& x : v) x += rng.uniform(-0.2, 0.2);
    model.parameters().set_values(v);
  }
  std::unique_ptr<FixedAssignments> fixed;
  if (c.config.variant == Variant::diffpool_det)
    fixed = std::make_unique<FixedAssignments>(model.fixed_assignments(data));
  std::vector<int64_t> ids = {0, 1, 2, 3, 4};
  Workspace ws(backend);
  ParameterStore& params = model.parameters();

  auto evaluate = [&](bool with_grad) {
    ws.reset();
    Tape tape(backend, ws);
    GraphBatch batch = build_batch(data, ids, ws, DType::f64, fixed.get());
    EXPECT_EQ(batch.dense(), c.dense_graphs);
    ForwardOutput out = model.forward(tape, batch, true, 99);
    Variable* loss = c.loss == ModelCase::Loss::total            ? out.loss
                     : c.loss == ModelCase::Loss::classification ? out.classification_loss
                     : c.loss == ModelCase::Loss::link           ? out.link_loss
                                                                 : out.entropy_loss;
    EXPECT_NE(loss, nullptr);
    const double value = read_scalar(backend, loss->value);
    if (with_grad) {
      params.zero_grad();
      tape.backward(loss);
    }
    return value;
  };

  evaluate(true);
  const std::vector<double> analytic = download<double>(backend, params.grads());
  std::vector<double> values = download<double>(backend, params.values());
  const double step = 1e-6;
  int failures = 0, nonzero = 0;
  for (const auto& e : params.entries()) {
    for (int64_t j = 0; j < e.shape.numel(); ++j) {
      const std::size_t i = static_cast<std::size_t>(e.offset + j);
      const double saved = values[i];
      values[i] = saved + step;
      params.set_values(values);
      const double plus = evaluate(false);
      values[i] = saved - step;
      params.set_values(values);
      const double minus = evaluate(false);
      values[i] = saved;
      params.set_values(values);
      const double numeric = (plus - minus) / (2 * step);
      const double tol = 1e-7 + 1e-5 * std::max(std::abs(analytic[i]), std::abs(numeric));
      nonzero += std::abs(numeric) > 1e-9;
      if (!(std::abs(analytic[i] - numeric) <= tol) && failures++ < 8)
        ADD_FAILURE() << e.name << "[" << j << "]: analytic " << analytic[i] << ", numeric " << numeric;
    }
  }
  EXPECT_GT(nonzero, 0) << "no parameter influences the loss";
}

ModelConfig small_config(Variant variant, int levels) {
  ModelConfig c;
  c.variant = variant;
  c.pool_levels = levels;
  c.conv_layers = {2, 2, 2};
  c.hidden_dim = 4;
  c.embedding_dim = 3;
  c.clusters = {4, 2};
  c.mlp_hidden = {5};
  return c;
}

TEST_F(GradCheck, DiffPoolOneLevelEveryLoss) {
  for (auto loss : {ModelCase::Loss::total, ModelCase::Loss::classification, ModelCase::Loss::link,
                    ModelCase::Loss::entropy}) {
    check_model_gradients(*backend, {"diffpool 1 level", small_config(Variant::diffpool, 1), loss});
  }
}

TEST_F(GradCheck, DiffPoolTwoLevelsEveryLoss) {
  for (auto loss : {ModelCase::Loss::total, ModelCase::Loss::link, ModelCase::Loss::entropy}) {
    check_model_gradients(*backend, {"diffpool 2 levels", small_config(Variant::diffpool, 2), loss});
  }
}

TEST_F(GradCheck, ModelOptions) {
  ModelConfig c = small_config(Variant::diffpool, 2);
  c.readout = Readout::mean;
  c.concat_layers = true;
  c.link_norm = LinkLossNorm::per_entry;
  c.dense_aggregation = DenseAggregation::sum;
  c.dropout = 0.2;
  check_model_gradients(*backend, {"mean readout, concat, per-entry norm, sum aggregation, dropout", c});
  c = small_config(Variant::diffpool, 1);
  c.readout = Readout::sum;
  c.link_norm = LinkLossNorm::frobenius_squared;
  c.batch_norm = false;
  c.l2_normalize = false;
  check_model_gradients(*backend, {"sum readout, squared norm, no batch norm, no l2", c});
  c = small_config(Variant::diffpool, 2);
  c.batch_norm_mode = BatchNormMode::per_batch;
  check_model_gradients(*backend, {"per-batch batch norm (the authors' code)", c});
  c = small_config(Variant::diffpool, 2);
  c.link_norm = LinkLossNorm::bce;
  check_model_gradients(*backend, {"binary cross-entropy link loss (the authors' code)", c, ModelCase::Loss::link});
  check_model_gradients(*backend, {"binary cross-entropy link loss, total", c});
}

// Level 0 as one dense GEMM per graph (GraphBatch::dense(), engine/data/batch.hpp): the neighbour
// mean D^-1 A X and the pooling product A S, with each cluster rule.
TEST_F(GradCheck, DenseFirstLevel) {
  for (auto loss : {ModelCase::Loss::total, ModelCase::Loss::link})
    check_model_gradients(*backend, {"dense graphs, diffpool 1 level", small_config(Variant::diffpool, 1), loss, true});
  ModelConfig c = small_config(Variant::diffpool, 2);
  c.cluster_rule = ClusterRule::per_graph;
  c.cluster_ratio = 0.5;
  check_model_gradients(*backend, {"dense graphs, per-graph clusters, 2 levels", c, ModelCase::Loss::total, true});
}

TEST_F(GradCheck, OtherVariants) {
  check_model_gradients(*backend, {"diffpool-nolp", small_config(Variant::diffpool_nolp, 1)});
  check_model_gradients(*backend, {"diffpool-det", small_config(Variant::diffpool_det, 2)});
  check_model_gradients(*backend, {"graphsage", small_config(Variant::graphsage, 1)});
}

}  // namespace
}  // namespace diffpool

namespace diffpool {
namespace {

// ---- per-graph blocks (engine/ops/blocks.cpp) ---------------------------------------------------
// Four graphs of 4, 1, 3 and 6 rows with 2, 1, 3 and 2 clusters (K = 3), and a graph of 0 rows.
struct BlockFixture {
  Workspace ws;
  Segments rows_seg, cluster_seg;
  Blocks s, a, pooled, z_rows, x_rows, s_t;
  explicit BlockFixture(Backend& backend) : ws(backend) {
    const std::vector<int64_t> n = {4, 1, 3, 6, 0}, k = {2, 1, 3, 2, 1};
    rows_seg = make_segments(ws, {0, 4, 5, 8, 14, 14});
    cluster_seg = make_segments(ws, {0, 2, 3, 6, 8, 9});
    s = ragged_blocks(n, k);
    a = ragged_blocks(n, n);
    pooled = ragged_blocks(k, k);
    s_t = ragged_blocks(k, n);
    z_rows = packed_blocks(rows_seg, 4);
    x_rows = packed_blocks(cluster_seg, 4);
  }
  int64_t elements(const Blocks& b) const { return b.elements; }
};

BlockContext context(const Blocks* a, const Blocks* b = nullptr, const Blocks* c = nullptr, Trans ta = Trans::no,
                     Trans tb = Trans::no) {
  BlockContext ctx;
  ctx.a = a;
  ctx.b = b;
  ctx.c = c;
  ctx.trans_a = ta;
  ctx.trans_b = tb;
  return ctx;
}

TEST_F(GradCheck, BlockLinearAndSoftmax) {
  BlockFixture f(*backend);
  const BlockContext ctx = context(&f.s);
  expect_gradients_match(*backend,
                         {random_input("x", {14, 5}, 61), random_input("w", {5, 3}, 62), random_input("b", {3}, 63)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_linear(t, v[0], v[1], v[2], ctx); });
  expect_gradients_match(*backend, {random_input("x", {14, 5}, 64), random_input("w", {5, 3}, 65)},
                         [&](Tape& t, const std::vector<Variable*>& v) {
                           return ops::block_linear(t, v[0], v[1], nullptr, ctx);
                         });
  // [x | x2] in place of x (the assignment GNN's last GraphSAGE layer).
  expect_gradients_match(*backend,
                         {random_input("x", {14, 2}, 67), random_input("w", {5, 3}, 68), random_input("b", {3}, 69),
                          random_input("x2", {14, 3}, 70)},
                         [&](Tape& t, const std::vector<Variable*>& v) {
                           return ops::block_linear(t, v[0], v[1], v[2], ctx, v[3]);
                         });
  expect_gradients_match(*backend, {random_input("x", {f.s.elements, 1}, 66, -2, 2)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_softmax(t, v[0], ctx); });
  // Graph g's block equals softmax_rows of the first k_g columns of its rows of x W + b.
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  auto constant = [&](const GradInput& in) { return constant_input(tape, in); };
  const GradInput x = random_input("x", {14, 5}, 67), w = random_input("w", {5, 3}, 68), b = random_input("b", {3}, 69);
  const auto ragged = download<double>(
      *backend, ops::block_softmax(tape, ops::block_linear(tape, constant(x), constant(w), constant(b), ctx), ctx)->value);
  const auto full = download<double>(
      *backend, ops::softmax_rows(tape, ops::linear(tape, constant(x), constant(w), constant(b)))->value);
  // With only k_g columns, each row of the full softmax renormalised over its first k_g entries.
  for (int64_t g = 0; g < f.s.count(); ++g)
    for (int64_t i = 0; i < f.s.rows[g]; ++i) {
      const int64_t row = f.s.row_begin[g] + i, k = f.s.cols[g];
      double z = 0;
      for (int64_t j = 0; j < k; ++j) z += full[static_cast<std::size_t>(row * 3 + j)];
      for (int64_t j = 0; j < k; ++j)
        EXPECT_NEAR(ragged[static_cast<std::size_t>(f.s.offset[g] + i * k + j)], full[static_cast<std::size_t>(row * 3 + j)] / z,
                    1e-12);
    }
}

TEST_F(GradCheck, BlockMatmulEveryTransposition) {
  BlockFixture f(*backend);
  // X' = S^T Z: ragged (n_g, k_g) transposed times packed rows (n_g, 4) into packed rows (k_g, 4).
  const BlockContext stz = context(&f.s, &f.z_rows, &f.x_rows, Trans::yes);
  expect_gradients_match(*backend, {random_input("s", {f.s.elements, 1}, 71), random_input("z", {14, 4}, 72)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_matmul(t, v[0], v[1], stz); });
  // A' = S^T (A S): ragged times ragged into ragged (k_g, k_g).
  const BlockContext sts = context(&f.s, &f.s, &f.pooled, Trans::yes);
  expect_gradients_match(*backend, {random_input("s", {f.s.elements, 1}, 73), random_input("as", {f.s.elements, 1}, 74)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_matmul(t, v[0], v[1], sts); });
  // A S at a dense level: (n_g, n_g) times (n_g, k_g).
  const BlockContext as = context(&f.a, &f.s, &f.s);
  expect_gradients_match(*backend, {random_input("a", {f.a.elements, 1}, 75), random_input("s", {f.s.elements, 1}, 76)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_matmul(t, v[0], v[1], as); });
  // A X: ragged (n_g, n_g) times packed rows (n_g, 4).
  const BlockContext ax = context(&f.a, &f.z_rows, &f.z_rows);
  expect_gradients_match(*backend, {random_input("a", {f.a.elements, 1}, 77), random_input("x", {14, 4}, 78)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_matmul(t, v[0], v[1], ax); });
  // B transposed: S (n_g, k_g) times U^T, U stored (n_g, k_g), into (n_g, n_g).
  const BlockContext sbt = context(&f.s, &f.s, &f.a, Trans::no, Trans::yes);
  expect_gradients_match(*backend, {random_input("s", {f.s.elements, 1}, 79), random_input("u", {f.s.elements, 1}, 80)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_matmul(t, v[0], v[1], sbt); });
  // Both transposed: T^T U^T with T stored (k_g, n_g) and U stored (n_g, k_g), into (n_g, n_g).
  const BlockContext both = context(&f.s_t, &f.s, &f.a, Trans::yes, Trans::yes);
  expect_gradients_match(*backend, {random_input("t", {f.s_t.elements, 1}, 81), random_input("u", {f.s.elements, 1}, 82)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_matmul(t, v[0], v[1], both); });
}

TEST_F(GradCheck, BlockReductions) {
  BlockFixture f(*backend);
  const BlockContext ctx = context(&f.s);
  expect_gradients_match(*backend, {random_input("a", {f.s.elements, 1}, 91), random_input("b", {f.s.elements, 1}, 92)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_dot(t, v[0], v[1], ctx); });
  expect_gradients_match(*backend, {random_input("a", {f.s.elements, 1}, 93)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_dot(t, v[0], v[0], ctx); });
  expect_gradients_match(*backend, {random_input("s", {f.s.elements, 1}, 94)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_gram_sq(t, v[0], ctx); });
  expect_gradients_match(*backend, {random_input("x", {f.s.elements, 1}, 95)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_row_sum(t, v[0], ctx); });
  expect_gradients_match(*backend, {random_input("p", {f.s.elements, 1}, 96, 0.05, 1.0)},
                         [&](Tape& t, const std::vector<Variable*>& v) { return ops::block_row_xlogx(t, v[0], ctx); });
}

// Per-graph cluster counts through the whole model: graphs of 7, 3, 9, 5 and 6 nodes give
// 4, 2, 4, 3 and 3 clusters (ratio 0.5, capped at 4), then 2, 1, 2, 2, 2.
TEST_F(GradCheck, PerGraphClusters) {
  auto per_graph = [](int levels) {
    ModelConfig c = small_config(Variant::diffpool, levels);
    c.cluster_rule = ClusterRule::per_graph;
    c.cluster_ratio = 0.5;
    return c;
  };
  for (auto loss : {ModelCase::Loss::total, ModelCase::Loss::link, ModelCase::Loss::entropy})
    check_model_gradients(*backend, {"per-graph clusters, 2 levels", per_graph(2), loss});
  check_model_gradients(*backend, {"per-graph clusters, 1 level", per_graph(1)});
  ModelConfig c = per_graph(2);
  c.link_norm = LinkLossNorm::bce;
  check_model_gradients(*backend, {"per-graph clusters, binary cross-entropy link loss", c, ModelCase::Loss::link});
  c = per_graph(2);
  c.link_norm = LinkLossNorm::per_entry;
  c.dense_aggregation = DenseAggregation::sum;
  c.concat_layers = true;
  c.dropout = 0.2;
  check_model_gradients(*backend, {"per-graph clusters, per-entry norm, sum aggregation, concat, dropout", c});
  c = per_graph(2);
  c.clusters.clear();
  c.link_norm = LinkLossNorm::frobenius_squared;
  check_model_gradients(*backend, {"per-graph clusters, uncapped, squared norm", c});
  c = per_graph(2);
  c.variant = Variant::diffpool_det;
  check_model_gradients(*backend, {"per-graph clusters, diffpool-det (Graclus per graph)", c});
  check_model_gradients(*backend, {"per-graph clusters, nolp", [&] {
                                     ModelConfig n = per_graph(1);
                                     n.variant = Variant::diffpool_nolp;
                                     return n;
                                   }()});
}

}  // namespace
}  // namespace diffpool
