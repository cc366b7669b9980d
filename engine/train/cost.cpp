#include "engine/train/cost.hpp"

#include <memory>

#include "engine/autodiff/tape.hpp"
#include "engine/backend/counting_backend.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/nn/model.hpp"

namespace diffpool {

namespace {
// The model on a counting backend that computes nothing (see counting_backend.hpp).
struct DryModel {
  DryModel(const GraphDataset& dataset, const ModelConfig& config, DType dtype)
      : host(make_cpu_backend(1)), counter(*host, /*execute=*/false),
        model(config, dataset.num_features, dataset.num_classes(), dataset.max_nodes()), workspace(counter),
        dtype(dtype) {
    model.parameters().allocate(counter, dtype);
    if (config.variant == Variant::diffpool_det)
      fixed = std::make_unique<FixedAssignments>(model.fixed_assignments(dataset));
  }
  // Product FLOPs of one pass over the graphs `ids` as one batch: training (forward and backward)
  // or evaluation (forward).
  double pass(const GraphDataset& dataset, const std::vector<int64_t>& ids, bool training) {
    counter.reset();
    workspace.reset();
    Tape tape(counter, workspace);
    GraphBatch batch = build_batch(dataset, ids, workspace, dtype, fixed.get());
    if (training) {
      ForwardOutput out = model.forward(tape, batch, true, 0);
      model.parameters().zero_grad();
      tape.backward(out.loss);
    } else {
      NoGradScope no_grad(tape);
      model.forward(tape, batch, false, 0);
    }
    return counter.flops().total();
  }

  std::unique_ptr<Backend> host;
  CountingBackend counter;
  DiffPoolModel model;
  Workspace workspace;
  DType dtype;
  std::unique_ptr<FixedAssignments> fixed;
};
}  // namespace

GraphCosts estimate_graph_costs(const GraphDataset& dataset, const ModelConfig& model, DType dtype) {
  DryModel dry(dataset, model, dtype);
  GraphCosts costs;
  const int64_t n = dataset.num_graphs();
  costs.train.resize(static_cast<std::size_t>(n));
  costs.evaluation.resize(static_cast<std::size_t>(n));
  for (int64_t g = 0; g < n; ++g) {
    costs.train[static_cast<std::size_t>(g)] = dry.pass(dataset, {g}, true);
    costs.evaluation[static_cast<std::size_t>(g)] = dry.pass(dataset, {g}, false);
  }
  return costs;
}

EpochCost epoch_cost(const GraphCosts& costs, const Split& split, bool evaluate_test_every_epoch) {
  EpochCost cost;
  for (int64_t g : split.train) cost.train_flops += costs.train[static_cast<std::size_t>(g)];
  cost.train_graphs = static_cast<int64_t>(split.train.size());
  auto evaluate = [&](const std::vector<int64_t>& ids) {
    for (int64_t g : ids) cost.evaluation_flops += costs.evaluation[static_cast<std::size_t>(g)];
    cost.evaluated_graphs += static_cast<int64_t>(ids.size());
  };
  evaluate(split.validation);
  if (evaluate_test_every_epoch) evaluate(split.test);
  return cost;
}

EpochCost estimate_epoch_cost(const GraphDataset& dataset, const ModelConfig& model_config, const TrainConfig& training,
                              const Split& split) {
  DryModel dry(dataset, model_config, training.dtype);
  EpochCost cost;
  for (const auto& ids : make_batches(split.train, training.batch_size)) cost.train_flops += dry.pass(dataset, ids, true);
  cost.train_graphs = static_cast<int64_t>(split.train.size());
  std::vector<int64_t> evaluated = split.validation;
  if (training.evaluate_test_every_epoch) evaluated.insert(evaluated.end(), split.test.begin(), split.test.end());
  for (const auto& ids : make_batches(evaluated, training.batch_size)) cost.evaluation_flops += dry.pass(dataset, ids, false);
  cost.evaluated_graphs = static_cast<int64_t>(evaluated.size());
  return cost;
}

}  // namespace diffpool
