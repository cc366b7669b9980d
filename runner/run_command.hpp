#pragma once
// `diffpool run` and `diffpool plan`: the commands on top of the plan (plan.hpp), the task farm
// (task_farm.hpp, scheduler.hpp), the stop signals (stop_signal.hpp) and the summary.
//
// Exit codes (documented in README.md and used by the job scripts):
//   0   every job of the plan completed;
//   3   the run finished, but some jobs failed (each recorded with its reason; a rerun retries them);
//   75  stopped by SIGTERM, SIGUSR1 or SIGINT: running jobs were checkpointed; rerun (or requeue) to resume;
//   2   invalid input (experiment file, data, output folder of another experiment);
//   1   an internal error.
#include <string>
#include <vector>

namespace diffpool {

constexpr int kExitCompleted = 0;
constexpr int kExitInternal = 1;
constexpr int kExitInput = 2;
constexpr int kExitJobsFailed = 3;
constexpr int kExitStorageFull = 74;  // EX_IOERR: no room on the output's file system; free space, rerun
constexpr int kExitStopped = 75;

struct RunCommandOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  bool summary_only = false;  // rebuild the summary from the job files, run nothing
  bool verbose = false;       // also print every assignment of a job to a rank
};

int run_experiment_command(int* argc, char*** argv, const RunCommandOptions& options);

// `diffpool plan`: prints the expanded job list.
int plan_command(const std::string& config_path, const std::vector<std::string>& overrides);

// `diffpool merge`: the summary of one experiment from the summaries of runs of its folds in
// separate output folders (other clusters, other sessions, job arrays with their own scratch), with
// no job files: the job rows of every input's summary.h5, each completed job once, summarised as
// `diffpool run` summarises a folder. Writes summary.h5, summary.csv, experiment.yaml (the full
// experiment: evaluation.only_folds cleared) and experiment.id into `out`. Returns kExitCompleted
// when every job of the plan is there, kExitJobsFailed otherwise (as `run` does).
int merge_command(const std::vector<std::string>& inputs, const std::string& out);

}  // namespace diffpool
