#include "runner/task_farm.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "engine/core/error.hpp"
#include "results/hdf5.hpp"
#include "results/job_record.hpp"
#include "runner/idle_wait.hpp"
#include "runner/job_claims.hpp"
#include "runner/progress.hpp"
#include "runner/run_command.hpp"
#include "runner/scheduler.hpp"
#include "runner/stop_signal.hpp"

namespace diffpool {

namespace fs = std::filesystem;

namespace {

// CPU time (user + system) of the calling thread so far, to the nanosecond (getrusage's thread
// times advance by scheduler ticks, 4 ms, too coarse for a thread that mostly sleeps).
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The heartbeat between rank 0 and the workers (backend.heartbeat_seconds): each side sends
// Tag::heartbeat when a quarter of the timeout has passed since its last one, and counts any message
// of the other side as a sign of life. A side silent longer than the timeout is lost: a cut network
// link drops packets without an error, so without this the run would wait for it forever.
class Heartbeat {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Heartbeat(int timeout_seconds) : timeout_(std::chrono::seconds(timeout_seconds)), interval_(timeout_ / 4) {}
  std::chrono::seconds timeout() const { return timeout_; }
  Clock::duration interval() const { return interval_; }
  // True (and the clock restarted) when our next heartbeat is due.
  bool send_due(Clock::time_point now) {
    if (now - last_sent_ < interval_) return false;
    last_sent_ = now;
    return true;
  }
  bool silent(Clock::time_point last_heard, Clock::time_point now) const { return now - last_heard > timeout_; }

 private:
  std::chrono::seconds timeout_;
  Clock::duration interval_;
  Clock::time_point last_sent_ = Clock::now();
};

double seconds_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// The scheduler's lookup: a completed result file of an earlier run (its best validation accuracy).
std::optional<double> completed_validation(const OutputLayout& layout, const std::string& id) {
  const std::optional<JobRecord> r = read_intact_job_record(layout.job_file(id));
  if (!r || parse_job_status(r->status) != JobStatus::completed) return std::nullopt;
  return r->best_validation.accuracy;
}

// The job that rank 0 runs in its own training thread (rank 0's main thread schedules and talks MPI).
class LocalWorker {
 public:
  explicit LocalWorker(const JobContext& base) : context_(base) {
    context_.on_epoch = [this](const EpochProgress& p) {
      resumed_epoch_.store(p.resumed_epoch);
      waiting_for_space_.store(p.waiting_for_space);
      epoch_.store(p.epoch);
      epochs_.store(p.epochs);
    };
    thread_ = std::thread([this] { loop(); });
  }
  ~LocalWorker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool busy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return job_.has_value() || result_.has_value();
  }
  void start(const JobSpec& job, int64_t point) {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = std::make_pair(job, point);
    epoch_.store(0);
    resumed_epoch_.store(0);
    waiting_for_space_.store(false);
    cv_.notify_all();
  }
  std::optional<std::pair<JobSpec, JobOutcome>> take_result() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!result_) return std::nullopt;
    auto r = std::move(result_);
    result_.reset();
    return r;
  }
  int epoch() const { return epoch_.load(); }
  int epochs() const { return epochs_.load(); }
  int resumed_epoch() const { return resumed_epoch_.load(); }
  bool waiting_for_space() const { return waiting_for_space_.load(); }
  // Sleeps until the running job has a result or `timeout` has passed.
  void wait_for_result(std::chrono::microseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    result_cv_.wait_for(lock, timeout, [this] { return result_.has_value(); });
  }

 private:
  void loop() {
    for (;;) {
      std::pair<JobSpec, int64_t> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return quit_ || (job_.has_value() && !running_); });
        if (quit_) return;
        job = *job_;
        running_ = true;
      }
      JobOutcome outcome = run_job(context_, job.first, job.second);
      std::lock_guard<std::mutex> lock(mutex_);
      result_ = std::make_pair(job.first, outcome);
      job_.reset();
      running_ = false;
      result_cv_.notify_all();
    }
  }
  JobContext context_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;         // a job to start, or quit
  std::condition_variable result_cv_;  // a job's result
  std::optional<std::pair<JobSpec, int64_t>> job_;
  std::optional<std::pair<JobSpec, JobOutcome>> result_;
  bool running_ = false, quit_ = false;
  std::atomic<int> epoch_{0}, epochs_{0}, resumed_epoch_{0};
  std::atomic<bool> waiting_for_space_{false};
  std::thread thread_;
};

std::string outcome_line(const JobSpec& j, int64_t point, const JobOutcome& o, int rank) {
  const std::string where = fmt::format("job {} [{} fold {} repeat {} point {}] on rank {}", o.job_id, phase_name(j.phase), j.fold,
                                        j.repeat, point, rank);
  switch (o.status) {
    case JobOutcome::Status::completed:
      return fmt::format("{}: done in {:.1f}s, validation {:.2f}%{}", where, o.seconds, 100 * o.validation_accuracy,
                         j.phase == Phase::select ? "" : fmt::format(", test {:.2f}%", 100 * o.test_accuracy));
    case JobOutcome::Status::failed: return fmt::format("{}: FAILED: {}", where, o.reason);
    case JobOutcome::Status::interrupted: return fmt::format("{}: interrupted, checkpointed", where);
    case JobOutcome::Status::storage_full: return fmt::format("{}: STOPPED, no room for its result: {}", where, o.reason);
  }
  return where;
}

// Rank 0's master loop. Each turn: notice a stop signal, take the workers' messages and rank 0's
// own result, hand out work, release workers no job is left for, then sleep until something may
// have happened (IdleWait: rank 0's own job wakes it at once; the workers' epoch reports say when
// their jobs can end).
class Master {
 public:
  Master(const ExperimentPlan& plan, const OutputLayout& layout, const MpiSession& mpi, JobContext context, bool verbose,
         std::vector<std::string> hosts)
      : plan_(plan),
        layout_(layout),
        mpi_(mpi),
        verbose_(verbose),
        hosts_(std::move(hosts)),
        heartbeat_(plan.base.backend.heartbeat_seconds),
        last_heard_(static_cast<std::size_t>(mpi.size()), std::chrono::steady_clock::now()),
        scheduler_(plan, [&layout](const std::string& id) { return completed_validation(layout, id); }),
        progress_(static_cast<int64_t>(plan.jobs.size()), scheduler_.already_done(), scheduler_.remaining_cost(),
                  plan.base.output.progress_seconds,
                  show_live_progress(plan.base.output.progress, isatty(STDOUT_FILENO) != 0, MpiSession::launched_by_mpi())),
        local_(with_stop(std::move(context))),
        idle_(longest_nap(heartbeat_, progress_)),
        claims_(layout.claims(), plan.base.output.claim_timeout_seconds) {
    progress_.line(fmt::format("experiment {} ({}): {} jobs ({} sweep points, folds {}, {} repeats, {} protocol); {} already done; "
                               "{} rank{}",
                               plan.base.name, plan.experiment_id, plan.jobs.size(), plan.points.size(), plan.folds.size(),
                               plan.base.evaluation.repeats, protocol_name(plan.base.evaluation.protocol),
                               scheduler_.already_done(), mpi.size(), mpi.size() == 1 ? "" : "s"));
  }

  FarmEnd run() {
    for (;;) {
      stop_if_signalled();
      bool activity = receive_messages();
      keep_in_touch();
      activity = collect_local_result() || activity;
      activity = check_deferred() || activity;
      activity = hand_out_work() || activity;
      claims_.refresh_if_due();
      release_idle_workers();
      if (all_ended() || lost_wait_over()) break;
      progress_.tick();
      if (activity) idle_.activity();
      else {
        local_.wait_for_result(nap());
        ++naps_;
      }
    }
    progress_.finish();
    // The scheduling thread's own CPU time (rank 0 trains in another thread): it sleeps while it
    // waits, so this stays a small fraction of the wall time.
    const double cpu = thread_cpu_seconds() - cpu_start_;
    progress_.line(fmt::format("rank 0 scheduler thread: {:.3f} s CPU over {:.1f} s wall, {} naps", cpu,
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count(), naps_));
    if (storage_full_) return FarmEnd::storage_full;
    return stopping_ || any_interrupted_ ? FarmEnd::stopped : FarmEnd::finished;
  }

  // The ids of the jobs this run completed, in the order they ended.
  const std::vector<std::string>& completed() const { return completed_; }

  // The ranks lost during the run (silent longer than the heartbeat timeout), in order.
  const std::set<int>& lost() const { return lost_; }

  // Gives back the claims of the jobs still running (before an abort, which skips destructors).
  void release_claims() { claims_.release_all(); }

 private:
  // The longest nap: heartbeats go out twice per heartbeat interval at least, the progress display
  // is refreshed when due, and nothing waits longer than 2 s.
  static std::chrono::microseconds longest_nap(const Heartbeat& heartbeat, const Progress& progress) {
    using std::chrono::microseconds;
    const double seconds = std::min({2.0, std::chrono::duration<double>(heartbeat.interval()).count() / 2,
                                     progress.refresh_seconds()});
    return microseconds(static_cast<int64_t>(seconds * 1e6));
  }

  // How long to sleep now: see IdleWait. A worker may speak any moment when the run is stopping,
  // when it has neither asked for work nor been given any, or when its job has not reported an
  // epoch yet; a worker waiting for a job that is not ready needs nothing until another job ends.
  std::chrono::microseconds nap() {
    const auto now = std::chrono::steady_clock::now();
    bool expect_soon = stopping_.load() || lost_deadline_.has_value();
    std::vector<JobEndForecast> forecasts;
    for (int rank = 1; rank < mpi_.size() && !expect_soon; ++rank) {
      if (shut_down_.count(rank) != 0) continue;
      if (auto running = worker_job_.find(rank); running != worker_job_.end()) {
        if (running->second.forecast) forecasts.push_back(*running->second.forecast);
        else expect_soon = true;
      } else if (std::find(idle_workers_.begin(), idle_workers_.end(), rank) == idle_workers_.end()) {
        expect_soon = true;
      }
    }
    return idle_.next(now, expect_soon, forecasts);
  }

  JobContext with_stop(JobContext context) {
    context.should_stop = [this] { return stopping_.load() || stop_requested(); };
    context.stop_reason = [this]() -> std::string {
      if (stop_requested()) return fmt::format("signal {}", stop_signal_number());
      const int lost = first_lost_.load();
      if (lost >= 0) return fmt::format("the loss of rank {} (silent for more than {} s)", lost, heartbeat_.timeout().count());
      return "the run stopping (another rank was stopped)";
    };
    return context;
  }

  // Heartbeats to every worker still in the farm, and the silent ones declared lost.
  void keep_in_touch() {
    if (mpi_.size() == 1) return;
    const auto now = std::chrono::steady_clock::now();
    const bool due = heartbeat_.send_due(now);
    for (int rank = 1; rank < mpi_.size(); ++rank) {
      if (shut_down_.count(rank) != 0) continue;
      if (heartbeat_.silent(last_heard_[static_cast<std::size_t>(rank)], now)) lose_worker(rank, now);
      else if (due) mpi_.send(rank, Tag::heartbeat, MessageHeader{});
    }
  }

  // A worker silent longer than the timeout: the others (and rank 0's own job) checkpoint and stop,
  // and the run ends with the requeue status without waiting for it (run_master).
  void lose_worker(int rank, std::chrono::steady_clock::time_point now) {
    lost_.insert(rank);
    shut_down_.insert(rank);  // nothing more is sent to it or expected from it
    idle_workers_.erase(std::remove(idle_workers_.begin(), idle_workers_.end(), rank), idle_workers_.end());
    std::string job = "no job";
    if (auto it = worker_job_.find(rank); it != worker_job_.end()) {
      const JobSpec& j = plan_.jobs[static_cast<std::size_t>(it->second.job)];
      job = fmt::format("job {} ({} [{} fold {} repeat {} point {}], rerun from its last checkpoint)", it->second.job,
                        scheduler_.id(j.index), phase_name(j.phase), j.fold, j.repeat, scheduler_.point(j.index));
      progress_.interrupted(j.index);
      worker_job_.erase(it);
    }
    progress_.line(fmt::format("rank {} on host {} lost: no message for {:.1f} s (backend.heartbeat_seconds {}); it ran {}. "
                               "Checkpointing the other running jobs and stopping (exit code {})",
                               rank, hosts_[static_cast<std::size_t>(rank)], seconds_between(last_heard_[static_cast<std::size_t>(rank)], now),
                               heartbeat_.timeout().count(), job, kExitStopped));
    if (!lost_deadline_) lost_deadline_ = now + heartbeat_.timeout();
    int none = -1;
    first_lost_.compare_exchange_strong(none, rank);
    if (!stopping_) {
      stopping_ = true;
      stop_workers();
    }
  }

  // After a rank is lost, the others get at most one more heartbeat timeout to checkpoint (a
  // silent one among them is lost in that time anyway); rank 0's own job is waited for as long.
  bool lost_wait_over() {
    if (!lost_deadline_ || std::chrono::steady_clock::now() < *lost_deadline_) return false;
    progress_.line(fmt::format("not every rank answered within {} s after the loss: stopping without them",
                               heartbeat_.timeout().count()));
    return true;
  }

  void stop_workers() {
    for (const auto& [rank, job] : worker_job_) mpi_.send(rank, Tag::stop, MessageHeader{});
  }

  void stop_if_signalled() {
    if (stopping_ || !stop_requested()) return;
    stopping_ = true;
    progress_.line(fmt::format("signal {} received: checkpointing the running jobs and stopping (exit code {})",
                               stop_signal_number(), kExitStopped));
    stop_workers();
  }

  // The workers' messages; true when one wants an answer soon (a request or a result; an epoch's
  // progress only updates the display).
  bool receive_messages() {
    bool activity = false;
    // A message read now was not there at the previous look: it was sent after that look began.
    const auto look = std::chrono::steady_clock::now();
    const auto sent_after = previous_look_;
    previous_look_ = look;
    while (auto m = mpi_.poll()) {
      last_heard_[static_cast<std::size_t>(m->source)] = std::chrono::steady_clock::now();
      if (lost_.count(m->source) != 0) continue;  // too late: it was given up
      if (m->tag != Tag::progress && m->tag != Tag::heartbeat) activity = true;
      switch (m->tag) {
        case Tag::request: idle_workers_.push_back(m->source); break;
        case Tag::progress: {
          progress_.epoch(m->header.job, m->header.epoch, m->header.epochs, m->header.resumed_epoch,
                          m->header.waiting_for_space != 0);
          auto running = worker_job_.find(m->source);
          if (running != worker_job_.end() && running->second.job == m->header.job) {
            JobEndForecast& f = running->second.forecast.emplace();
            f.not_before = sent_after;
            f.epochs_left = std::max(0, m->header.last_epoch - m->header.epoch);
            f.shortest_epoch_seconds = m->header.seconds;
          }
          break;
        }
        case Tag::done: {
          const JobSpec& j = plan_.jobs[static_cast<std::size_t>(m->header.job)];
          JobOutcome o;
          o.status = static_cast<JobOutcome::Status>(m->header.status);
          o.job_id = scheduler_.id(j.index);
          o.reason = m->text;
          o.validation_accuracy = m->header.validation_accuracy;
          o.test_accuracy = m->header.test_accuracy;
          o.seconds = m->header.seconds;
          worker_job_.erase(m->source);
          record_outcome(j, o, m->source);
          break;
        }
        default: break;
      }
    }
    return activity;
  }

  // Rank 0's own job: its result, or its epoch for the progress display.
  bool collect_local_result() {
    bool activity = false;
    if (auto r = local_.take_result()) {
      activity = true;
      record_outcome(r->first, r->second, 0);
      local_job_ = -1;
    }
    if (local_job_ >= 0)
      progress_.epoch(local_job_, local_.epoch(), local_.epochs(), local_.resumed_epoch(), local_.waiting_for_space());
    return activity;
  }

  void record_outcome(const JobSpec& j, const JobOutcome& o, int rank) {
    claims_.release(scheduler_.id(j.index));  // whatever the end: another run may take the job up now
    switch (o.status) {
      case JobOutcome::Status::completed:
        scheduler_.complete(j.index, o.validation_accuracy);
        completed_.push_back(o.job_id);
        progress_.finished(j.index, false);
        break;
      case JobOutcome::Status::failed:
        scheduler_.fail(j.index);
        progress_.finished(j.index, true);
        break;
      case JobOutcome::Status::storage_full:
      case JobOutcome::Status::interrupted:
        // A stop signal interrupts a job, and a full file system stops one: whichever rank it
        // happened on, the whole run stops (every other job would meet the same full disk), and
        // the job stays to run again.
        if (o.status == JobOutcome::Status::storage_full) storage_full_ = true;
        scheduler_.interrupt(j.index);
        any_interrupted_ = true;
        progress_.interrupted(j.index);
        if (!stopping_) {
          stopping_ = true;
          stop_workers();
        }
        break;
    }
    progress_.line(outcome_line(j, scheduler_.point(j.index), o, rank));
  }

  // Idle workers first, then rank 0's own slot (so no job waits for rank 0 while a worker is free).
  bool hand_out_work() {
    bool activity = false;
    std::vector<std::string> events;
    if (!stopping_) {
      while (!idle_workers_.empty()) {
        const int64_t j = next_job(&events);
        if (j < 0) break;
        const int rank = idle_workers_.back();
        idle_workers_.pop_back();
        scheduler_.start(j);
        worker_job_[rank] = WorkerJob{j, std::nullopt};
        MessageHeader h;
        h.job = j;
        h.point = scheduler_.point(j);
        mpi_.send(rank, Tag::assign, h);
        started(j, rank);
        activity = true;
      }
      if (local_job_ < 0 && !local_.busy()) {
        const int64_t j = next_job(&events);
        if (j >= 0) {
          scheduler_.start(j);
          local_job_ = j;
          local_.start(plan_.jobs[static_cast<std::size_t>(j)], scheduler_.point(j));
          started(j, 0);
          activity = true;
        }
      }
    }
    for (const std::string& e : events) progress_.line(e);
    return activity;
  }

  std::string describe(int64_t job) const {
    const JobSpec& spec = plan_.jobs[static_cast<std::size_t>(job)];
    return fmt::format("job {} [{} fold {} repeat {} point {}]", scheduler_.id(job), phase_name(spec.phase), spec.fold,
                       spec.repeat, scheduler_.point(job));
  }

  // The next ready job this run may train, its claim taken (runner/job_claims.hpp): a job another
  // live run into the same folder holds is left to that run (deferred), and one whose result
  // another run wrote since this run started is done.
  int64_t next_job(std::vector<std::string>* events) {
    for (;;) {
      const int64_t j = scheduler_.next_ready(events);
      if (j < 0) return -1;
      const std::string& id = scheduler_.id(j);
      const JobClaims::Attempt attempt = claims_.claim(id);
      if (!attempt.claimed) {
        scheduler_.defer(j);
        deferred_.insert(j);
        progress_.elsewhere(static_cast<int64_t>(deferred_.size()));
        events->push_back(fmt::format("{} is being trained by another run into this folder ({}; {}): this run leaves "
                                      "it to that run and takes its result",
                                      describe(j), attempt.holder ? attempt.holder->describe() : "unknown",
                                      claims_.file(id).string()));
        continue;
      }
      if (attempt.replaced)
        events->push_back(fmt::format("{}: the run that claimed it is gone ({}); taken over, from its checkpoint if it "
                                      "left one",
                                      describe(j), attempt.replaced->describe()));
      if (done_elsewhere(j, events)) continue;
      return j;
    }
  }

  // Whether another run wrote the job's completed result; if so it is done here too.
  bool done_elsewhere(int64_t j, std::vector<std::string>* events) {
    const std::string& id = scheduler_.id(j);
    const std::optional<double> validation = completed_validation(layout_, id);
    if (!validation) return false;
    claims_.release(id);
    scheduler_.complete(j, *validation);
    progress_.finished_elsewhere(plan_.jobs[static_cast<std::size_t>(j)].cost);
    events->push_back(fmt::format("{}: completed by another run into this folder; its result is taken", describe(j)));
    return true;
  }

  // The deferred jobs, every few seconds: done when their result file is there, pending again when
  // their claim was given back (the other run stopped, or failed the job) or went stale.
  bool check_deferred() {
    if (deferred_.empty()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now - deferred_checked_ < std::chrono::seconds(5)) return false;
    deferred_checked_ = now;
    // Whether a claim went stale asks for its file's time and the server's: once per refresh
    // interval; in between, one stat per job notices a claim given back.
    const bool liveness_due = now - deferred_liveness_checked_ >= claims_.refresh_interval();
    if (liveness_due) deferred_liveness_checked_ = now;
    bool activity = false;
    std::vector<std::string> events;
    for (auto it = deferred_.begin(); it != deferred_.end();) {
      const int64_t j = *it;
      const std::string& id = scheduler_.id(j);
      std::error_code error;
      const bool claim_there = std::filesystem::exists(claims_.file(id), error);
      if (claim_there && !liveness_due) {
        ++it;
        continue;
      }
      if (!claim_there || !claims_.holder(id)) {
        scheduler_.undefer(j);
        it = deferred_.erase(it);
        activity = true;
        done_elsewhere(j, &events);  // its result written: done; otherwise claimed at the next hand-out
        continue;
      }
      ++it;
    }
    progress_.elsewhere(static_cast<int64_t>(deferred_.size()));
    for (const std::string& e : events) progress_.line(e);
    return activity;
  }

  void started(int64_t job, int rank) {
    const double cost = plan_.jobs[static_cast<std::size_t>(job)].cost;
    progress_.started(job, cost);
    if (verbose_) progress_.line(fmt::format("assign job {} (cost {:.4g}) to rank {}", job, cost, rank));
  }

  // Idle workers are released when no job is left for them (none pending, or stopping).
  void release_idle_workers() {
    if (!stopping_ && !scheduler_.all_finished()) return;
    for (int rank : idle_workers_)
      if (shut_down_.insert(rank).second) mpi_.send(rank, Tag::shutdown, MessageHeader{});
    idle_workers_.clear();
  }

  // Every job ended (or, when stopping, every running one), and every worker released.
  bool all_ended() const {
    const bool nothing_left = scheduler_.all_finished() || (stopping_ && local_job_ < 0 && worker_job_.empty());
    return nothing_left && static_cast<int>(shut_down_.size()) == mpi_.size() - 1 && local_job_ < 0;
  }

  const ExperimentPlan& plan_;
  const OutputLayout& layout_;
  const MpiSession& mpi_;
  const bool verbose_;
  const std::vector<std::string> hosts_;  // host name of every rank
  Heartbeat heartbeat_;
  std::vector<std::chrono::steady_clock::time_point> last_heard_;  // per rank: its last message
  std::set<int> lost_;                                             // ranks silent past the timeout
  std::atomic<int> first_lost_{-1};  // the first lost rank (read by rank 0's training thread)
  std::optional<std::chrono::steady_clock::time_point> lost_deadline_;
  const std::chrono::steady_clock::time_point wall_start_ = std::chrono::steady_clock::now();
  const double cpu_start_ = thread_cpu_seconds();
  Scheduler scheduler_;
  Progress progress_;
  std::atomic<bool> stopping_{false};
  LocalWorker local_;                 // rank 0's training thread (uses stopping_)
  int64_t local_job_ = -1;
  std::vector<int> idle_workers_;     // ranks waiting for a job
  struct WorkerJob {
    int64_t job = -1;
    std::optional<JobEndForecast> forecast;  // when it can end, from its latest epoch report
  };
  std::map<int, WorkerJob> worker_job_;  // rank -> running job
  std::set<int> shut_down_;
  std::chrono::steady_clock::time_point previous_look_ = std::chrono::steady_clock::now();
  IdleWait idle_;
  int64_t naps_ = 0;  // sleeps between looks, printed with the scheduler's CPU time
  bool any_interrupted_ = false;
  std::vector<std::string> completed_;  // ids of the jobs completed in this run
  bool storage_full_ = false;  // a job's result found no room: the run stops with kExitStorageFull
  JobClaims claims_;            // the claims of the jobs this run trains (runner/job_claims.hpp)
  std::set<int64_t> deferred_;  // jobs another run holds (JobState::elsewhere)
  std::chrono::steady_clock::time_point deferred_checked_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point deferred_liveness_checked_ = std::chrono::steady_clock::now();
};

}  // namespace

FarmEnd run_master(const ExperimentPlan& plan, const OutputLayout& layout, const MpiSession& mpi, JobContext context,
                   bool verbose, std::vector<std::string>* completed) {
  std::vector<std::string> hosts = mpi.gather(context.host);  // with run_worker's
  Master master(plan, layout, mpi, std::move(context), verbose, std::move(hosts));
  const FarmEnd end = master.run();
  if (completed) *completed = master.completed();
  if (master.lost().empty()) return end;
  master.release_claims();
  // MPI_Finalize would wait for the lost ranks forever: end every rank now, with the requeue status.
  fmt::print("stopped: rank{} {} lost; finished jobs are saved in {}, the other running ones were checkpointed. Run the same "
             "command again (or requeue) to resume.\n",
             master.lost().size() == 1 ? "" : "s", fmt::join(master.lost(), ", "), layout.root.string());
  mpi.abort(kExitStopped);
}

void run_worker(const ExperimentPlan& plan, const MpiSession& mpi, JobContext context) {
  mpi.gather(context.host);  // with run_master's
  using Clock = std::chrono::steady_clock;
  Heartbeat heartbeat(plan.base.backend.heartbeat_seconds);
  Clock::time_point heard = Clock::now();  // rank 0's last message
  bool stop_received = false, master_lost = false;
  int64_t current = -1;
  // rank 0's heartbeats taken, ours sent when due; rank 0 silent past the timeout is lost.
  auto keep_in_touch = [&] {
    const auto now = Clock::now();
    while (mpi.poll(0, Tag::heartbeat)) heard = now;
    if (heartbeat.send_due(now)) mpi.send(0, Tag::heartbeat, MessageHeader{});
    if (heartbeat.silent(heard, now)) master_lost = true;
  };
  // No message from rank 0 for longer than the timeout: it cannot be told anything, and
  // MPI_Finalize would wait for it forever.
  auto leave_if_master_lost = [&] {
    if (!master_lost) return;
    fmt::print(stderr, "rank {} on host {}: no message from rank 0 for more than {} s (backend.heartbeat_seconds): {}; "
               "exiting with {}\n",
               mpi.rank(), context.host, heartbeat.timeout().count(),
               current >= 0 ? fmt::format("job {} checkpointed", current) : std::string("no job running"), kExitStopped);
    MpiSession::leave(kExitStopped);
  };
  auto last_poll = Clock::now();
  context.stop_reason = [&]() -> std::string {
    if (stop_requested()) return fmt::format("signal {}", stop_signal_number());
    if (master_lost) return fmt::format("the loss of rank 0 (silent for more than {} s)", heartbeat.timeout().count());
    return stop_received ? "rank 0 (the run is stopping)" : "";
  };
  context.should_stop = [&] {
    if (stop_requested() || stop_received || master_lost) return true;
    const auto now = Clock::now();
    if (now - last_poll > std::chrono::milliseconds(50)) {
      last_poll = now;
      if (mpi.poll(0, Tag::stop)) {
        stop_received = true;
        heard = now;
      }
      keep_in_touch();
    }
    return stop_received || master_lost;
  };
  // Epoch reports: a job's first epoch, then at most two a second (the display is not redrawn more
  // often, and short epochs would fill rank 0's queue). With the job's pace (once a quarter of a
  // second of epochs has been timed) they let rank 0 sleep until the job nears its end (IdleWait).
  auto last_progress = Clock::now() - std::chrono::seconds(1);
  context.on_epoch = [&](const EpochProgress& p) {
    const auto now = Clock::now();
    if (!p.waiting_for_space && now - last_progress < std::chrono::milliseconds(500)) return;
    last_progress = now;
    MessageHeader h;
    h.job = current;
    h.epoch = p.epoch;
    h.epochs = p.epochs;
    h.last_epoch = p.earliest_last_epoch;
    h.resumed_epoch = p.resumed_epoch;
    h.waiting_for_space = p.waiting_for_space ? 1 : 0;
    h.seconds = p.shortest_epoch_seconds;
    mpi.send(0, Tag::progress, h);
  };
  for (;;) {
    current = -1;
    mpi.send(0, Tag::request, MessageHeader{});
    IdleBackoff idle;
    std::optional<Message> m;
    while (!m) {
      m = mpi.poll(0, Tag::assign);
      if (!m) m = mpi.poll(0, Tag::shutdown);
      if (!m && mpi.poll(0, Tag::stop)) {
        stop_received = true;  // a stop while idle: nothing to checkpoint
        heard = Clock::now();
      }
      if (m) heard = Clock::now();
      keep_in_touch();
      leave_if_master_lost();
      if (!m) std::this_thread::sleep_for(idle.next());
    }
    if (m->tag == Tag::shutdown) return;
    current = m->header.job;
    const JobSpec& job = plan.jobs[static_cast<std::size_t>(current)];
    last_progress = Clock::now() - std::chrono::seconds(1);
    JobOutcome o = run_job(context, job, m->header.point);
    leave_if_master_lost();
    MessageHeader h;
    h.job = current;
    h.point = m->header.point;
    h.status = static_cast<int32_t>(o.status);
    h.validation_accuracy = o.validation_accuracy;
    h.test_accuracy = o.test_accuracy;
    h.seconds = o.seconds;
    mpi.send(0, Tag::done, h, o.reason);
  }
}

}  // namespace diffpool
