// The nested protocol (Errica et al., ICLR 2020): per outer fold, every sweep point is trained once
// on the inner split of the fold's training graphs (phase select, no test set); the point with the
// best mean inner validation accuracy is retrained evaluation.repeats times on the outer training
// graphs (phase retrain, with its own early-stopping holdout) and tested once each. The fold's figure
// is the mean test accuracy of its retrainings; the experiment's, the mean +- std over outer folds.
// With a single point there is nothing to select: only the retrainings run.
#include "runner/protocol/protocol.hpp"

namespace diffpool {

namespace {

class NestedProtocol final : public EvaluationProtocol {
 public:
  Protocol kind() const override { return Protocol::nested; }

  std::vector<FoldJob> fold_jobs(int64_t points, int repeats) const override {
    std::vector<FoldJob> jobs;
    const bool select = points > 1;
    if (select)
      for (int64_t p = 0; p < points; ++p) jobs.push_back({Phase::select, p, 0});
    for (int r = 0; r < repeats; ++r) jobs.push_back({Phase::retrain, select ? -1 : 0, r});
    return jobs;
  }

  Phase tested_phase() const override { return Phase::retrain; }

  Split split(const EvaluationSettings& e, Phase phase, int fold, const std::vector<int32_t>& labels) const override {
    Split s = make_fold_split(labels, e.folds, fold, e.validation_fraction, e.split_seed);
    if (phase == Phase::select) s.test.clear();  // selection never sees the outer test fold
    return s;
  }

  bool validates_apart_from_test() const override { return true; }

  JobTrainingSettings training(Phase) const override { return JobTrainingSettings{}; }

  // A retraining whose point is not fixed waits for every selection job of its fold.
  std::vector<int64_t> dependencies(const std::vector<JobSpec>& jobs, const JobSpec& job) const override {
    std::vector<int64_t> deps;
    if (job.phase != Phase::retrain || job.point >= 0) return deps;
    for (const JobSpec& j : jobs)
      if (j.phase == Phase::select && j.fold == job.fold) deps.push_back(j.index);
    return deps;
  }

  void summarise(const std::vector<SweepPoint>& points, const std::vector<FinishedJob>& jobs,
                 ExperimentSummary* s) const override {
    const bool single = points.size() == 1;  // no selection phase: the retrainings are the point's jobs
    for (const SweepPoint& p : points) {
      std::vector<const FinishedJob*> of_point;
      for (const FinishedJob& j : jobs)
        if (single || (j.point == p.index && j.phase != Phase::retrain)) of_point.push_back(&j);
      s->points.push_back(point_summary(p, of_point));
    }
    std::vector<SelectionResult> selection;
    for (const FinishedJob& j : jobs)
      if (j.phase != Phase::retrain) selection.push_back({j.point, j.fold, j.validation_accuracy});
    for (int fold : folds_of(jobs)) {
      FoldWinner w;
      w.fold = fold;
      w.point = single ? 0 : fold_winner(selection, fold);
      w.tied = single ? 1 : tied_best_points(selection, fold);
      std::vector<double> tests, validations;
      for (const FinishedJob& j : jobs)
        if (j.fold == fold && j.phase == Phase::retrain) {
          tests.push_back(j.test_accuracy);
          validations.push_back(j.validation_accuracy);
          w.point = j.point;
          if (w.test_split.empty()) w.test_split = j.test_split;
        }
      std::vector<double> selected;
      for (const SelectionResult& r : selection)
        if (r.fold == fold && r.point == w.point) selected.push_back(r.validation_accuracy);
      w.validation = stats(selected.empty() ? validations : selected).mean;
      add_winner(w, tests, s);
    }
    summarise_winners(s);
    s->accuracy_label = "nested protocol: test accuracy of each outer fold's selected configuration, retrained and "
                        "averaged over repeats; mean +- std over outer folds";
  }
};

}  // namespace

const EvaluationProtocol& nested_protocol() {
  static const NestedProtocol module;
  return module;
}

}  // namespace diffpool
