// COLLAB: 49 M lines of gzip text (725 MB inflated), the largest dataset. One load, timed.
#include <gtest/gtest.h>

#include <chrono>

#include "engine/data/dataset.hpp"
#include "tests/data/data_test_util.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

TEST(Collab, LoadsQuicklyAndMatchesOfficialStatistics) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  auto start = std::chrono::steady_clock::now();
  GraphDataset data = load_tu_dataset("COLLAB", options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("load_seconds", std::to_string(seconds));
  std::printf("COLLAB loaded in %.2f s\n", seconds);

  EXPECT_EQ(data.num_graphs(), 5000);
  EXPECT_EQ(data.num_nodes(), 372474);
  // The official 12288916 unique undirected edges include 2837 self-loops, removed by default.
  EXPECT_EQ(data.self_loops_removed, 2837);
  EXPECT_EQ(data.num_directed_edges(), 2 * (12288916 - 2837));
  // 49149990 lines hold 2 * 12286079 + 2837 distinct directed pairs; the rest repeat.
  EXPECT_EQ(data.duplicate_edges_removed, 49149990 - (2 * 12286079 + 2837));
  EXPECT_EQ(testing::class_counts(data), (std::vector<int64_t>{2600, 775, 1625}));
  EXPECT_EQ(data.class_values, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(data.max_nodes(), 492);
  EXPECT_EQ(data.num_features, 10);
  EXPECT_EQ(data.num_node_labels, 0);
  EXPECT_EQ(data.num_node_attributes, 0);
  testing::expect_valid_adjacency(data);
  // Generous bound: about 4 s on one free core here (zlib inflate is most of it).
  EXPECT_LT(seconds, 30.0);
}

}  // namespace
}  // namespace diffpool
