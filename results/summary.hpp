#pragma once
// The experiment summary: per sweep point statistics over folds and repeats, the winning point of
// every outer fold, the protocol's final figure, failures and the environment. Rebuilt from the
// job files after every run into summary.h5 and summary.csv of the output folder.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace diffpool {

// A figure that does not apply (the paper protocol's columns under another protocol, the test
// accuracy of the nested protocol's selection jobs, anything of a point without jobs) is NaN,
// never 0: stored as NaN in summary.h5, an empty cell in the CSV, printed as "-".
inline constexpr double kNotApplicable = std::numeric_limits<double>::quiet_NaN();

struct PointSummary {
  int64_t point = 0;
  std::string label;             // sweep settings of the point ("" without a sweep)
  int64_t jobs = 0;              // completed jobs that entered the statistics
  double validation_mean = kNotApplicable, validation_std = kNotApplicable;  // accuracy at each job's best epoch
  double test_mean = kNotApplicable, test_std = kNotApplicable;              // accuracy of each job's final model
  // Protocol "paper": the best epoch of the validation accuracy curve averaged over folds (the
  // validation split is the test fold there), and that averaged accuracy (optimistic).
  // paper_best_epoch 0: none (epochs count from 1).
  int paper_best_epoch = 0;
  double paper_accuracy = kNotApplicable, paper_std = kNotApplicable;
};

// The choice of an outer fold: under holdout and nested, the sweep point with the best mean
// validation accuracy of the fold; under the paper protocol, the point the figure reports (the
// same on every fold) with the fold's accuracy at the reported epoch (the figure per fold).
struct FoldWinner {
  int fold = 0;
  int64_t point = 0;              // winning sweep point (by mean validation accuracy)
  double validation = kNotApplicable;  // its mean validation accuracy in this fold
  double test_mean = kNotApplicable, test_std = kNotApplicable;  // test accuracy of the winner (mean over repeats/retrainings)
  int64_t runs = 0;
  // How many sweep points shared the best figure the choice compared (exactly equal means); 1: no
  // tie. A tie is broken by kTieRule.
  int64_t tied = 1;
  // split_fingerprint() of the fold's test graphs ("" when unknown): paired comparisons check it.
  std::string test_split;
};

// One completed job as the summary keeps it: everything the protocol's figure is computed from,
// so that the summaries of runs of different folds of one experiment can be merged into the
// experiment's summary without their job files (`diffpool merge`).
struct SummaryJob {
  std::string job_id;
  std::string phase;                 // "train", "select" or "retrain"
  int64_t point = 0;
  int fold = 0;
  int repeat = 0;
  int64_t epochs = 0;                // epochs run
  int64_t best_epoch = 0;            // 0: none validated
  double validation_accuracy = kNotApplicable;  // at the best epoch (as the job record stores it)
  double test_accuracy = kNotApplicable;        // NaN: the job has no test split
  std::string test_split;            // split_fingerprint() of its test graphs ("" without any)
  std::string host;
  std::string git_revision;          // the build that ran it
  double seconds = 0;                // training and evaluation time summed over its epochs
  std::vector<double> validation_curve;  // accuracy per epoch; NaN where the epoch was not validated
  std::string dataset_digest;        // GraphDataset::digest of the data it trained on ("" if not recorded)
  // Cluster usage per pooling level of the job's reported evaluation (its test evaluation; a job
  // without a test split: its best validation epoch's). Empty without pooling or where not recorded.
  std::vector<double> cluster_usage;
};

// How model selection breaks a tie (stored as the summary's root attribute tie_rule).
inline constexpr const char* kTieRule = "lowest sweep point index among the tied points";

struct FailedJob {
  std::string job_id;
  int64_t point = 0;
  int fold = 0;
  int repeat = 0;
  std::string phase;
  std::string reason;
};

struct ExperimentSummary {
  std::string name, experiment_id, protocol, dataset, variant;
  int folds = 0, repeats = 0;
  int64_t jobs_total = 0, jobs_completed = 0, jobs_failed = 0;
  std::vector<PointSummary> points;
  std::vector<FoldWinner> winners;
  // The figure to report: mean +- std over outer folds of the winners' test accuracy (holdout,
  // nested), or the paper protocol's optimistic figure for the best point. accuracy_std is the
  // sample standard deviation (n - 1); accuracy_std_population the population one (n), the
  // convention of Errica et al.'s code, for comparison with their figures.
  double accuracy_mean = kNotApplicable, accuracy_std = kNotApplicable;
  double accuracy_std_population = kNotApplicable;
  // The outer folds' seed (evaluation.split_seed): with dataset and folds it decides the test
  // graphs of every fold. has_split_seed false: a summary written before it was stored.
  uint64_t split_seed = 0;
  bool has_split_seed = false;
  std::string accuracy_label;     // how it was measured, e.g. "test accuracy of per-fold winners"
  bool optimistic = false;        // true for the paper protocol
  std::vector<FailedJob> failures;
  // Every completed job the figures were computed from, sorted by (fold, point, phase, repeat).
  // Empty in summaries written before it was stored (they cannot be merged).
  std::vector<SummaryJob> jobs;
  // Environment.
  std::string version, git_revision, backend;
  std::vector<std::string> hosts;
  int ranks = 1;
  std::string updated_at;
};

// The schema version written into the root attribute "schema_version" of summary.h5.
inline constexpr int64_t kSummarySchemaVersion = 1;

// A fingerprint of a fold's test graphs (their dataset indices, in order): 16 hex digits of the
// 64-bit FNV-1a hash of the indices as little-endian int64.
std::string split_fingerprint(const std::vector<int64_t>& graphs);

// summary.h5, written atomically; layout in results/README.md ("Summary"). Both hold
// hdf5::library_mutex() (safe to call from any thread). read_summary throws InputError for a file
// that is not a summary or has another schema version.
void write_summary(const std::filesystem::path& h5_path, const ExperimentSummary& summary);
ExperimentSummary read_summary(const std::filesystem::path& h5_path);

// One row per sweep point, one per outer fold's winner, and one row for the final figure,
// comma-separated with a header (accuracies in percent, columns *_pct; "optimistic" is yes/no;
// NaN is an empty cell). Written atomically.
void write_summary_csv(const std::filesystem::path& csv_path, const ExperimentSummary& summary);
// The text write_summary_csv writes.
std::string format_summary_csv(const ExperimentSummary& summary);

// Cluster usage per pooling level averaged over the jobs `counts` accepts, each level over the
// jobs that record it (NaN for a level none of them measured); empty when none records any.
std::vector<double> mean_cluster_usage(const std::vector<SummaryJob>& jobs,
                                       const std::function<bool(const SummaryJob&)>& counts);

// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
std::string csv_field(std::string_view text);

}  // namespace diffpool
