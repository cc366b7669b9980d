#include "runner/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/core/error.hpp"

namespace diffpool {

const char* protocol_name(Protocol p) {
  switch (p) {
    case Protocol::paper: return "paper";
    case Protocol::holdout: return "holdout";
    case Protocol::nested: return "nested";
  }
  return "invalid";
}

DatasetOptions DatasetSettings::options() const {
  DatasetOptions o;
  o.data_dir = resolve_data_dir(data_dir);
  o.features = features;
  o.degree_cap = degree_cap;
  o.constant_dim = constant_dim;
  o.keep_self_loops = keep_self_loops;
  o.max_nodes = max_nodes;
  return o;
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

// Reads the keys of one mapping; finish() rejects keys nobody asked for.
class Section {
 public:
  Section(const Reader& reader, const YAML::Node& node, std::string path)
      : reader_(reader), node_(node), path_(std::move(path)) {
    if (node_ && !node_.IsNull() && !node_.IsMap())
      reader_.fail(node_, path_, fmt::format("expected a mapping of keys, got '{}'", scalar_text(node_)));
  }

  bool has(const std::string& key) {
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
    return node_ && node_.IsMap() && node_[key] && !node_[key].IsNull();
  }
  YAML::Node raw(const std::string& key) { return node_[key]; }
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const Reader& reader() const { return reader_; }

  void string(const std::string& key, std::string& out) {
    if (!has(key)) return;
    YAML::Node v = node_[key];
    if (!v.IsScalar()) fail(v, key, fmt::format("expected a string, got '{}'", scalar_text(v)));
    out = v.Scalar();
  }

  void boolean(const std::string& key, bool& out) {
    if (!has(key)) return;
    YAML::Node v = node_[key];
    const std::string s = v.IsScalar() ? v.Scalar() : "";
    if (s == "true" || s == "yes" || s == "on") out = true;
    else if (s == "false" || s == "no" || s == "off") out = false;
    else fail(v, key, fmt::format("expected true or false, got '{}'", scalar_text(v)));
  }

  template <class Int> void integer(const std::string& key, Int& out, long long lo, long long hi) {
    if (!has(key)) return;
    out = static_cast<Int>(parse_integer(node_[key], key, lo, hi));
  }

  void number(const std::string& key, double& out, double lo, double hi, bool lo_open = false, bool hi_open = false) {
    if (!has(key)) return;
    out = parse_number(node_[key], key, lo, hi, lo_open, hi_open);
  }

  template <class E, class Parse> void choice(const std::string& key, E& out, Parse parse) {
    if (!has(key)) return;
    YAML::Node v = node_[key];
    if (!v.IsScalar()) fail(v, key, fmt::format("expected a name, got '{}'", scalar_text(v)));
    try {
      out = parse(v.Scalar());
    } catch (const InputError& e) {
      fail(v, key, e.what());
    }
  }

  template <class Int> void integer_list(const std::string& key, std::vector<Int>& out, long long lo, long long hi) {
    if (!has(key)) return;
    YAML::Node v = node_[key];
    out.clear();
    if (v.IsScalar()) {
      out.push_back(static_cast<Int>(parse_integer(v, key, lo, hi)));
      return;
    }
    if (!v.IsSequence()) fail(v, key, fmt::format("expected a list of integers, got '{}'", scalar_text(v)));
    for (const YAML::Node& item : v) out.push_back(static_cast<Int>(parse_integer(item, key, lo, hi)));
  }

  long long parse_integer(const YAML::Node& v, const std::string& key, long long lo, long long hi) {
    const std::string s = v.IsScalar() ? v.Scalar() : scalar_text(v);
    char* end = nullptr;
    errno = 0;
    const long long x = v.IsScalar() ? std::strtoll(s.c_str(), &end, 10) : 0;
    if (!v.IsScalar() || s.empty() || *end != '\0' || errno == ERANGE)
      fail(v, key, fmt::format("expected an integer, got '{}'", s));
    if (x < lo || x > hi) fail(v, key, fmt::format("{} is out of range: allowed {} to {}", x, lo, hi));
    return x;
  }

  double parse_number(const YAML::Node& v, const std::string& key, double lo, double hi, bool lo_open, bool hi_open) {
    const std::string s = v.IsScalar() ? v.Scalar() : scalar_text(v);
    char* end = nullptr;
    const double x = v.IsScalar() ? std::strtod(s.c_str(), &end) : 0.0;
    if (!v.IsScalar() || s.empty() || *end != '\0' || !std::isfinite(x))
      fail(v, key, fmt::format("expected a number, got '{}'", s));
    const bool below = lo_open ? !(x > lo) : !(x >= lo);
    const bool above = hi_open ? !(x < hi) : !(x <= hi);
    if (below || above)
      fail(v, key, fmt::format("{} is out of range: allowed {}{}, {}{}", s, lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]"));
    return x;
  }

  [[noreturn]] void fail(const YAML::Node& v, const std::string& key, const std::string& message) const {
    reader_.fail(v, full(key), message);
  }

  void finish() const {
    if (!node_ || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::string hint;
      for (const auto& k : known_)
        if (edit_distance(key, k) <= 2) hint = fmt::format(" (did you mean '{}'?)", k);
      std::vector<std::string> sorted = known_;
      std::sort(sorted.begin(), sorted.end());
      const YAML::Mark m = kv.first.Mark();
      throw ConfigError(fmt::format("{}:{}:{}: unknown key '{}'{}{}; allowed keys{}: {}", reader_.source(), m.line + 1,
                                    m.column + 1, full(key), hint, "",
                                    path_.empty() ? "" : fmt::format(" in '{}'", path_), join(sorted)));
    }
  }

 private:
  const Reader& reader_;
  YAML::Node node_;
  std::string path_;
  std::vector<std::string> known_;
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

void parse_sweep(Section& s, SweepSettings& sweep) {
  std::string mode = "grid";
  s.string("mode", mode);
  if (mode == "grid") sweep.mode = SweepSettings::Mode::grid;
  else if (mode == "random") sweep.mode = SweepSettings::Mode::random;
  else s.fail(s.raw("mode"), "mode", fmt::format("unknown sweep mode '{}': expected grid or random", mode));
  s.integer("samples", sweep.samples, 1, 100000);
  s.integer("seed", sweep.seed, 0, std::numeric_limits<long long>::max());
  if (!s.has("parameters")) return;
  YAML::Node params = s.raw("parameters");
  if (!params.IsMap())
    s.fail(params, "parameters", "expected a mapping from keys (like model.hidden_dim) to lists of values");
  for (const auto& kv : params) {
    SweepParameter p;
    p.key = kv.first.Scalar();
    const YAML::Mark m = kv.first.Mark();
    p.origin = fmt::format("{}:{}:{}", s.reader().source(), m.line + 1, m.column + 1);
    const YAML::Node& v = kv.second;
    if (v.IsSequence()) {
      if (v.size() == 0) throw ConfigError(fmt::format("{}: sweep.parameters.{}: the list of values is empty", p.origin, p.key));
      for (const YAML::Node& item : v) p.values.push_back(YAML::Clone(item));
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
    } else {
      throw ConfigError(fmt::format("{}: sweep.parameters.{}: expected a list of values, got '{}'", p.origin, p.key,
                                    scalar_text(v)));
    }
    const std::string section = p.key.substr(0, p.key.find('.'));
    if (section != "model" && section != "training" && section != "dataset")
      throw ConfigError(fmt::format("{}: sweep.parameters.{}: only model.*, training.* and dataset.* keys can be swept",
                                    p.origin, p.key));
    sweep.parameters.push_back(std::move(p));
  }
}

ExperimentConfig parse_document(const YAML::Node& document, const std::string& source,
                                const std::map<std::string, std::string>& origins) {
  Reader reader(source, origins);
  ExperimentConfig c;
  c.source = source;
  c.document = document;
  if (!document.IsMap())
    throw ConfigError(fmt::format("{}: an experiment file is a mapping with the sections dataset, model, training, "
                                  "evaluation, sweep, output and backend", source));
  Section top(reader, document, "");
  top.string("name", c.name);
  if (c.name.empty() || c.name.find_first_of("/\\ ") != std::string::npos)
    top.fail(top.raw("name"), "name", fmt::format("'{}' is not usable as a folder name (no spaces or slashes)", c.name));

  {
    Section s(reader, top.has("dataset") ? top.raw("dataset") : YAML::Node(), "dataset");
    s.string("name", c.dataset.name);
    s.string("data_dir", c.dataset.data_dir);
    s.choice("features", c.dataset.features, parse_feature_mode);
    s.integer("degree_cap", c.dataset.degree_cap, 1, 100000);
    s.integer("constant_dim", c.dataset.constant_dim, 1, 100000);
    s.boolean("keep_self_loops", c.dataset.keep_self_loops);
    s.integer("max_nodes", c.dataset.max_nodes, 0, 1LL << 40);
    s.finish();
  }
  {
    ModelConfig& m = c.model;
    Section s(reader, top.has("model") ? top.raw("model") : YAML::Node(), "model");
    s.choice("variant", m.variant, parse_variant);
    s.integer("pool_levels", m.pool_levels, 0, 8);
    s.integer_list("conv_layers", m.conv_layers, 1, 16);
    s.integer("hidden_dim", m.hidden_dim, 1, 1 << 16);
    s.integer("embedding_dim", m.embedding_dim, 1, 1 << 16);
    s.number("cluster_ratio", m.cluster_ratio, 0.0, 1.0, true, false);
    s.integer_list("clusters", m.clusters, 1, 1 << 24);
    s.choice("readout", m.readout, parse_readout);
    s.boolean("concat_layers", m.concat_layers);
    if (s.has("mlp_hidden") && s.raw("mlp_hidden").IsSequence() && s.raw("mlp_hidden").size() == 0) m.mlp_hidden.clear();
    else s.integer_list("mlp_hidden", m.mlp_hidden, 1, 1 << 16);
    s.number("dropout", m.dropout, 0.0, 1.0, false, true);
    s.boolean("batch_norm", m.batch_norm);
    s.choice("batch_norm_mode", m.batch_norm_mode, parse_batch_norm_mode);
    s.boolean("l2_normalize", m.l2_normalize);
    s.number("link_weight", m.link_weight, 0.0, 1e6);
    s.number("entropy_weight", m.entropy_weight, 0.0, 1e6);
    s.choice("link_norm", m.link_norm, parse_link_loss_norm);
    s.choice("dense_aggregation", m.dense_aggregation, parse_dense_aggregation);
    s.number("dense_degree_eps", m.dense_degree_eps, 0.0, 1.0, true, false);
    s.number("batch_norm_momentum", m.batch_norm_momentum, 0.0, 1.0);
    s.number("batch_norm_eps", m.batch_norm_eps, 0.0, 1.0, true, false);
    s.finish();
    if (m.variant != Variant::graphsage && m.pool_levels == 0)
      s.fail(s.raw("pool_levels"), "pool_levels", fmt::format("variant {} needs at least one pooling level (allowed 1 to 8)",
                                                              variant_name(m.variant)));
  }
  {
    TrainConfig& t = c.training;
    Section s(reader, top.has("training") ? top.raw("training") : YAML::Node(), "training");
    s.integer("epochs", t.epochs, 1, 1000000);
    s.integer("batch_size", t.batch_size, 1, 1000000);
    s.number("learning_rate", t.learning_rate, 0.0, 10.0, true, false);
    s.number("weight_decay", t.weight_decay, 0.0, 10.0);
    s.number("clip_norm", t.clip_norm, 0.0, 1e9);
    s.integer("patience", t.patience, 0, 1000000);
    s.choice("stop_metric", t.stop_metric, parse_stop_metric);
    s.integer("seed", t.seed, 0, std::numeric_limits<long long>::max());
    std::string dtype = "f32";
    s.string("dtype", dtype);
    if (dtype == "f32" || dtype == "float32") t.dtype = DType::f32;
    else if (dtype == "f64" || dtype == "float64") t.dtype = DType::f64;
    else s.fail(s.raw("dtype"), "dtype", fmt::format("unknown dtype '{}': expected f32 or f64", dtype));
    s.finish();
  }
  {
    EvaluationSettings& e = c.evaluation;
    Section s(reader, top.has("evaluation") ? top.raw("evaluation") : YAML::Node(), "evaluation");
    s.choice("protocol", e.protocol, [](const std::string& text) {
      if (text == "paper") return Protocol::paper;
      if (text == "holdout") return Protocol::holdout;
      if (text == "nested") return Protocol::nested;
      throw InputError(fmt::format("unknown protocol '{}': expected paper, holdout or nested", text));
    });
    s.integer("folds", e.folds, 2, 1000);
    s.number("validation_fraction", e.validation_fraction, 0.0, 1.0, true, true);
    s.integer("repeats", e.repeats, 1, 1000);
    s.integer("split_seed", e.split_seed, 0, std::numeric_limits<long long>::max());
    s.integer_list("only_folds", e.only_folds, 0, e.folds - 1);
    s.finish();
  }
  {
    Section s(reader, top.has("sweep") ? top.raw("sweep") : YAML::Node(), "sweep");
    parse_sweep(s, c.sweep);
    s.finish();
  }
  {
    OutputSettings& o = c.output;
    Section s(reader, top.has("output") ? top.raw("output") : YAML::Node(), "output");
    s.string("dir", o.dir);
    s.choice("save_outputs", o.save_outputs, [](const std::string& text) {
      if (text == "none") return OutputSettings::Save::none;
      if (text == "evaluation") return OutputSettings::Save::evaluation;
      if (text == "all") return OutputSettings::Save::all;
      throw InputError(fmt::format("unknown value '{}': expected none, evaluation or all", text));
    });
    s.integer("max_graphs", o.max_graphs, 0, 100000000);
    s.integer("checkpoint_every", o.checkpoint_every, 0, 1000000);
    s.integer("progress_seconds", o.progress_seconds, 1, 86400);
    s.choice("progress", o.progress, [](const std::string& text) {
      if (text == "auto") return OutputSettings::ProgressDisplay::automatic;
      if (text == "live") return OutputSettings::ProgressDisplay::live;
      if (text == "plain") return OutputSettings::ProgressDisplay::plain;
      throw InputError(fmt::format("unknown value '{}': expected auto, live or plain", text));
    });
    s.finish();
    if (o.dir.empty()) o.dir = "runs/" + c.name;
  }
  {
    BackendSettings& b = c.backend;
    Section s(reader, top.has("backend") ? top.raw("backend") : YAML::Node(), "backend");
    s.choice("kind", b.kind, parse_backend_kind);
    s.integer("cpu_threads", b.cpu_threads, 1, 1024);
    s.finish();
  }
  top.finish();
  return c;
}

YAML::Node load_text(const std::string& text, const std::string& source) {
  try {
    YAML::Node node = YAML::Load(text);
    if (!node || node.IsNull()) throw ConfigError(fmt::format("{}: the experiment file is empty", source));
    return node;
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML syntax error: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

std::map<std::string, std::string> apply_overrides(YAML::Node& document, const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> origins;
  for (const std::string& o : overrides) {
    const std::size_t eq = o.find('=');
    const std::string origin = fmt::format("command line '--set {}'", o);
    if (eq == std::string::npos || eq == 0) throw ConfigError(fmt::format("{}: expected key=value, like model.hidden_dim=64", origin));
    const std::string key = o.substr(0, eq);
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::ParserException& e) {
      throw ConfigError(fmt::format("{}: the value is not valid YAML: {}", origin, e.msg));
    }
    set_path(document, key, value, origin);
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
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_experiment(buffer.str(), path, overrides);
}

ExperimentConfig with_overrides(const ExperimentConfig& base, const std::map<std::string, YAML::Node>& values,
                                const std::string& origin) {
  YAML::Node document = YAML::Clone(base.document);
  std::map<std::string, std::string> origins;
  for (const auto& [key, value] : values) {
    const std::string o = fmt::format("{} ({}={})", origin, key, scalar_text(value));
    set_path(document, key, value, o);
    origins[key] = o;
  }
  ExperimentConfig c = parse_document(document, base.source, origins);
  return c;
}

std::string ExperimentConfig::canonical_settings() const {
  std::string s;
  auto add = [&](const std::string& key, const auto& value) { s += fmt::format("{}={}\n", key, value); };
  auto list = [](const auto& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += fmt::format("{}{}", i ? "," : "", v[i]);
    return out + "]";
  };
  add("dataset.name", dataset.name);
  add("dataset.features", feature_mode_name(dataset.features));
  add("dataset.degree_cap", dataset.degree_cap);
  add("dataset.constant_dim", dataset.constant_dim);
  add("dataset.keep_self_loops", dataset.keep_self_loops);
  add("dataset.max_nodes", dataset.max_nodes);
  add("model.variant", variant_name(model.variant));
  add("model.pool_levels", model.pool_levels);
  add("model.conv_layers", list(model.conv_layers));
  add("model.hidden_dim", model.hidden_dim);
  add("model.embedding_dim", model.embedding_dim);
  add("model.cluster_ratio", fmt::format("{:.17g}", model.cluster_ratio));
  add("model.clusters", list(model.clusters));
  add("model.readout", readout_name(model.readout));
  add("model.concat_layers", model.concat_layers);
  add("model.mlp_hidden", list(model.mlp_hidden));
  add("model.dropout", fmt::format("{:.17g}", model.dropout));
  add("model.batch_norm", model.batch_norm);
  add("model.batch_norm_mode", batch_norm_mode_name(model.batch_norm_mode));
  add("model.l2_normalize", model.l2_normalize);
  add("model.link_weight", fmt::format("{:.17g}", model.link_weight));
  add("model.entropy_weight", fmt::format("{:.17g}", model.entropy_weight));
  add("model.link_norm", link_loss_norm_name(model.link_norm));
  add("model.dense_aggregation", dense_aggregation_name(model.dense_aggregation));
  add("model.dense_degree_eps", fmt::format("{:.17g}", model.dense_degree_eps));
  add("model.batch_norm_momentum", fmt::format("{:.17g}", model.batch_norm_momentum));
  add("model.batch_norm_eps", fmt::format("{:.17g}", model.batch_norm_eps));
  add("training.epochs", training.epochs);
  add("training.batch_size", training.batch_size);
  add("training.learning_rate", fmt::format("{:.17g}", training.learning_rate));
  add("training.weight_decay", fmt::format("{:.17g}", training.weight_decay));
  add("training.clip_norm", fmt::format("{:.17g}", training.clip_norm));
  add("training.patience", training.patience);
  add("training.stop_metric", stop_metric_name(training.stop_metric));
  add("training.seed", training.seed);
  add("training.dtype", dtype_name(training.dtype));
  add("evaluation.protocol", protocol_name(evaluation.protocol));
  add("evaluation.folds", evaluation.folds);
  add("evaluation.validation_fraction", fmt::format("{:.17g}", evaluation.validation_fraction));
  add("evaluation.split_seed", evaluation.split_seed);
  return s;
}

}  // namespace diffpool
