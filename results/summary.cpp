// summary.h5 and summary.csv of an experiment. The layout (results/README.md, "Summary"):
//
//   /               attributes: format = "diffpool-summary", schema_version, name, experiment_id,
//                   protocol, dataset, variant, folds, repeats, jobs_total, jobs_completed,
//                   jobs_failed, accuracy_mean, accuracy_std, accuracy_std_population,
//                   accuracy_label, optimistic (0/1), split_seed (uint64), tie_rule
//   /environment    attributes version, git_revision, backend, ranks, updated_at; dataset hosts (strings)
//   /points/<column>     one entry per sweep point: point, label, jobs, validation_mean, validation_std,
//                        test_mean, test_std, paper_best_epoch, paper_accuracy, paper_std
//   /winners/<column>    one entry per outer fold: fold, point, validation, test_mean, test_std, runs,
//                        tied, test_split
//   /failures/<column>   one entry per failed job: job_id, point, fold, repeat, phase, reason
//   /jobs/<column>       one entry per completed job: job_id, phase, point, fold, repeat, epochs,
//                        best_epoch, validation_accuracy, test_accuracy, test_split, host,
//                        git_revision, seconds, dataset_digest, cluster_usage_level<l> (one per
//                        pooling level); and the validation curves of all jobs end to end in
//                        /jobs/validation_curves (float64, deflate), job i's from
//                        curve_offsets[i] to curve_offsets[i + 1]
//
// Accuracies are fractions (0.625 = 62.5 %); the CSV gives percentages (columns named *_pct).
// A figure that does not apply is NaN (an empty cell in the CSV). Summaries written before
// accuracy_std_population, split_seed, tie_rule, winners/tied, winners/test_split,
// jobs/dataset_digest and jobs/cluster_usage_level<l> existed read back with NaN, no split seed,
// a tie count of 1, "" and no usage (same schema version: the additions are optional for
// readers); those written before /jobs read back without jobs.
// Columns are plain 1-D datasets (no compound types), so h5py, h5dump and any HDF5 reader see
// them as ordinary arrays.
#include "results/summary.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>

#include "results/atomic_file.hpp"
#include "results/hdf5.hpp"

namespace diffpool {

namespace {

using hdf5::File;
using hdf5::Group;

constexpr const char* kFormat = "diffpool-summary";
constexpr int64_t kSchemaVersion = kSummarySchemaVersion;

// A table stored as one 1-D dataset per column; every column has `rows` entries.
class ColumnWriter {
 public:
  ColumnWriter(File& file, const char* group, std::size_t rows) : group_(file.create_group(group)), rows_(rows) {
    group_.set_attribute("rows", static_cast<int64_t>(rows));
  }
  template <class Row, class Value>
  void numbers(const char* name, const std::vector<Row>& rows, Value Row::*member) {
    using Stored = std::conditional_t<std::is_floating_point_v<Value>, double, int64_t>;
    std::vector<Stored> values;
    values.reserve(rows_);
    for (const Row& row : rows) values.push_back(static_cast<Stored>(row.*member));
    group_.write_dataset(name, values);
  }
  template <class Row>
  void strings(const char* name, const std::vector<Row>& rows, std::string Row::*member) {
    std::vector<std::string> values;
    values.reserve(rows_);
    for (const Row& row : rows) values.push_back(row.*member);
    group_.write_strings(name, values);
  }
  // The writer writes every column; "optional" only tells the reader that older files lack it.
  template <class Row>
  void optional_strings(const char* name, const std::vector<Row>& rows, std::string Row::*member) {
    strings(name, rows, member);
  }

 private:
  Group group_;
  std::size_t rows_;
};

class ColumnReader {
 public:
  ColumnReader(const File& file, const char* group) : file_(file), group_(file.open_group(group)), name_(group) {
    rows_ = static_cast<std::size_t>(group_.read_attribute<int64_t>("rows"));
  }
  std::size_t rows() const { return rows_; }
  template <class Row, class Value>
  void numbers(const char* name, std::vector<Row>& rows, Value Row::*member) const {
    using Stored = std::conditional_t<std::is_floating_point_v<Value>, double, int64_t>;
    const std::vector<Stored> values = group_.read_dataset<Stored>(checked(name)).values;
    check_size(name, values.size());
    for (std::size_t i = 0; i < rows_; ++i) rows[i].*member = static_cast<Value>(values[i]);
  }
  template <class Row>
  void strings(const char* name, std::vector<Row>& rows, std::string Row::*member) const {
    const std::vector<std::string> values = group_.read_strings(checked(name));
    check_size(name, values.size());
    for (std::size_t i = 0; i < rows_; ++i) rows[i].*member = values[i];
  }
  // A column of its own length (not one entry per row).
  std::vector<int64_t> numbers_of(const char* name, std::size_t size) const {
    std::vector<int64_t> values = group_.read_dataset<int64_t>(checked(name)).values;
    if (values.size() != size) {
      throw InputError(fmt::format("summary file '{}': /{}/{} has {} entries, expected {}", file_.path().string(),
                                   name_, name, values.size(), size));
    }
    return values;
  }
  // Columns added after schema version 1 was first written: absent in older files, where the
  // rows keep their defaults.
  template <class Row, class Value>
  void optional_numbers(const char* name, std::vector<Row>& rows, Value Row::*member) const {
    if (group_.exists(name)) numbers(name, rows, member);
  }
  template <class Row>
  void optional_strings(const char* name, std::vector<Row>& rows, std::string Row::*member) const {
    if (group_.exists(name)) strings(name, rows, member);
  }

 private:
  const char* checked(const char* name) const {
    if (!group_.exists(name)) {
      throw InputError(fmt::format("summary file '{}': /{}/{} is missing", file_.path().string(), name_, name));
    }
    return name;
  }
  void check_size(const char* name, std::size_t size) const {
    if (size != rows_) {
      throw InputError(fmt::format("summary file '{}': /{}/{} has {} entries, the table has {} rows",
                                   file_.path().string(), name_, name, size, rows_));
    }
  }
  const File& file_;
  Group group_;
  std::string name_;
  std::size_t rows_ = 0;
};

// The per-job columns of /jobs, for the writer (ColumnWriter, const rows) and the reader
// (ColumnReader): one list, so the two cannot drift apart.
template <class Table, class Rows>
void job_columns(Table& table, Rows& rows) {
  table.strings("job_id", rows, &SummaryJob::job_id);
  table.strings("phase", rows, &SummaryJob::phase);
  table.numbers("point", rows, &SummaryJob::point);
  table.numbers("fold", rows, &SummaryJob::fold);
  table.numbers("repeat", rows, &SummaryJob::repeat);
  table.numbers("epochs", rows, &SummaryJob::epochs);
  table.numbers("best_epoch", rows, &SummaryJob::best_epoch);
  table.numbers("validation_accuracy", rows, &SummaryJob::validation_accuracy);
  table.numbers("test_accuracy", rows, &SummaryJob::test_accuracy);
  table.strings("test_split", rows, &SummaryJob::test_split);
  table.strings("host", rows, &SummaryJob::host);
  table.strings("git_revision", rows, &SummaryJob::git_revision);
  table.numbers("seconds", rows, &SummaryJob::seconds);
  table.optional_strings("dataset_digest", rows, &SummaryJob::dataset_digest);
}

void write_summary_file(File& file, const ExperimentSummary& s) {
  file.set_attribute("format", kFormat);
  file.set_attribute("schema_version", kSchemaVersion);
  file.set_attribute("name", s.name);
  file.set_attribute("experiment_id", s.experiment_id);
  file.set_attribute("protocol", s.protocol);
  file.set_attribute("dataset", s.dataset);
  file.set_attribute("variant", s.variant);
  file.set_attribute("folds", s.folds);
  file.set_attribute("repeats", s.repeats);
  file.set_attribute("jobs_total", s.jobs_total);
  file.set_attribute("jobs_completed", s.jobs_completed);
  file.set_attribute("jobs_failed", s.jobs_failed);
  file.set_attribute("accuracy_mean", s.accuracy_mean);
  file.set_attribute("accuracy_std", s.accuracy_std);
  file.set_attribute("accuracy_std_population", s.accuracy_std_population);
  file.set_attribute("accuracy_label", s.accuracy_label);
  file.set_attribute("optimistic", static_cast<int64_t>(s.optimistic ? 1 : 0));
  if (s.has_split_seed) file.set_unsigned_attribute("split_seed", s.split_seed);
  file.set_attribute("tie_rule", kTieRule);

  Group environment = file.create_group("environment");
  environment.set_attribute("version", s.version);
  environment.set_attribute("git_revision", s.git_revision);
  environment.set_attribute("backend", s.backend);
  environment.set_attribute("ranks", s.ranks);
  environment.set_attribute("updated_at", s.updated_at);
  environment.write_strings("hosts", s.hosts);

  ColumnWriter points(file, "points", s.points.size());
  points.numbers("point", s.points, &PointSummary::point);
  points.strings("label", s.points, &PointSummary::label);
  points.numbers("jobs", s.points, &PointSummary::jobs);
  points.numbers("validation_mean", s.points, &PointSummary::validation_mean);
  points.numbers("validation_std", s.points, &PointSummary::validation_std);
  points.numbers("test_mean", s.points, &PointSummary::test_mean);
  points.numbers("test_std", s.points, &PointSummary::test_std);
  points.numbers("paper_best_epoch", s.points, &PointSummary::paper_best_epoch);
  points.numbers("paper_accuracy", s.points, &PointSummary::paper_accuracy);
  points.numbers("paper_std", s.points, &PointSummary::paper_std);

  ColumnWriter winners(file, "winners", s.winners.size());
  winners.numbers("fold", s.winners, &FoldWinner::fold);
  winners.numbers("point", s.winners, &FoldWinner::point);
  winners.numbers("validation", s.winners, &FoldWinner::validation);
  winners.numbers("test_mean", s.winners, &FoldWinner::test_mean);
  winners.numbers("test_std", s.winners, &FoldWinner::test_std);
  winners.numbers("runs", s.winners, &FoldWinner::runs);
  winners.numbers("tied", s.winners, &FoldWinner::tied);
  winners.strings("test_split", s.winners, &FoldWinner::test_split);

  ColumnWriter failures(file, "failures", s.failures.size());
  failures.strings("job_id", s.failures, &FailedJob::job_id);
  failures.numbers("point", s.failures, &FailedJob::point);
  failures.numbers("fold", s.failures, &FailedJob::fold);
  failures.numbers("repeat", s.failures, &FailedJob::repeat);
  failures.strings("phase", s.failures, &FailedJob::phase);
  failures.strings("reason", s.failures, &FailedJob::reason);

  ColumnWriter jobs(file, "jobs", s.jobs.size());
  job_columns(jobs, s.jobs);
  // /jobs/cluster_usage_level<l>: one column per pooling level, NaN for a job without that level.
  std::size_t levels = 0;
  for (const SummaryJob& j : s.jobs) levels = std::max(levels, j.cluster_usage.size());
  for (std::size_t l = 0; l < levels; ++l) {
    std::vector<double> values;
    for (const SummaryJob& j : s.jobs) values.push_back(l < j.cluster_usage.size() ? j.cluster_usage[l] : kNotApplicable);
    file.open_group("jobs").write_dataset(fmt::format("cluster_usage_level{}", l), values);
  }
  std::vector<int64_t> offsets{0};
  std::vector<double> curves;
  for (const SummaryJob& j : s.jobs) {
    curves.insert(curves.end(), j.validation_curve.begin(), j.validation_curve.end());
    offsets.push_back(static_cast<int64_t>(curves.size()));
  }
  Group jobs_group = file.open_group("jobs");
  jobs_group.write_dataset("curve_offsets", offsets);
  jobs_group.write_dataset("validation_curves", curves, hdf5::Dimensions{curves.size()},
                           hdf5::DatasetOptions::compressed());
}

ExperimentSummary read_summary_file(const File& file) {
  const std::string path = file.path().string();
  if (!file.has_attribute("format") || file.read_attribute<std::string>("format") != kFormat) {
    throw InputError(fmt::format("'{}' is not a diffpool summary file (its root attribute 'format' is not '{}')",
                                 path, kFormat));
  }
  const auto version = file.read_attribute<int64_t>("schema_version");
  if (version != kSchemaVersion) {
    throw InputError(fmt::format("summary file '{}' has schema version {}; this build reads version {}", path,
                                 version, kSchemaVersion));
  }
  ExperimentSummary s;
  s.name = file.read_attribute<std::string>("name");
  s.experiment_id = file.read_attribute<std::string>("experiment_id");
  s.protocol = file.read_attribute<std::string>("protocol");
  s.dataset = file.read_attribute<std::string>("dataset");
  s.variant = file.read_attribute<std::string>("variant");
  s.folds = static_cast<int>(file.read_attribute<int64_t>("folds"));
  s.repeats = static_cast<int>(file.read_attribute<int64_t>("repeats"));
  s.jobs_total = file.read_attribute<int64_t>("jobs_total");
  s.jobs_completed = file.read_attribute<int64_t>("jobs_completed");
  s.jobs_failed = file.read_attribute<int64_t>("jobs_failed");
  s.accuracy_mean = file.read_attribute<double>("accuracy_mean");
  s.accuracy_std = file.read_attribute<double>("accuracy_std");
  if (file.has_attribute("accuracy_std_population")) {
    s.accuracy_std_population = file.read_attribute<double>("accuracy_std_population");
  }
  s.has_split_seed = file.has_attribute("split_seed");
  if (s.has_split_seed) s.split_seed = file.read_attribute<uint64_t>("split_seed");
  s.accuracy_label = file.read_attribute<std::string>("accuracy_label");
  s.optimistic = file.read_attribute<int64_t>("optimistic") != 0;

  const Group environment = file.open_group("environment");
  s.version = environment.read_attribute<std::string>("version");
  s.git_revision = environment.read_attribute<std::string>("git_revision");
  s.backend = environment.read_attribute<std::string>("backend");
  s.ranks = static_cast<int>(environment.read_attribute<int64_t>("ranks"));
  s.updated_at = environment.read_attribute<std::string>("updated_at");
  s.hosts = environment.read_strings("hosts");

  const ColumnReader points(file, "points");
  s.points.resize(points.rows());
  points.numbers("point", s.points, &PointSummary::point);
  points.strings("label", s.points, &PointSummary::label);
  points.numbers("jobs", s.points, &PointSummary::jobs);
  points.numbers("validation_mean", s.points, &PointSummary::validation_mean);
  points.numbers("validation_std", s.points, &PointSummary::validation_std);
  points.numbers("test_mean", s.points, &PointSummary::test_mean);
  points.numbers("test_std", s.points, &PointSummary::test_std);
  points.numbers("paper_best_epoch", s.points, &PointSummary::paper_best_epoch);
  points.numbers("paper_accuracy", s.points, &PointSummary::paper_accuracy);
  points.numbers("paper_std", s.points, &PointSummary::paper_std);

  const ColumnReader winners(file, "winners");
  s.winners.resize(winners.rows());
  winners.numbers("fold", s.winners, &FoldWinner::fold);
  winners.numbers("point", s.winners, &FoldWinner::point);
  winners.numbers("validation", s.winners, &FoldWinner::validation);
  winners.numbers("test_mean", s.winners, &FoldWinner::test_mean);
  winners.numbers("test_std", s.winners, &FoldWinner::test_std);
  winners.numbers("runs", s.winners, &FoldWinner::runs);
  winners.optional_numbers("tied", s.winners, &FoldWinner::tied);
  winners.optional_strings("test_split", s.winners, &FoldWinner::test_split);

  const ColumnReader failures(file, "failures");
  s.failures.resize(failures.rows());
  failures.strings("job_id", s.failures, &FailedJob::job_id);
  failures.numbers("point", s.failures, &FailedJob::point);
  failures.numbers("fold", s.failures, &FailedJob::fold);
  failures.numbers("repeat", s.failures, &FailedJob::repeat);
  failures.strings("phase", s.failures, &FailedJob::phase);
  failures.strings("reason", s.failures, &FailedJob::reason);

  if (file.exists("jobs")) {
    const ColumnReader jobs(file, "jobs");
    s.jobs.resize(jobs.rows());
    job_columns(jobs, s.jobs);
    const Group group = file.open_group("jobs");
    // Absent in summaries of models without pooling and in those written before it existed.
    for (std::size_t l = 0; group.exists(fmt::format("cluster_usage_level{}", l)); ++l) {
      const std::string name = fmt::format("cluster_usage_level{}", l);
      const std::vector<double> values = group.read_dataset<double>(name).values;
      if (values.size() != s.jobs.size()) {
        throw InputError(fmt::format("summary file '{}': /jobs/{} has {} entries, the table has {} rows", path, name,
                                     values.size(), s.jobs.size()));
      }
      for (std::size_t i = 0; i < s.jobs.size(); ++i) s.jobs[i].cluster_usage.push_back(values[i]);
    }
    // A job with fewer pooling levels than the table's columns (a sweep over pool_levels, or a
    // GraphSAGE baseline) has NaN there: its own levels only.
    for (SummaryJob& j : s.jobs)
      while (!j.cluster_usage.empty() && std::isnan(j.cluster_usage.back())) j.cluster_usage.pop_back();
    const std::vector<int64_t> offsets = jobs.numbers_of("curve_offsets", s.jobs.size() + 1);
    const std::vector<double> curves = group.read_dataset<double>("validation_curves").values;
    for (std::size_t i = 0; i < s.jobs.size(); ++i) {
      if (offsets[i] < 0 || offsets[i] > offsets[i + 1] || offsets[i + 1] > static_cast<int64_t>(curves.size())) {
        throw InputError(fmt::format("summary file '{}': /jobs/curve_offsets[{}..{}] = {}..{} is not a range of "
                                     "/jobs/validation_curves ({} values)",
                                     path, i, i + 1, offsets[i], offsets[i + 1], curves.size()));
      }
      s.jobs[i].validation_curve.assign(curves.begin() + offsets[i], curves.begin() + offsets[i + 1]);
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// CSV.

// Percent with enough digits to be exact for any fold count; "" for NaN.
std::string percent(double fraction) {
  if (!std::isfinite(fraction)) return "";
  return fmt::format("{:.4f}", 100.0 * fraction);
}

}  // namespace

std::vector<double> mean_cluster_usage(const std::vector<SummaryJob>& jobs,
                                       const std::function<bool(const SummaryJob&)>& counts) {
  std::vector<double> sum;
  std::vector<int64_t> count;
  for (const SummaryJob& j : jobs) {
    if (!counts(j)) continue;
    if (j.cluster_usage.size() > sum.size()) {
      sum.resize(j.cluster_usage.size(), 0.0);
      count.resize(j.cluster_usage.size(), 0);
    }
    for (std::size_t l = 0; l < j.cluster_usage.size(); ++l) {
      if (std::isnan(j.cluster_usage[l])) continue;
      sum[l] += j.cluster_usage[l];
      ++count[l];
    }
  }
  std::vector<double> usage;
  for (std::size_t l = 0; l < sum.size(); ++l)
    usage.push_back(count[l] > 0 ? sum[l] / static_cast<double>(count[l]) : kNotApplicable);
  return usage;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

std::string format_summary_csv(const ExperimentSummary& s) {
  // Columns after "optimistic" were added later, at the end, so that readers by position keep
  // working: fold, tied_points, tie_break (winner rows) and accuracy_std_population_pct (final row).
  std::string out =
      "experiment,dataset,variant,protocol,row,point,label,jobs,validation_mean_pct,validation_std_pct,"
      "test_mean_pct,test_std_pct,paper_best_epoch,paper_accuracy_pct,paper_std_pct,accuracy_mean_pct,"
      "accuracy_std_pct,measure,optimistic,fold,tied_points,tie_break,accuracy_std_population_pct\n";
  const std::string head = fmt::format("{},{},{},{}", csv_field(s.name), csv_field(s.dataset), csv_field(s.variant),
                                       csv_field(s.protocol));
  const char* optimistic = s.optimistic ? "yes" : "no";
  for (const PointSummary& p : s.points) {
    out += fmt::format("{},point,{},{},{},{},{},{},{},{},{},{},,,,{},,,,\n", head, p.point, csv_field(p.label), p.jobs,
                       percent(p.validation_mean), percent(p.validation_std), percent(p.test_mean),
                       percent(p.test_std), p.paper_best_epoch > 0 ? std::to_string(p.paper_best_epoch) : "",
                       percent(p.paper_accuracy), percent(p.paper_std), optimistic);
  }
  for (const FoldWinner& w : s.winners) {
    std::string label;
    for (const PointSummary& p : s.points)
      if (p.point == w.point) label = p.label;
    out += fmt::format("{},winner,{},{},{},{},,{},{},,,,,,,{},{},{},{},\n", head, w.point, csv_field(label), w.runs,
                       percent(w.validation), percent(w.test_mean), percent(w.test_std), optimistic, w.fold, w.tied,
                       w.tied > 1 ? csv_field(kTieRule) : "");
  }
  out += fmt::format("{},final,,,{},,,,,,,,{},{},{},{},,,,{}\n", head, s.jobs_completed, percent(s.accuracy_mean),
                     percent(s.accuracy_std), csv_field(s.accuracy_label), optimistic,
                     percent(s.accuracy_std_population));
  return out;
}

std::string split_fingerprint(const std::vector<int64_t>& graphs) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a, 64 bits
  for (const int64_t g : graphs) {
    const auto value = static_cast<uint64_t>(g);
    for (int byte = 0; byte < 8; ++byte) {
      hash ^= (value >> (8 * byte)) & 0xffU;
      hash *= 0x100000001b3ULL;
    }
  }
  return fmt::format("{:016x}", hash);
}

void write_summary(const std::filesystem::path& h5_path, const ExperimentSummary& summary) {
  const std::scoped_lock lock(hdf5::library_mutex());
  hdf5::write_file_atomically(h5_path, [&](File& file) { write_summary_file(file, summary); });
}

ExperimentSummary read_summary(const std::filesystem::path& h5_path) {
  const std::scoped_lock lock(hdf5::library_mutex());
  const File file = File::open_read_only(h5_path);
  return read_summary_file(file);
}

void write_summary_csv(const std::filesystem::path& csv_path, const ExperimentSummary& summary) {
  write_text_file_atomically(csv_path, format_summary_csv(summary));
}

}  // namespace diffpool
