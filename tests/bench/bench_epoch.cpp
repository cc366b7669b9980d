// Seconds per training epoch of the engine, for the benchmark against the padded PyTorch
// reference (tests/bench/enzymes_vs_pytorch.sh). Trains on the training part of fold 0 of a
// stratified 10-fold split (90% of the graphs) and times the training part of each epoch (no
// evaluation); prints the median over the epochs after the warm-up epochs (default one).
//
// Beside the seconds it prints the epoch's matrix-product FLOPs, counted from the shapes of every
// product the engine asked the backend for (engine/backend/counting_backend.hpp), the achieved
// GFLOP/s, and, measured in the same run on the same backend, the rate of one large square SGEMM
// (the hardware's practical limit for one thread), so efficiency is a ratio taken in one process.
//
//   bench_epoch [experiment.yaml] [--epochs N] [--warmup N] [--sgemm N] [--graphs N] [--every-graph]
//               [--estimate-only] [--profile] [--ceiling] [--batches] [--set key=value ...]
//
// --batches times building the epoch's batches alone (build_batch into a reset workspace, the
// graphs in a shuffled order, batch_size at a time), without training: the share of an epoch that
// is batch building.
// --profile times every backend call of the timed epochs (tests/bench/timing_backend.hpp) and
// prints, per epoch, the calls and milliseconds of each primitive and of each primitive-and-shape.
// --ceiling records the exact shape of every dense product (GEMM and batched GEMM) of the timed
// epochs, times each shape alone on the same backend, and prints what the epoch's dense products
// would take at those isolated rates: the rate this GEMM reaches on the model's own shapes, the
// most the products could reach whatever the engine does around them (sparse products and the
// pairwise link loss are not included).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "engine/backend/counting_backend.hpp"
#include "engine/train/cost.hpp"
#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/data/splits.hpp"
#include "engine/train/trainer.hpp"
#include "runner/config.hpp"
#include "tests/bench/sgemm_rate.hpp"
#include "tests/bench/timing_backend.hpp"

namespace {
// Seconds of one product of `shape` on `backend` alone, operands allocated for it and reused (warm
// in the cache, as the model's are not always): the best of three timings of enough repetitions
// for at least 2 ms.
double isolated_gemm_seconds(diffpool::Backend& backend, const diffpool::bench::TimingBackend::GemmShape& s) {
  using namespace diffpool;
  const bool ta = s.trans_a == Trans::yes, tb = s.trans_b == Trans::yes;
  const int64_t lda = ta ? s.m : s.k, ldb = tb ? s.k : s.n;
  Tensor a = allocate_tensor(backend, Shape{s.batch * s.m * s.k}, s.dtype),
         b = allocate_tensor(backend, Shape{s.batch * s.k * s.n}, s.dtype),
         c = allocate_tensor(backend, Shape{s.batch * s.m * s.n}, s.dtype);
  backend.fill(a, 0.5);
  backend.fill(b, 0.25);
  backend.fill(c, 0.0);
  const auto once = [&] {
    if (s.batch == 1)
      backend.gemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0, a.data(), lda, b.data(), ldb, s.beta, c.data(), s.n, s.dtype);
    else
      backend.gemm_strided_batched(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0, a.data(), lda, s.m * s.k, b.data(), ldb,
                                   s.k * s.n, s.beta, c.data(), s.n, s.m * s.n, s.batch, s.dtype);
  };
  once();
  double best = 1e30;
  for (int trial = 0; trial < 3; ++trial) {
    backend.synchronize();
    const auto start = std::chrono::steady_clock::now();
    int64_t reps = 0;
    double elapsed = 0;
    while (elapsed < 2e-3 || reps == 0) {
      once();
      ++reps;
      backend.synchronize();
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    best = std::min(best, elapsed / static_cast<double>(reps));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"seconds per training epoch of the diffpool engine"};
  std::string config_path;
  int epochs = 5;
  int warmup = 1;
  int sgemm_size = 2048;
  int64_t graphs = 0;
  bool estimate_only = false;
  bool every_graph = false;
  bool profile = false;
  bool ceiling = false;
  bool batches_only = false;
  std::vector<std::string> overrides;
  app.add_option("config", config_path, "experiment file")->check(CLI::ExistingFile);
  app.add_option("--epochs", epochs, "timed epochs (after the warm-up epochs)")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed epochs first")->capture_default_str();
  app.add_option("--sgemm", sgemm_size, "side of the square SGEMM timed for the reference rate (0: skip)")
      ->capture_default_str();
  app.add_option("--graphs", graphs, "train on the first N graphs of fold 0's training part only (0: all)");
  app.add_flag("--every-graph", every_graph, "train on every graph of the dataset (no held-out fold)");
  app.add_flag("--estimate-only", estimate_only, "print the estimated product FLOPs of an epoch and exit (no training)");
  app.add_flag("--profile", profile, "time every backend call and print where an epoch's time goes");
  app.add_flag("--ceiling", ceiling,
               "time each dense product shape of an epoch alone: the rate the backend's GEMM reaches on the "
               "epoch's own shapes, the most the epoch's products could reach");
  app.add_flag("--batches", batches_only, "time building the epoch's batches alone (no training)");
  app.add_option("--set", overrides, "override a setting (repeatable)");
  CLI11_PARSE(app, argc, argv);
  try {
    using namespace diffpool;
    ExperimentConfig c = config_path.empty() ? parse_experiment("name: bench\n", "<defaults>", overrides)
                                             : load_experiment(config_path, overrides);
    auto real_backend = make_backend(c.backend);
    bench::TimingBackend timing(*real_backend);
    CountingBackend counter(profile || ceiling ? static_cast<Backend&>(timing) : *real_backend);
    Backend* backend = &counter;
    GraphDataset dataset = load_tu_dataset(c.dataset.name, c.dataset.options);
    Split split = make_fold_split(dataset.labels, 10, 0, 0.0, c.evaluation.split_seed);
    split.test.clear();  // time training only
    if (every_graph) {
      split.train.resize(static_cast<std::size_t>(dataset.num_graphs()));
      for (std::size_t g = 0; g < split.train.size(); ++g) split.train[g] = static_cast<int64_t>(g);
    }
    if (graphs > 0 && graphs < static_cast<int64_t>(split.train.size())) split.train.resize(static_cast<std::size_t>(graphs));
    TrainConfig t = c.training;
    t.epochs = epochs + warmup;
    if (estimate_only) {
      const auto start = std::chrono::steady_clock::now();
      const EpochCost estimate = estimate_epoch_cost(dataset, c.model, t, split);
      const auto middle = std::chrono::steady_clock::now();
      const EpochCost summed = epoch_cost(estimate_graph_costs(dataset, c.model, t.dtype), split, false);
      const auto end = std::chrono::steady_clock::now();
      fmt::print("dataset {} train {} estimated gflop_per_epoch={:.4f} by batches ({:.3f} s), {:.4f} graph by graph "
                 "({:.3f} s)\n", dataset.name, split.train.size(), estimate.train_flops / 1e9,
                 std::chrono::duration<double>(middle - start).count(), summed.train_flops / 1e9,
                 std::chrono::duration<double>(end - middle).count());
      return 0;
    }
    if (batches_only) {
      Workspace ws(*real_backend);
      std::vector<int64_t> order = split.train;
      Rng rng(7);
      std::vector<double> batch_seconds;
      std::size_t batches = 0;
      for (int e = 0; e < warmup + epochs; ++e) {
        rng.shuffle(order);
        const auto start = std::chrono::steady_clock::now();
        batches = 0;
        for (std::size_t at = 0; at < order.size(); at += static_cast<std::size_t>(t.batch_size), ++batches) {
          const std::size_t end = std::min(order.size(), at + static_cast<std::size_t>(t.batch_size));
          const std::vector<int64_t> ids(order.begin() + static_cast<std::ptrdiff_t>(at),
                                         order.begin() + static_cast<std::ptrdiff_t>(end));
          ws.reset();
          const GraphBatch batch = build_batch(dataset, ids, ws, t.dtype);
          (void)batch;
        }
        if (e >= warmup) batch_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      std::sort(batch_seconds.begin(), batch_seconds.end());
      fmt::print("dataset {} train {} batches {} of {}\n", dataset.name, split.train.size(), batches, t.batch_size);
      fmt::print("batches seconds_per_epoch={:.5f} epochs={} min={:.5f} max={:.5f}\n", batch_seconds[batch_seconds.size() / 2],
                 batch_seconds.size(), batch_seconds.front(), batch_seconds.back());
      return 0;
    }
    Trainer trainer(*backend, dataset, c.model, t, split);
    std::vector<double> seconds, issue_seconds, flops;
    while (!trainer.finished()) {
      counter.reset();
      if (static_cast<int>(seconds.size()) == warmup) timing.reset();
      const EpochMetrics m = trainer.run_epoch();
      seconds.push_back(m.train_seconds);
      issue_seconds.push_back(m.train_issue_seconds);
      flops.push_back(counter.flops().total());
    }
    seconds.erase(seconds.begin(), seconds.begin() + warmup);
    issue_seconds.erase(issue_seconds.begin(), issue_seconds.begin() + warmup);
    std::sort(seconds.begin(), seconds.end());
    std::sort(issue_seconds.begin(), issue_seconds.end());
    const double median = seconds[seconds.size() / 2];
    const double epoch_flops = flops.back();  // the same every epoch: the shapes do not change
    const EpochCost estimate = estimate_epoch_cost(dataset, c.model, t, split);
    fmt::print("dataset {} graphs {} train {} backend {} model {}\n", dataset.name, dataset.num_graphs(),
               split.train.size(), backend->description(), trainer.model().summary());
    fmt::print("engine seconds_per_epoch={:.5f} epochs={} min={:.5f} max={:.5f} workspace_mib={:.1f}\n", median,
               seconds.size(), seconds.front(), seconds.back(),
               static_cast<double>(trainer.workspace().high_water_bytes()) / (1 << 20));
    // The host's share: the time until the epoch's last step was issued (on the CPU backend all of
    // it; on CUDA, what is left is the wait for the device).
    fmt::print("host issue_seconds_per_epoch={:.5f} share={:.3f}\n", issue_seconds[issue_seconds.size() / 2],
               issue_seconds[issue_seconds.size() / 2] / median);
    if (const std::string steps = real_backend->step_statistics(); !steps.empty()) fmt::print("steps {}\n", steps);
    const double gflops = epoch_flops / median / 1e9;
    fmt::print("products gflop_per_epoch={:.4f} estimated={:.4f} achieved_gflops={:.2f}\n", epoch_flops / 1e9,
               estimate.train_flops / 1e9, gflops);
    if (profile) fmt::print("{}", timing.report(timing.total_seconds(), epochs));
    double rate = 0;
    if (sgemm_size > 0) {
      rate = bench::sgemm_rate(*real_backend, sgemm_size);
      fmt::print("sgemm n={} gflops={:.2f} efficiency={:.3f}\n", sgemm_size, rate, gflops / rate);
    }
    if (ceiling) {
      // The timed epochs' dense products, each shape timed alone: their GFLOP at the isolated rates.
      double dense_flops = 0, isolated_seconds = 0;
      for (const auto& [shape, calls] : timing.gemm_shapes()) {
        const double per_epoch = static_cast<double>(calls) / epochs;
        dense_flops += per_epoch * 2.0 * static_cast<double>(shape.m) * static_cast<double>(shape.n) *
                       static_cast<double>(shape.k) * static_cast<double>(shape.batch);
        isolated_seconds += per_epoch * isolated_gemm_seconds(*real_backend, shape);
      }
      const double ceiling_rate = dense_flops / isolated_seconds / 1e9;
      fmt::print("ceiling dense_gflop_per_epoch={:.4f} shapes={} isolated_seconds={:.5f} isolated_gflops={:.2f}{} "
                 "epoch_share_of_ceiling={:.3f}\n",
                 dense_flops / 1e9, timing.gemm_shapes().size(), isolated_seconds, ceiling_rate,
                 rate > 0 ? fmt::format(" ceiling_efficiency={:.3f}", ceiling_rate / rate) : std::string(),
                 gflops / ceiling_rate);
    }
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
