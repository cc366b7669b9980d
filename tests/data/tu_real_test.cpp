// The real TU datasets from $DIFFPOOL_DATA against the official statistics (see
// shared/datasets/README.md). COLLAB, the big one, is in tu_collab_test.cpp.
#include <gtest/gtest.h>

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"

#include "engine/data/batch.hpp"
#include "engine/data/dataset.hpp"
#include "tests/data/data_test_util.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

struct Expected {
  const char* name;
  int64_t graphs;
  int64_t nodes;
  int64_t edges;  // unique undirected, self-loops removed
  std::vector<int64_t> class_counts;
  std::vector<std::string> class_values;
  int64_t max_nodes;
  int64_t features;  // width with FeatureMode::automatic
  int64_t node_labels;
  int64_t node_attributes;
  int64_t duplicates;
  const char* description;
  bool sparse_only;  // no batch can take level 0's dense path (engine/data/batch.hpp)
};

const std::vector<Expected>& expected_datasets() {
  static const std::vector<Expected> table = {
      {"ENZYMES", 600, 19580, 37282, {100, 100, 100, 100, 100, 100}, {"1", "2", "3", "4", "5", "6"}, 126, 21, 3, 18, 0,
       "3 node-label one-hot + 18 attributes", true},
      {"PROTEINS", 1113, 43471, 81044, {663, 450}, {"1", "2"}, 620, 4, 3, 1, 0, "3 node-label one-hot + 1 attribute", true},
      {"DD", 1178, 334925, 843046, {691, 487}, {"1", "2"}, 5748, 82, 82, 0, 0, "82 node-label one-hot", true},
      {"NCI1", 4110, 122747, 132753, {2053, 2057}, {"0", "1"}, 111, 37, 37, 0, 0, "37 node-label one-hot", true},
      {"MUTAG", 188, 3371, 3721, {63, 125}, {"-1", "1"}, 28, 7, 7, 0, 0, "7 node-label one-hot", true},
      // The social datasets list every edge 4 times: each directed pair twice.
      {"IMDB-BINARY", 1000, 19773, 96531, {500, 500}, {"0", "1"}, 136, 10, 0, 0, 2 * 96531,
       "10 constant ones (no node labels or attributes)", false},
      {"IMDB-MULTI", 1500, 19502, 98903, {500, 500, 500}, {"1", "2", "3"}, 89, 10, 0, 0, 2 * 98903,
       "10 constant ones (no node labels or attributes)", false},
      {"REDDIT-BINARY", 2000, 859254, 995508, {1000, 1000}, {"-1", "1"}, 3782, 10, 0, 0, 2 * 995508,
       "10 constant ones (no node labels or attributes)", true},
  };
  return table;
}

class RealDataset : public ::testing::TestWithParam<Expected> {};

TEST_P(RealDataset, MatchesOfficialStatistics) {
  const Expected& e = GetParam();
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  auto start = std::chrono::steady_clock::now();
  GraphDataset data = load_tu_dataset(e.name, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("load_seconds", std::to_string(seconds));
  std::printf("%s loaded in %.2f s\n", e.name, seconds);

  EXPECT_EQ(data.name, e.name);
  EXPECT_EQ(data.num_graphs(), e.graphs);
  EXPECT_EQ(data.num_nodes(), e.nodes);
  EXPECT_EQ(data.num_directed_edges(), 2 * e.edges);
  EXPECT_EQ(testing::undirected_edges(data), e.edges);
  EXPECT_EQ(data.self_loops_removed, 0);
  EXPECT_EQ(data.duplicate_edges_removed, e.duplicates);
  EXPECT_EQ(testing::class_counts(data), e.class_counts);
  EXPECT_EQ(data.class_values, e.class_values);
  EXPECT_EQ(data.max_nodes(), e.max_nodes);
  EXPECT_EQ(data.num_features, e.features);
  EXPECT_EQ(data.num_node_labels, e.node_labels);
  EXPECT_EQ(data.num_node_attributes, e.node_attributes);
  EXPECT_EQ(data.feature_description, e.description);
  EXPECT_EQ(static_cast<int64_t>(data.features.size()), e.nodes * e.features);
  ASSERT_EQ(static_cast<int64_t>(data.node_offsets.size()), e.graphs + 1);
  for (int64_t g = 0; g < data.num_graphs(); ++g) ASSERT_GT(data.num_nodes(g), 0) << "graph " << g;
  testing::expect_valid_adjacency(data);

  // Every feature row: exactly one label column set (when there are labels), finite values.
  int64_t bad_rows = 0;
  for (int64_t v = 0; v < data.num_nodes(); ++v) {
    const float* row = data.features.data() + v * data.num_features;
    if (e.node_labels > 0) {
      float sum = 0;
      for (int64_t c = 0; c < e.node_labels; ++c) sum += row[c];
      bad_rows += sum != 1.0f;
    }
    for (int64_t c = 0; c < data.num_features; ++c) bad_rows += !std::isfinite(row[c]);
  }
  EXPECT_EQ(bad_rows, 0);

  // A batch's neighbours per node and its fill (sum n_g^2 / nnz) are weighted means of its graphs',
  // so where every graph has fewer than dense_min_degree neighbours per node, or every graph fills
  // more than dense_max_fill, no batch takes the dense path and results stay those of the CSR path.
  bool all_under_degree = true, all_over_fill = true;
  for (int64_t g = 0; g < data.num_graphs(); ++g) {
    const int64_t n = data.num_nodes(g), base = data.node_offsets[static_cast<std::size_t>(g)];
    const int64_t nnz = data.adjacency_offsets[static_cast<std::size_t>(base + n)] -
                        data.adjacency_offsets[static_cast<std::size_t>(base)];
    all_under_degree = all_under_degree && nnz < dense_min_degree * n;
    all_over_fill = all_over_fill && n * n > dense_max_fill * nnz;
  }
  EXPECT_EQ(all_under_degree || all_over_fill, e.sparse_only);
}

INSTANTIATE_TEST_SUITE_P(Tu, RealDataset, ::testing::ValuesIn(expected_datasets()),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(RealDatasetDetails, EnzymesFirstNodeAndGraph) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  GraphDataset data = load_tu_dataset("ENZYMES", options);
  EXPECT_EQ(data.source_dir, (std::filesystem::path(testing::data_dir()) / "ENZYMES").string());
  // ENZYMES_node_labels.txt line 1 is "1" (the first of 1..3), and the attributes line 1 starts
  // " 11.000000, 15.887014, 37.780000, -0.510000".
  const float* row = data.features.data();
  EXPECT_EQ(row[0], 1.0f);
  EXPECT_EQ(row[1], 0.0f);
  EXPECT_EQ(row[2], 0.0f);
  EXPECT_FLOAT_EQ(row[3], 11.0f);
  EXPECT_FLOAT_EQ(row[4], 15.887014f);
  EXPECT_FLOAT_EQ(row[5], 37.78f);
  EXPECT_FLOAT_EQ(row[6], -0.51f);
  EXPECT_EQ(data.labels[0], 5);  // raw label 6
}

// dataset.max_nodes (the authors' --max-nodes): graphs above it are dropped; every kept graph
// has exactly its original nodes, features, label and edges, renumbered.
TEST(RealDatasetDetails, MaxNodesDropsLargerGraphsOnly) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  const GraphDataset all = load_tu_dataset("MUTAG", options);
  options.max_nodes = 20;
  const GraphDataset kept = load_tu_dataset("MUTAG", options);
  int64_t small = 0;
  for (int64_t g = 0; g < all.num_graphs(); ++g) small += all.num_nodes(g) <= 20;
  ASSERT_GT(small, 0);
  ASSERT_LT(small, all.num_graphs());
  EXPECT_EQ(kept.num_graphs(), small);
  EXPECT_EQ(kept.graphs_dropped, all.num_graphs() - small);
  EXPECT_LE(kept.max_nodes(), 20);
  ASSERT_EQ(static_cast<int64_t>(kept.source_graph.size()), small);
  EXPECT_EQ(kept.num_classes(), all.num_classes());
  const auto width = static_cast<std::size_t>(all.num_features);
  for (int64_t g = 0; g < kept.num_graphs(); ++g) {
    const int64_t s = kept.source_graph[static_cast<std::size_t>(g)];
    SCOPED_TRACE(::testing::Message() << "graph " << g << " (file graph " << s << ")");
    ASSERT_EQ(kept.num_nodes(g), all.num_nodes(s));
    EXPECT_EQ(kept.labels[static_cast<std::size_t>(g)], all.labels[static_cast<std::size_t>(s)]);
    const int64_t shift = all.node_offsets[static_cast<std::size_t>(s)] - kept.node_offsets[static_cast<std::size_t>(g)];
    for (int64_t v = kept.node_offsets[static_cast<std::size_t>(g)]; v < kept.node_offsets[static_cast<std::size_t>(g) + 1]; ++v) {
      const auto kv = static_cast<std::size_t>(v), av = static_cast<std::size_t>(v + shift);
      std::vector<int64_t> mine, theirs;
      for (int64_t e = kept.adjacency_offsets[kv]; e < kept.adjacency_offsets[kv + 1]; ++e)
        mine.push_back(kept.adjacency_targets[static_cast<std::size_t>(e)] + shift);
      for (int64_t e = all.adjacency_offsets[av]; e < all.adjacency_offsets[av + 1]; ++e)
        theirs.push_back(all.adjacency_targets[static_cast<std::size_t>(e)]);
      EXPECT_EQ(mine, theirs) << "node " << v;
      EXPECT_TRUE(std::equal(kept.features.begin() + static_cast<std::ptrdiff_t>(kv * width),
                             kept.features.begin() + static_cast<std::ptrdiff_t>((kv + 1) * width),
                             all.features.begin() + static_cast<std::ptrdiff_t>(av * width)));
    }
  }
  options.max_nodes = 5;  // MUTAG's smallest graph has 10 nodes
  try {
    load_tu_dataset("MUTAG", options);
    ADD_FAILURE() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dataset.max_nodes = 5 drops every graph"), std::string::npos) << e.what();
  }
}

TEST(RealDatasetDetails, MutagFirstGraph) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  GraphDataset data = load_tu_dataset("MUTAG", options);
  EXPECT_EQ(data.num_nodes(0), 17);
  EXPECT_EQ(data.labels[0], 1);  // raw label 1 of {-1, 1}
  EXPECT_EQ(data.labels[1], 0);
  // MUTAG_A.txt starts "2, 1 / 1, 2 / 3, 2 / ... / 6, 1 / 1, 6": node 1 (id 0) has neighbours 2 and 6.
  std::vector<int32_t> row0(data.adjacency_targets.begin() + data.adjacency_offsets[0],
                            data.adjacency_targets.begin() + data.adjacency_offsets[1]);
  EXPECT_EQ(row0, (std::vector<int32_t>{1, 5}));
}

TEST(RealDatasetDetails, ImdbDegreeFeatures) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  options.features = FeatureMode::degree;
  options.degree_cap = 16;
  GraphDataset data = load_tu_dataset("IMDB-BINARY", options);
  ASSERT_EQ(data.num_features, 16);
  int64_t capped = 0;
  for (int64_t v = 0; v < data.num_nodes(); ++v) {
    int64_t degree = data.adjacency_offsets[v + 1] - data.adjacency_offsets[v];
    const float* row = data.features.data() + v * 16;
    int64_t column = std::min<int64_t>(degree, 15);
    capped += degree >= 15;
    for (int64_t c = 0; c < 16; ++c) ASSERT_EQ(row[c], c == column ? 1.0f : 0.0f) << "node " << v;
  }
  EXPECT_GT(capped, 0);
  EXPECT_EQ(data.feature_description, "16 degree one-hot (degrees >= 15 share the last column)");
}

TEST(RealDatasetDetails, ProteinsFeatureModes) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  options.features = FeatureMode::node_labels;
  EXPECT_EQ(load_tu_dataset("PROTEINS", options).num_features, 3);
  options.features = FeatureMode::node_attributes;
  EXPECT_EQ(load_tu_dataset("PROTEINS", options).num_features, 1);
  options.features = FeatureMode::labels_and_attributes;
  EXPECT_EQ(load_tu_dataset("PROTEINS", options).num_features, 4);
  options.features = FeatureMode::constant;
  options.constant_dim = 3;
  GraphDataset data = load_tu_dataset("PROTEINS", options);
  EXPECT_EQ(data.num_features, 3);
  EXPECT_EQ(data.feature_description, "3 constant ones");
  EXPECT_EQ(data.num_node_labels, 3);  // still reported
}

// A copy of ENZYMES with every file gzip-compressed reads exactly like the original; so does a copy
// whose _A.txt lines are shuffled (graphs no longer in contiguous blocks).
TEST(RealDatasetDetails, EnzymesGzipAndShuffledCopies) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  GraphDataset original = load_tu_dataset("ENZYMES", options);

  testing::TempDir gzip_dir, shuffled_dir;
  auto source = std::filesystem::path(testing::data_dir()) / "ENZYMES";
  for (const char* part : {"A", "graph_indicator", "graph_labels", "node_labels", "node_attributes"}) {
    std::string file = std::string("ENZYMES_") + part + ".txt";
    std::string content = testing::read_file(source / file);
    auto target = gzip_dir.path() / "ENZYMES" / (file + ".gz");
    std::filesystem::create_directories(target.parent_path());
    gzFile out = gzopen(target.string().c_str(), "wb1");
    ASSERT_NE(out, nullptr);
    ASSERT_EQ(gzwrite(out, content.data(), static_cast<unsigned>(content.size())), static_cast<int>(content.size()));
    ASSERT_EQ(gzclose(out), Z_OK);
    if (std::string(part) == "A") {
      std::vector<std::string> lines;
      for (size_t begin = 0; begin < content.size();) {
        size_t end = content.find('\n', begin);
        lines.push_back(content.substr(begin, end - begin));
        begin = end + 1;
      }
      Rng(5).shuffle(lines);
      std::string shuffled;
      for (const auto& line : lines) shuffled += line + "\n";
      testing::write_file(shuffled_dir.path() / "ENZYMES" / file, shuffled);
    } else {
      std::filesystem::create_directories(shuffled_dir.path() / "ENZYMES");
      std::filesystem::copy_file(source / file, shuffled_dir.path() / "ENZYMES" / file);
    }
  }
  for (const auto* dir : {&gzip_dir, &shuffled_dir}) {
    options.data_dir = dir->path().string();
    GraphDataset copy = load_tu_dataset("ENZYMES", options);
    EXPECT_EQ(copy.node_offsets, original.node_offsets);
    EXPECT_EQ(copy.adjacency_offsets, original.adjacency_offsets);
    EXPECT_EQ(copy.adjacency_targets, original.adjacency_targets);
    EXPECT_EQ(copy.labels, original.labels);
    EXPECT_EQ(copy.features, original.features);
    EXPECT_EQ(copy.feature_description, original.feature_description);
  }
}

}  // namespace
}  // namespace diffpool
