// The C++ model against an independent PyTorch implementation (tests/reference/diffpool_reference.py),
// in the manner of llm.c's test_gpt2: same weights, same batch; compare the loss parts, the logits,
// the graph embedding and every parameter gradient, then the losses of ten Adam steps.
//
// Each case builds the model with float32 parameters on the CPU backend (the production dtype),
// initialises it, and writes the config, the weights and a batch of 20 real ENZYMES graphs of
// unequal sizes (including the dataset's largest, 126 nodes) to an exchange folder
// (<build>/reference_exchange/<case>, described in tests/reference/README.md). PyTorch computes
// everything in float64 from the same float32 values. The same comparison is repeated with the
// C++ model in float64 on the same weights, at a much tighter tolerance: float32 shows the
// production path is within rounding, float64 shows the wiring is identical.
//
// Relative error of a tensor element: |cpp - torch| / max(|torch|, rms(torch tensor)), so elements
// near zero are judged against the scale of their tensor; each tensor reports its worst element.
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autodiff/tape.hpp"
#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/data/dataset.hpp"
#include "engine/nn/model.hpp"
#include "engine/optim/adam.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

namespace fs = std::filesystem;

// Debian's python3 with python3-torch; DIFFPOOL_REFERENCE_PYTHON overrides it.
std::string python() {
  const char* env = std::getenv("DIFFPOOL_REFERENCE_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}
constexpr int kBatchGraphs = 20;
constexpr int kAdamSteps = 10;
constexpr double kClipNorm = 2.0;
constexpr double kTolF32 = 1e-4;  // float32 C++ against float64 PyTorch
constexpr double kTolF64 = 1e-8;  // float64 C++ against float64 PyTorch

// ---- what one side computed ---------------------------------------------------------------------

struct Results {
  std::vector<double> parts;        // classification, link, entropy, total (NaN where absent)
  std::vector<double> level_losses; // per pooling level: link, entropy
  std::vector<double> logits;       // [B, C]
  std::vector<double> embedding;    // [B, R]
  std::vector<double> gradients;    // the flat gradient arena
  std::vector<double> train_losses; // the loss before each Adam step
};

double scalar_or_nan(Backend& backend, const Variable* v) {
  return v ? read_scalar(backend, v->value) : std::numeric_limits<double>::quiet_NaN();
}

// Forward + backward on the batch, then `steps` Adam steps (loss recorded before each step).
Results run_cpp(const ModelConfig& config, const GraphDataset& data, const std::vector<int64_t>& ids,
                const std::vector<double>& values, DType dtype, int steps, const FixedAssignments* fixed) {
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
  ParameterStore& params = model.parameters();
  params.allocate(*backend, dtype);
  params.initialize(1);  // buffers and moments; the values come next
  params.set_values(values);
  AdamSettings settings;  // lr 1e-3, betas 0.9 / 0.999, eps 1e-8 (torch.optim.Adam defaults)
  Adam adam(params, settings, kClipNorm);
  Workspace ws(*backend);
  Results r;
  for (int step = 0; step < std::max(steps, 1); ++step) {
    ws.reset();
    Tape tape(*backend, ws);
    GraphBatch batch = build_batch(data, ids, ws, dtype, fixed);
    ForwardOutput out = model.forward(tape, batch, /*training=*/true, /*dropout_seed=*/0);
    params.zero_grad();
    tape.backward(out.loss);
    r.train_losses.push_back(read_scalar(*backend, out.loss->value));
    if (step == 0) {
      r.parts = {scalar_or_nan(*backend, out.classification_loss), scalar_or_nan(*backend, out.link_loss),
                 scalar_or_nan(*backend, out.entropy_loss), scalar_or_nan(*backend, out.loss)};
      for (const LevelOutput& lo : out.levels) {
        if (!lo.link_loss) continue;
        r.level_losses.push_back(read_scalar(*backend, lo.link_loss->value));
        r.level_losses.push_back(read_scalar(*backend, lo.entropy_loss->value));
      }
      auto to_double = [&](const Tensor& t) {
        if (t.dtype() == DType::f64) return download<double>(*backend, t);
        std::vector<float> f = download<float>(*backend, t);
        return std::vector<double>(f.begin(), f.end());
      };
      r.logits = to_double(out.logits->value);
      r.embedding = to_double(out.graph_embedding->value);
      r.gradients = to_double(params.grads());
    }
    if (step < steps) adam.step();
  }
  r.train_losses.resize(static_cast<std::size_t>(steps));
  return r;
}

// ---- the exchange folder --------------------------------------------------------------------------

template <class T> void write_bin(const fs::path& path, const std::vector<T>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

std::vector<double> read_bin(const fs::path& path, std::size_t expected) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("missing reference output " + path.string());
  const auto bytes = static_cast<std::size_t>(f.tellg());
  if (bytes != expected * sizeof(double))
    throw std::runtime_error(fmt::format("{}: {} bytes, expected {} doubles", path.string(), bytes, expected));
  std::vector<double> v(expected);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(bytes));
  return v;
}

std::string json_list(const auto& values) {
  std::string s = "[";
  for (const auto& v : values) s += (s.size() > 1 ? ", " : "") + fmt::format("{}", v);
  return s + "]";
}

std::string config_json(const ModelConfig& c) {
  return fmt::format(
      "{{\"variant\": \"{}\", \"pool_levels\": {}, \"conv_layers\": {}, \"hidden_dim\": {}, \"embedding_dim\": {}, "
      "\"cluster_ratio\": {:.17g}, \"clusters\": {}, \"readout\": \"{}\", \"concat_layers\": {}, \"mlp_hidden\": {}, "
      "\"dropout\": {:.17g}, \"batch_norm\": {}, \"batch_norm_mode\": \"{}\", \"l2_normalize\": {}, \"link_weight\": {:.17g}, "
      "\"entropy_weight\": {:.17g}, \"link_norm\": \"{}\", \"dense_aggregation\": \"{}\", "
      "\"dense_degree_eps\": {:.17g}, \"batch_norm_eps\": {:.17g}, \"cluster_rule\": \"{}\"}}",
      variant_name(c.variant), c.pool_levels, json_list(c.conv_layers), c.hidden_dim, c.embedding_dim,
      c.cluster_ratio, json_list(c.clusters), readout_name(c.readout), c.concat_layers, json_list(c.mlp_hidden),
      c.dropout, c.batch_norm, batch_norm_mode_name(c.batch_norm_mode), c.l2_normalize, c.link_weight, c.entropy_weight, link_loss_norm_name(c.link_norm),
      dense_aggregation_name(c.dense_aggregation), c.dense_degree_eps, c.batch_norm_eps, cluster_rule_name(c.cluster_rule));
}

// Writes manifest.json, parameters.bin, features.bin and edges.bin (the batch exactly as the
// C++ model sees it: build_batch's rows, block-diagonal adjacency and labels).
void export_case(const fs::path& dir, const DiffPoolModel& model, const GraphDataset& data,
                 const std::vector<int64_t>& ids, const std::vector<double>& values, const std::string& data_dir,
                 const FixedAssignments* fixed) {
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  Workspace ws(*backend);
  GraphBatch batch = build_batch(data, ids, ws, DType::f32, fixed);
  std::vector<std::string> assignment_files;  // DIFFPOOL-DET: one-hot S per level
  for (std::size_t l = 0; l < batch.fixed_assignments.size(); ++l) {
    const std::vector<float> s = download<float>(*backend, batch.fixed_assignments[l]);
    assignment_files.push_back(fmt::format("\"fixed_assignment_{}.bin\"", l));
    write_bin(dir / fmt::format("fixed_assignment_{}.bin", l), std::vector<double>(s.begin(), s.end()));
  }
  std::vector<float> features = download<float>(*backend, batch.features);
  write_bin(dir / "features.bin", std::vector<double>(features.begin(), features.end()));
  std::vector<int64_t> edges;
  const HostCsr& a = batch.host_adjacency;
  for (int64_t r = 0; r < a.rows; ++r)
    for (int32_t e = a.row_ptr[static_cast<std::size_t>(r)]; e < a.row_ptr[static_cast<std::size_t>(r) + 1]; ++e) {
      EXPECT_EQ(a.values[static_cast<std::size_t>(e)], 1.0);
      edges.push_back(r);
      edges.push_back(a.col_idx[static_cast<std::size_t>(e)]);
    }
  write_bin(dir / "edges.bin", edges);
  write_bin(dir / "parameters.bin", values);
  std::vector<int32_t> labels = download<int32_t>(*backend, batch.labels);

  const ParameterStore& params = model.parameters();
  std::string entries;
  for (const auto& e : params.entries()) {
    std::vector<int64_t> shape;
    for (int i = 0; i < e.shape.ndim; ++i) shape.push_back(e.shape[i]);
    entries += fmt::format("{}\n   {{\"name\": \"{}\", \"shape\": {}, \"offset\": {}}}", entries.empty() ? "" : ",",
                           e.name, json_list(shape), e.offset);
  }
  AdamSettings adam;
  std::ofstream m(dir / "manifest.json");
  m << fmt::format(
      "{{\n \"format\": \"diffpool-reference-exchange\", \"version\": 1,\n"
      " \"config\": {},\n"
      " \"in_features\": {}, \"num_classes\": {}, \"max_nodes\": {}, \"cluster_counts\": {},\n"
      " \"batch\": {{\"graphs\": {}, \"graph_ids\": {}, \"node_offsets\": {}, \"labels\": {}, \"num_edges\": {}, "
      "\"features\": \"features.bin\", \"edges\": \"edges.bin\", \"fixed_assignments\": {}}},\n"
      " \"dataset\": {{\"name\": \"{}\", \"data_dir\": \"{}\", \"features\": \"automatic\"}},\n"
      " \"parameters\": {{\"file\": \"parameters.bin\", \"size\": {}, \"entries\": [{}\n ]}},\n"
      " \"optimizer\": {{\"learning_rate\": {:.17g}, \"beta1\": {:.17g}, \"beta2\": {:.17g}, \"eps\": {:.17g}, "
      "\"weight_decay\": {:.17g}, \"clip_norm\": {:.17g}, \"steps\": {}}}\n}}\n",
      config_json(model.config()), data.num_features, data.num_classes(), data.max_nodes(),
      json_list(model.cluster_counts()), ids.size(), json_list(ids), json_list(batch.nodes.offsets),
      json_list(labels), edges.size() / 2, json_list(assignment_files), data.name, data_dir, params.size(), entries, adam.learning_rate,
      adam.beta1, adam.beta2, adam.eps, adam.weight_decay, kClipNorm, kAdamSteps);
}

// ---- comparison ---------------------------------------------------------------------------------

struct Worst {
  double error = 0;
  int64_t index = -1;
  double cpp = 0, torch = 0;
};

// Worst relative error |a - b| / max(|b|, rms(b)) over a tensor (b is PyTorch's).
Worst compare(const double* cpp, const double* torch, int64_t n) {
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) sq += torch[i] * torch[i];
  const double rms = n > 0 ? std::sqrt(sq / static_cast<double>(n)) : 0.0;
  Worst w;
  for (int64_t i = 0; i < n; ++i) {
    const double diff = std::abs(cpp[i] - torch[i]);
    const double scale = std::max(std::abs(torch[i]), rms);
    double e = scale > 0 ? diff / scale : diff;
    if (!std::isfinite(cpp[i]) || !std::isfinite(torch[i])) e = std::numeric_limits<double>::infinity();
    if (w.index < 0 || e > w.error) w = {e, i, cpp[i], torch[i]};
  }
  return w;
}

// Every compared quantity: a slice of one of the Results vectors.
struct Quantity {
  std::string name;
  int group;  // 0 losses, 1 outputs, 2 gradients, 3 Adam losses
  std::vector<double> Results::*field;
  std::size_t offset;
  int64_t count;
};

std::vector<Quantity> quantities(const Results& ref, const ParameterStore& params) {
  static const char* kParts[] = {"loss.classification", "loss.link", "loss.entropy", "loss.total"};
  std::vector<Quantity> q;
  for (std::size_t i = 0; i < 4; ++i)
    if (!std::isnan(ref.parts[i])) q.push_back({kParts[i], 0, &Results::parts, i, 1});
  for (std::size_t i = 0; i < ref.level_losses.size(); ++i)
    q.push_back({fmt::format("level{}.{}", i / 2, i % 2 ? "entropy" : "link"), 0, &Results::level_losses, i, 1});
  q.push_back({"logits", 1, &Results::logits, 0, static_cast<int64_t>(ref.logits.size())});
  q.push_back({"graph_embedding", 1, &Results::embedding, 0, static_cast<int64_t>(ref.embedding.size())});
  for (const auto& e : params.entries())
    q.push_back({"grad " + e.name, 2, &Results::gradients, static_cast<std::size_t>(e.offset), e.shape.numel()});
  for (std::size_t t = 0; t < ref.train_losses.size(); ++t)
    q.push_back({fmt::format("adam step {} loss", t), 3, &Results::train_losses, t, 1});
  return q;
}

Worst compare(const Quantity& q, const Results& cpp, const Results& ref) {
  const std::vector<double>& a = cpp.*q.field;
  const std::vector<double>& b = ref.*q.field;
  if (a.size() < q.offset + static_cast<std::size_t>(q.count) || b.size() < q.offset + static_cast<std::size_t>(q.count))
    return {std::numeric_limits<double>::infinity(), -1, 0, 0};
  return compare(a.data() + q.offset, b.data() + q.offset, q.count);
}

// One C++ run against PyTorch's float64 result. The tolerance of each quantity is
// max(tolerance, yardstick_factor * e32), where e32 is how far PyTorch's own float32 run lands from
// its float64 run on that quantity (0 without a float32 run): a float32 implementation cannot be
// asked to be closer to float64 than float32 arithmetic allows on this problem.
struct Report {
  std::string label;  // "f32" or "f64"
  double tolerance = 0;
  static constexpr double kYardstickFactor = 4.0;
  std::array<double, 4> max_error{};     // per group, against PyTorch float64
  std::array<double, 4> max_yardstick{}; // per group, PyTorch float32 against float64
  std::array<double, 4> max_vs32{};      // per group, against PyTorch float32
  std::string worst_gradient_name;
  std::vector<std::string> lines;
  std::vector<std::string> relaxed;  // quantities that passed only thanks to the yardstick

  void run(const Results& cpp, const Results& ref64, const Results* ref32, const ParameterStore& params) {
    for (const Quantity& q : quantities(ref64, params)) {
      if (q.field == &Results::parts) {
        EXPECT_FALSE(std::isnan(cpp.parts[q.offset])) << label << " " << q.name << " missing on the C++ side";
      }
      const Worst w = compare(q, cpp, ref64);
      const Worst y = ref32 ? compare(q, *ref32, ref64) : Worst{};
      const Worst w32 = ref32 ? compare(q, cpp, *ref32) : Worst{};
      const double tol = std::max(tolerance, kYardstickFactor * y.error);
      const std::size_t g = static_cast<std::size_t>(q.group);
      if (w.error > max_error[g] && g == 2) worst_gradient_name = q.name;
      max_error[g] = std::max(max_error[g], w.error);
      max_yardstick[g] = std::max(max_yardstick[g], y.error);
      max_vs32[g] = std::max(max_vs32[g], w32.error);
      const bool ok = w.error <= tol;
      if (ok && w.error > tolerance) relaxed.push_back(fmt::format("{} ({:.2e}, torch f32 {:.2e})", q.name, w.error, y.error));
      lines.push_back(fmt::format("  {} {:<36} n={:<5} rel {:9.2e} at [{}]: C++ {:+.10e} torch {:+.10e}{}{}", label,
                                  q.name, q.count, w.error, w.index, w.cpp, w.torch,
                                  ref32 ? fmt::format("  (torch f32: {:.2e}; C++ vs torch f32: {:.2e})", y.error, w32.error)
                                        : std::string(),
                                  ok ? "" : "   <-- FAIL"));
      EXPECT_LE(w.error, tol) << label << " " << q.name << " element " << w.index << ": C++ " << w.cpp << ", PyTorch "
                              << w.torch << (ref32 ? fmt::format(" (PyTorch float32 itself: {:.3g})", y.error) : "");
    }
    // The gradients are the same arena on both sides, padding included (zero).
    if (cpp.gradients.size() != ref64.gradients.size())
      ADD_FAILURE() << label << ": gradient arena of " << cpp.gradients.size() << " vs " << ref64.gradients.size();
  }

  std::string summary(bool with_yardstick) const {
    static const char* kGroups[] = {"losses", "outputs", "gradients", "adam losses"};
    std::string s = fmt::format("  C++ {} vs torch f64 (tol {:.0e}):", label, tolerance);
    for (std::size_t g = 0; g < 4; ++g)
      s += fmt::format(" {} {:.2e}{}", kGroups[g], max_error[g], g == 2 ? fmt::format(" ({})", worst_gradient_name) : "");
    if (with_yardstick) {
      s += "\n  torch f32 vs torch f64 (yardstick):";
      for (std::size_t g = 0; g < 4; ++g) s += fmt::format(" {} {:.2e}", kGroups[g], max_yardstick[g]);
      s += "\n  C++ f32 vs torch f32:";
      for (std::size_t g = 0; g < 4; ++g) s += fmt::format(" {} {:.2e}", kGroups[g], max_vs32[g]);
      if (!relaxed.empty())
        s += fmt::format("\n  beyond {:.0e} but within {}x PyTorch's own float32 deviation: {}", tolerance, kYardstickFactor,
                         fmt::join(relaxed, "; "));
    }
    return s;
  }
};

// ---- the fixture: ENZYMES once, PyTorch once ----------------------------------------------------

class Reference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string kPython = python();
    if (!fs::exists(kPython)) {
      setup_error_ = fmt::format("{} not found: the reference test needs Debian's python3 with python3-torch "
                                 "(tests/run.sh installs it: apt-get install python3-torch python3-numpy)", kPython);
      return;
    }
    const std::string probe = fmt::format("{} -c 'import torch, numpy' > /dev/null 2>&1", kPython);
    if (std::system(probe.c_str()) != 0) {
      setup_error_ = fmt::format("{} cannot import torch and numpy: install python3-torch python3-numpy "
                                 "(tests/run.sh does)", kPython);
      return;
    }
    try {
      DatasetOptions options;
      options.data_dir = testing::data_dir();
      data_ = std::make_unique<GraphDataset>(load_tu_dataset("ENZYMES", options));
    } catch (const std::exception& e) {
      setup_error_ = fmt::format("cannot load ENZYMES from {} ({}); configure with -DDIFFPOOL_TEST_DATA_DIR or set "
                                 "DIFFPOOL_DATA", testing::data_dir(), e.what());
    }
  }
  static void TearDownTestSuite() { data_.reset(); }

  void SetUp() override {
    if (!setup_error_.empty()) GTEST_FAIL() << setup_error_;
  }

  // 20 graphs spread over the size range (smallest to largest, the 126-node graph included),
  // in an interleaved order so the batch is not sorted by size.
  static std::vector<int64_t> batch_ids() {
    const GraphDataset& d = *data_;
    std::vector<int64_t> order(static_cast<std::size_t>(d.num_graphs()));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d.num_nodes(a) < d.num_nodes(b); });
    std::vector<int64_t> picked;
    for (int i = 0; i < kBatchGraphs; ++i)
      picked.push_back(order[static_cast<std::size_t>(i) * (order.size() - 1) / (kBatchGraphs - 1)]);
    std::vector<int64_t> ids;
    for (int i = 0; i < kBatchGraphs / 2; ++i) {
      ids.push_back(picked[static_cast<std::size_t>(kBatchGraphs - 1 - i)]);
      ids.push_back(picked[static_cast<std::size_t>(i)]);
    }
    return ids;
  }

  static ModelConfig enzymes_config() {  // the paper's ENZYMES setup (section 4.1)
    ModelConfig c;
    c.variant = Variant::diffpool;
    c.pool_levels = 1;
    c.cluster_ratio = 0.1;
    c.hidden_dim = 30;
    c.embedding_dim = 30;
    return c;
  }

  // nonzero_biases: draw every bias from U(-0.1, 0.1) instead of zeros (see DiffPoolDeterministic).
  void run_case(const std::string& name, const ModelConfig& config, bool nonzero_biases = false) {
    const GraphDataset& data = *data_;
    const std::vector<int64_t> ids = batch_ids();
    int64_t largest = 0, smallest = INT64_MAX;
    for (int64_t g : ids) {
      largest = std::max(largest, data.num_nodes(g));
      smallest = std::min(smallest, data.num_nodes(g));
    }
    ASSERT_EQ(largest, data.max_nodes()) << "the batch must include the dataset's largest graph";
    ASSERT_EQ(largest, 126) << "ENZYMES' largest graph has 126 nodes";

    // float32 parameters, initialised as in production.
    std::unique_ptr<Backend> backend = make_cpu_backend(1);
    DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
    model.parameters().allocate(*backend, DType::f32);
    model.parameters().initialize(2018);
    if (nonzero_biases) {
      std::vector<double> v = model.parameters().snapshot().values;
      Rng rng(99);
      for (const auto& e : model.parameters().entries())
        if (e.name.ends_with(".bias"))
          for (int64_t j = 0; j < e.shape.numel(); ++j)
            v[static_cast<std::size_t>(e.offset + j)] = static_cast<float>(rng.uniform(-0.1, 0.1));
      model.parameters().set_values(v);
    }
    const std::vector<double> values = model.parameters().snapshot().values;  // f32 values, exact in f64

    const fs::path dir = fs::path(testing::binary_dir()) / "reference_exchange" / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::unique_ptr<FixedAssignments> fixed;
    if (config.variant == Variant::diffpool_det)
      fixed = std::make_unique<FixedAssignments>(model.fixed_assignments(data));
    export_case(dir, model, data, ids, values, testing::data_dir(), fixed.get());

    const std::string script = testing::source_dir() + "/tests/reference/diffpool_reference.py";
    const std::string command =
        fmt::format("{} '{}' --float32 '{}' > '{}' 2>&1", python(), script, dir.string(), (dir / "python.log").string());
    const int rc = std::system(command.c_str());
    std::ifstream log_file(dir / "python.log");
    const std::string log((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
    ASSERT_EQ(rc, 0) << "the PyTorch reference failed (" << command << "):\n" << log;
    const YAML::Node result = YAML::LoadFile((dir / "results.json").string());
    ASSERT_EQ(result["status"].as<std::string>(), "ok") << log;
    EXPECT_EQ(result["tu_check"].as<std::string>(), "ok")
        << "the batch differs from the raw TU files as read by tests/reference/tu_files.py:\n"
        << YAML::Dump(result["tu_problems"]);

    const ParameterStore& params = model.parameters();
    const int64_t b = static_cast<int64_t>(ids.size());
    const std::size_t levels = static_cast<std::size_t>(result["levels_pooled"].as<int>());
    Results cpp32 = run_cpp(config, data, ids, values, DType::f32, kAdamSteps, fixed.get());
    Results cpp64 = run_cpp(config, data, ids, values, DType::f64, kAdamSteps, fixed.get());
    auto load = [&](const fs::path& folder) {
      Results ref;
      ref.parts = read_bin(folder / "loss_parts.bin", 4);
      ref.level_losses = read_bin(folder / "level_losses.bin", 2 * levels);
      ref.logits = read_bin(folder / "logits.bin", static_cast<std::size_t>(b * data.num_classes()));
      ref.embedding = read_bin(folder / "graph_embedding.bin", cpp64.embedding.size());
      ref.gradients = read_bin(folder / "gradients.bin", static_cast<std::size_t>(params.size()));
      ref.train_losses = read_bin(folder / "train_losses.bin", kAdamSteps);
      return ref;
    };
    // The C++ side's results next to PyTorch's, for inspection by hand (same layouts).
    for (const auto& [label, r] : {std::pair<std::string, const Results*>{"f32", &cpp32}, {"f64", &cpp64}}) {
      write_bin(dir / fmt::format("cpp_{}_loss_parts.bin", label), r->parts);
      write_bin(dir / fmt::format("cpp_{}_level_losses.bin", label), r->level_losses);
      write_bin(dir / fmt::format("cpp_{}_logits.bin", label), r->logits);
      write_bin(dir / fmt::format("cpp_{}_graph_embedding.bin", label), r->embedding);
      write_bin(dir / fmt::format("cpp_{}_gradients.bin", label), r->gradients);
      write_bin(dir / fmt::format("cpp_{}_train_losses.bin", label), r->train_losses);
    }
    const Results ref64 = load(dir);
    const Results ref32 = load(dir / "float32");

    Report r32, r64;
    r32.label = "f32";
    r32.tolerance = kTolF32;
    r64.label = "f64";
    r64.tolerance = kTolF64;
    r32.run(cpp32, ref64, &ref32, params);
    r64.run(cpp64, ref64, nullptr, params);
    int64_t rows = 0;
    for (int64_t g : ids) rows += data.num_nodes(g);
    std::string text = fmt::format("{}: {}\n  batch of {} ENZYMES graphs, {} to {} nodes, {} node rows\n", name,
                                   model.summary(), b, smallest, largest, rows);
    text += r32.summary(true) + "\n" + r64.summary(false) + "\n";
    const bool verbose = std::getenv("DIFFPOOL_REFERENCE_VERBOSE") != nullptr;
    for (const Report* r : {&r32, &r64})
      if (verbose || ::testing::Test::HasFailure())
        for (const std::string& line : r->lines) text += line + "\n";
    text += fmt::format("  losses over {} Adam steps (torch f64):", kAdamSteps);
    for (double l : ref64.train_losses) text += fmt::format(" {:.6f}", l);
    std::printf("%s\n", text.c_str());
    std::ofstream(dir / "comparison.txt") << text;
  }

  static inline std::unique_ptr<GraphDataset> data_;
  static inline std::string setup_error_;
};

TEST_F(Reference, DiffPoolOneLevel) { run_case("diffpool_1level", enzymes_config()); }

TEST_F(Reference, DiffPoolTwoLevels) {
  ModelConfig c = enzymes_config();
  c.pool_levels = 2;
  c.cluster_ratio = 0.25;
  run_case("diffpool_2levels", c);
}

TEST_F(Reference, DiffPoolNoLinkPrediction) {
  ModelConfig c = enzymes_config();
  c.variant = Variant::diffpool_nolp;
  run_case("diffpool_nolp", c);
}

// DIFFPOOL-DET with Graclus assignments. Every pooled graph has k rows, so a small graph leaves
// clusters empty: their rows are 0 at the next level, and rows made only of such rows are parallel
// (x_r = n_r c). With the production initialisation (zero biases) those rows sit exactly on kinks:
// the l2-normalise/ReLU of a zero pre-activation, and exact ties of the max readout between
// parallel rows that l2-normalise to the same vector; the gradient of the level-2 first bias is
// then an arbitrary subgradient (central differences match neither side), and PyTorch and C++
// break the tie by an ulp differently. Nonzero biases move the model off those kinks.
TEST_F(Reference, DiffPoolDeterministicTwoLevels) {
  ModelConfig c = enzymes_config();
  c.variant = Variant::diffpool_det;
  c.pool_levels = 2;
  c.cluster_ratio = 0.25;
  run_case("diffpool_det_2levels", c, /*nonzero_biases=*/true);
}

TEST_F(Reference, GraphSageBaseline) {
  ModelConfig c = enzymes_config();
  c.variant = Variant::graphsage;
  run_case("graphsage", c);
}

TEST_F(Reference, MeanReadoutConcatLayersSumAggregation) {
  ModelConfig c = enzymes_config();
  c.pool_levels = 2;
  c.cluster_ratio = 0.25;
  c.readout = Readout::mean;
  c.concat_layers = true;
  c.dense_aggregation = DenseAggregation::sum;
  c.link_norm = LinkLossNorm::per_entry;
  run_case("mean_concat_sum", c);
}

TEST_F(Reference, SumReadoutSquaredLinkNoBatchNormNoL2) {
  ModelConfig c = enzymes_config();
  c.readout = Readout::sum;
  c.link_norm = LinkLossNorm::frobenius_squared;
  c.batch_norm = false;
  c.l2_normalize = false;
  run_case("sum_squared_plain", c);
}

TEST_F(Reference, BinaryCrossEntropyLinkLoss) {
  ModelConfig c = enzymes_config();
  c.link_norm = LinkLossNorm::bce;
  run_case("bce_link", c);
}

// Two levels: the link loss exists at the first only, the entropy loss at both (summed).
TEST_F(Reference, BinaryCrossEntropyLinkLossTwoLevels) {
  ModelConfig c = enzymes_config();
  c.pool_levels = 2;
  c.cluster_ratio = 0.25;
  c.link_norm = LinkLossNorm::bce;
  run_case("bce_link_2levels", c);
}

TEST_F(Reference, PerBatchBatchNormTwoLevels) {
  ModelConfig c = enzymes_config();
  c.pool_levels = 2;
  c.cluster_ratio = 0.25;
  c.batch_norm_mode = BatchNormMode::per_batch;
  run_case("per_batch_bn", c);
}

// Per-graph cluster counts: every ENZYMES graph of the batch pools into its own
// ceil(ratio * n_g) clusters, then ceil(ratio * k_g); the reference loops over graphs in PyTorch.
TEST_F(Reference, PerGraphClustersTwoLevels) {
  ModelConfig c = enzymes_config();
  c.pool_levels = 2;
  c.cluster_ratio = 0.25;
  c.cluster_rule = ClusterRule::per_graph;
  run_case("per_graph_2levels", c);
}

TEST_F(Reference, PerGraphClustersBinaryCrossEntropyMeanAggregationCaps) {
  ModelConfig c = enzymes_config();
  c.pool_levels = 2;
  c.cluster_ratio = 0.3;
  c.clusters = {8, 3};  // caps
  c.cluster_rule = ClusterRule::per_graph;
  c.link_norm = LinkLossNorm::bce;
  c.readout = Readout::mean;
  run_case("per_graph_bce_caps", c);
}

}  // namespace
}  // namespace diffpool
