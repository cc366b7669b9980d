#pragma once
// The matrix-product work of training, priced before anything runs.
//
// One epoch of the Trainer is a forward and a backward pass over the training graphs, in batches,
// and a forward pass over the validation graphs (and over the test graphs when they are evaluated
// every epoch). estimate_epoch_cost runs exactly those passes, with the real model and the real
// batches, on a backend that counts the floating-point work of every matrix product from its shapes
// and computes nothing (engine/backend/counting_backend.hpp). So the figure follows the model
// wherever it goes (cluster rules, link-loss forms, variants) without a second description of it to
// keep in step, and it equals what the counting backend measures during real training.
#include <cstdint>
#include <vector>

#include "engine/data/dataset.hpp"
#include "engine/data/splits.hpp"
#include "engine/nn/model_config.hpp"
#include "engine/train/trainer.hpp"

namespace diffpool {

struct EpochCost {
  double train_flops = 0;       // forward + backward over the training graphs
  double evaluation_flops = 0;  // forward over the graphs evaluated every epoch
  int64_t train_graphs = 0;
  int64_t evaluated_graphs = 0;
  double total() const { return train_flops + evaluation_flops; }
};

// Product FLOPs of one epoch (see above). The batches are those of the first epoch; the figure does
// not depend on the order, since every counted product is a sum over graphs or over packed rows.
EpochCost estimate_epoch_cost(const GraphDataset& dataset, const ModelConfig& model, const TrainConfig& training,
                              const Split& split);

// The same work graph by graph: every counted product is a sum over graphs (packed rows, one block
// per graph), so an epoch's cost is the sum of its graphs' costs, whatever the batches. Priced once
// per dataset and model, it gives every fold and split of an experiment without another pass.
struct GraphCosts {
  std::vector<double> train;       // forward + backward of each graph, [num_graphs]
  std::vector<double> evaluation;  // forward of each graph, [num_graphs]
};
GraphCosts estimate_graph_costs(const GraphDataset& dataset, const ModelConfig& model, DType dtype);
EpochCost epoch_cost(const GraphCosts& costs, const Split& split, bool evaluate_test_every_epoch);

}  // namespace diffpool
