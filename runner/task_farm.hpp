#pragma once
// The MPI task farm of `diffpool run`. Rank 0's main thread runs the master loop: it drives the
// Scheduler (scheduler.hpp), hands jobs to the ranks that ask for one, reports progress, and trains
// jobs itself in a second thread; every other rank runs the worker loop (ask, train, report). A stop
// signal (stop_signal.hpp) on any rank makes every rank checkpoint its running job and stop.
#include "runner/job_runner.hpp"
#include "runner/mpi_session.hpp"
#include "runner/plan.hpp"

namespace diffpool {

enum class FarmEnd {
  finished,  // every job of the plan ran (completed or failed): the caller summarises
  stopped,   // a stop signal: the running jobs were checkpointed
  storage_full,  // a job's result found no room on the output's file system: stopped as for a signal
};

// Rank 0: schedules the plan's jobs over all ranks (itself included) until they are finished or a
// stop signal arrives. `verbose` also logs every assignment. `completed`, if given, receives the ids
// of the jobs this run completed (whose result files the caller can check are still there).
FarmEnd run_master(const ExperimentPlan& plan, const OutputLayout& layout, const MpiSession& mpi, JobContext context,
                   bool verbose, std::vector<std::string>* completed = nullptr);

// Ranks 1..n-1: run the jobs rank 0 assigns until it shuts them down.
void run_worker(const ExperimentPlan& plan, const MpiSession& mpi, JobContext context);

}  // namespace diffpool
