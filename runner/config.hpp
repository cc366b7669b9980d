#pragma once
// Experiment files: YAML read with yaml-cpp into typed settings.
//
// Every key is one line of the settings schema (fields() in config.cpp), which reads it, checks
// it, writes it into the canonical settings that job ids hash, and documents it in the key tables
// of configs/README.md (generated: `diffpool schema --update configs/README.md`). Unknown keys
// (typos), duplicate keys, keys without a value, wrong types and values out of range are errors
// naming the file, line and column, the key, the bad value and what is allowed, raised before any
// work starts; so are sweep values, each at its own place. Values given on the command line
// (--set key=value, or a flag of `diffpool train`) or by a sweep point are reported with that
// origin instead of a file position.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/setting.hpp"
#include "engine/data/dataset.hpp"
#include "engine/nn/model_config.hpp"
#include "engine/train/trainer.hpp"

namespace diffpool {

enum class Protocol : uint8_t {
  paper,    // k-fold CV; the fold-averaged best epoch of the test-fold curve, as the authors reported (optimistic)
  holdout,  // stratified k-fold outer CV, stratified inner holdout for early stopping and model selection
  nested,   // Errica et al. 2020: per outer fold, select the sweep point on the inner holdout, retrain R times
};
const EnumNames<Protocol>& protocol_names();
const char* protocol_name(Protocol p);

// The `dataset` section: which TU dataset, and the engine's options for reading it
// (options.data_dir empty: $DIFFPOOL_DATA, else ./datasets, resolved by the reader).
struct DatasetSettings {
  std::string name = "ENZYMES";
  DatasetOptions options;
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

enum class SweepMode : uint8_t { grid, random };
const EnumNames<SweepMode>& sweep_mode_names();

struct SweepSettings {
  using Mode = SweepMode;
  Mode mode = Mode::grid;
  int samples = 10;  // random search
  uint64_t seed = 0;
  std::vector<SweepParameter> parameters;
};

enum class SaveOutputs : uint8_t { none, evaluation, all };
const EnumNames<SaveOutputs>& save_outputs_names();
// The live line (rewritten in place) or plain lines; automatic: live on a terminal, plain under
// an MPI launcher (its ranks see a pseudo-terminal even when mpirun's output goes to a file).
enum class ProgressDisplay : uint8_t { automatic, live, plain };
const EnumNames<ProgressDisplay>& progress_display_names();

struct OutputSettings {
  std::string dir;                 // empty: runs/<experiment name>
  using Save = SaveOutputs;
  Save save_outputs = Save::evaluation;
  int max_graphs = 0;              // 0: every graph of the saved split
  int checkpoint_every = 10;       // epochs between checkpoints of a running job (0: never)
  int progress_seconds = 30;       // interval of plain progress lines when not on a terminal
  int storage_wait_seconds = 600;  // how long a finished job waits for room to write its result
  int claim_timeout_seconds = 300;  // a job claim not refreshed this long is stale (runner/job_claims.hpp)
  using ProgressDisplay = diffpool::ProgressDisplay;
  ProgressDisplay progress = ProgressDisplay::automatic;
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
  BackendOptions backend;  // cuda_device is chosen per rank, not read from the file
  YAML::Node document;  // the parsed document with overrides applied (sweep points start from it)
  std::map<std::string, std::string> origins;  // keys set by --set or a sweep point: where they came from

  // Every setting that changes what a job computes, one "key=value" per line in a fixed order;
  // job ids and the experiment id are hashes of it. Its numbers have 17 significant digits
  // (0.0050000000000000001): frozen, since changing the text would change every id.
  std::string canonical_settings() const;
  // The same keys and values as the user reads them: numbers in the shortest form that reads back
  // to the same double (0.005). What job files store (/settings) and what is printed.
  std::string settings_text() const;
};

// Raised for every configuration problem; the message is complete and meant for users.
class ConfigError : public InputError {
 public:
  using InputError::InputError;
};

// Limits on what an experiment may ask for, checked before anything is expanded or read whole.
inline constexpr std::size_t kMaxExperimentFileBytes = 1 << 20;  // 1 MiB
inline constexpr int64_t kMaxSweepJobs = 100000;                 // sweep points x folds x repeats

// ---- the settings schema ---------------------------------------------------------------------
// Every key of an experiment file is one entry of one table in config.cpp; parsing, --set,
// validation, the canonical settings behind job ids and the key tables of configs/README.md
// (`diffpool schema --markdown`) are all driven by it.

// What a key's value changes: what a job computes (its id), only the experiment's design (the
// experiment id: name, repeats, the sweep), or nothing results depend on (paths, progress, backend).
enum class Affects : uint8_t { job, experiment, none };
enum class SettingKind : uint8_t { string, boolean, integer, number, integer_list, name, sweep_parameters };

struct SettingInfo {
  std::string key;              // "model.hidden_dim"; the top-level name is "name"
  SettingKind kind = SettingKind::string;
  Affects affects = Affects::job;
  IntRange integers;            // integer, integer_list: each value
  Range numbers;                // number
  bool may_be_empty = true;     // integer_list: whether [] is allowed
  std::vector<std::string> choices;  // name: the allowed names
  std::string default_value;    // the default as canonical text ("64", "[2,3,3]", "diffpool")
  std::string default_text;     // the default as the README shows it
  std::string allowed;          // what the README shows as allowed
  std::string doc;              // one line
  // A key added after experiments were run with its default: its canonical text is left out while
  // it holds its default, so those experiments keep their job ids (and resume).
  bool omitted_at_default = false;
};
// Every key, section by section, in the order of the canonical settings.
const std::vector<SettingInfo>& settings_schema();
// The key tables of configs/README.md, generated from the schema.
std::string schema_markdown();
// `readme` with the text between the generated-keys markers replaced by schema_markdown();
// throws ConfigError when the markers are missing.
std::string with_generated_key_tables(const std::string& readme);

// The checks that need the dataset (run and train make them when they load it, before any job;
// validate and plan do not read datasets): evaluation.folds at most the dataset's graph count.
// Throws ConfigError naming the place of evaluation.folds, its value and the dataset's size.
void check_against_dataset(const ExperimentConfig& config, const GraphDataset& dataset);

// Checks one value given on the command line (a flag like --epochs) against the schema: throws
// ConfigError naming `argument` ("--epochs 0"), the key and what is allowed.
void check_setting_value(const std::string& key, const std::string& value, const std::string& argument);

// Reads and validates a file. overrides: "key=value" pairs (command line), applied before checks.
ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
// Parses a document from text ("<source>" names it in messages).
ExperimentConfig parse_experiment(const std::string& text, const std::string& source,
                                  const std::vector<std::string>& overrides = {});
// Re-validates a copy of `base` with some keys replaced (a sweep point); `origin` names the point.
// The result is the point's typed settings only: its `document` is null, its `origins` empty and
// its sweep section has no parameters (a plan holds one such config per point, so everything
// that is the same for every point stays in `base`; point_document rebuilds the document).
ExperimentConfig with_overrides(const ExperimentConfig& base, const std::map<std::string, YAML::Node>& values,
                                const std::string& origin);
// The document of a sweep point, as written into its jobs' records: base's document, its sweep
// section included, with the keys of `values` replaced (base's own document when there are none).
YAML::Node point_document(const ExperimentConfig& base, const std::map<std::string, YAML::Node>& values,
                          const std::string& origin);

}  // namespace diffpool
