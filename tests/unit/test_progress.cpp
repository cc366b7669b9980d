// output.progress: which progress display rank 0 chooses, and that the setting is parsed with its
// place in the file and leaves the experiment's identity alone (it does not change results).
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace diffpool
