// Level 0 as dense per-graph blocks (engine/data/batch.hpp, dense_level0): the rule at its
// boundaries, the blocks against the CSR adjacency they copy, and the model on a batch of dense
// graphs: the forward values and every parameter gradient on the dense path against the CSR path
// on the same batch, in f64 and f32, for each cluster rule and variant.
#include <gtest/gtest.h>

#include <memory>

#include "engine/autodiff/tape.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/nn/model.hpp"
#include "tests/unit/parity_util.hpp"
#include "tests/unit/synthetic.hpp"

namespace diffpool {
namespace {

using testing::expect_close;
using testing::Tolerance;

// Graphs of 9 to 16 nodes with 90% of the node pairs linked: about 11 neighbours per node, and
// sum n_g^2 about 1.2 times the stored entries.
GraphDataset dense_graphs() { return testing::synthetic_dataset({12, 9, 16, 10, 14}, 3, 3, 21, 0.9); }
// The gradient check's graphs: 35% of the pairs, about 2.5 neighbours per node.
GraphDataset sparse_graphs() { return testing::synthetic_dataset({7, 3, 9, 5, 6}, 3, 3, 42); }
const std::vector<int64_t> kAll = {0, 1, 2, 3, 4};

TEST(DenseLevel0, RuleAtItsBoundaries) {
  EXPECT_EQ(dense_min_degree, 8);
  EXPECT_EQ(dense_max_fill, 4);
  // 10 nodes: 80 entries is exactly 8 per node; 320 = 4 x 80 exactly fills the bound.
  EXPECT_TRUE(dense_level0(10, 80, 320));
  EXPECT_FALSE(dense_level0(10, 79, 316)) << "under 8 neighbours per node";
  EXPECT_FALSE(dense_level0(10, 80, 321)) << "the blocks would hold more than 4x the entries";
  EXPECT_TRUE(dense_level0(10, 90, 100));  // a complete graph of 10 nodes
  EXPECT_FALSE(dense_level0(0, 0, 0));
}

// The batch's blocks hold A and D^-1 A entry for entry; a sparse batch has none.
TEST(DenseLevel0, BlocksCopyTheAdjacency) {
  auto backend = make_cpu_backend(1);
  Workspace ws(*backend);
  const GraphDataset dense = dense_graphs();
  GraphBatch batch = build_batch(dense, kAll, ws, DType::f64);
  ASSERT_TRUE(batch.dense());
  const std::vector<double> a = download<double>(*backend, batch.dense_adjacency);
  const std::vector<double> mean = download<double>(*backend, batch.dense_mean_adjacency);
  const HostCsr& csr = batch.host_adjacency;
  std::vector<double> expected_a, expected_mean;
  for (int64_t g = 0; g < batch.num_graphs(); ++g) {
    const int64_t first = batch.nodes.begin(g), n = batch.nodes.size(g);
    for (int64_t r = first; r < first + n; ++r) {
      std::vector<double> row(static_cast<std::size_t>(n), 0.0);
      const int32_t begin = csr.row_ptr[static_cast<std::size_t>(r)], end = csr.row_ptr[static_cast<std::size_t>(r) + 1];
      for (int32_t e = begin; e < end; ++e) row[static_cast<std::size_t>(csr.col_idx[static_cast<std::size_t>(e)] - first)] = 1.0;
      expected_a.insert(expected_a.end(), row.begin(), row.end());
      for (double& x : row) x /= end - begin;
      expected_mean.insert(expected_mean.end(), row.begin(), row.end());
    }
  }
  EXPECT_EQ(a, expected_a);
  EXPECT_EQ(mean, expected_mean);

  const GraphDataset sparse = sparse_graphs();
  GraphBatch sparse_batch = build_batch(sparse, kAll, ws, DType::f64);
  EXPECT_FALSE(sparse_batch.dense());
  EXPECT_FALSE(sparse_batch.dense_adjacency.defined());
}

// The graphs of `b` appended to those of `a`.
GraphDataset join(GraphDataset a, const GraphDataset& b) {
  const auto nodes = static_cast<int32_t>(a.num_nodes());
  const int64_t edges = a.num_directed_edges();
  for (int32_t t : b.adjacency_targets) a.adjacency_targets.push_back(t + nodes);
  for (std::size_t v = 1; v < b.adjacency_offsets.size(); ++v) a.adjacency_offsets.push_back(edges + b.adjacency_offsets[v]);
  for (std::size_t g = 1; g < b.node_offsets.size(); ++g) a.node_offsets.push_back(nodes + b.node_offsets[g]);
  a.labels.insert(a.labels.end(), b.labels.begin(), b.labels.end());
  a.features.insert(a.features.end(), b.features.begin(), b.features.end());
  return a;
}

// Two dense graphs (21 nodes, about 190 entries) and a sparse one of 60 nodes (about 300 entries,
// 5 per node): the batch's sums decide, so the three together take the CSR path.
TEST(DenseLevel0, TheBatchDecidesAsAWhole) {
  auto backend = make_cpu_backend(1);
  Workspace ws(*backend);
  const GraphDataset data = join(testing::synthetic_dataset({12, 9}, 3, 3, 21, 0.9),
                                 testing::synthetic_dataset({60}, 3, 3, 22, 0.05));
  EXPECT_TRUE(build_batch(data, {0, 1}, ws, DType::f32).dense());
  EXPECT_FALSE(build_batch(data, {2}, ws, DType::f32).dense());
  EXPECT_FALSE(build_batch(data, {0, 1, 2}, ws, DType::f32).dense());
  const GraphDataset all_dense = testing::synthetic_dataset({12, 9, 60}, 3, 3, 21, 0.9);
  EXPECT_TRUE(build_batch(all_dense, {0, 1, 2}, ws, DType::f32).dense());
}

// ---- the model on both paths ----------------------------------------------------------------------

struct StepResult {
  std::vector<double> losses;  // total, classification, link (0 without), entropy (0 without)
  std::vector<double> logits;
  std::vector<double> grads;   // every parameter's gradient, in the arena's order
  std::string tape;            // the recorded ops, one line each
};

double scalar_or_zero(Backend& be, const Variable* v) { return v ? read_scalar(be, v->value) : 0.0; }

// One training step (forward and backward) on the batch of every graph of `data`; with
// `force_sparse` the batch's dense blocks are dropped, so level 0 runs on the CSR adjacency.
template <class T>
StepResult step(const GraphDataset& data, const ModelConfig& config, bool force_sparse, bool expect_dense) {
  auto backend = make_cpu_backend(1);
  constexpr DType dtype = std::is_same_v<T, float> ? DType::f32 : DType::f64;
  DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
  model.parameters().allocate(*backend, dtype);
  model.parameters().initialize(5);
  std::unique_ptr<FixedAssignments> fixed;
  if (config.variant == Variant::diffpool_det) fixed = std::make_unique<FixedAssignments>(model.fixed_assignments(data));
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  GraphBatch batch = build_batch(data, kAll, ws, dtype, fixed.get());
  EXPECT_EQ(batch.dense(), expect_dense);
  if (force_sparse) batch.dense_adjacency = batch.dense_mean_adjacency = Tensor{};
  ForwardOutput out = model.forward(tape, batch, true, 3);
  model.parameters().zero_grad();
  tape.backward(out.loss);
  StepResult r;
  r.losses = {scalar_or_zero(*backend, out.loss), scalar_or_zero(*backend, out.classification_loss),
              scalar_or_zero(*backend, out.link_loss), scalar_or_zero(*backend, out.entropy_loss)};
  for (T x : download<T>(*backend, out.logits->value)) r.logits.push_back(x);
  for (T x : download<T>(*backend, model.parameters().grads())) r.grads.push_back(x);
  r.tape = tape.describe();
  return r;
}

int count_ops(const std::string& tape, const std::string& op) {
  int n = 0;
  for (std::size_t at = tape.find(" " + op + " "); at != std::string::npos; at = tape.find(" " + op + " ", at + 1)) ++n;
  return n;
}

// The dense path changes only the order of each neighbour sum (its zeros add nothing), so both
// paths agree to rounding: f64 to 1e-12 (scaled, parity_util.hpp), f32 to rtol 1e-4, atol 1e-5,
// as the CUDA model test allows for a step's chained ops (a neighbour sum has up to 15 terms, and
// batch norm, l2-normalisation and softmax pass its rounding on). The largest differences seen
// are about 1/25 of these (f32) and 1/500 (f64).
template <class T> void expect_paths_agree(const std::string& name, const GraphDataset& data, const ModelConfig& config) {
  SCOPED_TRACE(name);
  const Tolerance tolerance = std::is_same_v<T, float> ? Tolerance{1e-4, 1e-5} : Tolerance{1e-12, 1e-12};
  const StepResult dense = step<T>(data, config, false, true), sparse = step<T>(data, config, true, true);
  // The dense run has no CSR product at level 0 (BCE link losses still read the CSR adjacency).
  EXPECT_EQ(count_ops(dense.tape, "spmm") + count_ops(dense.tape, "block_spmm"), 0) << dense.tape;
  EXPECT_GT(count_ops(sparse.tape, "spmm") + count_ops(sparse.tape, "block_spmm"), 0) << sparse.tape;
  expect_close<double>(name + " losses", sparse.losses, dense.losses, nullptr, tolerance);
  expect_close<double>(name + " logits", sparse.logits, dense.logits, nullptr, tolerance);
  DiffPoolModel layout(config, data.num_features, data.num_classes(), data.max_nodes());
  for (const auto& e : layout.parameters().entries()) {
    const auto begin = static_cast<std::ptrdiff_t>(e.offset), end = begin + static_cast<std::ptrdiff_t>(e.shape.numel());
    expect_close<double>(name + " gradient of " + e.name,
                         std::vector<double>(sparse.grads.begin() + begin, sparse.grads.begin() + end),
                         std::vector<double>(dense.grads.begin() + begin, dense.grads.begin() + end), nullptr, tolerance);
  }
}

ModelConfig small_config(Variant variant, int levels) {
  ModelConfig c;
  c.variant = variant;
  c.pool_levels = levels;
  c.conv_layers = {2, 2, 2};
  c.hidden_dim = 8;
  c.embedding_dim = 6;
  c.clusters = {4, 2};
  c.mlp_hidden = {5};
  return c;
}

TEST(DenseLevel0, ModelMatchesTheCsrPath) {
  const GraphDataset data = dense_graphs();
  std::vector<std::pair<std::string, ModelConfig>> cases;
  cases.emplace_back("diffpool, 1 level", small_config(Variant::diffpool, 1));
  cases.emplace_back("diffpool, 2 levels", small_config(Variant::diffpool, 2));
  ModelConfig c = small_config(Variant::diffpool, 2);
  c.cluster_rule = ClusterRule::per_graph;
  c.cluster_ratio = 0.5;
  cases.emplace_back("per-graph clusters", c);
  c.link_norm = LinkLossNorm::bce;
  cases.emplace_back("per-graph clusters, binary cross-entropy link loss", c);
  c = small_config(Variant::diffpool, 1);
  c.concat_layers = true;
  c.dropout = 0.2;
  cases.emplace_back("concat layers, dropout", c);
  cases.emplace_back("diffpool-det", small_config(Variant::diffpool_det, 2));
  cases.emplace_back("graphsage", small_config(Variant::graphsage, 1));
  for (const auto& [name, config] : cases) {
    expect_paths_agree<double>(name + " (f64)", data, config);
    expect_paths_agree<float>(name + " (f32)", data, config);
  }
}

}  // namespace
}  // namespace diffpool
