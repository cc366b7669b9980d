// The cost model (engine/train/cost.hpp): the matrix-product FLOPs it predicts for an epoch equal,
// exactly, what the counting backend measures while the Trainer really runs that epoch, for every
// variant and link-loss form, 1 and 2 pooling levels; and the counter itself counts a product as
// 2 m n k (a hand-computed case).
#include <gtest/gtest.h>

#include "engine/backend/counting_backend.hpp"
#include "engine/data/splits.hpp"
#include "engine/train/cost.hpp"
#include "engine/train/trainer.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

TEST(CountingBackend, CountsProductsFromShapes) {
  auto cpu = make_cpu_backend(1);
  CountingBackend counter(*cpu);
  Tensor a = allocate_tensor(counter, Shape{3, 4}, DType::f64), b = allocate_tensor(counter, Shape{4, 5}, DType::f64),
         c = allocate_tensor(counter, Shape{3, 5}, DType::f64);
  counter.fill(a, 1.0);
  counter.fill(b, 2.0);
  counter.gemm(Trans::no, Trans::no, 3, 5, 4, 1.0, a.data(), 4, b.data(), 5, 0.0, c.data(), 5, DType::f64);
  EXPECT_EQ(counter.flops().gemm, 2.0 * 3 * 5 * 4);
  EXPECT_EQ(download<double>(counter, c)[0], 8.0);  // executed: 4 terms of 1 * 2
  counter.gemm_strided_batched(Trans::no, Trans::no, 3, 5, 2, 1.0, a.data(), 4, 2, b.data(), 5, 10, 0.0, c.data(), 5,
                               0, 2, DType::f64);
  EXPECT_EQ(counter.flops().batched, 2.0 * 3 * 5 * 2 * 2);

  CountingBackend dry(*cpu, /*execute=*/false);
  counter.fill(c, -1.0);
  dry.gemm(Trans::no, Trans::no, 3, 5, 4, 1.0, a.data(), 4, b.data(), 5, 0.0, c.data(), 5, DType::f64);
  EXPECT_EQ(dry.flops().total(), 2.0 * 3 * 5 * 4);
  EXPECT_EQ(download<double>(dry, c)[0], -1.0);  // counted, not computed
}

struct CostCase {
  const char* name;
  Variant variant;
  int pool_levels;
  LinkLossNorm link_norm;
  bool per_graph = false;
};

class CostModel : public ::testing::TestWithParam<CostCase> {};

TEST_P(CostModel, EstimateEqualsTheCountedEpoch) {
  const CostCase& p = GetParam();
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  const GraphDataset dataset = load_tu_dataset("MUTAG", options);
  ModelConfig model;
  model.variant = p.variant;
  model.pool_levels = p.pool_levels;
  model.link_norm = p.link_norm;
  if (p.per_graph) model.cluster_rule = ClusterRule::per_graph;
  model.hidden_dim = 16;
  model.embedding_dim = 16;
  TrainConfig training;
  training.epochs = 1;
  training.batch_size = 16;  // 150-odd training graphs: a short last batch too
  Split split = make_fold_split(dataset.labels, 10, 3, 0.1, 7);
  ASSERT_FALSE(split.validation.empty());
  ASSERT_FALSE(split.test.empty());

  const EpochCost estimate = estimate_epoch_cost(dataset, model, training, split);
  auto cpu = make_cpu_backend(1);
  CountingBackend counter(*cpu);
  Trainer trainer(counter, dataset, model, training, split);
  counter.reset();  // the parameter initialisation and set-up are not part of an epoch
  trainer.run_epoch();
  EXPECT_GT(estimate.train_flops, 0);
  EXPECT_GT(estimate.evaluation_flops, 0);
  EXPECT_EQ(estimate.train_graphs, static_cast<int64_t>(split.train.size()));
  EXPECT_EQ(estimate.evaluated_graphs, static_cast<int64_t>(split.validation.size() + split.test.size()));
  // Every counted product is an integer below 2^53: the sums are exact in any order.
  EXPECT_EQ(estimate.total(), counter.flops().total()) << p.name;
  // Graph by graph, the same figures.
  const EpochCost summed = epoch_cost(estimate_graph_costs(dataset, model, training.dtype), split, true);
  EXPECT_EQ(summed.train_flops, estimate.train_flops) << p.name;
  EXPECT_EQ(summed.evaluation_flops, estimate.evaluation_flops) << p.name;
  // A training pass (forward and backward) costs more than a forward pass over as many graphs.
  EXPECT_GT(estimate.train_flops / static_cast<double>(estimate.train_graphs),
            estimate.evaluation_flops / static_cast<double>(estimate.evaluated_graphs));
}

INSTANTIATE_TEST_SUITE_P(Variants, CostModel,
                         ::testing::Values(CostCase{"diffpool_1", Variant::diffpool, 1, LinkLossNorm::frobenius},
                                           CostCase{"diffpool_2", Variant::diffpool, 2, LinkLossNorm::frobenius},
                                           CostCase{"diffpool_bce", Variant::diffpool, 2, LinkLossNorm::bce},
                                           CostCase{"nolp", Variant::diffpool_nolp, 1, LinkLossNorm::frobenius},
                                           CostCase{"det", Variant::diffpool_det, 2, LinkLossNorm::frobenius},
                                           CostCase{"graphsage", Variant::graphsage, 0, LinkLossNorm::frobenius},
                                           CostCase{"per_graph", Variant::diffpool, 2, LinkLossNorm::frobenius, true},
                                           CostCase{"per_graph_bce", Variant::diffpool, 2, LinkLossNorm::bce, true},
                                           CostCase{"per_graph_det", Variant::diffpool_det, 2, LinkLossNorm::frobenius, true}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace diffpool
