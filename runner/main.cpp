// The `diffpool` command line (CLI11): run, plan, validate, report, train.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.hpp"
#include "results/atomic_file.hpp"
#include "results/report.hpp"
#include "runner/blas_environment.hpp"
#include "runner/build_info.hpp"
#include "runner/config.hpp"
#include "runner/plan.hpp"
#include "runner/run_command.hpp"
#include "runner/train_command.hpp"

int main(int argc, char** argv) {
  diffpool::ensure_blas_thread_environment(argv);
  CLI::App app{"diffpool: hierarchical graph classification with DiffPool, from one core to a cluster"};
  app.set_version_flag("--version", std::string(diffpool::build_version()) + " (" + diffpool::build_git_revision() + ")");
  app.require_subcommand(1);

  std::vector<std::string> overrides;
  auto add_set = [&](CLI::App* cmd) {
    cmd->add_option("--set", overrides, "override any setting: --set model.hidden_dim=64 (repeatable)");
  };

  diffpool::RunCommandOptions run;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "run an experiment: every sweep point x fold x repeat, over all MPI ranks; rerun to resume");
  run_cmd->add_option("config", run.config_path, "experiment file (YAML)")->required()->check(CLI::ExistingFile);
  add_set(run_cmd);
  run_cmd->add_flag("--summary-only", run.summary_only, "rebuild summary.h5 and summary.csv from the job files, run nothing");
  run_cmd->add_flag("--verbose", run.verbose, "also print every assignment of a job to a rank");
  run_cmd->footer(
      "Exit codes: 0 all jobs completed; 3 finished with failed jobs (recorded, retried by a rerun); 75 stopped by "
      "SIGTERM/SIGUSR1/SIGINT after checkpointing (rerun or requeue to resume); 2 invalid input; 1 internal error.");

  std::string plan_path;
  CLI::App* plan_cmd = app.add_subcommand("plan", "print the expanded job list (sweep points x folds x repeats) and its status");
  plan_cmd->add_option("config", plan_path, "experiment file (YAML)")->required()->check(CLI::ExistingFile);
  add_set(plan_cmd);

  std::string validate_path;
  CLI::App* validate_cmd = app.add_subcommand("validate", "check an experiment file; report the first problem with its place");
  validate_cmd->add_option("config", validate_path, "experiment file (YAML)")->required();
  add_set(validate_cmd);

  bool schema_markdown = false;
  CLI::App* schema_cmd = app.add_subcommand("schema", "print every key of an experiment file (the key tables of configs/README.md)");
  schema_cmd->add_flag("--markdown", schema_markdown, "as the Markdown tables of configs/README.md (the default)");
  std::string schema_update;
  schema_cmd->add_option("--update", schema_update, "rewrite the generated key tables of this README (configs/README.md)");

  diffpool::ReportOptions report;
  CLI::App* report_cmd = app.add_subcommand("report", "the results table of one or more experiments, beside the published numbers");
  report_cmd->add_option("results", report.results, "experiment output folders")->required();
  report_cmd->add_option("--compare", report.compare,
                         "BASELINE folder: compare every experiment with it fold by fold (paired t-test, 95% CI); "
                         "same dataset, folds and split seed required");
  report_cmd->add_option("--csv", report.csv, "write the table as CSV here (default, for one folder without --compare: <folder>/report.csv; otherwise none)");
  report_cmd->add_option("--plots", report.plots, "also draw the PNG plots into this folder");
  report_cmd->add_option("--graph", report.graph, "the graph whose assignments and clusters are drawn (default: the first saved)");

  std::vector<std::string> merge_inputs;
  std::string merge_out;
  CLI::App* merge_cmd = app.add_subcommand(
      "merge", "one experiment's summary from the summaries of runs of its folds in separate folders (no job files needed)");
  merge_cmd->add_option("results", merge_inputs, "output folders of runs of the same experiment (any folds)")->required();
  merge_cmd->add_option("--out", merge_out, "folder for the merged summary.h5, summary.csv and experiment.yaml")->required();
  merge_cmd->footer("Exit codes: 0 every job of the experiment is in the inputs; 3 some are missing or failed; 2 invalid input.");

  diffpool::TrainCommandOptions train;
  // Read as text and checked against the schema (diffpool::check_setting_value), so a bad value
  // is an error naming the flag, never a silent default.
  std::string epochs, folds, threads, seed;
  std::string data_dir, backend, dataset;
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
  add_set(train_cmd);
  train_cmd->add_flag("--quiet", train.quiet, "print only the summary");

  // The parser's own errors (an unknown subcommand or flag, a missing argument, a value that is
  // not a number) are bad input: its message, then exit 2, as the README's table says. Help and
  // --version keep CLI11's exit status 0.
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    app.exit(e, out, err);
    fmt::print(stderr, "{}", diffpool::escape_unprintable(err.str()));
    fmt::print("{}", out.str());
    return diffpool::kExitInput;
  }

  try {
    if (*run_cmd) {
      run.overrides = overrides;
      return diffpool::run_experiment_command(&argc, &argv, run);
    }
    if (*plan_cmd) return diffpool::plan_command(plan_path, overrides);
    if (*validate_cmd) {
      diffpool::ExperimentConfig c = diffpool::load_experiment(validate_path, overrides);
      diffpool::make_plan(c);  // every sweep point, checked as plan and run check them
      fmt::print("{}: valid experiment '{}' ({} protocol, {} folds, dataset {}, variant {})\n", validate_path, c.name,
                 diffpool::protocol_name(c.evaluation.protocol), c.evaluation.folds, c.dataset.name,
                 diffpool::variant_name(c.model.variant));
      return 0;
    }
    if (*report_cmd) return diffpool::run_report(report);
    if (*merge_cmd) return diffpool::merge_command(merge_inputs, merge_out);
    if (*schema_cmd) {
      if (schema_update.empty()) {
        fmt::print("{}", diffpool::schema_markdown());
        return 0;
      }
      std::ifstream in(schema_update, std::ios::binary);
      if (!in) throw diffpool::InputError(fmt::format("cannot open '{}'", schema_update));
      std::stringstream text;
      text << in.rdbuf();
      in.close();
      const std::string updated = diffpool::with_generated_key_tables(text.str());
      std::ofstream(schema_update, std::ios::binary) << updated;
      fmt::print("{}: key tables rewritten from the schema\n", schema_update);
      return 0;
    }
    if (*train_cmd) {
      // A flag's value is checked where the flag is named; then it is one more --set.
      auto flag = [&](const char* name, const char* key, const std::string& value) {
        if (!train_cmd->get_option(name)->count()) return;
        diffpool::check_setting_value(key, value, fmt::format("{} {}", name, value));
        overrides.push_back(std::string(key) + "=" + value);
      };
      flag("--dataset", "dataset.name", dataset);
      flag("--data-dir", "dataset.data_dir", data_dir);
      flag("--backend", "backend.kind", backend);
      flag("--threads", "backend.cpu_threads", threads);
      flag("--epochs", "training.epochs", epochs);
      flag("--folds", "evaluation.folds", folds);
      flag("--seed", "training.seed", seed);
      train.overrides = overrides;
      return diffpool::run_train_command(train);
    }
  } catch (const diffpool::InputError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return diffpool::kExitInput;
  } catch (const diffpool::StorageFullError& e) {  // merge's summary, report's CSV
    fmt::print(stderr, "error: {}; free space, then run the same command again\n", e.what());
    return diffpool::kExitStorageFull;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user gave that cannot be made or read (a folder under /proc, below a file, a
    // name longer than the file system allows): bad input, naming the path and the reason.
    fmt::print(stderr, "error: {}\n", diffpool::escape_unprintable(e.what()));
    return diffpool::kExitInput;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", diffpool::escape_unprintable(e.what()));
    return diffpool::kExitInternal;
  }
  return 0;
}
