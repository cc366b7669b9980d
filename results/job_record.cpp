// Job files: one HDF5 file per job. The layout (results/README.md, "Job files"):
//
//   /                         attributes: format = "diffpool-job", schema_version, identity (job_id,
//                             experiment_id, experiment_name, protocol, phase, point, point_label,
//                             fold, repeat, seed (uint64), dataset, variant), outcome (status,
//                             failure, best_epoch), environment (host, rank, backend, version,
//                             git_revision, wall_seconds, started_at, finished_at)
//   /settings                 string: canonical settings, one key=value per line
//   /config                   string: the resolved experiment YAML of the sweep point
//   /splits/{train,validation,test}        int64 [n]: dataset graph indices
//   /metrics/<column>         1-D, one entry per epoch (E = epochs run):
//                             epoch (int64), {train,validation,test}_{loss,classification_loss,
//                             link_loss,entropy_loss,accuracy} (float64, NaN where not measured),
//                             {train,validation,test}_graphs (int64, 0 where not measured),
//                             {validation,test}_measured (uint8), grad_norm, train_seconds,
//                             eval_seconds (float64), {validation,test}_cluster_usage_level<l>
//                             (float64, one column per pooling level l; NaN where not measured)
//   /result                   attributes best_epoch, has_test
//   /result/best_validation   attributes loss, classification_loss, link_loss, entropy_loss, accuracy, graphs,
//                             cluster_usage (float64 [L], one per pooling level; absent without pooling)
//   /result/test              the same (only when has_test)
//   /predictions              attributes split ("test"), epoch; datasets graphs (int64 [n]), label,
//                             prediction (int32 [n]): every test graph of /result/test; per_epoch
//                             (int32 [E, n], -1 in rows of epochs that did not measure the test
//                             split; only when the test split was measured during training).
//                             Absent without a test split and in files written before it existed.
//   /outputs                  attributes split ("test" | "validation" | "all" | ""), graphs (int64 [G],
//                             the graph indices in the order they were written)
//   /outputs/graphs/<g>/      attributes graph, label, prediction, levels; datasets logits [C],
//                             graph_embedding [D] (float32), edges [E, 2] (int32, level-0 node
//                             pairs, each undirected edge once; only when saved)
//   /outputs/graphs/<g>/level<l>/   attributes rows, embedding_dim, clusters; datasets
//                             embedding [rows, embedding_dim], assignment [rows, clusters],
//                             pooled_adjacency [clusters, clusters] (float32; compressed when large;
//                             absent when empty)
#include "results/job_record.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "results/atomic_file.hpp"
#include "results/hdf5.hpp"

namespace diffpool {

namespace {

using hdf5::Dimensions;
using hdf5::File;
using hdf5::Group;
using hdf5::Location;

constexpr const char* kFormat = "diffpool-job";
constexpr int64_t kSchemaVersion = kJobFileSchemaVersion;
// Per-graph arrays with at least this many elements are chunked and compressed; smaller ones stay
// contiguous (chunking a 30 x 8 matrix costs more than it saves).
constexpr std::size_t kCompressFrom = 4096;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The Metrics fields, named as in the file.
struct MetricField {
  const char* name;
  double Metrics::*member;
};
constexpr MetricField kMetricFields[] = {
    {"loss", &Metrics::loss},
    {"classification_loss", &Metrics::classification_loss},
    {"link_loss", &Metrics::link_loss},
    {"entropy_loss", &Metrics::entropy_loss},
    {"accuracy", &Metrics::accuracy},
};

void write_metrics_attributes(Group& group, const Metrics& metrics) {
  for (const MetricField& field : kMetricFields) group.set_attribute(field.name, metrics.*field.member);
  group.set_attribute("graphs", metrics.graphs);
  if (!metrics.cluster_usage.empty()) group.set_attribute("cluster_usage", metrics.cluster_usage);
}

Metrics read_metrics_attributes(const Group& group) {
  Metrics metrics;
  for (const MetricField& field : kMetricFields) metrics.*field.member = group.read_attribute<double>(field.name);
  metrics.graphs = group.read_attribute<int64_t>("graphs");
  if (group.has_attribute("cluster_usage"))
    metrics.cluster_usage = group.read_attribute<std::vector<double>>("cluster_usage");
  return metrics;
}

// The per-epoch cluster usage columns: {validation,test}_cluster_usage_level<l>, one per pooling level.
std::string cluster_usage_column(std::string_view split, std::size_t level) {
  return fmt::format("{}_cluster_usage_level{}", split, level);
}

// ---------------------------------------------------------------------------------------------
// Per-epoch metrics: one column per quantity.

void write_epoch_metrics(File& file, const std::vector<EpochMetrics>& epochs) {
  Group group = file.create_group("metrics");
  auto column = [&](const std::string& name, auto value_of) {
    std::vector<double> values;
    values.reserve(epochs.size());
    for (const EpochMetrics& e : epochs) values.push_back(value_of(e));
    group.write_dataset(name, values);
  };
  std::vector<int64_t> epoch_numbers;
  for (const EpochMetrics& e : epochs) epoch_numbers.push_back(e.epoch);
  group.write_dataset("epoch", epoch_numbers);

  // train_*, validation_*, test_*: NaN (and 0 graphs) where the split was not measured.
  using Part = std::optional<Metrics> (*)(const EpochMetrics&);
  const std::pair<const char*, Part> parts[] = {
      {"train", [](const EpochMetrics& e) -> std::optional<Metrics> { return e.train; }},
      {"validation", [](const EpochMetrics& e) { return e.validation; }},
      {"test", [](const EpochMetrics& e) { return e.test; }},
  };
  for (const auto& [prefix, part] : parts) {
    for (const MetricField& field : kMetricFields) {
      column(fmt::format("{}_{}", prefix, field.name), [&, part = part](const EpochMetrics& e) {
        const std::optional<Metrics> m = part(e);
        return m ? (*m).*field.member : kNaN;
      });
    }
    std::vector<int64_t> graphs;
    std::vector<uint8_t> measured;
    for (const EpochMetrics& e : epochs) {
      const std::optional<Metrics> m = part(e);
      graphs.push_back(m ? m->graphs : 0);
      measured.push_back(m ? 1 : 0);
    }
    group.write_dataset(fmt::format("{}_graphs", prefix), graphs);
    if (std::string_view(prefix) != "train") group.write_dataset(fmt::format("{}_measured", prefix), measured);
    // Cluster usage per pooling level (evaluations only): NaN where the split was not measured.
    std::size_t levels = 0;
    for (const EpochMetrics& e : epochs)
      if (const std::optional<Metrics> m = part(e)) levels = std::max(levels, m->cluster_usage.size());
    for (std::size_t l = 0; l < levels; ++l) {
      column(cluster_usage_column(prefix, l), [&, part = part](const EpochMetrics& e) {
        const std::optional<Metrics> m = part(e);
        return m && l < m->cluster_usage.size() ? m->cluster_usage[l] : kNaN;
      });
    }
  }
  column("grad_norm", [](const EpochMetrics& e) { return e.grad_norm; });
  column("train_seconds", [](const EpochMetrics& e) { return e.train_seconds; });
  column("eval_seconds", [](const EpochMetrics& e) { return e.eval_seconds; });
}

template <class T>
std::vector<T> read_column(const Group& group, const std::string& name, std::size_t expected, const File& file) {
  if (!group.exists(name)) {
    throw InputError(fmt::format("job file '{}': /metrics/{} is missing", file.path().string(), name));
  }
  std::vector<T> values = group.read_dataset<T>(name).values;
  if (values.size() != expected) {
    throw InputError(fmt::format("job file '{}': /metrics/{} has {} entries, /metrics/epoch has {}",
                                 file.path().string(), name, values.size(), expected));
  }
  return values;
}

std::vector<EpochMetrics> read_epoch_metrics(const File& file) {
  const Group group = file.open_group("metrics");
  const std::vector<int64_t> epoch_numbers = group.read_dataset<int64_t>("epoch").values;
  const std::size_t n = epoch_numbers.size();
  std::vector<EpochMetrics> epochs(n);
  for (std::size_t i = 0; i < n; ++i) epochs[i].epoch = static_cast<int>(epoch_numbers[i]);

  for (const char* prefix : {"train", "validation", "test"}) {
    const bool is_train = std::string_view(prefix) == "train";
    std::vector<uint8_t> measured(n, 1);
    if (!is_train) measured = read_column<uint8_t>(group, fmt::format("{}_measured", prefix), n, file);
    const std::vector<int64_t> graphs = read_column<int64_t>(group, fmt::format("{}_graphs", prefix), n, file);
    std::vector<Metrics> metrics(n);
    for (std::size_t i = 0; i < n; ++i) metrics[i].graphs = graphs[i];
    for (const MetricField& field : kMetricFields) {
      const std::vector<double> values = read_column<double>(group, fmt::format("{}_{}", prefix, field.name), n, file);
      for (std::size_t i = 0; i < n; ++i) metrics[i].*field.member = values[i];
    }
    // Absent for training, for models without pooling and in files written before it existed.
    for (std::size_t l = 0; !is_train && group.exists(cluster_usage_column(prefix, l)); ++l) {
      const std::vector<double> values = read_column<double>(group, cluster_usage_column(prefix, l), n, file);
      for (std::size_t i = 0; i < n; ++i) metrics[i].cluster_usage.push_back(values[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (is_train) epochs[i].train = metrics[i];
      else if (measured[i] == 0) continue;
      else if (std::string_view(prefix) == "validation") epochs[i].validation = metrics[i];
      else epochs[i].test = metrics[i];
    }
  }
  const std::vector<double> grad_norm = read_column<double>(group, "grad_norm", n, file);
  const std::vector<double> train_seconds = read_column<double>(group, "train_seconds", n, file);
  const std::vector<double> eval_seconds = read_column<double>(group, "eval_seconds", n, file);
  for (std::size_t i = 0; i < n; ++i) {
    epochs[i].grad_norm = grad_norm[i];
    epochs[i].train_seconds = train_seconds[i];
    epochs[i].eval_seconds = eval_seconds[i];
  }
  return epochs;
}

// ---------------------------------------------------------------------------------------------
// Test predictions: small integer arrays, kept for every test graph (output.max_graphs limits only
// the per-graph outputs below).

void write_predictions(File& file, const JobRecord& r) {
  const TestPredictions& p = r.predictions;
  const std::size_t n = p.graphs.size();
  const bool per_epoch = std::any_of(r.epochs.begin(), r.epochs.end(),
                                     [](const EpochMetrics& e) { return !e.test_predictions.empty(); });
  if (n == 0) {
    DP_CHECK(p.labels.empty() && p.predictions.empty() && !per_epoch,
             "job {}: {} labels, {} predictions and {} per-epoch test predictions, but no test graphs", r.job_id,
             p.labels.size(), p.predictions.size(), per_epoch ? "some" : "no");
    return;
  }
  DP_CHECK(p.labels.size() == n && p.predictions.size() == n, "job {}: {} test graphs, {} labels, {} predictions",
           r.job_id, n, p.labels.size(), p.predictions.size());
  Group group = file.create_group("predictions");
  group.set_attribute("split", "test");
  group.set_attribute("epoch", static_cast<int64_t>(p.epoch));
  group.write_dataset("graphs", p.graphs);
  group.write_dataset("label", p.labels);
  group.write_dataset("prediction", p.predictions);
  if (!per_epoch) return;
  // [E, n]: row e - 1 holds epoch e's predictions, -1 where that epoch did not measure the test split.
  std::vector<int32_t> rows;
  rows.reserve(r.epochs.size() * n);
  for (const EpochMetrics& e : r.epochs) {
    if (e.test_predictions.empty()) {
      rows.insert(rows.end(), n, -1);
      continue;
    }
    DP_CHECK(e.test_predictions.size() == n, "job {} epoch {}: {} test predictions for {} test graphs", r.job_id,
             e.epoch, e.test_predictions.size(), n);
    rows.insert(rows.end(), e.test_predictions.begin(), e.test_predictions.end());
  }
  const hdf5::DatasetOptions options =
      rows.size() >= kCompressFrom ? hdf5::DatasetOptions::compressed() : hdf5::DatasetOptions{};
  group.write_dataset("per_epoch", rows, {r.epochs.size(), n}, options);
}

void read_predictions(const File& file, JobRecord& r) {
  if (!file.exists("predictions")) return;  // no test split, or a file from before predictions were stored
  const Group group = file.open_group("predictions");
  TestPredictions& p = r.predictions;
  p.epoch = static_cast<int>(group.read_attribute<int64_t>("epoch"));
  p.graphs = group.read_dataset<int64_t>("graphs").values;
  p.labels = group.read_dataset<int32_t>("label").values;
  p.predictions = group.read_dataset<int32_t>("prediction").values;
  const std::size_t n = p.graphs.size();
  if (p.labels.size() != n || p.predictions.size() != n) {
    throw InputError(fmt::format("job file '{}': /predictions has {} graphs, {} labels and {} predictions",
                                 file.path().string(), n, p.labels.size(), p.predictions.size()));
  }
  if (!group.exists("per_epoch")) return;
  const hdf5::Array<int32_t> per_epoch = group.read_dataset<int32_t>("per_epoch");
  if (per_epoch.shape != Dimensions{r.epochs.size(), n}) {
    throw InputError(fmt::format("job file '{}': /predictions/per_epoch has shape {}, expected ({}, {}) (epochs, test graphs)",
                                 file.path().string(), hdf5::format_shape(per_epoch.shape), r.epochs.size(), n));
  }
  for (std::size_t e = 0; e < r.epochs.size(); ++e) {
    if (!r.epochs[e].test) continue;
    const auto row = per_epoch.values.begin() + static_cast<std::ptrdiff_t>(e * n);
    r.epochs[e].test_predictions.assign(row, row + static_cast<std::ptrdiff_t>(n));
  }
}

// ---------------------------------------------------------------------------------------------
// Model outputs per graph.

// A float32 matrix or vector of a graph; omitted when empty; chunked and compressed when large.
void write_float_array(Group& group, const std::string& name, const std::vector<float>& values,
                       const Dimensions& shape, const std::string& what) {
  if (values.empty()) return;
  DP_CHECK(hdf5::element_count(shape) == values.size(), "{}: {} values for shape {}", what, values.size(),
           hdf5::format_shape(shape));
  const hdf5::DatasetOptions options =
      values.size() >= kCompressFrom ? hdf5::DatasetOptions::compressed() : hdf5::DatasetOptions{};
  group.write_dataset(name, values, shape, options);
}

std::vector<float> read_float_array(const Group& group, const std::string& name, std::size_t expected,
                                    const File& file) {
  if (!group.exists(name)) return {};
  std::vector<float> values = group.read_dataset<float>(name).values;
  if (values.size() != expected) {
    throw InputError(fmt::format("job file '{}': {}/{} has {} values, its attributes say {}", file.path().string(),
                                 group.name(), name, values.size(), expected));
  }
  return values;
}

std::string graph_group_name(int64_t graph) { return fmt::format("graphs/{}", graph); }

void write_outputs(File& file, const JobRecord& record) {
  Group outputs = file.create_group("outputs");
  outputs.set_attribute("split", record.outputs_split);
  std::vector<int64_t> graph_ids;
  for (const GraphOutputs& g : record.outputs) graph_ids.push_back(g.graph);
  outputs.set_attribute("graphs", graph_ids);
  if (!record.outputs.empty()) outputs.create_group("graphs");
  DP_CHECK(record.output_edges.empty() || record.output_edges.size() == record.outputs.size(),
           "job {}: {} edge lists for {} graphs of outputs", record.job_id, record.output_edges.size(),
           record.outputs.size());
  for (std::size_t i = 0; i < record.outputs.size(); ++i) {
    const GraphOutputs& g = record.outputs[i];
    const std::string what = fmt::format("job {} graph {}", record.job_id, g.graph);
    DP_CHECK(!outputs.exists(graph_group_name(g.graph)), "{}: the graph appears twice in the outputs", what);
    Group group = outputs.create_group(graph_group_name(g.graph));
    group.set_attribute("graph", g.graph);
    group.set_attribute("label", g.label);
    group.set_attribute("prediction", g.prediction);
    group.set_attribute("levels", static_cast<int64_t>(g.levels.size()));
    write_float_array(group, "logits", g.logits, {g.logits.size()}, what);
    write_float_array(group, "graph_embedding", g.graph_embedding, {g.graph_embedding.size()}, what);
    if (!record.output_edges.empty()) {
      const std::vector<int32_t>& edges = record.output_edges[i];
      DP_CHECK(edges.size() % 2 == 0, "{}: {} edge entries, not pairs", what, edges.size());
      const hdf5::DatasetOptions options =
          edges.size() >= kCompressFrom ? hdf5::DatasetOptions::compressed() : hdf5::DatasetOptions{};
      group.write_dataset("edges", edges, {edges.size() / 2, 2}, options);
    }
    for (std::size_t l = 0; l < g.levels.size(); ++l) {
      const GraphOutputs::Level& level = g.levels[l];
      const std::string level_what = fmt::format("{} level {}", what, l);
      Group lg = group.create_group(fmt::format("level{}", l));
      lg.set_attribute("rows", level.rows);
      lg.set_attribute("embedding_dim", level.embedding_dim);
      lg.set_attribute("clusters", level.clusters);
      const auto rows = static_cast<std::size_t>(level.rows);
      const auto dim = static_cast<std::size_t>(level.embedding_dim);
      const auto clusters = static_cast<std::size_t>(level.clusters);
      write_float_array(lg, "embedding", level.embedding, {rows, dim}, level_what + " embedding");
      write_float_array(lg, "assignment", level.assignment, {rows, clusters}, level_what + " assignment");
      write_float_array(lg, "pooled_adjacency", level.pooled_adjacency, {clusters, clusters},
                        level_what + " pooled_adjacency");
    }
  }
}

void read_outputs(const File& file, std::vector<GraphOutputs>& result, std::vector<std::vector<int32_t>>& edges) {
  const Group outputs = file.open_group("outputs");
  const std::vector<int64_t> graph_ids = outputs.read_attribute<std::vector<int64_t>>("graphs");
  for (const int64_t id : graph_ids) {
    const Group group = outputs.open_group(graph_group_name(id));
    GraphOutputs g;
    g.graph = group.read_attribute<int64_t>("graph");
    g.label = static_cast<int32_t>(group.read_attribute<int64_t>("label"));
    g.prediction = static_cast<int32_t>(group.read_attribute<int64_t>("prediction"));
    if (group.exists("logits")) g.logits = group.read_dataset<float>("logits").values;
    if (group.exists("graph_embedding")) g.graph_embedding = group.read_dataset<float>("graph_embedding").values;
    if (group.exists("edges")) {
      edges.resize(graph_ids.size());
      edges[result.size()] = group.read_dataset<int32_t>("edges").values;
    }
    const int64_t levels = group.read_attribute<int64_t>("levels");
    for (int64_t l = 0; l < levels; ++l) {
      const Group lg = group.open_group(fmt::format("level{}", l));
      GraphOutputs::Level level;
      level.rows = lg.read_attribute<int64_t>("rows");
      level.embedding_dim = lg.read_attribute<int64_t>("embedding_dim");
      level.clusters = lg.read_attribute<int64_t>("clusters");
      const auto rows = static_cast<std::size_t>(level.rows);
      const auto dim = static_cast<std::size_t>(level.embedding_dim);
      const auto clusters = static_cast<std::size_t>(level.clusters);
      level.embedding = read_float_array(lg, "embedding", rows * dim, file);
      level.assignment = read_float_array(lg, "assignment", rows * clusters, file);
      level.pooled_adjacency = read_float_array(lg, "pooled_adjacency", clusters * clusters, file);
      g.levels.push_back(std::move(level));
    }
    result.push_back(std::move(g));
  }
}

// ---------------------------------------------------------------------------------------------

void write_record(File& file, const JobRecord& r) {
  file.set_attribute("format", kFormat);
  file.set_attribute("schema_version", kSchemaVersion);
  // Identity.
  file.set_attribute("job_id", r.job_id);
  file.set_attribute("experiment_id", r.experiment_id);
  file.set_attribute("experiment_name", r.experiment_name);
  file.set_attribute("protocol", r.protocol);
  file.set_attribute("phase", r.phase);
  file.set_attribute("point", r.point);
  file.set_attribute("point_label", r.point_label);
  file.set_attribute("fold", r.fold);
  file.set_attribute("repeat", r.repeat);
  file.set_unsigned_attribute("seed", r.seed);
  file.set_attribute("dataset", r.dataset);
  if (!r.dataset_digest.empty()) file.set_attribute("dataset_digest", r.dataset_digest);
  file.set_attribute("variant", r.variant);
  // Outcome.
  file.set_attribute("status", r.status);
  file.set_attribute("failure", r.failure);
  file.set_attribute("best_epoch", r.best_epoch);
  // Where and how it ran.
  file.set_attribute("host", r.host);
  file.set_attribute("rank", r.rank);
  file.set_attribute("backend", r.backend);
  file.set_attribute("version", r.version);
  file.set_attribute("git_revision", r.git_revision);
  file.set_attribute("wall_seconds", r.wall_seconds);
  file.set_attribute("started_at", r.started_at);
  file.set_attribute("finished_at", r.finished_at);

  file.write_string("settings", r.settings);
  file.write_string("config", r.config_yaml);

  file.write_dataset("splits/train", r.train);
  file.write_dataset("splits/validation", r.validation);
  file.write_dataset("splits/test", r.test);

  write_epoch_metrics(file, r.epochs);

  Group result = file.create_group("result");
  result.set_attribute("best_epoch", r.best_epoch);
  result.set_attribute("has_test", static_cast<int64_t>(r.has_test ? 1 : 0));
  Group best = result.create_group("best_validation");
  write_metrics_attributes(best, r.best_validation);
  if (r.has_test) {
    Group test = result.create_group("test");
    write_metrics_attributes(test, r.test_metrics);
  }

  write_predictions(file, r);
  write_outputs(file, r);
}

JobRecord read_record(const File& file, bool with_outputs) {
  const std::string path = file.path().string();
  if (!file.has_attribute("format") || file.read_attribute<std::string>("format") != kFormat) {
    throw InputError(fmt::format("'{}' is not a diffpool job file (its root attribute 'format' is not '{}')",
                                 path, kFormat));
  }
  const auto version = file.read_attribute<int64_t>("schema_version");
  if (version != kSchemaVersion) {
    throw InputError(fmt::format("job file '{}' has schema version {}; this build reads version {}", path,
                                 version, kSchemaVersion));
  }
  JobRecord r;
  auto text = [&](const char* name) { return file.read_attribute<std::string>(name); };
  auto integer = [&](const char* name) { return file.read_attribute<int64_t>(name); };
  r.job_id = text("job_id");
  r.experiment_id = text("experiment_id");
  r.experiment_name = text("experiment_name");
  r.protocol = text("protocol");
  r.phase = text("phase");
  r.point = integer("point");
  r.point_label = text("point_label");
  r.fold = static_cast<int>(integer("fold"));
  r.repeat = static_cast<int>(integer("repeat"));
  r.seed = file.read_attribute<uint64_t>("seed");
  r.dataset = text("dataset");
  if (file.has_attribute("dataset_digest")) r.dataset_digest = text("dataset_digest");
  r.variant = text("variant");
  r.status = text("status");
  r.failure = text("failure");
  r.best_epoch = static_cast<int>(integer("best_epoch"));
  r.host = text("host");
  r.rank = static_cast<int>(integer("rank"));
  r.backend = text("backend");
  r.version = text("version");
  r.git_revision = text("git_revision");
  r.wall_seconds = file.read_attribute<double>("wall_seconds");
  r.started_at = text("started_at");
  r.finished_at = text("finished_at");

  r.settings = file.read_string("settings");
  r.config_yaml = file.read_string("config");

  r.train = file.read_dataset<int64_t>("splits/train").values;
  r.validation = file.read_dataset<int64_t>("splits/validation").values;
  r.test = file.read_dataset<int64_t>("splits/test").values;

  r.epochs = read_epoch_metrics(file);

  const Group result = file.open_group("result");
  r.has_test = result.read_attribute<int64_t>("has_test") != 0;
  r.best_validation = read_metrics_attributes(result.open_group("best_validation"));
  if (r.has_test) r.test_metrics = read_metrics_attributes(result.open_group("test"));

  read_predictions(file, r);

  r.outputs_split = file.open_group("outputs").read_attribute<std::string>("split");
  if (with_outputs) read_outputs(file, r.outputs, r.output_edges);
  return r;
}

}  // namespace

void write_job_record(const std::filesystem::path& path, const JobRecord& record) {
  const std::scoped_lock lock(hdf5::library_mutex());
  hdf5::write_file_atomically(path, [&](File& file) { write_record(file, record); });
}

JobRecord read_job_record(const std::filesystem::path& path, bool with_outputs) {
  const std::scoped_lock lock(hdf5::library_mutex());
  const File file = File::open_read_only(path);
  return read_record(file, with_outputs);
}

JobRecord read_job_record(const hdf5::File& file, bool with_outputs) { return read_record(file, with_outputs); }

std::vector<int32_t> graph_edges(const GraphDataset& dataset, int64_t graph) {
  DP_CHECK(graph >= 0 && graph < dataset.num_graphs(), "graph {} of a dataset of {} graphs", graph,
           dataset.num_graphs());
  const int64_t first = dataset.node_offsets[static_cast<std::size_t>(graph)];
  const int64_t end = dataset.node_offsets[static_cast<std::size_t>(graph) + 1];
  std::vector<int32_t> edges;
  for (int64_t v = first; v < end; ++v) {
    for (int64_t e = dataset.adjacency_offsets[static_cast<std::size_t>(v)];
         e < dataset.adjacency_offsets[static_cast<std::size_t>(v) + 1]; ++e) {
      const int64_t u = dataset.adjacency_targets[static_cast<std::size_t>(e)];
      if (u < v) continue;  // each undirected edge once, from its lower end
      edges.push_back(static_cast<int32_t>(v - first));
      edges.push_back(static_cast<int32_t>(u - first));
    }
  }
  return edges;
}

std::vector<std::filesystem::path> list_job_files(const std::filesystem::path& experiment_dir) {
  std::vector<std::filesystem::path> files;
  const std::filesystem::path jobs = experiment_dir / "jobs";
  std::error_code error;
  if (!std::filesystem::is_directory(jobs, error)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(jobs, error)) {
    if (entry.is_regular_file(error) && entry.path().extension() == ".h5") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace diffpool
