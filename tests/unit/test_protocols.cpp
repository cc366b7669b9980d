// The evaluation protocol modules (runner/protocol/), without MPI, files or training: each
// module's job layout, splits, training settings, dependencies, winner rule and summary figure on
// small hand-made inputs; and the names tables of the typed phase and status.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "runner/config.hpp"
#include "runner/plan.hpp"
#include "runner/protocol/protocol.hpp"
#include "runner/summary_builder.hpp"

namespace diffpool {
namespace {

constexpr Protocol kProtocols[] = {Protocol::paper, Protocol::holdout, Protocol::nested};

std::vector<int32_t> balanced_labels(int n, int classes) {
  std::vector<int32_t> labels(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = i % classes;
  return labels;
}

std::vector<SweepPoint> sweep_points(int n) {
  std::vector<SweepPoint> points(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    points[static_cast<std::size_t>(i)].index = i;
    points[static_cast<std::size_t>(i)].label = "point " + std::to_string(i);
  }
  return points;
}

FinishedJob finished(Phase phase, int64_t point, int fold, int repeat, double validation, double test) {
  FinishedJob j;
  j.phase = phase;
  j.point = point;
  j.fold = fold;
  j.repeat = repeat;
  j.validation_accuracy = validation;
  j.has_test = phase != Phase::select;
  j.test_accuracy = test;
  return j;
}

TEST(Protocols, EveryProtocolHasItsModule) {
  for (Protocol p : kProtocols) EXPECT_EQ(protocol_module(p).kind(), p) << protocol_name(p);
}

TEST(Protocols, PhaseAndStatusNamesAreTheStoredStrings) {
  // These strings are written into job files and hashed into job ids: renaming one would orphan
  // every existing result.
  EXPECT_STREQ(phase_name(Phase::train), "train");
  EXPECT_STREQ(phase_name(Phase::select), "select");
  EXPECT_STREQ(phase_name(Phase::retrain), "retrain");
  EXPECT_STREQ(job_status_name(JobStatus::completed), "completed");
  EXPECT_STREQ(job_status_name(JobStatus::failed), "failed");
  for (int i = 0; i < static_cast<int>(Phase::count); ++i) {
    const auto phase = static_cast<Phase>(i);
    EXPECT_EQ(parse_phase(phase_name(phase)), phase);
  }
  for (int i = 0; i < static_cast<int>(JobStatus::count); ++i) {
    const auto status = static_cast<JobStatus>(i);
    EXPECT_EQ(parse_job_status(job_status_name(status)), status);
  }
  try {
    parse_phase("retraining");
    FAIL() << "an unknown phase was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'retraining'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("select"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_job_status("running"), InputError);
}

TEST(Protocols, PaperAndHoldoutTrainEveryPointOnEveryFold) {
  for (Protocol p : {Protocol::paper, Protocol::holdout}) {
    const std::vector<FoldJob> jobs = protocol_module(p).fold_jobs(3, 2);
    ASSERT_EQ(jobs.size(), 6u) << protocol_name(p);
    std::set<std::pair<int64_t, int>> seen;
    for (const FoldJob& j : jobs) {
      EXPECT_EQ(j.phase, Phase::train);
      EXPECT_TRUE(seen.insert({j.point, j.repeat}).second);
    }
    EXPECT_EQ(protocol_module(p).tested_phase(), Phase::train);
    EXPECT_TRUE(protocol_module(p).dependencies({}, JobSpec{}).empty());
  }
}

TEST(Protocols, NestedSelectsThenRetrainsTheWinner) {
  const EvaluationProtocol& nested = protocol_module(Protocol::nested);
  const std::vector<FoldJob> jobs = nested.fold_jobs(3, 2);
  ASSERT_EQ(jobs.size(), 5u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(jobs[static_cast<std::size_t>(i)].phase, Phase::select);
    EXPECT_EQ(jobs[static_cast<std::size_t>(i)].point, i);
  }
  for (std::size_t i = 3; i < 5; ++i) {
    EXPECT_EQ(jobs[i].phase, Phase::retrain);
    EXPECT_EQ(jobs[i].point, -1) << "the retrained point is chosen by selection";
  }
  // One point: nothing to select, the retrainings run it directly.
  const std::vector<FoldJob> single = nested.fold_jobs(1, 2);
  ASSERT_EQ(single.size(), 2u);
  for (const FoldJob& j : single) {
    EXPECT_EQ(j.phase, Phase::retrain);
    EXPECT_EQ(j.point, 0);
  }
  EXPECT_EQ(nested.tested_phase(), Phase::retrain);

  // An unresolved retraining waits for the selections of its own fold, and nothing else does.
  std::vector<JobSpec> plan_jobs;
  for (int fold = 0; fold < 2; ++fold)
    for (const FoldJob& f : jobs) {
      JobSpec s;
      s.index = static_cast<int64_t>(plan_jobs.size());
      s.phase = f.phase;
      s.point = f.point;
      s.fold = fold;
      s.repeat = f.repeat;
      plan_jobs.push_back(s);
    }
  for (const JobSpec& j : plan_jobs) {
    const std::vector<int64_t> deps = nested.dependencies(plan_jobs, j);
    if (j.phase == Phase::select) {
      EXPECT_TRUE(deps.empty());
      continue;
    }
    ASSERT_EQ(deps.size(), 3u);
    for (int64_t d : deps) {
      EXPECT_EQ(plan_jobs[static_cast<std::size_t>(d)].fold, j.fold);
      EXPECT_EQ(plan_jobs[static_cast<std::size_t>(d)].phase, Phase::select);
    }
    JobSpec resolved = j;
    resolved.point = 1;
    EXPECT_TRUE(nested.dependencies(plan_jobs, resolved).empty()) << "a retraining with a fixed point waits for nothing";
  }
}

TEST(Protocols, SplitsFollowTheProtocol) {
  const std::vector<int32_t> labels = balanced_labels(90, 3);
  EvaluationSettings e;
  e.folds = 5;
  e.validation_fraction = 0.2;
  auto covers_all_once = [&](const Split& s) {
    std::set<int64_t> all(s.train.begin(), s.train.end());
    for (int64_t i : s.validation) EXPECT_TRUE(all.insert(i).second) << "graph " << i << " is in two parts";
    for (int64_t i : s.test) EXPECT_TRUE(all.insert(i).second) << "graph " << i << " is in two parts";
    return all.size();
  };
  for (int fold = 0; fold < e.folds; ++fold) {
    const Split paper = protocol_module(Protocol::paper).split(e, Phase::train, fold, labels);
    EXPECT_EQ(paper.validation, paper.test) << "the paper protocol validates on the test fold";
    EXPECT_EQ(paper.test.size(), 18u);
    EXPECT_EQ(paper.train.size() + paper.test.size(), labels.size());

    const Split holdout = protocol_module(Protocol::holdout).split(e, Phase::train, fold, labels);
    EXPECT_EQ(holdout.test, paper.test) << "the outer folds are the same for every protocol";
    EXPECT_FALSE(holdout.validation.empty());
    EXPECT_EQ(covers_all_once(holdout), labels.size());

    const Split select = protocol_module(Protocol::nested).split(e, Phase::select, fold, labels);
    const Split retrain = protocol_module(Protocol::nested).split(e, Phase::retrain, fold, labels);
    EXPECT_TRUE(select.test.empty()) << "selection never sees the outer test fold";
    EXPECT_EQ(select.train, holdout.train);
    EXPECT_EQ(select.validation, holdout.validation);
    EXPECT_EQ(retrain.test, paper.test);
    EXPECT_EQ(covers_all_once(retrain), labels.size());
  }
}

TEST(Protocols, TrainingSettingsOfEachProtocol) {
  const JobTrainingSettings paper = protocol_module(Protocol::paper).training(Phase::train);
  EXPECT_FALSE(paper.restore_best);
  EXPECT_TRUE(paper.evaluate_test_every_epoch);
  EXPECT_TRUE(paper.trainer_sees_test);
  EXPECT_FALSE(protocol_module(Protocol::paper).validates_apart_from_test());
  for (Protocol p : {Protocol::holdout, Protocol::nested})
    for (Phase phase : {Phase::train, Phase::select, Phase::retrain}) {
      const JobTrainingSettings t = protocol_module(p).training(phase);
      EXPECT_TRUE(t.restore_best);
      EXPECT_FALSE(t.evaluate_test_every_epoch);
      EXPECT_FALSE(t.trainer_sees_test) << "the test split is evaluated once, after training";
      EXPECT_TRUE(protocol_module(p).validates_apart_from_test());
    }
}

TEST(Protocols, FoldWinnerIsTheBestMeanValidationLowestIndexOnTies) {
  const EvaluationProtocol& holdout = protocol_module(Protocol::holdout);
  const std::vector<SelectionResult> results = {
      {0, 0, 0.5}, {0, 0, 0.9},  // point 0, fold 0: mean 0.7
      {1, 0, 0.8}, {1, 0, 0.6},  // point 1, fold 0: mean 0.7 (a tie: point 0 wins)
      {2, 0, 0.6},               // point 2, fold 0: 0.6
      {2, 1, 0.4}, {1, 1, 0.3},  // fold 1: point 2
  };
  EXPECT_EQ(holdout.fold_winner(results, 0), 0);
  EXPECT_EQ(holdout.fold_winner(results, 1), 2);
  EXPECT_EQ(holdout.fold_winner(results, 7), -1) << "a fold without results has no winner";
  EXPECT_EQ(protocol_module(Protocol::nested).fold_winner(results, 1), 2);
  // The tie is recorded: two points share fold 0's best mean; fold 1 has one best; fold 7 none.
  EXPECT_EQ(tied_best_points(results, 0), 2);
  EXPECT_EQ(tied_best_points(results, 1), 1);
  EXPECT_EQ(tied_best_points(results, 7), 0);
}

TEST(Protocols, StatsOfNothingAreNaNAndTheStdComesInBothConventions) {
  const Stats none = stats({});
  EXPECT_TRUE(std::isnan(none.mean) && std::isnan(none.std) && std::isnan(none.population_std));
  const Stats one = stats({0.5});
  EXPECT_EQ(one.std, 0.0);
  EXPECT_EQ(one.population_std, 0.0);
  // 0.5, 0.7, 0.9: squares sum 0.08; sample std sqrt(0.08 / 2), population std sqrt(0.08 / 3).
  const Stats three = stats({0.5, 0.7, 0.9});
  EXPECT_DOUBLE_EQ(three.std, std::sqrt(0.08 / 2));
  EXPECT_DOUBLE_EQ(three.population_std, std::sqrt(0.08 / 3));
}

TEST(Protocols, HoldoutFigureIsTheMeanOverFoldsOfEachWinnersTest) {
  const std::vector<FinishedJob> jobs = {
      finished(Phase::train, 0, 0, 0, 0.70, 0.60), finished(Phase::train, 1, 0, 0, 0.80, 0.50),
      finished(Phase::train, 0, 1, 0, 0.90, 0.75), finished(Phase::train, 1, 1, 0, 0.60, 0.95),
  };
  ExperimentSummary s;
  protocol_module(Protocol::holdout).summarise(sweep_points(2), jobs, &s);
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(s.points[0].jobs, 2);
  EXPECT_DOUBLE_EQ(s.points[0].validation_mean, (0.70 + 0.90) / 2);
  EXPECT_DOUBLE_EQ(s.points[1].test_mean, (0.50 + 0.95) / 2);
  ASSERT_EQ(s.winners.size(), 2u);
  EXPECT_EQ(s.winners[0].point, 1);  // fold 0: validation 0.80 > 0.70
  EXPECT_DOUBLE_EQ(s.winners[0].test_mean, 0.50);
  EXPECT_EQ(s.winners[1].point, 0);  // fold 1: validation 0.90 > 0.60
  EXPECT_DOUBLE_EQ(s.winners[1].test_mean, 0.75);
  EXPECT_DOUBLE_EQ(s.accuracy_mean, (0.50 + 0.75) / 2);
  EXPECT_DOUBLE_EQ(s.accuracy_std, std::sqrt(2 * 0.125 * 0.125));
  EXPECT_DOUBLE_EQ(s.accuracy_std_population, 0.125) << "Errica et al.'s convention: divide by n";
  EXPECT_FALSE(s.optimistic);
  EXPECT_NE(s.accuracy_label.find("holdout"), std::string::npos);
  // The paper protocol's columns do not apply: NaN, never 0.
  EXPECT_TRUE(std::isnan(s.points[0].paper_accuracy) && std::isnan(s.points[0].paper_std));
  EXPECT_EQ(s.points[0].paper_best_epoch, 0);
  EXPECT_EQ(s.winners[0].tied, 1);
}

TEST(Protocols, HoldoutRecordsTiesAndTheTestSplitOfEachFold) {
  std::vector<FinishedJob> jobs = {
      finished(Phase::train, 0, 0, 0, 0.75, 0.60), finished(Phase::train, 1, 0, 0, 0.75, 0.50),
      finished(Phase::train, 2, 0, 0, 0.75, 0.90), finished(Phase::train, 0, 1, 0, 0.60, 0.70),
      finished(Phase::train, 1, 1, 0, 0.80, 0.65),
  };
  for (FinishedJob& j : jobs) j.test_split = j.fold == 0 ? "000000000000000a" : "000000000000000b";
  ExperimentSummary s;
  protocol_module(Protocol::holdout).summarise(sweep_points(3), jobs, &s);
  ASSERT_EQ(s.winners.size(), 2u);
  EXPECT_EQ(s.winners[0].point, 0) << "three points tie at 0.75: the lowest index wins";
  EXPECT_EQ(s.winners[0].tied, 3);
  EXPECT_DOUBLE_EQ(s.winners[0].test_mean, 0.60);
  EXPECT_EQ(s.winners[0].test_split, "000000000000000a");
  EXPECT_EQ(s.winners[1].point, 1);
  EXPECT_EQ(s.winners[1].tied, 1);
  EXPECT_EQ(s.winners[1].test_split, "000000000000000b");
}

TEST(Protocols, NestedFigureUsesTheRetrainingsAndTheSelectionsValidation) {
  const std::vector<FinishedJob> jobs = {
      finished(Phase::select, 0, 0, 0, 0.60, 0), finished(Phase::select, 1, 0, 0, 0.80, 0),
      finished(Phase::retrain, 1, 0, 0, 0.70, 0.50), finished(Phase::retrain, 1, 0, 1, 0.72, 0.70),
  };
  ExperimentSummary s;
  protocol_module(Protocol::nested).summarise(sweep_points(2), jobs, &s);
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(s.points[1].jobs, 1) << "a point's row counts its selection jobs, not the retrainings";
  EXPECT_DOUBLE_EQ(s.points[1].validation_mean, 0.80);
  ASSERT_EQ(s.winners.size(), 1u);
  EXPECT_EQ(s.winners[0].point, 1);
  EXPECT_EQ(s.winners[0].runs, 2);
  EXPECT_DOUBLE_EQ(s.winners[0].validation, 0.80) << "the winner's validation is its selection's";
  EXPECT_DOUBLE_EQ(s.winners[0].test_mean, 0.60);
  EXPECT_EQ(s.winners[0].tied, 1);
  EXPECT_DOUBLE_EQ(s.accuracy_mean, 0.60);
  // Selection jobs never see the test split: their points' test figures are NaN (printed "-"),
  // not 0.00 +- 0.00.
  EXPECT_TRUE(std::isnan(s.points[0].test_mean) && std::isnan(s.points[0].test_std));
  EXPECT_TRUE(std::isnan(s.points[1].test_mean));
  // One fold: its population std is 0, its sample std is 0 by convention.
  EXPECT_EQ(s.accuracy_std_population, 0.0);

  // One point: the retrainings are the point's jobs, and their own validation is the winner's.
  const std::vector<FinishedJob> single = {finished(Phase::retrain, 0, 2, 0, 0.40, 0.30),
                                           finished(Phase::retrain, 0, 2, 1, 0.60, 0.50)};
  ExperimentSummary one;
  protocol_module(Protocol::nested).summarise(sweep_points(1), single, &one);
  EXPECT_EQ(one.points[0].jobs, 2);
  ASSERT_EQ(one.winners.size(), 1u);
  EXPECT_EQ(one.winners[0].fold, 2);
  EXPECT_DOUBLE_EQ(one.winners[0].validation, 0.50);
  EXPECT_DOUBLE_EQ(one.winners[0].test_mean, 0.40);
}

// What `diffpool run` prints: "-" where a figure does not apply (never "0.00 +- 0.00" or "nan"),
// the tie of a fold, and both standard deviations of the figure.
TEST(Protocols, PrintedSummaryShowsDashesTiesAndBothStds) {
  const std::vector<FinishedJob> jobs = {
      finished(Phase::select, 0, 0, 0, 0.80, 0), finished(Phase::select, 1, 0, 0, 0.80, 0),
      finished(Phase::retrain, 0, 0, 0, 0.70, 0.50), finished(Phase::select, 0, 1, 0, 0.60, 0),
      finished(Phase::select, 1, 1, 0, 0.90, 0), finished(Phase::retrain, 1, 1, 0, 0.70, 0.70),
  };
  ExperimentSummary s;
  s.protocol = "nested";
  protocol_module(Protocol::nested).summarise(sweep_points(2), jobs, &s);
  const std::string text = format_summary(s);
  EXPECT_EQ(text.find("nan"), std::string::npos) << text;
  EXPECT_EQ(text.find("0.00 +-  0.00"), std::string::npos) << text;
  EXPECT_NE(text.find("      0      2     70.00 +- 14.14                  -  point 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fold  0: point 0 (validation 80.00%), test 50.00 +- 0.00% over 1 run; a tie of 2 points, "
                      "broken by the lowest sweep point index among the tied points\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fold  1: point 1 (validation 90.00%), test 70.00 +- 0.00% over 1 run\n"), std::string::npos) << text;
  EXPECT_NE(text.find("accuracy 60.00 +- 14.14% (sample std; population std 10.00)"), std::string::npos) << text;
}

// The printed summary gives each sweep point's cluster usage per pooling level, the mean over its
// jobs that record one (a GraphSAGE point prints none).
TEST(Protocols, PrintedSummaryShowsEachPointsClusterUsage) {
  ExperimentSummary s;
  s.protocol = "holdout";
  s.points.resize(3);
  for (int64_t p = 0; p < 3; ++p) s.points[static_cast<std::size_t>(p)].point = p;
  auto job = [](int64_t point, std::vector<double> usage) {
    SummaryJob j;
    j.point = point;
    j.cluster_usage = std::move(usage);
    return j;
  };
  s.jobs = {job(0, {0.5, 0.25}), job(0, {0.3, 0.75}), job(1, {0.9}), job(2, {})};
  const std::string text = format_summary(s);
  EXPECT_NE(text.find("point 0: cluster usage per pooling level 0.400 / 0.500 "), std::string::npos) << text;
  EXPECT_NE(text.find("point 1: cluster usage per pooling level 0.900 "), std::string::npos) << text;
  EXPECT_EQ(text.find("point 2: cluster usage"), std::string::npos) << text;
}

TEST(Protocols, PaperFigureIsTheBestEpochOfTheFoldAveragedCurve) {
  std::vector<FinishedJob> jobs = {finished(Phase::train, 0, 0, 0, 0.7, 0.6), finished(Phase::train, 0, 1, 0, 0.9, 0.9),
                                   finished(Phase::train, 1, 0, 0, 0.5, 0.5), finished(Phase::train, 1, 1, 0, 0.5, 0.5)};
  jobs[0].validation_curve = {0.50, 0.70, 0.60, 0.99};
  jobs[1].validation_curve = {0.60, 0.60, 0.90};  // epoch 4 not reached: it does not count
  jobs[2].validation_curve = {0.40, std::nan(""), 0.50};
  jobs[3].validation_curve = {0.40, 0.80, 0.50};
  ExperimentSummary s;
  protocol_module(Protocol::paper).summarise(sweep_points(2), jobs, &s);
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(s.points[0].paper_best_epoch, 3);
  EXPECT_DOUBLE_EQ(s.points[0].paper_accuracy, (0.60 + 0.90) / 2);
  EXPECT_EQ(s.points[1].paper_best_epoch, 3) << "an epoch one fold did not validate is skipped";
  EXPECT_DOUBLE_EQ(s.accuracy_mean, s.points[0].paper_accuracy) << "the best point's figure";
  EXPECT_DOUBLE_EQ(s.accuracy_std, s.points[0].paper_std);
  EXPECT_TRUE(s.optimistic);
  // The figure per fold, for paired comparisons: the reported point at the reported epoch.
  ASSERT_EQ(s.winners.size(), 2u);
  EXPECT_EQ(s.winners[0].fold, 0);
  EXPECT_EQ(s.winners[0].point, 0);
  EXPECT_DOUBLE_EQ(s.winners[0].test_mean, 0.60);
  EXPECT_DOUBLE_EQ(s.winners[1].test_mean, 0.90);
  EXPECT_EQ(s.winners[1].runs, 1);
  EXPECT_EQ(s.winners[0].tied, 1);
  EXPECT_DOUBLE_EQ((s.winners[0].test_mean + s.winners[1].test_mean) / 2, s.accuracy_mean);
  EXPECT_DOUBLE_EQ(s.accuracy_std_population, 0.15);  // population std of 0.60 and 0.90
}

TEST(Protocols, PaperTiesGoToTheLowestPointAndPointsWithoutJobsHaveNoFigure) {
  // Points 1 and 2 reach the same fold-averaged figure (0.8 at epoch 2); point 0 has no jobs.
  std::vector<FinishedJob> jobs = {finished(Phase::train, 1, 0, 0, 0, 0), finished(Phase::train, 1, 1, 0, 0, 0),
                                   finished(Phase::train, 2, 0, 0, 0, 0), finished(Phase::train, 2, 1, 0, 0, 0)};
  jobs[0].validation_curve = {0.5, 0.7};
  jobs[1].validation_curve = {0.5, 0.9};
  jobs[2].validation_curve = {0.6, 0.9};
  jobs[3].validation_curve = {0.6, 0.7};
  ExperimentSummary s;
  protocol_module(Protocol::paper).summarise(sweep_points(3), jobs, &s);
  EXPECT_TRUE(std::isnan(s.points[0].paper_accuracy)) << "no jobs: no figure, not 0";
  EXPECT_EQ(s.points[0].paper_best_epoch, 0);
  EXPECT_DOUBLE_EQ(s.accuracy_mean, 0.8);
  ASSERT_EQ(s.winners.size(), 2u);
  EXPECT_EQ(s.winners[0].point, 1);
  EXPECT_EQ(s.winners[0].tied, 2);
  EXPECT_DOUBLE_EQ(s.winners[0].test_mean, 0.7);

  ExperimentSummary nothing;
  protocol_module(Protocol::paper).summarise(sweep_points(2), {}, &nothing);
  EXPECT_TRUE(std::isnan(nothing.accuracy_mean)) << "nothing finished: no figure, not 0";
  EXPECT_TRUE(nothing.winners.empty());
}

}  // namespace
}  // namespace diffpool
