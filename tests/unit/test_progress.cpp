// output.progress: which progress display rank 0 chooses, and that the setting is parsed with its
// place in the file and leaves the experiment's identity alone (it does not change results); the
// ETA of a resumed job takes its pace from this run's epochs only, and jobs waiting for room to
// write their results are counted.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "runner/config.hpp"
#include "runner/plan.hpp"
#include "runner/progress.hpp"

namespace diffpool {
namespace {

using Display = OutputSettings::ProgressDisplay;

TEST(ProgressDisplay, AutomaticIsLiveOnlyOnATerminalOutsideMpi) {
  struct Case {
    Display setting;
    bool terminal, under_mpi, live;
  };
  const Case cases[] = {
      {Display::automatic, true, false, true},   // a terminal, one process
      {Display::automatic, false, false, false}, // a batch log
      {Display::automatic, true, true, false},   // mpirun: its ranks see a pseudo-terminal anyway
      {Display::automatic, false, true, false},
      {Display::live, false, true, true},        // asked for
      {Display::live, false, false, true},
      {Display::plain, true, false, false},
      {Display::plain, true, true, false},
  };
  for (const Case& c : cases)
    EXPECT_EQ(show_live_progress(c.setting, c.terminal, c.under_mpi), c.live)
        << "setting " << static_cast<int>(c.setting) << " terminal " << c.terminal << " mpi " << c.under_mpi;
}

TEST(ProgressDisplay, ParsedWithItsPlaceAndNotPartOfTheExperimentsIdentity) {
  const std::string base = "name: p\nevaluation:\n  folds: 2\n";
  EXPECT_EQ(parse_experiment(base, "p.yaml").output.progress, Display::automatic);
  EXPECT_EQ(parse_experiment(base + "output:\n  progress: plain\n", "p.yaml").output.progress, Display::plain);
  EXPECT_EQ(parse_experiment(base, "p.yaml", {"output.progress=live"}).output.progress, Display::live);
  try {
    parse_experiment(base + "output:\n  progress: sometimes\n", "p.yaml");
    FAIL() << "an unknown progress display was accepted";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("p.yaml:5:13"), std::string::npos) << message;
    EXPECT_NE(message.find("sometimes"), std::string::npos) << message;
    EXPECT_NE(message.find("auto, live or plain"), std::string::npos) << message;
  }
  const ExperimentPlan automatic = make_plan(parse_experiment(base, "p.yaml"));
  const ExperimentPlan plain = make_plan(parse_experiment(base, "p.yaml", {"output.progress=plain"}));
  EXPECT_EQ(automatic.experiment_id, plain.experiment_id);
  EXPECT_EQ(job_id(automatic, automatic.jobs[0], 0), job_id(plain, plain.jobs[0], 0));
}

// Seconds of an "ETA 1h02m" / "ETA 3m05s" / "ETA 4s" field of a status line.
double eta_seconds(const std::string& line) {
  std::smatch m;
  if (std::regex_search(line, m, std::regex(R"(ETA (\d+)h(\d+)m)")))
    return 3600.0 * std::stod(m[1]) + 60.0 * std::stod(m[2]);
  if (std::regex_search(line, m, std::regex(R"(ETA (\d+)m(\d+)s)"))) return 60.0 * std::stod(m[1]) + std::stod(m[2]);
  if (std::regex_search(line, m, std::regex(R"(ETA (\d+)s)"))) return std::stod(m[1]);
  ADD_FAILURE() << "no ETA in: " << line;
  return -1;
}

// A job resumed from its checkpoint at epoch 790 of 1000 that has run 10 more epochs in this run
// has done 1% of its work in the run's elapsed time, with 20% left: the ETA is about 20 times the
// elapsed time, not a quarter of it (as when its earlier 79% were taken for this run's work).
TEST(ProgressDisplay, AResumedJobsEarlierEpochsAreNotThisRunsPace) {
  Progress progress(1, 0, 100.0, 1, false);
  progress.started(0, 100.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  progress.epoch(0, 800, 1000, 790);
  testing::internal::CaptureStdout();
  progress.tick(true);
  const std::string resumed = testing::internal::GetCapturedStdout();
  EXPECT_GE(eta_seconds(resumed), 3.0) << resumed;  // 20 x at least 0.2 s

  // The same job without a checkpoint, 800 epochs in the same time: 80% done, a quarter of that left.
  Progress fresh(1, 0, 100.0, 1, false);
  fresh.started(0, 100.0);
  fresh.epoch(0, 800, 1000);
  testing::internal::CaptureStdout();
  fresh.tick(true);
  const std::string line = testing::internal::GetCapturedStdout();
  EXPECT_LT(eta_seconds(line), eta_seconds(resumed)) << line;
  EXPECT_NE(line.find("jobs 0/1 done, 1 running"), std::string::npos) << line;
}

// A job that has trained and waits for room to write its result is said so on the status line.
TEST(ProgressDisplay, AJobWaitingForSpaceIsCounted) {
  Progress progress(2, 0, 2.0, 1, false);
  progress.started(0, 1.0);
  progress.started(1, 1.0);
  progress.epoch(0, 10, 10, 0, true);
  progress.epoch(1, 3, 10);
  testing::internal::CaptureStdout();
  progress.tick(true);
  std::string line = testing::internal::GetCapturedStdout();
  EXPECT_NE(line.find("jobs 0/2 done, 2 running (1 waiting for space), 0 failed"), std::string::npos) << line;
  progress.finished(0, false);
  testing::internal::CaptureStdout();
  progress.tick(true);
  line = testing::internal::GetCapturedStdout();
  EXPECT_EQ(line.find("waiting for space"), std::string::npos) << line;
}

}  // namespace
}  // namespace diffpool
