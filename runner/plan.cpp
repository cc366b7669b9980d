#include "runner/plan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "runner/protocol/protocol.hpp"

namespace diffpool {

Fnv1a& Fnv1a::add(std::string_view text) {
  for (unsigned char c : text) {
    state_ ^= c;
    state_ *= 1099511628211ULL;
  }
  return *this;
}

std::string Fnv1a::hex() const { return fmt::format("{:016x}", state_); }

std::string hash_hex(const std::string& text) { return Fnv1a().add(text).hex(); }

namespace {

std::string point_origin(int64_t point) { return fmt::format("sweep point {}", point); }

std::string node_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << node;
  return e.c_str();
}

// The sweep's points: the grid's Cartesian product (keys in file order, the last varying
// fastest), or `samples` random draws.
std::vector<std::map<std::string, YAML::Node>> sweep_values(const SweepSettings& sweep) {
  std::vector<std::map<std::string, YAML::Node>> points;
  if (sweep.parameters.empty()) return {{}};
  if (sweep.mode == SweepSettings::Mode::grid) {
    points.emplace_back();
    for (const SweepParameter& p : sweep.parameters) {
      std::vector<std::map<std::string, YAML::Node>> next;
      for (const auto& partial : points)
        for (const YAML::Node& v : p.values) {
          auto m = partial;
          m[p.key] = v;
          next.push_back(std::move(m));
        }
      points = std::move(next);
    }
    return points;
  }
  Rng rng(Rng::derive(sweep.seed, 0x5eed));
  for (int s = 0; s < sweep.samples; ++s) {
    std::map<std::string, YAML::Node> m;
    for (const SweepParameter& p : sweep.parameters) {
      if (!p.values.empty()) {
        m[p.key] = p.values[static_cast<std::size_t>(rng.below(p.values.size()))];
      } else if (p.distribution == "int_uniform") {
        const auto lo = static_cast<int64_t>(std::ceil(p.low)), hi = static_cast<int64_t>(std::floor(p.high));
        m[p.key] = YAML::Node(lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1))));
      } else if (p.distribution == "log_uniform") {
        m[p.key] = YAML::Node(fmt::format("{:.6g}", std::exp(rng.uniform(std::log(p.low), std::log(p.high)))));
      } else {
        m[p.key] = YAML::Node(fmt::format("{:.6g}", rng.uniform(p.low, p.high)));
      }
    }
    points.push_back(std::move(m));
  }
  return points;
}

// A rough relative cost for ordering jobs, longest first: epochs x the layer widths squared x
// layers x levels, plus the cluster term of pooling (k^2 per pooled graph).
double estimate_cost(const ExperimentConfig& c, Phase phase) {
  const ModelConfig& m = c.model;
  double width = static_cast<double>(std::max(m.hidden_dim, m.embedding_dim));
  double layers = 0;
  for (int l = 0; l <= std::max(0, m.pool_levels); ++l) layers += m.conv_layers_at(l);
  double per_epoch = width * width * layers * (m.learned_assignments() ? 2.0 : 1.0);
  if (m.has_pooling()) {
    double k = m.clusters.empty() ? 100.0 * m.cluster_ratio : static_cast<double>(m.clusters.front());
    per_epoch += k * k * static_cast<double>(m.pool_levels) * width / 8.0;
  }
  const double fraction = phase == Phase::select ? (1.0 - c.evaluation.validation_fraction) : 1.0;
  return static_cast<double>(c.training.epochs) * per_epoch * fraction;
}

}  // namespace

ExperimentPlan make_plan(const ExperimentConfig& config) {
  ExperimentPlan plan;
  plan.base = config;
  auto values = sweep_values(config.sweep);
  plan.points.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    SweepPoint p;
    p.index = static_cast<int64_t>(i);
    p.values = std::move(values[i]);
    for (const auto& [key, value] : p.values) p.label += fmt::format("{}{}={}", p.label.empty() ? "" : " ", key, node_text(value));
    if (p.values.empty()) {
      p.config = config;
      p.config.document.reset();  // as with_overrides leaves a point's: the plan's base holds it
      p.config.origins.clear();
    } else {
      p.config = with_overrides(config, p.values, point_origin(p.index));
    }
    p.config.model.validate();
    p.config.training.validate();
    plan.points.push_back(std::move(p));
  }
  values = {};

  const EvaluationSettings& e = config.evaluation;
  if (e.only_folds.empty()) {
    plan.folds.resize(static_cast<std::size_t>(e.folds));
    std::iota(plan.folds.begin(), plan.folds.end(), 0);
  } else {
    plan.folds = e.only_folds;
    std::sort(plan.folds.begin(), plan.folds.end());
    plan.folds.erase(std::unique(plan.folds.begin(), plan.folds.end()), plan.folds.end());
  }

  const EvaluationProtocol& protocol = protocol_module(e.protocol);
  const std::vector<FoldJob> fold_jobs = protocol.fold_jobs(static_cast<int64_t>(plan.points.size()), e.repeats);
  for (int fold : plan.folds)
    for (const FoldJob& f : fold_jobs) {
      JobSpec j;
      j.index = static_cast<int64_t>(plan.jobs.size());
      j.phase = f.phase;
      j.point = f.point;
      j.fold = fold;
      j.repeat = f.repeat;
      // A job whose point selection fixes later is estimated as the first point.
      j.cost = estimate_cost(plan.points[static_cast<std::size_t>(std::max<int64_t>(f.point, 0))].config, f.phase);
      plan.jobs.push_back(j);
    }

  // The experiment's fingerprint: the settings of every point and the evaluation design. Which
  // folds a run covers (only_folds) is not part of it, so folds can run as separate jobs into one
  // output folder.
  // Hashed as it is written, point by point: the text is about 1.5 KB per point.
  Fnv1a fingerprint;
  fingerprint.add(fmt::format("name={}\nrepeats={}\nsweep.mode={}\nsweep.samples={}\nsweep.seed={}\n", config.name, e.repeats,
                              sweep_mode_names().name(config.sweep.mode), config.sweep.samples, config.sweep.seed));
  for (const SweepPoint& p : plan.points)
    fingerprint.add(fmt::format("point {}\n", p.index)).add(p.config.canonical_settings());
  plan.experiment_id = fingerprint.hex();
  return plan;
}

YAML::Node point_document(const ExperimentPlan& plan, int64_t point) {
  const SweepPoint& p = plan.points.at(static_cast<std::size_t>(point));
  return point_document(plan.base, p.values, point_origin(point));
}

std::vector<int64_t> ExperimentPlan::dependencies(const JobSpec& job) const {
  return protocol_module(base.evaluation.protocol).dependencies(jobs, job);
}

std::string job_id(const ExperimentPlan& plan, const JobSpec& job, int64_t point) {
  DP_CHECK(point >= 0 && point < static_cast<int64_t>(plan.points.size()), "job {} has no sweep point yet", job.index);
  return hash_hex(fmt::format("{}phase={}\nfold={}\nrepeat={}\n",
                              plan.points[static_cast<std::size_t>(point)].config.canonical_settings(), phase_name(job.phase),
                              job.fold, job.repeat));
}

uint64_t job_seed(const ExperimentPlan& plan, const JobSpec& job, int64_t point) {
  const uint64_t base = plan.points[static_cast<std::size_t>(point)].config.training.seed;
  return Rng::derive(base, (static_cast<uint64_t>(job.fold) << 32) ^ static_cast<uint64_t>(job.repeat) ^
                               (job.phase == Phase::retrain ? 0x9e3779b9ULL : 0));
}

Split job_split(const ExperimentPlan& plan, const JobSpec& job, const std::vector<int32_t>& labels) {
  const EvaluationSettings& e = plan.base.evaluation;
  return protocol_module(e.protocol).split(e, job.phase, job.fold, labels);
}

}  // namespace diffpool
