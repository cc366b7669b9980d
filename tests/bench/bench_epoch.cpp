// Seconds per training epoch of the engine, for the benchmark against the padded PyTorch
// reference (tests/bench/enzymes_vs_pytorch.sh). Trains on the training part of fold 0 of a
// stratified 10-fold split (90% of the graphs) and times the training part of each epoch (no
// evaluation); prints the median over the epochs after the warm-up epochs (default one).
//
//   bench_epoch [experiment.yaml] [--epochs N] [--set key=value ...]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "engine/core/error.hpp"
#include "engine/data/splits.hpp"
#include "engine/train/trainer.hpp"
#include "runner/config.hpp"

int main(int argc, char** argv) {
  CLI::App app{"seconds per training epoch of the diffpool engine"};
  std::string config_path;
  int epochs = 5;
  int warmup = 1;
  std::vector<std::string> overrides;
  app.add_option("config", config_path, "experiment file")->check(CLI::ExistingFile);
  app.add_option("--epochs", epochs, "timed epochs (after the warm-up epochs)")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed epochs first")->capture_default_str();
  app.add_option("--set", overrides, "override a setting (repeatable)");
  CLI11_PARSE(app, argc, argv);
  try {
    using namespace diffpool;
    ExperimentConfig c = config_path.empty() ? parse_experiment("name: bench\n", "<defaults>", overrides)
                                             : load_experiment(config_path, overrides);
    auto backend = make_backend(c.backend);
    GraphDataset dataset = load_tu_dataset(c.dataset.name, c.dataset.options);
    Split split = make_fold_split(dataset.labels, 10, 0, 0.0, c.evaluation.split_seed);
    split.test.clear();  // time training only
    TrainConfig t = c.training;
    t.epochs = epochs + warmup;
    Trainer trainer(*backend, dataset, c.model, t, split);
    std::vector<double> seconds;
    while (!trainer.finished()) seconds.push_back(trainer.run_epoch().train_seconds);
    seconds.erase(seconds.begin(), seconds.begin() + warmup);
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    fmt::print("dataset {} graphs {} train {} backend {} model {}\n", dataset.name, dataset.num_graphs(),
               split.train.size(), backend->name(), trainer.model().summary());
    fmt::print("engine seconds_per_epoch={:.5f} epochs={} min={:.5f} max={:.5f} workspace_mib={:.1f}\n", median,
               seconds.size(), seconds.front(), seconds.back(),
               static_cast<double>(trainer.workspace().high_water_bytes()) / (1 << 20));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
