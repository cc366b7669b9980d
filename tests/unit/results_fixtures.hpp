#pragma once
// Synthetic, realistic job records and summaries for the results/ tests (no dataset needed).
//
// Every value follows a formula that tests/unit/check_results_python.py recomputes, so the Python
// reader can be checked value by value:
//   metrics of epoch e (1-based), job seed offset o = 0.01 * (point + 2 * fold):
//     train_loss = 2 / e + o, classification = 1.5 / e + o, link = 0.4 / e, entropy = 0.1 / e,
//     train_accuracy = 0.5 + 0.05 * e; validation: train + 0.1 (loss parts), accuracy - 0.02, not
//     measured at epoch 3; test: train + 0.2, accuracy - 0.04, measured at even epochs only;
//     grad_norm = 1 + 0.5 * e; train_seconds = 0.25 * e; eval_seconds = 0.125 * e.
//   outputs: graph g, level l, array kind k (0 embedding, 1 assignment logits, 2 pooled adjacency,
//     3 logits, 4 graph embedding), row r, column c: wave(g, l, k, r, c) = sin(0.1 g + 0.7 l +
//     0.013 r + 0.029 c + k) as float32; the assignment is the row softmax of 3 wave(g, l, 1, 37 r,
//     53 c) (so that rows pick different clusters); edges are
//     a ring 0-1-...-(n-1)-0 plus chords (i, i + 3) for i % 5 == 0 (i + 3 < n - 1), as (low, high).
//   test predictions (every graph g of the test split): label g % 3, prediction (g / 2) % 3 (as
//     the outputs), epoch = best_epoch; per epoch e, where the test split was measured,
//     (g / 2 + e) % 3.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "results/job_record.hpp"
#include "results/summary.hpp"

namespace diffpool::testing {

inline float wave(int64_t g, int l, int k, int64_t r, int64_t c) {
  return static_cast<float>(std::sin(0.1 * static_cast<double>(g) + 0.7 * l + 0.013 * static_cast<double>(r) +
                                     0.029 * static_cast<double>(c) + k));
}

// Level sizes of the synthetic model: level 0 has the graph's nodes, level 1 six clusters, level 2
// two clusters (2 pooling levels: three levels of embeddings, two assignments).
inline constexpr int64_t kClusters1 = 6, kClusters2 = 2, kEmbeddingDim = 32, kClasses = 3;

inline GraphOutputs make_graph_outputs(int64_t graph, int64_t nodes) {
  GraphOutputs g;
  g.graph = graph;
  g.label = static_cast<int32_t>(graph % kClasses);
  g.prediction = static_cast<int32_t>((graph / 2) % kClasses);
  for (int64_t c = 0; c < kClasses; ++c) g.logits.push_back(wave(graph, 0, 3, 0, c));
  for (int64_t c = 0; c < 3 * kEmbeddingDim; ++c) g.graph_embedding.push_back(wave(graph, 0, 4, 0, c));
  const int64_t rows_of[3] = {nodes, kClusters1, kClusters2};
  const int64_t clusters_of[3] = {kClusters1, kClusters2, 0};
  for (int l = 0; l < 3; ++l) {
    GraphOutputs::Level level;
    level.rows = rows_of[l];
    level.embedding_dim = kEmbeddingDim;
    level.clusters = clusters_of[l];
    for (int64_t r = 0; r < level.rows; ++r)
      for (int64_t c = 0; c < kEmbeddingDim; ++c) level.embedding.push_back(wave(graph, l, 0, r, c));
    if (level.clusters > 0) {
      for (int64_t r = 0; r < level.rows; ++r) {
        double total = 0;
        std::vector<double> e(static_cast<std::size_t>(level.clusters));
        for (int64_t c = 0; c < level.clusters; ++c) total += e[static_cast<std::size_t>(c)] = std::exp(3.0 * wave(graph, l, 1, 37 * r, 53 * c));
        for (int64_t c = 0; c < level.clusters; ++c) {
          level.assignment.push_back(static_cast<float>(e[static_cast<std::size_t>(c)] / total));
        }
      }
      for (int64_t r = 0; r < level.clusters; ++r)
        for (int64_t c = 0; c < level.clusters; ++c) {
          level.pooled_adjacency.push_back(std::abs(wave(graph, l, 2, std::min(r, c), std::max(r, c))));
        }
    }
    g.levels.push_back(std::move(level));
  }
  return g;
}

inline std::vector<int32_t> make_edges(int64_t nodes) {
  std::vector<int32_t> edges;
  auto add = [&](int64_t a, int64_t b) {
    edges.push_back(static_cast<int32_t>(std::min(a, b)));
    edges.push_back(static_cast<int32_t>(std::max(a, b)));
  };
  for (int64_t i = 0; i + 1 < nodes; ++i) add(i, i + 1);
  if (nodes > 2) add(nodes - 1, 0);
  for (int64_t i = 0; i + 3 < nodes - 1; i += 5) add(i, i + 3);
  return edges;
}

// The graphs whose outputs a job of `fold` saves, with their sizes (unequal; 150 nodes makes the
// level-0 embedding large enough to be compressed).
inline std::vector<std::pair<int64_t, int64_t>> output_graphs(int fold) {
  if (fold == 0) return {{3, 7}, {8, 23}, {12, 4}, {20, 61}, {31, 150}};
  return {{1, 5}, {5, 150}, {9, 12}, {14, 40}, {27, 9}};
}

inline Metrics make_metrics(int epoch, double offset, double loss_shift, double accuracy_shift, int64_t graphs) {
  const double e = epoch;
  Metrics m;
  m.classification_loss = 1.5 / e + offset + loss_shift;
  m.link_loss = 0.4 / e + loss_shift;
  m.entropy_loss = 0.1 / e + loss_shift;
  m.loss = 2.0 / e + offset + loss_shift;
  m.accuracy = 0.5 + 0.05 * e + accuracy_shift;
  m.graphs = graphs;
  return m;
}

// A completed job of a holdout experiment with a two-point sweep.
inline JobRecord make_job_record(int fold, int64_t point, int epochs = 6) {
  JobRecord r;
  r.job_id = fmt::format("{:016x}", 0xabc000u + static_cast<unsigned>(fold * 16 + point));
  r.experiment_id = "0123456789abcdef";
  r.experiment_name = "synthetic-enzymes";
  r.protocol = "holdout";
  r.phase = "train";
  r.point = point;
  r.point_label = point == 0 ? "training.learning_rate=0.001" : "training.learning_rate=0.0001";
  r.fold = fold;
  r.repeat = 0;
  r.seed = 0xfedcba9876543210ULL + static_cast<uint64_t>(fold);  // does not fit into int64
  r.dataset = "ENZYMES";
  r.dataset_digest = "0123456789abcdef";
  r.variant = "diffpool";
  r.settings = "dataset.name=ENZYMES\nmodel.variant=diffpool\n" + r.point_label + "\n";
  r.config_yaml = "name: synthetic-enzymes\ndataset:\n  name: ENZYMES\n# gr\u00fc\u00dfe \u0394\n";
  for (int64_t i = 0; i < 40; ++i) {
    if (i % 10 == fold) r.test.push_back(i);
    else if (i % 10 == 9) r.validation.push_back(i);
    else r.train.push_back(i);
  }
  const double offset = 0.01 * static_cast<double>(point + 2 * fold);
  // Evaluations also count the clusters in use at each of two pooling levels.
  auto evaluated = [&](int e, double loss_shift, double accuracy_shift) {
    Metrics m = make_metrics(e, offset, loss_shift, accuracy_shift, 60);
    m.cluster_usage = {0.25 + 0.05 * e + accuracy_shift, 0.9 - 0.1 * e};
    return m;
  };
  for (int e = 1; e <= epochs; ++e) {
    EpochMetrics m;
    m.epoch = e;
    m.train = make_metrics(e, offset, 0.0, 0.0, 480);
    if (e != 3) m.validation = evaluated(e, 0.1, -0.02);
    if (e % 2 == 0) {
      m.test = evaluated(e, 0.2, -0.04);
      for (const int64_t g : r.test) m.test_predictions.push_back(static_cast<int32_t>((g / 2 + e) % kClasses));
    }
    m.grad_norm = 1.0 + 0.5 * e;
    m.train_seconds = 0.25 * e;
    m.eval_seconds = 0.125 * e;
    r.epochs.push_back(m);
  }
  r.best_epoch = epochs >= 5 ? 5 : epochs;
  r.best_validation = evaluated(r.best_epoch, 0.1, -0.02);
  r.has_test = true;
  r.test_metrics = evaluated(r.best_epoch, 0.2, -0.04);
  r.predictions.graphs = r.test;
  for (const int64_t g : r.test) {
    r.predictions.labels.push_back(static_cast<int32_t>(g % kClasses));
    r.predictions.predictions.push_back(static_cast<int32_t>((g / 2) % kClasses));
  }
  r.predictions.epoch = r.best_epoch;
  r.outputs_split = "test";
  for (const auto& [graph, nodes] : output_graphs(fold)) {
    r.outputs.push_back(make_graph_outputs(graph, nodes));
    r.output_edges.push_back(make_edges(nodes));
  }
  r.host = "node001";
  r.rank = 3;
  r.backend = "cpu";
  r.version = "0.1.0";
  r.git_revision = "e3302f5abcde";
  r.wall_seconds = 12.5;
  r.started_at = "2024-05-01T10:00:00Z";
  r.finished_at = "2024-05-01T10:00:12Z";
  return r;
}

// The summary of the four jobs above (folds 0 and 1, points 0 and 1), with one failure.
inline ExperimentSummary make_summary() {
  ExperimentSummary s;
  s.name = "synthetic-enzymes";
  s.experiment_id = "0123456789abcdef";
  s.protocol = "holdout";
  s.dataset = "ENZYMES";
  s.variant = "diffpool";
  s.folds = 2;
  s.repeats = 1;
  s.jobs_total = 5;
  s.jobs_completed = 4;
  s.jobs_failed = 1;
  s.points = {
      // The paper protocol's columns do not apply to holdout: NaN.
      PointSummary{0, "training.learning_rate=0.001", 2, 0.73, 0.01, 0.71, 0.02, 0, kNotApplicable, kNotApplicable},
      PointSummary{1, "training.learning_rate=0.0001", 2, 0.74, 0.015, 0.70, 0.03, 0, kNotApplicable, kNotApplicable},
  };
  // Fold 1 chose between two points with the same mean validation accuracy.
  s.winners = {FoldWinner{0, 1, 0.74, 0.71, 0.0, 1, 1, "00000000000000f0"},
               FoldWinner{1, 0, 0.75, 0.69, 0.0, 1, 2, "00000000000000f1"}};
  s.accuracy_mean = 0.70;
  s.accuracy_std = 0.014142135623730951;
  s.accuracy_std_population = 0.01;
  s.split_seed = 0xfedcba9876543210ULL;  // does not fit into int64
  s.has_split_seed = true;
  s.accuracy_label = "test accuracy of per-fold winners";
  s.optimistic = false;
  s.failures = {FailedJob{"00000000000abc99", 1, 1, 0, "train", "numerical failure: loss is NaN, at epoch 4"}};
  // Job rows: curves of different lengths (one empty), a NaN epoch, a job without a test split.
  const double nan = kNotApplicable;
  s.jobs = {SummaryJob{"0000000000000a01", "train", 1, 0, 0, 3, 2, 0.74, 0.71, "00000000000000f0", "node001",
                       "e3302f5abcde", 12.5, {0.70, 0.74, 0.73}, "0123456789abcdef", {0.5, 0.25}},
            SummaryJob{"0000000000000a02", "select", 0, 1, 0, 0, 0, nan, nan, "", "node002", "e3302f5abcde", 0, {}, "", {}},
            SummaryJob{"0000000000000a03", "train", 0, 1, 0, 2, 1, 0.75, 0.69, "00000000000000f1", "node002",
                       "1234567890ab", 3.25, {0.75, nan}, "0123456789abcdef", {0.625}}};
  s.version = "0.1.0";
  s.git_revision = "e3302f5abcde";
  s.backend = "cpu";
  s.hosts = {"node001", "node002"};
  s.ranks = 4;
  s.updated_at = "2024-05-01T10:05:00Z";
  return s;
}

}  // namespace diffpool::testing
