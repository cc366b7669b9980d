#include "engine/nn/model.hpp"

#include <algorithm>
#include <numeric>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/workspace.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool {

DiffPoolModel::Block DiffPoolModel::make_block(const std::string& name, int64_t in, int64_t hidden, int64_t out,
                                               int layers, bool embedding) {
  Block block;
  int64_t width = in;
  for (int i = 0; i < layers; ++i) {
    const bool last = i == layers - 1;
    SageLayer layer;
    layer.in = width;
    layer.out = last ? out : hidden;
    const std::string prefix = fmt::format("{}.layer{}", name, i);
    // Glorot with the ReLU gain over the stacked [W_root; W_neighbour] (fan_in 2 * in), as the
    // authors initialise their graph convolutions; biases start at zero.
    layer.weight = params_.add(prefix + ".weight", Shape{2 * layer.in, layer.out}, Init::glorot_uniform_relu);
    layer.bias = params_.add(prefix + ".bias", Shape{layer.out}, Init::zeros);
    // Hidden layers: l2-normalise, ReLU, batch norm. The last layer of an embedding GNN is
    // l2-normalised only; the last layer of an assignment GNN gives raw logits for the softmax.
    layer.normalize = config_.l2_normalize && (embedding || !last);
    layer.activation = !last;
    layer.batch_norm = config_.batch_norm && !last;
    if (layer.batch_norm && config_.batch_norm_mode == BatchNormMode::trained) {
      layer.bn_gamma = params_.add(prefix + ".bn.gamma", Shape{layer.out}, Init::ones);
      layer.bn_beta = params_.add(prefix + ".bn.beta", Shape{layer.out}, Init::zeros);
      layer.bn_mean = params_.add_buffer(prefix + ".bn.running_mean", Shape{layer.out}, 0.0);
      layer.bn_var = params_.add_buffer(prefix + ".bn.running_var", Shape{layer.out}, 1.0);
    }
    block.out_width = config_.concat_layers && embedding ? block.out_width + layer.out : layer.out;
    block.layers.push_back(layer);
    width = layer.out;
  }
  return block;
}

DiffPoolModel::DiffPoolModel(const ModelConfig& config, int64_t in_features, int num_classes, int64_t max_nodes)
    : config_(config), in_features_(in_features), num_classes_(num_classes) {
  config_.validate();
  DP_CHECK(in_features >= 1 && num_classes >= 2 && max_nodes >= 1,
           "model for {} features, {} classes, largest graph {} nodes", in_features, num_classes, max_nodes);
  clusters_ = config_.cluster_counts(max_nodes);
  const int num_levels = config_.has_pooling() ? config_.pool_levels + 1 : 1;
  int64_t width = in_features;
  int64_t readout_width = 0;
  for (int l = 0; l < num_levels; ++l) {
    Level level;
    int layers = config_.conv_layers_at(l);
    if (!config_.has_pooling()) {  // GraphSAGE baseline: all convolution layers in one block
      layers = 0;
      for (int i = 0; i <= std::max(0, config_.pool_levels); ++i) layers += config_.conv_layers_at(i);
    }
    level.embed = make_block(fmt::format("level{}.embed", l), width, config_.hidden_dim, config_.embedding_dim, layers, true);
    const bool pools = l < num_levels - 1;
    if (pools && config_.learned_assignments())
      level.assign = make_block(fmt::format("level{}.assign", l), width, config_.hidden_dim,
                                clusters_[static_cast<std::size_t>(l)], layers, false);
    width = level.embed.out_width;
    readout_width += width;
    levels_.push_back(std::move(level));
  }
  int64_t in = readout_width;
  for (std::size_t i = 0; i <= config_.mlp_hidden.size(); ++i) {
    const int64_t out = i < config_.mlp_hidden.size() ? config_.mlp_hidden[i] : num_classes;
    mlp_weights_.push_back(params_.add(fmt::format("mlp.layer{}.weight", i), Shape{in, out}, Init::torch_linear, in, out));
    mlp_biases_.push_back(params_.add(fmt::format("mlp.layer{}.bias", i), Shape{out}, Init::torch_linear, in, out));
    in = out;
  }
}

// ---- the forward pass ----------------------------------------------------------------------------
//
// Shapes, per batch of B graphs (see ops.hpp for the letters):
//   N_l  rows of level l: N_0 = all nodes of the batch (packed), N_l = B * k_l for l >= 1
//   F_l  input width of level l, D_l its embedding width, k_{l+1} the clusters it pools into
//   C    classes
// Level 0 is sparse (block-diagonal CSR; a batch of dense graphs also has A and D^-1 A as one
// n_g x n_g block per graph, engine/data/batch.hpp); every later level is dense, [B * k_l, k_l].

namespace {

// Per-forward cache of parameter variables (a parameter is put on the tape once per pass).
class ParamVars {
 public:
  ParamVars(Tape& tape, const ParameterStore& store) : tape_(tape), store_(store), vars_(store.entries().size(), nullptr) {}
  Variable* operator()(ParamId id) {
    Variable*& v = vars_[static_cast<std::size_t>(id.index)];
    if (!v) v = tape_.parameter(store_.value(id), store_.grad(id));
    return v;
  }

 private:
  Tape& tape_;
  const ParameterStore& store_;
  std::vector<Variable*> vars_;
};

SegmentReduce to_segment_reduce(Readout r) {
  switch (r) {
    case Readout::max: return SegmentReduce::max;
    case Readout::mean: return SegmentReduce::mean;
    case Readout::sum: return SegmentReduce::sum;
  }
  return SegmentReduce::max;
}

}  // namespace

namespace {
BlockContext& new_context(ForwardOutput& out, const Blocks* a, const Blocks* b = nullptr, const Blocks* c = nullptr,
                          Trans trans_a = Trans::no) {
  BlockContext& ctx = out.block_contexts.emplace_back();
  ctx.a = a;
  ctx.b = b;
  ctx.c = c;
  ctx.trans_a = trans_a;
  return ctx;
}

// Level 0's adjacency graph by graph, with graph-local indices (views over one upload), and each
// graph's row offsets {0, n_g}: what block_spmm and block_link_bce run on.
void make_graph_adjacency(Tape& tape, const GraphBatch& batch, ForwardOutput& out) {
  if (!out.graph_adjacency.empty() || batch.num_graphs() == 0) return;
  const HostCsr& a = batch.host_adjacency;
  const Segments& nodes = batch.nodes;
  const int64_t b = batch.num_graphs();
  // [row pointers of every graph (n_g + 1 each) | column indices (nnz) | offsets (2 per graph)]
  std::vector<int32_t> host;
  host.reserve(static_cast<std::size_t>(nodes.total_rows() + b + static_cast<int64_t>(a.col_idx.size()) + 2 * b));
  std::vector<int64_t> row_ptr_at(static_cast<std::size_t>(b));
  for (int64_t g = 0; g < b; ++g) {
    row_ptr_at[static_cast<std::size_t>(g)] = static_cast<int64_t>(host.size());
    const int32_t first = a.row_ptr[static_cast<std::size_t>(nodes.begin(g))];
    for (int64_t r = nodes.begin(g); r <= nodes.begin(g) + nodes.size(g); ++r)
      host.push_back(a.row_ptr[static_cast<std::size_t>(r)] - first);
  }
  const int64_t cols_at = static_cast<int64_t>(host.size());
  for (int64_t g = 0; g < b; ++g)
    for (int32_t e = a.row_ptr[static_cast<std::size_t>(nodes.begin(g))];
         e < a.row_ptr[static_cast<std::size_t>(nodes.begin(g) + nodes.size(g))]; ++e)
      host.push_back(a.col_idx[static_cast<std::size_t>(e)] - static_cast<int32_t>(nodes.begin(g)));
  const int64_t offsets_at = static_cast<int64_t>(host.size());
  for (int64_t g = 0; g < b; ++g) {
    host.push_back(0);
    host.push_back(static_cast<int32_t>(nodes.size(g)));
  }
  Tensor all = tape.workspace().empty(Shape{static_cast<int64_t>(host.size())}, DType::i32);
  tape.backend().copy_bytes(all.data(), all.device(), host.data(), Device::cpu, host.size() * sizeof(int32_t));
  auto i32_view = [&](int64_t at, int64_t n) {
    return Tensor(static_cast<int32_t*>(all.data()) + at, Shape{n}, DType::i32, all.device());
  };
  const Csr& global = batch.adjacency;
  for (int64_t g = 0; g < b; ++g) {
    const int64_t n = nodes.size(g);
    const int64_t e0 = a.row_ptr[static_cast<std::size_t>(nodes.begin(g))];
    const int64_t e1 = a.row_ptr[static_cast<std::size_t>(nodes.begin(g) + n)];
    Csr c;
    c.rows = c.cols = n;
    c.nnz = e1 - e0;
    c.row_ptr = i32_view(row_ptr_at[static_cast<std::size_t>(g)], n + 1);
    c.col_idx = i32_view(cols_at + e0, c.nnz);
    c.values = Tensor(static_cast<char*>(global.values.data()) + static_cast<std::size_t>(e0) * dtype_size(global.values.dtype()),
                      Shape{c.nnz}, global.values.dtype(), global.values.device());
    out.graph_adjacency.push_back(c);
    out.graph_offsets.push_back(i32_view(offsets_at + 2 * g, 2));
  }
}
}  // namespace

struct DiffPoolModel::Pass {
  Pass(Tape& tape, const GraphBatch& batch, const ParameterStore& params, bool training, uint64_t dropout_seed)
      : tape(tape), batch(batch), param(tape, params), training(training), dropout_seed(dropout_seed) {}

  Tape& tape;
  const GraphBatch& batch;
  ParamVars param;  // param(id): the parameter's variable on this pass's tape
  bool training;
  uint64_t dropout_seed;
  uint64_t dropout_counter = 0;  // one dropout stream per dropout op, in the order they run
  ForwardOutput* out = nullptr;  // owns the block layouts and contexts of per-graph cluster counts
  // x -> mean_neighbours(x): the embedding and assignment GNNs of a level read the same input in
  // their first layer, so it is computed once and shared.
  std::vector<std::pair<Variable*, Variable*>> layer_inputs;
  const Blocks* level0_blocks = nullptr;  // a dense batch's n_g x n_g blocks, laid out on first use
};

// The graph a level's GNNs run on.
struct DiffPoolModel::LevelGraph {
  // Level 0: sparse, block-diagonal.
  const GraphBatch* batch = nullptr;
  // Levels >= 1: dense blocks [B*k, k].
  Variable* adjacency = nullptr;        // A_l
  Variable* inv_degree = nullptr;       // mean aggregation: 1 / (row sums of A_l + eps), [B*k, 1]; null: sum
  const Segments* segments = nullptr;   // rows of each graph
  int64_t graphs = 0;
  // Per-graph cluster counts: A_l is ragged, one [n_g, n_g] block per graph (null: [B*k, k]).
  const Blocks* adjacency_blocks = nullptr;
  bool sparse() const { return adjacency == nullptr; }
};

// What pooling level l gives level l + 1.
struct DiffPoolModel::PooledLevel {
  Variable* adjacency_times_s = nullptr;  // A_l S_l [N_l, k_{l+1}], shared with the link loss
  Variable* features = nullptr;           // X_{l+1} = S_l^T Z_l [B * k_{l+1}, D_l]
  Variable* adjacency = nullptr;          // A_{l+1} = S_l^T A_l S_l [B * k_{l+1}, k_{l+1}]
  const Segments* segments = nullptr;     // the rows of each graph at level l + 1
  int64_t graphs = 0;
  const Blocks* adjacency_blocks = nullptr;  // per-graph cluster counts: A_{l+1}'s [k_g, k_g] blocks
};

Variable* DiffPoolModel::maybe_dropout(Pass& pass, Variable* x) const {
  if (!pass.training || config_.dropout <= 0) return x;
  return ops::dropout(pass.tape, x, config_.dropout, Rng::derive(pass.dropout_seed, pass.dropout_counter++));
}

// Level 0 of a dense batch (GraphBatch::dense(), engine/data/batch.hpp): M_g X_g as one GEMM per
// graph, M (sum_g n_g^2, 1) the constant n_g x n_g blocks of A or D^-1 A, x (N, F) packed rows, or
// ragged [n_g, k_g] blocks x_blocks; the result has x's layout. The same values as the CSR product
// up to the order of the sums (the block's zeros add nothing).
Variable* DiffPoolModel::dense_level0_product(Pass& pass, const Tensor& blocks, Variable* x,
                                              const Blocks* x_blocks) const {
  ForwardOutput& out = *pass.out;
  const Segments& nodes = pass.batch.nodes;
  if (!pass.level0_blocks) {
    std::vector<int64_t> sizes(static_cast<std::size_t>(nodes.count()));
    for (int64_t g = 0; g < nodes.count(); ++g) sizes[static_cast<std::size_t>(g)] = nodes.size(g);
    pass.level0_blocks = &out.blocks.emplace_back(ragged_blocks(sizes, sizes));
  }
  if (!x_blocks) x_blocks = &out.blocks.emplace_back(packed_blocks(nodes, x->value.cols()));
  return ops::block_matmul(pass.tape, pass.tape.constant(blocks), x,
                           new_context(out, pass.level0_blocks, x_blocks, x_blocks));
}

// One GraphSAGE-mean layer (Hamilton et al. 2017; DiffPool paper section 4.1):
//   y (N_l, H) = [x | mean_neighbours(x)] (N_l, 2F) [W_root; W_nbr] (2F, H) + b (H),
// then l2-normalise, ReLU and batch norm as configured. Dropout first, in training.
// The product is x W_root + mean_neighbours(x) W_nbr + b, two GEMMs into y: the (N_l, 2F)
// concatenation is never formed (nor its gradient, nor the copies in and out of it).
// The input of a GraphSAGE-mean layer: dropout (in training), then x and mean_neighbours(x),
// (N_l, F) each. The embedding and assignment GNNs of a level read the same x in their first
// layer, so the neighbour mean is computed once per pass and shared.
DiffPoolModel::LayerInput DiffPoolModel::layer_input(Pass& pass, const LevelGraph& g, Variable* x) const {
  Tape& tape = pass.tape;
  x = maybe_dropout(pass, x);
  for (const auto& [input, result] : pass.layer_inputs)
    if (input == x) return {x, result};
  Variable* agg = nullptr;
  if (g.sparse()) {
    agg = g.batch->dense() ? dense_level0_product(pass, g.batch->dense_mean_adjacency, x)
                           : ops::spmm(tape, g.batch->mean_adjacency, g.batch->mean_adjacency_t, x);
  } else if (g.adjacency_blocks) {  // per-graph cluster counts: A_g X_g graph by graph
    ForwardOutput& out = *pass.out;
    const Blocks& rows = out.blocks.emplace_back(packed_blocks(*g.segments, x->value.cols()));
    BlockContext& c = out.block_contexts.emplace_back();
    c.a = g.adjacency_blocks;
    c.b = &rows;
    c.c = &rows;
    agg = ops::block_matmul(tape, g.adjacency, x, c);
  } else {
    agg = ops::bmm(tape, g.adjacency, x, g.graphs);
  }
  // Mean over weighted neighbours, D^-1 (A X): scaling the rows of the product, rather than
  // forming D^-1 A, keeps no second [B*k, k] matrix (and its gradient) in memory.
  if (!g.sparse() && g.inv_degree) agg = ops::scale_rows(tape, agg, g.inv_degree);
  pass.layer_inputs.emplace_back(x, agg);
  return {x, agg};
}

Variable* DiffPoolModel::sage_layer(Pass& pass, const SageLayer& layer, const LevelGraph& g, Variable* x) const {
  Tape& tape = pass.tape;
  Workspace& ws = tape.workspace();
  const DType dtype = params_.dtype();
  const LayerInput in = layer_input(pass, g, x);
  Variable* y = ops::linear(tape, in.x, pass.param(layer.weight), pass.param(layer.bias), in.neighbours);
  if (layer.normalize) {
    y = ops::l2_normalize_rows(tape, y, 1e-12, layer.activation);  // the activation in the same op
  } else if (layer.activation) {
    y = ops::relu(tape, y);
  }
  if (layer.batch_norm && config_.batch_norm_mode == BatchNormMode::trained) {
    y = ops::batch_norm(tape, y, pass.param(layer.bn_gamma), pass.param(layer.bn_beta), params_.buffer(layer.bn_mean),
                        params_.buffer(layer.bn_var), pass.training, config_.batch_norm_momentum,
                        config_.batch_norm_eps);
  } else if (layer.batch_norm) {
    // Scale 1 and shift 0 as constants, and running statistics that are thrown away: the
    // batch's own statistics normalise it, in evaluation too.
    const int64_t f = y->value.cols();
    Tensor gamma = ws.empty(Shape{f}, dtype), running_var = ws.empty(Shape{f}, dtype);
    tape.backend().fill(gamma, 1.0);
    tape.backend().fill(running_var, 1.0);
    y = ops::batch_norm(tape, y, tape.constant(gamma), tape.constant(ws.zeros(Shape{f}, dtype)),
                        ws.zeros(Shape{f}, dtype), running_var, true, config_.batch_norm_momentum,
                        config_.batch_norm_eps);
  }
  return y;
}

// A GNN of GraphSAGE layers (paper eq. 5 and 6, GNN_embed and GNN_pool): x (N_l, F_l) ->
// (N_l, D_l) for an embedding block, (N_l, k_{l+1}) logits for an assignment block. With
// concat_layers, an embedding block returns every layer's output side by side (authors' code).
Variable* DiffPoolModel::convolution_block(Pass& pass, const Block& block, const LevelGraph& graph, Variable* x,
                                           bool embedding) const {
  std::vector<Variable*> outputs;
  for (const SageLayer& layer : block.layers) {
    x = sage_layer(pass, layer, graph, x);
    outputs.push_back(x);
  }
  return config_.concat_layers && embedding ? ops::concat_all(pass.tape, outputs) : x;
}

// S_l (N_l, k_{l+1}) = softmax(GNN_pool(A_l, X_l)) row-wise (paper eq. 6), or the fixed
// Graclus assignment of DiffPool-DET.
Variable* DiffPoolModel::assignment(Pass& pass, const Level& level, const LevelGraph& graph, Variable* x,
                                    int level_index, int64_t clusters) const {
  Variable* s = config_.learned_assignments()
                    ? ops::softmax_rows(pass.tape, convolution_block(pass, level.assign, graph, x, false),
                                        /*in_place=*/true)
                    : pass.tape.constant(pass.batch.fixed_assignments.at(static_cast<std::size_t>(level_index)));
  DP_CHECK(s->value.cols() == clusters, "level {} assignment {} for {} clusters", level_index, s->value.describe(),
           clusters);
  return s;
}

// Pooling (paper section 3.2, eq. 3 and 4), per graph g of the level's row segments:
//   X_{l+1,g} = S_g^T Z_g   (k, D_l)        A_{l+1,g} = S_g^T (A_g S_g)   (k, k)
// s (N_l, k), z (N_l, D_l); every graph gets `clusters` rows at level l + 1, whose segments are
// kept alive in `keep` for the backward pass.
DiffPoolModel::PooledLevel DiffPoolModel::pool_level(Pass& pass, const LevelGraph& graph, Variable* s, Variable* z,
                                                     int64_t clusters, std::deque<Segments>& keep) const {
  Tape& tape = pass.tape;
  PooledLevel pooled;
  if (!graph.sparse()) pooled.adjacency_times_s = ops::bmm(tape, graph.adjacency, s, graph.graphs);
  else if (graph.batch->dense()) pooled.adjacency_times_s = dense_level0_product(pass, graph.batch->dense_adjacency, s);
  else pooled.adjacency_times_s = ops::spmm(tape, graph.batch->adjacency, graph.batch->adjacency, s);
  pooled.features = ops::segment_matmul_tn(tape, s, z, *graph.segments);
  pooled.adjacency = ops::segment_matmul_tn(tape, s, pooled.adjacency_times_s, *graph.segments);
  pooled.segments = &keep.emplace_back(make_uniform_segments(tape.workspace(), graph.graphs, clusters));
  pooled.graphs = graph.graphs;
  return pooled;
}

// The link-prediction loss of a level (paper section 3.3), one element, or null where the form
// has none at this level; s is S_l (N_l, k), as is A_l S_l (N_l, k).
Variable* DiffPoolModel::link_loss(Pass& pass, const LevelGraph& graph, Variable* s, Variable* as) const {
  if (config_.link_norm == LinkLossNorm::bce) return link_bce_loss(pass, graph, s);
  return link_frobenius_loss(pass, graph, s, as);
}

// The authors' code: binary cross-entropy between A and min(S S^T, 1) over every node pair of
// each graph, summed over the batch and divided by the number of pairs. Only the input graph's
// level has a 0/1 adjacency, so only the first pooling level gets it.
Variable* DiffPoolModel::link_bce_loss(Pass& pass, const LevelGraph& graph, Variable* s) const {
  if (!graph.sparse()) return nullptr;
  Tape& tape = pass.tape;
  return link_bce_mean(pass, graph, ops::link_bce(tape, s, graph.batch->adjacency, *graph.segments));
}

// The binary cross-entropy of each node row (N_l, 1), summed over the batch and divided by its
// node pairs (the authors' normalisation).
Variable* DiffPoolModel::link_bce_mean(Pass& pass, const LevelGraph& graph, Variable* row_losses) const {
  Tape& tape = pass.tape;
  const int64_t graphs = graph.graphs;
  double pairs = 0;
  for (int64_t g = 0; g < graphs; ++g) pairs += static_cast<double>(graph.segments->size(g)) * graph.segments->size(g);
  Variable* per_graph = ops::segment_reduce(tape, row_losses, *graph.segments, SegmentReduce::sum);
  return ops::add(tape, ops::mean_all(tape, per_graph), nullptr, pairs > 0 ? static_cast<double>(graphs) / pairs : 0.0);
}

// ||A_g - S_g S_g^T||_F per graph g, through ||A||^2 - 2 tr(S^T A S) + ||S^T S||^2 (no n x n
// matrix), then: squared (frobenius_squared), as is (frobenius, the paper), or divided by n_g^2
// (per_entry, PyTorch Geometric); mean over the graphs.
Variable* DiffPoolModel::link_frobenius_loss(Pass& pass, const LevelGraph& graph, Variable* s, Variable* as) const {
  Tape& tape = pass.tape;
  Variable* a_sq = graph.sparse()
                       ? tape.constant(graph.batch->adjacency_sq_norms)
                       : ops::segment_reduce(tape, ops::row_dot(tape, graph.adjacency, graph.adjacency),
                                             *graph.segments, SegmentReduce::sum);
  Variable* trace = ops::segment_reduce(tape, ops::row_dot(tape, s, as), *graph.segments, SegmentReduce::sum);
  Variable* gram_sq = ops::segment_gram_sq(tape, s, *graph.segments);
  Variable* sq = ops::add(tape, ops::add(tape, a_sq, trace, 1.0, -2.0), gram_sq);  // (B, 1)
  return link_frobenius_mean(pass, graph, sq);
}

// From ||A_g - S_g S_g^T||_F^2 per graph (B, 1) to the loss of the configured form, one element.
Variable* DiffPoolModel::link_frobenius_mean(Pass& pass, const LevelGraph& graph, Variable* sq) const {
  Tape& tape = pass.tape;
  const int64_t graphs = graph.graphs;
  Variable* per_graph = sq;
  if (config_.link_norm != LinkLossNorm::frobenius_squared) per_graph = ops::sqrt(tape, sq, 1e-12);
  if (config_.link_norm == LinkLossNorm::per_entry) {
    std::vector<double> inv(static_cast<std::size_t>(graphs));
    for (int64_t g = 0; g < graphs; ++g) {
      const double n = static_cast<double>(graph.segments->size(g));
      inv[static_cast<std::size_t>(g)] = n > 0 ? 1.0 / (n * n) : 0.0;
    }
    Tensor t = tape.workspace().empty(Shape{graphs, 1}, params_.dtype());
    upload_converted(tape.backend(), inv, t);
    per_graph = ops::mul(tape, per_graph, tape.constant(t));
  }
  return ops::mean_all(tape, per_graph);
}

// The entropy loss (paper section 3.3): mean over graphs of (1/n_g) sum_i H(S_i),
// H(p) = -sum_j p_j log p_j; s is S_l (N_l, k). One element.
Variable* DiffPoolModel::entropy_loss(Pass& pass, const LevelGraph& graph, Variable* s) const {
  Tape& tape = pass.tape;
  Variable* node_entropy = ops::row_xlogx(tape, s);  // -H per node, (N_l, 1)
  return entropy_mean(pass, graph, node_entropy);
}

// Mean over graphs of (1/n_g) sum_i H(S_i) from the per-node sums of S log S (-H), (N_l, 1).
Variable* DiffPoolModel::entropy_mean(Pass& pass, const LevelGraph& graph, Variable* node_xlogx) const {
  Tape& tape = pass.tape;
  // The sign in the mean itself (one primitive each way, not a negation after it; exact).
  return ops::mean_all(tape, ops::segment_reduce(tape, node_xlogx, *graph.segments, SegmentReduce::mean), -1.0);
}

// The next level's dense graph: A_{l+1}, and for mean aggregation the inverse weighted degrees
// 1 / (rowsum(A_{l+1}) + dense_degree_eps), (B * k, 1).
DiffPoolModel::LevelGraph DiffPoolModel::pooled_graph(Pass& pass, const PooledLevel& pooled) const {
  LevelGraph next;
  next.adjacency = pooled.adjacency;
  next.segments = pooled.segments;
  next.graphs = pooled.graphs;
  next.adjacency_blocks = pooled.adjacency_blocks;
  if (config_.dense_aggregation == DenseAggregation::mean) {
    Variable* degree = pooled.adjacency_blocks
                           ? ops::block_row_sum(pass.tape, pooled.adjacency, new_context(*pass.out, pooled.adjacency_blocks))
                           : ops::row_sum(pass.tape, pooled.adjacency);
    next.inv_degree = ops::reciprocal(pass.tape, degree, config_.dense_degree_eps);
  }
  return next;
}

// Readout (paper section 3.2 and 4.1): the per-level readouts (B, D_l) side by side,
// (B, sum_l D_l), into the MLP; returns the logits (B, C).
Variable* DiffPoolModel::readout(Pass& pass, const std::vector<Variable*>& level_readouts, ForwardOutput& out) const {
  Tape& tape = pass.tape;
  Variable* h = ops::concat_all(tape, level_readouts);
  out.graph_embedding = h;
  for (std::size_t i = 0; i < mlp_weights_.size(); ++i) {
    const bool last = i + 1 == mlp_weights_.size();
    h = ops::linear(tape, h, pass.param(mlp_weights_[i]), pass.param(mlp_biases_[i]));
    if (!last) h = maybe_dropout(pass, ops::relu(tape, h));
  }
  return h;
}

// The objective: mean cross-entropy plus each auxiliary loss summed over levels and weighted.
void DiffPoolModel::add_losses(Pass& pass, const GraphBatch& batch, ForwardOutput& out) const {
  Tape& tape = pass.tape;
  out.classification_loss = ops::mean_all(tape, ops::cross_entropy(tape, out.logits, batch.labels));
  Variable* total = out.classification_loss;
  // A level may have an entropy loss without a link loss (the binary cross-entropy form exists at
  // the first pooling level only): each sum takes the levels that have its term.
  for (const LevelOutput& lo : out.levels) {
    if (lo.link_loss) out.link_loss = out.link_loss ? ops::add(tape, out.link_loss, lo.link_loss) : lo.link_loss;
    if (lo.entropy_loss)
      out.entropy_loss = out.entropy_loss ? ops::add(tape, out.entropy_loss, lo.entropy_loss) : lo.entropy_loss;
  }
  if (out.link_loss && config_.variant == Variant::diffpool && config_.link_weight > 0)
    total = ops::add(tape, total, out.link_loss, 1.0, config_.link_weight);
  if (out.entropy_loss && config_.learned_assignments() && config_.entropy_weight > 0)
    total = ops::add(tape, total, out.entropy_loss, 1.0, config_.entropy_weight);
  out.loss = total;
}

// ---- per-graph cluster counts (model.cluster_rule: per_graph) ------------------------------------
//
// Graph g of a level with n_g rows pools into its own k_g = clusters_for(l, n_g) clusters. S_l is a
// ragged [n_g, k_g] block per graph, A_l S_l too, A_{l+1} a [k_g, k_g] block, X_{l+1} packed rows
// (sum_g k_g, D_l). The assignment GNN keeps one set of weights whose last layer is as wide as the
// largest k of the dataset; graph g uses its first k_g columns, and no work is done for the others
// (engine/ops/blocks.cpp). Every step is the uniform one, restricted graph by graph.


// S_l = softmax(GNN_pool(A_l, X_l)) restricted to each graph's k_g columns: the hidden layers run
// on all rows at once; the last one is X_g W[:, :k_g] + b[:k_g] per graph, then the row softmax.
Variable* DiffPoolModel::assignment_per_graph(Pass& pass, const Level& level, const LevelGraph& graph, Variable* x,
                                              int level_index, const Blocks& blocks) const {
  Tape& tape = pass.tape;
  if (!config_.learned_assignments()) {  // DIFFPOOL-DET: the batch's one-hot blocks, Graclus per graph
    Variable* s = tape.constant(pass.batch.fixed_assignments.at(static_cast<std::size_t>(level_index)));
    DP_CHECK(s->value.numel() == blocks.elements, "level {} fixed assignment {} for {} block elements", level_index,
             s->value.describe(), blocks.elements);
    return s;
  }
  const std::vector<SageLayer>& layers = level.assign.layers;
  for (std::size_t i = 0; i + 1 < layers.size(); ++i) x = sage_layer(pass, layers[i], graph, x);
  const SageLayer& last = layers.back();
  DP_CHECK(!last.normalize && !last.activation && !last.batch_norm, "the assignment GNN's last layer is linear");
  const BlockContext& ctx = new_context(*pass.out, &blocks);
  const LayerInput in = layer_input(pass, graph, x);
  Variable* logits = ops::block_linear(tape, in.x, pass.param(last.weight), pass.param(last.bias), ctx, in.neighbours);
  return ops::block_softmax(tape, logits, ctx, /*in_place=*/true);
}

// Pooling graph by graph (paper eq. 3 and 4): X_{l+1,g} = S_g^T Z_g (k_g, D_l) and
// A_{l+1,g} = S_g^T (A_g S_g) (k_g, k_g).
DiffPoolModel::PooledLevel DiffPoolModel::pool_level_per_graph(Pass& pass, const LevelGraph& graph, Variable* s,
                                                               const Blocks& s_blocks, Variable* z) const {
  Tape& tape = pass.tape;
  ForwardOutput& out = *pass.out;
  PooledLevel pooled;
  if (graph.sparse() && graph.batch->dense()) {
    pooled.adjacency_times_s = dense_level0_product(pass, graph.batch->dense_adjacency, s, &s_blocks);
  } else if (graph.sparse()) {
    make_graph_adjacency(tape, *graph.batch, out);
    BlockContext& ctx = new_context(out, &s_blocks);
    ctx.adjacency = &out.graph_adjacency;
    pooled.adjacency_times_s = ops::block_spmm(tape, s, ctx);
  } else {
    pooled.adjacency_times_s = ops::block_matmul(tape, graph.adjacency, s,
                                                 new_context(out, graph.adjacency_blocks, &s_blocks, &s_blocks));
  }
  std::vector<int64_t> offsets(1, 0);
  for (int64_t g = 0; g < s_blocks.count(); ++g) offsets.push_back(offsets.back() + s_blocks.cols[static_cast<std::size_t>(g)]);
  pooled.segments = &out.segments.emplace_back(make_segments(tape.workspace(), offsets));
  pooled.graphs = graph.graphs;
  const Blocks& z_rows = out.blocks.emplace_back(packed_blocks(*graph.segments, z->value.cols()));
  const Blocks& x_rows = out.blocks.emplace_back(packed_blocks(*pooled.segments, z->value.cols()));
  pooled.features = ops::block_matmul(tape, s, z, new_context(out, &s_blocks, &z_rows, &x_rows, Trans::yes));
  const Blocks& a_blocks = out.blocks.emplace_back(ragged_blocks(s_blocks.cols, s_blocks.cols));
  pooled.adjacency = ops::block_matmul(tape, s, pooled.adjacency_times_s,
                                       new_context(out, &s_blocks, &s_blocks, &a_blocks, Trans::yes));
  pooled.adjacency_blocks = &a_blocks;
  return pooled;
}

// The link-prediction loss with each graph's own blocks; the same forms as link_loss.
Variable* DiffPoolModel::link_loss_per_graph(Pass& pass, const LevelGraph& graph, Variable* s, const Blocks& s_blocks,
                                             Variable* as) const {
  Tape& tape = pass.tape;
  ForwardOutput& out = *pass.out;
  if (config_.link_norm == LinkLossNorm::bce) {
    if (!graph.sparse()) return nullptr;
    make_graph_adjacency(tape, *graph.batch, out);
    BlockContext& ctx = new_context(out, &s_blocks);
    ctx.adjacency = &out.graph_adjacency;
    ctx.offsets = &out.graph_offsets;
    return link_bce_mean(pass, graph, ops::block_link_bce(tape, s, ctx));
  }
  Variable* a_sq = graph.sparse() ? tape.constant(graph.batch->adjacency_sq_norms)
                                  : ops::block_dot(tape, graph.adjacency, graph.adjacency,
                                                   new_context(out, graph.adjacency_blocks));
  const BlockContext& s_ctx = new_context(out, &s_blocks);
  Variable* trace = ops::block_dot(tape, s, as, s_ctx);
  Variable* gram_sq = ops::block_gram_sq(tape, s, s_ctx);
  Variable* sq = ops::add(tape, ops::add(tape, a_sq, trace, 1.0, -2.0), gram_sq);  // (B, 1)
  return link_frobenius_mean(pass, graph, sq);
}

Variable* DiffPoolModel::entropy_loss_per_graph(Pass& pass, const LevelGraph& graph, Variable* s,
                                                const Blocks& s_blocks) const {
  Tape& tape = pass.tape;
  Variable* node_entropy = ops::block_row_xlogx(tape, s, new_context(*pass.out, &s_blocks));  // -H per node, (N_l, 1)
  return entropy_mean(pass, graph, node_entropy);
}

ForwardOutput DiffPoolModel::forward(Tape& tape, const GraphBatch& batch, bool training, uint64_t dropout_seed) const {
  DP_CHECK(params_.allocated(), "model parameters are not allocated");
  DP_CHECK(batch.features.cols() == in_features_, "batch features {} for a model of {} input features",
           batch.features.describe(), in_features_);
  Pass pass(tape, batch, params_, training, dropout_seed);
  ForwardOutput out;
  pass.out = &out;
  LevelGraph graph;
  graph.batch = &batch;
  graph.segments = &batch.nodes;
  graph.graphs = batch.num_graphs();
  Variable* x = tape.constant(batch.features);
  std::vector<Variable*> readouts;
  const int num_levels = static_cast<int>(levels_.size());
  for (int l = 0; l < num_levels; ++l) {
    const Level& level = levels_[static_cast<std::size_t>(l)];
    LevelOutput lo;
    lo.features = x;
    lo.embedding = convolution_block(pass, level.embed, graph, x, true);
    readouts.push_back(ops::segment_reduce(tape, lo.embedding, *graph.segments, to_segment_reduce(config_.readout)));
    if (l < num_levels - 1 && per_graph()) {
      std::vector<int64_t> rows(static_cast<std::size_t>(graph.graphs)), ks(rows.size());
      for (int64_t g = 0; g < graph.graphs; ++g) {
        rows[static_cast<std::size_t>(g)] = graph.segments->size(g);
        ks[static_cast<std::size_t>(g)] = config_.clusters_for(l, rows[static_cast<std::size_t>(g)]);
      }
      const Blocks& s_blocks = out.blocks.emplace_back(ragged_blocks(rows, ks));
      lo.assignment = assignment_per_graph(pass, level, graph, x, l, s_blocks);
      lo.assignment_blocks = &s_blocks;
      const PooledLevel pooled = pool_level_per_graph(pass, graph, lo.assignment, s_blocks, lo.embedding);
      lo.pooled_adjacency = pooled.adjacency;
      lo.pooled_blocks = pooled.adjacency_blocks;
      lo.link_loss = link_loss_per_graph(pass, graph, lo.assignment, s_blocks, pooled.adjacency_times_s);
      lo.entropy_loss = entropy_loss_per_graph(pass, graph, lo.assignment, s_blocks);
      graph = pooled_graph(pass, pooled);
      x = pooled.features;
    } else if (l < num_levels - 1) {
      const int64_t k = clusters_[static_cast<std::size_t>(l)];
      lo.assignment = assignment(pass, level, graph, x, l, k);
      const PooledLevel pooled = pool_level(pass, graph, lo.assignment, lo.embedding, k, out.segments);
      lo.pooled_adjacency = pooled.adjacency;
      lo.link_loss = link_loss(pass, graph, lo.assignment, pooled.adjacency_times_s);
      lo.entropy_loss = entropy_loss(pass, graph, lo.assignment);
      graph = pooled_graph(pass, pooled);
      x = pooled.features;
    }
    out.levels.push_back(lo);
  }
  out.logits = readout(pass, readouts, out);
  add_losses(pass, batch, out);
  return out;
}

FixedAssignments DiffPoolModel::fixed_assignments(const GraphDataset& dataset) const {
  if (!per_graph()) return compute_fixed_assignments(dataset, clusters_);
  return compute_fixed_assignments(dataset, clusters_,
                                   [this](int level, int64_t rows) { return config_.clusters_for(level, rows); });
}

std::string DiffPoolModel::summary() const {
  std::string s = fmt::format("{}: {} input features, {} classes", variant_name(config_.variant), in_features_, num_classes_);
  if (!clusters_.empty()) {
    s += ", clusters";
    for (int64_t k : clusters_) s += fmt::format(" {}", k);
  }
  for (std::size_t l = 0; l < levels_.size(); ++l) {
    s += fmt::format("; level {}: {} GraphSAGE layers ->{}", l, levels_[l].embed.layers.size(), levels_[l].embed.out_width);
    if (!levels_[l].assign.layers.empty()) s += fmt::format(", assignment GNN ->{}", levels_[l].assign.layers.back().out);
  }
  int64_t count = 0;
  for (const auto& e : params_.entries()) count += e.shape.numel();
  s += fmt::format("; {} parameters", count);
  return s;
}

}  // namespace diffpool
