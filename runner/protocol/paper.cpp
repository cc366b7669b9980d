// The paper's protocol (Ying et al. 2018, as the authors' code evaluates): k-fold cross-validation
// where the test fold doubles as the validation set; every (point, fold, repeat) is one training
// that records its test-fold accuracy after every epoch. The figure is the best epoch of the
// fold-averaged curve, selected on the test folds themselves: optimistic, and labelled so.
#include <algorithm>
#include <cmath>

#include "runner/protocol/protocol.hpp"

namespace diffpool {

namespace {

class PaperProtocol final : public EvaluationProtocol {
 public:
  Protocol kind() const override { return Protocol::paper; }

  std::vector<FoldJob> fold_jobs(int64_t points, int repeats) const override {
    std::vector<FoldJob> jobs;
    for (int64_t p = 0; p < points; ++p)
      for (int r = 0; r < repeats; ++r) jobs.push_back({Phase::train, p, r});
    return jobs;
  }

  Phase tested_phase() const override { return Phase::train; }

  Split split(const EvaluationSettings& e, Phase, int fold, const std::vector<int32_t>& labels) const override {
    Split s = make_fold_split(labels, e.folds, fold, 0.0, e.split_seed);
    s.validation = s.test;
    return s;
  }

  bool validates_apart_from_test() const override { return false; }

  JobTrainingSettings training(Phase) const override {
    JobTrainingSettings t;
    t.restore_best = false;              // the last epoch's model: the figure comes from the curves
    t.evaluate_test_every_epoch = true;
    t.trainer_sees_test = true;
    return t;
  }

  void summarise(const std::vector<SweepPoint>& points, const std::vector<FinishedJob>& jobs,
                 ExperimentSummary* s) const override {
    for (const SweepPoint& p : points) {
      std::vector<const FinishedJob*> of_point;
      for (const FinishedJob& j : jobs)
        if (j.point == p.index) of_point.push_back(&j);
      PointSummary ps = point_summary(p, of_point);
      add_curve_figure(of_point, &ps);
      s->points.push_back(ps);
    }
    // The reported point: the highest figure; a tie goes to the lowest point index (kTieRule).
    const PointSummary* best = nullptr;
    for (const PointSummary& p : s->points)
      if (p.jobs > 0 && !std::isnan(p.paper_accuracy) && (!best || p.paper_accuracy > best->paper_accuracy)) best = &p;
    if (best) {
      s->accuracy_mean = best->paper_accuracy;
      s->accuracy_std = best->paper_std;
      int64_t tied = 0;
      for (const PointSummary& p : s->points)
        if (p.jobs > 0 && p.paper_accuracy == best->paper_accuracy) ++tied;
      add_fold_figures(*best, tied, jobs, s);
    }
    s->optimistic = true;
    s->accuracy_label = "paper protocol: best epoch of the fold-averaged test-fold accuracy curve (optimistic: selected on the test folds)";
  }

 private:
  // The figure per outer fold, as winners: the reported point's accuracy at the reported epoch on
  // that fold (mean over its repeats). Averaged over folds it is the figure itself when every fold
  // has the same number of repeats; a paired comparison pairs these. The population standard
  // deviation of the figure is over the same job values as paper_std.
  static void add_fold_figures(const PointSummary& best, int64_t tied, const std::vector<FinishedJob>& jobs,
                               ExperimentSummary* s) {
    const auto epoch = static_cast<std::size_t>(best.paper_best_epoch - 1);
    std::vector<double> all;
    for (int fold : folds_of(jobs)) {
      FoldWinner w;
      w.fold = fold;
      w.point = best.point;
      w.tied = tied;
      std::vector<double> at;
      for (const FinishedJob& j : jobs)
        if (j.fold == fold && j.point == best.point && epoch < j.validation_curve.size()) {
          at.push_back(j.validation_curve[epoch]);
          if (w.test_split.empty()) w.test_split = j.test_split;
        }
      all.insert(all.end(), at.begin(), at.end());
      w.validation = stats(at).mean;  // the validation split is the test fold here
      add_winner(w, at, s);
    }
    s->accuracy_std_population = stats(all).population_std;
  }

  // The authors' figure: average the per-epoch accuracy curves of the folds, take the best epoch
  // of the average, over the epochs every fold reached.
  static void add_curve_figure(const std::vector<const FinishedJob*>& jobs, PointSummary* ps) {
    if (jobs.empty()) return;
    std::size_t longest = 0;
    for (const FinishedJob* j : jobs) longest = std::max(longest, j->validation_curve.size());
    double best = -1;
    for (std::size_t e = 0; e < longest; ++e) {
      std::vector<double> at;
      for (const FinishedJob* j : jobs)
        if (e < j->validation_curve.size() && !std::isnan(j->validation_curve[e])) at.push_back(j->validation_curve[e]);
      if (at.size() != jobs.size()) continue;
      const Stats st = stats(at);
      if (st.mean > best) {
        best = st.mean;
        ps->paper_best_epoch = static_cast<int>(e) + 1;
        ps->paper_accuracy = st.mean;
        ps->paper_std = st.std;
      }
    }
  }
};

}  // namespace

const EvaluationProtocol& paper_protocol() {
  static const PaperProtocol module;
  return module;
}

}  // namespace diffpool
