#pragma once
// An evaluation protocol as one module: everything that differs between `paper`, `holdout` and
// `nested` is a method of EvaluationProtocol, and each protocol is one file beside this one
// (paper.cpp, holdout.cpp, nested.cpp). The plan, the job runner, `diffpool train`, the scheduler
// and the summary ask the module of the experiment's protocol (protocol_module) and never test
// the protocol themselves. Adding a protocol: runner/README.md.
#include <cstdint>
#include <vector>

#include "engine/data/splits.hpp"
#include "results/summary.hpp"
#include "runner/config.hpp"
#include "runner/plan.hpp"
#include "runner/protocol/phase.hpp"

namespace diffpool {

// One job of an outer fold, as the protocol lays them out (the plan adds the fold and the cost).
struct FoldJob {
  Phase phase = Phase::train;
  int64_t point = -1;  // -1: chosen when the fold's selection is done (fold_winner)
  int repeat = 0;
};

// How the trainer runs a job of a phase.
struct JobTrainingSettings {
  bool restore_best = true;               // test the model of the best validation epoch
  bool evaluate_test_every_epoch = false;  // a test curve per epoch (the paper's figure needs it)
  bool trainer_sees_test = false;          // otherwise the test split is evaluated once, at the end
};

// What the choice of a fold's winner needs of a finished selection (or holdout) job.
struct SelectionResult {
  int64_t point = 0;
  int fold = 0;
  double validation_accuracy = 0;
};

// A completed job as the summary needs it: the HDF5 record with its strings already typed.
struct FinishedJob {
  Phase phase = Phase::train;
  int64_t point = 0;
  int fold = 0;
  int repeat = 0;
  double validation_accuracy = 0;        // at the best epoch
  bool has_test = false;
  double test_accuracy = 0;
  std::vector<double> validation_curve;  // per epoch; NaN where the epoch was not validated
  std::string test_split;                // split_fingerprint() of its test graphs ("" without any)
};

class EvaluationProtocol {
 public:
  virtual ~EvaluationProtocol() = default;
  virtual Protocol kind() const = 0;

  // The jobs of one outer fold, in the plan's order.
  virtual std::vector<FoldJob> fold_jobs(int64_t points, int repeats) const = 0;
  // The phase of the jobs tested on the outer test fold: what `diffpool train` runs.
  virtual Phase tested_phase() const = 0;
  // The graph split of a job of this phase on this outer fold (stratified, seeded by
  // evaluation.split_seed).
  virtual Split split(const EvaluationSettings& evaluation, Phase phase, int fold,
                      const std::vector<int32_t>& labels) const = 0;
  // Whether validation accuracies are measured on data the protocol keeps apart from the test fold
  // (false: the paper's protocol validates on the test fold itself).
  virtual bool validates_apart_from_test() const = 0;
  virtual JobTrainingSettings training(Phase phase) const = 0;
  // The jobs (indices into `jobs`) that must finish before `job` can run.
  virtual std::vector<int64_t> dependencies(const std::vector<JobSpec>& jobs, const JobSpec& job) const;
  // The sweep point a fold's unresolved jobs run: the highest mean validation accuracy over the
  // fold's selection results (ties: the lowest index, kTieRule); -1 when the fold has none.
  virtual int64_t fold_winner(const std::vector<SelectionResult>& results, int fold) const;
  // The per-point rows and the experiment's figure (points, winners, accuracy_*, optimistic,
  // accuracy_label) from the completed jobs, given sorted by (fold, point, phase name, repeat).
  virtual void summarise(const std::vector<SweepPoint>& points, const std::vector<FinishedJob>& jobs,
                         ExperimentSummary* summary) const = 0;
};

// The module of a protocol (a static instance; every Protocol value has one).
const EvaluationProtocol& protocol_module(Protocol protocol);

// Shared pieces of the modules.
struct Stats {
  double mean = kNotApplicable, std = kNotApplicable;
  double population_std = kNotApplicable;  // divides by n (Errica et al.'s convention)
  int64_t n = 0;
};
// Mean, sample standard deviation (n - 1; 0 for a single value) and population standard
// deviation (n); all NaN for no values.
Stats stats(const std::vector<double>& values);
// The row of a sweep point from the jobs that count for it (validation and test mean +- std).
PointSummary point_summary(const SweepPoint& point, const std::vector<const FinishedJob*>& jobs);
// The highest mean validation accuracy of a fold (the rule of fold_winner).
int64_t best_mean_validation(const std::vector<SelectionResult>& results, int fold);
// How many sweep points share the highest mean validation accuracy of a fold (exactly equal
// means, as the selection compares them): 1 without a tie, 0 when the fold has no results.
int64_t tied_best_points(const std::vector<SelectionResult>& results, int fold);
// The outer folds that have completed jobs, in increasing order.
std::vector<int> folds_of(const std::vector<FinishedJob>& jobs);
// Appends a fold's winner with the test accuracies of its runs (mean +- std over them); a fold
// without a tested run adds nothing.
void add_winner(FoldWinner winner, const std::vector<double>& tests, ExperimentSummary* summary);
// The figure of the honest protocols: mean +- std over outer folds of each winner's test mean
// (accuracy_std: sample, accuracy_std_population: population standard deviation).
void summarise_winners(ExperimentSummary* summary);

// The protocol modules (one file each); protocol_module picks among them.
const EvaluationProtocol& paper_protocol();
const EvaluationProtocol& holdout_protocol();
const EvaluationProtocol& nested_protocol();

}  // namespace diffpool
