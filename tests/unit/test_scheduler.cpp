// The task farm's scheduler (runner/scheduler.hpp) as a plain class: no MPI, threads or files.
// Plans come from small experiment texts; "earlier runs" are a map from job id to the validation
// accuracy of its completed result file.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "runner/config.hpp"
#include "runner/plan.hpp"
#include "runner/scheduler.hpp"

namespace diffpool {
namespace {

ExperimentPlan nested_plan(int points, int folds, int repeats) {
  std::string lrs;
  for (int i = 0; i < points; ++i) lrs += (i ? ", " : "") + std::to_string(0.001 * (i + 1));
  return make_plan(parse_experiment(fmt::format("name: s\nevaluation:\n  protocol: nested\n  folds: {}\n  repeats: {}\n"
                                                "sweep:\n  parameters:\n    training.learning_rate: [{}]\n",
                                                folds, repeats, lrs),
                                    "s.yaml"));
}

Scheduler::CompletedLookup nothing_done() {
  return [](const std::string&) { return std::optional<double>(); };
}

// Takes every ready job (and starts it) until none is ready.
std::vector<int64_t> start_all_ready(Scheduler& s, std::vector<std::string>* events) {
  std::vector<int64_t> started;
  for (int64_t j = s.next_ready(events); j >= 0; j = s.next_ready(events)) {
    s.start(j);
    started.push_back(j);
  }
  return started;
}

TEST(Scheduler, LongestExpectedJobFirst) {
  const ExperimentPlan plan = make_plan(parse_experiment(
      "name: c\nevaluation:\n  folds: 2\nsweep:\n  parameters:\n    training.epochs: [5, 500, 50]\n", "c.yaml"));
  Scheduler s(plan, nothing_done());
  std::vector<std::string> events;
  double previous = 1e300;
  const std::vector<int64_t> order = start_all_ready(s, &events);
  ASSERT_EQ(order.size(), plan.jobs.size());
  for (int64_t j : order) {
    EXPECT_LE(plan.jobs[static_cast<std::size_t>(j)].cost, previous);
    previous = plan.jobs[static_cast<std::size_t>(j)].cost;
  }
  EXPECT_EQ(plan.points[static_cast<std::size_t>(plan.jobs[static_cast<std::size_t>(order.front())].point)].label,
            "training.epochs=500");
  EXPECT_TRUE(events.empty());
  EXPECT_FALSE(s.all_finished());
  for (int64_t j : order) s.complete(j, 0.5);
  EXPECT_TRUE(s.all_finished());
  EXPECT_EQ(s.remaining_cost(), 0.0);
}

// A job another run into the same folder trains (runner/job_claims.hpp): not handed out while
// deferred, not finished, done when that run's result is taken (a selection job's result then
// counts for its fold), ready again when the other run gives it back.
TEST(Scheduler, AJobTrainedByAnotherRunWaitsForItsResultOrItsReturn) {
  const ExperimentPlan plan = nested_plan(2, 2, 1);
  Scheduler s(plan, nothing_done());
  std::vector<std::string> events;
  const int64_t first = s.next_ready(&events);
  ASSERT_GE(first, 0);
  s.defer(first);
  EXPECT_EQ(s.state(first), JobState::elsewhere);
  for (;;) {  // everything else that can run, runs
    const std::vector<int64_t> started = start_all_ready(s, &events);
    if (started.empty()) break;
    EXPECT_EQ(std::count(started.begin(), started.end(), first), 0);
    for (int64_t j : started) s.complete(j, 0.5);
  }
  EXPECT_FALSE(s.all_finished());
  EXPECT_FALSE(s.finished(first));
  EXPECT_LT(s.next_ready(&events), 0) << "the fold's retraining waits for the deferred selection job";
  s.undefer(first);
  EXPECT_EQ(s.next_ready(&events), first);
  s.defer(first);
  s.complete(first, 0.9);  // its result, written by the other run
  EXPECT_TRUE(s.finished(first));
  const int64_t retrain = s.next_ready(&events);
  ASSERT_GE(retrain, 0);
  EXPECT_EQ(s.point(retrain), s.point(first)) << "the other run's selection result chose the point";
}

TEST(Scheduler, RetrainingWaitsForItsFoldsSelectionAndRunsTheWinner) {
  const ExperimentPlan plan = nested_plan(3, 2, 2);
  Scheduler s(plan, nothing_done());
  std::vector<std::string> events;
  const std::vector<int64_t> first = start_all_ready(s, &events);
  ASSERT_EQ(first.size(), 6u) << "only the selection jobs are ready";
  for (int64_t j : first) EXPECT_EQ(plan.jobs[static_cast<std::size_t>(j)].phase, Phase::select);

  // Fold 1's selections finish (point 2 best); fold 0's are still running.
  for (int64_t j : first) {
    const JobSpec& spec = plan.jobs[static_cast<std::size_t>(j)];
    if (spec.fold == 1) s.complete(j, spec.point == 2 ? 0.9 : 0.4);
  }
  const std::vector<int64_t> retrain = start_all_ready(s, &events);
  ASSERT_EQ(retrain.size(), 2u);
  for (int64_t j : retrain) {
    const JobSpec& spec = plan.jobs[static_cast<std::size_t>(j)];
    EXPECT_EQ(spec.phase, Phase::retrain);
    EXPECT_EQ(spec.fold, 1);
    EXPECT_EQ(s.point(j), 2);
    EXPECT_EQ(s.id(j), job_id(plan, spec, 2));
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[0].find("fold 1: selected sweep point 2"), std::string::npos) << events[0];

  // Fold 0: every selection fails, so its retrainings cannot run and fail with a reason.
  for (int64_t j : first)
    if (plan.jobs[static_cast<std::size_t>(j)].fold == 0) s.fail(j);
  events.clear();
  EXPECT_EQ(s.next_ready(&events), -1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[0].find("cannot run: no selection job of the fold completed"), std::string::npos) << events[0];
  for (int64_t j : retrain) s.complete(j, 0.8);
  EXPECT_TRUE(s.all_finished());
}

TEST(Scheduler, ResumeSkipsCompletedJobsAndReusesTheirSelection) {
  const ExperimentPlan plan = make_plan(parse_experiment("name: s\nevaluation:\n  protocol: nested\n  folds: 2\n  only_folds: [1]\n"
                                                       "sweep:\n  parameters:\n    training.learning_rate: [0.001, 0.002]\n",
                                                       "s.yaml"));
  ASSERT_EQ(plan.jobs.size(), 3u);
  // An earlier run completed both selection jobs (point 0 better) but not the retraining.
  std::map<std::string, double> earlier;
  for (const JobSpec& j : plan.jobs)
    if (j.phase == Phase::select) earlier[job_id(plan, j, j.point)] = j.point == 0 ? 0.75 : 0.25;
  Scheduler s(plan, [&](const std::string& id) {
    const auto it = earlier.find(id);
    return it == earlier.end() ? std::optional<double>() : std::optional<double>(it->second);
  });
  EXPECT_EQ(s.already_done(), 2);
  std::vector<std::string> events;
  const int64_t j = s.next_ready(&events);
  ASSERT_GE(j, 0);
  EXPECT_EQ(plan.jobs[static_cast<std::size_t>(j)].phase, Phase::retrain);
  EXPECT_EQ(s.point(j), 0);

  // Once the retraining is complete too, a new scheduler finds nothing to do.
  earlier[job_id(plan, plan.jobs[static_cast<std::size_t>(j)], 0)] = 0.7;
  Scheduler again(plan, [&](const std::string& id) {
    const auto it = earlier.find(id);
    return it == earlier.end() ? std::optional<double>() : std::optional<double>(it->second);
  });
  events.clear();
  EXPECT_EQ(again.next_ready(&events), -1);
  EXPECT_TRUE(again.all_finished());
  EXPECT_EQ(again.state(j), JobState::done);
  EXPECT_EQ(again.remaining_cost(), 0.0);
}

TEST(Scheduler, AnInterruptedJobIsPendingAgain) {
  const ExperimentPlan plan = make_plan(parse_experiment("name: i\nevaluation:\n  folds: 2\n", "i.yaml"));
  Scheduler s(plan, nothing_done());
  std::vector<std::string> events;
  const double total = s.remaining_cost();
  const int64_t j = s.next_ready(&events);
  ASSERT_GE(j, 0);
  s.start(j);
  EXPECT_EQ(s.state(j), JobState::running);
  EXPECT_NE(s.next_ready(&events), j) << "a running job is not handed out twice";
  s.interrupt(j);
  EXPECT_EQ(s.state(j), JobState::pending);
  EXPECT_EQ(s.next_ready(&events), j);
  s.start(j);
  s.complete(j, 0.5);
  EXPECT_LT(s.remaining_cost(), total);
  EXPECT_THROW(s.start(j), Error) << "a finished job cannot start again";
}

}  // namespace
}  // namespace diffpool
