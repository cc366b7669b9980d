#include "runner/plan_cost.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "engine/train/cost.hpp"
#include "results/job_record.hpp"
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

PlanWork estimate_plan_work(const ExperimentPlan& plan, DatasetCache& datasets, const OutputLayout& layout) {
  PlanWork work;
  std::map<std::string, GraphCosts> costs;  // one pricing per distinct model and dataset
  for (const JobSpec& j : plan.jobs) {
    const ExperimentConfig& config = plan.points.at(static_cast<std::size_t>(j.point >= 0 ? j.point : 0)).config;
    const GraphDataset& dataset = datasets.get(config.dataset);
    const std::string key = cost_key(config);
    auto it = costs.find(key);
    if (it == costs.end()) it = costs.emplace(key, estimate_graph_costs(dataset, config.model, config.training.dtype)).first;
    const EvaluationProtocol& protocol = protocol_module(config.evaluation.protocol);
    const Split split = protocol.split(config.evaluation, j.phase, j.fold, dataset.labels);
    const JobTrainingSettings how = protocol.training(j.phase);
    const bool test_every_epoch = how.trainer_sees_test && how.evaluate_test_every_epoch;
    const EpochCost epoch = epoch_cost(it->second, split, test_every_epoch);
    double once = 0;  // the test split, evaluated once at the end
    if (!test_every_epoch)
      for (int64_t g : split.test) once += it->second.evaluation[static_cast<std::size_t>(g)];
    const double flops = epoch.total() * config.training.epochs + once;
    work.job_epoch_flops.push_back(epoch.total());
    work.job_flops.push_back(flops);
    work.total_flops += flops;

    bool done = false;
    if (j.point >= 0) {
      const fs::path file = layout.job_file(job_id(plan, j, j.point));
      if (job_file_state(file) == StoredFile::intact) {  // a damaged file is a job still to run
        done = true;
        try {
          const JobRecord record = read_job_record(file);
          if (record.status == "completed" && !record.epochs.empty()) {
            double seconds = 0;
            for (const EpochMetrics& m : record.epochs) seconds += m.train_seconds + m.eval_seconds;
            ++work.measured_jobs;
            work.measured_seconds += seconds;
            work.measured_flops += epoch.total() * static_cast<double>(record.epochs.size());
            if (std::find(work.measured_backends.begin(), work.measured_backends.end(), record.backend) ==
                work.measured_backends.end())
              work.measured_backends.push_back(record.backend);
          }
        } catch (const std::exception&) {
          // A damaged job file is not evidence of a rate; resume reports it.
        }
      }
    }
    work.job_done.push_back(done);
    if (!done) work.remaining_flops += flops;
  }
  return work;
}

std::string format_plan_work(const PlanWork& work, const ExperimentPlan& plan, const OutputLayout& layout) {
  std::string s = fmt::format(
      "work: {} of matrix products for the {} jobs at their full {} epochs (early stopping ends jobs sooner); {} in "
      "the jobs not done yet\n",
      format_flops(work.total_flops), plan.jobs.size(), plan.base.training.epochs, format_flops(work.remaining_flops));
  if (work.measured_jobs == 0 || work.measured_seconds <= 0) {
    s += fmt::format("time: no finished job in {} to measure a rate from; once a few jobs (or a short run of this "
                     "experiment, e.g. --set training.epochs=3 into another folder) have finished there, this "
                     "estimates the wall time\n",
                     layout.root.string());
    return s;
  }
  const double rate = work.measured_flops / work.measured_seconds;
  std::string backends;
  for (const std::string& b : work.measured_backends) backends += (backends.empty() ? "" : ", ") + b;
  s += fmt::format("time: {} finished job{} ran at {:.1f} GFLOP/s ({}); the jobs not done yet need about {} on one "
                   "such rank at full length, divided by the ranks that share them\n",
                   work.measured_jobs, work.measured_jobs == 1 ? "" : "s", rate / 1e9, backends,
                   format_duration(work.remaining_flops / rate));
  return s;
}

}  // namespace diffpool
