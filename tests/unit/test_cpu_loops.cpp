// The CPU backend's two compilations of its own loops (engine/backend/cpu/cpu_backend.cpp): the
// x86-64 baseline's and the AVX2 one that make_cpu_backend picks on CPUs that run it. AVX2 without
// fused multiply-adds and without reordered reductions computes every value the same: training
// the model variants with each, in f32 and f64, gives bit-identical metrics, parameters and Adam
// moments, epoch after epoch. Also: the choice by DIFFPOOL_CPU_LOOPS, and the backend's name.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/train/trainer.hpp"
#include "tests/unit/synthetic.hpp"

namespace diffpool {
namespace {

bool avx2_available() {
  try {
    make_cpu_backend(1, HugePages::automatic, CpuLoops::avx2);
    return true;
  } catch (const InputError&) {
    return false;
  }
}

// Bitwise equality of doubles (NaN included), with the first difference named.
void expect_bitwise(const std::string& what, const std::vector<double>& a, const std::vector<double>& b) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(double)) != 0) {
      ADD_FAILURE() << what << " [" << i << "]: " << a[i] << " (baseline) against " << b[i] << " (AVX2)";
      return;
    }
  }
}

std::vector<double> flatten(const Metrics& m) {
  std::vector<double> v = {m.loss, m.classification_loss, m.link_loss, m.entropy_loss, m.accuracy,
                           static_cast<double>(m.graphs)};
  v.insert(v.end(), m.cluster_usage.begin(), m.cluster_usage.end());
  return v;
}

struct Case {
  std::string name;
  ModelConfig model;
  double edge_probability = 0.35;  // 0.9: nearly complete graphs, whose first level is dense blocks
};

std::vector<Case> cases() {
  std::vector<Case> list;
  ModelConfig base;
  base.hidden_dim = 12;
  base.embedding_dim = 10;
  base.mlp_hidden = {9};
  ModelConfig two = base;
  two.pool_levels = 2;
  list.push_back({"diffpool, 2 levels", two});
  ModelConfig per_graph = two;
  per_graph.cluster_rule = ClusterRule::per_graph;
  per_graph.link_norm = LinkLossNorm::per_entry;
  per_graph.readout = Readout::mean;
  list.push_back({"diffpool, per-graph clusters", per_graph});
  ModelConfig det = two;
  det.variant = Variant::diffpool_det;
  det.readout = Readout::sum;
  list.push_back({"diffpool-det", det});
  ModelConfig nolp = base;
  nolp.variant = Variant::diffpool_nolp;
  nolp.concat_layers = true;
  nolp.dropout = 0.2;
  nolp.dense_aggregation = DenseAggregation::sum;
  list.push_back({"diffpool-nolp, dense graphs", nolp, 0.9});
  ModelConfig sage = base;
  sage.variant = Variant::graphsage;
  list.push_back({"graphsage", sage});
  return list;
}

TEST(CpuLoops, AVX2AndBaselineLoopsTrainBitIdentically) {
  if (!avx2_available()) GTEST_SKIP() << "this CPU does not run AVX2 (or the build has no AVX2 loops)";
  for (const Case& c : cases()) {
    const GraphDataset data = testing::synthetic_dataset({5, 17, 9, 31, 12, 6, 25, 3, 14, 8, 20, 11}, 4, 3, 7,
                                                         c.edge_probability);
    Split split;
    split.train = {0, 1, 2, 3, 4, 5, 6, 7};
    split.validation = {8, 9};
    split.test = {10, 11};
    for (const DType dtype : {DType::f32, DType::f64}) {
      const std::string what = c.name + (dtype == DType::f32 ? ", f32" : ", f64");
      TrainConfig t;
      t.epochs = 3;
      t.batch_size = 3;
      t.learning_rate = 0.01;
      t.seed = 5;
      t.dtype = dtype;
      auto baseline = make_cpu_backend(1, HugePages::automatic, CpuLoops::baseline);
      auto avx2 = make_cpu_backend(1, HugePages::automatic, CpuLoops::avx2);
      Trainer a(*baseline, data, c.model, t, split);
      Trainer b(*avx2, data, c.model, t, split);
      for (int epoch = 1; epoch <= t.epochs; ++epoch) {
        const EpochMetrics ma = a.run_epoch();
        const EpochMetrics mb = b.run_epoch();
        const std::string at = what + ", epoch " + std::to_string(epoch);
        expect_bitwise(at + ", training metrics", flatten(ma.train), flatten(mb.train));
        ASSERT_TRUE(ma.validation && mb.validation) << at;
        expect_bitwise(at + ", validation metrics", flatten(*ma.validation), flatten(*mb.validation));
        ASSERT_TRUE(ma.test && mb.test) << at;
        expect_bitwise(at + ", test metrics", flatten(*ma.test), flatten(*mb.test));
        expect_bitwise(at + ", gradient norm", {ma.grad_norm}, {mb.grad_norm});
      }
      const TrainerState sa = a.state(), sb = b.state();
      expect_bitwise(what + ", parameters", sa.parameters.values, sb.parameters.values);
      expect_bitwise(what + ", Adam's first moments", sa.parameters.m, sb.parameters.m);
      expect_bitwise(what + ", Adam's second moments", sa.parameters.v, sb.parameters.v);
      expect_bitwise(what + ", batch-norm buffers", sa.parameters.buffers, sb.parameters.buffers);
      EXPECT_FALSE(sa.parameters.values.empty()) << what;
    }
  }
}

// The environment's DIFFPOOL_CPU_LOOPS decides for `automatic`; the name says which loops run.
TEST(CpuLoops, TheEnvironmentChoosesAndTheNameSays) {
  const char* before = std::getenv("DIFFPOOL_CPU_LOOPS");
  const std::string saved = before ? before : "";
  ::setenv("DIFFPOOL_CPU_LOOPS", "baseline", 1);
  EXPECT_NE(make_cpu_backend(1)->name().find(" kernels, baseline loops, 1 thread)"), std::string::npos)
      << make_cpu_backend(1)->name();
  ::setenv("DIFFPOOL_CPU_LOOPS", "sse9", 1);
  try {
    make_cpu_backend(1);
    ADD_FAILURE() << "DIFFPOOL_CPU_LOOPS=sse9 was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("DIFFPOOL_CPU_LOOPS=sse9: expected auto, baseline or avx2"), std::string::npos)
        << e.what();
  }
  ::unsetenv("DIFFPOOL_CPU_LOOPS");
  const std::string chosen = make_cpu_backend(2)->name();
  if (avx2_available()) {
    EXPECT_NE(chosen.find(" kernels, AVX2 loops, 2 threads)"), std::string::npos) << chosen;
    ::setenv("DIFFPOOL_CPU_LOOPS", "avx2", 1);
    EXPECT_NE(make_cpu_backend(1)->name().find("AVX2 loops"), std::string::npos);
  } else {
    EXPECT_NE(chosen.find(" kernels, baseline loops, 2 threads)"), std::string::npos) << chosen;
    EXPECT_THROW(make_cpu_backend(1, HugePages::automatic, CpuLoops::avx2), InputError);
  }
  if (before) ::setenv("DIFFPOOL_CPU_LOOPS", saved.c_str(), 1);
  else ::unsetenv("DIFFPOOL_CPU_LOOPS");
}

}  // namespace
}  // namespace diffpool
