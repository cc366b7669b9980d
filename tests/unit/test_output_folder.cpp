// Writes into an output folder that a purge takes while the experiment runs
// (runner/job_runner.hpp, write_keeping_output_folder): a write that fails because its folder went
// away is tried again once the folder is back, also when another rank put it back first; a
// failure that has nothing to do with the folder, or a full file system, still reaches the job.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "results/atomic_file.hpp"
#include "runner/job_runner.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

namespace fs = std::filesystem;

ExperimentPlan small_plan() {
  return make_plan(parse_experiment("name: t\ndataset: {name: MUTAG}\nevaluation: {protocol: holdout, folds: 2}\n", "t.yaml",
                                    {"dataset.data_dir=" + testing::data_dir()}));
}

OutputLayout fresh_layout(const std::string& name) {
  const OutputLayout layout{fs::path(testing::binary_dir()) / name};
  fs::remove_all(layout.root);
  layout.create();
  return layout;
}

// The write writes a file into the folder, as the job runner's writes do: it fails when the
// folder is not there.
void write_into(const fs::path& file) {
  std::ofstream out(file);
  if (!out) throw std::runtime_error("cannot create '" + file.string() + "'");
  out << "result\n";
}

TEST(OutputFolder, AWriteWhoseFolderAnotherRankPutBackIsTriedAgain) {
  const ExperimentPlan plan = small_plan();
  const OutputLayout layout = fresh_layout("output_folder_put_back");
  int tries = 0;
  write_keeping_output_folder(plan, layout, layout.checkpoints(), [&] {
    if (++tries == 1) {
      // The purge takes the folder during this write, and another rank notices it and puts the
      // layout back before this one looks: nothing is missing by then.
      fs::remove_all(layout.root);
      layout.create();  // the other rank's restore, whole
      write_experiment_files(plan, layout);
      ASSERT_FALSE(restore_output_layout(plan, layout));
      throw std::runtime_error("cannot create the checkpoint: No such file or directory");
    }
    write_into(layout.checkpoint_file("a"));
  });
  EXPECT_EQ(tries, 2);
  EXPECT_TRUE(fs::exists(layout.checkpoint_file("a")));
}

TEST(OutputFolder, AWriteWhoseFolderIsGoneIsTriedAgainOnceThisRankPutsItBack) {
  const ExperimentPlan plan = small_plan();
  const OutputLayout layout = fresh_layout("output_folder_gone");
  int tries = 0;
  write_keeping_output_folder(plan, layout, layout.jobs(), [&] {
    if (++tries == 1) fs::remove_all(layout.root);  // gone during the write
    write_into(layout.job_file("a"));
  });
  EXPECT_EQ(tries, 2);
  EXPECT_TRUE(fs::exists(layout.job_file("a")));
  EXPECT_TRUE(fs::exists(layout.root / "experiment.id"));
  EXPECT_TRUE(fs::is_directory(layout.checkpoints()));

  // Gone before the write: put back first, one try.
  fs::remove_all(layout.root);
  tries = 0;
  write_keeping_output_folder(plan, layout, layout.jobs(), [&] {
    ++tries;
    write_into(layout.job_file("b"));
  });
  EXPECT_EQ(tries, 1);
  EXPECT_TRUE(fs::exists(layout.job_file("b")));
}

// How often write_keeping_output_folder ran a write that always throws `error`, and that the
// error reached the caller.
template <class Error>
int tries_of_a_failing_write(const ExperimentPlan& plan, const OutputLayout& layout, const Error& error) {
  int tries = 0;
  EXPECT_THROW(write_keeping_output_folder(plan, layout, layout.jobs(),
                                           [&] {
                                             ++tries;
                                             throw error;
                                           }),
               Error);
  return tries;
}

TEST(OutputFolder, FailuresOfTheWriteItselfStillReachTheJob) {
  const ExperimentPlan plan = small_plan();
  const OutputLayout layout = fresh_layout("output_folder_failures");
  // The folder is there: one more try, then the error.
  EXPECT_EQ(tries_of_a_failing_write(plan, layout, std::runtime_error("the record cannot be encoded")), 2);
  // A full file system: the caller waits for space and tries again itself.
  EXPECT_EQ(tries_of_a_failing_write(plan, layout, StorageFullError("no space left on device")), 1);
}

}  // namespace
}  // namespace diffpool
