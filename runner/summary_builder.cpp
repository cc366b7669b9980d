#include "runner/summary_builder.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <string_view>
#include <tuple>

#include "engine/core/error.hpp"
#include "results/hdf5.hpp"
#include "results/job_record.hpp"
#include "runner/build_info.hpp"
#include "runner/protocol/protocol.hpp"

namespace diffpool {

namespace fs = std::filesystem;

namespace {

std::vector<FailedJob> read_failures(const OutputLayout& layout) {
  std::vector<FailedJob> failures;
  if (!fs::exists(layout.failed())) return failures;
  for (const auto& entry : fs::directory_iterator(layout.failed())) {
    if (entry.path().extension() != ".txt") continue;
    FailedJob f;
    f.job_id = entry.path().stem().string();
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      const auto space = line.find(' ');
      const std::string key = line.substr(0, space), value = space == std::string::npos ? "" : line.substr(space + 1);
      if (key == "phase") f.phase = value;
      else if (key == "point") f.point = std::strtoll(value.c_str(), nullptr, 10);
      else if (key == "fold") f.fold = std::atoi(value.c_str());
      else if (key == "repeat") f.repeat = std::atoi(value.c_str());
      else if (key == "reason") f.reason = value;
    }
    failures.push_back(std::move(f));
  }
  std::sort(failures.begin(), failures.end(), [](const FailedJob& a, const FailedJob& b) { return a.job_id < b.job_id; });
  return failures;
}

// What the summary keeps of a completed job's record.
SummaryJob summary_job(const JobRecord& r) {
  SummaryJob j;
  j.job_id = r.job_id;
  j.phase = r.phase;
  j.point = r.point;
  j.fold = r.fold;
  j.repeat = r.repeat;
  j.epochs = static_cast<int64_t>(r.epochs.size());
  j.best_epoch = r.best_epoch;
  j.validation_accuracy = r.best_validation.accuracy;
  j.test_accuracy = r.has_test ? r.test_metrics.accuracy : kNotApplicable;
  if (!r.test.empty()) j.test_split = split_fingerprint(r.test);
  j.host = r.host;
  j.git_revision = r.git_revision;
  j.dataset_digest = r.dataset_digest;
  j.cluster_usage = r.has_test ? r.test_metrics.cluster_usage : r.best_validation.cluster_usage;
  for (const EpochMetrics& m : r.epochs) {
    j.validation_curve.push_back(m.validation ? m.validation->accuracy : std::nan(""));
    j.seconds += m.train_seconds + m.eval_seconds;
  }
  return j;
}

// The typed view of a summary's job row, as the protocol modules take it.
FinishedJob finished_job(const SummaryJob& r) {
  FinishedJob j;
  j.phase = parse_phase(r.phase);
  j.point = r.point;
  j.fold = r.fold;
  j.repeat = r.repeat;
  j.validation_accuracy = r.validation_accuracy;
  j.has_test = !std::isnan(r.test_accuracy);
  j.test_accuracy = j.has_test ? r.test_accuracy : 0;
  j.validation_curve = r.validation_curve;
  j.test_split = r.test_split;
  return j;
}

// A fixed order (the statistics sum in it): fold, point, phase name, repeat.
bool job_order(const SummaryJob& a, const SummaryJob& b) {
  return std::tie(a.fold, a.point, a.phase, a.repeat) < std::tie(b.fold, b.point, b.phase, b.repeat);
}

// "12.34 +- 1.23" in percent, "-" where the figure does not apply (NaN), padded to `width`.
std::string percent_pair(double mean, double std, int mean_width) {
  if (std::isnan(mean)) return fmt::format("{:>{}}", "-", mean_width + 9);
  return fmt::format("{:>{}.2f} +- {:>5.2f}", 100 * mean, mean_width, 100 * std);
}

}  // namespace

ExperimentSummary summary_of_plan(const ExperimentPlan& plan, int ranks, const std::string& backend) {
  const ExperimentConfig& base = plan.base;
  ExperimentSummary s;
  s.name = base.name;
  s.experiment_id = plan.experiment_id;
  s.protocol = protocol_name(base.evaluation.protocol);
  s.dataset = base.dataset.name;
  s.variant = variant_name(base.model.variant);
  s.folds = base.evaluation.folds;
  s.split_seed = base.evaluation.split_seed;
  s.has_split_seed = true;
  s.repeats = base.evaluation.repeats;
  s.backend = backend;
  s.ranks = ranks;
  s.version = build_version();
  s.git_revision = build_git_revision();
  s.updated_at = iso_time_now();
  return s;
}

ExperimentSummary build_summary(const ExperimentPlan& plan, const OutputLayout& layout, int ranks, const std::string& backend) {
  ExperimentSummary s = summary_of_plan(plan, ranks, backend);
  std::vector<SummaryJob> jobs;
  if (fs::exists(layout.jobs()))
    for (const auto& entry : fs::directory_iterator(layout.jobs())) {
      if (entry.path().extension() != ".h5") continue;
      // A damaged job file is no finished job: named here, never counted; a rerun of the
      // experiment runs the job again.
      StoredFile state = StoredFile::missing;
      const std::optional<JobRecord> record = read_intact_job_record(entry.path(), &state);
      if (state == StoredFile::damaged) {
        fmt::print(stderr, "warning: job file {} is damaged ({}): not counted as done; running the experiment again "
                           "reruns the job\n",
                   escape_unprintable(entry.path().string()), escape_unprintable(damage_reason(entry.path())));
        continue;
      }
      if (!record) continue;  // deleted since the folder was listed
      const JobRecord& r = *record;
      if (r.experiment_id != plan.experiment_id || parse_job_status(r.status) != JobStatus::completed) continue;
      jobs.push_back(summary_job(r));
    }
  s.failures = read_failures(layout);
  summarise_jobs(plan, std::move(jobs), &s);
  // The figures use every job file of the experiment in the folder, whichever run wrote it (the
  // tasks of a job array run some folds each); the counts are those of the folds this run covers,
  // so that "completed of total" and the exit status speak of this run's own jobs.
  s.jobs_completed = static_cast<int64_t>(std::count_if(s.jobs.begin(), s.jobs.end(), [&](const SummaryJob& j) {
    return std::find(plan.folds.begin(), plan.folds.end(), j.fold) != plan.folds.end();
  }));
  return s;
}

void summarise_jobs(const ExperimentPlan& plan, std::vector<SummaryJob> jobs, ExperimentSummary* s) {
  std::sort(jobs.begin(), jobs.end(), job_order);
  std::set<std::string> hosts;
  std::vector<FinishedJob> finished;
  finished.reserve(jobs.size());
  for (const SummaryJob& j : jobs) {
    hosts.insert(j.host);
    finished.push_back(finished_job(j));
  }
  s->hosts.assign(hosts.begin(), hosts.end());
  s->jobs = std::move(jobs);
  s->jobs_completed = static_cast<int64_t>(s->jobs.size());
  s->jobs_failed = static_cast<int64_t>(s->failures.size());
  s->jobs_total = static_cast<int64_t>(plan.jobs.size());
  s->points.clear();
  s->winners.clear();
  protocol_module(plan.base.evaluation.protocol).summarise(plan.points, finished, s);
}

std::string format_summary(const ExperimentSummary& s) {
  std::string out = fmt::format("experiment {} ({}): {} {} protocol, {} folds x {} repeats; {} of {} jobs completed, {} failed\n",
                                s.name, s.experiment_id, s.dataset, s.protocol, s.folds, s.repeats, s.jobs_completed,
                                s.jobs_total, s.jobs_failed);
  const bool paper = s.protocol == "paper";
  out += fmt::format("  {:>5}  {:>5}  {:>17}  {:>17}{}  {}\n", "point", "jobs", "validation acc %", "test acc %",
                     paper ? fmt::format("  {:>24}", "paper figure % (epoch)") : "", "settings");
  for (const PointSummary& p : s.points) {
    out += fmt::format("  {:>5}  {:>5}  {}  {}", p.point, p.jobs, percent_pair(p.validation_mean, p.validation_std, 8),
                       percent_pair(p.test_mean, p.test_std, 8));
    if (paper) {
      out += fmt::format("  {} ({:>4})", percent_pair(p.paper_accuracy, p.paper_std, 10),
                         p.paper_best_epoch > 0 ? std::to_string(p.paper_best_epoch) : "-");
    }
    out += fmt::format("  {}\n", p.label.empty() ? "(no sweep)" : p.label);
  }
  // Cluster usage per pooling level, mean over each point's jobs that record it (their reported
  // evaluation): how many of its clusters the pooling uses (1: all it could).
  for (const PointSummary& p : s.points) {
    const std::vector<double> usage =
        mean_cluster_usage(s.jobs, [&](const SummaryJob& j) { return j.point == p.point; });
    if (std::all_of(usage.begin(), usage.end(), [](double u) { return std::isnan(u); })) continue;  // none recorded
    std::vector<std::string> levels;
    for (const double u : usage) levels.push_back(std::isnan(u) ? std::string("-") : fmt::format("{:.3f}", u));
    out += fmt::format("  point {}: cluster usage per pooling level {} (mean over its jobs' reported evaluations)\n",
                       p.point, fmt::join(levels, " / "));
  }
  for (const FoldWinner& w : s.winners) {
    out += fmt::format("  fold {:>2}: point {} (validation {:.2f}%), test {:.2f} +- {:.2f}% over {} run{}", w.fold, w.point,
                       100 * w.validation, 100 * w.test_mean, 100 * w.test_std, w.runs, w.runs == 1 ? "" : "s");
    if (w.tied > 1) out += fmt::format("; a tie of {} points, broken by the {}", w.tied, kTieRule);
    out += "\n";
  }
  if (std::isnan(s.accuracy_mean)) {
    out += fmt::format("  accuracy -: no completed job yet ({})\n", s.accuracy_label);
  } else {
    out += fmt::format("  accuracy {:.2f} +- {:.2f}% (sample std; population std {:.2f}){}: {}\n", 100 * s.accuracy_mean,
                       100 * s.accuracy_std, 100 * s.accuracy_std_population, s.optimistic ? " (OPTIMISTIC)" : "",
                       s.accuracy_label);
  }
  for (const FailedJob& f : s.failures)
    out += fmt::format("  failed job {} (point {}, fold {}, repeat {}, {}): {}\n", f.job_id, f.point, f.fold, f.repeat, f.phase,
                       f.reason);
  return out;
}

}  // namespace diffpool
