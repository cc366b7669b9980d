#include "runner/protocol/protocol.hpp"

#include <cmath>
#include <map>
#include <set>

#include "engine/core/error.hpp"

namespace diffpool {

const EvaluationProtocol& protocol_module(Protocol protocol) {
  // No default: a Protocol without a module is a compiler warning (-Wswitch) and an error here.
  switch (protocol) {
    case Protocol::paper: return paper_protocol();
    case Protocol::holdout: return holdout_protocol();
    case Protocol::nested: return nested_protocol();
  }
  throw_internal(__FILE__, __LINE__, fmt::format("no module for protocol {}", static_cast<int>(protocol)));
}

std::vector<int64_t> EvaluationProtocol::dependencies(const std::vector<JobSpec>&, const JobSpec&) const { return {}; }

int64_t EvaluationProtocol::fold_winner(const std::vector<SelectionResult>& results, int fold) const {
  return best_mean_validation(results, fold);
}

Stats stats(const std::vector<double>& values) {
  Stats s;
  s.n = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  s.mean = 0;
  for (double x : values) s.mean += x;
  s.mean /= static_cast<double>(values.size());
  double ss = 0;
  for (double x : values) ss += (x - s.mean) * (x - s.mean);
  s.std = values.size() > 1 ? std::sqrt(ss / static_cast<double>(values.size() - 1)) : 0.0;
  s.population_std = std::sqrt(ss / static_cast<double>(values.size()));
  return s;
}

PointSummary point_summary(const SweepPoint& point, const std::vector<const FinishedJob*>& jobs) {
  PointSummary ps;
  ps.point = point.index;
  ps.label = point.label;
  std::vector<double> validation, test;
  for (const FinishedJob* j : jobs) {
    validation.push_back(j->validation_accuracy);
    if (j->has_test) test.push_back(j->test_accuracy);
  }
  ps.jobs = static_cast<int64_t>(std::max(validation.size(), test.size()));
  const Stats v = stats(validation), t = stats(test);
  ps.validation_mean = v.mean;
  ps.validation_std = v.std;
  ps.test_mean = t.mean;
  ps.test_std = t.std;
  return ps;
}

int64_t best_mean_validation(const std::vector<SelectionResult>& results, int fold) {
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

int64_t tied_best_points(const std::vector<SelectionResult>& results, int fold) {
  std::map<int64_t, std::vector<double>> by_point;
  for (const SelectionResult& r : results)
    if (r.fold == fold) by_point[r.point].push_back(r.validation_accuracy);
  const int64_t best = best_mean_validation(results, fold);
  if (best < 0) return 0;
  const double best_value = stats(by_point.at(best)).mean;
  int64_t tied = 0;
  for (const auto& [point, values] : by_point)
    if (stats(values).mean == best_value) ++tied;
  return tied;
}

std::vector<int> folds_of(const std::vector<FinishedJob>& jobs) {
  std::set<int> folds;
  for (const FinishedJob& j : jobs) folds.insert(j.fold);
  return {folds.begin(), folds.end()};
}

void add_winner(FoldWinner winner, const std::vector<double>& tests, ExperimentSummary* summary) {
  if (tests.empty()) return;
  const Stats t = stats(tests);
  winner.test_mean = t.mean;
  winner.test_std = t.std;
  winner.runs = t.n;
  summary->winners.push_back(winner);
}

void summarise_winners(ExperimentSummary* summary) {
  std::vector<double> fold_figures;
  for (const FoldWinner& w : summary->winners) fold_figures.push_back(w.test_mean);
  const Stats f = stats(fold_figures);
  summary->accuracy_mean = f.mean;
  summary->accuracy_std = f.std;
  summary->accuracy_std_population = f.population_std;
}

}  // namespace diffpool
