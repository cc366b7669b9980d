// Per-graph cluster counts (model.cluster_rule: per_graph) against one count for every graph:
// where every graph of a batch gets the same count under both rules, the two models are the same
// function with the same weights, so losses, outputs and every gradient agree; and where graphs
// differ, each graph's assignment is [n_g, k_g] with k_g = max(1, ceil(ratio * n_g)).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/backend/counting_backend.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/nn/model.hpp"
#include "engine/train/trainer.hpp"
#include "tests/unit/synthetic.hpp"

namespace diffpool {
namespace {

struct PassResult {
  double loss = 0, link = 0, entropy = 0;
  std::vector<double> logits, grads;
};

PassResult run(const ModelConfig& config, const GraphDataset& data, DType dtype) {
  auto backend = make_cpu_backend(1);
  DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
  model.parameters().allocate(*backend, dtype);
  model.parameters().initialize(11);
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  std::vector<int64_t> ids(static_cast<std::size_t>(data.num_graphs()));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  GraphBatch batch = build_batch(data, ids, ws, dtype);
  ForwardOutput out = model.forward(tape, batch, true, 5);
  model.parameters().zero_grad();
  tape.backward(out.loss);
  PassResult r;
  r.loss = read_scalar(*backend, out.loss->value);
  r.link = read_scalar(*backend, out.link_loss->value);
  r.entropy = read_scalar(*backend, out.entropy_loss->value);
  auto host = [&](const Tensor& t) {
    if (t.dtype() == DType::f64) return download<double>(*backend, t);
    std::vector<float> f = download<float>(*backend, t);
    return std::vector<double>(f.begin(), f.end());
  };
  r.logits = host(out.logits->value);
  r.grads = host(model.parameters().grads());
  return r;
}

ModelConfig config(ClusterRule rule, int levels, LinkLossNorm norm) {
  ModelConfig c;
  c.pool_levels = levels;
  c.hidden_dim = 8;
  c.embedding_dim = 6;
  c.cluster_ratio = 0.25;
  c.cluster_rule = rule;
  c.link_norm = norm;
  return c;
}

TEST(ClusterRule, PerGraphEqualsFixedWhereEveryGraphGetsTheFixedCount) {
  // Eight graphs of 16 nodes: 4 clusters, then 1, under both rules (floor and ceil agree).
  const GraphDataset data = testing::synthetic_dataset(std::vector<int64_t>(8, 16), 4, 3, 17);
  for (int levels : {1, 2})
    for (LinkLossNorm norm : {LinkLossNorm::frobenius, LinkLossNorm::bce, LinkLossNorm::per_entry})
      for (DType dtype : {DType::f64, DType::f32}) {
        SCOPED_TRACE(::testing::Message() << levels << " levels, " << link_loss_norm_name(norm) << ", " << dtype_name(dtype));
        const ModelConfig fixed = config(ClusterRule::largest_graph, levels, norm);
        const ModelConfig per_graph = config(ClusterRule::per_graph, levels, norm);
        ASSERT_EQ(fixed.cluster_counts(16), per_graph.cluster_counts(16));
        const PassResult a = run(fixed, data, dtype), b = run(per_graph, data, dtype);
        // The forward pass runs the same products on the same rows, graph by graph instead of
        // batched: bit for bit the same losses and logits.
        EXPECT_EQ(a.loss, b.loss);
        EXPECT_EQ(a.link, b.link);
        EXPECT_EQ(a.entropy, b.entropy);
        EXPECT_EQ(a.logits, b.logits);
        // Weight gradients sum over graphs: per graph, then across graphs, instead of in one
        // product, so they agree up to the order of floating-point sums.
        const double tol = dtype == DType::f64 ? 1e-12 : 2e-5;
        ASSERT_EQ(a.grads.size(), b.grads.size());
        double max_grad = 0;
        for (double g : a.grads) max_grad = std::max(max_grad, std::abs(g));
        for (std::size_t i = 0; i < a.grads.size(); ++i) EXPECT_NEAR(a.grads[i], b.grads[i], tol * (1 + max_grad)) << "gradient " << i;
      }
}

TEST(ClusterRule, EachGraphGetsItsOwnCount) {
  ModelConfig c = config(ClusterRule::per_graph, 2, LinkLossNorm::frobenius);
  EXPECT_EQ(c.clusters_for(0, 1), 1);
  EXPECT_EQ(c.clusters_for(0, 4), 1);
  EXPECT_EQ(c.clusters_for(0, 5), 2);
  EXPECT_EQ(c.clusters_for(0, 5748), 1437);
  c.cluster_ratio = 0.1;
  EXPECT_EQ(c.clusters_for(0, 30), 3);  // 0.1 * 30 is 3.0000000000000004 in doubles
  EXPECT_EQ(c.clusters_for(0, 31), 4);
  c.clusters = {5, 2};  // caps
  EXPECT_EQ(c.clusters_for(0, 200), 5);
  EXPECT_EQ(c.clusters_for(1, 200), 2);
  EXPECT_EQ(c.cluster_counts(200), (std::vector<int64_t>{5, 1}));

  const GraphDataset data = testing::synthetic_dataset({3, 17, 9, 40}, 4, 2, 3);
  ModelConfig m = config(ClusterRule::per_graph, 2, LinkLossNorm::frobenius);
  auto backend = make_cpu_backend(1);
  DiffPoolModel model(m, data.num_features, data.num_classes(), data.max_nodes());
  EXPECT_EQ(model.cluster_counts(), (std::vector<int64_t>{10, 3}));  // the largest graph: 40 -> 10 -> 3
  model.parameters().allocate(*backend, DType::f64);
  model.parameters().initialize(3);
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  GraphBatch batch = build_batch(data, {0, 1, 2, 3}, ws, DType::f64);
  ForwardOutput out = model.forward(tape, batch, false, 0);
  ASSERT_EQ(out.levels.size(), 3u);
  const Blocks* s0 = out.levels[0].assignment_blocks;
  ASSERT_NE(s0, nullptr);
  EXPECT_EQ(s0->rows, (std::vector<int64_t>{3, 17, 9, 40}));
  EXPECT_EQ(s0->cols, (std::vector<int64_t>{1, 5, 3, 10}));
  EXPECT_EQ(out.levels[0].assignment->value.numel(), 3 * 1 + 17 * 5 + 9 * 3 + 40 * 10);
  const Blocks* s1 = out.levels[1].assignment_blocks;
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->rows, (std::vector<int64_t>{1, 5, 3, 10}));
  EXPECT_EQ(s1->cols, (std::vector<int64_t>{1, 2, 1, 3}));
  EXPECT_EQ(out.levels[1].pooled_adjacency->value.numel(), 1 + 4 + 1 + 9);
  // Every row of S sums to 1 over its graph's own clusters.
  const std::vector<double> s = download<double>(*backend, out.levels[0].assignment->value);
  for (int64_t g = 0; g < s0->count(); ++g)
    for (int64_t i = 0; i < s0->rows[g]; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < s0->cols[g]; ++j) sum += s[static_cast<std::size_t>(s0->offset[g] + i * s0->cols[g] + j)];
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
}

TEST(ClusterRule, OutputsKeepEachGraphsOwnSize) {
  const GraphDataset data = testing::synthetic_dataset({3, 17, 9, 40, 12, 6}, 4, 2, 3);
  ModelConfig m = config(ClusterRule::per_graph, 2, LinkLossNorm::frobenius);
  TrainConfig t;
  t.epochs = 1;
  t.batch_size = 4;
  Split split;
  split.train = {0, 1, 2, 3, 4, 5};
  auto backend = make_cpu_backend(1);
  Trainer trainer(*backend, data, m, t, split);
  trainer.run_epoch();
  const EvaluationResult r = trainer.evaluate({5, 3, 0, 1, 4, 2}, true);
  ASSERT_EQ(r.outputs.size(), 6u);
  for (const GraphOutputs& go : r.outputs) {
    const int64_t n = data.node_offsets[static_cast<std::size_t>(go.graph) + 1] - data.node_offsets[static_cast<std::size_t>(go.graph)];
    ASSERT_EQ(go.levels.size(), 3u);
    int64_t rows = n;
    for (int l = 0; l < 2; ++l) {
      const auto& level = go.levels[static_cast<std::size_t>(l)];
      const int64_t k = m.clusters_for(l, rows);
      EXPECT_EQ(level.rows, rows) << "graph " << go.graph << " level " << l;
      EXPECT_EQ(level.clusters, k);
      EXPECT_EQ(static_cast<int64_t>(level.assignment.size()), rows * k);
      EXPECT_EQ(static_cast<int64_t>(level.pooled_adjacency.size()), k * k);
      EXPECT_EQ(static_cast<int64_t>(level.embedding.size()), rows * level.embedding_dim);
      for (int64_t i = 0; i < rows; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < k; ++j) sum += level.assignment[static_cast<std::size_t>(i * k + j)];
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
      rows = k;
    }
    EXPECT_EQ(go.levels[2].rows, rows);
  }
}

// An evaluation's cluster usage per pooling level (Metrics::cluster_usage) is, for each graph, the
// number of distinct clusters that are some row's argmax of its assignment (the first maximum),
// over min(rows, clusters), averaged over the graphs: recomputed here from the assignment matrices
// the same evaluation returns, under both cluster rules, over several batches.
TEST(Trainer, ClusterUsageCountsTheClustersEachGraphsNodesChoose) {
  const GraphDataset data = testing::synthetic_dataset({3, 17, 9, 40, 12, 6, 25, 2}, 4, 2, 3);
  for (const ClusterRule rule : {ClusterRule::per_graph, ClusterRule::largest_graph}) {
    ModelConfig m = config(rule, 2, LinkLossNorm::frobenius);
    TrainConfig t;
    t.epochs = 2;
    t.batch_size = 3;
    Split split;
    split.train = {0, 1, 2, 3, 4, 5, 6, 7};
    auto backend = make_cpu_backend(1);
    Trainer trainer(*backend, data, m, t, split);
    trainer.run_epoch();
    const std::vector<int64_t> ids = {5, 3, 0, 1, 7, 4, 2, 6};
    const EvaluationResult r = trainer.evaluate(ids, true);
    ASSERT_EQ(r.metrics.cluster_usage.size(), 2u) << "one figure per pooling level";
    for (std::size_t l = 0; l < 2; ++l) {
      double sum = 0;
      for (const GraphOutputs& go : r.outputs) {
        const GraphOutputs::Level& level = go.levels[l];
        std::vector<bool> used(static_cast<std::size_t>(level.clusters), false);
        for (int64_t i = 0; i < level.rows; ++i) {
          const auto row = level.assignment.begin() + i * level.clusters;
          used[static_cast<std::size_t>(std::max_element(row, row + level.clusters) - row)] = true;
        }
        const auto distinct = static_cast<double>(std::count(used.begin(), used.end(), true));
        const double usage = distinct / static_cast<double>(std::min(level.rows, level.clusters));
        EXPECT_GT(usage, 0.0);
        EXPECT_LE(usage, 1.0);
        sum += usage;
      }
      EXPECT_NEAR(r.metrics.cluster_usage[l], sum / static_cast<double>(ids.size()), 1e-12)
          << (rule == ClusterRule::per_graph ? "per_graph" : "largest_graph") << " level " << l;
    }
    // A training epoch's metrics carry none; an epoch's validation does.
    split.validation = {1, 4};
    Trainer validated(*backend, data, m, t, split);
    const EpochMetrics e = validated.run_epoch();
    EXPECT_TRUE(e.train.cluster_usage.empty());
    ASSERT_TRUE(e.validation.has_value());
    EXPECT_EQ(e.validation->cluster_usage.size(), 2u);
  }
  // Without pooling there is nothing to count.
  ModelConfig sage = config(ClusterRule::largest_graph, 0, LinkLossNorm::frobenius);
  sage.variant = Variant::graphsage;
  TrainConfig t;
  t.epochs = 1;
  Split split;
  split.train = {0, 1, 2};
  auto backend = make_cpu_backend(1);
  Trainer trainer(*backend, data, sage, t, split);
  EXPECT_TRUE(trainer.evaluate({3, 4}).metrics.cluster_usage.empty());
}

// The paper protocol validates on the test fold: one evaluation per epoch serves both, and its
// figures equal those of evaluating the split on its own (an evaluation changes no state).
TEST(Trainer, ValidationOnTheTestSplitIsEvaluatedOnceWithTheSameFigures) {
  const GraphDataset data = testing::synthetic_dataset({3, 17, 9, 40, 12, 6, 8, 21}, 4, 2, 3);
  ModelConfig m = config(ClusterRule::per_graph, 2, LinkLossNorm::frobenius);
  TrainConfig t;
  t.epochs = 2;
  t.batch_size = 3;
  t.evaluate_test_every_epoch = true;
  Split paper;  // the paper protocol's split: the test fold is the validation split
  paper.train = {0, 1, 2, 3, 4, 5};
  paper.validation = {6, 7};
  paper.test = {6, 7};
  Split train_only;
  train_only.train = paper.train;
  auto backend = make_cpu_backend(1);
  CountingBackend counted(*backend), counted_train(*backend);
  Trainer trainer(counted, data, m, t, paper);
  Trainer reference(counted_train, data, m, t, train_only);  // the same training, nothing evaluated
  for (int epoch = 0; epoch < 2; ++epoch) {
    counted.reset();
    counted_train.reset();
    const EpochMetrics em = trainer.run_epoch();
    const double epoch_flops = counted.flops().total();
    reference.run_epoch();
    counted.reset();
    const EvaluationResult alone = trainer.evaluate(paper.test);
    // The epoch's work is the training's and one evaluation's, not two.
    EXPECT_EQ(epoch_flops, counted_train.flops().total() + counted.flops().total()) << "epoch " << em.epoch;
    ASSERT_TRUE(em.validation && em.test);
    EXPECT_EQ(em.validation->loss, alone.metrics.loss);
    EXPECT_EQ(em.validation->accuracy, alone.metrics.accuracy);
    EXPECT_EQ(em.test->loss, alone.metrics.loss);
    EXPECT_EQ(em.test->accuracy, alone.metrics.accuracy);
    EXPECT_EQ(em.test_predictions, alone.predictions);
  }
}

// earliest_last_epoch() never promises an end that training then beats: after every epoch it is
// at most the epoch training actually ends at, and it is exact once training has finished.
TEST(Trainer, EarliestLastEpochIsALowerBoundOfTheEnd) {
  const GraphDataset data = testing::synthetic_dataset({3, 17, 9, 40, 12, 6, 8, 21, 5, 11}, 4, 2, 3);
  for (int patience : {0, 1, 2, 4}) {
    ModelConfig m = config(ClusterRule::per_graph, 1, LinkLossNorm::frobenius);
    TrainConfig t;
    t.epochs = 25;
    t.batch_size = 3;
    t.learning_rate = 0.05;
    t.patience = patience;
    Split split;
    split.train = {0, 1, 2, 3, 4, 5, 6};
    split.validation = {7, 8, 9};
    auto backend = make_cpu_backend(1);
    Trainer trainer(*backend, data, m, t, split);
    EXPECT_EQ(trainer.earliest_last_epoch(), t.epochs);
    std::vector<int> promised;
    while (!trainer.finished()) {
      trainer.run_epoch();
      const int earliest = trainer.earliest_last_epoch();
      EXPECT_GT(earliest, trainer.finished() ? trainer.epoch() - 1 : trainer.epoch()) << "patience " << patience;
      EXPECT_LE(earliest, t.epochs);
      if (patience == 0) {
        EXPECT_EQ(earliest, t.epochs);
      } else if (!trainer.finished()) {
        EXPECT_EQ(earliest, std::min(t.epochs, trainer.epoch() + patience - trainer.state().epochs_without_improvement));
      }
      promised.push_back(earliest);
    }
    for (std::size_t i = 0; i < promised.size(); ++i)
      EXPECT_LE(promised[i], trainer.epoch()) << "patience " << patience << ", after epoch " << i + 1;
    EXPECT_EQ(promised.back(), trainer.epoch());
    if (patience == 1) {
      EXPECT_LT(trainer.epoch(), t.epochs) << "the case meant to stop early ran all epochs";
    }
  }
}

}  // namespace
}  // namespace diffpool
