#include "engine/nn/model_config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>
#include <cmath>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {
template <class E, std::size_t N>
E parse_enum(const std::string& text, const char* what, const std::array<std::pair<const char*, E>, N>& table) {
  for (const auto& [name, value] : table)
    if (text == name) return value;
  std::string allowed;
  for (const auto& [name, value] : table) allowed += fmt::format("{}{}", allowed.empty() ? "" : ", ", name);
  throw InputError(fmt::format("unknown {} '{}': expected one of {}", what, text, allowed));
}
}  // namespace

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::diffpool: return "diffpool";
    case Variant::diffpool_nolp: return "diffpool-nolp";
    case Variant::diffpool_det: return "diffpool-det";
    case Variant::graphsage: return "graphsage";
  }
  return "invalid";
}
Variant parse_variant(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return c == '_' ? '-' : std::tolower(c); });
  static constexpr std::array<std::pair<const char*, Variant>, 4> table{{{"diffpool", Variant::diffpool},
                                                                         {"diffpool-nolp", Variant::diffpool_nolp},
                                                                         {"diffpool-det", Variant::diffpool_det},
                                                                         {"graphsage", Variant::graphsage}}};
  return parse_enum(t, "model variant", table);
}

const char* readout_name(Readout r) {
  switch (r) {
    case Readout::max: return "max";
    case Readout::mean: return "mean";
    case Readout::sum: return "sum";
  }
  return "invalid";
}
Readout parse_readout(const std::string& text) {
  static constexpr std::array<std::pair<const char*, Readout>, 3> table{
      {{"max", Readout::max}, {"mean", Readout::mean}, {"sum", Readout::sum}}};
  return parse_enum(text, "readout", table);
}

const char* link_loss_norm_name(LinkLossNorm n) {
  switch (n) {
    case LinkLossNorm::frobenius: return "frobenius";
    case LinkLossNorm::frobenius_squared: return "frobenius_squared";
    case LinkLossNorm::per_entry: return "per_entry";
    case LinkLossNorm::bce: return "bce";
  }
  return "invalid";
}
LinkLossNorm parse_link_loss_norm(const std::string& text) {
  static constexpr std::array<std::pair<const char*, LinkLossNorm>, 4> table{
      {{"frobenius", LinkLossNorm::frobenius},
       {"frobenius_squared", LinkLossNorm::frobenius_squared},
       {"per_entry", LinkLossNorm::per_entry},
       {"bce", LinkLossNorm::bce}}};
  return parse_enum(text, "link-prediction loss norm", table);
}

const char* dense_aggregation_name(DenseAggregation a) { return a == DenseAggregation::mean ? "mean" : "sum"; }
DenseAggregation parse_dense_aggregation(const std::string& text) {
  static constexpr std::array<std::pair<const char*, DenseAggregation>, 2> table{
      {{"mean", DenseAggregation::mean}, {"sum", DenseAggregation::sum}}};
  return parse_enum(text, "dense aggregation", table);
}

const char* batch_norm_mode_name(BatchNormMode m) { return m == BatchNormMode::trained ? "trained" : "per_batch"; }
BatchNormMode parse_batch_norm_mode(const std::string& text) {
  static constexpr std::array<std::pair<const char*, BatchNormMode>, 2> table{
      {{"trained", BatchNormMode::trained}, {"per_batch", BatchNormMode::per_batch}}};
  return parse_enum(text, "batch norm mode", table);
}

const char* cluster_rule_name(ClusterRule r) { return r == ClusterRule::largest_graph ? "largest_graph" : "per_graph"; }
ClusterRule parse_cluster_rule(const std::string& text) {
  static constexpr std::array<std::pair<const char*, ClusterRule>, 2> table{
      {{"largest_graph", ClusterRule::largest_graph}, {"per_graph", ClusterRule::per_graph}}};
  return parse_enum(text, "cluster rule", table);
}

int64_t ModelConfig::clusters_for(int level, int64_t rows) const {
  // ceil of ratio * rows, robust to the rounding of the product (0.1 * 30 is 3.0000000000000004).
  const double scaled = cluster_ratio * static_cast<double>(rows);
  int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(scaled - 1e-9 * std::max(1.0, scaled))));
  if (!clusters.empty()) k = std::min(k, clusters[std::min<std::size_t>(static_cast<std::size_t>(level), clusters.size() - 1)]);
  return k;
}

int ModelConfig::conv_layers_at(int level) const {
  if (conv_layers.empty()) return 1;
  return conv_layers[std::min<std::size_t>(static_cast<std::size_t>(level), conv_layers.size() - 1)];
}

std::vector<int64_t> ModelConfig::cluster_counts(int64_t max_nodes) const {
  std::vector<int64_t> out;
  if (!has_pooling()) return out;
  if (cluster_rule == ClusterRule::per_graph) {
    int64_t rows = max_nodes;  // ceil is monotone: the largest graph needs the most clusters at every level
    for (int l = 0; l < pool_levels; ++l) out.push_back(rows = clusters_for(l, rows));
    return out;
  }
  if (!clusters.empty()) {
    for (int l = 0; l < pool_levels; ++l)
      out.push_back(clusters[std::min<std::size_t>(static_cast<std::size_t>(l), clusters.size() - 1)]);
    return out;
  }
  // The authors' rule: k_1 = int(max_nodes * ratio), k_{l+1} = int(k_l * ratio), at least 1.
  double previous = static_cast<double>(max_nodes);
  for (int l = 0; l < pool_levels; ++l) {
    const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::floor(previous * cluster_ratio)));
    out.push_back(k);
    previous = static_cast<double>(k);
  }
  return out;
}

void ModelConfig::validate() const {
  auto fail = [](const std::string& message) { throw InputError(message); };
  if (pool_levels < 0 || pool_levels > 8) fail(fmt::format("model.pool_levels = {}: allowed 0 to 8", pool_levels));
  if (variant != Variant::graphsage && pool_levels == 0)
    fail(fmt::format("model.pool_levels = 0 with variant {}: DiffPool variants need at least one level (use variant graphsage)",
                     variant_name(variant)));
  for (int c : conv_layers)
    if (c < 1 || c > 16) fail(fmt::format("model.conv_layers entry {}: allowed 1 to 16", c));
  if (hidden_dim < 1) fail(fmt::format("model.hidden_dim = {}: must be at least 1", hidden_dim));
  if (embedding_dim < 1) fail(fmt::format("model.embedding_dim = {}: must be at least 1", embedding_dim));
  if (!(cluster_ratio > 0.0 && cluster_ratio <= 1.0))
    fail(fmt::format("model.cluster_ratio = {}: allowed (0, 1]", cluster_ratio));
  for (int64_t k : clusters)
    if (k < 1) fail(fmt::format("model.clusters entry {}: must be at least 1", k));
  for (int h : mlp_hidden)
    if (h < 1) fail(fmt::format("model.mlp_hidden entry {}: must be at least 1", h));
  if (!(dropout >= 0.0 && dropout < 1.0)) fail(fmt::format("model.dropout = {}: allowed [0, 1)", dropout));
  if (!(link_weight >= 0.0)) fail(fmt::format("model.link_weight = {}: must be >= 0", link_weight));
  if (!(entropy_weight >= 0.0)) fail(fmt::format("model.entropy_weight = {}: must be >= 0", entropy_weight));
  if (!(dense_degree_eps > 0.0)) fail(fmt::format("model.dense_degree_eps = {}: must be > 0", dense_degree_eps));
}

}  // namespace diffpool
