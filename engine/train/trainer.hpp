#pragma once
// Training and evaluation of one model on one split of a dataset.
//
// An epoch shuffles the training graphs (seeded by (seed, epoch), so a resumed run draws the same
// order), trains on batches (forward, backward, clipped Adam step), then evaluates the
// validation and test graphs in evaluation mode. Loss parts and accuracies are accumulated on
// the device and read once per epoch. Optionally keeps the weights of the best validation epoch
// and restores them at the end (early stopping and model selection on validation data only).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/setting.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/data/dataset.hpp"
#include "engine/data/splits.hpp"
#include "engine/nn/model.hpp"
#include "engine/optim/adam.hpp"

namespace diffpool {

enum class StopMetric : uint8_t { validation_loss, validation_accuracy };
const EnumNames<StopMetric>& stop_metric_names();
const char* stop_metric_name(StopMetric m);
StopMetric parse_stop_metric(const std::string& text);

// Thrown by Trainer::run_epoch when its interrupt check asks to stop between two batches; the
// model is then mid-epoch, so a caller that wants to resume keeps the state of the last epoch
// boundary (Trainer::state() before run_epoch).
class Interrupted : public Error {
 public:
  using Error::Error;
};

// The allowed values of the numeric training settings, shared by TrainConfig::validate() and the
// experiment-file schema (runner/config.cpp).
namespace train_limits {
inline constexpr IntRange epochs{1, 1000000};
inline constexpr IntRange batch_size{1, 1000000};
inline constexpr Range learning_rate{0.0, 10.0, true, false};
inline constexpr Range weight_decay{0.0, 10.0};
inline constexpr Range clip_norm{0.0, 1e9};
inline constexpr IntRange patience{0, 1000000};
}  // namespace train_limits

struct TrainConfig {
  int epochs = 1000;
  int batch_size = 20;
  double learning_rate = 1e-3;
  double weight_decay = 0.0;
  double clip_norm = 2.0;             // <= 0: no clipping
  int patience = 0;                   // epochs without improvement before stopping; 0: never stop early
  StopMetric stop_metric = StopMetric::validation_loss;
  bool restore_best = false;          // restore the best validation epoch's weights at the end
  bool evaluate_test_every_epoch = true;  // false: the test split is evaluated once, at the end
  uint64_t seed = 0;
  DType dtype = DType::f32;
  void validate() const;
};

// Loss parts and accuracy over a set of graphs (means over graphs).
struct Metrics {
  double loss = 0, classification_loss = 0, link_loss = 0, entropy_loss = 0, accuracy = 0;
  int64_t graphs = 0;
  // Cluster usage of each pooling level (evaluations only; empty for training metrics and models
  // without pooling): the mean over the graphs of (distinct clusters that are some node's argmax of
  // S) / min(nodes, clusters) of the graph at that level. 1: every node, or every cluster, in use;
  // near 1 / min(nodes, clusters): the assignment collapsed onto one cluster.
  std::vector<double> cluster_usage;
};

struct EpochMetrics {
  int epoch = 0;  // counts from 1
  Metrics train;  // measured on the training batches during the epoch (training mode)
  std::optional<Metrics> validation, test;
  // The predicted class (argmax of the logits) of every test graph, in the order of the split's
  // test ids, at epochs where the test split was measured; empty otherwise. The paper protocol's
  // figure is a per-epoch test accuracy, so its confusion matrices need these.
  std::vector<int32_t> test_predictions;
  double grad_norm = 0;           // of the epoch's last step, before clipping
  double train_seconds = 0, eval_seconds = 0;
  // The part of train_seconds until the host had issued the epoch's last step, before it read the
  // epoch's sums back: on an asynchronous backend, train_seconds - this is the host waiting for the
  // device (large: the device is the bound). Near 0 says less: the host issued for the whole epoch,
  // which includes waiting on a full launch queue. Not saved in results.
  double train_issue_seconds = 0;
};

// What a model computed for one graph (evaluation mode), for result files.
struct GraphOutputs {
  int64_t graph = 0;
  int32_t label = 0;
  int32_t prediction = 0;
  std::vector<float> logits;
  std::vector<float> graph_embedding;
  struct Level {
    int64_t rows = 0;               // nodes (level 0) or clusters of this level
    int64_t embedding_dim = 0;
    std::vector<float> embedding;   // Z_l [rows, embedding_dim]
    int64_t clusters = 0;           // k_{l+1}, 0 at the last level
    std::vector<float> assignment;  // S_l [rows, clusters]
    std::vector<float> pooled_adjacency;  // A_{l+1} [clusters, clusters]
  };
  std::vector<Level> levels;
};

struct EvaluationResult {
  Metrics metrics;
  std::vector<int32_t> predictions;  // in the order of the graph ids given
  std::vector<GraphOutputs> outputs; // filled when asked for
};

// Everything needed to continue training exactly where it stopped.
struct TrainerState {
  int epoch = 0;
  int64_t adam_steps = 0;
  ParameterStore::Snapshot parameters;
  int best_epoch = 0;
  double best_value = 0;
  bool has_best = false;
  ParameterStore::Snapshot best_parameters;
  int epochs_without_improvement = 0;
};

class Trainer {
 public:
  Trainer(Backend& backend, const GraphDataset& dataset, const ModelConfig& model_config, const TrainConfig& config,
          Split split);
  ~Trainer();

  DiffPoolModel& model() { return *model_; }
  const TrainConfig& config() const { return config_; }
  const Split& split() const { return split_; }
  int epoch() const { return epoch_; }
  int best_epoch() const { return best_epoch_; }
  bool finished() const;  // all epochs done or stopped early
  // The last epoch training can reach at the earliest: the configured epochs, or sooner where early
  // stopping would end it if validation does not improve again (for forecasting a job's end).
  int earliest_last_epoch() const;

  // One epoch of training and evaluation. `interrupt`, if given, is asked between batches and
  // stops the epoch with Interrupted when it returns true.
  EpochMetrics run_epoch(const std::function<bool()>& interrupt = {});
  // Evaluates the given graphs in evaluation mode.
  EvaluationResult evaluate(const std::vector<int64_t>& graph_ids, bool collect_outputs = false);
  // Puts back the weights of the best validation epoch (if they were kept).
  void restore_best();

  TrainerState state() const;
  void load_state(const TrainerState& state);

  Workspace& workspace() { return workspace_; }

 private:
  void accumulate(const ForwardOutput& out, int64_t graphs, Tensor& sums);
  Metrics read_metrics(const Tensor& sums, int64_t graphs) const;
  void update_best(const EpochMetrics& m);

  Backend& backend_;
  const GraphDataset& dataset_;
  TrainConfig config_;
  Split split_;
  std::unique_ptr<DiffPoolModel> model_;
  std::unique_ptr<Adam> optimizer_;
  std::unique_ptr<FixedAssignments> fixed_;
  Workspace workspace_;
  Tensor sums_;       // device accumulators of training: loss, classification, link, entropy, correct
  Tensor eval_sums_;  // the same for evaluation
  int epoch_ = 0;
  int best_epoch_ = 0;
  double best_value_ = 0;
  bool has_best_ = false;
  ParameterStore::Snapshot best_parameters_;
  int epochs_without_improvement_ = 0;
  bool stopped_early_ = false;
};

// Indices split into consecutive batches of at most batch_size.
std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& ids, int batch_size);

}  // namespace diffpool
