#pragma once
// `diffpool report RESULTS... [--compare BASELINE] [--csv FILE] [--plots DIR] [--graph N]`: the
// paper's table from experiment output folders, with the published numbers beside ours, and
// paired comparisons of experiments evaluated on the same outer folds.
//
// Each RESULTS argument is an experiment output folder (summary.h5, jobs/*.h5). One row per folder:
// dataset, variant, protocol (paper-protocol rows are marked "optimistic": that protocol selects
// the epoch on the evaluation folds), our accuracy (mean +- std in %, as the summary computed it),
// completed and failed jobs, our figure with the population standard deviation (Errica et al.'s
// convention) beside theirs, the cluster usage per pooling level of the jobs behind the figure,
// and the published figure where one exists:
//   - Ying et al. 2018, Table 1, for the paper protocol (diffpool, diffpool-nolp, diffpool-det,
//     graphsage on ENZYMES, DD, REDDIT-MULTI-12K, COLLAB, PROTEINS);
//   - Errica et al. 2020, for the holdout and nested protocols (DiffPool only).
// Rows are grouped by dataset (in the order of the TU list below), then variant and protocol.
// A folder with job files but no summary.h5 gets a row "not summarised" with its job counts, and
// a note naming the command that rebuilds the summary (`diffpool run <experiment.yaml>`).
//
// --compare BASELINE pairs every other folder with BASELINE fold by fold (the figure per outer
// fold: the winner's test accuracy under holdout and nested, the reported epoch's accuracy under
// the paper protocol) and prints the mean difference, its 95% confidence interval (t distribution
// over the paired differences, n - 1 degrees of freedom) and the two-sided p-value of the paired
// t-test. Both must have the same dataset, number of folds and split seed (and, where the
// summaries record them, the same test graphs per fold); otherwise the comparison is refused,
// naming what differs, and the exit status is 2.
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "results/statistics.hpp"
#include "results/summary.hpp"

namespace diffpool {

struct ReportOptions {
  std::vector<std::string> results;  // experiment output folders
  std::string csv;                   // "" : <folder>/report.csv for one folder without compare, else none
  std::string plots;                 // "" : no plots; else the folder PNGs go to (see run_report)
  int64_t graph = -1;                // --graph N for the plots: the dataset graph index drawn (-1: the first saved)
  std::string python;                // "" : $DIFFPOOL_PYTHON, else /usr/bin/python3 when present, else python3
  std::string compare;               // "" : no paired comparison; else the baseline folder
};

// A published accuracy in percent; std is NaN where the source gives none (Ying et al.).
struct PublishedAccuracy {
  double mean = 0;
  double std = 0;
  bool has_std = false;
};

// The two sources, as named in the table headers.
inline constexpr const char* kYingSource = "Ying et al. 2018, Table 1";
inline constexpr const char* kErricaSource = "Errica et al. 2020";

// Canonical TU names ("D&D", "dd" -> "DD"; upper case, '_' -> '-') and variant names
// ("DIFFPOOL_NOLP" -> "diffpool-nolp").
std::string canonical_dataset_name(const std::string& name);
std::string canonical_variant_name(const std::string& name);

// The published figures (ANCHORS.md); nullopt where the source has none.
std::optional<PublishedAccuracy> ying_2018_accuracy(const std::string& dataset, const std::string& variant);
std::optional<PublishedAccuracy> errica_2020_accuracy(const std::string& dataset, const std::string& variant);

// One line of the report: one experiment output folder.
struct ReportRow {
  std::string folder;       // as given on the command line
  std::string experiment;   // experiment name
  std::string dataset, variant, protocol;  // canonical names
  bool summarised = false;  // false: no summary.h5, counts come from the job files
  bool optimistic = false;  // the paper protocol's figure
  double mean_pct = 0, std_pct = 0;  // our figure in percent (summarised rows); std_pct: sample std (n - 1)
  double population_std_pct = kNotApplicable;  // the same figure's population std (n), Errica et al.'s convention
  std::string measure;      // how it was measured (the summary's accuracy_label)
  int64_t completed = 0, failed = 0, total = 0;  // total < 0: unknown (not summarised)
  std::optional<PublishedAccuracy> ying, errica;  // the published figure beside ours
  std::vector<std::string> damaged;  // job files that cannot be read (not summarised rows): not counted
  // What a paired comparison needs (summarised rows): the design of the outer folds and the
  // figure of each fold (the summary's winners).
  int folds = 0;
  bool has_split_seed = false;
  uint64_t split_seed = 0;
  std::vector<FoldWinner> winners;
  // Cluster usage per pooling level (results/README.md, "Cluster usage"): the mean over the jobs
  // behind the figure (reported_cluster_usage). Empty: no pooling, or not recorded (summaries
  // written before it was, rows not summarised).
  std::vector<double> cluster_usage;
};

// The cluster usage per pooling level of the jobs the figure is computed from: every job of an
// outer fold's winning point except the nested protocol's selection jobs (the paper protocol: the
// reported point on every fold; holdout: the winner's training jobs; nested: its retrainings),
// each job's usage of its reported evaluation, averaged per level over the jobs that record it.
std::vector<double> reported_cluster_usage(const ExperimentSummary& summary);

// Two experiments compared fold by fold on the same outer folds: `experiment` - `baseline`.
struct PairedComparison {
  std::string experiment, baseline;                   // "name (folder)" of each
  std::string experiment_folder, baseline_folder;
  std::string dataset;
  int folds = 0;
  uint64_t split_seed = 0;
  std::vector<int> paired_folds;                      // the folds both have, increasing
  std::vector<double> experiment_pct, baseline_pct;  // the figure of each paired fold, in %
  std::vector<int> unpaired_folds;                    // folds only one of them has (not finished)
  PairedTTest test;                                   // on the differences, in accuracy points
};

// Pairs the fold figures of two summarised rows. Throws InputError naming what differs when they
// were not evaluated on the same splits (dataset, number of folds, split seed, a fold's test
// graphs), when one is not summarised or predates stored split seeds, or when fewer than 2 folds pair.
PairedComparison compare_paired(const ReportRow& experiment, const ReportRow& baseline);
// The comparison as printed: per fold the two figures and the difference, then the mean
// difference, its confidence interval and the p-value.
std::string format_paired_comparison(const PairedComparison& comparison);

// Reads one folder: its summary.h5, else the root attributes of its job files. Throws InputError
// when the folder has neither (the message says what was looked for), or a file cannot be read.
ReportRow read_report_row(const std::filesystem::path& folder);

// Sorts rows the way the table shows them (dataset in TU order, variant, protocol, folder).
void sort_report_rows(std::vector<ReportRow>& rows);
// The table as printed (plain text, aligned columns, a legend with the sources).
std::string format_report_table(const std::vector<ReportRow>& rows);
// The same rows as CSV with a header; a row whose folder is the experiment of a comparison gets
// its paired_* columns (empty otherwise).
std::string format_report_csv(const std::vector<ReportRow>& rows, const std::vector<PairedComparison>& comparisons = {});

// The python command line (shell-quoted) that writes the plots of one folder into `out_dir`.
std::string plots_command(const ReportOptions& options, const std::filesystem::path& folder,
                          const std::filesystem::path& out_dir);

// The whole command: prints the table to `out`, notes and errors to `err`, writes the CSV and, with
// --plots, runs `python3 -m diffpool_results.plots FOLDER --out DIR [--graph N]` for every folder
// (DIR itself for one folder, DIR/<folder name> for several), printing Python's output when it
// fails. The package is found in $DIFFPOOL_PYTHON_DIR, else <source dir>/results/python.
// Returns 0 when every folder was reported from its summary and every step succeeded, 2 when a
// folder is not an experiment output folder or a --compare comparison was refused (bad input), 1 otherwise
// (the messages say what is missing or failed); whatever could be reported still is.
int run_report(const ReportOptions& options);
int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err);

}  // namespace diffpool
