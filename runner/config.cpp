#include "runner/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

#include "engine/core/error.hpp"

namespace diffpool {

const EnumNames<Protocol>& protocol_names() {
  static const EnumNames<Protocol> names(
      "protocol", {{"paper", Protocol::paper}, {"holdout", Protocol::holdout}, {"nested", Protocol::nested}});
  return names;
}
const char* protocol_name(Protocol p) { return protocol_names().name(p); }

const EnumNames<SweepMode>& sweep_mode_names() {
  static const EnumNames<SweepMode> names("sweep mode", {{"grid", SweepMode::grid}, {"random", SweepMode::random}});
  return names;
}

const EnumNames<SaveOutputs>& save_outputs_names() {
  static const EnumNames<SaveOutputs> names(
      "value", {{"none", SaveOutputs::none}, {"evaluation", SaveOutputs::evaluation}, {"all", SaveOutputs::all}});
  return names;
}

const EnumNames<ProgressDisplay>& progress_display_names() {
  static const EnumNames<ProgressDisplay> names(
      "value", {{"auto", ProgressDisplay::automatic}, {"live", ProgressDisplay::live}, {"plain", ProgressDisplay::plain}});
  return names;
}

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) out += fmt::format("{}{}", out.empty() ? "" : sep, s);
  return out;
}

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsNull()) return "null";
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << node;
  return e.c_str();
}

// Where values come from: the file, or an override (command line, sweep point) per key path.
class Reader {
 public:
  Reader(std::string source, std::map<std::string, std::string> origins)
      : source_(std::move(source)), origins_(std::move(origins)) {}

  std::string where(const YAML::Node& node, const std::string& key) const {
    for (auto it = origins_.begin(); it != origins_.end(); ++it)
      if (key == it->first || key.rfind(it->first + ".", 0) == 0 || it->first.rfind(key + ".", 0) == 0)
        return it->second;
    const YAML::Mark m = node.Mark();
    if (m.is_null() || m.line < 0) return source_;
    return fmt::format("{}:{}:{}", source_, m.line + 1, m.column + 1);
  }
  [[noreturn]] void fail(const YAML::Node& node, const std::string& key, const std::string& message) const {
    throw ConfigError(fmt::format("{}: {}: {}", where(node, key), key, message));
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::map<std::string, std::string> origins_;
};

// Sets root[a][b]... = value for the dotted path "a.b...".
void set_path(YAML::Node root, const std::string& path, const YAML::Node& value, const std::string& origin) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw ConfigError(fmt::format("{}: '{}' is not a key path like model.hidden_dim", origin, path));
    parts.push_back(part);
  }
  if (parts.empty()) throw ConfigError(fmt::format("{}: empty key", origin));
  if (!root.IsMap() && !root.IsNull()) {
    throw ConfigError(fmt::format("{}: cannot set '{}': the experiment document is not a mapping of sections", origin,
                                  path));
  }
  // yaml-cpp nodes are references: walk down with reset() so assignment does not alias.
  YAML::Node node;
  node.reset(root);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (node[parts[i]] && !node[parts[i]].IsMap() && !node[parts[i]].IsNull())
      throw ConfigError(fmt::format("{}: '{}' is not a section", origin, parts[i]));
    YAML::Node child = node[parts[i]];
    if (!child || child.IsNull()) {
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child = node[parts[i]];
    }
    node.reset(child);
  }
  node[parts.back()] = value;
}

// The working precisions an experiment may ask for (a subset of DType).
const EnumNames<DType>& training_dtype_names() {
  static const EnumNames<DType> names("dtype", {{"f32", DType::f32}, {"f64", DType::f64}},
                                      {{"float32", DType::f32}, {"float64", DType::f64}});
  return names;
}

std::string location(const std::string& source, const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return source;
  return fmt::format("{}:{}:{}", source, m.line + 1, m.column + 1);
}

// ---- values ----------------------------------------------------------------------------------

long long parse_integer(const Reader& r, const YAML::Node& v, const std::string& key, IntRange range) {
  const std::string s = v.IsScalar() ? v.Scalar() : scalar_text(v);
  char* end = nullptr;
  errno = 0;
  const long long x = v.IsScalar() ? std::strtoll(s.c_str(), &end, 10) : 0;
  if (!v.IsScalar() || s.empty() || *end != '\0' || errno == ERANGE)
    r.fail(v, key, fmt::format("expected an integer, got '{}'", s));
  if (!range.contains(x)) r.fail(v, key, fmt::format("{} is out of range: allowed {}", x, range.text()));
  return x;
}

double parse_number(const Reader& r, const YAML::Node& v, const std::string& key, Range range) {
  const std::string s = v.IsScalar() ? v.Scalar() : scalar_text(v);
  char* end = nullptr;
  const double x = v.IsScalar() ? std::strtod(s.c_str(), &end) : 0.0;
  if (!v.IsScalar() || s.empty() || *end != '\0' || !std::isfinite(x))
    r.fail(v, key, fmt::format("expected a number, got '{}'", s));
  if (!range.contains(x)) r.fail(v, key, fmt::format("{} is out of range: allowed {}", s, range.text()));
  return x;
}

bool parse_boolean(const Reader& r, const YAML::Node& v, const std::string& key) {
  const std::string s = v.IsScalar() ? v.Scalar() : "";
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  r.fail(v, key, fmt::format("expected true or false, got '{}'", scalar_text(v)));
}

// ---- the schema ------------------------------------------------------------------------------

// One key: what the README says of it, how its value is read into an ExperimentConfig, and its
// text (canonical: doubles with 17 significant digits, the form the ids hash; shown: the shortest
// form that reads back to the same double, for the README, job files and output).
struct Field {
  SettingInfo info;
  std::function<void(ExperimentConfig&, const YAML::Node&, const Reader&)> read;
  std::function<std::string(const ExperimentConfig&, bool canonical)> text;
};

// What the README says of a key beyond its type: one line, and where the generated text would
// be wrong or unhelpful, the default and the allowed values as shown.
struct Doc {
  Affects affects;
  const char* doc;
  const char* default_text = nullptr;
  const char* allowed = nullptr;
  bool omitted_at_default = false;  // see SettingInfo
};

template <class S> using SectionOf = S& (*)(ExperimentConfig&);
ExperimentConfig& top_level(ExperimentConfig& c) { return c; }
DatasetSettings& dataset_section(ExperimentConfig& c) { return c.dataset; }
DatasetOptions& dataset_options(ExperimentConfig& c) { return c.dataset.options; }
ModelConfig& model_section(ExperimentConfig& c) { return c.model; }
TrainConfig& training_section(ExperimentConfig& c) { return c.training; }
EvaluationSettings& evaluation_section(ExperimentConfig& c) { return c.evaluation; }
SweepSettings& sweep_section(ExperimentConfig& c) { return c.sweep; }
OutputSettings& output_section(ExperimentConfig& c) { return c.output; }
BackendOptions& backend_section(ExperimentConfig& c) { return c.backend; }

template <class S, class T> const T& member_of(const ExperimentConfig& c, SectionOf<S> section, T S::*member) {
  return section(const_cast<ExperimentConfig&>(c)).*member;
}

Field make_field(const char* key, SettingKind kind, const Doc& doc) {
  Field f;
  f.info.key = key;
  f.info.kind = kind;
  f.info.affects = doc.affects;
  f.info.doc = doc.doc;
  if (doc.default_text) f.info.default_text = doc.default_text;
  if (doc.allowed) f.info.allowed = doc.allowed;
  f.info.omitted_at_default = doc.omitted_at_default;
  return f;
}

template <class S>
Field string_key(const char* key, SectionOf<S> section, std::string S::*member, Doc doc) {
  Field f = make_field(key, SettingKind::string, doc);
  f.read = [=](ExperimentConfig& c, const YAML::Node& v, const Reader& r) {
    if (!v.IsScalar()) r.fail(v, key, fmt::format("expected a string, got '{}'", scalar_text(v)));
    section(c).*member = v.Scalar();
  };
  f.text = [=](const ExperimentConfig& c, bool) { return member_of(c, section, member); };
  return f;
}

template <class S>
Field boolean_key(const char* key, SectionOf<S> section, bool S::*member, Doc doc) {
  Field f = make_field(key, SettingKind::boolean, doc);
  f.info.allowed = doc.allowed ? doc.allowed : "`true`, `false`";
  f.read = [=](ExperimentConfig& c, const YAML::Node& v, const Reader& r) { section(c).*member = parse_boolean(r, v, key); };
  f.text = [=](const ExperimentConfig& c, bool) { return fmt::format("{}", member_of(c, section, member)); };
  return f;
}

template <class S, class T>
Field integer_key(const char* key, SectionOf<S> section, T S::*member, IntRange range, Doc doc) {
  Field f = make_field(key, SettingKind::integer, doc);
  f.info.integers = range;
  if (!doc.allowed) f.info.allowed = range.hi == std::numeric_limits<long long>::max() ? fmt::format(">= {}", range.lo) : range.text();
  f.read = [=](ExperimentConfig& c, const YAML::Node& v, const Reader& r) {
    section(c).*member = static_cast<T>(parse_integer(r, v, key, range));
  };
  f.text = [=](const ExperimentConfig& c, bool) { return fmt::format("{}", member_of(c, section, member)); };
  return f;
}

template <class S>
Field number_key(const char* key, SectionOf<S> section, double S::*member, Range range, Doc doc) {
  Field f = make_field(key, SettingKind::number, doc);
  f.info.numbers = range;
  if (!doc.allowed) f.info.allowed = range.text();
  f.read = [=](ExperimentConfig& c, const YAML::Node& v, const Reader& r) { section(c).*member = parse_number(r, v, key, range); };
  f.text = [=](const ExperimentConfig& c, bool canonical) {
    const double x = member_of(c, section, member);
    return canonical ? fmt::format("{:.17g}", x) : fmt::format("{}", x);
  };
  return f;
}

// A list of integers; a single integer is read as a list of one.
template <class S, class T>
Field integer_list_key(const char* key, SectionOf<S> section, std::vector<T> S::*member, IntRange range, bool may_be_empty,
                       Doc doc) {
  Field f = make_field(key, SettingKind::integer_list, doc);
  f.info.integers = range;
  f.info.may_be_empty = may_be_empty;
  if (!doc.allowed) f.info.allowed = fmt::format("list of {}{}", range.text(), may_be_empty ? ", or `[]`" : "");
  f.read = [=](ExperimentConfig& c, const YAML::Node& v, const Reader& r) {
    std::vector<T> out;
    if (v.IsScalar()) {
      out.push_back(static_cast<T>(parse_integer(r, v, key, range)));
    } else if (v.IsSequence()) {
      if (v.size() == 0 && !may_be_empty) r.fail(v, key, "the list is empty: give at least one value");
      for (const YAML::Node& item : v) out.push_back(static_cast<T>(parse_integer(r, item, key, range)));
    } else {
      r.fail(v, key, fmt::format("expected a list of integers, got '{}'", scalar_text(v)));
    }
    section(c).*member = std::move(out);
  };
  f.text = [=](const ExperimentConfig& c, bool) {
    const std::vector<T>& v = member_of(c, section, member);
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += fmt::format("{}{}", i ? "," : "", v[i]);
    return out + "]";
  };
  return f;
}

template <class S, class E>
Field name_key(const char* key, SectionOf<S> section, E S::*member, const EnumNames<E>& (*names)(), Doc doc) {
  Field f = make_field(key, SettingKind::name, doc);
  f.info.choices = names().list();
  if (!doc.allowed) {
    std::vector<std::string> quoted;
    for (const std::string& n : f.info.choices) quoted.push_back(fmt::format("`{}`", n));
    f.info.allowed = fmt::format("{}", fmt::join(quoted, ", "));
  }
  f.read = [=](ExperimentConfig& c, const YAML::Node& v, const Reader& r) {
    if (!v.IsScalar()) r.fail(v, key, fmt::format("expected a name, got '{}'", scalar_text(v)));
    try {
      section(c).*member = names().parse(v.Scalar());
    } catch (const InputError& e) {
      r.fail(v, key, e.what());
    }
  };
  f.text = [=](const ExperimentConfig& c, bool) { return std::string(names().name(member_of(c, section, member))); };
  return f;
}

void read_sweep_parameters(ExperimentConfig& c, const YAML::Node& params, const Reader& r);

const std::vector<Field>& fields() {
  static const std::vector<Field> table = [] {
    namespace mod = model_limits;
    namespace train = train_limits;
    const IntRange seeds{0, std::numeric_limits<long long>::max()};
    const Affects job = Affects::job, experiment = Affects::experiment, none = Affects::none;
    std::vector<Field> t = {
        string_key("name", top_level, &ExperimentConfig::name,
                   {experiment, "the experiment's name, a folder-safe word (no spaces or slashes)", nullptr, "a word"}),

        string_key("dataset.name", dataset_section, &DatasetSettings::name,
                   {job, "the folder `<data_dir>/<name>/` with `<name>_A.txt`, `_graph_indicator.txt`, `_graph_labels.txt` and "
                         "optional `_node_labels.txt`, `_node_attributes.txt` (each may be `.txt.gz`)",
                    nullptr, "any TU dataset name"}),
        string_key("dataset.data_dir", dataset_options, &DatasetOptions::data_dir,
                   {none, "where datasets live; a missing dataset's error names the folders looked in and the official download URL",
                    "`$DIFFPOOL_DATA`, else `./datasets`", "a folder"}),
        name_key("dataset.features", dataset_options, &DatasetOptions::features, feature_mode_names,
                 {job, "node features: `automatic` uses one-hot node labels and attributes where the dataset has them, else `constant`",
                  "`automatic` (`auto`)"}),
        integer_key("dataset.degree_cap", dataset_options, &DatasetOptions::degree_cap, IntRange{1, 100000},
                    {job, "`degree` features: one-hot degree, degrees >= cap share the last column"}),
        integer_key("dataset.constant_dim", dataset_options, &DatasetOptions::constant_dim, IntRange{1, 100000},
                    {job, "`constant` features: this many ones per node (the authors used ten)"}),
        boolean_key("dataset.keep_self_loops", dataset_options, &DatasetOptions::keep_self_loops,
                    {job, "keep `i-i` edges of the file (dropped by default; GraphSAGE has its own root term)"}),
        integer_key("dataset.max_nodes", dataset_options, &DatasetOptions::max_nodes, IntRange{0, 1LL << 40},
                    {job, "drop every graph with more nodes, as the authors' code does with `--max-nodes`; only for reproducing "
                          "their numbers (graph indices in results then count the kept graphs)",
                     "0 (keep all)"}),

        name_key("model.variant", model_section, &ModelConfig::variant, variant_names,
                 {job, "learned assignments with both auxiliary losses; without the link-prediction loss; fixed Graclus "
                       "assignments; GraphSAGE with global pooling"}),
        integer_key("model.pool_levels", model_section, &ModelConfig::pool_levels, mod::pool_levels,
                    {job, "DiffPool layers (the paper: 2, or 1 for small datasets)", nullptr, "0 to 8 (>= 1 for DiffPool variants)"}),
        integer_list_key("model.conv_layers", model_section, &ModelConfig::conv_layers, mod::conv_layers, false,
                         {job, "GraphSAGE layers before the first pooling, after it, ...; missing entries repeat the last; the "
                               "baseline uses their sum"}),
        integer_key("model.hidden_dim", model_section, &ModelConfig::hidden_dim, mod::width,
                    {job, "width of hidden GraphSAGE layers"}),
        integer_key("model.embedding_dim", model_section, &ModelConfig::embedding_dim, mod::width,
                    {job, "width of each embedding GNN's last layer"}),
        number_key("model.cluster_ratio", model_section, &ModelConfig::cluster_ratio, mod::cluster_ratio,
                   {job, "clusters of each level as a ratio of the previous level's size; level 1's base is the dataset's "
                         "largest graph (the paper's rule)"}),
        integer_list_key("model.clusters", model_section, &ModelConfig::clusters, mod::clusters, true,
                         {job, "absolute cluster counts per level: with `largest_graph` they replace `cluster_ratio`, with "
                               "`per_graph` they cap each graph's count"}),
        name_key("model.cluster_rule", model_section, &ModelConfig::cluster_rule, cluster_rule_names,
                 {job, "`largest_graph`: every graph gets the count of the dataset's largest graph (the authors' code); "
                       "`per_graph`: graph g gets max(1, ceil(ratio x its size)) at each level (docs/MODEL.md, \"Cluster "
                       "counts\")",
                  nullptr, nullptr, true}),
        name_key("model.readout", model_section, &ModelConfig::readout, readout_names,
                 {job, "graph readout per level, concatenated over levels into the MLP"}),
        boolean_key("model.concat_layers", model_section, &ModelConfig::concat_layers,
                    {job, "pool and read out the concatenation of every layer's output (the authors' code) instead of the last "
                          "layer's"}),
        integer_list_key("model.mlp_hidden", model_section, &ModelConfig::mlp_hidden, mod::width, true,
                         {job, "hidden widths of the prediction MLP (`[]`: one linear layer)"}),
        number_key("model.dropout", model_section, &ModelConfig::dropout, mod::dropout,
                   {job, "dropout on the input of every GraphSAGE layer and after each hidden MLP layer (training only)"}),
        boolean_key("model.batch_norm", model_section, &ModelConfig::batch_norm,
                    {job, "batch norm after every hidden GraphSAGE layer (paper)"}),
        name_key("model.batch_norm_mode", model_section, &ModelConfig::batch_norm_mode, batch_norm_mode_names,
                 {job, "`trained`: learned scale and shift, running statistics for evaluation (paper); `per_batch`: no learned "
                       "parameters, each batch normalised by its own statistics in training and evaluation (what the authors' "
                       "code computes)"}),
        boolean_key("model.l2_normalize", model_section, &ModelConfig::l2_normalize,
                    {job, "l2-normalise node embeddings at every layer (paper)"}),
        number_key("model.link_weight", model_section, &ModelConfig::link_weight, mod::loss_weight,
                   {job, "weight of the link-prediction loss per level (ignored by `diffpool-nolp`)"}),
        number_key("model.entropy_weight", model_section, &ModelConfig::entropy_weight, mod::loss_weight,
                   {job, "weight of the assignment-entropy loss per level"}),
        name_key("model.link_norm", model_section, &ModelConfig::link_norm, link_loss_norm_names,
                 {job, "`‖A - SSᵀ‖_F` per graph (paper), its square, divided by n² (PyTorch Geometric), or `bce`: the authors' "
                       "code, binary cross-entropy between A and min(SSᵀ, 1) over every node pair, divided by the batch's "
                       "pairs, first pooling level only (O(n² k) time per graph, no n² memory)"}),
        name_key("model.dense_aggregation", model_section, &ModelConfig::dense_aggregation, dense_aggregation_names,
                 {job, "GraphSAGE after pooling: degree-normalised (`mean`, paper) or `A'X` (authors' code)"}),
        number_key("model.dense_degree_eps", model_section, &ModelConfig::dense_degree_eps, mod::dense_degree_eps,
                   {job, "added to pooled degrees before dividing"}),
        number_key("model.batch_norm_momentum", model_section, &ModelConfig::batch_norm_momentum, mod::batch_norm_momentum,
                   {job, "running-statistics update rate"}),
        number_key("model.batch_norm_eps", model_section, &ModelConfig::batch_norm_eps, mod::batch_norm_eps,
                   {job, "batch-norm variance epsilon"}),

        integer_key("training.epochs", training_section, &TrainConfig::epochs, train::epochs, {job, "maximum epochs"}),
        integer_key("training.batch_size", training_section, &TrainConfig::batch_size, train::batch_size,
                    {job, "graphs per step (never padded)"}),
        number_key("training.learning_rate", training_section, &TrainConfig::learning_rate, train::learning_rate,
                   {job, "Adam step size"}),
        number_key("training.weight_decay", training_section, &TrainConfig::weight_decay, train::weight_decay,
                   {job, "L2 weight decay in Adam"}),
        number_key("training.clip_norm", training_section, &TrainConfig::clip_norm, train::clip_norm,
                   {job, "global gradient-norm clipping (0: off)"}),
        integer_key("training.patience", training_section, &TrainConfig::patience, train::patience,
                    {job, "epochs without improvement of `stop_metric` before stopping (0: never)"}),
        name_key("training.stop_metric", training_section, &TrainConfig::stop_metric, stop_metric_names,
                 {job, "what early stopping and best-epoch selection watch"}),
        integer_key("training.seed", training_section, &TrainConfig::seed, seeds,
                    {job, "base seed; each job's seed is derived from it, the fold and the repeat"}),
        name_key("training.dtype", training_section, &TrainConfig::dtype, training_dtype_names, {job, "working precision"}),

        name_key("evaluation.protocol", evaluation_section, &EvaluationSettings::protocol, protocol_names,
                 {job, "see `docs/EVALUATION.md`; named in every result"}),
        integer_key("evaluation.folds", evaluation_section, &EvaluationSettings::folds, IntRange{2, 1000},
                    {job, "outer stratified folds; at most the dataset's graph count, checked by `run` and `train` when "
                          "they read the dataset, before any job"}),
        number_key("evaluation.validation_fraction", evaluation_section, &EvaluationSettings::validation_fraction,
                   Range{0.0, 1.0, true, true},
                   {job, "stratified inner holdout of the training folds (`holdout`, `nested`)"}),
        integer_key("evaluation.repeats", evaluation_section, &EvaluationSettings::repeats, IntRange{1, 1000},
                    {experiment, "trainings per (sweep point, fold); `nested`: retrainings of each fold's winner"}),
        integer_key("evaluation.split_seed", evaluation_section, &EvaluationSettings::split_seed, seeds,
                    {job, "seed of the stratified splits (stored with every result)"}),
        integer_list_key("evaluation.only_folds", evaluation_section, &EvaluationSettings::only_folds, IntRange{0, 999}, true,
                         {none, "run only these outer folds, into the same output folder (array jobs)", "`[]` (all)",
                          "list of fold numbers below `folds`"}),

        name_key("sweep.mode", sweep_section, &SweepSettings::mode, sweep_mode_names,
                 {experiment, "every combination, or `samples` random points"}),
        integer_key("sweep.samples", sweep_section, &SweepSettings::samples, IntRange{1, 100000},
                    {experiment, "random search: number of points"}),
        integer_key("sweep.seed", sweep_section, &SweepSettings::seed, seeds, {experiment, "random search: sampling seed"}),
        // Changes the settings of the points, so their jobs; read by read_sweep_parameters.
        make_field("sweep.parameters", SettingKind::sweep_parameters,
                   {job, "`model.*`, `training.*` or `dataset.*` key to a list of values; random search also takes "
                         "`uniform: [lo, hi]`, `log_uniform: [lo, hi]`, `int_uniform: [lo, hi]`; every value is checked "
                         "like the key's own",
                    "none", "mapping"}),

        string_key("output.dir", output_section, &OutputSettings::dir,
                   {none, "the experiment folder (layout in `results/README.md`); one experiment per folder, a mismatch is an error",
                    "`runs/<name>`", "a folder"}),
        name_key("output.save_outputs", output_section, &OutputSettings::save_outputs, save_outputs_names,
                 {none, "which graphs get embeddings, assignments, pooled adjacencies and logits in the job file: none, "
                        "the job's evaluation split, or every graph (every test graph's label and prediction is "
                        "stored regardless)"}),
        integer_key("output.max_graphs", output_section, &OutputSettings::max_graphs, IntRange{0, 100000000},
                    {none, "at most this many graphs of the saved set (the test predictions keep every test graph)", "0 (all)"}),
        integer_key("output.checkpoint_every", output_section, &OutputSettings::checkpoint_every, IntRange{0, 1000000},
                    {none, "epochs between checkpoints of a running job (0: only on SIGTERM/SIGUSR1)"}),
        integer_key("output.storage_wait_seconds", output_section, &OutputSettings::storage_wait_seconds,
                    IntRange{0, 604800},
                    {none, "when the output's file system is full or over quota, how long a finished job waits for room "
                           "to write its result (trying again every few seconds) before the run stops with exit 74 to be "
                           "resumed; checkpoints without room are skipped, training goes on"}),
        integer_key("output.claim_timeout_seconds", output_section, &OutputSettings::claim_timeout_seconds,
                    IntRange{10, 604800},
                    {none, "several runs into one output folder share its jobs: a run claims a job before training it "
                           "(`claims/<job id>`) and leaves a job another live run claimed to that run; a claim that "
                           "its run has not refreshed for this long (a crashed node) is taken over (a run killed on "
                           "the same host is noticed at once)"}),
        integer_key("output.progress_seconds", output_section, &OutputSettings::progress_seconds, IntRange{1, 86400},
                    {none, "interval of plain progress lines when output is not a terminal"}),
        name_key("output.progress", output_section, &OutputSettings::progress, progress_display_names,
                 {none, "`live`: one line rewritten in place; `plain`: a line every `progress_seconds`; `auto`: live on a "
                        "terminal, plain in batch logs and under an MPI launcher (mpirun gives its ranks a pseudo-terminal "
                        "even when its output goes to a file)"}),

        name_key("backend.kind", backend_section, &BackendOptions::kind, backend_kind_names,
                 {none, "`auto` picks the GPU when one is visible; `cuda` without a GPU is an error"}),
        integer_key("backend.cpu_threads", backend_section, &BackendOptions::cpu_threads, IntRange{1, 1024},
                    {none, "BLAS threads per process (one rank per core is the intended use)"}),
        name_key("backend.huge_pages", backend_section, &BackendOptions::huge_pages, huge_pages_names,
                 {none, "transparent huge pages for the CPU backend's step workspace: `auto` when it reaches 128 MiB (D&D "
                        "epochs measured 7% faster with per-graph clusters, 18% under the paper's rule), `on` from 2 MiB, `off` never; results are "
                        "identical either way (docs/PERFORMANCE.md, \"Huge pages for the step workspace\")"}),
        name_key("backend.matmul_precision", backend_section, &BackendOptions::matmul_precision, matmul_precision_names,
                 {job, "f32 matrix products: `fp32` in full, or `tf32`, every operand reduced to TF32 (10 mantissa bits) as "
                       "NVIDIA tensor cores read it, sums in f32; on the CPU an emulation for accuracy studies, slower "
                       "(docs/PERFORMANCE.md, \"TF32\"); needs training.dtype f32",
                  nullptr, nullptr, true}),
        integer_key("backend.heartbeat_seconds", backend_section, &BackendOptions::heartbeat_seconds, IntRange{2, 86400}, {none, "a rank silent this long under MPI is lost: the run checkpoints and exits 75 (requeue) instead of hanging"}),
    };
    for (Field& f : t) {
      if (f.info.kind == SettingKind::sweep_parameters) {
        f.read = read_sweep_parameters;
        f.text = [](const ExperimentConfig&, bool) { return std::string(); };
        continue;
      }
      const ExperimentConfig defaults;
      f.info.default_value = f.text(defaults, true);
      if (f.info.default_text.empty()) {
        const std::string shown = f.text(defaults, false);
        const bool word = f.info.kind == SettingKind::name || f.info.kind == SettingKind::integer_list;
        f.info.default_text = word ? fmt::format("`{}`", shown) : shown;
      }
    }
    return t;
  }();
  return table;
}

const Field* find_field(const std::string& key) {
  for (const Field& f : fields())
    if (f.info.key == key) return &f;
  return nullptr;
}

// "model" for "model.hidden_dim", "" for "name"; and the key inside its section.
std::string section_of(const std::string& key) {
  const std::size_t dot = key.find('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}
std::string leaf_of(const std::string& key) {
  const std::size_t dot = key.find('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

const std::vector<std::string>& section_names() {
  static const std::vector<std::string> names = {"dataset", "model", "training", "evaluation", "sweep", "output", "backend"};
  return names;
}

// " (did you mean 'x'?)" when a known key is within two edits of `key`.
std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string hint;
  for (const auto& k : known)
    if (edit_distance(key, k) <= 2) hint = fmt::format(" (did you mean '{}'?)", k);
  return hint;
}

// Checks one sweep value (or a distribution's bound) as the key's own value, at its own place;
// `scratch` receives it.
void check_sweep_value(const Field& field, const YAML::Node& value, ExperimentConfig& scratch, const Reader& r) {
  field.read(scratch, value, r);
}

void read_sweep_parameters(ExperimentConfig& c, const YAML::Node& params, const Reader& r) {
  const std::string& source = r.source();
  SweepSettings& sweep = c.sweep;
  if (!params.IsMap())
    r.fail(params, "sweep.parameters", "expected a mapping from keys (like model.hidden_dim) to lists of values");
  sweep.parameters.clear();
  ExperimentConfig scratch;
  for (const auto& kv : params) {
    SweepParameter p;
    p.key = kv.first.Scalar();
    p.origin = location(source, kv.first.Mark());
    const std::string section = section_of(p.key);
    if (section != "model" && section != "training" && section != "dataset")
      throw ConfigError(fmt::format("{}: sweep.parameters.{}: only model.*, training.* and dataset.* keys can be swept",
                                    p.origin, p.key));
    const Field* field = find_field(p.key);
    if (!field) {
      std::vector<std::string> known;
      for (const Field& f : fields())
        if (section_of(f.info.key) == section) known.push_back(f.info.key);
      throw ConfigError(fmt::format("{}: sweep.parameters: unknown key '{}'{}; allowed keys in '{}': {}", p.origin, p.key,
                                    suggestion(p.key, known), section, join(known)));
    }
    const YAML::Node& v = kv.second;
    if (v.IsSequence()) {
      if (v.size() == 0) throw ConfigError(fmt::format("{}: sweep.parameters.{}: the list of values is empty", p.origin, p.key));
      for (const YAML::Node& item : v) {
        check_sweep_value(*field, item, scratch, r);
        p.values.push_back(YAML::Clone(item));
      }
    } else if (v.IsMap() && v.size() == 1) {
      p.distribution = v.begin()->first.Scalar();
      const YAML::Node range = v.begin()->second;
      if ((p.distribution != "uniform" && p.distribution != "log_uniform" && p.distribution != "int_uniform") ||
          !range.IsSequence() || range.size() != 2)
        throw ConfigError(fmt::format("{}: sweep.parameters.{}: expected a list of values or one of uniform: [low, high], "
                                      "log_uniform: [low, high], int_uniform: [low, high]", p.origin, p.key));
      char* e1 = nullptr;
      char* e2 = nullptr;
      p.low = std::strtod(range[0].Scalar().c_str(), &e1);
      p.high = std::strtod(range[1].Scalar().c_str(), &e2);
      if (*e1 || *e2 || !(p.low <= p.high) || (p.distribution == "log_uniform" && !(p.low > 0)))
        throw ConfigError(fmt::format("{}: sweep.parameters.{}: invalid range [{}, {}]{}", p.origin, p.key,
                                      range[0].Scalar(), range[1].Scalar(),
                                      p.distribution == "log_uniform" ? " (log_uniform needs 0 < low <= high)" : " (need low <= high)"));
      if (sweep.mode == SweepSettings::Mode::grid)
        throw ConfigError(fmt::format("{}: sweep.parameters.{}: a distribution needs sweep.mode: random (grid search takes lists)",
                                      p.origin, p.key));
      const bool integers = p.distribution == "int_uniform";
      const SettingKind wanted = integers ? SettingKind::integer : SettingKind::number;
      if (field->info.kind != wanted)
        throw ConfigError(fmt::format("{}: sweep.parameters.{}: {} draws {}, but {} takes {}", p.origin, p.key, p.distribution,
                                      integers ? "integers" : "real numbers", p.key,
                                      field->info.kind == SettingKind::integer ? "integers (use int_uniform)"
                                      : field->info.kind == SettingKind::number ? "real numbers (use uniform or log_uniform)"
                                                                                : "a list of values"));
      check_sweep_value(*field, range[0], scratch, r);
      check_sweep_value(*field, range[1], scratch, r);
    } else {
      throw ConfigError(fmt::format("{}: sweep.parameters.{}: expected a list of values, got '{}'", p.origin, p.key,
                                    scalar_text(v)));
    }
    sweep.parameters.push_back(std::move(p));
  }
}

// Refuses a sweep of more than kMaxSweepJobs jobs, counted from the settings before anything is
// expanded: points (the grid's product or the random samples) x folds x repeats.
void check_sweep_size(const ExperimentConfig& c, const YAML::Node& place, const Reader& r) {
  double points = 1;
  if (c.sweep.mode == SweepMode::random && !c.sweep.parameters.empty()) points = c.sweep.samples;
  else
    for (const SweepParameter& p : c.sweep.parameters) points *= static_cast<double>(std::max<std::size_t>(1, p.values.size()));
  const EvaluationSettings& e = c.evaluation;
  const double folds = e.only_folds.empty() ? e.folds
                                            : static_cast<double>(std::set<int>(e.only_folds.begin(), e.only_folds.end()).size());
  const double jobs = points * folds * e.repeats;
  if (jobs > static_cast<double>(kMaxSweepJobs))
    r.fail(place, "sweep", fmt::format("the experiment expands to {:.0f} jobs ({:.0f} sweep points x {:.0f} folds x {} repeats), "
                                       "more than the limit of {}: split it into several experiments",
                                       jobs, points, folds, e.repeats, kMaxSweepJobs));
}

ExperimentConfig parse_document(const YAML::Node& document, const std::string& source,
                                const std::map<std::string, std::string>& origins) {
  Reader reader(source, origins);
  ExperimentConfig c;
  c.source = source;
  c.document = document;
  c.origins = origins;
  if (!document.IsMap())
    throw ConfigError(fmt::format("{}: an experiment file is a mapping with the sections dataset, model, training, "
                                  "evaluation, sweep, output and backend", source));
  const YAML::Node& root = document;  // const: looking a key up never inserts it

  std::vector<std::string> sections = {""};
  sections.insert(sections.end(), section_names().begin(), section_names().end());
  for (const std::string& section : sections) {
    const YAML::Node node = section.empty() ? root : root[section];
    const bool present = node && !node.IsNull();
    if (present && !node.IsMap())
      reader.fail(node, section, fmt::format("expected a mapping of keys, got '{}'", scalar_text(node)));
    std::vector<std::string> known;
    for (const Field& f : fields()) {
      if (section_of(f.info.key) != section) continue;
      known.push_back(leaf_of(f.info.key));
      if (!present) continue;
      const YAML::Node value = node[leaf_of(f.info.key)];
      if (!value) continue;
      if (value.IsNull()) {  // `key:` with nothing after it is a mistake, not a request for the default
        YAML::Node place = value;  // an empty value has no place of its own: name the key's
        for (const auto& kv : node)
          if (kv.first.Scalar() == leaf_of(f.info.key)) place = kv.first;
        reader.fail(place, f.info.key, "no value (leave the key out to use its default)");
      }
      f.read(c, value, reader);
    }
    // Checks that involve more than one key of the section.
    if (section.empty()) {
      if (c.name.empty() || c.name.find_first_of("/\\ ") != std::string::npos)
        reader.fail(root["name"], "name", fmt::format("'{}' is not usable as a folder name (no spaces or slashes)", c.name));
      continue;  // unknown top-level keys are reported after the sections
    }
    if (section == "model" && c.model.variant != Variant::graphsage && c.model.pool_levels == 0)
      reader.fail(present ? node["pool_levels"] : YAML::Node(), "model.pool_levels",
                  fmt::format("variant {} needs at least one pooling level (allowed 1 to 8)", variant_name(c.model.variant)));
    if (section == "evaluation" && present && node["only_folds"]) {
      const YAML::Node only = node["only_folds"];
      const auto check = [&](const YAML::Node& item) {
        const long long fold = std::strtoll(item.Scalar().c_str(), nullptr, 10);
        if (fold >= c.evaluation.folds)
          reader.fail(item, "evaluation.only_folds",
                      fmt::format("{} is out of range: allowed 0 to {}", fold, c.evaluation.folds - 1));
      };
      if (only.IsSequence())
        for (const YAML::Node& item : only) check(item);
      else if (only.IsScalar())
        check(only);
    }
    if (section == "sweep") check_sweep_size(c, present ? node : YAML::Node(), reader);
    if (section == "backend" && c.backend.matmul_precision == MatmulPrecision::tf32 && c.training.dtype != DType::f32)
      reader.fail(node["matmul_precision"], "backend.matmul_precision",
                  fmt::format("tf32 reduces f32 products, but training.dtype is {}: use training.dtype: f32 or "
                              "matmul_precision: fp32", dtype_name(c.training.dtype)));
    if (section == "output" && c.output.dir.empty()) c.output.dir = "runs/" + c.name;
    if (!present) continue;
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::vector<std::string> sorted = known;
      std::sort(sorted.begin(), sorted.end());
      throw ConfigError(fmt::format("{}: unknown key '{}.{}'{}; allowed keys in '{}': {}", location(source, kv.first.Mark()),
                                    section, key, suggestion(key, known), section, join(sorted)));
    }
  }
  std::vector<std::string> top = {"name"};
  top.insert(top.end(), section_names().begin(), section_names().end());
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (std::find(top.begin(), top.end(), key) != top.end()) continue;
    std::vector<std::string> sorted = top;
    std::sort(sorted.begin(), sorted.end());
    throw ConfigError(fmt::format("{}: unknown key '{}'{}; allowed keys: {}", location(source, kv.first.Mark()), key,
                                  suggestion(key, top), join(sorted)));
  }
  return c;
}

// A key given twice in one mapping is an error (YAML parsers keep one of them silently).
void check_duplicate_keys(const YAML::Node& node, const std::string& source) {
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) check_duplicate_keys(item, source);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : scalar_text(kv.first);
    const auto [it, inserted] = seen.emplace(key, kv.first.Mark());
    if (!inserted)
      throw ConfigError(fmt::format("{}: duplicate key '{}' (first given at line {}): give each key once",
                                    location(source, kv.first.Mark()), key, it->second.line + 1));
    check_duplicate_keys(kv.second, source);
  }
}

// Where each YAML document of a text starts, and its first node, without building it.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts, first_nodes;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { node(mark); }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (first_nodes.size() < starts.size()) first_nodes.push_back(mark);
  }
};

YAML::Node load_text(const std::string& text, const std::string& source) {
  try {
    // At most two documents are looked at: yaml-cpp 0.7's LoadAll never ends on a text such as " ,"
    // (each call yields another empty document at the same place; found by tests/fuzz).
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentStarts documents;
    while (documents.starts.size() < 2 && parser.HandleNextDocument(documents)) {
    }
    if (documents.starts.size() > 1) {
      const YAML::Mark& second = documents.first_nodes.size() > 1 ? documents.first_nodes[1] : documents.starts[1];
      if (documents.starts[1].pos == documents.starts[0].pos) {
        throw ConfigError(fmt::format("{}: YAML syntax error: unexpected text that starts no document",
                                      location(source, second)));
      }
      throw ConfigError(fmt::format("{}: a second YAML document (after '---'): an experiment file holds one document",
                                    location(source, second)));
    }
    YAML::Node document = YAML::Load(text);
    if (!document || document.IsNull()) throw ConfigError(fmt::format("{}: the experiment file is empty", source));
    check_duplicate_keys(document, source);
    return document;
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML syntax error: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

// The value of a --set (or a command-line flag): YAML text, never empty.
YAML::Node override_value(const std::string& text, const std::string& origin) {
  if (text.find_first_not_of(" \t") == std::string::npos)
    throw ConfigError(fmt::format("{}: the value is empty (leave the key out to use its default)", origin));
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}: the value is not valid YAML: {}", origin, e.msg));
  }
}

const Field& known_field(const std::string& key, const std::string& origin) {
  if (const Field* f = find_field(key)) return *f;
  std::vector<std::string> known;
  for (const Field& f : fields()) known.push_back(f.info.key);
  throw ConfigError(fmt::format("{}: unknown key '{}'{}; see configs/README.md for every key", origin, key,
                                suggestion(key, known)));
}

std::map<std::string, std::string> apply_overrides(YAML::Node& document, const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> origins;
  for (const std::string& o : overrides) {
    const std::size_t eq = o.find('=');
    const std::string origin = fmt::format("command line '--set {}'", o);
    if (eq == std::string::npos || eq == 0) throw ConfigError(fmt::format("{}: expected key=value, like model.hidden_dim=64", origin));
    const std::string key = o.substr(0, eq);
    known_field(key, origin);
    set_path(document, key, override_value(o.substr(eq + 1), origin), origin);
    origins[key] = origin;
  }
  return origins;
}

}  // namespace

ExperimentConfig parse_experiment(const std::string& text, const std::string& source,
                                  const std::vector<std::string>& overrides) {
  YAML::Node document = load_text(text, source);
  auto origins = apply_overrides(document, overrides);
  return parse_document(document, source, origins);
}

ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("cannot open experiment file '{}': {}", path, std::strerror(errno)));
  // Read at most one byte past the limit, so /dev/zero or a huge file fails at once.
  std::string text(kMaxExperimentFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw ConfigError(fmt::format("cannot read experiment file '{}': {}", path, std::strerror(errno)));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxExperimentFileBytes)
    throw ConfigError(fmt::format("{}: the experiment file is larger than the limit of {} bytes (1 MiB)", path,
                                  kMaxExperimentFileBytes));
  return parse_experiment(text, path, overrides);
}

namespace {
// `document` with each swept key set to a copy of its value (sharing the node would merge every
// point's memory into one yaml-cpp pool); `origins` receives where each value came from.
YAML::Node overridden_document(const YAML::Node& document, const std::map<std::string, YAML::Node>& values,
                               const std::string& origin, bool with_sweep, std::map<std::string, std::string>* origins) {
  const bool whole = with_sweep || !document.IsMap();
  YAML::Node copy = whole ? YAML::Clone(document) : YAML::Node(YAML::NodeType::Map);
  // Without the sweep: a point's settings never read it, and its lists of values are most of a
  // large sweep's file (a copy per point made memory grow as points x values).
  if (!whole)
    for (const auto& kv : document)
      if (kv.first.Scalar() != "sweep") copy[kv.first.Scalar()] = YAML::Clone(kv.second);
  for (const auto& [key, value] : values) {
    const std::string o = fmt::format("{} ({}={})", origin, key, scalar_text(value));
    set_path(copy, key, YAML::Clone(value), o);
    if (origins) (*origins)[key] = o;
  }
  return copy;
}
}  // namespace

ExperimentConfig with_overrides(const ExperimentConfig& base, const std::map<std::string, YAML::Node>& values,
                                const std::string& origin) {
  std::map<std::string, std::string> origins;
  const YAML::Node document = overridden_document(base.document, values, origin, false, &origins);
  ExperimentConfig c = parse_document(document, base.source, origins);
  // Kept once, in `base`: the document (point_document rebuilds a point's), the origins (only
  // messages about the swept keys need them, and those are raised above) and the sweep's values.
  c.document.reset();  // reset, not `= YAML::Node()`: assigning a node would rewrite the root it refers to
  c.origins.clear();
  c.sweep.mode = base.sweep.mode;
  c.sweep.samples = base.sweep.samples;
  c.sweep.seed = base.sweep.seed;
  return c;
}

YAML::Node point_document(const ExperimentConfig& base, const std::map<std::string, YAML::Node>& values,
                          const std::string& origin) {
  if (values.empty()) return base.document;
  return overridden_document(base.document, values, origin, true, nullptr);
}

void check_setting_value(const std::string& key, const std::string& value, const std::string& argument) {
  const std::string origin = fmt::format("command line '{}'", argument);
  const Field& field = known_field(key, origin);
  const YAML::Node node = override_value(value, origin);
  ExperimentConfig scratch;
  field.read(scratch, node, Reader("<command line>", {{key, origin}}));
}

void check_against_dataset(const ExperimentConfig& config, const GraphDataset& dataset) {
  const int folds = config.evaluation.folds;
  if (folds <= dataset.num_graphs()) return;
  const YAML::Node& document = config.document;
  YAML::Node place;
  if (document.IsMap() && document["evaluation"].IsMap()) place = document["evaluation"]["folds"];
  Reader(config.source, config.origins)
      .fail(place, "evaluation.folds", fmt::format("{} folds, but dataset {} has {} graphs: allowed 2 to {}", folds, dataset.name,
                                                   dataset.num_graphs(), dataset.num_graphs()));
}

namespace {
// The settings that change what a job computes, as key=value lines; `canonical`: the id form of
// numbers (17 significant digits), else the shortest round-trip form. Which keys are left out at
// their default is decided on the id form in both cases, so both list the same keys.
std::string job_settings_text(const ExperimentConfig& config, bool canonical) {
  std::string s;
  for (const Field& f : fields())
    if (f.info.affects == Affects::job && f.info.kind != SettingKind::sweep_parameters) {
      const std::string id_text = f.text(config, true);
      if (f.info.omitted_at_default && id_text == f.info.default_value) continue;
      s += fmt::format("{}={}\n", f.info.key, canonical ? id_text : f.text(config, false));
    }
  return s;
}
}  // namespace

std::string ExperimentConfig::canonical_settings() const { return job_settings_text(*this, true); }

std::string ExperimentConfig::settings_text() const { return job_settings_text(*this, false); }

const std::vector<SettingInfo>& settings_schema() {
  static const std::vector<SettingInfo> infos = [] {
    std::vector<SettingInfo> out;
    for (const Field& f : fields()) out.push_back(f.info);
    return out;
  }();
  return infos;
}

namespace {
constexpr const char* kGeneratedBegin = "<!-- key tables: generated by `diffpool schema --markdown`; do not edit by hand -->";
constexpr const char* kGeneratedEnd = "<!-- end of generated key tables -->";
}  // namespace

std::string schema_markdown() {
  std::string out = fmt::format("{}\n", kGeneratedBegin);
  std::vector<std::string> sections = {""};
  sections.insert(sections.end(), section_names().begin(), section_names().end());
  for (const std::string& section : sections) {
    out += section.empty() ? "\n### top level\n\n" : fmt::format("\n### `{}`\n\n", section);
    out += "| key | default | allowed | job id | meaning |\n|---|---|---|---|---|\n";
    for (const SettingInfo& s : settings_schema()) {
      if (section_of(s.key) != section) continue;
      const char* affects = s.affects == Affects::job ? "yes" : s.affects == Affects::experiment ? "experiment id" : "no";
      out += fmt::format("| `{}` | {} | {} | {} | {} |\n", leaf_of(s.key), s.default_text, s.allowed, affects, s.doc);
    }
  }
  return out + kGeneratedEnd + "\n";
}

std::string with_generated_key_tables(const std::string& readme) {
  const std::size_t begin = readme.find(kGeneratedBegin);
  const std::size_t end = readme.find(kGeneratedEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin)
    throw ConfigError(fmt::format("the README has no generated key tables (the lines '{}' and '{}')", kGeneratedBegin,
                                  kGeneratedEnd));
  const std::size_t after = readme.find('\n', end);
  return readme.substr(0, begin) + schema_markdown() + (after == std::string::npos ? "" : readme.substr(after + 1));
}

}  // namespace diffpool
