#include "runner/job_runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <new>
#include <optional>
#include <thread>

#include "engine/core/error.hpp"
#include "results/atomic_file.hpp"
#include "results/hdf5.hpp"
#include "results/job_record.hpp"
#include "runner/build_info.hpp"
#include "runner/checkpoint.hpp"
#include "runner/protocol/protocol.hpp"

namespace diffpool {

namespace fs = std::filesystem;

std::string iso_time_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

void OutputLayout::create() const {
  for (const fs::path& p : {root, jobs(), checkpoints(), logs(), failed(), claims()}) {
    std::error_code error;
    fs::create_directories(p, error);
    if (error) {
      throw InputError(fmt::format("output.dir: cannot create the folder '{}': {}. Choose an output.dir that can be "
                                   "created (--set output.dir=PATH)",
                                   p.string(), error.message()));
    }
  }
}

void write_experiment_files(const ExperimentPlan& plan, const OutputLayout& layout) {
  // Atomic: runs of other folds of the experiment (evaluation.only_folds, e.g. the tasks of a job
  // array) may start at the same moment and read the id while it is written.
  write_text_file_atomically(layout.root / "experiment.id", fmt::format("{} {}\n", plan.experiment_id, plan.base.name));
  YAML::Emitter e;
  e << plan.base.document;
  write_text_file_atomically(layout.root / "experiment.yaml",
                             fmt::format("# the experiment as run (overrides applied)\n{}\n", e.c_str()));
}

bool restore_output_layout(const ExperimentPlan& plan, const OutputLayout& layout) {
  std::error_code error;
  std::vector<fs::path> missing;
  // (claims/ is not looked for: folders of earlier versions have none, and the claims make their own.)
  for (const fs::path& p : {layout.root, layout.jobs(), layout.checkpoints(), layout.logs(), layout.failed(),
                            layout.root / "experiment.id", layout.root / "experiment.yaml"})
    if (!fs::exists(p, error)) missing.push_back(p);
  if (missing.empty()) return false;
  for (const fs::path& p : {layout.jobs(), layout.checkpoints(), layout.logs(), layout.failed(), layout.claims()})
    fs::create_directories(p, error);  // a folder that cannot be made shows in the write that needs it
  try {
    write_experiment_files(plan, layout);
  } catch (const std::exception&) {  // likewise: the job's own write names the problem
  }
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    const std::string root = escape_unprintable(layout.root.string());
    std::string what = fmt::format("the output folder '{}' was", root);
    if (missing.front() != layout.root) {
      std::vector<std::string> names;
      for (const fs::path& p : missing) names.push_back(p.filename().string());
      what = fmt::format("{} in the output folder '{}' {}", fmt::join(names, ", "), root, names.size() > 1 ? "were" : "was");
    }
    fmt::print(stderr,
               "warning: {} deleted while the experiment ran (a scratch file system's purge, or a removal by hand?); "
               "recreated, so that the results of the jobs still running are kept. Job files written before then are "
               "gone if they were deleted too: the summary counts those jobs as not done, and running the same command "
               "again runs them again\n",
               what);
  }
  return true;
}

void write_keeping_output_folder(const ExperimentPlan& plan, const OutputLayout& layout, const fs::path& folder,
                                 const std::function<void()>& write) {
  std::error_code error;
  if (!fs::is_directory(folder, error)) restore_output_layout(plan, layout);
  try {
    write();
  } catch (const StorageFullError&) {
    throw;
  } catch (const std::exception&) {
    // The folder may have gone during the write and been put back since by another rank or job
    // (restore_output_layout then finds nothing missing): the write gets its second try whenever
    // the folder is there now, not only when this call put it back.
    restore_output_layout(plan, layout);
    if (!fs::is_directory(folder, error)) throw;
    write();
  }
}

const GraphDataset& DatasetCache::get(const DatasetSettings& settings) {
  DatasetOptions options = settings.options;
  options.data_dir = resolve_data_dir(options.data_dir);
  const std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}", settings.name, options.data_dir,
                                      feature_mode_name(options.features), options.degree_cap, options.constant_dim,
                                      options.keep_self_loops, options.max_nodes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = loaded_.find(key);
  if (it == loaded_.end())
    it = loaded_.emplace(key, std::make_unique<GraphDataset>(load_tu_dataset(settings.name, options))).first;
  return *it->second;
}

std::optional<JobRecord> read_intact_job_record(const fs::path& path, StoredFile* state) {
  StoredFile found = StoredFile::missing;
  std::optional<JobRecord> record;
  std::error_code error;
  if (fs::exists(path, error)) {
    found = StoredFile::damaged;
    // The checksum read outside the library lock (other threads' HDF5 work goes on meanwhile).
    if (std::optional<hdf5::File> file = hdf5::File::open_if_readable(path)) {
      const std::scoped_lock lock(hdf5::library_mutex());
      try {
        record = read_job_record(*file, false);
        found = StoredFile::intact;
      } catch (const Error&) {  // opens, but an attribute or dataset of the record cannot be read
      }
      file.reset();  // closed under the lock
    }
  }
  if (state) *state = found;
  return record;
}

StoredFile job_file_state(const fs::path& path) {
  StoredFile state = StoredFile::missing;
  read_intact_job_record(path, &state);
  return state;
}

StoredFile checkpoint_state(const fs::path& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return StoredFile::missing;
  return hdf5::is_readable_hdf5(path) ? StoredFile::intact : StoredFile::damaged;
}

std::string damage_reason(const fs::path& path) {
  std::string why = hdf5::damage_of(path);
  return why.empty() ? std::string("it opens, but its job record cannot be read whole") : why;
}

namespace {

// A damaged file found at resume, or a write the file system had no room for: said on stderr (the
// run's log) and in the job's log.
void report_problem(const fs::path& log_path, const std::string& what) {
  fmt::print(stderr, "warning: {}\n", escape_unprintable(what));
  std::ofstream(log_path, std::ios::app) << what << " (" << iso_time_now() << ")\n";
}

void append_log(const fs::path& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
}

std::string epoch_line(const EpochMetrics& m, int epochs) {
  std::string line = fmt::format("epoch {}/{} loss {:.5f} cls {:.5f} lp {:.5f} ent {:.5f} train_acc {:.4f}", m.epoch, epochs,
                                 m.train.loss, m.train.classification_loss, m.train.link_loss, m.train.entropy_loss,
                                 m.train.accuracy);
  // Cluster usage per pooling level (" val_usage 0.412/0.287"): how many clusters the assignments use.
  auto usage = [](const char* label, const Metrics& x) {
    return x.cluster_usage.empty() ? std::string() : fmt::format(" {} {:.3f}", label, fmt::join(x.cluster_usage, "/"));
  };
  if (m.validation) {
    line += fmt::format(" val_loss {:.5f} val_acc {:.4f}", m.validation->loss, m.validation->accuracy);
    line += usage("val_usage", *m.validation);
  }
  if (m.test) {
    line += fmt::format(" test_loss {:.5f} test_acc {:.4f}", m.test->loss, m.test->accuracy);
    line += usage("test_usage", *m.test);
  }
  return line + fmt::format(" seconds {:.3f}", m.train_seconds + m.eval_seconds);
}

std::vector<int64_t> first_graphs(const std::vector<int64_t>& ids, int max_graphs) {
  if (max_graphs <= 0 || static_cast<std::size_t>(max_graphs) >= ids.size()) return ids;
  return std::vector<int64_t>(ids.begin(), ids.begin() + max_graphs);
}

// Writes the job's result; while the file system has no room for it, says so once (stderr and the
// job's log) and tries again every few seconds for output.storage_wait_seconds, so that a job of
// hours is not lost to a full disk or quota that someone frees meanwhile. Returns "" once written,
// else why not (the wait ran out, or the run is stopping).
std::string write_result_waiting_for_space(const JobContext& ctx, const std::string& id, const JobRecord& record,
                                           const fs::path& log_path, EpochProgress progress) {
  using Clock = std::chrono::steady_clock;
  const int wait_seconds = ctx.plan->base.output.storage_wait_seconds;
  const auto deadline = Clock::now() + std::chrono::seconds(wait_seconds);
  const auto retry_every = std::chrono::seconds(std::clamp(wait_seconds / 10, 1, 10));
  for (bool said = false;;) {
    try {
      write_keeping_output_folder(*ctx.plan, ctx.layout, ctx.layout.jobs(), [&] { write_job_record(ctx.layout.job_file(id), record); });
      if (said) append_log(log_path, fmt::format("result written after waiting for space ({})", iso_time_now()));
      return {};
    } catch (const StorageFullError& e) {
      if (Clock::now() >= deadline) return e.what();
      if (!std::exchange(said, true)) {
        report_problem(log_path, fmt::format("job {}: {}; waiting up to {} s for space (output.storage_wait_seconds), "
                                             "trying again every {} s",
                                             id, e.what(), wait_seconds, retry_every.count()));
        progress.waiting_for_space = true;  // for the progress line
        if (ctx.on_epoch) ctx.on_epoch(progress);
      }
      const auto retry_at = std::min(deadline, Clock::now() + retry_every);
      while (Clock::now() < retry_at) {
        if (ctx.should_stop && ctx.should_stop()) return std::string(e.what()) + " (the run is stopping)";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
}

}  // namespace

JobOutcome run_job(const JobContext& ctx, const JobSpec& job, int64_t point) {
  const ExperimentPlan& plan = *ctx.plan;
  const SweepPoint& sp = plan.points.at(static_cast<std::size_t>(point));
  const ExperimentConfig& config = sp.config;
  JobOutcome outcome;
  outcome.job_id = job_id(plan, job, point);
  const std::string& id = outcome.job_id;
  const auto start = std::chrono::steady_clock::now();
  const fs::path log_path = ctx.layout.log_file(id);

  JobRecord record;
  record.job_id = id;
  record.experiment_id = plan.experiment_id;
  record.experiment_name = config.name;
  record.protocol = protocol_name(config.evaluation.protocol);
  record.phase = phase_name(job.phase);
  record.point = point;
  record.point_label = sp.label;
  record.fold = job.fold;
  record.repeat = job.repeat;
  record.seed = job_seed(plan, job, point);
  record.dataset = config.dataset.name;
  record.variant = variant_name(config.model.variant);
  record.settings = config.settings_text();  // shortest numbers; the job id hashes canonical_settings()
  {
    YAML::Emitter e;
    e << point_document(plan, point);
    record.config_yaml = e.c_str();
  }
  record.host = ctx.host;
  record.rank = ctx.rank;
  record.backend = ctx.backend->description();
  record.version = build_version();
  record.git_revision = build_git_revision();
  record.started_at = iso_time_now();

  try {
    const GraphDataset& dataset = ctx.datasets->get(config.dataset);
    record.dataset_digest = dataset.digest;
    Split split = job_split(plan, job, dataset.labels);
    record.train = split.train;
    record.validation = split.validation;
    record.test = split.test;

    const JobTrainingSettings how = protocol_module(config.evaluation.protocol).training(job.phase);
    TrainConfig training = config.training;
    training.seed = record.seed;
    training.restore_best = how.restore_best;
    training.evaluate_test_every_epoch = how.evaluate_test_every_epoch;
    Split train_split = split;
    if (!how.trainer_sees_test) train_split.test.clear();
    Trainer trainer(*ctx.backend, dataset, config.model, training, train_split);

    if (job_file_state(ctx.layout.job_file(id)) == StoredFile::damaged) {
      const std::string why = damage_reason(ctx.layout.job_file(id));
      report_problem(log_path, fmt::format("job {}: its result file {} is damaged ({}); running the job again, which "
                                           "replaces it",
                                           id, ctx.layout.job_file(id).string(), why));
    }
    const fs::path checkpoint_path = ctx.layout.checkpoint_file(id);
    std::optional<Checkpoint> checkpoint;
    const auto damaged_checkpoint = [&](const std::string& why) {
      report_problem(log_path, fmt::format("job {}: its checkpoint {} is damaged ({}); the job restarts from epoch 1",
                                           id, checkpoint_path.string(), why));
    };
    if (checkpoint_state(checkpoint_path) == StoredFile::damaged) {
      damaged_checkpoint(damage_reason(checkpoint_path));
    } else {
      try {
        checkpoint = read_checkpoint(checkpoint_path, id);
      } catch (const Error& e) {
        damaged_checkpoint(e.what());
      }
    }

    if (checkpoint && !checkpoint->dataset_digest.empty() && checkpoint->dataset_digest != dataset.digest)
      throw InputError(fmt::format(
          "its checkpoint {} was trained on {} with dataset digest {}, and {} as rank {} loaded it from {} has digest {}: "
          "the data changed, or this rank reads another copy (DIFFPOOL_DATA, dataset.data_dir); the job is not resumed "
          "on other data",
          checkpoint_path.string(), record.dataset, checkpoint->dataset_digest, record.dataset, ctx.rank,
          dataset.source_dir, dataset.digest));
    double previous_seconds = 0;
    if (checkpoint) {
      trainer.load_state(checkpoint->state);
      record.epochs = checkpoint->epochs;
      previous_seconds = checkpoint->wall_seconds;
      append_log(log_path, fmt::format("resumed from the checkpoint of epoch {} ({})", checkpoint->state.epoch, iso_time_now()));
    } else {
      append_log(log_path, fmt::format("job {} ({} protocol, phase {}, point {} [{}], fold {}, repeat {}, seed {}) on {} rank {}: {} train, "
                                       "{} validation, {} test graphs ({})",
                                       id, record.protocol, record.phase, point, sp.label, job.fold, job.repeat, record.seed,
                                       ctx.host, ctx.rank, split.train.size(), split.validation.size(), split.test.size(),
                                       iso_time_now()));
    }

    // A checkpoint the file system has no room for is skipped, not a failure of the job: training
    // goes on (the previous checkpoint, if any, stays whole), said once in the job's log and on
    // stderr. Returns whether it was written.
    bool checkpoint_space_said = false;
    auto write_boundary_checkpoint = [&](const TrainerState& state) {
      Checkpoint c;
      c.job_id = id;
      c.state = state;
      c.epochs = record.epochs;
      c.wall_seconds = previous_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      c.dataset_digest = dataset.digest;
      try {
        write_keeping_output_folder(*ctx.plan, ctx.layout, ctx.layout.checkpoints(),
                                    [&] { write_checkpoint(ctx.layout.checkpoint_file(id), c); });
        return true;
      } catch (const StorageFullError& e) {
        if (!std::exchange(checkpoint_space_said, true))
          report_problem(log_path, fmt::format("job {}: checkpoint of epoch {} not written: {}; training goes on{}", id,
                                               state.epoch, e.what(),
                                               fs::exists(checkpoint_path) ? ", the previous checkpoint stays" : ""));
        return false;
      }
    };
    const auto checkpointed = [](bool written, int epoch) {
      return written ? fmt::format("checkpointed the state after epoch {}", epoch)
                     : std::string("no room for a checkpoint: the rerun resumes from the last one written");
    };

    const auto stopped_by = [&] {
      const std::string why = ctx.stop_reason ? ctx.stop_reason() : std::string();
      return why.empty() ? std::string("a signal") : why;
    };
    const int every = config.output.checkpoint_every;
    EpochProgress progress;
    progress.epochs = training.epochs;
    progress.resumed_epoch = checkpoint ? checkpoint->state.epoch : 0;
    // The pace reported with each epoch: the fastest seconds per epoch over stretches of at least a
    // quarter of a second (single epochs are noisy, and the first ones can be slower than the rest);
    // 0, unknown, before the first stretch has passed.
    auto stretch_start = std::chrono::steady_clock::now();
    auto layout_checked = stretch_start;
    int stretch_epochs = 0;
    while (!trainer.finished()) {
      if (ctx.should_stop && ctx.should_stop()) {
        const bool written = write_boundary_checkpoint(trainer.state());
        outcome.status = JobOutcome::Status::interrupted;
        append_log(log_path, fmt::format("stopped by {} after epoch {}; {} ({})", stopped_by(), trainer.epoch(),
                                         checkpointed(written, trainer.epoch()), iso_time_now()));
        return outcome;
      }
      // A stop in the middle of an epoch keeps the state of its start (the parameters are then
      // mid-epoch and cannot be saved): the rerun repeats that epoch exactly.
      TrainerState boundary = trainer.state();
      try {
        EpochMetrics m = trainer.run_epoch(ctx.should_stop);
        record.epochs.push_back(m);
        // A purge under a long run is noticed within a minute, not at the next write (a few stat
        // calls: on a parallel file system each asks its metadata server, so not every epoch).
        if (const auto now = std::chrono::steady_clock::now(); now - layout_checked >= std::chrono::seconds(60)) {
          restore_output_layout(plan, ctx.layout);
          layout_checked = now;
        }
        append_log(log_path, epoch_line(m, training.epochs));
      } catch (const Interrupted&) {
        record.epochs.resize(static_cast<std::size_t>(boundary.epoch));
        const bool written = write_boundary_checkpoint(boundary);
        outcome.status = JobOutcome::Status::interrupted;
        append_log(log_path, fmt::format("stopped by {} in epoch {}; {} ({})", stopped_by(), boundary.epoch + 1,
                                         checkpointed(written, boundary.epoch), iso_time_now()));
        return outcome;
      }
      if (every > 0 && trainer.epoch() % every == 0 && !trainer.finished()) write_boundary_checkpoint(trainer.state());
      const auto epoch_end = std::chrono::steady_clock::now();
      ++stretch_epochs;
      const double stretch = std::chrono::duration<double>(epoch_end - stretch_start).count();
      if (stretch >= 0.25) {
        const double pace = stretch / stretch_epochs;
        progress.shortest_epoch_seconds = progress.shortest_epoch_seconds > 0 ? std::min(progress.shortest_epoch_seconds, pace) : pace;
        stretch_start = epoch_end;
        stretch_epochs = 0;
      }
      progress.epoch = trainer.epoch();
      progress.earliest_last_epoch = trainer.earliest_last_epoch();
      if (ctx.on_epoch) ctx.on_epoch(progress);
    }

    // Outcome: the best validation epoch, then the final model on the test split.
    record.best_epoch = trainer.best_epoch();
    if (record.best_epoch > 0) record.best_validation = *record.epochs[static_cast<std::size_t>(record.best_epoch - 1)].validation;
    trainer.restore_best();
    const auto save = config.output.save_outputs;
    std::vector<int64_t> output_ids;
    if (save == OutputSettings::Save::all) {
      output_ids.resize(static_cast<std::size_t>(dataset.num_graphs()));
      for (std::size_t i = 0; i < output_ids.size(); ++i) output_ids[i] = static_cast<int64_t>(i);
      record.outputs_split = "all";
    } else if (save == OutputSettings::Save::evaluation && job.phase != Phase::select) {
      output_ids = split.test;
      record.outputs_split = "test";
    }
    output_ids = first_graphs(output_ids, config.output.max_graphs);
    if (!split.test.empty()) {
      EvaluationResult test = trainer.evaluate(split.test, save == OutputSettings::Save::evaluation && output_ids == split.test);
      record.has_test = true;
      record.test_metrics = test.metrics;
      // Every test graph's label and prediction, whatever output.max_graphs says: the model
      // measured here is the best epoch's where the protocol restores it, else the last epoch's.
      record.predictions.graphs = split.test;
      for (const int64_t g : split.test) record.predictions.labels.push_back(dataset.labels[static_cast<std::size_t>(g)]);
      record.predictions.predictions = std::move(test.predictions);
      record.predictions.epoch = training.restore_best && trainer.best_epoch() > 0 ? trainer.best_epoch() : trainer.epoch();
      if (!test.outputs.empty()) record.outputs = std::move(test.outputs);
    }
    if (!output_ids.empty() && record.outputs.empty()) record.outputs = trainer.evaluate(output_ids, true).outputs;
    if (record.outputs.empty()) record.outputs_split.clear();
    for (const GraphOutputs& g : record.outputs) record.output_edges.push_back(graph_edges(dataset, g.graph));

    record.wall_seconds = previous_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    record.finished_at = iso_time_now();
    if (const std::string why = write_result_waiting_for_space(ctx, id, record, log_path, progress); !why.empty()) {
      outcome.status = JobOutcome::Status::storage_full;
      outcome.reason = why;
      append_log(log_path, fmt::format("stopped: its result could not be written: {}; the rerun resumes from its last "
                                       "checkpoint ({})",
                                       why, iso_time_now()));
      return outcome;
    }
    std::error_code ignore;
    fs::remove(ctx.layout.checkpoint_file(id), ignore);
    fs::remove(ctx.layout.failure_file(id), ignore);
    outcome.validation_accuracy = record.best_validation.accuracy;
    outcome.test_accuracy = record.test_metrics.accuracy;
    outcome.seconds = record.wall_seconds;
    append_log(log_path, fmt::format("completed: best epoch {}, validation accuracy {:.4f}, test accuracy {} ({})", record.best_epoch,
                                     record.best_validation.accuracy,
                                     record.has_test ? fmt::format("{:.4f}", record.test_metrics.accuracy) : "not measured",
                                     iso_time_now()));
    return outcome;
  } catch (const StorageFullError& e) {  // a write other than the result's and the checkpoints'
    outcome.status = JobOutcome::Status::storage_full;
    outcome.reason = e.what();
    append_log(log_path, fmt::format("stopped: {} ({})", outcome.reason, iso_time_now()));
    return outcome;
  } catch (const std::bad_alloc&) {
    outcome.reason = "out of memory";
  } catch (const NumericalError& e) {
    outcome.reason = fmt::format("numerical failure: {}", e.what());
  } catch (const std::exception& e) {
    outcome.reason = e.what();
  }
  outcome.status = JobOutcome::Status::failed;
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  try {
    restore_output_layout(plan, ctx.layout);
    append_log(log_path, fmt::format("failed: {} ({})", outcome.reason, iso_time_now()));
    std::ofstream out(ctx.layout.failure_file(id));
    out << fmt::format("job {}\nphase {}\npoint {} {}\nfold {}\nrepeat {}\nhost {} rank {}\ntime {}\nreason {}\n", id,
                       phase_name(job.phase), point, sp.label, job.fold, job.repeat, ctx.host, ctx.rank, iso_time_now(),
                       outcome.reason);
  } catch (...) {
  }
  return outcome;
}

}  // namespace diffpool
