#pragma once
// The experiment summary: per sweep point statistics over folds and repeats, the winning point of
// every outer fold, the protocol's final figure, failures and the environment. Rebuilt from the
// job files after every run into summary.h5 and summary.csv of the output folder.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace diffpool {

struct PointSummary {
  int64_t point = 0;
  std::string label;             // sweep settings of the point ("" without a sweep)
  int64_t jobs = 0;              // completed jobs that entered the statistics
  double validation_mean = 0, validation_std = 0;  // accuracy at each job's best epoch
  double test_mean = 0, test_std = 0;              // accuracy of each job's final model
  // Protocol "paper": the best epoch of the validation accuracy curve averaged over folds (the
  // validation split is the test fold there), and that averaged accuracy (optimistic).
  int paper_best_epoch = 0;
  double paper_accuracy = 0, paper_std = 0;
};

struct FoldWinner {
  int fold = 0;
  int64_t point = 0;              // winning sweep point (by mean validation accuracy)
  double validation = 0;          // its mean validation accuracy in this fold
  double test_mean = 0, test_std = 0;  // test accuracy of the winner (mean over repeats/retrainings)
  int64_t runs = 0;
};

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
  // nested), or the paper protocol's optimistic figure for the best point.
  double accuracy_mean = 0, accuracy_std = 0;
  std::string accuracy_label;     // how it was measured, e.g. "test accuracy of per-fold winners"
  bool optimistic = false;        // true for the paper protocol
  std::vector<FailedJob> failures;
  // Environment.
  std::string version, git_revision, backend;
  std::vector<std::string> hosts;
  int ranks = 1;
  std::string updated_at;
};

// The schema version written into the root attribute "schema_version" of summary.h5.
inline constexpr int64_t kSummarySchemaVersion = 1;

// summary.h5, written atomically; layout in results/README.md ("Summary"). Both hold
// hdf5::library_mutex() (safe to call from any thread). read_summary throws InputError for a file
// that is not a summary or has another schema version.
void write_summary(const std::filesystem::path& h5_path, const ExperimentSummary& summary);
ExperimentSummary read_summary(const std::filesystem::path& h5_path);

// One row per sweep point plus one row for the final figure, comma-separated with a header
// (accuracies in percent, columns *_pct; "optimistic" is yes/no). Written atomically.
void write_summary_csv(const std::filesystem::path& csv_path, const ExperimentSummary& summary);
// The text write_summary_csv writes.
std::string format_summary_csv(const ExperimentSummary& summary);

// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
std::string csv_field(std::string_view text);

}  // namespace diffpool
