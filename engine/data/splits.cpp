// Stratified k-fold and holdout splits (the paper reports the mean accuracy of 10-fold cross
// validation). All randomness comes from Rng streams derived from (seed, class), so a split depends
// only on the labels, k and the seed, never on the platform.
#include "engine/data/splits.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"

namespace diffpool {

namespace {

// Sub-stream tag of holdout draws, so that they never share random numbers with the fold
// assignment even when both are given the same seed.
constexpr uint64_t kHoldoutStream = 0x686f6c64;  // "hold"

// Indices of each class, in the order given; labels must lie in 0..C-1.
std::vector<std::vector<int64_t>> group_by_class(const std::vector<int64_t>& indices,
                                                 const std::vector<int32_t>& labels) {
  std::vector<std::vector<int64_t>> classes;
  for (int64_t index : indices) {
    DP_CHECK(index >= 0 && index < static_cast<int64_t>(labels.size()), "graph index {} of {} graphs", index,
             labels.size());
    int32_t label = labels[static_cast<std::size_t>(index)];
    if (label < 0) throw InputError(fmt::format("graph {} has a negative class label {}", index, label));
    if (static_cast<std::size_t>(label) >= classes.size()) classes.resize(static_cast<std::size_t>(label) + 1);
    classes[static_cast<std::size_t>(label)].push_back(index);
  }
  return classes;
}

}  // namespace

std::vector<std::vector<int64_t>> stratified_kfold(const std::vector<int32_t>& labels, int k, uint64_t seed) {
  const int64_t num_graphs = static_cast<int64_t>(labels.size());
  if (k < 2 || k > num_graphs) {
    throw InputError(fmt::format("cross-validation needs 2 <= folds <= number of graphs ({}), got {} folds",
                                 num_graphs, k));
  }
  std::vector<int64_t> all(labels.size());
  for (int64_t i = 0; i < num_graphs; ++i) all[static_cast<std::size_t>(i)] = i;
  auto classes = group_by_class(all, labels);

  // Per class: shuffle, then deal round-robin. The deal position carries over from one class to the
  // next, so fold sizes differ by at most one overall and each class by at most one per fold.
  std::vector<std::vector<int64_t>> folds(static_cast<std::size_t>(k));
  std::size_t position = 0;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    Rng rng(Rng::derive(seed, c));
    rng.shuffle(classes[c]);
    for (int64_t index : classes[c]) folds[position++ % static_cast<std::size_t>(k)].push_back(index);
  }
  for (auto& fold : folds) std::sort(fold.begin(), fold.end());
  return folds;
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> stratified_holdout(const std::vector<int64_t>& indices,
                                                                         const std::vector<int32_t>& labels,
                                                                         double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw InputError(fmt::format("holdout fraction must be in [0, 1), got {}", fraction));
  }
  auto classes = group_by_class(indices, labels);
  std::vector<int64_t> rest, holdout;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    auto& members = classes[c];
    std::sort(members.begin(), members.end());  // the draw must not depend on the order of `indices`
    const int64_t n = static_cast<int64_t>(members.size());
    // round(fraction * n), but at least one of a class with two or more graphs and never all of it.
    int64_t take = 0;
    if (fraction > 0.0 && n >= 2) take = std::clamp<int64_t>(std::llround(fraction * static_cast<double>(n)), 1, n - 1);
    Rng rng(Rng::derive(Rng::derive(seed, kHoldoutStream), c));
    rng.shuffle(members);
    holdout.insert(holdout.end(), members.begin(), members.begin() + take);
    rest.insert(rest.end(), members.begin() + take, members.end());
  }
  std::sort(rest.begin(), rest.end());
  std::sort(holdout.begin(), holdout.end());
  return {std::move(rest), std::move(holdout)};
}

Split make_fold_split(const std::vector<int32_t>& labels, int k, int fold, double validation_fraction,
                      uint64_t seed) {
  auto folds = stratified_kfold(labels, k, seed);
  if (fold < 0 || fold >= k) throw InputError(fmt::format("fold {} out of range 0..{}", fold, k - 1));
  Split split;
  split.test = folds[static_cast<std::size_t>(fold)];
  std::vector<int64_t> rest;
  for (int f = 0; f < k; ++f) {
    if (f != fold) rest.insert(rest.end(), folds[static_cast<std::size_t>(f)].begin(), folds[static_cast<std::size_t>(f)].end());
  }
  std::sort(rest.begin(), rest.end());
  if (validation_fraction > 0.0) {
    // Each outer fold draws its own validation set.
    auto [train, validation] =
        stratified_holdout(rest, labels, validation_fraction, Rng::derive(seed, static_cast<uint64_t>(fold) + 1));
    split.train = std::move(train);
    split.validation = std::move(validation);
  } else {
    if (validation_fraction < 0.0) {
      throw InputError(fmt::format("validation fraction must be in [0, 1), got {}", validation_fraction));
    }
    split.train = std::move(rest);
  }
  return split;
}

}  // namespace diffpool
