#include "runner/train_command.hpp"

#include <chrono>

#include "engine/core/error.hpp"
#include "engine/train/trainer.hpp"
#include "runner/config.hpp"
#include "runner/protocol/protocol.hpp"

namespace diffpool {

namespace {
using Clock = std::chrono::steady_clock;

std::string percent(double x) { return fmt::format("{:5.1f}%", 100.0 * x); }
}  // namespace

int run_train_command(const TrainCommandOptions& options) {
  ExperimentConfig config = options.config_path.empty()
                                ? parse_experiment("name: train\n", "<defaults>", options.overrides)
                                : load_experiment(options.config_path, options.overrides);
  if (options.fold < 0 || options.fold >= config.evaluation.folds)
    throw InputError(fmt::format("--fold {} is out of range: the split has {} folds (0 to {})", options.fold,
                                 config.evaluation.folds, config.evaluation.folds - 1));
  std::unique_ptr<Backend> backend = make_backend(config.backend);
  if (backend->device() == Device::cpu)
    if (const std::string advice = blas_kernel_advice(); !advice.empty()) fmt::print("note: {}\n", advice);

  const auto load_start = Clock::now();
  GraphDataset dataset = load_tu_dataset(config.dataset.name, config.dataset.options);
  check_against_dataset(config, dataset);
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();
  fmt::print("dataset {}: {} graphs, {} nodes (largest {}), {} classes, features: {} [{:.2f} s]\n", dataset.name,
             dataset.num_graphs(), dataset.num_nodes(), dataset.max_nodes(), dataset.num_classes(),
             dataset.feature_description, load_seconds);
  if (dataset.graphs_dropped > 0)
    fmt::print("dataset.max_nodes = {}: {} larger graphs dropped, as the authors' code does; results do not cover them\n",
               config.dataset.options.max_nodes, dataset.graphs_dropped);

  // The split of the protocol's tested jobs (the paper's protocol validates on the test fold itself,
  // as the authors did; the others hold out a stratified part of the training folds).
  const EvaluationProtocol& protocol = protocol_module(config.evaluation.protocol);
  const bool validation_is_test = !protocol.validates_apart_from_test();
  Split split = protocol.split(config.evaluation, protocol.tested_phase(), options.fold, dataset.labels);
  fmt::print("fold {}/{} ({} protocol): {} train, {} validation, {} test graphs; backend {}\n", options.fold,
             config.evaluation.folds, protocol_name(config.evaluation.protocol), split.train.size(),
             split.validation.size(), split.test.size(), backend->description());

  Trainer trainer(*backend, dataset, config.model, config.training, split);
  fmt::print("model {}\n", trainer.model().summary());
  std::fflush(stdout);

  EpochMetrics best;
  while (!trainer.finished()) {
    EpochMetrics m = trainer.run_epoch();
    if (trainer.best_epoch() == m.epoch) best = m;
    if (!options.quiet) {
      std::string line = fmt::format("epoch {:4d}/{}  loss {:.4f} (cls {:.4f} lp {:.4f} ent {:.4f})  train {}", m.epoch,
                                     config.training.epochs, m.train.loss, m.train.classification_loss,
                                     m.train.link_loss, m.train.entropy_loss, percent(m.train.accuracy));
      if (m.validation && !validation_is_test) line += fmt::format("  val {} (loss {:.4f})", percent(m.validation->accuracy), m.validation->loss);
      if (m.test) line += fmt::format("  test {} (loss {:.4f})", percent(m.test->accuracy), m.test->loss);
      // Cluster usage per pooling level, of the split measured last (see Metrics::cluster_usage).
      const std::optional<Metrics>& usage = m.test ? m.test : m.validation;
      if (usage && !usage->cluster_usage.empty())
        line += fmt::format("  clusters used {:.2f}", fmt::join(usage->cluster_usage, "/"));
      line += fmt::format("  {:.2f}s", m.train_seconds + m.eval_seconds);
      fmt::print("{}\n", line);
      std::fflush(stdout);
    }
  }
  if (best.epoch > 0) {
    fmt::print("best epoch {} by {}: ", best.epoch, stop_metric_name(config.training.stop_metric));
    if (best.validation) fmt::print("validation accuracy {}", percent(best.validation->accuracy));
    if (best.test) fmt::print(", test accuracy {}", percent(best.test->accuracy));
    fmt::print("\n");
  }
  return 0;
}

}  // namespace diffpool
