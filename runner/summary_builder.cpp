#include "runner/summary_builder.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "engine/core/error.hpp"
#include "results/hdf5.hpp"
#include "results/job_record.hpp"

namespace diffpool {

namespace fs = std::filesystem;

namespace {

struct Stats {
  double mean = 0, std = 0;
  int64_t n = 0;
};

// Mean and sample standard deviation (0 for a single value).
Stats stats(const std::vector<double>& v) {
  Stats s;
  s.n = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

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

}  // namespace

int64_t fold_winner(const std::vector<SelectionResult>& results, int fold) {
  std::map<int64_t, std::vector<double>> by_point;
  for (const SelectionResult& r : results)
    if (r.fold == fold) by_point[r.point].push_back(r.validation_accuracy);
  int64_t best = -1;
  double best_value = -1;
  for (const auto& [point, values] : by_point) {
    const double m = stats(values).mean;
    if (m > best_value) {
      best_value = m;
      best = point;
    }
  }
  return best;
}

ExperimentSummary build_summary(const ExperimentPlan& plan, const OutputLayout& layout, int ranks, const std::string& backend) {
  const ExperimentConfig& base = plan.base;
  ExperimentSummary s;
  s.name = base.name;
  s.experiment_id = plan.experiment_id;
  s.protocol = protocol_name(base.evaluation.protocol);
  s.dataset = base.dataset.name;
  s.variant = variant_name(base.model.variant);
  s.folds = base.evaluation.folds;
  s.repeats = base.evaluation.repeats;
  s.backend = backend;
  s.ranks = ranks;
  s.version = DIFFPOOL_VERSION;
  s.git_revision = DIFFPOOL_GIT_REVISION;
  s.updated_at = iso_time_now();

  std::vector<JobRecord> records;
  std::set<std::string> hosts;
  if (fs::exists(layout.jobs()))
    for (const auto& entry : fs::directory_iterator(layout.jobs())) {
      if (entry.path().extension() != ".h5" || !hdf5::is_readable_hdf5(entry.path())) continue;
      JobRecord r = read_job_record(entry.path(), false);
      if (r.experiment_id != plan.experiment_id || r.status != "completed") continue;
      hosts.insert(r.host);
      records.push_back(std::move(r));
    }
  std::sort(records.begin(), records.end(), [](const JobRecord& a, const JobRecord& b) {
    return std::tie(a.fold, a.point, a.phase, a.repeat) < std::tie(b.fold, b.point, b.phase, b.repeat);
  });
  s.hosts.assign(hosts.begin(), hosts.end());
  s.failures = read_failures(layout);
  // The figures use every job file of the experiment in the folder, whichever run wrote it (the
  // tasks of a job array run some folds each); the counts are those of the folds this run covers,
  // so that "completed of total" and the exit status speak of this run's own jobs.
  s.jobs_completed = static_cast<int64_t>(std::count_if(records.begin(), records.end(), [&](const JobRecord& r) {
    return std::find(plan.folds.begin(), plan.folds.end(), r.fold) != plan.folds.end();
  }));
  s.jobs_failed = static_cast<int64_t>(s.failures.size());
  s.jobs_total = static_cast<int64_t>(plan.jobs.size());

  const Protocol protocol = base.evaluation.protocol;
  const bool nested = protocol == Protocol::nested;
  // Per point: validation at the best epoch and test accuracy of train/select jobs.
  for (const SweepPoint& p : plan.points) {
    PointSummary ps;
    ps.point = p.index;
    ps.label = p.label;
    std::vector<double> val, test;
    std::vector<std::vector<double>> curves;
    for (const JobRecord& r : records) {
      if (r.point != p.index || r.phase == "retrain") continue;
      val.push_back(r.best_validation.accuracy);
      if (r.has_test) test.push_back(r.test_metrics.accuracy);
      std::vector<double> curve;
      for (const EpochMetrics& m : r.epochs) curve.push_back(m.validation ? m.validation->accuracy : std::nan(""));
      curves.push_back(std::move(curve));
    }
    if (nested && plan.points.size() == 1)  // no selection phase: the retrainings are the point's jobs
      for (const JobRecord& r : records) {
        val.push_back(r.best_validation.accuracy);
        if (r.has_test) test.push_back(r.test_metrics.accuracy);
      }
    ps.jobs = static_cast<int64_t>(std::max(val.size(), test.size()));
    const Stats v = stats(val), t = stats(test);
    ps.validation_mean = v.mean;
    ps.validation_std = v.std;
    ps.test_mean = t.mean;
    ps.test_std = t.std;
    if (protocol == Protocol::paper && !curves.empty()) {
      // The authors' figure: average the per-epoch accuracy curves of the folds, take the best
      // epoch of the average (selected on the evaluation data itself: optimistic).
      std::size_t longest = 0;
      for (const auto& c : curves) longest = std::max(longest, c.size());
      double best = -1;
      for (std::size_t e = 0; e < longest; ++e) {
        std::vector<double> at;
        for (const auto& c : curves)
          if (e < c.size() && !std::isnan(c[e])) at.push_back(c[e]);
        if (at.size() != curves.size()) continue;  // only epochs every fold reached
        const Stats st = stats(at);
        if (st.mean > best) {
          best = st.mean;
          ps.paper_best_epoch = static_cast<int>(e) + 1;
          ps.paper_accuracy = st.mean;
          ps.paper_std = st.std;
        }
      }
    }
    s.points.push_back(ps);
  }

  std::set<int> folds;
  for (const JobRecord& r : records) folds.insert(r.fold);
  std::vector<double> fold_figures;
  if (protocol == Protocol::paper) {
    const auto best = std::max_element(s.points.begin(), s.points.end(), [](const PointSummary& a, const PointSummary& b) {
      return a.paper_accuracy < b.paper_accuracy;
    });
    if (best != s.points.end() && best->jobs > 0) {
      s.accuracy_mean = best->paper_accuracy;
      s.accuracy_std = best->paper_std;
    }
    s.optimistic = true;
    s.accuracy_label = "paper protocol: best epoch of the fold-averaged test-fold accuracy curve (optimistic: selected on the test folds)";
  } else {
    std::vector<SelectionResult> selection;
    for (const JobRecord& r : records)
      if (r.phase != "retrain") selection.push_back({r.point, r.fold, r.best_validation.accuracy});
    for (int fold : folds) {
      FoldWinner w;
      w.fold = fold;
      std::vector<double> tests;
      if (nested) {
        w.point = plan.points.size() == 1 ? 0 : fold_winner(selection, fold);
        std::vector<double> vals;
        for (const JobRecord& r : records)
          if (r.fold == fold && r.phase == "retrain") {
            tests.push_back(r.test_metrics.accuracy);
            vals.push_back(r.best_validation.accuracy);
            w.point = r.point;
          }
        std::vector<double> sel;
        for (const SelectionResult& r : selection)
          if (r.fold == fold && r.point == w.point) sel.push_back(r.validation_accuracy);
        w.validation = stats(sel.empty() ? vals : sel).mean;
      } else {
        w.point = fold_winner(selection, fold);
        std::vector<double> vals;
        for (const JobRecord& r : records)
          if (r.fold == fold && r.point == w.point) {
            tests.push_back(r.test_metrics.accuracy);
            vals.push_back(r.best_validation.accuracy);
          }
        w.validation = stats(vals).mean;
      }
      if (tests.empty()) continue;
      const Stats t = stats(tests);
      w.test_mean = t.mean;
      w.test_std = t.std;
      w.runs = t.n;
      s.winners.push_back(w);
      fold_figures.push_back(t.mean);
    }
    const Stats f = stats(fold_figures);
    s.accuracy_mean = f.mean;
    s.accuracy_std = f.std;
    s.accuracy_label = nested ? "nested protocol: test accuracy of each outer fold's selected configuration, retrained and "
                                "averaged over repeats; mean +- std over outer folds"
                              : "holdout protocol: test accuracy of each outer fold's configuration selected on its inner "
                                "validation split; mean +- std over outer folds";
  }
  return s;
}

std::string format_summary(const ExperimentSummary& s) {
  std::string out = fmt::format("experiment {} ({}): {} {} protocol, {} folds x {} repeats; {} of {} jobs completed, {} failed\n",
                                s.name, s.experiment_id, s.dataset, s.protocol, s.folds, s.repeats, s.jobs_completed,
                                s.jobs_total, s.jobs_failed);
  const bool paper = s.protocol == "paper";
  out += fmt::format("  {:>5}  {:>5}  {:>17}  {:>17}{}  {}\n", "point", "jobs", "validation acc %", "test acc %",
                     paper ? fmt::format("  {:>24}", "paper figure % (epoch)") : "", "settings");
  for (const PointSummary& p : s.points) {
    out += fmt::format("  {:>5}  {:>5}  {:>8.2f} +- {:>5.2f}  {:>8.2f} +- {:>5.2f}", p.point, p.jobs, 100 * p.validation_mean,
                       100 * p.validation_std, 100 * p.test_mean, 100 * p.test_std);
    if (paper) out += fmt::format("  {:>10.2f} +- {:>5.2f} ({:>4})", 100 * p.paper_accuracy, 100 * p.paper_std, p.paper_best_epoch);
    out += fmt::format("  {}\n", p.label.empty() ? "(no sweep)" : p.label);
  }
  for (const FoldWinner& w : s.winners)
    out += fmt::format("  fold {:>2}: point {} (validation {:.2f}%), test {:.2f} +- {:.2f}% over {} run{}\n", w.fold, w.point,
                       100 * w.validation, 100 * w.test_mean, 100 * w.test_std, w.runs, w.runs == 1 ? "" : "s");
  out += fmt::format("  accuracy {:.2f} +- {:.2f}%{}: {}\n", 100 * s.accuracy_mean, 100 * s.accuracy_std,
                     s.optimistic ? " (OPTIMISTIC)" : "", s.accuracy_label);
  for (const FailedJob& f : s.failures)
    out += fmt::format("  failed job {} (point {}, fold {}, repeat {}, {}): {}\n", f.job_id, f.point, f.fold, f.repeat, f.phase,
                       f.reason);
  return out;
}

}  // namespace diffpool
