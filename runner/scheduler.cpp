#include "runner/scheduler.hpp"

#include <algorithm>

#include "engine/core/error.hpp"

namespace diffpool {

Scheduler::Scheduler(const ExperimentPlan& plan, CompletedLookup completed)
    : plan_(plan), protocol_(protocol_module(plan.base.evaluation.protocol)), completed_(std::move(completed)) {
  const std::size_t n = plan_.jobs.size();
  state_.assign(n, JobState::pending);
  point_.resize(n);
  id_.resize(n);
  for (const JobSpec& j : plan_.jobs) {
    point_[index(j.index)] = j.point;
    if (j.point >= 0) resolve(j);
  }
  order_.resize(n);
  for (std::size_t i = 0; i < n; ++i) order_[i] = static_cast<int64_t>(i);
  std::stable_sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) {
    return plan_.jobs[index(a)].cost > plan_.jobs[index(b)].cost;
  });
}

void Scheduler::resolve(const JobSpec& j) {
  const std::size_t i = index(j.index);
  id_[i] = job_id(plan_, j, point_[i]);
  if (const std::optional<double> validation = completed_(id_[i])) {
    state_[i] = JobState::done;
    ++already_done_;
    if (j.phase == Phase::select) selection_.push_back({point_[i], j.fold, *validation});
  }
}

int64_t Scheduler::next_ready(std::vector<std::string>* events) {
  for (int64_t j : order_) {
    const std::size_t i = index(j);
    if (state_[i] != JobState::pending) continue;
    const JobSpec& spec = plan_.jobs[i];
    bool ready = true;
    for (int64_t d : protocol_.dependencies(plan_.jobs, spec)) ready = ready && finished(d);
    if (!ready) continue;
    if (point_[i] < 0) {
      const int64_t winner = protocol_.fold_winner(selection_, spec.fold);
      if (winner < 0) {
        state_[i] = JobState::failed;
        events->push_back(fmt::format("job {} ({}, fold {}, repeat {}) cannot run: no selection job of the fold completed", j,
                                      phase_name(spec.phase), spec.fold, spec.repeat));
        continue;
      }
      point_[i] = winner;
      resolve(spec);
      events->push_back(fmt::format("fold {}: selected sweep point {} [{}] for retraining (repeat {})", spec.fold, winner,
                                    plan_.points[index(winner)].label, spec.repeat));
      if (state_[i] == JobState::done) continue;
    }
    return j;
  }
  return -1;
}

void Scheduler::start(int64_t job) {
  DP_CHECK(state_[index(job)] == JobState::pending && point_[index(job)] >= 0, "job {} is not ready to start", job);
  state_[index(job)] = JobState::running;
}

void Scheduler::complete(int64_t job, double validation_accuracy) {
  const std::size_t i = index(job);
  state_[i] = JobState::done;
  const JobSpec& spec = plan_.jobs[i];
  if (spec.phase == Phase::select) selection_.push_back({point_[i], spec.fold, validation_accuracy});
}

void Scheduler::fail(int64_t job) { state_[index(job)] = JobState::failed; }

void Scheduler::interrupt(int64_t job) { state_[index(job)] = JobState::pending; }

void Scheduler::defer(int64_t job) {
  DP_CHECK(state_[index(job)] == JobState::pending && point_[index(job)] >= 0, "job {} is not ready to defer", job);
  state_[index(job)] = JobState::elsewhere;
}

void Scheduler::undefer(int64_t job) {
  DP_CHECK(state_[index(job)] == JobState::elsewhere, "job {} is not deferred", job);
  state_[index(job)] = JobState::pending;
}

bool Scheduler::finished(int64_t job) const {
  const JobState s = state_[index(job)];
  return s == JobState::done || s == JobState::failed;
}

bool Scheduler::all_finished() const {
  for (std::size_t i = 0; i < state_.size(); ++i)
    if (!finished(static_cast<int64_t>(i))) return false;
  return true;
}

double Scheduler::remaining_cost() const {
  double c = 0;
  for (const JobSpec& j : plan_.jobs)
    if (!finished(j.index)) c += j.cost;
  return c;
}

}  // namespace diffpool
