#pragma once
// Expansion of an experiment into jobs: sweep points x outer folds x repeats, laid out per fold by
// the protocol's module (runner/protocol/: e.g. the nested protocol's selection and retraining). Everything here is deterministic: every rank
// expands the same plan from the same file, so ranks exchange only job indices.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/data/splits.hpp"
#include "runner/config.hpp"
#include "runner/protocol/phase.hpp"

namespace diffpool {

// A plan holds one of these per point, up to kMaxSweepJobs of them: only what differs between
// points is here; the document and the sweep's lists of values are held once, in the plan's base.
struct SweepPoint {
  int64_t index = 0;
  std::map<std::string, YAML::Node> values;  // the swept keys and their values at this point
  std::string label;                         // "model.hidden_dim=64 training.learning_rate=0.001"
  // The resolved settings of this point, without the document (null; point_document rebuilds it),
  // the origins or the sweep's parameters (see with_overrides).
  ExperimentConfig config;
};

struct JobSpec {
  int64_t index = 0;   // position in ExperimentPlan::jobs
  Phase phase = Phase::train;
  int64_t point = -1;  // sweep point; for retrain jobs fixed only when the fold's selection is done
  int fold = 0;
  int repeat = 0;
  double cost = 1.0;   // relative expected cost (for scheduling longest first)
};

struct ExperimentPlan {
  ExperimentConfig base;
  std::vector<SweepPoint> points;
  std::vector<JobSpec> jobs;
  std::vector<int> folds;      // the outer folds this run covers (evaluation.only_folds or all)
  std::string experiment_id;   // fingerprint of everything that defines the experiment's results

  // Jobs that must finish before the given one can run (the protocol's rule; nested retrain: its
  // fold's selections).
  std::vector<int64_t> dependencies(const JobSpec& job) const;
};

ExperimentPlan make_plan(const ExperimentConfig& config);

// The experiment document of a sweep point (the base's, with the point's values), as its jobs
// record it.
YAML::Node point_document(const ExperimentPlan& plan, int64_t point);

// The deterministic id of a job: 16 hex digits of a hash of the point's canonical settings, the
// phase, the fold and the repeat.
std::string job_id(const ExperimentPlan& plan, const JobSpec& job, int64_t point);

// The training seed of a job, derived from the point's training.seed, the fold and the repeat.
uint64_t job_seed(const ExperimentPlan& plan, const JobSpec& job, int64_t point);

// The graph split of a job (the protocol's split, stratified and seeded by evaluation.split_seed):
// the outer fold's test set, and the rest split into train and an inner validation holdout (paper
// protocol: the test fold doubles as the validation set, as the authors did; nested selection: no
// test set).
Split job_split(const ExperimentPlan& plan, const JobSpec& job, const std::vector<int32_t>& labels);

// 64-bit FNV-1a, fed piece by piece: hashing pieces one after another equals hashing their
// concatenation, so a long text need never be built.
class Fnv1a {
 public:
  Fnv1a& add(std::string_view text);
  uint64_t value() const { return state_; }
  std::string hex() const;  // 16 hex digits

 private:
  uint64_t state_ = 1469598103934665603ULL;
};

// 64-bit FNV-1a of a string, as 16 hex digits.
std::string hash_hex(const std::string& text);

}  // namespace diffpool
