// The holdout protocol: stratified k-fold outer cross-validation; inside each outer fold's training
// graphs a stratified holdout (evaluation.validation_fraction) drives early stopping and picks the
// fold's sweep point; that point's test accuracy (mean over repeats) is the fold's figure, and the
// experiment's figure is the mean +- std over outer folds.
#include "runner/protocol/protocol.hpp"

namespace diffpool {

namespace {

class HoldoutProtocol final : public EvaluationProtocol {
 public:
  Protocol kind() const override { return Protocol::holdout; }

  std::vector<FoldJob> fold_jobs(int64_t points, int repeats) const override {
    std::vector<FoldJob> jobs;
    for (int64_t p = 0; p < points; ++p)
      for (int r = 0; r < repeats; ++r) jobs.push_back({Phase::train, p, r});
    return jobs;
  }

  Phase tested_phase() const override { return Phase::train; }

  Split split(const EvaluationSettings& e, Phase, int fold, const std::vector<int32_t>& labels) const override {
    return make_fold_split(labels, e.folds, fold, e.validation_fraction, e.split_seed);
  }

  bool validates_apart_from_test() const override { return true; }

  JobTrainingSettings training(Phase) const override { return JobTrainingSettings{}; }

  void summarise(const std::vector<SweepPoint>& points, const std::vector<FinishedJob>& jobs,
                 ExperimentSummary* s) const override {
    for (const SweepPoint& p : points) {
      std::vector<const FinishedJob*> of_point;
      for (const FinishedJob& j : jobs)
        if (j.point == p.index) of_point.push_back(&j);
      s->points.push_back(point_summary(p, of_point));
    }
    std::vector<SelectionResult> selection;
    for (const FinishedJob& j : jobs) selection.push_back({j.point, j.fold, j.validation_accuracy});
    for (int fold : folds_of(jobs)) {
      FoldWinner w;
      w.fold = fold;
      w.point = fold_winner(selection, fold);
      w.tied = tied_best_points(selection, fold);
      std::vector<double> tests, validations;
      for (const FinishedJob& j : jobs)
        if (j.fold == fold && j.point == w.point) {
          tests.push_back(j.test_accuracy);
          validations.push_back(j.validation_accuracy);
          if (w.test_split.empty()) w.test_split = j.test_split;
        }
      w.validation = stats(validations).mean;
      add_winner(w, tests, s);
    }
    summarise_winners(s);
    s->accuracy_label = "holdout protocol: test accuracy of each outer fold's configuration selected on its inner "
                        "validation split; mean +- std over outer folds";
  }
};

}  // namespace

const EvaluationProtocol& holdout_protocol() {
  static const HoldoutProtocol module;
  return module;
}

}  // namespace diffpool
