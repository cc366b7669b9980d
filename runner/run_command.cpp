#include "runner/run_command.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include "engine/backend/cuda_device.hpp"
#include "engine/core/error.hpp"
#include "results/hdf5.hpp"
#include "results/job_record.hpp"
#include "results/summary.hpp"
#include "runner/mpi_session.hpp"
#include "runner/progress.hpp"
#include "runner/summary_builder.hpp"

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

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }

void nap() { std::this_thread::sleep_for(std::chrono::milliseconds(2)); }

std::unique_ptr<Backend> make_rank_backend(const ExperimentConfig& config, int local_rank) {
  BackendOptions options = config.backend;
  if (options.kind != BackendKind::cpu) options.cuda_device = select_cuda_device_for_local_rank(local_rank);
  return make_backend(options);
}

// Rank 0 checks the output folder: a folder written by another experiment is an error, never a merge.
void prepare_output(const ExperimentPlan& plan, const OutputLayout& layout) {
  const fs::path id_file = layout.root / "experiment.id";
  if (fs::exists(id_file)) {
    std::ifstream in(id_file);
    std::string id, name;
    in >> id >> name;
    if (id != plan.experiment_id)
      throw InputError(fmt::format(
          "output folder '{}' holds results of another experiment ('{}', id {}), not of '{}' (id {}): the settings differ. "
          "Choose another output.dir, or delete the folder to start over",
          layout.root.string(), name, id, plan.base.name, plan.experiment_id));
  }
  layout.create();
  // Written atomically: runs of other folds of the experiment (evaluation.only_folds, e.g. the
  // tasks of a job array) may start at the same moment and read the id while it is written.
  write_text_file_atomically(id_file, fmt::format("{} {}\n", plan.experiment_id, plan.base.name));
  YAML::Emitter e;
  e << plan.base.document;
  write_text_file_atomically(layout.root / "experiment.yaml",
                             fmt::format("# the experiment as run (overrides applied)\n{}\n", e.c_str()));
}

// Fail before any work starts: every dataset loads and every sweep point builds a valid model.
void check_plan_inputs(const ExperimentPlan& plan, DatasetCache& datasets) {
  for (const SweepPoint& p : plan.points) {
    const GraphDataset& d = datasets.get(p.config.dataset);
    check_against_dataset(p.config, d);
    try {
      DiffPoolModel model(p.config.model, d.num_features, d.num_classes(), d.max_nodes());
    } catch (const InputError& e) {
      throw InputError(fmt::format("sweep point {} [{}]: {}", p.index, p.label, e.what()));
    }
  }
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
    }
  }
  JobContext context_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<std::pair<JobSpec, int64_t>> job_;
  std::optional<std::pair<JobSpec, JobOutcome>> result_;
  bool running_ = false, quit_ = false;
  std::atomic<int> epoch_{0}, epochs_{0};
  std::thread thread_;
};

enum class State { pending, running, done, failed };

struct Scheduler {
  const ExperimentPlan& plan;
  const OutputLayout& layout;
  const MpiSession& mpi;
  std::vector<State> state;
  std::vector<int64_t> point;       // resolved sweep point per job (-1: retrain before selection)
  std::vector<std::string> id;
  std::vector<SelectionResult> selection;  // finished selection jobs (nested)
  std::vector<int64_t> order;       // pending jobs, longest expected first
  int64_t already_done = 0;

  Scheduler(const ExperimentPlan& p, const OutputLayout& l, const MpiSession& m) : plan(p), layout(l), mpi(m) {
    const std::size_t n = plan.jobs.size();
    state.assign(n, State::pending);
    point.resize(n);
    id.resize(n);
    for (const JobSpec& j : plan.jobs) {
      point[static_cast<std::size_t>(j.index)] = j.point;
      if (j.point >= 0) resolve(j);
    }
    order.resize(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<int64_t>(i);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return plan.jobs[static_cast<std::size_t>(a)].cost > plan.jobs[static_cast<std::size_t>(b)].cost;
    });
  }

  // Fixes the job's id and marks it done when its result file exists (a finished job of an earlier run).
  void resolve(const JobSpec& j) {
    const std::size_t i = static_cast<std::size_t>(j.index);
    id[i] = job_id(plan, j, point[i]);
    const fs::path file = layout.job_file(id[i]);
    if (fs::exists(file) && hdf5::is_readable_hdf5(file)) {
      JobRecord r = read_job_record(file, false);
      if (r.status == "completed") {
        state[i] = State::done;
        ++already_done;
        if (j.phase == Phase::select) selection.push_back({r.point, r.fold, r.best_validation.accuracy});
      }
    }
  }

  bool finished(int64_t j) const {
    const State s = state[static_cast<std::size_t>(j)];
    return s == State::done || s == State::failed;
  }
  bool all_finished() const {
    for (std::size_t i = 0; i < state.size(); ++i)
      if (!finished(static_cast<int64_t>(i))) return false;
    return true;
  }
  bool any_running() const { return std::count(state.begin(), state.end(), State::running) > 0; }

  // The next job that can run now, or -1. Retrain jobs get their fold's winner here.
  int64_t next_ready(std::vector<std::string>* events) {
    for (int64_t j : order) {
      const std::size_t i = static_cast<std::size_t>(j);
      if (state[i] != State::pending) continue;
      const JobSpec& spec = plan.jobs[i];
      bool ready = true;
      for (int64_t d : plan.dependencies(spec)) ready = ready && finished(d);
      if (!ready) continue;
      if (point[i] < 0) {
        const int64_t winner = fold_winner(selection, spec.fold);
        if (winner < 0) {
          state[i] = State::failed;
          events->push_back(fmt::format("job {} (retrain, fold {}, repeat {}) cannot run: no selection job of the fold completed",
                                        j, spec.fold, spec.repeat));
          continue;
        }
        point[i] = winner;
        resolve(spec);
        events->push_back(fmt::format("fold {}: selected sweep point {} [{}] for retraining (repeat {})", spec.fold, winner,
                                      plan.points[static_cast<std::size_t>(winner)].label, spec.repeat));
        if (state[i] == State::done) continue;
      }
      return j;
    }
    return -1;
  }

  double remaining_cost() const {
    double c = 0;
    for (const JobSpec& j : plan.jobs)
      if (!finished(j.index)) c += j.cost;
    return c;
  }
};

std::string outcome_line(const ExperimentPlan& plan, const JobSpec& j, int64_t point, const JobOutcome& o, int rank) {
  const std::string where = fmt::format("job {} [{} fold {} repeat {} point {}] on rank {}", o.job_id, phase_name(j.phase), j.fold,
                                        j.repeat, point, rank);
  (void)plan;
  switch (o.status) {
    case JobOutcome::Status::completed:
      return fmt::format("{}: done in {:.1f}s, validation {:.2f}%{}", where, o.seconds, 100 * o.validation_accuracy,
                         j.phase == Phase::select ? "" : fmt::format(", test {:.2f}%", 100 * o.test_accuracy));
    case JobOutcome::Status::failed: return fmt::format("{}: FAILED: {}", where, o.reason);
    case JobOutcome::Status::interrupted: return fmt::format("{}: interrupted, checkpointed", where);
  }
  return where;
}

int run_master(const ExperimentPlan& plan, const OutputLayout& layout, const MpiSession& mpi, JobContext context,
               bool verbose) {
  const auto wall_start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  Scheduler scheduler(plan, layout, mpi);
  const int64_t total = static_cast<int64_t>(plan.jobs.size());
  Progress progress(total, scheduler.already_done, scheduler.remaining_cost(), plan.base.output.progress_seconds,
                    isatty(STDOUT_FILENO) != 0);
  progress.line(fmt::format("experiment {} ({}): {} jobs ({} sweep points, folds {}, {} repeats, {} protocol); {} already done; "
                            "{} rank{}",
                            plan.base.name, plan.experiment_id, total, plan.points.size(), plan.folds.size(),
                            plan.base.evaluation.repeats, protocol_name(plan.base.evaluation.protocol), scheduler.already_done,
                            mpi.size(), mpi.size() == 1 ? "" : "s"));

  std::atomic<bool> stopping{false};
  context.should_stop = [&stopping] { return stopping.load() || g_stop_signal.load() != 0; };
  LocalWorker local(context);
  int64_t local_job = -1;
  std::vector<int> idle_workers;           // ranks waiting for a job
  std::map<int, int64_t> worker_job;       // rank -> running job
  std::set<int> shut_down;
  bool any_interrupted = false;

  auto record_outcome = [&](const JobSpec& j, const JobOutcome& o, int rank) {
    const std::size_t i = static_cast<std::size_t>(j.index);
    switch (o.status) {
      case JobOutcome::Status::completed:
        scheduler.state[i] = State::done;
        if (j.phase == Phase::select) scheduler.selection.push_back({scheduler.point[i], j.fold, o.validation_accuracy});
        progress.finished(j.index, false);
        break;
      case JobOutcome::Status::failed:
        scheduler.state[i] = State::failed;
        progress.finished(j.index, true);
        break;
      case JobOutcome::Status::interrupted:
        // Only a stop signal interrupts a job: whichever rank received it, the whole run stops.
        scheduler.state[i] = State::pending;
        any_interrupted = true;
        progress.interrupted(j.index);
        if (!stopping) {
          stopping = true;
          for (const auto& [other, job] : worker_job) mpi.send(other, Tag::stop, MessageHeader{});
        }
        break;
    }
    progress.line(outcome_line(plan, j, scheduler.point[i], o, rank));
  };

  for (;;) {
    bool activity = false;
    if (!stopping && g_stop_signal.load() != 0) {
      stopping = true;
      progress.line(fmt::format("signal {} received: checkpointing the running jobs and stopping (exit code {})",
                                g_stop_signal.load(), kExitStopped));
      for (const auto& [rank, job] : worker_job) mpi.send(rank, Tag::stop, MessageHeader{});
    }
    // Messages from the workers.
    while (auto m = mpi.poll()) {
      activity = true;
      switch (m->tag) {
        case Tag::request: idle_workers.push_back(m->source); break;
        case Tag::progress: progress.epoch(m->header.job, m->header.epoch, m->header.epochs); break;
        case Tag::done: {
          const JobSpec& j = plan.jobs[static_cast<std::size_t>(m->header.job)];
          JobOutcome o;
          o.status = static_cast<JobOutcome::Status>(m->header.status);
          o.job_id = scheduler.id[static_cast<std::size_t>(j.index)];
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
        scheduler.state[i] = State::running;
        worker_job[rank] = j;
        MessageHeader h;
        h.job = j;
        h.point = scheduler.point[i];
        mpi.send(rank, Tag::assign, h);
        progress.started(j, plan.jobs[i].cost);
        if (verbose) progress.line(fmt::format("assign job {} (cost {:.4g}) to rank {}", j, plan.jobs[i].cost, rank));
        activity = true;
      }
      if (local_job < 0 && !local.busy()) {
        const int64_t j = scheduler.next_ready(&events);
        if (j >= 0) {
          const std::size_t i = static_cast<std::size_t>(j);
          scheduler.state[i] = State::running;
          local_job = j;
          local.start(plan.jobs[i], scheduler.point[i]);
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
    if (!activity) nap();
  }
  progress.finish();
  // The scheduling thread's own CPU time (rank 0 trains in another thread): it waits by sleeping
  // between polls, so this stays a small fraction of the wall time.
  const double cpu = thread_cpu_seconds() - cpu_start;
  progress.line(fmt::format("rank 0 scheduler thread: {:.2f} s CPU over {:.1f} s wall",
                            cpu, std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count()));
  if (stopping || any_interrupted) return kExitStopped;
  return -1;  // finished: the caller summarises
}

void run_worker(const ExperimentPlan& plan, const MpiSession& mpi, JobContext context) {
  bool stop_received = false;
  auto last_poll = std::chrono::steady_clock::now();
  context.should_stop = [&] {
    if (g_stop_signal.load() != 0 || stop_received) return true;
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
    std::optional<Message> m;
    while (!m) {
      m = mpi.poll(0, Tag::assign);
      if (!m) m = mpi.poll(0, Tag::shutdown);
      if (!m && mpi.poll(0, Tag::stop)) stop_received = true;  // a stop while idle: nothing to checkpoint
      if (!m) nap();
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

}  // namespace

void install_stop_handlers() {
  struct sigaction action{};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int s : {SIGTERM, SIGUSR1, SIGINT}) sigaction(s, &action, nullptr);
}

bool stop_requested() { return g_stop_signal.load() != 0; }

int run_experiment_command(int* argc, char*** argv, const RunCommandOptions& options) {
  install_stop_handlers();
  MpiSession mpi(argc, argv);
  const bool root = mpi.rank() == 0;
  auto report = [&](const std::exception& e, int code) {
    if (root) fmt::print(stderr, "error: {}\n", e.what());
    return code;
  };

  // Every rank expands the same plan; only rank 0 reports problems.
  std::optional<ExperimentPlan> plan;
  int failure = 0;
  try {
    plan = make_plan(load_experiment(options.config_path, options.overrides));
  } catch (const InputError& e) {
    failure = report(e, kExitInput);
  }
  if (mpi.any(failure != 0)) return failure ? failure : kExitInput;

  OutputLayout layout{fs::path(plan->base.output.dir)};
  DatasetCache datasets;
  try {
    if (root) {
      prepare_output(*plan, layout);
      if (!options.summary_only) check_plan_inputs(*plan, datasets);
    }
  } catch (const InputError& e) {
    failure = report(e, kExitInput);
  } catch (const std::exception& e) {
    failure = report(e, kExitInternal);
  }
  if (mpi.any(failure != 0)) return failure ? failure : kExitInput;

  std::unique_ptr<Backend> backend;
  try {
    backend = make_rank_backend(plan->base, mpi.local_rank());
  } catch (const std::exception& e) {
    failure = report(e, kExitInput);
  }
  if (mpi.any(failure != 0)) return failure ? failure : kExitInput;

  JobContext context;
  context.plan = &*plan;
  context.layout = layout;
  context.backend = backend.get();
  context.datasets = &datasets;
  context.rank = mpi.rank();
  context.host = host_name();

  int code = -1;
  if (!options.summary_only) {
    if (root) {
      code = run_master(*plan, layout, mpi, context, options.verbose);
    } else {
      run_worker(*plan, mpi, context);
      return stop_requested() ? kExitStopped : kExitCompleted;
    }
  }
  if (!root) return kExitCompleted;
  if (code == kExitStopped) {
    fmt::print("stopped: finished jobs are saved in {}; the running ones were checkpointed. Run the same command again to resume.\n",
               layout.root.string());
    return kExitStopped;
  }
  try {
    ExperimentSummary summary = build_summary(*plan, layout, mpi.size(), backend->name());
    write_summary(layout.root / "summary.h5", summary);
    write_summary_csv(layout.root / "summary.csv", summary);
    fmt::print("{}", format_summary(summary));
    fmt::print("results: {} (summary.h5, summary.csv, jobs/*.h5, logs/)\n", layout.root.string());
    return summary.jobs_failed > 0 || summary.jobs_completed < summary.jobs_total ? kExitJobsFailed : kExitCompleted;
  } catch (const std::exception& e) {
    return report(e, kExitInternal);
  }
}

int plan_command(const std::string& config_path, const std::vector<std::string>& overrides) {
  ExperimentPlan plan = make_plan(load_experiment(config_path, overrides));
  OutputLayout layout{fs::path(plan.base.output.dir)};
  fmt::print("experiment {} ({}): {} protocol, dataset {}, variant {}, {} sweep point{}, folds [{}], {} repeat{}: {} jobs\n",
             plan.base.name, plan.experiment_id, protocol_name(plan.base.evaluation.protocol), plan.base.dataset.name,
             variant_name(plan.base.model.variant), plan.points.size(), plan.points.size() == 1 ? "" : "s",
             fmt::join(plan.folds, ", "), plan.base.evaluation.repeats, plan.base.evaluation.repeats == 1 ? "" : "s",
             plan.jobs.size());
  for (const SweepPoint& p : plan.points) fmt::print("  point {}: {}\n", p.index, p.label.empty() ? "(no sweep)" : p.label);
  fmt::print("  {:>5}  {:<8} {:>5} {:>4} {:>6} {:>12}  {:<16}  {}\n", "job", "phase", "point", "fold", "repeat", "cost", "id", "status");
  for (const JobSpec& j : plan.jobs) {
    std::string id = "(after selection)", status = "pending";
    if (j.point >= 0) {
      id = job_id(plan, j, j.point);
      if (fs::exists(layout.job_file(id))) status = "done";
      else if (fs::exists(layout.checkpoint_file(id))) status = "checkpointed";
      else if (fs::exists(layout.failure_file(id))) status = "failed earlier";
    }
    fmt::print("  {:>5}  {:<8} {:>5} {:>4} {:>6} {:>12.4g}  {:<16}  {}\n", j.index, phase_name(j.phase),
               j.point >= 0 ? std::to_string(j.point) : "?", j.fold, j.repeat, j.cost, id, status);
  }
  return 0;
}

}  // namespace diffpool
