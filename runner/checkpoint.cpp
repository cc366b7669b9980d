#include "runner/checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "engine/core/error.hpp"
#include "results/atomic_file.hpp"
#include "results/hdf5.hpp"

namespace diffpool {

namespace {
constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

void put_metrics(std::vector<double>& row, const std::optional<Metrics>& m) {
  if (m) {
    row.insert(row.end(), {m->loss, m->classification_loss, m->link_loss, m->entropy_loss, m->accuracy,
                           static_cast<double>(m->graphs)});
  } else {
    row.insert(row.end(), 6, kMissing);
  }
}

std::optional<Metrics> get_metrics(const std::vector<double>& row, std::size_t at) {
  if (std::isnan(row[at])) return std::nullopt;
  Metrics m;
  m.loss = row[at];
  m.classification_loss = row[at + 1];
  m.link_loss = row[at + 2];
  m.entropy_loss = row[at + 3];
  m.accuracy = row[at + 4];
  m.graphs = static_cast<int64_t>(row[at + 5]);
  return m;
}

void write_snapshot(hdf5::Location& at, const std::string& group, const ParameterStore::Snapshot& s) {
  hdf5::Group g = at.create_group(group);
  g.write_dataset<double>("values", s.values);
  g.write_dataset<double>("m", s.m);
  g.write_dataset<double>("v", s.v);
  g.write_dataset<double>("buffers", s.buffers);
}

ParameterStore::Snapshot read_snapshot(const hdf5::Location& at, const std::string& group) {
  ParameterStore::Snapshot s;
  s.values = at.read_dataset<double>(group + "/values").values;
  s.m = at.read_dataset<double>(group + "/m").values;
  s.v = at.read_dataset<double>(group + "/v").values;
  s.buffers = at.read_dataset<double>(group + "/buffers").values;
  return s;
}
// The per-epoch test predictions (the paper protocol measures the test split every epoch), so that
// a resumed job stores the same predictions as an uninterrupted one: int32 [E, n], -1 in the rows
// of epochs without them. Absent when no epoch has them (and in older checkpoints).
void write_test_predictions(hdf5::File& f, const std::vector<EpochMetrics>& epochs) {
  std::size_t n = 0;
  for (const EpochMetrics& m : epochs) n = std::max(n, m.test_predictions.size());
  if (n == 0) return;
  std::vector<int32_t> rows;
  rows.reserve(epochs.size() * n);
  for (const EpochMetrics& m : epochs) {
    DP_CHECK(m.test_predictions.empty() || m.test_predictions.size() == n,
             "epoch {}: {} test predictions, other epochs have {}", m.epoch, m.test_predictions.size(), n);
    if (m.test_predictions.empty()) rows.insert(rows.end(), n, -1);
    else rows.insert(rows.end(), m.test_predictions.begin(), m.test_predictions.end());
  }
  // 4 bytes per test graph and epoch (1000 epochs of a 1200-graph test fold: 4.8 MB): compressed.
  const hdf5::DatasetOptions options =
      rows.size() >= 4096 ? hdf5::DatasetOptions::compressed() : hdf5::DatasetOptions{};
  f.write_dataset<int32_t>("test_predictions", rows, {epochs.size(), n}, options);
}

void read_test_predictions(const hdf5::File& f, const std::filesystem::path& path, std::vector<EpochMetrics>& epochs) {
  if (!f.exists("test_predictions")) return;
  const auto predictions = f.read_dataset<int32_t>("test_predictions");
  DP_CHECK(predictions.shape.size() == 2 && predictions.shape[0] == epochs.size(),
           "checkpoint {}: test predictions of shape {} for {} epochs", path.string(),
           hdf5::format_shape(predictions.shape), epochs.size());
  const std::size_t n = predictions.shape[1];
  for (std::size_t e = 0; e < epochs.size(); ++e) {
    if (!epochs[e].test) continue;
    const auto row = predictions.values.begin() + static_cast<std::ptrdiff_t>(e * n);
    epochs[e].test_predictions.assign(row, row + static_cast<std::ptrdiff_t>(n));
  }
}

// The per-epoch cluster usage of the validation and test evaluations (Metrics::cluster_usage), so
// that a resumed job stores the same curves as an uninterrupted one: float64 [E, 2L], the L
// pooling levels' validation figures then the test ones, NaN where not measured. Absent for models
// without pooling (and in older checkpoints).
void write_cluster_usage(hdf5::File& f, const std::vector<EpochMetrics>& epochs) {
  std::size_t levels = 0;
  for (const EpochMetrics& m : epochs)
    for (const std::optional<Metrics>* part : {&m.validation, &m.test})
      if (*part) levels = std::max(levels, (*part)->cluster_usage.size());
  if (levels == 0) return;
  std::vector<double> rows;
  rows.reserve(epochs.size() * 2 * levels);
  for (const EpochMetrics& m : epochs)
    for (const std::optional<Metrics>* part : {&m.validation, &m.test})
      for (std::size_t l = 0; l < levels; ++l)
        rows.push_back(*part && l < (*part)->cluster_usage.size() ? (*part)->cluster_usage[l] : kMissing);
  f.write_dataset<double>("cluster_usage", rows, {epochs.size(), 2 * levels});
}

void read_cluster_usage(const hdf5::File& f, const std::filesystem::path& path, std::vector<EpochMetrics>& epochs) {
  if (!f.exists("cluster_usage")) return;
  const auto usage = f.read_dataset<double>("cluster_usage");
  DP_CHECK(usage.shape.size() == 2 && usage.shape[0] == epochs.size() && usage.shape[1] % 2 == 0,
           "checkpoint {}: cluster usage of shape {} for {} epochs", path.string(), hdf5::format_shape(usage.shape),
           epochs.size());
  const std::size_t levels = usage.shape[1] / 2;
  for (std::size_t e = 0; e < epochs.size(); ++e) {
    std::optional<Metrics>* parts[] = {&epochs[e].validation, &epochs[e].test};
    for (std::size_t p = 0; p < 2; ++p) {
      if (!*parts[p]) continue;
      const auto row = usage.values.begin() + static_cast<std::ptrdiff_t>(e * 2 * levels + p * levels);
      (*parts[p])->cluster_usage.assign(row, row + static_cast<std::ptrdiff_t>(levels));
    }
  }
}
}  // namespace

std::vector<std::string> epoch_metric_columns() {
  std::vector<std::string> c = {"epoch", "grad_norm", "train_seconds", "eval_seconds"};
  for (const char* split : {"train", "validation", "test"})
    for (const char* what : {"loss", "classification_loss", "link_loss", "entropy_loss", "accuracy", "graphs"})
      c.push_back(fmt::format("{}_{}", split, what));
  return c;
}

std::vector<double> epoch_metrics_row(const EpochMetrics& m) {
  std::vector<double> row = {static_cast<double>(m.epoch), m.grad_norm, m.train_seconds, m.eval_seconds};
  put_metrics(row, m.train);
  put_metrics(row, m.validation);
  put_metrics(row, m.test);
  return row;
}

EpochMetrics epoch_metrics_from_row(const std::vector<double>& row) {
  DP_CHECK(row.size() == epoch_metric_columns().size(), "epoch metrics row of {} values", row.size());
  EpochMetrics m;
  m.epoch = static_cast<int>(row[0]);
  m.grad_norm = row[1];
  m.train_seconds = row[2];
  m.eval_seconds = row[3];
  m.train = get_metrics(row, 4).value_or(Metrics{});
  m.validation = get_metrics(row, 10);
  m.test = get_metrics(row, 16);
  return m;
}

namespace {
// The checkpoint's per-epoch metrics (without the test predictions).
std::vector<EpochMetrics> read_epoch_metrics(const hdf5::File& f, const std::filesystem::path& path) {
  const auto metrics = f.read_dataset<double>("metrics");
  const std::size_t cols = epoch_metric_columns().size();
  DP_CHECK(metrics.shape.size() == 2 && metrics.shape[1] == cols, "checkpoint {}: metrics of {} columns", path.string(),
           metrics.shape.size() == 2 ? metrics.shape[1] : 0);
  std::vector<EpochMetrics> epochs;
  for (std::size_t r = 0; r < metrics.shape[0]; ++r)
    epochs.push_back(epoch_metrics_from_row(
        std::vector<double>(metrics.values.begin() + static_cast<std::ptrdiff_t>(r * cols),
                            metrics.values.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols))));
  return epochs;
}
}  // namespace

void write_checkpoint(const std::filesystem::path& path, const Checkpoint& c) {
  hdf5::write_file_atomically(path, [&](hdf5::File& f) {
    f.set_attribute("job_id", c.job_id);
    f.set_attribute("epoch", static_cast<int64_t>(c.state.epoch));
    f.set_attribute("adam_steps", c.state.adam_steps);
    f.set_attribute("best_epoch", static_cast<int64_t>(c.state.best_epoch));
    f.set_attribute("best_value", c.state.best_value);
    f.set_attribute("has_best", static_cast<int64_t>(c.state.has_best));
    f.set_attribute("epochs_without_improvement", static_cast<int64_t>(c.state.epochs_without_improvement));
    f.set_attribute("wall_seconds", c.wall_seconds);
    if (!c.dataset_digest.empty()) f.set_attribute("dataset_digest", c.dataset_digest);
    write_snapshot(f, "parameters", c.state.parameters);
    if (!c.state.best_parameters.values.empty()) write_snapshot(f, "best_parameters", c.state.best_parameters);
    const auto columns = epoch_metric_columns();
    std::vector<double> flat;
    for (const EpochMetrics& m : c.epochs) {
      const auto row = epoch_metrics_row(m);
      flat.insert(flat.end(), row.begin(), row.end());
    }
    f.write_dataset<double>("metrics", flat, {c.epochs.size(), columns.size()});
    f.write_strings("metric_columns", columns);
    write_test_predictions(f, c.epochs);
    write_cluster_usage(f, c.epochs);
  });
}

std::optional<Checkpoint> read_checkpoint(const std::filesystem::path& path, const std::string& job_id) {
  std::lock_guard<std::recursive_mutex> lock(hdf5::library_mutex());  // the HDF5 library is not thread-safe
  std::optional<hdf5::File> opened = hdf5::File::open_if_readable(path);
  if (!opened) return std::nullopt;
  const hdf5::File& f = *opened;
  Checkpoint c;
  c.job_id = f.read_attribute<std::string>("job_id");
  if (c.job_id != job_id) return std::nullopt;
  c.state.epoch = static_cast<int>(f.read_attribute<int64_t>("epoch"));
  c.state.adam_steps = f.read_attribute<int64_t>("adam_steps");
  c.state.best_epoch = static_cast<int>(f.read_attribute<int64_t>("best_epoch"));
  c.state.best_value = f.read_attribute<double>("best_value");
  c.state.has_best = f.read_attribute<int64_t>("has_best") != 0;
  c.state.epochs_without_improvement = static_cast<int>(f.read_attribute<int64_t>("epochs_without_improvement"));
  c.wall_seconds = f.read_attribute<double>("wall_seconds");
  if (f.has_attribute("dataset_digest")) c.dataset_digest = f.read_attribute<std::string>("dataset_digest");
  c.state.parameters = read_snapshot(f, "parameters");
  if (f.exists("best_parameters")) c.state.best_parameters = read_snapshot(f, "best_parameters");
  c.epochs = read_epoch_metrics(f, path);
  read_test_predictions(f, path, c.epochs);
  read_cluster_usage(f, path, c.epochs);
  return c;
}

std::string recorded_dataset_digest(const std::filesystem::path& path) {
  std::lock_guard<std::recursive_mutex> lock(hdf5::library_mutex());
  try {
    const std::optional<hdf5::File> f = hdf5::File::open_if_readable(path);
    if (!f) return {};
    return f->has_attribute("dataset_digest") ? f->read_attribute<std::string>("dataset_digest") : std::string();
  } catch (const Error&) {
    return {};
  }
}

std::optional<CheckpointProgress> read_checkpoint_progress(const std::filesystem::path& path, const std::string& job_id) {
  std::lock_guard<std::recursive_mutex> lock(hdf5::library_mutex());
  try {
    const std::optional<hdf5::File> opened = hdf5::File::open_if_readable(path);
    if (!opened) return std::nullopt;
    const hdf5::File& f = *opened;
    if (f.read_attribute<std::string>("job_id") != job_id) return std::nullopt;
    CheckpointProgress p;
    for (const EpochMetrics& m : read_epoch_metrics(f, path)) {
      ++p.epochs;
      p.seconds += m.train_seconds + m.eval_seconds;
    }
    return p;
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace diffpool
