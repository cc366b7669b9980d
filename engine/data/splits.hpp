#pragma once
// Stratified, seeded splits of graph indices. Every graph appears in exactly one test fold; class
// proportions are kept in every fold (to within one graph per class).
//
// Implementation notes (splits.cpp): class c's graphs are shuffled with Rng(Rng::derive(seed, c)) and
// dealt round-robin over the folds, the deal position carrying over from class to class. Labels must
// be >= 0. Bad arguments (k outside 2..num_graphs, fold outside 0..k-1, a fraction outside [0, 1))
// throw InputError. Every returned index list is sorted ascending.
#include <cstdint>
#include <utility>
#include <vector>

namespace diffpool {

struct Split {
  std::vector<int64_t> train;
  std::vector<int64_t> validation;  // may be empty
  std::vector<int64_t> test;
};

// k stratified folds of all graphs: fold f's test set is the f-th part, train is the rest.
// Same labels, k and seed give the same folds on every machine.
std::vector<std::vector<int64_t>> stratified_kfold(const std::vector<int32_t>& labels, int k, uint64_t seed);

// Splits `indices` into (rest, holdout) with about `fraction` of each class in the holdout
// (at least one graph of a class with two or more). Used for inner validation sets.
// Per class of n graphs: round(fraction * n) clamped to [1, n - 1] (none for n = 1 or fraction 0).
// The result depends on the set of indices, not on their order.
std::pair<std::vector<int64_t>, std::vector<int64_t>> stratified_holdout(const std::vector<int64_t>& indices,
                                                                         const std::vector<int32_t>& labels,
                                                                         double fraction, uint64_t seed);

// Outer fold `fold` of a stratified k-fold split: test = that fold; the remaining graphs are split
// into train and validation by stratified_holdout(validation_fraction) (no validation when 0).
Split make_fold_split(const std::vector<int32_t>& labels, int k, int fold, double validation_fraction,
                      uint64_t seed);

}  // namespace diffpool
