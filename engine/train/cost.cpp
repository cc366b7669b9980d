#include "engine/train/cost.hpp"

#include <memory>

#include "engine/autodiff/tape.hpp"
#include "engine/backend/counting_backend.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/nn/model.hpp"

namespace diffpool {

EpochCost estimate_epoch_cost(const GraphDataset& dataset, const ModelConfig& model_config, const TrainConfig& training,
                              const Split& split) {
  std::unique_ptr<Backend> host = make_cpu_backend(1);
  CountingBackend counter(*host, /*execute=*/false);
  DiffPoolModel model(model_config, dataset.num_features, dataset.num_classes(), dataset.max_nodes());
  ParameterStore& params = model.parameters();
  params.allocate(counter, training.dtype);
  std::unique_ptr<FixedAssignments> fixed;
  if (model_config.variant == Variant::diffpool_det)
    fixed = std::make_unique<FixedAssignments>(compute_fixed_assignments(dataset, model.cluster_counts()));
  Workspace workspace(counter);

  EpochCost cost;
  for (const auto& ids : make_batches(split.train, training.batch_size)) {
    workspace.reset();
    Tape tape(counter, workspace);
    GraphBatch batch = build_batch(dataset, ids, workspace, training.dtype, fixed.get());
    ForwardOutput out = model.forward(tape, batch, true, 0);
    params.zero_grad();
    tape.backward(out.loss);
  }
  cost.train_flops = counter.flops().total();
  cost.train_graphs = static_cast<int64_t>(split.train.size());
  counter.reset();

  std::vector<int64_t> evaluated = split.validation;
  if (training.evaluate_test_every_epoch) evaluated.insert(evaluated.end(), split.test.begin(), split.test.end());
  for (const auto& ids : make_batches(evaluated, training.batch_size)) {
    workspace.reset();
    Tape tape(counter, workspace);
    NoGradScope no_grad(tape);
    GraphBatch batch = build_batch(dataset, ids, workspace, training.dtype, fixed.get());
    model.forward(tape, batch, false, 0);
  }
  cost.evaluation_flops = counter.flops().total();
  cost.evaluated_graphs = static_cast<int64_t>(evaluated.size());
  return cost;
}

}  // namespace diffpool
