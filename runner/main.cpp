// The `diffpool` command line (CLI11): train, run, validate, plan, report.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "engine/core/error.hpp"
#include "runner/config.hpp"
#include "runner/train_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"diffpool: hierarchical graph classification with DiffPool, from one core to a cluster"};
  app.set_version_flag("--version", std::string(DIFFPOOL_VERSION) + " (" DIFFPOOL_GIT_REVISION ")");
  app.require_subcommand(1);

  // Flags shared by the commands that read an experiment.
  std::vector<std::string> overrides;
  std::string data_dir, backend, dataset;
  int threads = 0;

  diffpool::TrainCommandOptions train;
  int epochs = 0, folds = 0;
  long long seed = -1;
  CLI::App* train_cmd = app.add_subcommand("train", "train one model on one fold of a stratified k-fold split");
  train_cmd->add_option("config", train.config_path, "experiment file (YAML); defaults apply when omitted")->check(CLI::ExistingFile);
  train_cmd->add_option("--fold", train.fold, "outer fold to train on (0-based)")->capture_default_str();
  train_cmd->add_option("--folds", folds, "number of folds of the split (evaluation.folds)");
  train_cmd->add_option("--dataset", dataset, "TU dataset name (dataset.name), e.g. ENZYMES");
  train_cmd->add_option("--epochs", epochs, "training epochs (training.epochs)");
  train_cmd->add_option("--seed", seed, "training seed (training.seed)");
  train_cmd->add_option("--data-dir", data_dir, "folder with the TU datasets (dataset.data_dir; default $DIFFPOOL_DATA)");
  train_cmd->add_option("--backend", backend, "cpu, cuda or auto (backend.kind)");
  train_cmd->add_option("--threads", threads, "BLAS threads per process (backend.cpu_threads)");
  train_cmd->add_option("--set", overrides, "override any setting: --set model.hidden_dim=64 (repeatable)");
  train_cmd->add_flag("--quiet", train.quiet, "print only the summary");

  std::string validate_path;
  CLI::App* validate_cmd = app.add_subcommand("validate", "check an experiment file and report every problem");
  validate_cmd->add_option("config", validate_path, "experiment file (YAML)")->required();
  validate_cmd->add_option("--set", overrides, "override any setting (repeatable)");

  CLI11_PARSE(app, argc, argv);

  auto add = [&](const char* key, const std::string& value) {
    if (!value.empty()) overrides.push_back(std::string(key) + "=" + value);
  };
  add("dataset.name", dataset);
  add("dataset.data_dir", data_dir);
  add("backend.kind", backend);
  if (threads > 0) add("backend.cpu_threads", std::to_string(threads));
  if (epochs > 0) add("training.epochs", std::to_string(epochs));
  if (folds > 0) add("evaluation.folds", std::to_string(folds));
  if (seed >= 0) add("training.seed", std::to_string(seed));

  try {
    if (*train_cmd) {
      train.overrides = overrides;
      return diffpool::run_train_command(train);
    }
    if (*validate_cmd) {
      diffpool::ExperimentConfig c = diffpool::load_experiment(validate_path, overrides);
      fmt::print("{}: valid experiment '{}' ({} protocol, {} folds, dataset {}, variant {})\n", validate_path, c.name,
                 diffpool::protocol_name(c.evaluation.protocol), c.evaluation.folds, c.dataset.name,
                 diffpool::variant_name(c.model.variant));
      return 0;
    }
  } catch (const diffpool::InputError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
