#pragma once
// What one job (one training of one sweep point on one fold) produced, and its HDF5 file.
//
// One file per finished job, jobs/<job id>.h5 in the experiment's output folder, written
// atomically (write_file_atomically), so a kill at any moment leaves only complete files. The
// layout is documented in results/README.md ("Job files").
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/data/dataset.hpp"
#include "engine/train/trainer.hpp"

namespace diffpool::hdf5 {
class File;
}  // namespace diffpool::hdf5

namespace diffpool {

// The true and predicted class of every test graph of the evaluation a job reports (/result/test),
// stored whatever output.max_graphs says about the large per-graph outputs: what confusion
// matrices and per-class accuracies are computed from. Empty when the job has no test split (the
// nested protocol's selection jobs) and in job files written before they existed.
struct TestPredictions {
  std::vector<int64_t> graphs;       // dataset graph indices, in the order of the test split
  std::vector<int32_t> labels;       // the true class of each
  std::vector<int32_t> predictions;  // the argmax of the logits: test_metrics.accuracy == mean(labels == predictions)
  int epoch = 0;                     // the epoch whose weights made them (the best epoch when restored, else the last)
  bool empty() const { return graphs.empty(); }
};

struct JobRecord {
  // Identity.
  std::string job_id;          // 16 hex digits, a hash of settings + phase + fold + repeat
  std::string experiment_id;   // the experiment's fingerprint (same for every job of a run)
  std::string experiment_name;
  std::string protocol;        // paper | holdout | nested
  std::string phase;           // "train" (paper, holdout), "select" or "retrain" (nested)
  int64_t point = 0;           // sweep point index
  std::string point_label;     // "model.hidden_dim=64 training.learning_rate=0.001" ("" without a sweep)
  int fold = 0;                // outer fold
  int repeat = 0;
  uint64_t seed = 0;           // training seed of this job
  std::string dataset;
  std::string dataset_digest;  // GraphDataset::digest of the data it trained on; "" in files older than it
  std::string variant;
  std::string settings;        // canonical settings, one key=value per line (ExperimentConfig::canonical_settings)
  std::string config_yaml;     // the resolved experiment document of this sweep point

  // Splits (dataset graph indices).
  std::vector<int64_t> train, validation, test;

  // Per-epoch metrics, in order (EpochMetrics of engine/train/trainer.hpp).
  std::vector<EpochMetrics> epochs;

  // Outcome.
  std::string status = "completed";  // completed | failed
  std::string failure;               // the reason when failed
  int best_epoch = 0;                // by the early-stopping metric on the validation split (0: none)
  Metrics best_validation;           // validation metrics at best_epoch
  bool has_test = false;
  // Test metrics of the final model (best epoch's weights where kept). Named test_metrics, not
  // test, because `test` is the test split above.
  Metrics test_metrics;

  // Labels and predictions of every test graph for test_metrics; the per-epoch predictions (the
  // paper protocol, which measures the test split every epoch) are epochs[e].test_predictions.
  TestPredictions predictions;

  // Model outputs on the saved split (see output.save_outputs).
  std::string outputs_split;         // "test", "validation", "all" or "" (none saved)
  std::vector<GraphOutputs> outputs;
  // The level-0 edges of each graph of `outputs` (same order), so that plots can draw the graphs:
  // local node indices (the rows of level 0), each undirected edge once as a (low, high) pair,
  // flattened [E, 2]. Empty: not saved (then output_edges.size() == 0; otherwise it equals
  // outputs.size()). Fill it with graph_edges(dataset, graph).
  std::vector<std::vector<int32_t>> output_edges;

  // Where and how it ran.
  std::string host;
  int rank = 0;
  std::string backend;
  std::string version;
  std::string git_revision;
  double wall_seconds = 0;
  std::string started_at, finished_at;  // ISO 8601 UTC
};

// Writes the record to `path` atomically (a temporary name, then rename). Holds
// hdf5::library_mutex() (safe to call from any thread). Failed jobs are written the same way,
// with status "failed", the reason in `failure` and whatever epochs ran.
void write_job_record(const std::filesystem::path& path, const JobRecord& record);
// Reads a record; the per-graph outputs only when asked (they can be large). Throws InputError for
// a file that is not a job file or has another schema version, LibraryError for HDF5 failures.
// Holds hdf5::library_mutex().
JobRecord read_job_record(const std::filesystem::path& path, bool with_outputs = false);
// The same from a file already open (hdf5::File::open_if_readable); the caller holds
// hdf5::library_mutex().
JobRecord read_job_record(const hdf5::File& file, bool with_outputs = false);

// The undirected edges of one graph of a dataset as local (low, high) node pairs, flattened [E, 2],
// in CSR order (what JobRecord::output_edges holds).
std::vector<int32_t> graph_edges(const GraphDataset& dataset, int64_t graph);

// The job files of an experiment output folder: <experiment_dir>/jobs/*.h5, sorted by name,
// without temporary files of writers ("*.h5.tmp.<pid>"). Empty when there is no jobs/ folder.
std::vector<std::filesystem::path> list_job_files(const std::filesystem::path& experiment_dir);

// The schema version written into the root attribute "schema_version" of every job file.
inline constexpr int64_t kJobFileSchemaVersion = 1;

}  // namespace diffpool
