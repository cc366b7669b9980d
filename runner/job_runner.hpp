#pragma once
// Running one job of a plan: split, train (resuming from a checkpoint when there is one),
// evaluate, and write the job's result file. Used alike by the single-process runner and by
// every rank of the MPI task farm.
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/backend/backend.hpp"
#include "engine/data/dataset.hpp"
#include "results/job_record.hpp"
#include "runner/plan.hpp"

namespace diffpool {

// Datasets loaded by this process, shared by its jobs (keyed by name and feature settings).
class DatasetCache {
 public:
  const GraphDataset& get(const DatasetSettings& settings);

 private:
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<GraphDataset>> loaded_;
};

// The output folder's layout.
struct OutputLayout {
  std::filesystem::path root;
  std::filesystem::path jobs() const { return root / "jobs"; }
  std::filesystem::path checkpoints() const { return root / "checkpoints"; }
  std::filesystem::path logs() const { return root / "logs"; }
  std::filesystem::path failed() const { return root / "failed"; }
  std::filesystem::path claims() const { return root / "claims"; }  // runner/job_claims.hpp
  std::filesystem::path job_file(const std::string& id) const { return jobs() / (id + ".h5"); }
  std::filesystem::path checkpoint_file(const std::string& id) const { return checkpoints() / (id + ".h5"); }
  std::filesystem::path log_file(const std::string& id) const { return logs() / (id + ".log"); }
  std::filesystem::path failure_file(const std::string& id) const { return failed() / (id + ".txt"); }
  void create() const;
};

// experiment.id and experiment.yaml of the plan, written atomically into the layout's root.
void write_experiment_files(const ExperimentPlan& plan, const OutputLayout& layout);

// Puts back what a scratch purge (or an `rm -r`) took from the output folder of a running
// experiment: its folders, experiment.id and experiment.yaml (what is still there is left as it
// is). Returns whether anything was missing; the first time per process it also says on stderr
// that results written before are gone and that a rerun runs those jobs again. A few stat calls
// when nothing is missing: the job runner asks once a minute between epochs, and whenever the
// folder a write goes to is missing.
bool restore_output_layout(const ExperimentPlan& plan, const OutputLayout& layout);

// Runs `write` (a write into `folder`, a folder of the layout), first restoring the layout if a
// purge took the folder; a write that fails (other than for want of space) is tried once more
// when the folder is there after restoring, whoever put it back: a purge during the write, with
// another rank restoring the folder before this one looks, fails no job. One stat call when
// nothing is missing.
void write_keeping_output_folder(const ExperimentPlan& plan, const OutputLayout& layout,
                                 const std::filesystem::path& folder, const std::function<void()>& write);

// A job's progress after one of its epochs, and what it says of when the job can end.
struct EpochProgress {
  int epoch = 0;                      // epochs done
  int epochs = 0;                     // configured
  int resumed_epoch = 0;              // the epochs its checkpoint held when this run took the job up
  bool waiting_for_space = false;     // trained, and waiting for room to write its result
  int earliest_last_epoch = 0;        // with early stopping, possibly fewer than `epochs`
  double shortest_epoch_seconds = 0;  // the job's fastest pace so far (wall seconds per epoch); 0: not known yet
};

struct JobContext {
  const ExperimentPlan* plan = nullptr;
  OutputLayout layout;
  Backend* backend = nullptr;
  DatasetCache* datasets = nullptr;
  int rank = 0;
  std::string host;
  // Asked between batches: true stops the job, which checkpoints and reports `interrupted`.
  std::function<bool()> should_stop;
  // Why should_stop said true, for the job's log ("signal 15", "rank 0 lost", ...); empty: a signal.
  std::function<std::string()> stop_reason;
  // Called after every epoch (from the thread that runs the job).
  std::function<void(const EpochProgress&)> on_epoch;
};

struct JobOutcome {
  // storage_full: the file system had no room for the job's result (after output.storage_wait_seconds);
  // like interrupted, the job is not failed, and the rerun resumes it.
  enum class Status : int32_t { completed = 0, failed = 1, interrupted = 2, storage_full = 3 } status = Status::completed;
  std::string job_id;
  std::string reason;              // why it failed, or found no room
  double validation_accuracy = 0;  // at the best epoch
  double test_accuracy = 0;
  double seconds = 0;
};

// Runs the job with the given sweep point (retrain jobs: the fold's winner). Never throws for
// problems of the job itself: they come back as a failed outcome, also written to
// failed/<job id>.txt (a rerun tries the job again).
JobOutcome run_job(const JobContext& context, const JobSpec& job, int64_t point);

// What an earlier run left at a job's result file or checkpoint. `damaged`: the file is there but
// cannot be read whole (truncated, corrupt, not HDF5); it never counts as done.
enum class StoredFile { missing, intact, damaged };
StoredFile job_file_state(const std::filesystem::path& path);
// The record (without outputs) of an intact job file, read once; nullopt for a missing or damaged
// one, `state` (when given) saying which. What job_file_state decides, for callers that then read
// the record anyway.
std::optional<JobRecord> read_intact_job_record(const std::filesystem::path& path, StoredFile* state = nullptr);
StoredFile checkpoint_state(const std::filesystem::path& path);
// Why a damaged job file or checkpoint is damaged, for messages: "truncated: it is N bytes long,
// ...", "corrupt: ...", or that its job record cannot be read whole.
std::string damage_reason(const std::filesystem::path& path);

std::string iso_time_now();
std::string host_name();

}  // namespace diffpool
