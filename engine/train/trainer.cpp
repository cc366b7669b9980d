#include "engine/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/autodiff/tape.hpp"
#include "engine/core/error.hpp"
#include "engine/core/random.hpp"

namespace diffpool {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

enum Slot : int64_t { kLoss = 0, kClassification, kLink, kEntropy, kCorrect, kSlots };

Tensor slot(const Tensor& sums, int64_t i) {
  return Tensor(static_cast<char*>(sums.data()) + static_cast<std::size_t>(i) * dtype_size(sums.dtype()), Shape{1},
                sums.dtype(), sums.device());
}
}  // namespace

const EnumNames<StopMetric>& stop_metric_names() {
  static const EnumNames<StopMetric> names("early-stopping metric", {{"validation_loss", StopMetric::validation_loss},
                                                                     {"validation_accuracy", StopMetric::validation_accuracy}});
  return names;
}
const char* stop_metric_name(StopMetric m) { return stop_metric_names().name(m); }
StopMetric parse_stop_metric(const std::string& text) { return stop_metric_names().parse(text); }

void TrainConfig::validate() const {
  namespace limits = train_limits;
  limits::epochs.check("training.epochs", epochs);
  limits::batch_size.check("training.batch_size", batch_size);
  limits::learning_rate.check("training.learning_rate", learning_rate);
  limits::weight_decay.check("training.weight_decay", weight_decay);
  limits::clip_norm.check("training.clip_norm", clip_norm);
  limits::patience.check("training.patience", patience);
  if (dtype != DType::f32 && dtype != DType::f64) throw InputError("training dtype must be f32 or f64");
}

std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& ids, int batch_size) {
  std::vector<std::vector<int64_t>> batches;
  for (std::size_t i = 0; i < ids.size(); i += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(ids.size(), i + static_cast<std::size_t>(batch_size));
    batches.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(i), ids.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

Trainer::Trainer(Backend& backend, const GraphDataset& dataset, const ModelConfig& model_config,
                 const TrainConfig& config, Split split)
    : backend_(backend), dataset_(dataset), config_(config), split_(std::move(split)), workspace_(backend) {
  config_.validate();
  DP_CHECK(!split_.train.empty(), "the training split is empty");
  model_ = std::make_unique<DiffPoolModel>(model_config, dataset.num_features, dataset.num_classes(), dataset.max_nodes());
  ParameterStore& params = model_->parameters();
  params.allocate(backend, config_.dtype);
  params.initialize(Rng::derive(config_.seed, 1));
  AdamSettings adam;
  adam.learning_rate = config_.learning_rate;
  adam.weight_decay = config_.weight_decay;
  optimizer_ = std::make_unique<Adam>(params, adam, config_.clip_norm);
  if (model_config.variant == Variant::diffpool_det)
    fixed_ = std::make_unique<FixedAssignments>(model_->fixed_assignments(dataset));
  sums_ = allocate_tensor(backend, Shape{kSlots}, config_.dtype);
  eval_sums_ = allocate_tensor(backend, Shape{kSlots}, config_.dtype);
}

Trainer::~Trainer() = default;

bool Trainer::finished() const { return epoch_ >= config_.epochs || stopped_early_; }

int Trainer::earliest_last_epoch() const {
  if (finished()) return epoch_;
  if (config_.patience <= 0 || !has_best_) return config_.epochs;
  return std::min(config_.epochs, epoch_ + std::max(1, config_.patience - epochs_without_improvement_));
}

void Trainer::accumulate(const ForwardOutput& out, int64_t graphs, Tensor& sums) {
  // sums[slot] += graphs * loss for each loss the model has: one grouped call (one launch on CUDA).
  std::vector<RowsGroup> groups;
  auto add = [&](Variable* v, int64_t i) {
    if (v) groups.push_back(RowsGroup{1, 1, v->value.data(), nullptr, slot(sums, i).data()});
  };
  add(out.loss, kLoss);
  add(out.classification_loss, kClassification);
  add(out.link_loss, kLink);
  add(out.entropy_loss, kEntropy);
  backend_.map_grouped(MapOp::copy, groups, Broadcast::full, 0, static_cast<double>(graphs), 1.0, sums.dtype());
}

Metrics Trainer::read_metrics(const Tensor& sums, int64_t graphs) const {
  const std::vector<double> host = download_converted<double>(backend_, sums);
  Metrics m;
  m.graphs = graphs;
  const double n = graphs > 0 ? static_cast<double>(graphs) : 1.0;
  m.loss = host[kLoss] / n;
  m.classification_loss = host[kClassification] / n;
  m.link_loss = host[kLink] / n;
  m.entropy_loss = host[kEntropy] / n;
  m.accuracy = host[kCorrect] / n;
  return m;
}

EpochMetrics Trainer::run_epoch(const std::function<bool()>& interrupt) {
  DP_CHECK(!finished(), "run_epoch after training finished (epoch {} of {})", epoch_, config_.epochs);
  ++epoch_;
  EpochMetrics em;
  em.epoch = epoch_;
  const auto start = Clock::now();

  std::vector<int64_t> order = split_.train;
  Rng rng(Rng::derive(config_.seed, static_cast<uint64_t>(epoch_) << 8 | 2));
  rng.shuffle(order);
  ParameterStore& params = model_->parameters();
  backend_.fill(sums_, 0.0);
  const auto batches = make_batches(order, config_.batch_size);
  for (std::size_t bi = 0; bi < batches.size(); ++bi) {
    if (interrupt && interrupt()) {
      --epoch_;
      throw Interrupted(fmt::format("epoch {} interrupted after {} of {} batches", epoch_ + 1, bi, batches.size()));
    }
    workspace_.reset();
    Tape tape(backend_, workspace_);
    StepScope step(backend_);  // the step's work as one unit (a CUDA graph on the CUDA backend)
    GraphBatch batch = build_batch(dataset_, batches[bi], workspace_, config_.dtype, fixed_.get());
    const uint64_t dropout_seed = Rng::derive(config_.seed, (static_cast<uint64_t>(epoch_) << 32) | bi);
    ForwardOutput out = model_->forward(tape, batch, true, dropout_seed);
    accumulate(out, batch.num_graphs(), sums_);
    Tensor correct = slot(sums_, kCorrect);
    backend_.count_correct(out.logits->value, batch.labels, correct);
    params.zero_grad();
    tape.backward(out.loss);
    optimizer_->step();
    step.end();
  }
  em.train_issue_seconds = seconds_since(start);
  em.train = read_metrics(sums_, static_cast<int64_t>(order.size()));
  em.grad_norm = optimizer_->last_grad_norm();
  if (!std::isfinite(em.train.loss))
    throw NumericalError(fmt::format("the training loss became {} in epoch {} (classification {}, link {}, entropy {})",
                                     em.train.loss, epoch_, em.train.classification_loss, em.train.link_loss,
                                     em.train.entropy_loss));
  em.train_seconds = seconds_since(start);

  const auto eval_start = Clock::now();
  const bool test_every_epoch = !split_.test.empty() && config_.evaluate_test_every_epoch;
  if (test_every_epoch && split_.validation == split_.test) {
    // The paper protocol validates on the test fold itself: one evaluation serves both (an
    // evaluation changes no state, so the figures are those of two).
    EvaluationResult test = evaluate(split_.test);
    em.validation = test.metrics;
    em.test = test.metrics;
    em.test_predictions = std::move(test.predictions);
  } else {
    if (!split_.validation.empty()) em.validation = evaluate(split_.validation).metrics;
    if (test_every_epoch) {
      EvaluationResult test = evaluate(split_.test);
      em.test = test.metrics;
      em.test_predictions = std::move(test.predictions);
    }
  }
  em.eval_seconds = seconds_since(eval_start);
  update_best(em);
  return em;
}

void Trainer::update_best(const EpochMetrics& m) {
  if (!m.validation) return;
  const double value = config_.stop_metric == StopMetric::validation_loss ? m.validation->loss : -m.validation->accuracy;
  if (!has_best_ || value < best_value_) {
    has_best_ = true;
    best_value_ = value;
    best_epoch_ = m.epoch;
    epochs_without_improvement_ = 0;
    if (config_.restore_best) best_parameters_ = model_->parameters().snapshot();
  } else {
    ++epochs_without_improvement_;
    if (config_.patience > 0 && epochs_without_improvement_ >= config_.patience) stopped_early_ = true;
  }
}

void Trainer::restore_best() {
  if (!config_.restore_best || !has_best_) return;
  ParameterStore::Snapshot current = model_->parameters().snapshot();
  ParameterStore::Snapshot best = best_parameters_;
  best.m = current.m;  // the optimiser state is irrelevant for evaluation; keep it consistent
  best.v = current.v;
  model_->parameters().restore(best);
}

namespace {

// The rows of each graph at each level of a forward pass: level 0 its nodes; level l >= 1 the
// clusters of level l - 1, k_l for every graph, or its own k_{l,g} with per-graph cluster counts.
struct RowRange {
  int64_t begin = 0, rows = 0;
};
std::vector<std::vector<RowRange>> rows_per_level(const GraphBatch& batch, const ForwardOutput& out) {
  std::vector<std::vector<RowRange>> levels(out.levels.size());
  for (int64_t g = 0; g < batch.num_graphs(); ++g) levels[0].push_back({batch.nodes.begin(g), batch.nodes.size(g)});
  for (std::size_t l = 1; l < out.levels.size(); ++l) {
    const LevelOutput& before = out.levels[l - 1];
    int64_t begin = 0;
    for (int64_t g = 0; g < batch.num_graphs(); ++g) {
      const int64_t rows = before.assignment_blocks ? before.assignment_blocks->cols[static_cast<std::size_t>(g)]
                                                    : before.assignment->value.cols();
      levels[l].push_back({begin, rows});
      begin += rows;
    }
  }
  return levels;
}

}  // namespace

EvaluationResult Trainer::evaluate(const std::vector<int64_t>& graph_ids, bool collect_outputs) {
  EvaluationResult result;
  Tensor& sums = eval_sums_;
  backend_.fill(sums, 0.0);
  std::vector<double> usage_sums;  // per pooling level, summed over graphs
  for (const auto& ids : make_batches(graph_ids, config_.batch_size)) {
    workspace_.reset();
    Tape tape(backend_, workspace_);
    NoGradScope no_grad(tape);
    StepScope step(backend_);
    GraphBatch batch = build_batch(dataset_, ids, workspace_, config_.dtype, fixed_.get());
    ForwardOutput out = model_->forward(tape, batch, false, 0);
    accumulate(out, batch.num_graphs(), sums);
    Tensor correct = slot(sums, kCorrect);
    backend_.count_correct(out.logits->value, batch.labels, correct);
    Tensor predictions = workspace_.empty(Shape{batch.num_graphs()}, DType::i32);
    backend_.argmax_rows(out.logits->value, predictions);
    // Each node's cluster (argmax of its row of S, over its graph's own clusters), per pooling level.
    std::vector<Tensor> clusters;
    for (const LevelOutput& lo : out.levels) {
      if (!lo.assignment) break;
      const Tensor& s = lo.assignment->value;
      const Blocks* blocks = lo.assignment_blocks;
      Tensor argmax = workspace_.empty(Shape{blocks ? blocks->total_rows() : s.rows(), 1}, DType::i32);
      if (!blocks) {
        backend_.argmax_rows(s, argmax);
      } else {  // one call for every graph's block
        DP_CHECK(s.numel() == blocks->elements, "assignment {} over blocks of {} elements", s.describe(), blocks->elements);
        std::vector<RowsGroup> groups;
        groups.reserve(static_cast<std::size_t>(blocks->count()));
        const std::size_t element = dtype_size(s.dtype());
        for (std::size_t g = 0; g < static_cast<std::size_t>(blocks->count()); ++g)
          groups.push_back(RowsGroup{blocks->rows[g], blocks->cols[g],
                                     static_cast<const char*>(s.data()) + static_cast<std::size_t>(blocks->offset[g]) * element,
                                     nullptr, argmax.ptr<int32_t>() + blocks->row_begin[g]});
        backend_.argmax_rows_grouped(groups, s.dtype());
      }
      clusters.push_back(argmax);
    }
    step.end();  // the host reads from here on
    std::vector<int32_t> pred = download<int32_t>(backend_, predictions);
    result.predictions.insert(result.predictions.end(), pred.begin(), pred.end());
    const std::vector<std::vector<RowRange>> level_rows = rows_per_level(batch, out);
    usage_sums.resize(clusters.size(), 0.0);
    for (std::size_t l = 0; l < clusters.size(); ++l) {
      const std::vector<int32_t> chosen = download<int32_t>(backend_, clusters[l]);
      const LevelOutput& lo = out.levels[l];
      std::vector<char> used;
      for (int64_t g = 0; g < batch.num_graphs(); ++g) {
        const RowRange r = level_rows[l][static_cast<std::size_t>(g)];
        const int64_t k = lo.assignment_blocks ? lo.assignment_blocks->cols[static_cast<std::size_t>(g)]
                                               : lo.assignment->value.cols();
        used.assign(static_cast<std::size_t>(k), 0);
        int64_t distinct = 0;
        for (int64_t i = r.begin; i < r.begin + r.rows; ++i) {
          char& u = used[static_cast<std::size_t>(chosen[static_cast<std::size_t>(i)])];
          distinct += u == 0;
          u = 1;
        }
        usage_sums[l] += static_cast<double>(distinct) / static_cast<double>(std::max<int64_t>(1, std::min(r.rows, k)));
      }
    }
    if (!collect_outputs) continue;

    auto to_float = [&](const Tensor& t) { return download_converted<float>(backend_, t); };
    const std::vector<float> logits = to_float(out.logits->value);
    const std::vector<float> embedding = to_float(out.graph_embedding->value);
    const int64_t c = out.logits->value.cols(), d = out.graph_embedding->value.cols();
    struct LevelHost {
      std::vector<float> z, s, a;
      int64_t z_cols = 0, k = 0;
      const Blocks* s_blocks = nullptr;  // per-graph cluster counts: S and A' one block per graph
      const Blocks* a_blocks = nullptr;
    };
    std::vector<LevelHost> levels;
    for (const LevelOutput& lo : out.levels) {
      LevelHost h;
      h.z = to_float(lo.embedding->value);
      h.z_cols = lo.embedding->value.cols();
      if (lo.assignment) {
        h.s = to_float(lo.assignment->value);
        h.k = lo.assignment->value.cols();
        h.a = to_float(lo.pooled_adjacency->value);
        h.s_blocks = lo.assignment_blocks;
        h.a_blocks = lo.pooled_blocks;
      }
      levels.push_back(std::move(h));
    }
    for (int64_t g = 0; g < batch.num_graphs(); ++g) {
      GraphOutputs go;
      go.graph = ids[static_cast<std::size_t>(g)];
      go.label = dataset_.labels[static_cast<std::size_t>(go.graph)];
      go.prediction = pred[static_cast<std::size_t>(g)];
      go.logits.assign(logits.begin() + g * c, logits.begin() + (g + 1) * c);
      go.graph_embedding.assign(embedding.begin() + g * d, embedding.begin() + (g + 1) * d);
      for (std::size_t l = 0; l < levels.size(); ++l) {
        const LevelHost& h = levels[l];
        const auto [begin, rows] = level_rows[l][static_cast<std::size_t>(g)];
        GraphOutputs::Level gl;
        gl.rows = rows;
        gl.embedding_dim = h.z_cols;
        gl.embedding.assign(h.z.begin() + begin * h.z_cols, h.z.begin() + (begin + rows) * h.z_cols);
        if (h.s_blocks) {
          const auto i = static_cast<std::size_t>(g);
          const int64_t k = h.s_blocks->cols[i];
          gl.clusters = k;
          gl.assignment.assign(h.s.begin() + h.s_blocks->offset[i], h.s.begin() + h.s_blocks->offset[i] + rows * k);
          gl.pooled_adjacency.assign(h.a.begin() + h.a_blocks->offset[i], h.a.begin() + h.a_blocks->offset[i] + k * k);
        } else {
          gl.clusters = h.k;
          if (h.k > 0) {
            gl.assignment.assign(h.s.begin() + begin * h.k, h.s.begin() + (begin + rows) * h.k);
            gl.pooled_adjacency.assign(h.a.begin() + g * h.k * h.k, h.a.begin() + (g + 1) * h.k * h.k);
          }
        }
        go.levels.push_back(std::move(gl));
      }
      result.outputs.push_back(std::move(go));
    }
  }
  result.metrics = read_metrics(sums, static_cast<int64_t>(graph_ids.size()));
  for (const double sum : usage_sums)
    result.metrics.cluster_usage.push_back(sum / static_cast<double>(std::max<std::size_t>(1, graph_ids.size())));
  return result;
}

TrainerState Trainer::state() const {
  TrainerState s;
  s.epoch = epoch_;
  s.adam_steps = optimizer_->steps();
  s.parameters = model_->parameters().snapshot();
  s.best_epoch = best_epoch_;
  s.best_value = best_value_;
  s.has_best = has_best_;
  s.best_parameters = best_parameters_;
  s.epochs_without_improvement = epochs_without_improvement_;
  return s;
}

void Trainer::load_state(const TrainerState& s) {
  epoch_ = s.epoch;
  optimizer_->set_steps(s.adam_steps);
  model_->parameters().restore(s.parameters);
  best_epoch_ = s.best_epoch;
  best_value_ = s.best_value;
  has_best_ = s.has_best;
  best_parameters_ = s.best_parameters;
  epochs_without_improvement_ = s.epochs_without_improvement;
  stopped_early_ = config_.patience > 0 && epochs_without_improvement_ >= config_.patience;
}

}  // namespace diffpool
