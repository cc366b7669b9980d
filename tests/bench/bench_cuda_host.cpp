// The host's side of a CUDA training step, timed without a GPU: the CUDA backend's own sources
// under the CPU emulation (tests/cuda_emulation), with every kernel launch and cuBLAS call
// checked and counted but computing nothing. What is left is what the host does per step on a
// GPU machine apart from the CUDA driver's own cost per launch: building and packing the batch,
// the tape, the workspace, the backend's checks and argument packing, the grouped kernels'
// descriptors. An epoch on a GPU that is bound by the host (docs/PERFORMANCE.md, "Measured on an
// H200") costs about this plus the driver's cost per launch times the launches.
//
//   build/bench_cuda_host [--dataset ENZYMES] [--steps 200] [--rounds 5] [--levels 1|2] [--sgemm 2048]
//   build/bench_cuda_host --dataset DD --levels 2 --real-steps 1      # D&D, per-graph clusters
//   perf record -g build/bench_cuda_host --steps 2000 --rounds 1      # where the host time goes
//
// Prints per step: host microseconds (median over rounds), kernel launches, cuBLAS calls, uploads,
// and the host microseconds per launch or call; then the single-thread SGEMM rate of the same host
// (a 2048 x 2048 x 2048 product on the CPU backend, one OpenBLAS thread), to state beside the
// absolute times, which follow the host's speed. The figures include the emulator's own
// bookkeeping per launch (its pointer checks and counters), so they are an upper bound of the
// engine's and backend's share.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>
#include <CLI/CLI.hpp>
#include "emulator_counters.h"
#include "engine/autodiff/tape.hpp"
#include "engine/backend/cuda/cuda_backend.hpp"
#include "engine/core/random.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/data/dataset.hpp"
#include "engine/nn/model.hpp"
#include "engine/optim/adam.hpp"
#include "tests/bench/sgemm_rate.hpp"

using namespace diffpool;

int main(int argc, char** argv) {
  CLI::App app{"Host time of a CUDA training step, measured under the CPU emulation with kernels skipped"};
  std::string dataset = "ENZYMES";
  std::string data_dir = std::getenv("DIFFPOOL_DATA") ? std::getenv("DIFFPOOL_DATA") : "";
  int steps = 200, rounds = 5, levels = 1, batch_size = 20, sgemm_size = 2048, real_steps = 8;
  bool sites = false;
  app.add_option("--dataset", dataset, "TU dataset name");
  app.add_option("--data-dir", data_dir, "datasets folder (default: $DIFFPOOL_DATA)");
  app.add_option("--steps", steps, "training steps per round")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "rounds; the median is reported")->check(CLI::PositiveNumber);
  app.add_option("--levels", levels,
                 "1: the paper's ENZYMES model (clusters 10% of the largest graph); 2: two levels, per-graph clusters")
      ->check(CLI::Range(1, 2));
  app.add_option("--batch-size", batch_size, "graphs per step")->check(CLI::PositiveNumber);
  app.add_option("--sgemm", sgemm_size, "side of the square SGEMM timed for the host's reference rate (0: skip)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--real-steps", real_steps,
                 "warm-up steps whose kernels the emulation runs before it skips them (slow on large graphs: D&D "
                 "takes seconds a step; 1 is enough to fill the workspace's and allocator's caches there)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--sites", sites, "also list each launch site's launches and argument bytes per step");
  CLI11_PARSE(app, argc, argv);

  DatasetOptions options;
  options.data_dir = data_dir;
  const GraphDataset data = load_tu_dataset(dataset, options);
  ModelConfig config;  // configs/bench_enzymes.yaml
  config.variant = Variant::diffpool;
  config.hidden_dim = 30;
  config.embedding_dim = 30;
  config.cluster_ratio = 0.1;
  if (levels == 2) {
    config.pool_levels = 2;
    config.cluster_ratio = 0.25;
    config.cluster_rule = ClusterRule::per_graph;
  }
  auto be = cuda_emulated::create_cuda_backend(0);
  DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
  ParameterStore& params = model.parameters();
  params.allocate(*be, DType::f32);
  params.initialize(2018);
  Adam adam(params, AdamSettings{}, 2.0);
  Workspace ws(*be);
  std::vector<int64_t> order(static_cast<std::size_t>(data.num_graphs()));
  std::iota(order.begin(), order.end(), 0);
  Rng shuffle(7);
  std::size_t next = order.size();
  auto step = [&](int i) {
    if (next + static_cast<std::size_t>(batch_size) > order.size()) {
      for (std::size_t j = order.size() - 1; j > 0; --j) std::swap(order[j], order[shuffle.below(j + 1)]);
      next = 0;
    }
    std::vector<int64_t> ids(order.begin() + static_cast<std::ptrdiff_t>(next),
                             order.begin() + static_cast<std::ptrdiff_t>(next) + batch_size);
    next += static_cast<std::size_t>(batch_size);
    ws.reset();
    Tape tape(*be, ws);
    StepScope scope(*be);  // as the trainer: one CUDA graph a step where graphs are on
    GraphBatch batch = build_batch(data, ids, ws, DType::f32);
    ForwardOutput out = model.forward(tape, batch, true, Rng::derive(5, static_cast<uint64_t>(i)));
    params.zero_grad();
    tape.backward(out.loss);
    adam.step();
    scope.end();
  };
  // Warm-up with the kernels run: the workspace, the allocator's cache and the upload ring fill.
  for (int i = 0; i < real_steps; ++i) step(i);
  diffpool_emulator_skip_device_work(true);
  // Then two epochs' steps with the kernels skipped (8 at least): the workspace grows to the
  // largest batch it meets, and on a dataset of very different graphs (D&D: 30 to 5748 nodes) a
  // round that met a larger batch than any before would time the growth (fresh pages, zeroed),
  // not the steady state that every later epoch runs in. (An epoch here is the whole batches of a
  // shuffled order; two of them see every graph, the one left over from the first included.)
  const int epoch_steps = static_cast<int>(data.num_graphs() / batch_size);
  for (int i = 0; i < std::max(8, 2 * epoch_steps); ++i) step(real_steps + i);
  const DiffpoolEmulatorCounters before = diffpool_emulator_counters();
  const std::map<std::string, long long> site_launches_before = diffpool_emulator_launches_by_site();
  const std::map<std::string, long long> site_bytes_before = diffpool_emulator_argument_bytes_by_site();
  std::vector<double> per_step_us;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step(16 + r * steps + i);
    const auto t1 = std::chrono::steady_clock::now();
    per_step_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / steps);
  }
  const DiffpoolEmulatorCounters after = diffpool_emulator_counters();
  const std::map<std::string, long long> site_launches = diffpool_emulator_launches_by_site();
  const std::map<std::string, long long> site_bytes = diffpool_emulator_argument_bytes_by_site();
  // The launches of each step, untimed: a CUDA graph of a step updates the instantiated one of
  // the same launch sequence, so how many different counts there are matters with graphs on.
  std::map<long long, int> launches_per_step;
  for (int i = 0; i < steps; ++i) {
    const DiffpoolEmulatorCounters s0 = diffpool_emulator_counters();
    step(16 + rounds * steps + i);
    const DiffpoolEmulatorCounters s1 = diffpool_emulator_counters();
    ++launches_per_step[(s1.kernel_launches - s0.kernel_launches) + (s1.cublas_calls - s0.cublas_calls) +
                        (s1.device_to_device - s0.device_to_device)];
  }
  const double n = static_cast<double>(rounds) * steps;
  const double launches = static_cast<double>(after.kernel_launches - before.kernel_launches) / n;
  const double cublas = static_cast<double>(after.cublas_calls - before.cublas_calls) / n;
  const double uploads = static_cast<double>(after.host_to_device - before.host_to_device) / n;
  const double copies = static_cast<double>(after.device_to_device - before.device_to_device) / n;
  const double argument_bytes = static_cast<double>(after.kernel_argument_bytes - before.kernel_argument_bytes) / n;
  std::sort(per_step_us.begin(), per_step_us.end());
  const double median = per_step_us[per_step_us.size() / 2];
  std::printf("model: %s on %s, batch %d, %d rounds of %d steps\n",
              levels == 1 ? "paper ENZYMES model (1 level, clusters 10% of the largest graph)"
                          : "2 levels, per-graph clusters",
              dataset.c_str(), batch_size, rounds, steps);
  std::printf("per step: %.1f kernel launches, %.1f cuBLAS calls, %.1f uploads, %.1f device-to-device copies\n",
              launches, cublas, uploads, copies);
  std::printf("kernel arguments: %.0f bytes per step, %.0f per launch\n", argument_bytes,
              launches > 0 ? argument_bytes / launches : 0.0);
  std::printf("host us_per_step %.1f (rounds %.1f to %.1f)  us_per_launch_or_call %.2f\n", median,
              per_step_us.front(), per_step_us.back(), median / (launches + cublas + uploads + copies));
  std::printf("device memory: %.1f MiB held after the warm-up, %.1f MiB after the timed steps; %lld cudaMalloc calls "
              "during them\n",
              static_cast<double>(before.device_bytes) / (1 << 20), static_cast<double>(after.device_bytes) / (1 << 20),
              after.mallocs - before.mallocs);
  std::printf("launches, cuBLAS calls and device copies of one step: %zu different counts over %d steps (",
              launches_per_step.size(), steps);
  for (auto it = launches_per_step.begin(); it != launches_per_step.end(); ++it)
    std::printf("%s%lld x%d", it == launches_per_step.begin() ? "" : ", ", it->first, it->second);
  std::printf(")\n");
  if (sites) {
    auto per_step = [&](const std::map<std::string, long long>& now, const std::map<std::string, long long>& was,
                        const std::string& site) {
      const auto a = now.find(site), b = was.find(site);
      return static_cast<double>((a == now.end() ? 0 : a->second) - (b == was.end() ? 0 : b->second)) / n;
    };
    // The sites that launched while timed, by argument bytes, largest first: where a graph's
    // recorded launches are heaviest.
    std::vector<std::string> rows;
    for (const auto& entry : site_launches)
      if (per_step(site_launches, site_launches_before, entry.first) > 0) rows.push_back(entry.first);
    std::sort(rows.begin(), rows.end(), [&](const std::string& x, const std::string& y) {
      return per_step(site_bytes, site_bytes_before, x) > per_step(site_bytes, site_bytes_before, y);
    });
    std::printf("%-34s %14s %16s %16s\n", "launch site", "launches/step", "arg bytes/step", "bytes/launch");
    for (const std::string& site : rows) {
      const double l = per_step(site_launches, site_launches_before, site);
      const double b = per_step(site_bytes, site_bytes_before, site);
      std::printf("%-34s %14.1f %16.0f %16.0f\n", site.c_str(), l, b, l > 0 ? b / l : 0.0);
    }
  }
  // The backend's own count of its graphs (warm-up steps included); its host times are the
  // emulation's here, not a GPU's.
  if (const std::string statistics = be->step_statistics(); !statistics.empty())
    std::printf("steps %s\n", statistics.c_str());
  if (sgemm_size > 0)
    std::printf("host sgemm n=%d gflops=%.2f (one thread)\n", sgemm_size, bench::sgemm_rate(*make_cpu_backend(1), sgemm_size));
  return 0;
}
