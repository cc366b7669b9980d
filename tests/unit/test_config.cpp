// Experiment files: every malformed file gives its specific message with line and column, before
// any work starts; plans are deterministic.
#include <gtest/gtest.h>

#include "runner/config.hpp"
#include "runner/plan.hpp"
#include "tests/test_util.hpp"

#include <filesystem>

namespace diffpool {
namespace {

struct BadCase {
  const char* name;
  const char* yaml;
  const char* expected;  // substring of the error message
};

class BadExperimentFile : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadExperimentFile, NamesPlaceKeyAndValue) {
  const BadCase& c = GetParam();
  try {
    parse_experiment(c.yaml, "bad.yaml");
    FAIL() << "no error for case " << c.name;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos)
        << "case " << c.name << ": message was: " << e.what() << "\nexpected to contain: " << c.expected;
  }
}

const BadCase kBadCases[] = {
    {"typo in a key", "name: x\nmodel:\n  hiden_dim: 64\n",
     "bad.yaml:3:3: unknown key 'model.hiden_dim' (did you mean 'hidden_dim'?)"},
    {"unknown section", "name: x\nmodle:\n  hidden_dim: 64\n", "bad.yaml:2:1: unknown key 'modle' (did you mean 'model'?)"},
    {"not a number", "model:\n  hidden_dim: sixty\n", "bad.yaml:2:15: model.hidden_dim: expected an integer, got 'sixty'"},
    {"float for an integer", "training:\n  epochs: 10.5\n", "bad.yaml:2:11: training.epochs: expected an integer, got '10.5'"},
    {"out of range", "model:\n  dropout: 1.5\n", "bad.yaml:2:12: model.dropout: 1.5 is out of range: allowed [0, 1)"},
    {"negative learning rate", "training:\n  learning_rate: -0.1\n",
     "bad.yaml:2:18: training.learning_rate: -0.1 is out of range: allowed (0, 10]"},
    {"unknown variant", "model:\n  variant: diffpol\n",
     "bad.yaml:2:12: model.variant: unknown model variant 'diffpol': expected one of diffpool, diffpool-nolp, diffpool-det, graphsage"},
    {"unknown protocol", "evaluation:\n  protocol: cv\n",
     "bad.yaml:2:13: evaluation.protocol: unknown protocol 'cv': expected paper, holdout or nested"},
    {"bool expected", "model:\n  batch_norm: maybe\n", "bad.yaml:2:15: model.batch_norm: expected true or false, got 'maybe'"},
    {"list of integers", "model:\n  conv_layers: [2, x]\n", "model.conv_layers: expected an integer, got 'x'"},
    {"section is not a mapping", "model: 3\n", "bad.yaml:1:8: model: expected a mapping of keys, got '3'"},
    {"YAML syntax", "model:\n  hidden_dim: [1, 2\n", "bad.yaml:3:1: YAML syntax error"},
    {"fold outside folds", "evaluation:\n  folds: 5\n  only_folds: [7]\n",
     "evaluation.only_folds: 7 is out of range: allowed 0 to 4"},
    {"sweep key outside model/training/dataset", "sweep:\n  parameters:\n    evaluation.folds: [2, 3]\n",
     "bad.yaml:3:5: sweep.parameters.evaluation.folds: only model.*, training.* and dataset.* keys can be swept"},
    {"distribution in a grid", "sweep:\n  parameters:\n    training.learning_rate: {log_uniform: [0.0001, 0.01]}\n",
     "a distribution needs sweep.mode: random"},
    {"bad distribution range", "sweep:\n  mode: random\n  parameters:\n    training.learning_rate: {log_uniform: [0, 0.01]}\n",
     "invalid range [0, 0.01] (log_uniform needs 0 < low <= high)"},
    {"empty value list", "sweep:\n  parameters:\n    model.hidden_dim: []\n", "the list of values is empty"},
    {"pooling levels for DiffPool", "model:\n  variant: diffpool\n  pool_levels: 0\n",
     "model.pool_levels: variant diffpool needs at least one pooling level"},
    {"bad dtype", "training:\n  dtype: f16\n", "bad.yaml:2:10: training.dtype: unknown dtype 'f16': expected f32 or f64"},
    {"bad backend", "backend:\n  kind: tpu\n", "bad.yaml:2:9: backend.kind: unknown backend 'tpu': expected cpu, cuda or auto"},
    {"bad features", "dataset:\n  features: colour\n", "bad.yaml:2:13: dataset.features: unknown feature mode 'colour'"},
    {"name with a slash", "name: a/b\n", "name: 'a/b' is not usable as a folder name"},
    {"empty file", "", "bad.yaml: the experiment file is empty"},
};
INSTANTIATE_TEST_SUITE_P(Table, BadExperimentFile, ::testing::ValuesIn(kBadCases));

TEST(ExperimentFile, OverridesAndSweepPointsNameTheirOrigin) {
  try {
    parse_experiment("name: x\n", "e.yaml", {"model.hidden_dim=abc"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("command line '--set model.hidden_dim=abc': model.hidden_dim: expected an integer"),
              std::string::npos)
        << e.what();
  }
  ExperimentConfig base = parse_experiment("name: x\nsweep:\n  parameters:\n    model.dropout: [0.1, 2]\n", "e.yaml");
  try {
    make_plan(base);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sweep point 1 (model.dropout=2): model.dropout: 2 is out of range"), std::string::npos)
        << e.what();
  }
}

TEST(ExperimentFile, EveryShippedConfigValidates) {
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(testing::source_dir() + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(make_plan(load_experiment(entry.path().string())));
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

TEST(Plan, GridTimesFoldsTimesRepeatsWithDeterministicIds) {
  const char* yaml =
      "name: p\nevaluation:\n  folds: 3\n  repeats: 2\nsweep:\n  parameters:\n    model.hidden_dim: [8, 16]\n"
      "    training.learning_rate: [0.01, 0.001, 0.0001]\n";
  ExperimentPlan a = make_plan(parse_experiment(yaml, "p.yaml"));
  ExperimentPlan b = make_plan(parse_experiment(yaml, "p.yaml"));
  ASSERT_EQ(a.points.size(), 6u);
  ASSERT_EQ(a.jobs.size(), 6u * 3 * 2);
  EXPECT_EQ(a.points[1].label, "model.hidden_dim=8 training.learning_rate=0.001");
  EXPECT_EQ(a.points[1].config.model.hidden_dim, 8);
  EXPECT_DOUBLE_EQ(a.points[1].config.training.learning_rate, 0.001);
  EXPECT_EQ(a.experiment_id, b.experiment_id);
  std::set<std::string> ids;
  for (const JobSpec& j : a.jobs) {
    EXPECT_EQ(job_id(a, j, j.point), job_id(b, b.jobs[static_cast<std::size_t>(j.index)], j.point));
    ids.insert(job_id(a, j, j.point));
  }
  EXPECT_EQ(ids.size(), a.jobs.size()) << "job ids collide";
  // Changing a setting changes the experiment and the ids; choosing folds does not.
  ExperimentPlan c = make_plan(parse_experiment(yaml, "p.yaml", {"training.epochs=7"}));
  EXPECT_NE(c.experiment_id, a.experiment_id);
  ExperimentPlan d = make_plan(parse_experiment(yaml, "p.yaml", {"evaluation.only_folds=[1]"}));
  EXPECT_EQ(d.experiment_id, a.experiment_id);
  EXPECT_EQ(d.jobs.size(), 12u);
  EXPECT_EQ(job_id(d, d.jobs[0], d.jobs[0].point), job_id(a, a.jobs[12], a.jobs[12].point));
}

TEST(Plan, NestedRetrainsDependOnTheirFoldsSelection) {
  ExperimentPlan p = make_plan(parse_experiment(
      "name: n\nevaluation:\n  protocol: nested\n  folds: 3\n  repeats: 2\nsweep:\n  parameters:\n    training.learning_rate: [0.01, 0.001]\n",
      "n.yaml"));
  int select = 0, retrain = 0;
  for (const JobSpec& j : p.jobs) {
    if (j.phase == Phase::select) {
      ++select;
      EXPECT_TRUE(p.dependencies(j).empty());
    } else {
      ++retrain;
      EXPECT_EQ(j.point, -1);
      const auto deps = p.dependencies(j);
      EXPECT_EQ(deps.size(), 2u);
      for (int64_t d : deps) EXPECT_EQ(p.jobs[static_cast<std::size_t>(d)].fold, j.fold);
    }
  }
  EXPECT_EQ(select, 6);
  EXPECT_EQ(retrain, 6);
}

TEST(Plan, RandomSearchIsSeeded) {
  const char* yaml =
      "name: r\nsweep:\n  mode: random\n  samples: 5\n  seed: 3\n  parameters:\n    training.learning_rate: {log_uniform: [0.0001, 0.1]}\n"
      "    model.hidden_dim: {int_uniform: [8, 64]}\n";
  ExperimentPlan a = make_plan(parse_experiment(yaml, "r.yaml"));
  ExperimentPlan b = make_plan(parse_experiment(yaml, "r.yaml"));
  ASSERT_EQ(a.points.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(a.points[i].label, b.points[i].label);
    EXPECT_GE(a.points[i].config.training.learning_rate, 0.0001);
    EXPECT_LE(a.points[i].config.training.learning_rate, 0.1);
    EXPECT_GE(a.points[i].config.model.hidden_dim, 8);
    EXPECT_LE(a.points[i].config.model.hidden_dim, 64);
  }
}

TEST(Plan, LongestJobsAreEstimatedLongest) {
  ExperimentPlan p = make_plan(parse_experiment(
      "name: c\nmodel:\n  hidden_dim: 8\nevaluation:\n  folds: 2\nsweep:\n  parameters:\n    training.epochs: [5, 500]\n"
      "    model.embedding_dim: [8, 64]\n",
      "c.yaml"));
  // Cost grows with epochs and width: the (500 epochs, width 64) point is the most expensive.
  double best = 0;
  int64_t best_point = -1;
  for (const JobSpec& j : p.jobs)
    if (j.cost > best) {
      best = j.cost;
      best_point = j.point;
    }
  EXPECT_EQ(p.points[static_cast<std::size_t>(best_point)].label, "model.embedding_dim=64 training.epochs=500");
}

TEST(Splits, JobSplitsFollowTheProtocol) {
  std::vector<int32_t> labels(60);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 3);
  ExperimentPlan paper = make_plan(parse_experiment("evaluation:\n  protocol: paper\n  folds: 5\n", "x.yaml"));
  Split s = job_split(paper, paper.jobs[0], labels);
  EXPECT_EQ(s.validation, s.test) << "the paper protocol validates on the test fold";
  ExperimentPlan holdout = make_plan(parse_experiment("evaluation:\n  protocol: holdout\n  folds: 5\n", "x.yaml"));
  Split h = job_split(holdout, holdout.jobs[0], labels);
  EXPECT_EQ(h.test.size(), 12u);
  EXPECT_FALSE(h.validation.empty());
  std::set<int64_t> all(h.train.begin(), h.train.end());
  for (int64_t i : h.validation) EXPECT_TRUE(all.insert(i).second);
  for (int64_t i : h.test) EXPECT_TRUE(all.insert(i).second);
  EXPECT_EQ(all.size(), labels.size());
}

}  // namespace
}  // namespace diffpool
