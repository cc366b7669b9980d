#pragma once
// Helpers for the data tests: temporary dataset folders and adjacency invariants.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/data/dataset.hpp"

namespace diffpool::testing {

// A fresh folder under the system temp dir, removed (with its contents) when the object dies.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("diffpool-data-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// CSR invariants: rows sorted and unique, symmetric, inside the node's own graph, no self-loops
// unless allowed.
inline void expect_valid_adjacency(const GraphDataset& data, bool allow_self_loops = false) {
  const int64_t n = data.num_nodes();
  ASSERT_EQ(static_cast<int64_t>(data.adjacency_offsets.size()), n + 1);
  ASSERT_EQ(data.adjacency_offsets.front(), 0);
  ASSERT_EQ(data.adjacency_offsets.back(), data.num_directed_edges());
  int64_t graph = 0;
  int64_t bad = 0;  // counted instead of one EXPECT per edge, to keep failures readable
  for (int64_t v = 0; v < n; ++v) {
    while (data.node_offsets[graph + 1] <= v) ++graph;
    const int64_t first = data.node_offsets[graph], last = data.node_offsets[graph + 1];
    const int32_t* begin = data.adjacency_targets.data() + data.adjacency_offsets[v];
    const int32_t* end = data.adjacency_targets.data() + data.adjacency_offsets[v + 1];
    for (const int32_t* p = begin; p < end; ++p) {
      if (p > begin && p[-1] >= *p) ++bad;                    // sorted, unique
      if (*p < first || *p >= last) ++bad;                     // same graph
      if (!allow_self_loops && *p == v) ++bad;                 // no self-loop
      // symmetric: v in the row of *p
      const int32_t* other_begin = data.adjacency_targets.data() + data.adjacency_offsets[*p];
      const int32_t* other_end = data.adjacency_targets.data() + data.adjacency_offsets[*p + 1];
      if (!std::binary_search(other_begin, other_end, static_cast<int32_t>(v))) ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << "adjacency invariant violations in " << data.name;
}

// Undirected edges with a self-loop counted once (the TU convention).
inline int64_t undirected_edges(const GraphDataset& data) {
  int64_t loops = 0;
  for (int64_t v = 0; v < data.num_nodes(); ++v) {
    for (int64_t j = data.adjacency_offsets[v]; j < data.adjacency_offsets[v + 1]; ++j) loops += data.adjacency_targets[j] == v;
  }
  return (data.num_directed_edges() - loops) / 2 + loops;
}

inline std::vector<int64_t> class_counts(const GraphDataset& data) {
  std::vector<int64_t> counts(data.num_classes(), 0);
  for (int32_t label : data.labels) ++counts.at(label);
  return counts;
}

}  // namespace diffpool::testing
