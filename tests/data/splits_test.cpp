// Stratified k-fold and holdout splits.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/data/splits.hpp"

namespace diffpool {
namespace {

// Unbalanced classes, interleaved: 50 of class 0, 30 of class 1, 23 of class 2, 1 of class 3.
std::vector<int32_t> unbalanced_labels() {
  std::vector<int32_t> labels;
  for (int i = 0; i < 50; ++i) labels.push_back(0);
  for (int i = 0; i < 30; ++i) labels.push_back(1);
  for (int i = 0; i < 23; ++i) labels.push_back(2);
  labels.push_back(3);
  Rng rng(7);
  rng.shuffle(labels);
  return labels;
}

int64_t count_class(const std::vector<int64_t>& indices, const std::vector<int32_t>& labels, int32_t c) {
  return std::count_if(indices.begin(), indices.end(), [&](int64_t i) { return labels[i] == c; });
}

TEST(Splits, KFoldPartitionsAndStratifies) {
  auto labels = unbalanced_labels();
  for (int k : {2, 3, 5, 10}) {
    auto folds = stratified_kfold(labels, k, 1234);
    ASSERT_EQ(static_cast<int>(folds.size()), k);
    std::vector<int> seen(labels.size(), 0);
    size_t smallest = labels.size(), largest = 0;
    for (const auto& fold : folds) {
      EXPECT_TRUE(std::is_sorted(fold.begin(), fold.end()));
      for (int64_t i : fold) ++seen.at(i);
      smallest = std::min(smallest, fold.size());
      largest = std::max(largest, fold.size());
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(labels.size())) << "k=" << k;
    EXPECT_LE(largest - smallest, 1u) << "k=" << k;
    for (int32_t c = 0; c < 4; ++c) {
      int64_t lo = INT64_MAX, hi = 0;
      for (const auto& fold : folds) {
        lo = std::min(lo, count_class(fold, labels, c));
        hi = std::max(hi, count_class(fold, labels, c));
      }
      EXPECT_LE(hi - lo, 1) << "class " << c << " k=" << k;
    }
  }
}

TEST(Splits, KFoldIsDeterministicAndSeeded) {
  auto labels = unbalanced_labels();
  EXPECT_EQ(stratified_kfold(labels, 10, 42), stratified_kfold(labels, 10, 42));
  EXPECT_NE(stratified_kfold(labels, 10, 42), stratified_kfold(labels, 10, 43));
}

TEST(Splits, KFoldKnownSmallCase) {
  // Two classes of two: the deal goes class 0 then class 1 round-robin over 2 folds, so each fold
  // holds one graph of each class.
  std::vector<int32_t> labels = {0, 1, 0, 1};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto folds = stratified_kfold(labels, 2, seed);
    for (const auto& fold : folds) {
      ASSERT_EQ(fold.size(), 2u);
      EXPECT_EQ(count_class(fold, labels, 0), 1);
      EXPECT_EQ(count_class(fold, labels, 1), 1);
    }
  }
}

TEST(Splits, KFoldRejectsBadK) {
  std::vector<int32_t> labels = {0, 1, 0};
  EXPECT_THROW(stratified_kfold(labels, 1, 0), InputError);
  EXPECT_THROW(stratified_kfold(labels, 4, 0), InputError);
  EXPECT_NO_THROW(stratified_kfold(labels, 3, 0));
  EXPECT_THROW(stratified_kfold({0, -1, 0}, 2, 0), InputError);
}

TEST(Splits, HoldoutProportions) {
  auto labels = unbalanced_labels();
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); i += 1) indices.push_back(i);
  auto [rest, holdout] = stratified_holdout(indices, labels, 0.1, 5);
  EXPECT_TRUE(std::is_sorted(rest.begin(), rest.end()));
  EXPECT_TRUE(std::is_sorted(holdout.begin(), holdout.end()));
  std::vector<int64_t> all = rest;
  all.insert(all.end(), holdout.begin(), holdout.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, indices);
  // round(0.1 * n) per class, at least one of a class with two or more, none of a singleton class.
  EXPECT_EQ(count_class(holdout, labels, 0), 5);
  EXPECT_EQ(count_class(holdout, labels, 1), 3);
  EXPECT_EQ(count_class(holdout, labels, 2), 2);
  EXPECT_EQ(count_class(holdout, labels, 3), 0);

  auto again = stratified_holdout(indices, labels, 0.1, 5);
  EXPECT_EQ(again.second, holdout);
  // The draw depends on the set of indices, not their order.
  std::vector<int64_t> reversed(indices.rbegin(), indices.rend());
  EXPECT_EQ(stratified_holdout(reversed, labels, 0.1, 5).second, holdout);

  auto tiny = stratified_holdout(indices, labels, 0.001, 5);
  EXPECT_EQ(count_class(tiny.second, labels, 0), 1);  // at least one per class of two or more
  EXPECT_EQ(count_class(tiny.second, labels, 3), 0);
  EXPECT_TRUE(stratified_holdout(indices, labels, 0.0, 5).second.empty());
  EXPECT_THROW(stratified_holdout(indices, labels, 1.0, 5), InputError);
  EXPECT_THROW(stratified_holdout(indices, labels, -0.1, 5), InputError);
}

TEST(Splits, FoldSplitCoversEverythingOnce) {
  auto labels = unbalanced_labels();
  const int k = 10;
  std::vector<int> in_test(labels.size(), 0);
  for (int fold = 0; fold < k; ++fold) {
    Split split = make_fold_split(labels, k, fold, 0.1, 99);
    EXPECT_EQ(split.test, stratified_kfold(labels, k, 99)[fold]);
    for (int64_t i : split.test) ++in_test[i];
    std::vector<int64_t> all = split.train;
    all.insert(all.end(), split.validation.begin(), split.validation.end());
    all.insert(all.end(), split.test.begin(), split.test.end());
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), labels.size());
    for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<int64_t>(i)) << "fold " << fold;
    EXPECT_NEAR(static_cast<double>(split.validation.size()), 0.1 * (labels.size() - split.test.size()), 2.0);
    EXPECT_EQ(make_fold_split(labels, k, fold, 0.1, 99).validation, split.validation);
    Split no_validation = make_fold_split(labels, k, fold, 0.0, 99);
    EXPECT_TRUE(no_validation.validation.empty());
    EXPECT_EQ(no_validation.train.size() + no_validation.test.size(), labels.size());
  }
  EXPECT_EQ(std::count(in_test.begin(), in_test.end(), 1), static_cast<long>(labels.size()));
  EXPECT_THROW(make_fold_split(labels, k, k, 0.1, 99), InputError);
  EXPECT_THROW(make_fold_split(labels, k, -1, 0.1, 99), InputError);
}

}  // namespace
}  // namespace diffpool
