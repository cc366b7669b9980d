#include "runner/task_farm.hpp"

#include <sys/resource.h>
#include <unistd.h>

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
#include "runner/progress.hpp"
#include "runner/run_command.hpp"
#include "runner/scheduler.hpp"
#include "runner/stop_signal.hpp"

namespace diffpool {

namespace fs = std::filesystem;

namespace {

// CPU time (user + system) of the calling thread so far.
double thread_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// How long an idle loop waits before it looks for messages again: 1 ms after something happened,
// doubling while nothing does, up to 50 ms. While work flows, messages are answered within a few
// milliseconds; a rank that waits for long-running jobs wakes 20 times a second (a fixed 2 ms nap
// cost rank 0 about 1% of a core over whole experiments).
class IdleBackoff {
 public:
  std::chrono::microseconds next() {
    const std::chrono::microseconds delay = delay_;
    delay_ = std::min(delay_ * 2, kLongest);
    return delay;
  }
  void reset() { delay_ = kShortest; }

 private:
  static constexpr std::chrono::microseconds kShortest{1000}, kLongest{50000};
  std::chrono::microseconds delay_ = kShortest;
};

// The scheduler's lookup: a completed result file of an earlier run (its best validation accuracy).
std::optional<double> completed_validation(const OutputLayout& layout, const std::string& id) {
  const fs::path file = layout.job_file(id);
  if (!fs::exists(file) || !hdf5::is_readable_hdf5(file)) return std::nullopt;
  const JobRecord r = read_job_record(file, false);
  if (parse_job_status(r.status) != JobStatus::completed) return std::nullopt;
  return r.best_validation.accuracy;
}

// The job that rank 0 runs in its own training thread (rank 0's main thread schedules and talks MPI).
class LocalWorker {
 public:
  explicit LocalWorker(const JobContext& base) : context_(base) {
    context_.on_epoch = [this](int epoch, int epochs) {
      epoch_.store(epoch);
      epochs_.store(epochs);
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
  std::atomic<int> epoch_{0}, epochs_{0};
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
  }
  return where;
}

}  // namespace

FarmEnd run_master(const ExperimentPlan& plan, const OutputLayout& layout, const MpiSession& mpi, JobContext context,
                   bool verbose) {
  const auto wall_start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  Scheduler scheduler(plan, [&layout](const std::string& id) { return completed_validation(layout, id); });
  const int64_t total = static_cast<int64_t>(plan.jobs.size());
  Progress progress(total, scheduler.already_done(), scheduler.remaining_cost(), plan.base.output.progress_seconds,
                    show_live_progress(plan.base.output.progress, isatty(STDOUT_FILENO) != 0, MpiSession::launched_by_mpi()));
  progress.line(fmt::format("experiment {} ({}): {} jobs ({} sweep points, folds {}, {} repeats, {} protocol); {} already done; "
                            "{} rank{}",
                            plan.base.name, plan.experiment_id, total, plan.points.size(), plan.folds.size(),
                            plan.base.evaluation.repeats, protocol_name(plan.base.evaluation.protocol), scheduler.already_done(),
                            mpi.size(), mpi.size() == 1 ? "" : "s"));

  std::atomic<bool> stopping{false};
  context.should_stop = [&stopping] { return stopping.load() || stop_requested(); };
  LocalWorker local(context);
  int64_t local_job = -1;
  std::vector<int> idle_workers;           // ranks waiting for a job
  std::map<int, int64_t> worker_job;       // rank -> running job
  std::set<int> shut_down;
  IdleBackoff idle;
  bool any_interrupted = false;

  auto record_outcome = [&](const JobSpec& j, const JobOutcome& o, int rank) {
    switch (o.status) {
      case JobOutcome::Status::completed:
        scheduler.complete(j.index, o.validation_accuracy);
        progress.finished(j.index, false);
        break;
      case JobOutcome::Status::failed:
        scheduler.fail(j.index);
        progress.finished(j.index, true);
        break;
      case JobOutcome::Status::interrupted:
        // Only a stop signal interrupts a job: whichever rank received it, the whole run stops.
        scheduler.interrupt(j.index);
        any_interrupted = true;
        progress.interrupted(j.index);
        if (!stopping) {
          stopping = true;
          for (const auto& [other, job] : worker_job) mpi.send(other, Tag::stop, MessageHeader{});
        }
        break;
    }
    progress.line(outcome_line(j, scheduler.point(j.index), o, rank));
  };

  for (;;) {
    bool activity = false;
    if (!stopping && stop_requested()) {
      stopping = true;
      progress.line(fmt::format("signal {} received: checkpointing the running jobs and stopping (exit code {})",
                                stop_signal_number(), kExitStopped));
      for (const auto& [rank, job] : worker_job) mpi.send(rank, Tag::stop, MessageHeader{});
    }
    // Messages from the workers.
    while (auto m = mpi.poll()) {
      // A request or a result wants an answer soon; an epoch's progress only updates the display.
      if (m->tag != Tag::progress) activity = true;
      switch (m->tag) {
        case Tag::request: idle_workers.push_back(m->source); break;
        case Tag::progress: progress.epoch(m->header.job, m->header.epoch, m->header.epochs); break;
        case Tag::done: {
          const JobSpec& j = plan.jobs[static_cast<std::size_t>(m->header.job)];
          JobOutcome o;
          o.status = static_cast<JobOutcome::Status>(m->header.status);
          o.job_id = scheduler.id(j.index);
          o.reason = m->text;
          o.validation_accuracy = m->header.validation_accuracy;
          o.test_accuracy = m->header.test_accuracy;
          o.seconds = m->header.seconds;
          worker_job.erase(m->source);
          record_outcome(j, o, m->source);
          break;
        }
        default: break;
      }
    }
    // The local job.
    if (auto r = local.take_result()) {
      activity = true;
      record_outcome(r->first, r->second, 0);
      local_job = -1;
    }
    if (local_job >= 0) progress.epoch(local_job, local.epoch(), local.epochs());

    // Hand out work: idle workers first, then rank 0's own slot (unless other ranks exist and it
    // would keep a job waiting for a worker that is free).
    std::vector<std::string> events;
    if (!stopping) {
      while (!idle_workers.empty()) {
        const int64_t j = scheduler.next_ready(&events);
        if (j < 0) break;
        const int rank = idle_workers.back();
        idle_workers.pop_back();
        const std::size_t i = static_cast<std::size_t>(j);
        scheduler.start(j);
        worker_job[rank] = j;
        MessageHeader h;
        h.job = j;
        h.point = scheduler.point(j);
        mpi.send(rank, Tag::assign, h);
        progress.started(j, plan.jobs[i].cost);
        if (verbose) progress.line(fmt::format("assign job {} (cost {:.4g}) to rank {}", j, plan.jobs[i].cost, rank));
        activity = true;
      }
      if (local_job < 0 && !local.busy()) {
        const int64_t j = scheduler.next_ready(&events);
        if (j >= 0) {
          const std::size_t i = static_cast<std::size_t>(j);
          scheduler.start(j);
          local_job = j;
          local.start(plan.jobs[i], scheduler.point(j));
          progress.started(j, plan.jobs[i].cost);
          if (verbose) progress.line(fmt::format("assign job {} (cost {:.4g}) to rank 0", j, plan.jobs[i].cost));
          activity = true;
        }
      }
    }
    for (const std::string& e : events) progress.line(e);

    const bool nothing_left = scheduler.all_finished() || (stopping && local_job < 0 && worker_job.empty());
    // Idle workers are released when no job is left for them (none pending, or stopping).
    if (stopping || scheduler.all_finished()) {
      for (int rank : idle_workers)
        if (!shut_down.count(rank)) {
          mpi.send(rank, Tag::shutdown, MessageHeader{});
          shut_down.insert(rank);
        }
      idle_workers.clear();
    }
    if (nothing_left && static_cast<int>(shut_down.size()) == mpi.size() - 1 && local_job < 0) break;
    progress.tick();
    // Rank 0's own job wakes it at once when it ends; messages of other ranks are looked for after
    // the backoff's delay.
    if (activity) idle.reset();
    else local.wait_for_result(idle.next());
  }
  progress.finish();
  // The scheduling thread's own CPU time (rank 0 trains in another thread): it sleeps while it
  // waits (IdleBackoff, and its own job wakes it), so this stays a small fraction of the wall time.
  const double cpu = thread_cpu_seconds() - cpu_start;
  progress.line(fmt::format("rank 0 scheduler thread: {:.3f} s CPU over {:.1f} s wall",
                            cpu, std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count()));
  return stopping || any_interrupted ? FarmEnd::stopped : FarmEnd::finished;
}

void run_worker(const ExperimentPlan& plan, const MpiSession& mpi, JobContext context) {
  bool stop_received = false;
  auto last_poll = std::chrono::steady_clock::now();
  context.should_stop = [&] {
    if (stop_requested() || stop_received) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_poll > std::chrono::milliseconds(50)) {
      last_poll = now;
      if (mpi.poll(0, Tag::stop)) stop_received = true;
    }
    return stop_received;
  };
  int64_t current = -1;
  context.on_epoch = [&](int epoch, int epochs) {
    MessageHeader h;
    h.job = current;
    h.epoch = epoch;
    h.epochs = epochs;
    mpi.send(0, Tag::progress, h);
  };
  for (;;) {
    mpi.send(0, Tag::request, MessageHeader{});
    IdleBackoff idle;
    std::optional<Message> m;
    while (!m) {
      m = mpi.poll(0, Tag::assign);
      if (!m) m = mpi.poll(0, Tag::shutdown);
      if (!m && mpi.poll(0, Tag::stop)) stop_received = true;  // a stop while idle: nothing to checkpoint
      if (!m) std::this_thread::sleep_for(idle.next());
    }
    if (m->tag == Tag::shutdown) return;
    current = m->header.job;
    const JobSpec& job = plan.jobs[static_cast<std::size_t>(current)];
    JobOutcome o = run_job(context, job, m->header.point);
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
