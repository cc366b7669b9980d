#pragma once
// Experiment files: YAML read with yaml-cpp into typed settings.
//
// Every key is documented in configs/README.md. Unknown keys (typos), wrong types and values out
// of range are errors naming the file, line and column, the key, the bad value and what is
// allowed, raised before any work starts. Values given on the command line (--set key=value) or
// by a sweep point are reported with that origin instead of a file position.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/data/dataset.hpp"
#include "engine/nn/model_config.hpp"
#include "engine/train/trainer.hpp"

namespace diffpool {

enum class Protocol : uint8_t {
  paper,    // k-fold CV; the fold-averaged best epoch of the test-fold curve, as the authors reported (optimistic)
  holdout,  // stratified k-fold outer CV, stratified inner holdout for early stopping and model selection
  nested,   // Errica et al. 2020: per outer fold, select the sweep point on the inner holdout, retrain R times
};
const char* protocol_name(Protocol p);

struct DatasetSettings {
  std::string name = "ENZYMES";
  std::string data_dir;  // empty: $DIFFPOOL_DATA, else ./datasets
  FeatureMode features = FeatureMode::automatic;
  int degree_cap = 64;
  int constant_dim = 10;
  bool keep_self_loops = false;
  int64_t max_nodes = 0;  // > 0: drop larger graphs (the authors' --max-nodes); 0: keep all
  DatasetOptions options() const;  // with the data directory resolved
};

struct EvaluationSettings {
  Protocol protocol = Protocol::holdout;
  int folds = 10;
  double validation_fraction = 0.1;
  int repeats = 1;              // trainings per (sweep point, fold); nested: retrainings of the winner
  uint64_t split_seed = 0;
  std::vector<int> only_folds;  // run only these outer folds (empty: all)
};

// One swept key: a list of values (grid, or sampled uniformly in random search), or a
// distribution for random search.
struct SweepParameter {
  std::string key;                 // "model.hidden_dim"
  std::vector<YAML::Node> values;  // list form
  std::string distribution;        // "", "uniform", "log_uniform", "int_uniform"
  double low = 0, high = 0;
  std::string origin;              // file:line:column of the entry
};

struct SweepSettings {
  enum class Mode : uint8_t { grid, random } mode = Mode::grid;
  int samples = 10;  // random search
  uint64_t seed = 0;
  std::vector<SweepParameter> parameters;
};

struct OutputSettings {
  std::string dir;                 // empty: runs/<experiment name>
  enum class Save : uint8_t { none, evaluation, all } save_outputs = Save::evaluation;
  int max_graphs = 0;              // 0: every graph of the saved split
  int checkpoint_every = 10;       // epochs between checkpoints of a running job (0: never)
  int progress_seconds = 30;       // interval of plain progress lines when not on a terminal
  // The live line (rewritten in place) or plain lines; automatic: live on a terminal, plain under
  // an MPI launcher (its ranks see a pseudo-terminal even when mpirun's output goes to a file).
  enum class ProgressDisplay : uint8_t { automatic, live, plain } progress = ProgressDisplay::automatic;
};

struct BackendSettings {
  BackendKind kind = BackendKind::cpu;
  int cpu_threads = 1;
};

struct ExperimentConfig {
  std::string name = "experiment";
  std::string source;  // the file it was read from
  DatasetSettings dataset;
  ModelConfig model;
  TrainConfig training;
  EvaluationSettings evaluation;
  SweepSettings sweep;
  OutputSettings output;
  BackendSettings backend;
  YAML::Node document;  // the parsed document with overrides applied (sweep points start from it)

  // Every setting that changes what a job computes, one "key=value" per line in a fixed order;
  // job ids are hashes of it.
  std::string canonical_settings() const;
};

// Raised for every configuration problem; the message is complete and meant for users.
class ConfigError : public InputError {
 public:
  using InputError::InputError;
};

// Reads and validates a file. overrides: "key=value" pairs (command line), applied before checks.
ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
// Parses a document from text ("<source>" names it in messages).
ExperimentConfig parse_experiment(const std::string& text, const std::string& source,
                                  const std::vector<std::string>& overrides = {});
// Re-validates a copy of `base` with some keys replaced (a sweep point); `origin` names the point.
ExperimentConfig with_overrides(const ExperimentConfig& base, const std::map<std::string, YAML::Node>& values,
                                const std::string& origin);

}  // namespace diffpool
