// The cost of an experiment before it runs (runner/plan_cost.hpp): every job is priced as the
// cost model prices its own split, the nested protocol's retraining too, and per-graph cluster
// counts show their difference on a dataset of unequal graphs before anything trains.
#include <gtest/gtest.h>

#include "engine/data/splits.hpp"
#include "engine/train/cost.hpp"
#include "runner/plan_cost.hpp"
#include "runner/protocol/protocol.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

ExperimentConfig config(const std::string& text, std::vector<std::string> overrides = {}) {
  overrides.push_back("dataset.data_dir=" + testing::data_dir());
  return parse_experiment(text, "t.yaml", overrides);
}

TEST(PlanCost, EveryJobIsPricedAsItsOwnSplit) {
  const ExperimentPlan plan = make_plan(config(
      "name: t\ndataset: {name: MUTAG}\nmodel: {hidden_dim: 8, embedding_dim: 8}\ntraining: {epochs: 7}\n"
      "evaluation: {protocol: nested, folds: 3, repeats: 2}\nsweep: {parameters: {training.learning_rate: [0.01, 0.001]}}\n"));
  DatasetCache datasets;
  const OutputLayout layout{testing::binary_dir() + "/plan_cost_no_such_folder"};
  const PlanWork work = estimate_plan_work(plan, datasets, layout);
  ASSERT_EQ(work.job_flops.size(), plan.jobs.size());
  double total = 0;
  for (const JobSpec& j : plan.jobs) {
    const ExperimentConfig& c = plan.points[static_cast<std::size_t>(j.point >= 0 ? j.point : 0)].config;
    const GraphDataset& d = datasets.get(c.dataset);
    const EvaluationProtocol& protocol = protocol_module(c.evaluation.protocol);
    TrainConfig t = c.training;
    const JobTrainingSettings how = protocol.training(j.phase);
    t.evaluate_test_every_epoch = how.trainer_sees_test && how.evaluate_test_every_epoch;
    const Split split = protocol.split(c.evaluation, j.phase, j.fold, d.labels);
    const EpochCost epoch = estimate_epoch_cost(d, c.model, t, split);
    EXPECT_EQ(work.job_epoch_flops[static_cast<std::size_t>(j.index)], epoch.total()) << "job " << j.index;
    EXPECT_GE(work.job_flops[static_cast<std::size_t>(j.index)], 7 * epoch.total());
    EXPECT_FALSE(work.job_done[static_cast<std::size_t>(j.index)]);
    total += work.job_flops[static_cast<std::size_t>(j.index)];
  }
  EXPECT_DOUBLE_EQ(work.total_flops, total);
  EXPECT_DOUBLE_EQ(work.remaining_flops, total);
  EXPECT_EQ(work.measured_jobs, 0);
  const std::string text = format_plan_work(work, plan, layout);
  EXPECT_NE(text.find("no finished job"), std::string::npos) << text;
}

TEST(PlanCost, PerGraphClusterCountsCostLessOnUnequalGraphs) {
  const std::string text =
      "name: t\ndataset: {name: PROTEINS}\nmodel: {pool_levels: 2, cluster_ratio: 0.25}\ntraining: {epochs: 10}\n"
      "evaluation: {protocol: holdout, folds: 10}\n";
  DatasetCache datasets;
  const OutputLayout layout{testing::binary_dir() + "/plan_cost_no_such_folder"};
  const PlanWork fixed = estimate_plan_work(make_plan(config(text)), datasets, layout);
  const PlanWork per_graph = estimate_plan_work(make_plan(config(text, {"model.cluster_rule=per_graph"})), datasets, layout);
  // PROTEINS: 155 clusters for every graph against 25% of each graph's own 39 nodes on average.
  EXPECT_GT(fixed.total_flops, 10 * per_graph.total_flops);
  EXPECT_NE(format_flops(fixed.total_flops).find("FLOP"), std::string::npos);
  EXPECT_EQ(format_flops(1.79e13), "17.9 TFLOP");
  EXPECT_EQ(format_flops(4.1e11), "410 GFLOP");
}

}  // namespace
}  // namespace diffpool
