#pragma once
// Epoch checkpoints of a running job: checkpoints/<job id>.h5 in the output folder, written
// atomically, holding the trainer state at an epoch boundary (parameters, Adam moments, batch-norm
// statistics, best-epoch bookkeeping), the metrics and the per-epoch test predictions so far. A
// rerun continues from it and gives the same numbers as a run that was never interrupted (CPU backend).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/train/trainer.hpp"

namespace diffpool {

struct Checkpoint {
  std::string job_id;
  TrainerState state;
  std::vector<EpochMetrics> epochs;
  double wall_seconds = 0;  // training time spent before this checkpoint
  std::string dataset_digest;  // GraphDataset::digest of the data it trained on; "" in older checkpoints
};

void write_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
// Empty when there is no usable checkpoint (missing, unreadable or of another job).
std::optional<Checkpoint> read_checkpoint(const std::filesystem::path& path, const std::string& job_id);

// The dataset digest a job file or checkpoint records ("" when it records none, or cannot be
// read: damaged files are named elsewhere).
std::string recorded_dataset_digest(const std::filesystem::path& path);

// How far a checkpointed job got, without its parameters or predictions (for `plan` and the time
// estimate of `run`): the epochs it holds and the seconds they took. Empty as read_checkpoint is,
// and also when the file opens but these cannot be read.
struct CheckpointProgress {
  int epochs = 0;
  double seconds = 0;  // the epochs' training and evaluation seconds, as the job file would sum them
};
std::optional<CheckpointProgress> read_checkpoint_progress(const std::filesystem::path& path, const std::string& job_id);

// EpochMetrics as fixed columns of doubles (NaN where a split was not measured), shared by the
// checkpoint and the job files.
std::vector<std::string> epoch_metric_columns();
std::vector<double> epoch_metrics_row(const EpochMetrics& m);
EpochMetrics epoch_metrics_from_row(const std::vector<double>& row);

}  // namespace diffpool
