// The cost of an experiment before it runs (runner/plan_cost.hpp): every job is priced as the
// cost model prices its own split, the nested protocol's retraining too, and per-graph cluster
// counts show their difference on a dataset of unequal graphs before anything trains, and a
// checkpointed job's epochs count as done and give the rate.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/data/splits.hpp"
#include "engine/train/cost.hpp"
#include "runner/checkpoint.hpp"
#include "runner/plan_cost.hpp"
#include "runner/protocol/protocol.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

namespace fs = std::filesystem;

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
  EXPECT_NE(text.find("no finished or checkpointed job"), std::string::npos) << text;
}

// A run cut off in its one long job (a D&D fold) is estimated from its checkpoint: the epochs it
// holds are not counted again, and their seconds give the rate before any job has finished.
TEST(PlanCost, ACheckpointedJobGivesTheRateAndIsNotCountedAgain) {
  const ExperimentPlan plan = make_plan(config(
      "name: t\ndataset: {name: MUTAG}\nmodel: {hidden_dim: 8, embedding_dim: 8}\ntraining: {epochs: 10}\n"
      "evaluation: {protocol: holdout, folds: 2}\n"));
  const fs::path root = fs::path(testing::binary_dir()) / "plan_cost_checkpointed";
  fs::remove_all(root);
  const OutputLayout layout{root};
  fs::create_directories(layout.checkpoints());
  DatasetCache datasets;
  const PlanWork before = estimate_plan_work(plan, datasets, layout);
  ASSERT_GE(plan.jobs.size(), 2u);
  EXPECT_EQ(before.checkpointed_jobs, 0);

  const JobSpec& job = plan.jobs[1];
  Checkpoint c;
  c.job_id = job_id(plan, job, job.point);
  for (int e = 1; e <= 4; ++e) {
    EpochMetrics m;
    m.epoch = e;
    m.train_seconds = 1.5;
    m.eval_seconds = 0.5;
    c.epochs.push_back(m);
  }
  c.state.epoch = 4;
  write_checkpoint(layout.checkpoint_file(c.job_id), c);
  // Another job's checkpoint under this job's name is not this job's progress.
  Checkpoint other = c;
  other.job_id = "not-a-job-of-this-plan";
  write_checkpoint(layout.checkpoint_file(job_id(plan, plan.jobs[0], plan.jobs[0].point)), other);

  const PlanWork after = estimate_plan_work(plan, datasets, layout);
  const double epoch = after.job_epoch_flops[static_cast<std::size_t>(job.index)];
  EXPECT_EQ(after.checkpointed_jobs, 1);
  EXPECT_EQ(after.checkpointed_epochs, 4);
  EXPECT_EQ(after.job_checkpoint_epochs[static_cast<std::size_t>(job.index)], 4);
  EXPECT_EQ(after.job_checkpoint_epochs[static_cast<std::size_t>(plan.jobs[0].index)], 0);
  EXPECT_DOUBLE_EQ(after.checkpointed_seconds, 8.0);
  EXPECT_DOUBLE_EQ(after.checkpointed_flops, 4 * epoch);
  EXPECT_NEAR(after.remaining_flops, before.remaining_flops - 4 * epoch, 1e-9 * before.remaining_flops);
  EXPECT_DOUBLE_EQ(after.total_flops, before.total_flops);
  const std::string text = format_plan_work(after, plan, layout);
  EXPECT_NE(text.find("4 epochs of 1 checkpointed job ran at"), std::string::npos) << text;
  EXPECT_NE(text.find("less the 4 epochs that 1 checkpointed job holds"), std::string::npos) << text;
  // The rate is the checkpoint's own: 4 epochs' products in 8 s.
  EXPECT_NE(text.find(fmt::format("{:.1f} GFLOP/s", 4 * epoch / 8.0 / 1e9)), std::string::npos) << text;
  fs::remove_all(root);
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
