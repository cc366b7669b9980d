#include "engine/nn/model_config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {
// Variant names are matched case-insensitively, with '_' read as '-' (diffpool_nolp).
std::string normalize_variant(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return c == '_' ? '-' : std::tolower(c); });
  return t;
}
}  // namespace

const EnumNames<Variant>& variant_names() {
  static const EnumNames<Variant> names("model variant",
                                        {{"diffpool", Variant::diffpool},
                                         {"diffpool-nolp", Variant::diffpool_nolp},
                                         {"diffpool-det", Variant::diffpool_det},
                                         {"graphsage", Variant::graphsage}},
                                        {}, normalize_variant);
  return names;
}
const char* variant_name(Variant v) { return variant_names().name(v); }
Variant parse_variant(const std::string& text) { return variant_names().parse(text); }

const EnumNames<Readout>& readout_names() {
  static const EnumNames<Readout> names("readout", {{"max", Readout::max}, {"mean", Readout::mean}, {"sum", Readout::sum}});
  return names;
}
const char* readout_name(Readout r) { return readout_names().name(r); }
Readout parse_readout(const std::string& text) { return readout_names().parse(text); }

const EnumNames<LinkLossNorm>& link_loss_norm_names() {
  static const EnumNames<LinkLossNorm> names("link-prediction loss norm",
                                             {{"frobenius", LinkLossNorm::frobenius},
                                              {"frobenius_squared", LinkLossNorm::frobenius_squared},
                                              {"per_entry", LinkLossNorm::per_entry},
                                              {"bce", LinkLossNorm::bce}});
  return names;
}
const char* link_loss_norm_name(LinkLossNorm n) { return link_loss_norm_names().name(n); }
LinkLossNorm parse_link_loss_norm(const std::string& text) { return link_loss_norm_names().parse(text); }

const EnumNames<DenseAggregation>& dense_aggregation_names() {
  static const EnumNames<DenseAggregation> names("dense aggregation",
                                                 {{"mean", DenseAggregation::mean}, {"sum", DenseAggregation::sum}});
  return names;
}
const char* dense_aggregation_name(DenseAggregation a) { return dense_aggregation_names().name(a); }
DenseAggregation parse_dense_aggregation(const std::string& text) { return dense_aggregation_names().parse(text); }

const EnumNames<BatchNormMode>& batch_norm_mode_names() {
  static const EnumNames<BatchNormMode> names("batch norm mode",
                                              {{"trained", BatchNormMode::trained}, {"per_batch", BatchNormMode::per_batch}});
  return names;
}
const char* batch_norm_mode_name(BatchNormMode m) { return batch_norm_mode_names().name(m); }
BatchNormMode parse_batch_norm_mode(const std::string& text) { return batch_norm_mode_names().parse(text); }

const EnumNames<ClusterRule>& cluster_rule_names() {
  static const EnumNames<ClusterRule> names("cluster rule", {{"largest_graph", ClusterRule::largest_graph},
                                                             {"per_graph", ClusterRule::per_graph}});
  return names;
}
const char* cluster_rule_name(ClusterRule r) { return cluster_rule_names().name(r); }
ClusterRule parse_cluster_rule(const std::string& text) { return cluster_rule_names().parse(text); }

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
  namespace limits = model_limits;
  limits::pool_levels.check("model.pool_levels", pool_levels);
  if (variant != Variant::graphsage && pool_levels == 0)
    throw InputError(fmt::format("model.pool_levels = 0 with variant {}: DiffPool variants need at least one level (use variant graphsage)",
                                 variant_name(variant)));
  if (conv_layers.empty()) throw InputError("model.conv_layers is empty: give at least one layer count");
  for (int c : conv_layers) limits::conv_layers.check("model.conv_layers entry", c);
  limits::width.check("model.hidden_dim", hidden_dim);
  limits::width.check("model.embedding_dim", embedding_dim);
  limits::cluster_ratio.check("model.cluster_ratio", cluster_ratio);
  for (int64_t k : clusters) limits::clusters.check("model.clusters entry", k);
  for (int h : mlp_hidden) limits::width.check("model.mlp_hidden entry", h);
  limits::dropout.check("model.dropout", dropout);
  limits::loss_weight.check("model.link_weight", link_weight);
  limits::loss_weight.check("model.entropy_weight", entropy_weight);
  limits::dense_degree_eps.check("model.dense_degree_eps", dense_degree_eps);
  limits::batch_norm_momentum.check("model.batch_norm_momentum", batch_norm_momentum);
  limits::batch_norm_eps.check("model.batch_norm_eps", batch_norm_eps);
}

}  // namespace diffpool
