#pragma once
// What an experiment will cost before it runs: the matrix-product work of every job, from the
// real dataset and the model (engine/train/cost.hpp), and, once some of its jobs have finished on
// this machine, the wall time the rest needs at the rate they ran at. `diffpool plan` prints it
// job by job; `diffpool run` prints the totals before it starts.
#include <string>
#include <vector>

#include "runner/job_runner.hpp"
#include "runner/plan.hpp"

namespace diffpool {

struct PlanWork {
  std::vector<double> job_epoch_flops;  // per plan job: one epoch (training, then its evaluations)
  std::vector<double> job_flops;        // per plan job: all its epochs (early stopping ends sooner)
  std::vector<bool> job_done;           // per plan job: its job file exists
  std::vector<int> job_checkpoint_epochs;  // per plan job not done: the epochs its checkpoint holds (0: none)
  double total_flops = 0;
  double remaining_flops = 0;           // of the jobs not done, less the epochs their checkpoints hold
  // Finished jobs in the output folder: the epochs they ran, their seconds and backends.
  int measured_jobs = 0;
  double measured_flops = 0, measured_seconds = 0;
  std::vector<std::string> measured_backends;
  // Checkpointed jobs (a run cut off, or running): their epochs so far count towards the rate too,
  // so a resumed experiment of one long job is estimated before that job finishes.
  int checkpointed_jobs = 0, checkpointed_epochs = 0;
  double checkpointed_flops = 0, checkpointed_seconds = 0;
};

// Loads the experiment's dataset (through `datasets`) and prices every job of the plan. Jobs whose
// sweep point is chosen later (nested retraining) are priced with point 0's model.
PlanWork estimate_plan_work(const ExperimentPlan& plan, DatasetCache& datasets, const OutputLayout& layout);
// The totals in a few lines: the work, and the time the remaining jobs need at the measured rate.
std::string format_plan_work(const PlanWork& work, const ExperimentPlan& plan, const OutputLayout& layout);
// "17.9 TFLOP", "410 GFLOP", "2.1 PFLOP".
std::string format_flops(double flops);

}  // namespace diffpool
