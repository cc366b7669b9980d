// `diffpool report`: our accuracies beside the published ones. See report.hpp.
#include "results/report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <ostream>
#include <set>
#include <tuple>

#include "engine/core/error.hpp"
#include "results/atomic_file.hpp"
#include "results/job_record.hpp"
#include "results/summary.hpp"

#ifndef DIFFPOOL_SOURCE_DIR
#define DIFFPOOL_SOURCE_DIR "."
#endif

namespace diffpool {

namespace {

namespace fs = std::filesystem;

// The TU datasets in the order the table lists them: the paper's Table 1 first, then the others
// Errica et al. evaluated.
constexpr std::array<const char*, 9> kDatasetOrder = {"ENZYMES", "DD", "REDDIT-MULTI-12K", "COLLAB", "PROTEINS",
                                                      "NCI1", "IMDB-BINARY", "IMDB-MULTI", "REDDIT-BINARY"};
constexpr std::array<const char*, 4> kVariantOrder = {"diffpool", "diffpool-nolp", "diffpool-det", "graphsage"};
constexpr std::array<const char*, 3> kProtocolOrder = {"paper", "holdout", "nested"};

template <std::size_t N>
std::size_t order_of(const std::array<const char*, N>& order, const std::string& name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == order[i]) return i;
  }
  return N;
}

struct Published {
  const char* dataset;
  const char* variant;
  double mean;
  double std;  // NaN: not given
};

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

// Ying et al. 2018, Table 1 (accuracy %, their protocol; no standard deviations given).
constexpr Published kYing2018[] = {
    {"ENZYMES", "graphsage", 54.25, kNone},      {"DD", "graphsage", 75.42, kNone},
    {"REDDIT-MULTI-12K", "graphsage", 42.24, kNone}, {"COLLAB", "graphsage", 68.25, kNone},
    {"PROTEINS", "graphsage", 70.48, kNone},

    {"ENZYMES", "diffpool-det", 58.33, kNone},   {"DD", "diffpool-det", 75.47, kNone},
    {"REDDIT-MULTI-12K", "diffpool-det", 46.18, kNone}, {"COLLAB", "diffpool-det", 82.13, kNone},
    {"PROTEINS", "diffpool-det", 75.62, kNone},

    {"ENZYMES", "diffpool-nolp", 61.95, kNone},  {"DD", "diffpool-nolp", 79.98, kNone},
    {"REDDIT-MULTI-12K", "diffpool-nolp", 46.65, kNone}, {"COLLAB", "diffpool-nolp", 75.58, kNone},
    {"PROTEINS", "diffpool-nolp", 76.22, kNone},

    {"ENZYMES", "diffpool", 62.53, kNone},       {"DD", "diffpool", 80.64, kNone},
    {"REDDIT-MULTI-12K", "diffpool", 47.08, kNone}, {"COLLAB", "diffpool", 75.48, kNone},
    {"PROTEINS", "diffpool", 76.25, kNone},
};

// Errica et al. 2020, DiffPool under their protocol (accuracy % mean +- std over outer folds).
// COLLAB used degree features there.
constexpr Published kErrica2020[] = {
    {"ENZYMES", "diffpool", 59.5, 5.6},     {"DD", "diffpool", 75.0, 3.5},
    {"PROTEINS", "diffpool", 73.7, 3.5},    {"NCI1", "diffpool", 76.9, 1.9},
    {"COLLAB", "diffpool", 68.9, 2.0},      {"IMDB-BINARY", "diffpool", 68.4, 3.3},
    {"IMDB-MULTI", "diffpool", 45.6, 3.4},  {"REDDIT-BINARY", "diffpool", 89.1, 1.6},
};

template <std::size_t N>
std::optional<PublishedAccuracy> look_up(const Published (&table)[N], const std::string& dataset,
                                         const std::string& variant) {
  const std::string d = canonical_dataset_name(dataset), v = canonical_variant_name(variant);
  for (const Published& p : table) {
    if (d == p.dataset && v == p.variant) {
      return PublishedAccuracy{p.mean, std::isnan(p.std) ? 0.0 : p.std, !std::isnan(p.std)};
    }
  }
  return std::nullopt;
}

std::string format_published(const std::optional<PublishedAccuracy>& p) {
  if (!p) return "-";
  if (!p->has_std) return fmt::format("{:.2f}", p->mean);
  return fmt::format("{:.1f} +- {:.1f}", p->mean, p->std);
}

std::string protocol_cell(const ReportRow& row) {
  return row.optimistic ? row.protocol + " (optimistic)" : row.protocol;
}

std::string ours_cell(const ReportRow& row) {
  if (!row.summarised) return "not summarised";
  if (std::isnan(row.mean_pct)) return "-";
  return fmt::format("{:.2f} +- {:.2f}", row.mean_pct, row.std_pct);
}

// Ours with the population standard deviation, beside Errica et al.'s figure (not for the paper
// protocol, which has no figure of theirs beside it).
std::string population_cell(const ReportRow& row) {
  if (row.protocol == "paper") return "";
  if (!row.summarised || std::isnan(row.mean_pct) || std::isnan(row.population_std_pct)) return "-";
  return fmt::format("{:.2f} +- {:.2f}", row.mean_pct, row.population_std_pct);
}

// A number for the CSV: "" for NaN.
std::string csv_number(double value, int digits) {
  if (std::isnan(value)) return "";
  return fmt::format("{:.{}f}", value, digits);
}

// A statistic for the CSV with 17 significant digits (enough to check it against another
// implementation): "" for NaN, "inf" / "-inf" as they are.
std::string csv_precise(double value) {
  if (std::isnan(value)) return "";
  return fmt::format("{:.17g}", value);
}

// "+1.23" / "-1.23": a difference in accuracy points.
std::string signed_points(double value) {
  if (std::isnan(value)) return "-";
  return fmt::format("{:+.2f}", value);
}

// A p-value as people read it: 4 significant digits, "< 1e-16" below what doubles resolve here.
std::string p_value_text(double p) {
  if (std::isnan(p)) return "-";
  if (p < 1e-16) return "< 1e-16";
  return fmt::format("{:.4g}", p);
}

std::string row_name(const ReportRow& r) {
  return r.experiment.empty() || r.experiment == r.folder ? r.folder : fmt::format("{} ({})", r.experiment, r.folder);
}

// The cluster usage per pooling level, "0.54/0.31"; "-" where none is recorded.
std::string usage_cell(const ReportRow& row) {
  if (row.cluster_usage.empty()) return "-";
  std::vector<std::string> levels;
  for (const double u : row.cluster_usage) levels.push_back(std::isnan(u) ? "-" : fmt::format("{:.2f}", u));
  return fmt::format("{}", fmt::join(levels, "/"));
}

std::string jobs_cell(const ReportRow& row) {
  return row.total < 0 ? fmt::format("{}/?", row.completed) : fmt::format("{}/{}", row.completed, row.total);
}

// Single-quoted for /bin/sh.
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') quoted += "'\\''";
    else quoted += c;
  }
  return quoted + "'";
}

// Runs a shell command; returns its exit status (-1 when it did not exit normally) and its
// standard output and error together.
std::pair<int, std::string> run_shell(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "cannot start /bin/sh (popen failed)"};
  std::array<char, 4096> buffer;
  while (const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string python_interpreter(const ReportOptions& options) {
  if (!options.python.empty()) return options.python;
  if (const char* env = std::getenv("DIFFPOOL_PYTHON"); env && *env) return env;
  std::error_code ignored;
  if (fs::exists("/usr/bin/python3", ignored)) return "/usr/bin/python3";
  return "python3";
}

std::string python_package_dir() {
  if (const char* env = std::getenv("DIFFPOOL_PYTHON_DIR"); env && *env) return env;
  return (fs::path(DIFFPOOL_SOURCE_DIR) / "results" / "python").string();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string canonical_dataset_name(const std::string& name) {
  std::string upper;
  for (const char c : name) upper += c == '_' ? '-' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper == "D&D") return "DD";
  return upper;
}

std::string canonical_variant_name(const std::string& name) {
  std::string lower;
  for (const char c : name) lower += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

std::optional<PublishedAccuracy> ying_2018_accuracy(const std::string& dataset, const std::string& variant) {
  return look_up(kYing2018, dataset, variant);
}

std::optional<PublishedAccuracy> errica_2020_accuracy(const std::string& dataset, const std::string& variant) {
  return look_up(kErrica2020, dataset, variant);
}

ReportRow read_report_row(const fs::path& folder) {
  ReportRow row;
  row.folder = folder.string();
  std::error_code error;
  if (!fs::is_directory(folder, error)) {
    throw InputError(fmt::format("'{}' is not a folder (expected an experiment output folder with summary.h5)",
                                 folder.string()));
  }
  const fs::path summary_path = folder / "summary.h5";
  if (fs::exists(summary_path, error)) {
    const ExperimentSummary s = read_summary(summary_path);
    row.summarised = true;
    row.experiment = s.name;
    row.dataset = canonical_dataset_name(s.dataset);
    row.variant = canonical_variant_name(s.variant);
    row.protocol = s.protocol;
    row.optimistic = s.optimistic || s.protocol == "paper";
    row.mean_pct = 100.0 * s.accuracy_mean;
    row.std_pct = 100.0 * s.accuracy_std;
    row.population_std_pct = 100.0 * s.accuracy_std_population;
    if (std::isnan(row.population_std_pct) && !std::isnan(s.accuracy_std) && s.protocol != "paper" &&
        s.winners.size() > 1) {
      // A summary written before the population std was stored: the same n fold figures.
      const auto n = static_cast<double>(s.winners.size());
      row.population_std_pct = row.std_pct * std::sqrt((n - 1.0) / n);
    }
    row.folds = s.folds;
    row.has_split_seed = s.has_split_seed;
    row.split_seed = s.split_seed;
    row.winners = s.winners;
    row.cluster_usage = reported_cluster_usage(s);
    row.measure = s.accuracy_label;
    row.completed = s.jobs_completed;
    row.failed = s.jobs_failed;
    row.total = s.jobs_total;
  } else {
    const std::vector<fs::path> jobs = list_job_files(folder);
    std::vector<fs::path> failures;  // the runner records failed jobs as failed/<job id>.txt
    if (fs::is_directory(folder / "failed", error)) {
      for (const auto& entry : fs::directory_iterator(folder / "failed", error)) {
        if (entry.path().extension() == ".txt") failures.push_back(entry.path());
      }
    }
    if (jobs.empty() && failures.empty()) {
      throw InputError(fmt::format("'{}' holds neither summary.h5 nor job files (jobs/*.h5): not an experiment "
                                   "output folder, or nothing has finished yet",
                                   folder.string()));
    }
    row.summarised = false;
    row.total = -1;
    for (const fs::path& job : jobs) {
      JobRecord r;
      try {
        r = read_job_record(job, false);
      } catch (const Error& error) {  // a damaged job file is no finished job; the note names it
        row.damaged.push_back(job.string());
        continue;
      }
      if (row.experiment.empty()) {
        row.experiment = r.experiment_name;
        row.dataset = canonical_dataset_name(r.dataset);
        row.variant = canonical_variant_name(r.variant);
        row.protocol = r.protocol;
        row.optimistic = r.protocol == "paper";
      }
      if (r.status == "completed") ++row.completed;
      else ++row.failed;
    }
    row.failed += static_cast<int64_t>(failures.size());
    if (row.experiment.empty()) row.experiment = folder.filename().string();
  }
  if (row.protocol == "paper") row.ying = ying_2018_accuracy(row.dataset, row.variant);
  else row.errica = errica_2020_accuracy(row.dataset, row.variant);
  return row;
}

std::vector<double> reported_cluster_usage(const ExperimentSummary& summary) {
  std::set<std::pair<int, int64_t>> winning;  // (fold, point)
  for (const FoldWinner& w : summary.winners) winning.emplace(w.fold, w.point);
  return mean_cluster_usage(summary.jobs, [&](const SummaryJob& j) {
    return j.phase != "select" && winning.count({j.fold, j.point}) > 0;
  });
}

void sort_report_rows(std::vector<ReportRow>& rows) {
  auto key = [](const ReportRow& r) {
    return std::make_tuple(order_of(kDatasetOrder, r.dataset), r.dataset, order_of(kVariantOrder, r.variant),
                           r.variant, order_of(kProtocolOrder, r.protocol), r.protocol, r.folder);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const ReportRow& a, const ReportRow& b) { return key(a) < key(b); });
}

std::string format_report_table(const std::vector<ReportRow>& input) {
  std::vector<ReportRow> rows = input;
  sort_report_rows(rows);
  const std::vector<std::string> header = {"dataset", "variant", "protocol", "ours (%)", "jobs done/total", "failed",
                                           std::string(kYingSource), "ours, population std", std::string(kErricaSource),
                                           "clusters used", "experiment"};
  std::vector<std::vector<std::string>> cells;
  for (const ReportRow& r : rows) {
    cells.push_back({r.dataset, r.variant, protocol_cell(r), ours_cell(r), jobs_cell(r), std::to_string(r.failed),
                     r.protocol == "paper" ? format_published(r.ying) : "", population_cell(r),
                     r.protocol == "paper" ? "" : format_published(r.errica), usage_cell(r), row_name(r)});
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& line : cells) width[c] = std::max(width[c], line[c].size());
  }
  auto format_line = [&](const std::vector<std::string>& line) {
    std::string text;
    for (std::size_t c = 0; c < line.size(); ++c) {
      if (c + 1 == line.size()) text += line[c];  // no trailing blanks
      else text += fmt::format("{:<{}}  ", line[c], width[c]);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text + "\n";
  };

  std::string out =
      "Graph classification accuracy in % (ours: mean +- sample std over outer folds, as summary.h5 gives it)\n\n";
  out += format_line(header);
  std::vector<std::string> rule;
  for (const std::size_t w : width) rule.emplace_back(w, '-');
  out += format_line(rule);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i > 0 && rows[i].dataset != rows[i - 1].dataset) out += "\n";  // one block per dataset
    out += format_line(cells[i]);
  }
  out += fmt::format(
      "\n{}: accuracy with the authors' protocol (10-fold CV, the best epoch of the fold-averaged\n"
      "  validation curve, no separate test set), shown beside our 'paper' rows. It selects on the\n"
      "  evaluation folds, so it and our 'paper (optimistic)' rows overstate the accuracy.\n"
      "{}: DiffPool under stratified 10-fold CV with model selection on an inner holdout and\n"
      "  the winner retrained 3 times (COLLAB with degree features), shown beside our 'holdout' and\n"
      "  'nested' rows. '-': the source has no figure for that dataset and variant, or ours does not\n"
      "  apply (no completed job).\n"
      "Standard deviations: ours (column 'ours') is the sample standard deviation over outer folds\n"
      "  (divides by n - 1); Errica et al.'s code reports the population one (divides by n), so\n"
      "  'ours, population std' gives our figure on their convention, beside theirs.\n"
      "Clusters used: per pooling level, the share of each graph's clusters that some node's\n"
      "  assignment chooses (1: all in use; near 1/clusters: collapsed to one), averaged over the\n"
      "  jobs behind 'ours' (their reported evaluations); '-': no pooling, or not recorded.\n",
      kYingSource, kErricaSource);
  return out;
}

std::string format_report_csv(const std::vector<ReportRow>& input, const std::vector<PairedComparison>& comparisons) {
  std::vector<ReportRow> rows = input;
  sort_report_rows(rows);
  // Columns after "folder" were added later, at the end, so that readers by position keep working.
  std::string out =
      "dataset,variant,protocol,optimistic,summarised,accuracy_mean_pct,accuracy_std_pct,measure,jobs_completed,"
      "jobs_failed,jobs_total,ying2018_table1_pct,errica2020_mean_pct,errica2020_std_pct,experiment,folder,"
      "accuracy_std_population_pct,paired_baseline,paired_folds,paired_fold_differences_pct,"
      "paired_mean_difference_pct,paired_ci95_low_pct,paired_ci95_high_pct,paired_t,paired_degrees_of_freedom,"
      "paired_p_value,cluster_usage_per_level\n";
  for (const ReportRow& r : rows) {
    const std::string mean = r.summarised ? csv_number(r.mean_pct, 4) : "";
    const std::string std = r.summarised ? csv_number(r.std_pct, 4) : "";
    const std::string population = r.summarised ? csv_number(r.population_std_pct, 4) : "";
    std::string paired = ",,,,,,,,";
    for (const PairedComparison& c : comparisons) {
      if (c.experiment_folder != r.folder) continue;
      std::vector<std::string> differences;
      for (std::size_t i = 0; i < c.paired_folds.size(); ++i)
        differences.push_back(fmt::format("{:.4f}", c.experiment_pct[i] - c.baseline_pct[i]));
      paired = fmt::format("{},{},{},{},{},{},{},{},{}", csv_field(c.baseline_folder),
                           fmt::join(c.paired_folds, ";"), fmt::join(differences, ";"),
                           csv_number(c.test.mean_difference, 4), csv_number(c.test.ci_low, 4),
                           csv_number(c.test.ci_high, 4), csv_precise(c.test.t), c.test.n - 1,
                           csv_precise(c.test.p_value));
    }
    std::vector<std::string> usage;
    for (const double u : r.cluster_usage) usage.push_back(csv_number(u, 4));
    const std::string total = r.total < 0 ? "" : std::to_string(r.total);
    const std::string ying = r.ying ? fmt::format("{:.2f}", r.ying->mean) : "";
    const std::string errica_mean = r.errica ? fmt::format("{:.1f}", r.errica->mean) : "";
    const std::string errica_std = r.errica && r.errica->has_std ? fmt::format("{:.1f}", r.errica->std) : "";
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(r.dataset),
                       csv_field(r.variant), csv_field(r.protocol), r.optimistic ? "yes" : "no",
                       r.summarised ? "yes" : "no", mean, std, csv_field(r.measure), r.completed, r.failed, total,
                       ying, errica_mean, errica_std, csv_field(r.experiment), csv_field(r.folder), population, paired,
                       fmt::join(usage, ";"));
  }
  return out;
}

PairedComparison compare_paired(const ReportRow& experiment, const ReportRow& baseline) {
  PairedComparison c;
  c.experiment = row_name(experiment);
  c.baseline = row_name(baseline);
  c.experiment_folder = experiment.folder;
  c.baseline_folder = baseline.folder;
  const std::string what = fmt::format("cannot compare {} with {} fold by fold", c.experiment, c.baseline);
  for (const ReportRow* r : {&experiment, &baseline}) {
    if (!r->summarised) {
      throw InputError(fmt::format("{}: {} has no summary.h5; `diffpool run <experiment.yaml>` with its experiment "
                                   "file rebuilds it",
                                   what, r->folder));
    }
    if (!r->has_split_seed) {
      throw InputError(fmt::format("{}: the summary of {} predates stored split seeds, so its outer folds cannot be "
                                   "checked; `diffpool run <experiment.yaml>` with its experiment file rebuilds it "
                                   "(it reruns nothing that is finished)",
                                   what, r->folder));
    }
  }
  // Everything that decides the outer test folds must be equal: name every difference at once.
  std::vector<std::string> differences;
  if (experiment.dataset != baseline.dataset) {
    differences.push_back(fmt::format("dataset {} vs {}", experiment.dataset, baseline.dataset));
  }
  if (experiment.folds != baseline.folds) {
    differences.push_back(fmt::format("evaluation.folds {} vs {}", experiment.folds, baseline.folds));
  }
  if (experiment.split_seed != baseline.split_seed) {
    differences.push_back(fmt::format("evaluation.split_seed {} vs {}", experiment.split_seed, baseline.split_seed));
  }
  std::map<int, const FoldWinner*> baseline_folds;
  for (const FoldWinner& w : baseline.winners) baseline_folds[w.fold] = &w;
  std::set<int> experiment_folds;
  for (const FoldWinner& w : experiment.winners) {
    experiment_folds.insert(w.fold);
    const auto other = baseline_folds.find(w.fold);
    if (other == baseline_folds.end()) {
      c.unpaired_folds.push_back(w.fold);
      continue;
    }
    if (differences.empty() && !w.test_split.empty() && !other->second->test_split.empty() &&
        w.test_split != other->second->test_split) {
      differences.push_back(fmt::format("the test graphs of fold {} (fingerprint {} vs {})", w.fold, w.test_split,
                                        other->second->test_split));
    }
    c.paired_folds.push_back(w.fold);
    c.experiment_pct.push_back(100.0 * w.test_mean);
    c.baseline_pct.push_back(100.0 * other->second->test_mean);
  }
  if (!differences.empty()) {
    throw InputError(fmt::format("{}: they were not evaluated on the same splits: {} (first vs second)", what,
                                 fmt::join(differences, "; ")));
  }
  for (const auto& [fold, winner] : baseline_folds)
    if (!experiment_folds.count(fold)) c.unpaired_folds.push_back(fold);
  std::sort(c.unpaired_folds.begin(), c.unpaired_folds.end());
  if (c.paired_folds.size() < 2) {
    throw InputError(fmt::format("{}: a paired comparison needs at least 2 outer folds that both have finished, "
                                 "they share {}",
                                 what, c.paired_folds.size()));
  }
  c.dataset = experiment.dataset;
  c.folds = experiment.folds;
  c.split_seed = experiment.split_seed;
  c.test = paired_t_test(c.experiment_pct, c.baseline_pct);
  return c;
}

std::string format_paired_comparison(const PairedComparison& c) {
  std::string out = fmt::format("{}\n  minus {}\n  {}, {} outer folds, split seed {}", c.experiment, c.baseline,
                                c.dataset, c.folds, c.split_seed);
  if (!c.unpaired_folds.empty()) {
    out += fmt::format("; paired on {} folds (not finished in both: fold{} {})", c.paired_folds.size(),
                       c.unpaired_folds.size() == 1 ? "" : "s", fmt::join(c.unpaired_folds, ", "));
  }
  out += "\n";
  std::string folds = fmt::format("  {:<12}", "fold"), ours = fmt::format("  {:<12}", "experiment"),
              theirs = fmt::format("  {:<12}", "baseline"), difference = fmt::format("  {:<12}", "difference");
  for (std::size_t i = 0; i < c.paired_folds.size(); ++i) {
    folds += fmt::format("{:>8}", c.paired_folds[i]);
    ours += fmt::format("{:>8.2f}", c.experiment_pct[i]);
    theirs += fmt::format("{:>8.2f}", c.baseline_pct[i]);
    difference += fmt::format("{:>8}", signed_points(c.experiment_pct[i] - c.baseline_pct[i]));
  }
  out += folds + "\n" + ours + "\n" + theirs + "\n" + difference + "\n";
  const PairedTTest& t = c.test;
  out += fmt::format(
      "  mean difference {} points, {:.0f}% CI [{}, {}] (t distribution, {} degrees of freedom); "
      "paired t-test t = {:.3f}, p = {} (two-sided)\n",
      signed_points(t.mean_difference), 100 * t.level, signed_points(t.ci_low), signed_points(t.ci_high), t.n - 1, t.t,
      p_value_text(t.p_value));
  return out;
}

std::string plots_command(const ReportOptions& options, const fs::path& folder, const fs::path& out_dir) {
  std::string command = fmt::format("PYTHONPATH={}${{PYTHONPATH:+:$PYTHONPATH}} MPLBACKEND=Agg {} -m diffpool_results.plots {} --out {}",
                                    shell_quote(python_package_dir()), shell_quote(python_interpreter(options)),
                                    shell_quote(folder.string()), shell_quote(out_dir.string()));
  if (options.graph >= 0) command += fmt::format(" --graph {}", options.graph);
  return command;
}

int run_report(const ReportOptions& options) { return run_report(options, std::cout, std::cerr); }

int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err) {
  constexpr int kInput = 2;  // bad input, as `diffpool run` exits on it
  if (options.results.empty()) {
    err << "diffpool report: give at least one experiment output folder (RESULTS)\n";
    return kInput;
  }
  int status = 0;
  std::vector<ReportRow> rows;
  std::vector<std::string> notes;
  // The baseline of --compare is a row of the table too (once).
  std::vector<std::string> folders = options.results;
  if (!options.compare.empty() && std::find(folders.begin(), folders.end(), options.compare) == folders.end()) {
    folders.push_back(options.compare);
  }
  bool baseline_read = false;
  for (const std::string& folder : folders) {
    try {
      ReportRow row = read_report_row(folder);
      if (!row.summarised) {
        status = std::max(status, 1);
        notes.push_back(fmt::format(
            "{}: experiment '{}' has not been summarised ({} completed and {} failed job files, no summary.h5). "
            "`diffpool run <experiment.yaml>` with its experiment file reruns nothing that is finished and "
            "rebuilds the summary.",
            folder, row.experiment, row.completed, row.failed));
      }
      if (!row.damaged.empty()) {
        status = std::max(status, 1);
        notes.push_back(fmt::format("{}: {} damaged job file{} (truncated or corrupt), not counted as done; "
                                    "`diffpool run` with its experiment file reruns {}: {}",
                                    folder, row.damaged.size(), row.damaged.size() == 1 ? "" : "s",
                                    row.damaged.size() == 1 ? "that job" : "those jobs", fmt::join(row.damaged, ", ")));
      }
      std::vector<std::string> ties;
      for (const FoldWinner& w : row.winners)
        if (w.tied > 1) ties.push_back(fmt::format("fold {} ({} points)", w.fold, w.tied));
      if (!ties.empty()) {
        notes.push_back(fmt::format("{}: model selection was a tie (the same {} figure) in {}; broken by the {}",
                                    folder, row.protocol == "paper" ? "fold-averaged" : "mean validation",
                                    fmt::join(ties, ", "), kTieRule));
      }
      if (folder == options.compare) baseline_read = true;
      rows.push_back(std::move(row));
    } catch (const InputError& error) {
      status = kInput;
      err << "diffpool report: " << error.what() << "\n";
    } catch (const std::exception& error) {
      // A summary.h5 that cannot be read is named by the HDF5 message (damaged, locked, ...).
      status = std::max(status, 1);
      err << "diffpool report: " << escape_unprintable(error.what()) << "\n";
    }
  }
  if (rows.empty()) return status;

  out << format_report_table(rows);
  for (const std::string& note : notes) out << "\nnote: " << note << "\n";

  std::vector<PairedComparison> comparisons;
  if (baseline_read) {
    const auto baseline = std::find_if(rows.begin(), rows.end(), [&](const ReportRow& r) { return r.folder == options.compare; });
    std::string text;
    if (rows.size() == 1) {
      status = kInput;
      err << "diffpool report --compare: no experiment to compare with " << options.compare
          << ": give its folder as RESULTS beside --compare BASELINE\n";
    }
    for (const ReportRow& row : rows) {
      if (row.folder == options.compare) continue;
      try {
        comparisons.push_back(compare_paired(row, *baseline));
        text += "\n" + format_paired_comparison(comparisons.back());
      } catch (const InputError& error) {
        status = kInput;
        err << "diffpool report --compare: " << error.what() << "\n";
      }
    }
    if (!comparisons.empty()) {
      out << "\nPaired comparison with " << row_name(*baseline)
          << " (difference = experiment - baseline, in accuracy points, per outer fold: the\n"
             "winner's test accuracy under holdout and nested, the reported epoch's accuracy under the paper protocol)\n"
          << text;
    }
  }

  // A folder's report.csv is that experiment's own table: the table of several experiments (or a
  // comparison) goes only where --csv says, never over the first folder's.
  const bool own_table = options.results.size() == 1 && options.compare.empty();
  if (options.csv.empty() && !own_table) {
    out << "\nno CSV written: this table covers several experiments; --csv FILE writes it (a folder's report.csv "
           "holds that experiment's own table)\n";
  } else {
    const fs::path csv = options.csv.empty() ? fs::path(options.results.front()) / "report.csv" : fs::path(options.csv);
    try {
      write_text_file_atomically(csv, format_report_csv(rows, comparisons));
      out << "\nwrote " << csv.string() << "\n";
    } catch (const std::exception& error) {
      status = std::max(status, 1);
      err << "diffpool report: cannot write the CSV: " << error.what() << "\n";
    }
  }

  if (!options.plots.empty()) {
    // One folder: its plots go into DIR; several: into DIR/<folder name> (made unique).
    std::set<std::string> used;
    for (const ReportRow& row : rows) {
      fs::path out_dir = options.plots;
      if (rows.size() > 1) {
        std::string name = fs::path(row.folder).lexically_normal().filename().string();
        if (name.empty()) name = fs::path(row.folder).lexically_normal().parent_path().filename().string();
        if (name.empty() || name == "." || name == "..") name = "experiment";
        std::string unique = name;
        for (int i = 2; used.count(unique); ++i) unique = fmt::format("{}-{}", name, i);
        used.insert(unique);
        out_dir /= unique;
      }
      const std::string command = plots_command(options, row.folder, out_dir);
      const auto [code, output] = run_shell(command);
      if (code != 0) {
        status = std::max(status, 1);
        err << fmt::format("diffpool report: the plots of {} failed (exit status {}).\ncommand: {}\n{}", row.folder,
                           code, command, output);
        if (!output.empty() && output.back() != '\n') err << "\n";
      } else {
        out << output;
      }
    }
  }
  return status;
}

}  // namespace diffpool
