#include "runner/plan_cost.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>

#include "engine/train/cost.hpp"
#include "results/job_record.hpp"
#include "runner/checkpoint.hpp"
#include "runner/protocol/protocol.hpp"

namespace diffpool {

namespace fs = std::filesystem;

std::string format_flops(double flops) {
  static const char* units[] = {"FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"};
  int u = 0;
  while (flops >= 1000 && u < 6) {
    flops /= 1000;
    ++u;
  }
  return fmt::format("{:.3g} {}", flops, units[u]);
}

namespace {
// The settings that decide a model's products: the dataset's and the model's keys and the dtype.
std::string cost_key(const ExperimentConfig& c) {
  std::istringstream lines(c.canonical_settings());
  std::string key;
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("dataset.", 0) == 0 || line.rfind("model.", 0) == 0 || line.rfind("training.dtype=", 0) == 0)
      key += line + "\n";
  return key;
}

std::string format_duration(double seconds) {
  if (seconds < 120) return fmt::format("{:.0f} s", seconds);
  if (seconds < 7200) return fmt::format("{:.0f} min", seconds / 60);
  if (seconds < 172800) return fmt::format("{:.1f} h", seconds / 3600);
  return fmt::format("{:.1f} days", seconds / 86400);
}
}  // namespace

namespace {
// The points of the plan grouped by the model and dataset that price their jobs: point indices in
// runs of equal cost_key hashes (a run may hold more than one key only if two keys' hashes
// collide; the pricing below tells them apart by the key itself).
std::vector<std::size_t> points_by_cost_key(const ExperimentPlan& plan, std::vector<uint64_t>* hashes) {
  hashes->resize(plan.points.size());
  for (std::size_t p = 0; p < plan.points.size(); ++p) (*hashes)[p] = Fnv1a().add(cost_key(plan.points[p].config)).value();
  std::vector<std::size_t> order(plan.points.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return (*hashes)[a] < (*hashes)[b]; });
  return order;
}

// The jobs of each point (a job whose point is chosen later counts as point 0's): job indices
// `jobs[first[p]]` to `jobs[first[p + 1] - 1]`, in plan order.
struct JobsByPoint {
  std::vector<std::size_t> first;
  std::vector<int64_t> jobs;
};
JobsByPoint jobs_by_point(const ExperimentPlan& plan) {
  JobsByPoint by;
  by.first.assign(plan.points.size() + 1, 0);
  auto point_of = [](const JobSpec& j) { return static_cast<std::size_t>(j.point >= 0 ? j.point : 0); };
  for (const JobSpec& j : plan.jobs) ++by.first[point_of(j) + 1];
  for (std::size_t p = 0; p < plan.points.size(); ++p) by.first[p + 1] += by.first[p];
  by.jobs.resize(plan.jobs.size());
  std::vector<std::size_t> next(by.first.begin(), by.first.end() - 1);
  for (const JobSpec& j : plan.jobs) by.jobs[next[point_of(j)]++] = j.index;
  return by;
}
}  // namespace

PlanWork estimate_plan_work(const ExperimentPlan& plan, DatasetCache& datasets, const OutputLayout& layout) {
  PlanWork work;
  const std::size_t n = plan.jobs.size();
  work.job_epoch_flops.assign(n, 0.0);
  work.job_flops.assign(n, 0.0);
  // Each distinct model and dataset is priced once, and its per-graph costs are dropped before the
  // next is priced: memory stays that of one pricing however many models a sweep has.
  // Datasets load in plan order, so a missing one is the same one named as before the grouping.
  for (const SweepPoint& p : plan.points) datasets.get(p.config.dataset);
  std::vector<uint64_t> hashes;
  const std::vector<std::size_t> order = points_by_cost_key(plan, &hashes);
  const JobsByPoint by_point = jobs_by_point(plan);
  for (std::size_t run = 0; run < order.size();) {
    std::size_t end = run;
    while (end < order.size() && hashes[order[end]] == hashes[order[run]]) ++end;
    std::map<std::string, GraphCosts> costs;  // of this run's keys: one, unless hashes collide
    std::map<std::pair<int, Phase>, Split> splits;  // of split_key's dataset (its settings are in the key)
    std::string split_key;
    for (std::size_t k = run; k < end; ++k) {
      const std::size_t point = order[k];
      const ExperimentConfig& config = plan.points[point].config;
      const GraphDataset& dataset = datasets.get(config.dataset);
      const std::string key = cost_key(config);
      auto it = costs.find(key);
      if (it == costs.end()) it = costs.emplace(key, estimate_graph_costs(dataset, config.model, config.training.dtype)).first;
      if (key != split_key) {  // the first point of the run, or a hash collision
        splits.clear();
        split_key = key;
      }
      const EvaluationProtocol& protocol = protocol_module(config.evaluation.protocol);
      for (std::size_t i = by_point.first[point]; i < by_point.first[point + 1]; ++i) {
        const JobSpec& j = plan.jobs[static_cast<std::size_t>(by_point.jobs[i])];
        auto split = splits.find({j.fold, j.phase});
        if (split == splits.end())
          split = splits.emplace(std::make_pair(j.fold, j.phase), protocol.split(config.evaluation, j.phase, j.fold, dataset.labels))
                      .first;
        const JobTrainingSettings how = protocol.training(j.phase);
        const bool test_every_epoch = how.trainer_sees_test && how.evaluate_test_every_epoch;
        const EpochCost epoch = epoch_cost(it->second, split->second, test_every_epoch);
        double once = 0;  // the test split, evaluated once at the end
        if (!test_every_epoch)
          for (int64_t g : split->second.test) once += it->second.evaluation[static_cast<std::size_t>(g)];
        work.job_epoch_flops[static_cast<std::size_t>(j.index)] = epoch.total();
        work.job_flops[static_cast<std::size_t>(j.index)] = epoch.total() * config.training.epochs + once;
      }
    }
    run = end;
  }

  for (const JobSpec& j : plan.jobs) {
    const double flops = work.job_flops[static_cast<std::size_t>(j.index)];
    work.total_flops += flops;
    bool done = false;
    if (j.point >= 0) {
      const fs::path file = layout.job_file(job_id(plan, j, j.point));
      // A damaged file is a job still to run, and no evidence of a rate (resume reports it).
      if (const std::optional<JobRecord> record = read_intact_job_record(file)) {
        done = true;
        if (record->status == "completed" && !record->epochs.empty()) {
          double seconds = 0;
          for (const EpochMetrics& m : record->epochs) seconds += m.train_seconds + m.eval_seconds;
          ++work.measured_jobs;
          work.measured_seconds += seconds;
          work.measured_flops += work.job_epoch_flops[static_cast<std::size_t>(j.index)] * static_cast<double>(record->epochs.size());
          if (std::find(work.measured_backends.begin(), work.measured_backends.end(), record->backend) ==
              work.measured_backends.end())
            work.measured_backends.push_back(record->backend);
        }
      }
    }
    int checkpointed = 0;
    if (!done && j.point >= 0) {
      const std::string id = job_id(plan, j, j.point);
      if (const auto progress = read_checkpoint_progress(layout.checkpoint_file(id), id); progress && progress->epochs > 0) {
        const double epoch_flops = work.job_epoch_flops[static_cast<std::size_t>(j.index)];
        checkpointed = progress->epochs;
        ++work.checkpointed_jobs;
        work.checkpointed_epochs += checkpointed;
        work.checkpointed_seconds += progress->seconds;
        work.checkpointed_flops += epoch_flops * checkpointed;
        work.remaining_flops -= std::min(flops, epoch_flops * checkpointed);
      }
    }
    work.job_done.push_back(done);
    work.job_checkpoint_epochs.push_back(checkpointed);
    if (!done) work.remaining_flops += flops;
  }
  return work;
}

std::string format_plan_work(const PlanWork& work, const ExperimentPlan& plan, const OutputLayout& layout) {
  std::string s = fmt::format(
      "work: {} of matrix products for the {} jobs at their full {} epochs (early stopping ends jobs sooner); {} in "
      "the jobs not done yet{}\n",
      format_flops(work.total_flops), plan.jobs.size(), plan.base.training.epochs, format_flops(work.remaining_flops),
      work.checkpointed_jobs == 0
          ? std::string()
          : fmt::format(" (less the {} epochs that {} checkpointed job{} hold{})", work.checkpointed_epochs,
                        work.checkpointed_jobs, work.checkpointed_jobs == 1 ? "" : "s",
                        work.checkpointed_jobs == 1 ? "s" : ""));
  const double seconds = work.measured_seconds + work.checkpointed_seconds;
  if (work.measured_jobs + work.checkpointed_jobs == 0 || seconds <= 0) {
    s += fmt::format("time: no finished or checkpointed job in {} to measure a rate from; once a few jobs (or a short "
                     "run of this experiment, e.g. --set training.epochs=3 into another folder) have finished there, "
                     "this estimates the wall time\n",
                     layout.root.string());
    return s;
  }
  const double rate = (work.measured_flops + work.checkpointed_flops) / seconds;
  std::string evidence;
  if (work.measured_jobs > 0)
    evidence = fmt::format("{} finished job{}", work.measured_jobs, work.measured_jobs == 1 ? "" : "s");
  if (work.checkpointed_jobs > 0)
    evidence += fmt::format("{}{} epochs of {} checkpointed job{}", evidence.empty() ? "" : " and ",
                            work.checkpointed_epochs, work.checkpointed_jobs, work.checkpointed_jobs == 1 ? "" : "s");
  std::string backends;
  for (const std::string& b : work.measured_backends) backends += (backends.empty() ? "" : ", ") + b;
  s += fmt::format("time: {} ran at {:.1f} GFLOP/s{}; the jobs not done yet need about {} on one such rank at full "
                   "length, divided by the ranks that share them\n",
                   evidence, rate / 1e9, backends.empty() ? "" : " (" + backends + ")",
                   format_duration(work.remaining_flops / rate));
  return s;
}

}  // namespace diffpool
