#include "runner/run_command.hpp"

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "engine/backend/cuda_device.hpp"
#include "engine/core/error.hpp"
#include "results/atomic_file.hpp"
#include "results/checksum_block.hpp"
#include "results/summary.hpp"
#include "runner/checkpoint.hpp"
#include "runner/job_claims.hpp"
#include "runner/job_runner.hpp"
#include "runner/mpi_session.hpp"
#include "runner/plan_cost.hpp"
#include "runner/stop_signal.hpp"
#include "runner/summary_builder.hpp"
#include "runner/task_farm.hpp"

namespace diffpool {

namespace fs = std::filesystem;

namespace {

std::unique_ptr<Backend> make_rank_backend(const ExperimentConfig& config, int local_rank) {
  BackendOptions options = config.backend;
  if (options.kind != BackendKind::cpu) options.cuda_device = select_cuda_device_for_local_rank(local_rank);
  return make_backend(options);
}

// Rank 0 checks the output folder: a folder written by another experiment is an error, never a merge.
void prepare_output(const ExperimentPlan& plan, const OutputLayout& layout, bool create_layout = true) {
  const fs::path id_file = layout.root / "experiment.id";
  std::error_code unreachable;  // a path that cannot exist (too long, below a file): create() names it
  if (fs::exists(id_file, unreachable)) {
    std::ifstream in(id_file);
    std::string id, name;
    in >> id >> name;
    if (id != plan.experiment_id)
      throw InputError(fmt::format(
          "output folder '{}' holds results of another experiment ('{}', id {}), not of '{}' (id {}): the settings differ. "
          "Choose another output.dir, or delete the folder to start over",
          layout.root.string(), name, id, plan.base.name, plan.experiment_id));
  }
  if (create_layout) layout.create();
  else fs::create_directories(layout.root);
  write_experiment_files(plan, layout);
}

// Fail before any work starts: every dataset loads and every sweep point builds a valid model.
void check_plan_inputs(const ExperimentPlan& plan, DatasetCache& datasets) {
  for (const SweepPoint& p : plan.points) {
    const GraphDataset& d = datasets.get(p.config.dataset);
    check_against_dataset(plan.base, d);  // evaluation.folds is never swept; the base has its place
    try {
      DiffPoolModel model(p.config.model, d.num_features, d.num_classes(), d.max_nodes());
    } catch (const InputError& e) {
      throw InputError(fmt::format("sweep point {} [{}]: {}", p.index, p.label, e.what()));
    }
  }
}

// The dataset digests of the experiment's sweep points, and how to name them in messages.
struct LoadedData {
  std::set<std::string> digests;
  std::string described;  // "MUTAG from '/data/MUTAG' (digest ...)", ...
};

LoadedData loaded_data(const ExperimentPlan& plan, DatasetCache& datasets) {
  LoadedData loaded;
  for (const SweepPoint& p : plan.points) {
    const GraphDataset& d = datasets.get(p.config.dataset);
    if (loaded.digests.insert(d.digest).second)
      loaded.described += fmt::format("{}{} from '{}' (digest {})", loaded.described.empty() ? "" : ", ", d.name,
                                      d.source_dir, d.digest);
  }
  return loaded;
}

// A job file or checkpoint (`file`, in the output folder) whose recorded dataset digest none of the
// sweep points' datasets has: results of other data, an input error, never a mix. Files that
// record no digest (written before digests) are accepted.
void check_file_data(const OutputLayout& layout, const fs::path& file, const LoadedData& loaded) {
  const std::string recorded = recorded_dataset_digest(file);
  if (recorded.empty() || loaded.digests.count(recorded) > 0) return;
  throw InputError(fmt::format(
      "output folder '{}' holds results computed on other data: '{}' records dataset digest {}, and this run loads "
      "{}. The dataset's files changed since, or DIFFPOOL_DATA (dataset.data_dir) points at another copy. Run with "
      "the data the folder's results came from, or choose another output.dir (--set output.dir=PATH)",
      escape_unprintable(layout.root.string()), escape_unprintable(file.lexically_relative(layout.root).string()),
      recorded, loaded.described));
}

// Before any work: every job file and checkpoint already in the folder (the dataset's files may
// have changed since they were written, or DIFFPOOL_DATA may point at another copy).
void check_recorded_data(const ExperimentPlan& plan, const OutputLayout& layout, DatasetCache& datasets) {
  const LoadedData loaded = loaded_data(plan, datasets);
  for (const fs::path& folder : {layout.jobs(), layout.checkpoints()}) {
    std::error_code error;
    for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error))
      if (it->path().extension() == ".h5") check_file_data(layout, it->path(), loaded);
  }
}

// A job's claim (runner/job_claims.hpp) as `plan` and `--summary-only` see it, read only:
// running while a run holds it; stale when not refreshed within the timeout (by this host's clock,
// as they write nothing to read the file server's). `line` names the run that holds it.
struct ClaimView {
  bool running = false;
  std::string line;
};

std::optional<ClaimView> claim_view(const OutputLayout& layout, const std::string& id, int timeout_seconds) {
  const fs::path file = layout.claims() / id;
  std::error_code error;
  const auto modified = fs::last_write_time(file, error);
  if (error) return std::nullopt;
  const double idle = std::chrono::duration<double>(fs::file_time_type::clock::now() - modified).count();
  const std::optional<ClaimHolder> holder = JobClaims::read(file);
  const std::string who = holder ? fmt::format("host {}, process {}, claimed at {}", holder->host, holder->pid, holder->claimed_at)
                                 : std::string("a claim being written, or not a claim");
  if (idle <= timeout_seconds)
    return ClaimView{true, fmt::format("job {} is being trained by a run ({}; refreshed {:.0f} s ago): {}", id, who,
                                       std::max(0.0, idle), file.string())};
  return ClaimView{false, fmt::format("job {} has a stale claim ({}; not refreshed for {:.0f} s, more than "
                                      "output.claim_timeout_seconds {}): the next run takes it over: {}",
                                      id, who, idle, timeout_seconds, file.string())};
}

}  // namespace

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
      if (!options.summary_only) {
        check_plan_inputs(*plan, datasets);
        check_recorded_data(*plan, layout, datasets);
        fmt::print("{}", format_plan_work(estimate_plan_work(*plan, datasets, layout), *plan, layout));
      }
    }
  } catch (const InputError& e) {
    failure = report(e, kExitInput);
  } catch (const StorageFullError& e) {  // experiment.yaml or experiment.id
    failure = report(e, kExitStorageFull);
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
  if (root && !options.summary_only && backend->device() == Device::cpu)
    if (const std::string advice = blas_kernel_advice(); !advice.empty()) fmt::print("note: {}\n", advice);

  JobContext context;
  context.plan = &*plan;
  context.layout = layout;
  context.backend = backend.get();
  context.datasets = &datasets;
  context.rank = mpi.rank();
  context.host = host_name();

  FarmEnd end = FarmEnd::finished;
  std::vector<std::string> completed;  // by this run
  if (!options.summary_only) {
    if (root) {
      end = run_master(*plan, layout, mpi, context, options.verbose, &completed);
    } else {
      run_worker(*plan, mpi, context);
      return stop_requested() ? kExitStopped : kExitCompleted;
    }
  }
  if (!root) return kExitCompleted;
  if (end == FarmEnd::storage_full) {
    fmt::print("stopped: the file system of {} has no room for results (full, or over its quota); finished jobs are "
               "saved and the running ones checkpointed where there was room. Free space, then run the same command "
               "again to resume.\n",
               layout.root.string());
    return kExitStorageFull;
  }
  if (end == FarmEnd::stopped) {
    fmt::print("stopped: finished jobs are saved in {}; the running ones were checkpointed. Run the same command again to resume.\n",
               layout.root.string());
    return kExitStopped;
  }
  try {
    restore_output_layout(*plan, layout);
    // The job files this run wrote (the others were checked before it started): a worker that
    // loaded other data than rank 0 (another DIFFPOOL_DATA on its node) wrote files of that data,
    // and no summary mixes them; a file deleted since (a scratch purge) is named below.
    std::vector<std::string> gone;
    const LoadedData loaded = completed.empty() ? LoadedData{} : loaded_data(*plan, datasets);
    for (const std::string& id : completed) {
      if (job_file_state(layout.job_file(id)) != StoredFile::intact) gone.push_back(id);
      else check_file_data(layout, layout.job_file(id), loaded);
    }
    ExperimentSummary summary = build_summary(*plan, layout, mpi.size(), backend->description());
    write_summary(layout.root / "summary.h5", summary);
    write_summary_csv(layout.root / "summary.csv", summary);
    fmt::print("{}", format_summary(summary));
    if (options.summary_only && summary.jobs_completed < summary.jobs_total) {
      // The jobs not done that a run is training now (a --summary-only run started before the
      // last fold finished, or beside a second run into the folder).
      int64_t running = 0;
      for (const JobSpec& j : plan->jobs) {
        if (j.point < 0) continue;
        const std::string id = job_id(*plan, j, j.point);
        if (job_file_state(layout.job_file(id)) == StoredFile::intact) continue;
        const std::optional<ClaimView> claim = claim_view(layout, id, plan->base.output.claim_timeout_seconds);
        running += claim && claim->running ? 1 : 0;
      }
      if (running > 0)
        fmt::print("note: {} of the jobs not done {} being trained by a run now (claims in {}; `diffpool plan` names "
                   "{}): run the same command again when {} finished\n",
                   running, running == 1 ? "is" : "are", escape_unprintable(layout.claims().string()),
                   running == 1 ? "it" : "them", running == 1 ? "it has" : "they have");
    }
    if (!gone.empty())
      fmt::print("warning: {} job{} this run completed {} no result file in {} any more (deleted after being written: "
                 "a scratch purge?): {}. Run the same command again to run {} again\n",
                 gone.size(), gone.size() == 1 ? "" : "s", gone.size() == 1 ? "has" : "have",
                 escape_unprintable(layout.jobs().string()), fmt::join(gone, ", "), gone.size() == 1 ? "it" : "them");
    fmt::print("results: {} (summary.h5, summary.csv, jobs/*.h5, logs/)\n", layout.root.string());
    return summary.jobs_failed > 0 || summary.jobs_completed < summary.jobs_total ? kExitJobsFailed : kExitCompleted;
  } catch (const StorageFullError& e) {
    fmt::print(stderr, "error: the summary was not written: {}; the job files are saved: free space, then run the same "
                       "command with --summary-only to write it\n",
               e.what());
    return kExitStorageFull;
  } catch (const InputError& e) {
    fmt::print(stderr, "error: the summary was not written: {}\n", e.what());
    return kExitInput;
  } catch (const std::exception& e) {
    return report(e, kExitInternal);
  }
}

namespace {

// Whether two rows of one job carry the same results (the same job run twice by the same build).
bool same_results(const SummaryJob& a, const SummaryJob& b) {
  auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  if (a.epochs != b.epochs || a.best_epoch != b.best_epoch || a.test_split != b.test_split ||
      !same(a.validation_accuracy, b.validation_accuracy) || !same(a.test_accuracy, b.test_accuracy) ||
      a.validation_curve.size() != b.validation_curve.size())
    return false;
  for (std::size_t i = 0; i < a.validation_curve.size(); ++i)
    if (!same(a.validation_curve[i], b.validation_curve[i])) return false;
  return true;
}

std::string joined_distinct(const std::vector<std::string>& values) {
  std::vector<std::string> distinct;
  for (const std::string& v : values)
    if (!v.empty() && std::find(distinct.begin(), distinct.end(), v) == distinct.end()) distinct.push_back(v);
  return fmt::format("{}", fmt::join(distinct, ", "));
}

}  // namespace

int merge_command(const std::vector<std::string>& inputs, const std::string& out) {
  if (inputs.empty()) throw InputError("merge: name at least one output folder to merge");
  struct Input {
    fs::path folder;
    ExperimentSummary summary;
  };
  std::vector<Input> read;
  for (const std::string& folder : inputs) {
    const fs::path summary_path = fs::path(folder) / "summary.h5";
    if (!fs::exists(summary_path)) {
      throw InputError(fmt::format("merge: '{}' has no summary.h5 (run `diffpool run <experiment> --summary-only` with "
                                   "its output.dir to build it from its job files)",
                                   folder));
    }
    Input input{fs::path(folder), {}};
    try {
      input.summary = read_summary(summary_path);
    } catch (const hdf5::DamagedFileError& e) {
      throw InputError(fmt::format("merge: {} is damaged ({}): rebuild it where the folder's job files are with `diffpool "
                                   "run <experiment> --summary-only --set output.dir={}`, or run those folds again",
                                   summary_path.string(), e.reason(), folder));
    }
    if (input.summary.jobs.empty() && input.summary.jobs_completed > 0) {
      throw InputError(fmt::format(
          "merge: {} was written before summaries stored their jobs (it counts {} completed jobs but lists none); "
          "rebuild it where its job files are with `diffpool run <experiment> --summary-only --set output.dir={}`",
          summary_path.string(), input.summary.jobs_completed, folder));
    }
    if (!read.empty() && input.summary.experiment_id != read.front().summary.experiment_id) {
      throw InputError(fmt::format("merge: '{}' holds experiment '{}' (id {}), '{}' holds '{}' (id {}): only runs of "
                                   "one experiment (the same settings, any folds) merge",
                                   read.front().folder.string(), read.front().summary.name,
                                   read.front().summary.experiment_id, folder, input.summary.name,
                                   input.summary.experiment_id));
    }
    read.push_back(std::move(input));
  }

  // The full experiment: the first input's experiment as run, with every fold and the new folder.
  const fs::path yaml = read.front().folder / "experiment.yaml";
  if (!fs::exists(yaml)) throw InputError(fmt::format("merge: '{}' has no experiment.yaml", read.front().folder.string()));
  const ExperimentPlan plan =
      make_plan(load_experiment(yaml.string(), {"evaluation.only_folds=[]", fmt::format("output.dir={}", out)}));
  if (plan.experiment_id != read.front().summary.experiment_id) {
    throw InputError(fmt::format("merge: {} describes experiment id {}, its summary.h5 id {}: the folder was changed "
                                 "after its run",
                                 yaml.string(), plan.experiment_id, read.front().summary.experiment_id));
  }

  // Every completed job once; the same job in two inputs must carry the same results.
  // Jobs trained on different copies of the dataset never merge into one summary (a job of a
  // summary written before the column existed records none, and is not compared).
  std::map<std::string, std::pair<SummaryJob, fs::path>> jobs;
  std::vector<std::string> revisions, backends;
  std::vector<FailedJob> failures;
  const SummaryJob* first_with_digest = nullptr;
  const Input* first_digest_input = nullptr;
  int ranks = 1;
  for (const Input& input : read) {
    backends.push_back(input.summary.backend);
    ranks = std::max(ranks, input.summary.ranks);
    for (const SummaryJob& j : input.summary.jobs) {
      if (!j.dataset_digest.empty()) {
        if (first_with_digest == nullptr) {
          first_with_digest = &j;
          first_digest_input = &input;
        } else if (j.dataset_digest != first_with_digest->dataset_digest) {
          throw InputError(fmt::format(
              "merge: job {} (fold {}) in '{}' trained on data with digest {}, job {} (fold {}) in '{}' on data with "
              "digest {}: the {} files differed between the two runs (another copy, or a changed file), so their "
              "results do not form one experiment; run the folds of one of them again on the other's data",
              first_with_digest->job_id, first_with_digest->fold, first_digest_input->folder.string(),
              first_with_digest->dataset_digest, j.job_id, j.fold, input.folder.string(), j.dataset_digest,
              input.summary.dataset));
        }
      }
      revisions.push_back(j.git_revision);
      const auto [it, inserted] = jobs.try_emplace(j.job_id, j, input.folder);
      if (!inserted && !same_results(it->second.first, j)) {
        throw InputError(fmt::format(
            "merge: job {} (point {}, fold {}, repeat {}, {}) is in '{}' and '{}' with different results (test accuracy "
            "{} and {}; builds {} and {}): keep one of the two runs of that fold",
            j.job_id, j.point, j.fold, j.repeat, j.phase, it->second.second.string(), input.folder.string(),
            it->second.first.test_accuracy, j.test_accuracy, it->second.first.git_revision, j.git_revision));
      }
    }
  }
  for (const Input& input : read)
    for (const FailedJob& f : input.summary.failures)
      if (!jobs.contains(f.job_id) && std::none_of(failures.begin(), failures.end(), [&](const FailedJob& g) {
            return g.job_id == f.job_id;
          }))
        failures.push_back(f);

  ExperimentSummary s = summary_of_plan(plan, ranks, joined_distinct(backends));
  s.git_revision = joined_distinct(revisions);  // the builds that ran the jobs, not this one
  s.failures = std::move(failures);
  std::vector<SummaryJob> rows;
  rows.reserve(jobs.size());
  for (auto& [id, job] : jobs) rows.push_back(std::move(job.first));
  summarise_jobs(plan, std::move(rows), &s);

  OutputLayout layout{fs::path(out)};
  prepare_output(plan, layout, false);
  write_summary(layout.root / "summary.h5", s);
  write_summary_csv(layout.root / "summary.csv", s);
  fmt::print("merged {} folder{} into {}\n", read.size(), read.size() == 1 ? "" : "s", layout.root.string());
  fmt::print("{}", format_summary(s));
  return s.jobs_failed > 0 || s.jobs_completed < s.jobs_total ? kExitJobsFailed : kExitCompleted;
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
  // The matrix-product work of each job needs the dataset; without it the plan is still printed.
  std::optional<PlanWork> work;
  std::string work_problem;
  try {
    DatasetCache datasets;
    work = estimate_plan_work(plan, datasets, layout);
  } catch (const InputError& e) {
    work_problem = e.what();
  }
  fmt::print("  {:>5}  {:<8} {:>5} {:>4} {:>6} {:>12} {:>12}  {:<16}  {}\n", "job", "phase", "point", "fold", "repeat", "cost",
             "work", "id", "status");
  // The status is the row's last field (jobs/slurm/common.sh reads it): "done" only for a result
  // file that reads whole; a damaged one, or a damaged checkpoint, is "damaged" and named below.
  std::vector<std::string> damaged, claims;
  for (const JobSpec& j : plan.jobs) {
    std::string id = "(after selection)", status = "pending";
    if (j.point >= 0) {
      id = job_id(plan, j, j.point);
      const StoredFile result = job_file_state(layout.job_file(id));
      const StoredFile checkpoint = checkpoint_state(layout.checkpoint_file(id));
      if (result == StoredFile::intact) {
        status = "done";
      } else if (result == StoredFile::damaged) {
        status = "damaged";
        damaged.push_back(fmt::format("job file {} is damaged ({}): run reruns the job", layout.job_file(id).string(),
                                      damage_reason(layout.job_file(id))));
      } else if (checkpoint == StoredFile::damaged) {
        status = "damaged";
        damaged.push_back(fmt::format("checkpoint {} is damaged ({}): run restarts the job from epoch 1",
                                      layout.checkpoint_file(id).string(), damage_reason(layout.checkpoint_file(id))));
      } else if (checkpoint == StoredFile::intact) {
        status = "checkpointed";
      } else if (fs::exists(layout.failure_file(id))) {
        status = "failed earlier";
      }
      if (result != StoredFile::intact) {
        if (const std::optional<ClaimView> claim = claim_view(layout, id, plan.base.output.claim_timeout_seconds)) {
          if (claim->running) status = "running";
          claims.push_back(claim->line);
        }
      }
    }
    fmt::print("  {:>5}  {:<8} {:>5} {:>4} {:>6} {:>12.4g} {:>12}  {:<16}  {}\n", j.index, phase_name(j.phase),
               j.point >= 0 ? std::to_string(j.point) : "?", j.fold, j.repeat, j.cost,
               work ? format_flops(work->job_flops[static_cast<std::size_t>(j.index)]) : "?", id, status);
  }
  for (const std::string& line : damaged) fmt::print("  {}\n", escape_unprintable(line));
  for (const std::string& line : claims) fmt::print("  {}\n", escape_unprintable(line));
  if (work) fmt::print("{}", format_plan_work(*work, plan, layout));
  else fmt::print("work: not estimated: {}\n", work_problem);
  return 0;
}

}  // namespace diffpool
