#pragma once
// The task farm's bookkeeping, as a plain class: which jobs are pending, running, done or failed,
// which one runs next (longest expected first, the protocol's dependencies respected), and the
// sweep point of jobs that wait for their fold's selection. No MPI, no threads, no files: what an
// earlier run finished comes in through a lookup function, so the class is tested on its own
// (tests/unit/test_scheduler.cpp) and rank 0's master loop (task_farm.cpp) only drives it.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runner/plan.hpp"
#include "runner/protocol/protocol.hpp"

namespace diffpool {

// elsewhere: another run into the same output folder holds the job's claim (runner/job_claims.hpp);
// this run waits for its result (or for the claim to be given back or go stale).
enum class JobState : uint8_t { pending, running, done, failed, elsewhere };

class Scheduler {
 public:
  // For a job id: the best validation accuracy of its completed result file from an earlier run, or
  // nothing when there is none (the job must run).
  using CompletedLookup = std::function<std::optional<double>(const std::string& job_id)>;

  Scheduler(const ExperimentPlan& plan, CompletedLookup completed);

  // The next job that can run now, or -1; it stays pending until start(). A job waiting for its
  // fold's selection gets the protocol's winner here (or fails when no selection job of the fold
  // completed); each such decision is appended to `events` as a line for the log.
  int64_t next_ready(std::vector<std::string>* events);

  void start(int64_t job);
  void complete(int64_t job, double validation_accuracy);
  void fail(int64_t job);
  void interrupt(int64_t job);  // stopped by a signal after a checkpoint: pending again
  void defer(int64_t job);      // pending -> elsewhere: another run trains it
  void undefer(int64_t job);    // elsewhere -> pending: its claim was given back or went stale

  JobState state(int64_t job) const { return state_[index(job)]; }
  int64_t point(int64_t job) const { return point_[index(job)]; }  // -1 until selection fixes it
  const std::string& id(int64_t job) const { return id_[index(job)]; }
  bool finished(int64_t job) const;
  bool all_finished() const;
  int64_t already_done() const { return already_done_; }  // jobs found complete from earlier runs
  double remaining_cost() const;  // expected cost of the jobs not finished yet

 private:
  static std::size_t index(int64_t job) { return static_cast<std::size_t>(job); }
  void resolve(const JobSpec& job);  // fixes the id once the point is known; done if found complete

  const ExperimentPlan& plan_;
  const EvaluationProtocol& protocol_;
  CompletedLookup completed_;
  std::vector<JobState> state_;
  std::vector<int64_t> point_;
  std::vector<std::string> id_;
  std::vector<SelectionResult> selection_;  // completed selection jobs
  std::vector<int64_t> order_;              // all jobs, longest expected first
  int64_t already_done_ = 0;
};

}  // namespace diffpool
