#pragma once
// Small synthetic graph datasets for tests: graphs of chosen, unequal sizes with random edges,
// random features and labels, built in memory (no files).
#include <algorithm>
#include <set>
#include <vector>

#include "engine/core/random.hpp"
#include "engine/data/dataset.hpp"

namespace diffpool::testing {

inline GraphDataset synthetic_dataset(const std::vector<int64_t>& sizes, int64_t features, int classes,
                                      uint64_t seed, double edge_probability = 0.35) {
  Rng rng(seed);
  GraphDataset d;
  d.name = "synthetic";
  d.num_features = features;
  d.node_offsets.push_back(0);
  d.adjacency_offsets.push_back(0);
  for (std::size_t g = 0; g < sizes.size(); ++g) {
    const int64_t n = sizes[g], base = d.node_offsets.back();
    std::vector<std::set<int32_t>> nbr(static_cast<std::size_t>(n));
    for (int64_t u = 0; u < n; ++u)
      for (int64_t v = u + 1; v < n; ++v)
        if (rng.uniform() < edge_probability || v == u + 1) {  // a path keeps every graph connected
          nbr[static_cast<std::size_t>(u)].insert(static_cast<int32_t>(base + v));
          nbr[static_cast<std::size_t>(v)].insert(static_cast<int32_t>(base + u));
        }
    for (int64_t u = 0; u < n; ++u) {
      for (int32_t v : nbr[static_cast<std::size_t>(u)]) d.adjacency_targets.push_back(v);
      d.adjacency_offsets.push_back(static_cast<int64_t>(d.adjacency_targets.size()));
    }
    d.node_offsets.push_back(base + n);
    d.labels.push_back(static_cast<int32_t>(g % static_cast<std::size_t>(classes)));
  }
  for (int c = 0; c < classes; ++c) d.class_values.push_back(std::to_string(c + 1));
  d.features.resize(static_cast<std::size_t>(d.num_nodes() * features));
  for (float& x : d.features) x = static_cast<float>(rng.uniform(-1.0, 1.0));
  d.feature_description = "random";
  return d;
}

}  // namespace diffpool::testing
