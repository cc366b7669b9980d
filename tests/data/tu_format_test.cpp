// The TU reader on small hand-written datasets: every malformed input gives an InputError that
// names the file, the line and the value; gzip files read the same as plain ones; options.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <cstdlib>
#include <functional>
#include <optional>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/data/dataset.hpp"
#include "engine/data/text_reader.hpp"
#include "tests/data/data_test_util.hpp"

namespace diffpool {
namespace {

using testing::TempDir;
using testing::write_file;

// TOY: graph 1 = path 1-2-3, graph 2 = edge 4-5; raw labels 1 and -1; node labels 7/3; 2 attributes.
struct ToyFiles {
  std::optional<std::string> A = "1, 2\n2, 1\n2, 3\n3, 2\n4, 5\n5, 4\n";
  std::optional<std::string> graph_indicator = "1\n1\n1\n2\n2\n";
  std::optional<std::string> graph_labels = "1\n-1\n";
  std::optional<std::string> node_labels = "7\n3\n7\n3\n3\n";
  std::optional<std::string> node_attributes = "1.0, 2.0\n 3.5,-4\n5e-1 ,6\n7, 8\n9, 10\n";
  std::optional<std::string> edge_labels;  // none by default; one line per line of A when given
};

std::filesystem::path write_toy(const std::filesystem::path& dir, const ToyFiles& files, const char* name = "TOY") {
  auto folder = dir / name;
  std::filesystem::create_directories(folder);
  auto put = [&](const char* part, const std::optional<std::string>& content) {
    if (content) write_file(folder / (std::string(name) + "_" + part + ".txt"), *content);
  };
  put("A", files.A);
  put("graph_indicator", files.graph_indicator);
  put("graph_labels", files.graph_labels);
  put("node_labels", files.node_labels);
  put("node_attributes", files.node_attributes);
  put("edge_labels", files.edge_labels);
  return folder;
}

GraphDataset load_toy(const std::filesystem::path& dir, DatasetOptions options = {}) {
  options.data_dir = dir.string();
  return load_tu_dataset("TOY", options);
}

void gzip_file(const std::filesystem::path& plain, const std::filesystem::path& compressed) {
  std::string content = testing::read_file(plain);
  gzFile out = gzopen(compressed.string().c_str(), "wb1");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, content.data(), static_cast<unsigned>(content.size())), static_cast<int>(content.size()));
  ASSERT_EQ(gzclose(out), Z_OK);
}

void expect_same(const GraphDataset& a, const GraphDataset& b) {
  EXPECT_EQ(a.node_offsets, b.node_offsets);
  EXPECT_EQ(a.adjacency_offsets, b.adjacency_offsets);
  EXPECT_EQ(a.adjacency_targets, b.adjacency_targets);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.class_values, b.class_values);
  EXPECT_EQ(a.num_features, b.num_features);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.feature_description, b.feature_description);
  EXPECT_EQ(a.duplicate_edges_removed, b.duplicate_edges_removed);
  EXPECT_EQ(a.self_loops_removed, b.self_loops_removed);
  EXPECT_EQ(a.digest, b.digest);
}

// The digest that job files and checkpoints record: the same for the same data (loaded again, or
// from gzip files: expect_same above), different when an edge, a graph label, a node attribute or
// the feature mode differs.
TEST(TuFormat, DigestFollowsTheData) {
  TempDir dir;
  write_toy(dir.path(), {});
  const GraphDataset base = load_toy(dir.path());
  EXPECT_EQ(base.digest.size(), 16u);
  EXPECT_EQ(load_toy(dir.path()).digest, base.digest);
  EXPECT_EQ(dataset_digest(base), base.digest);
  auto changed = [&](ToyFiles files) {
    TempDir other;
    write_toy(other.path(), files);
    return load_toy(other.path()).digest;
  };
  ToyFiles edge;
  edge.A = "1, 2\n2, 1\n1, 3\n3, 1\n4, 5\n5, 4\n";  // 1-3 instead of 2-3
  ToyFiles label;
  label.graph_labels = "-1\n1\n";
  ToyFiles attribute;
  attribute.node_attributes = "1.0, 2.0\n 3.5,-4\n5e-1 ,6\n7, 8\n9, 11\n";
  for (const auto& [what, digest] : {std::pair{"an edge", changed(edge)}, std::pair{"a graph label", changed(label)},
                                     std::pair{"a node attribute", changed(attribute)}})
    EXPECT_NE(digest, base.digest) << what;
  DatasetOptions constant;
  constant.features = FeatureMode::constant;
  EXPECT_NE(load_toy(dir.path(), constant).digest, base.digest) << "the feature mode";
}

TEST(TuFormat, ToyDataset) {
  TempDir dir;
  write_toy(dir.path(), {});
  GraphDataset data = load_toy(dir.path());
  EXPECT_EQ(data.node_offsets, (std::vector<int64_t>{0, 3, 5}));
  EXPECT_EQ(data.adjacency_offsets, (std::vector<int64_t>{0, 1, 3, 4, 5, 6}));
  EXPECT_EQ(data.adjacency_targets, (std::vector<int32_t>{1, 0, 2, 1, 4, 3}));
  EXPECT_EQ(data.labels, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(data.class_values, (std::vector<std::string>{"-1", "1"}));
  EXPECT_EQ(data.num_node_labels, 2);
  EXPECT_EQ(data.num_node_attributes, 2);
  ASSERT_EQ(data.num_features, 4);
  // Node labels 7/3 -> columns 1/0 (ascending values), then the attributes.
  EXPECT_EQ(data.features, (std::vector<float>{0, 1, 1, 2, /**/ 1, 0, 3.5f, -4, /**/ 0, 1, 0.5f, 6, /**/
                                               1, 0, 7, 8, /**/ 1, 0, 9, 10}));
  EXPECT_EQ(data.feature_description, "2 node-label one-hot + 2 attributes");
  EXPECT_EQ(data.max_nodes(), 3);
  EXPECT_EQ(data.duplicate_edges_removed, 0);
  testing::expect_valid_adjacency(data);
}

TEST(TuFormat, SymmetrisesDeduplicatesAndCountsSelfLoops) {
  TempDir dir;
  ToyFiles files;
  // One direction only for 1-2, the social-dataset 4x pattern for 2-3, a doubled self-loop on 4.
  files.A = "1, 2\n2, 3\n3, 2\n2, 3\n3, 2\n4, 4\n4, 4\n5, 4\n";
  write_toy(dir.path(), files);
  GraphDataset data = load_toy(dir.path());
  EXPECT_EQ(data.adjacency_targets, (std::vector<int32_t>{1, 0, 2, 1, 4, 3}));
  EXPECT_EQ(data.duplicate_edges_removed, 3);  // two repeated "2, 3"/"3, 2" lines, one repeated "4, 4"
  EXPECT_EQ(data.self_loops_removed, 1);
  testing::expect_valid_adjacency(data);

  DatasetOptions keep;
  keep.keep_self_loops = true;
  GraphDataset with_loops = load_toy(dir.path(), keep);
  EXPECT_EQ(with_loops.adjacency_targets, (std::vector<int32_t>{1, 0, 2, 1, 3, 4, 3}));
  EXPECT_EQ(with_loops.self_loops_removed, 0);
  EXPECT_EQ(with_loops.duplicate_edges_removed, 3);
  testing::expect_valid_adjacency(with_loops, /*allow_self_loops=*/true);
}

TEST(TuFormat, LinesOfAGraphSpreadOverTheFile) {
  TempDir ordered_dir, spread_dir;
  write_toy(ordered_dir.path(), {});
  ToyFiles spread;
  spread.A = "4, 5\n3, 2\n5, 4\n1, 2\n2, 1\n2, 3\n";  // graph 2, graph 1, graph 2 again, ...
  write_toy(spread_dir.path(), spread);
  expect_same(load_toy(spread_dir.path()), load_toy(ordered_dir.path()));
}

TEST(TuFormat, IsolatedNodesAndEdgelessGraphs) {
  TempDir dir;
  ToyFiles files;
  files.graph_indicator = "1\n1\n1\n2\n3\n";  // graph 2 = node 4 alone, graph 3 = node 5 alone
  files.graph_labels = "1\n-1\n1\n";
  files.A = "1, 2\n2, 1\n";                  // node 3 isolated
  write_toy(dir.path(), files);
  GraphDataset data = load_toy(dir.path());
  EXPECT_EQ(data.node_offsets, (std::vector<int64_t>{0, 3, 4, 5}));
  EXPECT_EQ(data.adjacency_offsets, (std::vector<int64_t>{0, 1, 2, 2, 2, 2}));
  EXPECT_EQ(data.labels, (std::vector<int32_t>{1, 0, 1}));
}

TEST(TuFormat, CrLfAndTrailingBlankLinesAndNoFinalNewline) {
  TempDir unix_dir, dos_dir;
  write_toy(unix_dir.path(), {});
  ToyFiles dos;
  dos.A = "1, 2\r\n2, 1\r\n2, 3\r\n3, 2\r\n4, 5\r\n5, 4";   // no newline after the last line
  dos.graph_indicator = "1\r\n1\r\n1\r\n2\r\n2\r\n\r\n\n";  // blank lines at the end are fine
  dos.node_attributes = "1.0, 2.0\r\n 3.5,-4\r\n5e-1 ,6\r\n7, 8\r\n+9, 10 \r\n";
  write_toy(dos_dir.path(), dos);
  expect_same(load_toy(dos_dir.path()), load_toy(unix_dir.path()));
}

TEST(TuFormat, GzipFilesReadTheSameAsPlainFiles) {
  TempDir plain_dir, gzip_dir;
  write_toy(plain_dir.path(), {});
  auto folder = write_toy(gzip_dir.path(), {});
  for (const char* part : {"A", "graph_indicator", "graph_labels", "node_labels", "node_attributes"}) {
    auto plain = folder / (std::string("TOY_") + part + ".txt");
    gzip_file(plain, folder / (std::string("TOY_") + part + ".txt.gz"));
    std::filesystem::remove(plain);
  }
  expect_same(load_toy(gzip_dir.path()), load_toy(plain_dir.path()));

  // Both present with the same text (line ends aside): X.txt is read.
  TempDir both_dir;
  auto both = write_toy(both_dir.path(), {});
  gzip_file(both / "TOY_A.txt", both / "TOY_A.txt.gz");
  write_file(both / "TOY_A.txt", "1, 2\r\n2, 1\r\n2, 3\r\n3, 2\r\n4, 5\r\n5, 4\r\n");
  expect_same(load_toy(both_dir.path()), load_toy(plain_dir.path()));
}

// X.txt beside an X.txt.gz with other text: an error naming both files, the line and both values,
// never a silent choice.
TEST(TuFormat, PlainAndGzipFilesWithDifferentText) {
  struct Case {
    const char* gzip_text;
    std::vector<std::string> expected;
  };
  const std::string plain = "1, 2\n2, 1\n2, 3\n3, 2\n4, 5\n5, 4\n";
  for (const Case& c : std::vector<Case>{
           {"1, 2\n2, 1\n2, 3\n3, 2\n4, 5\n", {"TOY_A.txt:6: '5, 4' here but the end of the file on line 6 of "}},
           {"1, 2\n2, 1\n2, 3\n3, 1\n4, 5\n5, 4\n", {"TOY_A.txt:4: '3, 2' here but '3, 1' on line 4 of "}},
           {"1, 2\n2, 1\n2, 3\n3, 2\n4, 5\n5, 4\n4, 5\n", {"TOY_A.txt:7: the end of the file here but '4, 5'"}}}) {
    TempDir dir;
    auto folder = write_toy(dir.path(), {});
    write_file(folder / "TOY_A.txt.plain", c.gzip_text);
    gzip_file(folder / "TOY_A.txt.plain", folder / "TOY_A.txt.gz");
    std::filesystem::remove(folder / "TOY_A.txt.plain");
    try {
      load_toy(dir.path());
      FAIL() << "no error for a .gz holding " << c.gzip_text;
    } catch (const InputError& error) {
      std::string message = error.what();
      for (const auto& expected : c.expected) EXPECT_NE(message.find(expected), std::string::npos) << message;
      EXPECT_NE(message.find((folder / "TOY_A.txt.gz").string()), std::string::npos) << message;
      EXPECT_NE(message.find("remove the other one"), std::string::npos) << message;
    }
  }
  // A broken .gz beside a good .txt is reported too (it is no copy of the plain file).
  TempDir dir;
  auto folder = write_toy(dir.path(), {});
  write_file(folder / "TOY_graph_labels.txt.gz", "this is not gzip");
  try {
    load_toy(dir.path());
    FAIL();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("TOY_graph_labels.txt.gz:1: not a gzip file"), std::string::npos)
        << error.what();
  }
}

TEST(TuFormat, BigGzipFileAcrossManyBlocks) {
  // Enough lines that inflating, the read-ahead ring and the line buffer all wrap several times.
  TempDir plain_dir, gzip_dir;
  const int64_t nodes = 400000;
  std::string a, indicator;
  for (int64_t v = 1; v <= nodes; ++v) indicator += std::to_string((v - 1) / 4 + 1) + "\n";
  for (int64_t v = 1; v <= nodes; v += 4) {
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t j = 0; j < 4; ++j) {
        if (i != j) a += fmt::format("{}, {}\n{}, {}\n", v + i, v + j, v + i, v + j);
      }
    }
  }
  ToyFiles files;
  files.A = a;
  files.graph_indicator = indicator;
  files.graph_labels = std::string();
  for (int64_t g = 0; g < nodes / 4; ++g) *files.graph_labels += g % 3 == 0 ? "1\n" : "0\n";
  files.node_labels.reset();
  files.node_attributes.reset();
  write_toy(plain_dir.path(), files);
  auto folder = write_toy(gzip_dir.path(), files);
  gzip_file(folder / "TOY_A.txt", folder / "TOY_A.txt.gz");
  std::filesystem::remove(folder / "TOY_A.txt");
  ASSERT_GT(a.size(), std::size_t{20} << 20);
  GraphDataset gz = load_toy(gzip_dir.path());
  EXPECT_EQ(gz.num_directed_edges(), nodes * 3);
  EXPECT_EQ(gz.duplicate_edges_removed, nodes * 3);
  expect_same(gz, load_toy(plain_dir.path()));
}

// ---- malformed inputs ----------------------------------------------------------------------------

struct BadCase {
  const char* name;
  std::function<void(ToyFiles&)> change;
  std::vector<std::string> expected;  // substrings of the message
  std::function<void(const std::filesystem::path& folder)> after_write = nullptr;
};

std::string corrupt_gzip_of(const std::string& content, bool truncate) {
  // Compress, then either cut the stream short or flip bytes inside the deflate data.
  TempDir dir;
  auto path = dir.path() / "x.gz";
  gzFile file = gzopen(path.string().c_str(), "wb9");
  gzwrite(file, content.data(), static_cast<unsigned>(content.size()));
  gzclose(file);
  std::string out = testing::read_file(path);
  if (truncate) {
    out.resize(out.size() / 2);
  } else {
    for (std::size_t i = 12; i + 8 < out.size(); i += 3) out[i] = static_cast<char>(out[i] ^ 0x5a);
  }
  return out;
}

std::vector<BadCase> bad_cases() {
  auto gz_instead = [](const std::string& content, bool truncate) {
    return [content, truncate](const std::filesystem::path& folder) {
      std::filesystem::remove(folder / "TOY_A.txt");
      write_file(folder / "TOY_A.txt.gz", corrupt_gzip_of(content, truncate));
    };
  };
  std::string long_a;
  for (int i = 0; i < 20000; ++i) long_a += "1, 2\n2, 1\n";
  return {
      {"A_three_columns", [](ToyFiles& f) { f.A = "1, 2\n2, 1\n1, 2, 3\n"; },
       {"TOY_A.txt:3: expected two comma-separated node ids, got '1, 2, 3'"}},
      {"A_one_column", [](ToyFiles& f) { f.A = "1, 2\n2\n"; },
       {"TOY_A.txt:2: expected two comma-separated node ids, got '2'"}},
      {"A_not_a_number", [](ToyFiles& f) { f.A = "1, 2\nabc, 3\n"; },
       {"TOY_A.txt:2: expected two comma-separated node ids, got 'abc, 3'"}},
      {"A_space_separated", [](ToyFiles& f) { f.A = "1 2\n"; },
       {"TOY_A.txt:1: expected two comma-separated node ids, got '1 2'"}},
      {"A_real_number", [](ToyFiles& f) { f.A = "1, 2.5\n"; },
       {"TOY_A.txt:1: expected two comma-separated node ids, got '1, 2.5'"}},
      {"A_node_zero", [](ToyFiles& f) { f.A = "1, 2\n0, 1\n"; }, {"TOY_A.txt:2: node id 0 out of range 1..5"}},
      {"A_node_negative", [](ToyFiles& f) { f.A = "1, -2\n"; }, {"TOY_A.txt:1: node id -2 out of range 1..5"}},
      {"A_node_too_big", [](ToyFiles& f) { f.A = "1, 2\n2, 1\n4, 6\n"; },
       {"TOY_A.txt:3: node id 6 out of range 1..5", "'4, 6'"}},
      {"A_huge_number", [](ToyFiles& f) { f.A = "1, 99999999999999999999999\n"; },
       {"TOY_A.txt:1: expected two comma-separated node ids, got '1, 99999999999999999999999'"}},
      {"A_crosses_graphs", [](ToyFiles& f) { f.A = "1, 2\n3, 4\n"; },
       {"TOY_A.txt:2: edge '3, 4' joins node 3 of graph 1 and node 4 of graph 2"}},
      {"A_empty", [](ToyFiles& f) { f.A = ""; }, {"TOY_A.txt:1: file is empty"}},
      {"A_only_blank_lines", [](ToyFiles& f) { f.A = "\n  \n"; }, {"TOY_A.txt:1: file is empty"}},
      {"A_blank_line_inside", [](ToyFiles& f) { f.A = "1, 2\n\n2, 1\n"; },
       {"TOY_A.txt:2: empty line in the middle of the file"}},
      {"A_missing", [](ToyFiles& f) { f.A.reset(); },
       {"dataset TOY: required file TOY_A.txt not found", "TOY_A.txt.gz", "/TOY",
        "https://www.chrsmrrs.com/graphkerneldatasets/TOY.zip", "unzip"}},
      {"A_gzip_truncated", [](ToyFiles&) {}, {"TOY_A.txt.gz:", "corrupt gzip data", "unexpected end of file"},
       gz_instead(long_a, true)},
      {"A_gzip_garbled", [](ToyFiles&) {}, {"TOY_A.txt.gz:", "corrupt gzip data"}, gz_instead(long_a, false)},
      {"A_gzip_not_gzip", [](ToyFiles&) {}, {"TOY_A.txt.gz:1: not a gzip file"},
       [](const std::filesystem::path& folder) {
         std::filesystem::rename(folder / "TOY_A.txt", folder / "TOY_A.txt.gz");
       }},
      {"indicator_missing", [](ToyFiles& f) { f.graph_indicator.reset(); },
       {"required file TOY_graph_indicator.txt not found", "TOY_graph_indicator.txt.gz"}},
      {"indicator_not_a_number", [](ToyFiles& f) { f.graph_indicator = "1\n1\nx\n2\n2\n"; },
       {"TOY_graph_indicator.txt:3: expected one integer graph id, got 'x'"}},
      {"indicator_two_columns", [](ToyFiles& f) { f.graph_indicator = "1\n1, 1\n1\n2\n2\n"; },
       {"TOY_graph_indicator.txt:2: expected one integer graph id, got '1, 1'"}},
      {"indicator_gap", [](ToyFiles& f) { f.graph_indicator = "1\n1\n3\n3\n3\n"; },
       {"TOY_graph_indicator.txt:3: graph id 3 follows graph id 1", "contiguous"}},
      {"indicator_decreasing", [](ToyFiles& f) { f.graph_indicator = "1\n2\n1\n2\n2\n"; },
       {"TOY_graph_indicator.txt:3: graph id 1 follows graph id 2", "nondecreasing"}},
      {"indicator_starts_at_0", [](ToyFiles& f) { f.graph_indicator = "0\n0\n0\n1\n1\n"; },
       {"TOY_graph_indicator.txt:1: graph id 0: the first node must belong to graph 1"}},
      {"indicator_empty", [](ToyFiles& f) { f.graph_indicator = ""; }, {"TOY_graph_indicator.txt:1: file is empty"}},
      {"indicator_fewer_nodes_than_A",
       [](ToyFiles& f) {
         f.graph_indicator = "1\n1\n1\n2\n";
         f.node_labels.reset();
         f.node_attributes.reset();
       },
       {"TOY_A.txt:5: node id 5 out of range 1..4"}},
      {"labels_missing", [](ToyFiles& f) { f.graph_labels.reset(); },
       {"required file TOY_graph_labels.txt not found"}},
      {"labels_too_few", [](ToyFiles& f) { f.graph_labels = "1\n"; },
       {"TOY_graph_labels.txt:2: file ends after 1 line, but", "defines 2 graphs"}},
      {"labels_too_many", [](ToyFiles& f) { f.graph_labels = "1\n-1\n1\n"; },
       {"TOY_graph_labels.txt:3: extra line '1'", "defines only 2 graphs"}},
      {"labels_not_integer", [](ToyFiles& f) { f.graph_labels = "1\n1.5\n"; },
       {"TOY_graph_labels.txt:2: expected one integer graph label, got '1.5'"}},
      {"labels_empty", [](ToyFiles& f) { f.graph_labels = ""; }, {"TOY_graph_labels.txt:1: file is empty"}},
      {"node_labels_too_few", [](ToyFiles& f) { f.node_labels = "1\n1\n1\n1\n"; },
       {"TOY_node_labels.txt:5: file ends after 4 lines", "defines 5 nodes"}},
      {"node_labels_too_many", [](ToyFiles& f) { f.node_labels = "1\n1\n1\n1\n1\n2\n"; },
       {"TOY_node_labels.txt:6: extra line '2'", "defines only 5 nodes"}},
      {"node_labels_not_integer", [](ToyFiles& f) { f.node_labels = "1\n1\nC\n1\n1\n"; },
       {"TOY_node_labels.txt:3: expected one integer node label, got 'C'"}},
      {"node_labels_empty", [](ToyFiles& f) { f.node_labels = ""; }, {"TOY_node_labels.txt:1: file is empty"}},
      {"attributes_widths_differ", [](ToyFiles& f) { f.node_attributes = "1, 2\n3, 4\n5, 6, 7\n8, 9\n1, 1\n"; },
       {"TOY_node_attributes.txt:3: 3 attributes, but line 1 has 2", "'5, 6, 7'"}},
      {"attributes_not_a_number", [](ToyFiles& f) { f.node_attributes = "1, 2\n3, abc\n5, 6\n8, 9\n1, 1\n"; },
       {"TOY_node_attributes.txt:2: attribute 2: expected a finite number, got 'abc'"}},
      {"attributes_nan", [](ToyFiles& f) { f.node_attributes = "1, 2\n3, 4\n5, 6\n8, nan\n1, 1\n"; },
       {"TOY_node_attributes.txt:4: attribute 2: expected a finite number, got 'nan'"}},
      {"attributes_trailing_comma", [](ToyFiles& f) { f.node_attributes = "1, 2,\n3, 4\n5, 6\n8, 9\n1, 1\n"; },
       {"TOY_node_attributes.txt:1: attribute 3: expected a finite number, got ''"}},
      {"attributes_garbage_after_number", [](ToyFiles& f) { f.node_attributes = "1, 2\n3, 4x\n5, 6\n8, 9\n1, 1\n"; },
       {"TOY_node_attributes.txt:2: expected comma-separated numbers, got '3, 4x'"}},
      {"attributes_too_few", [](ToyFiles& f) { f.node_attributes = "1, 2\n3, 4\n5, 6\n8, 9\n"; },
       {"TOY_node_attributes.txt:5: file ends after 4 lines"}},
      {"attributes_too_many", [](ToyFiles& f) { f.node_attributes = "1, 2\n3, 4\n5, 6\n8, 9\n1, 1\n2, 2\n"; },
       {"TOY_node_attributes.txt:6: extra line '2, 2'"}},
      {"edge_labels_not_integer", [](ToyFiles& f) { f.edge_labels = "1\n1\n2\nx\n1\n1\n"; },
       {"TOY_edge_labels.txt:4: expected one integer edge label, got 'x'"}},
      {"edge_labels_two_columns", [](ToyFiles& f) { f.edge_labels = "1\n1, 2\n2\n2\n1\n1\n"; },
       {"TOY_edge_labels.txt:2: expected one integer edge label, got '1, 2'"}},
      {"edge_labels_too_few", [](ToyFiles& f) { f.edge_labels = "1\n1\n2\n2\n1\n"; },
       {"TOY_edge_labels.txt:6: file ends after 5 lines, but", "TOY_A.txt has 6 lines"}},
      {"edge_labels_too_many", [](ToyFiles& f) { f.edge_labels = "1\n1\n2\n2\n1\n1\n3\n"; },
       {"TOY_edge_labels.txt:7: extra line '3'", "TOY_A.txt has only 6 lines"}},
      {"edge_labels_too_few_spread_A",
       [](ToyFiles& f) {
         f.A = "4, 5\n3, 2\n5, 4\n1, 2\n2, 1\n2, 3\n";  // graphs not in blocks: A is read twice
         f.edge_labels = "1\n1\n2\n";
       },
       {"TOY_edge_labels.txt:4: file ends after 3 lines, but", "TOY_A.txt has 6 lines"}},
      {"edge_labels_empty", [](ToyFiles& f) { f.edge_labels = ""; }, {"TOY_edge_labels.txt:1: file is empty"}},
      {"single_class", [](ToyFiles& f) { f.graph_labels = "3\n3\n"; },
       {"TOY_graph_labels.txt: every one of the 2 graphs has the label 3",
        "graph classification needs at least 2 classes"}},
      {"line_too_long", [](ToyFiles& f) { f.A = "1, 2\n" + std::string(text::kMaxLineBytes + 1, '1') + "\n"; },
       {"TOY_A.txt:2: line longer than 1048576 bytes, the limit for one line", "'1111"}},
      {"last_line_too_long", [](ToyFiles& f) { f.node_labels = "1\n" + std::string(text::kMaxLineBytes + 1, ' '); },
       {"TOY_node_labels.txt:2: line longer than 1048576 bytes"}},
  };
}

class BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadInput, ThrowsInputErrorNamingFileLineAndValue) {
  const BadCase& bad = GetParam();
  TempDir dir;
  ToyFiles files;
  bad.change(files);
  auto folder = write_toy(dir.path(), files);
  if (bad.after_write) bad.after_write(folder);
  try {
    load_toy(dir.path());
    FAIL() << "no error for " << bad.name;
  } catch (const InputError& error) {
    std::string message = error.what();
    RecordProperty("message", message);  // visible with --gtest_output=xml
    for (const auto& expected : bad.expected) {
      EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in:\n" << message;
    }
    // Paths are full paths, so a user can open the file directly.
    EXPECT_NE(message.find(folder.string()), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(TuFormat, BadInput, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TuFormat, EdgeLabelsAreCheckedNotUsed) {
  TempDir plain_dir, labelled_dir;
  write_toy(plain_dir.path(), {});
  ToyFiles files;
  files.edge_labels = "1\n1\n2\n2\n-1\n-1\r\n\n";
  write_toy(labelled_dir.path(), files);
  expect_same(load_toy(labelled_dir.path()), load_toy(plain_dir.path()));
}

TEST(TuFormat, SingleClassLeftByMaxNodes) {
  TempDir dir;
  write_toy(dir.path(), {});
  DatasetOptions options;
  options.max_nodes = 2;  // drops graph 1 (3 nodes): only graph 2, label -1, is left
  try {
    load_toy(dir.path(), options);
    FAIL();
  } catch (const InputError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("TOY_graph_labels.txt: every one of the 1 graph has the label -1 (after "
                           "dataset.max_nodes = 2 dropped the larger graphs)"), std::string::npos) << message;
  }
}

// ---- input limits --------------------------------------------------------------------------------

// Writes `repeat` copies of `chunk` after `head`, gzip-compressed, without holding them in memory.
void write_gzip_bomb(const std::filesystem::path& path, const std::string& head, const std::string& chunk,
                     int repeat) {
  gzFile out = gzopen(path.string().c_str(), "wb9");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, head.data(), static_cast<unsigned>(head.size())), static_cast<int>(head.size()));
  for (int i = 0; i < repeat; ++i) {
    ASSERT_EQ(gzwrite(out, chunk.data(), static_cast<unsigned>(chunk.size())), static_cast<int>(chunk.size()));
  }
  ASSERT_EQ(gzclose(out), Z_OK);
}

int64_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// 256 MB of newlines after a valid A file: blank lines at the end are allowed, so only the limit on
// the inflated size stops it (64 MiB here, since 200 x the compressed size is less).
TEST(TuLimits, GzipBombOfBlankLines) {
  TempDir dir;
  auto folder = write_toy(dir.path(), {});
  std::filesystem::remove(folder / "TOY_A.txt");
  write_gzip_bomb(folder / "TOY_A.txt.gz", "1, 2\n2, 1\n2, 3\n3, 2\n4, 5\n5, 4\n", std::string(1 << 20, '\n'), 256);
  ASSERT_LT(std::filesystem::file_size(folder / "TOY_A.txt.gz"), std::uintmax_t{1} << 20);
  try {
    load_toy(dir.path());
    FAIL() << "a gzip bomb was accepted";
  } catch (const InputError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find((folder / "TOY_A.txt.gz").string() + ":"), std::string::npos) << message;
    EXPECT_NE(message.find(": the file inflates to more than 67108864 bytes"), std::string::npos) << message;
    EXPECT_NE(message.find("200 times its compressed size"), std::string::npos) << message;
    EXPECT_NE(message.find("gunzip"), std::string::npos) << message;
  }
}

// 512 MB of zero bytes and no newline: the line limit stops it after 1 MiB, and memory stays small
// (it used to grow the line buffer to the whole file).
TEST(TuLimits, GzipBombOfOneLineKeepsMemorySmall) {
  TempDir dir;
  auto folder = write_toy(dir.path(), {});
  std::filesystem::remove(folder / "TOY_graph_indicator.txt");
  write_gzip_bomb(folder / "TOY_graph_indicator.txt.gz", "", std::string(1 << 20, '\0'), 512);
  const int64_t before = peak_rss_bytes();
  try {
    load_toy(dir.path());
    FAIL() << "a gzip bomb was accepted";
  } catch (const InputError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("TOY_graph_indicator.txt.gz:1: line longer than 1048576 bytes"), std::string::npos)
        << message;
  }
  EXPECT_LT(peak_rss_bytes() - before, int64_t{64} << 20) << "peak memory grew while reading the bomb";
}

// The ratio limit with small numbers: a file that inflates to exactly the limit is read, one more
// byte is refused; the floor and the absolute cap apply as documented.
TEST(TuLimits, GzipRatioFloorAndCap) {
  TempDir dir;
  auto path = dir.path() / "lines.txt.gz";
  write_gzip_bomb(path, "", std::string(1000, '7') + "\n", 100);  // 100100 bytes of text
  const auto compressed = static_cast<uint64_t>(std::filesystem::file_size(path));
  auto read_all = [&](const text::InputLimits& limits) {
    text::InputFile input(path.string(), true, limits);
    return text::for_each_line(input, [](std::string_view, int64_t) {});
  };
  text::InputLimits limits;
  limits.gzip_floor_bytes = 0;
  limits.max_gzip_ratio = 100100 / compressed + 1;
  EXPECT_EQ(read_all(limits), 100);
  limits.max_gzip_ratio = 100099 / compressed;
  EXPECT_THROW(read_all(limits), InputError);
  limits.gzip_floor_bytes = 100100;  // the floor allows it whatever the ratio
  EXPECT_EQ(read_all(limits), 100);
  limits.max_gzip_bytes = 100099;    // the cap refuses it whatever the floor
  try {
    read_all(limits);
    FAIL();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("lines.txt.gz:"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("inflates to more than 100099 bytes"), std::string::npos) << error.what();
  }
  limits = {};
  limits.max_line_bytes = 1000;  // "777...7" is exactly 1000 bytes
  EXPECT_EQ(read_all(limits), 100);
  limits.max_line_bytes = 999;
  EXPECT_THROW(read_all(limits), InputError);
}

TEST(TuFormat, MissingDatasetFolder) {
  TempDir dir;
  DatasetOptions options;
  options.data_dir = dir.path().string();
  try {
    load_tu_dataset("NOPE", options);
    FAIL();
  } catch (const InputError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("NOPE_A.txt and NOPE_A.txt.gz"), std::string::npos) << message;
    EXPECT_NE(message.find((dir.path() / "NOPE").string() + ", which does not exist"), std::string::npos) << message;
    EXPECT_NE(message.find("https://www.chrsmrrs.com/graphkerneldatasets/NOPE.zip"), std::string::npos) << message;
  }
  EXPECT_THROW(load_tu_dataset("", options), InputError);
  EXPECT_THROW(load_tu_dataset("../etc", options), InputError);
}

// ---- feature modes and options ---------------------------------------------------------------------

TEST(TuFormat, FeatureModes) {
  TempDir dir;
  write_toy(dir.path(), {});
  DatasetOptions options;
  options.features = FeatureMode::node_labels;
  GraphDataset labels = load_toy(dir.path(), options);
  EXPECT_EQ(labels.features, (std::vector<float>{0, 1, 1, 0, 0, 1, 1, 0, 1, 0}));
  EXPECT_EQ(labels.feature_description, "2 node-label one-hot");

  options.features = FeatureMode::node_attributes;
  GraphDataset attributes = load_toy(dir.path(), options);
  EXPECT_EQ(attributes.features, (std::vector<float>{1, 2, 3.5f, -4, 0.5f, 6, 7, 8, 9, 10}));
  EXPECT_EQ(attributes.feature_description, "2 attributes");

  options.features = FeatureMode::degree;
  options.degree_cap = 2;  // degrees 1,2,1,1,1 -> columns 1,1,1,1,1 (degree >= 1 shares column 1)
  GraphDataset degree = load_toy(dir.path(), options);
  EXPECT_EQ(degree.features, (std::vector<float>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}));
  options.degree_cap = 3;
  degree = load_toy(dir.path(), options);
  EXPECT_EQ(degree.features, (std::vector<float>{0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0}));

  options.features = FeatureMode::constant;
  options.constant_dim = 2;
  GraphDataset constant = load_toy(dir.path(), options);
  EXPECT_EQ(constant.features, std::vector<float>(10, 1.0f));
  EXPECT_EQ(constant.feature_description, "2 constant ones");

  options.constant_dim = 0;
  EXPECT_THROW(load_toy(dir.path(), options), InputError);
  options.features = FeatureMode::degree;
  options.degree_cap = 0;
  EXPECT_THROW(load_toy(dir.path(), options), InputError);
}

TEST(TuFormat, FeatureModeNeedsMissingFile) {
  TempDir dir;
  ToyFiles files;
  files.node_labels.reset();
  write_toy(dir.path(), files);
  DatasetOptions options;
  EXPECT_EQ(load_toy(dir.path(), options).feature_description, "2 attributes");  // automatic uses what exists
  options.features = FeatureMode::node_labels;
  try {
    load_toy(dir.path(), options);
    FAIL();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("features 'node_labels' need node labels"), std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("TOY_node_labels.txt"), std::string::npos) << error.what();
  }
  options.features = FeatureMode::labels_and_attributes;
  EXPECT_THROW(load_toy(dir.path(), options), InputError);
  options.features = FeatureMode::node_attributes;
  EXPECT_NO_THROW(load_toy(dir.path(), options));
}

TEST(TuFormat, FeatureModeNames) {
  for (FeatureMode mode : {FeatureMode::automatic, FeatureMode::node_labels, FeatureMode::node_attributes,
                           FeatureMode::labels_and_attributes, FeatureMode::degree, FeatureMode::constant}) {
    EXPECT_EQ(parse_feature_mode(feature_mode_name(mode)), mode);
  }
  EXPECT_STREQ(feature_mode_name(FeatureMode::labels_and_attributes), "labels_and_attributes");
  try {
    parse_feature_mode("onehot");
    FAIL();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("'onehot'"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("expected automatic, node_labels, node_attributes, labels_and_attributes, "
                                             "degree or constant"), std::string::npos) << error.what();
  }
}

TEST(TuFormat, ResolveDataDirAndUrl) {
  const char* saved = std::getenv("DIFFPOOL_DATA");
  std::string saved_value = saved ? saved : "";
  EXPECT_EQ(resolve_data_dir("/explicit"), "/explicit");
  ::setenv("DIFFPOOL_DATA", "/from/env", 1);
  EXPECT_EQ(resolve_data_dir(""), "/from/env");
  EXPECT_EQ(resolve_data_dir("/explicit"), "/explicit");
  ::unsetenv("DIFFPOOL_DATA");
  EXPECT_EQ(resolve_data_dir(""), "./datasets");
  if (saved) ::setenv("DIFFPOOL_DATA", saved_value.c_str(), 1);
  EXPECT_EQ(tu_download_url("ENZYMES"), "https://www.chrsmrrs.com/graphkerneldatasets/ENZYMES.zip");
}

TEST(TuFormat, EmptyDataDirUsesEnvironment) {
  TempDir dir;
  write_toy(dir.path(), {});
  const char* saved = std::getenv("DIFFPOOL_DATA");
  std::string saved_value = saved ? saved : "";
  ::setenv("DIFFPOOL_DATA", dir.path().string().c_str(), 1);
  DatasetOptions options;  // data_dir empty
  GraphDataset data = load_tu_dataset("TOY", options);
  EXPECT_EQ(data.num_graphs(), 2);
  EXPECT_EQ(data.source_dir, (dir.path() / "TOY").string());
  if (saved) {
    ::setenv("DIFFPOOL_DATA", saved_value.c_str(), 1);
  } else {
    ::unsetenv("DIFFPOOL_DATA");
  }
}

}  // namespace
}  // namespace diffpool
