// Reader for the TU Dortmund graph-classification format (https://chrsmrrs.github.io/datasets/).
//
// Files of dataset NAME, in <data_dir>/NAME/, each either X.txt or X.txt.gz (X.txt preferred):
//   NAME_A.txt                "i, j" per line: an edge between global node ids i and j (1-based)
//   NAME_graph_indicator.txt  line v: the graph (1-based) of node v
//   NAME_graph_labels.txt     line g: the class of graph g (any integers, e.g. -1/1 or 1..6)
//   NAME_node_labels.txt      optional, line v: an integer label of node v
//   NAME_node_attributes.txt  optional, line v: comma-separated reals of node v
//   NAME_edge_labels.txt      optional, line e: an integer label of the edge on line e of NAME_A.txt;
//                             checked (one integer per line of _A) but not used as a feature
// Other files of the format (_edge_attributes, _graph_attributes) are not read.
// When X.txt and X.txt.gz both exist they must hold the same text (then X.txt is read); different
// text is an error naming both, since nothing tells which one is current.
// Graph ids must be contiguous and nondecreasing in node order, so graph g owns a contiguous range
// of node ids; the reader relies on this and checks it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/setting.hpp"
#include "engine/data/dataset.hpp"
#include "engine/data/text_reader.hpp"

namespace diffpool {

namespace {

using text::for_each_line;
using text::quote;
using text::throw_at;

// ---- locating the files ------------------------------------------------------------------------

struct DataFile {
  std::string path;
  bool gzip = false;
};

// Both X.txt and X.txt.gz exist: returns when they hold the same lines, else throws naming both
// and the first line that differs.
void require_same_text(const DataFile& plain, const DataFile& gzip) {
  text::InputFile plain_input(plain.path, false), gzip_input(gzip.path, true);
  text::LineReader plain_lines(plain_input), gzip_lines(gzip_input);
  std::string_view a, b;
  for (;;) {
    bool has_a = plain_lines.next(a), has_b = gzip_lines.next(b);
    if (!has_a && !has_b) return;
    if (has_a && has_b && a == b) continue;
    int64_t line = has_a ? plain_lines.line_number() : gzip_lines.line_number();
    throw_at(plain.path, line,
             fmt::format("{} here but {} on line {} of {}: both files exist and hold different text, so it is not "
                         "clear which one is current; remove the other one", has_a ? quote(a) : "the end of the file",
                         has_b ? quote(b) : "the end of the file", line, gzip.path));
  }
}

std::optional<DataFile> find_file(const std::filesystem::path& folder, const std::string& file_name) {
  std::error_code ignored;
  auto plain = folder / (file_name + ".txt");
  auto gzip = folder / (file_name + ".txt.gz");
  bool has_plain = std::filesystem::is_regular_file(plain, ignored);
  bool has_gzip = std::filesystem::is_regular_file(gzip, ignored);
  if (has_plain && has_gzip) require_same_text(DataFile{plain.string(), false}, DataFile{gzip.string(), true});
  if (has_plain) return DataFile{plain.string(), false};
  if (has_gzip) return DataFile{gzip.string(), true};
  return std::nullopt;
}

DataFile require_file(const std::string& data_dir, const std::string& name, const std::string& part) {
  std::filesystem::path folder = std::filesystem::path(data_dir) / name;
  std::string file_name = name + "_" + part;
  if (auto file = find_file(folder, file_name)) return *file;
  std::error_code ignored;
  std::string where = std::filesystem::is_directory(folder, ignored)
                          ? fmt::format("the folder {} exists but has neither {}.txt nor {}.txt.gz", folder.string(),
                                        file_name, file_name)
                          : fmt::format("looked for {}.txt and {}.txt.gz in {}, which does not exist", file_name,
                                        file_name, folder.string());
  throw InputError(fmt::format(
      "dataset {}: required file {}.txt not found: {}. The data directory is {} (set it with the data_dir "
      "option or $DIFFPOOL_DATA). To get the dataset, download {} and unzip it into {} (this creates {}/).",
      name, file_name, where, data_dir, tu_download_url(name), data_dir, folder.string()));
}

// "path:1: file is empty" unless the file had at least one line.
void require_lines(const std::string& path, int64_t lines, const char* expected) {
  if (lines == 0) throw_at(path, 1, fmt::format("file is empty (expected {})", expected));
}

// One integer alone on the line, else nullopt.
std::optional<int64_t> parse_single_integer(std::string_view line) {
  const char* p = text::skip_blanks(line.data(), line.data() + line.size());
  const char* end = line.data() + line.size();
  int64_t value = 0;
  if (!text::parse_integer(p, end, value)) return std::nullopt;
  if (text::skip_blanks(p, end) != end) return std::nullopt;
  return value;
}

// ---- graph indicator ---------------------------------------------------------------------------

struct GraphIndicator {
  std::vector<int64_t> node_offsets;  // [num_graphs + 1]
  std::vector<int32_t> graph_of_node; // [num_nodes], 0-based
};

GraphIndicator read_graph_indicator(const DataFile& file) {
  GraphIndicator result;
  result.node_offsets.push_back(0);
  text::InputFile input(file.path, file.gzip);
  int64_t previous = 0;
  int64_t lines = for_each_line(input, [&](std::string_view line, int64_t number) {
    auto graph = parse_single_integer(line);
    if (!graph) throw_at(file.path, number, fmt::format("expected one integer graph id, got {}", quote(line)));
    if ((number == 1 && *graph != 1) || (*graph != previous && *graph != previous + 1)) {
      if (number == 1) {
        throw_at(file.path, number, fmt::format("graph id {}: the first node must belong to graph 1 (graph ids are "
                                                "1-based and contiguous)", *graph));
      }
      throw_at(file.path, number,
               fmt::format("graph id {} follows graph id {}: graph ids must be contiguous 1..G and nondecreasing in "
                           "node order", *graph, previous));
    }
    if (*graph == previous + 1) {
      if (previous > 0) result.node_offsets.push_back(number - 1);
      previous = *graph;
    }
    if (number > INT32_MAX) throw_at(file.path, number, "more than 2^31 - 1 nodes are not supported");
    result.graph_of_node.push_back(static_cast<int32_t>(*graph - 1));
  });
  require_lines(file.path, lines, "one graph id per node");
  result.node_offsets.push_back(lines);
  return result;
}

// ---- graph labels ------------------------------------------------------------------------------

struct GraphLabels {
  std::vector<int32_t> labels;
  std::vector<std::string> class_values;
};

// Raw labels (-1/1, 0/1, 1..6, ...) become 0..k-1 in ascending numeric order.
GraphLabels read_graph_labels(const DataFile& file, int64_t num_graphs, const std::string& indicator_path) {
  std::vector<int64_t> raw;
  // The distinct values with the text of their first occurrence. Classes are few, so a linear
  // search is fastest.
  std::vector<std::pair<int64_t, std::string>> classes;
  text::InputFile input(file.path, file.gzip);
  int64_t lines = for_each_line(input, [&](std::string_view line, int64_t number) {
    if (number > num_graphs) {
      throw_at(file.path, number, fmt::format("extra line {}: {} defines only {} graphs (one label per graph)",
                                              quote(line), indicator_path, num_graphs));
    }
    auto value = parse_single_integer(line);
    if (!value) throw_at(file.path, number, fmt::format("expected one integer graph label, got {}", quote(line)));
    raw.push_back(*value);
    if (std::none_of(classes.begin(), classes.end(), [&](const auto& entry) { return entry.first == *value; })) {
      classes.emplace_back(*value, std::string(text::trim(line)));
    }
  });
  require_lines(file.path, lines, "one integer label per graph");
  if (lines < num_graphs) {
    throw_at(file.path, lines + 1, fmt::format("file ends after {} line{}, but {} defines {} graphs (one label per "
                                               "graph)", lines, lines == 1 ? "" : "s", indicator_path, num_graphs));
  }
  std::sort(classes.begin(), classes.end());
  GraphLabels result;
  result.labels.reserve(raw.size());
  for (int64_t value : raw) {
    auto it = std::lower_bound(classes.begin(), classes.end(), value,
                               [](const auto& entry, int64_t v) { return entry.first < v; });
    result.labels.push_back(static_cast<int32_t>(it - classes.begin()));
  }
  for (auto& entry : classes) result.class_values.push_back(std::move(entry.second));
  return result;
}

// ---- node labels and attributes ----------------------------------------------------------------

struct NodeLabels {
  std::vector<int32_t> index;  // [num_nodes], position of the node's label among the distinct values
  int64_t num_values = 0;
};

// "extra line" / "file ends early" checks shared by the per-node files.
void check_node_line(const std::string& path, int64_t number, std::string_view line, int64_t num_nodes,
                     const std::string& indicator_path) {
  if (number > num_nodes) {
    throw_at(path, number, fmt::format("extra line {}: {} defines only {} nodes (one line per node)", quote(line),
                                       indicator_path, num_nodes));
  }
}
void check_node_count(const std::string& path, int64_t lines, int64_t num_nodes, const std::string& indicator_path) {
  if (lines < num_nodes) {
    throw_at(path, lines + 1, fmt::format("file ends after {} line{}, but {} defines {} nodes (one line per node)",
                                          lines, lines == 1 ? "" : "s", indicator_path, num_nodes));
  }
}

NodeLabels read_node_labels(const DataFile& file, int64_t num_nodes, const std::string& indicator_path) {
  std::vector<int64_t> raw;
  raw.reserve(static_cast<std::size_t>(num_nodes));
  text::InputFile input(file.path, file.gzip);
  int64_t lines = for_each_line(input, [&](std::string_view line, int64_t number) {
    check_node_line(file.path, number, line, num_nodes, indicator_path);
    auto value = parse_single_integer(line);
    if (!value) throw_at(file.path, number, fmt::format("expected one integer node label, got {}", quote(line)));
    raw.push_back(*value);
  });
  require_lines(file.path, lines, "one integer label per node");
  check_node_count(file.path, lines, num_nodes, indicator_path);
  std::vector<int64_t> distinct = raw;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  NodeLabels result;
  result.num_values = static_cast<int64_t>(distinct.size());
  result.index.reserve(raw.size());
  for (int64_t value : raw) {
    result.index.push_back(
        static_cast<int32_t>(std::lower_bound(distinct.begin(), distinct.end(), value) - distinct.begin()));
  }
  return result;
}

struct NodeAttributes {
  std::vector<float> values;  // [num_nodes, width]
  int64_t width = 0;
};

NodeAttributes read_node_attributes(const DataFile& file, int64_t num_nodes, const std::string& indicator_path) {
  NodeAttributes result;
  text::InputFile input(file.path, file.gzip);
  int64_t lines = for_each_line(input, [&](std::string_view line, int64_t number) {
    check_node_line(file.path, number, line, num_nodes, indicator_path);
    const char* p = line.data();
    const char* end = line.data() + line.size();
    int64_t count = 0;
    for (;;) {
      p = text::skip_blanks(p, end);
      double value = 0.0;
      if (!text::parse_real(p, end, value)) {
        const char* field_end = std::find(p, end, ',');
        throw_at(file.path, number,
                 fmt::format("attribute {}: expected a finite number, got '{}' in {}", count + 1,
                             text::trim(std::string_view(p, static_cast<std::size_t>(field_end - p))), quote(line)));
      }
      result.values.push_back(static_cast<float>(value));
      ++count;
      p = text::skip_blanks(p, end);
      if (p == end) break;
      if (*p != ',') {
        throw_at(file.path, number, fmt::format("expected comma-separated numbers, got {}", quote(line)));
      }
      ++p;
    }
    if (number == 1) {
      result.width = count;
      result.values.reserve(static_cast<std::size_t>(num_nodes * count));
    } else if (count != result.width) {
      throw_at(file.path, number, fmt::format("{} attributes, but line 1 has {} (every node needs the same number): "
                                              "{}", count, result.width, quote(line)));
    }
  });
  require_lines(file.path, lines, "comma-separated attributes, one line per node");
  check_node_count(file.path, lines, num_nodes, indicator_path);
  return result;
}

// ---- edge labels -------------------------------------------------------------------------------

// Checked, not used: one integer per line of _A.txt, so a damaged file is never silently accepted.
void check_edge_labels(const DataFile& file, int64_t num_edge_lines, const std::string& edges_path) {
  text::InputFile input(file.path, file.gzip);
  int64_t lines = for_each_line(input, [&](std::string_view line, int64_t number) {
    if (number > num_edge_lines) {
      throw_at(file.path, number, fmt::format("extra line {}: {} has only {} lines (one label per edge line)",
                                              quote(line), edges_path, num_edge_lines));
    }
    if (!parse_single_integer(line)) {
      throw_at(file.path, number, fmt::format("expected one integer edge label, got {}", quote(line)));
    }
  });
  require_lines(file.path, lines, "one integer label per line of the _A file");
  if (lines < num_edge_lines) {
    throw_at(file.path, lines + 1, fmt::format("file ends after {} line{}, but {} has {} lines (one label per edge "
                                               "line)", lines, lines == 1 ? "" : "s", edges_path, num_edge_lines));
  }
}

// ---- adjacency ---------------------------------------------------------------------------------

// Builds the symmetric, deduplicated CSR adjacency one graph at a time, so that the memory held
// is the final CSR plus one graph's lines (COLLAB: 49 M lines, 24.6 M directed edges).
//
// Lines must arrive grouped by graph in increasing graph order (every official file does this);
// add() returns false when they do not, and the caller regroups all lines and starts again.
// Counting: a line equal to an earlier line (same direction) is a duplicate; a line "u, u" is a
// self-loop, counted once however often it is repeated.
class AdjacencyBuilder {
 public:
  AdjacencyBuilder(const std::vector<int64_t>& node_offsets, bool keep_self_loops)
      : node_offsets_(node_offsets), keep_self_loops_(keep_self_loops) {
    offsets_.assign(static_cast<std::size_t>(node_offsets.back()) + 1, 0);
  }

  // u and v: 0-based global ids of nodes of `graph`.
  bool add(int32_t graph, int32_t u, int32_t v) {
    if (graph != current_graph_) {
      if (graph < current_graph_) return false;
      flush();
      current_graph_ = graph;
      base_ = static_cast<int32_t>(node_offsets_[graph]);
    }
    sources_.push_back(u - base_);
    targets_of_block_.push_back(v - base_);
    return true;
  }

  void finish(GraphDataset& out) {
    flush();
    fill_empty_rows(node_offsets_.back());
    out.adjacency_offsets = std::move(offsets_);
    out.adjacency_targets = std::move(targets_);
    out.duplicate_edges_removed = duplicates_;
    out.self_loops_removed = self_loops_;
  }

 private:
  void fill_empty_rows(int64_t up_to) {
    for (; rows_done_ < up_to; ++rows_done_)
      offsets_[rows_done_ + 1] = static_cast<int64_t>(targets_.size());
  }

  // Counting sort of (row, column) pairs by row: row_start_ gets the row pointer, sorted_ the columns.
  void group_by_row(int64_t rows, const int32_t* row, const int32_t* column, std::size_t count) {
    row_start_.assign(static_cast<std::size_t>(rows) + 1, 0);
    for (std::size_t i = 0; i < count; ++i) ++row_start_[row[i] + 1];
    for (int64_t r = 0; r < rows; ++r) row_start_[r + 1] += row_start_[r];
    cursor_.assign(row_start_.begin(), row_start_.end() - 1);
    sorted_.resize(count);
    for (std::size_t i = 0; i < count; ++i) sorted_[cursor_[row[i]]++] = column[i];
  }

  void flush() {
    if (current_graph_ < 0) return;
    int64_t first = node_offsets_[current_graph_];
    int64_t n = node_offsets_[current_graph_ + 1] - first;
    fill_empty_rows(first);
    std::size_t lines = sources_.size();

    // 1. Distinct directed lines, written back over sources_/targets_of_block_.
    group_by_row(n, sources_.data(), targets_of_block_.data(), lines);
    mark_.assign(static_cast<std::size_t>(n), -1);
    std::size_t kept = 0;
    for (int32_t r = 0; r < n; ++r) {
      for (int32_t j = row_start_[r]; j < row_start_[r + 1]; ++j) {
        int32_t c = sorted_[j];
        if (mark_[c] == r) {
          ++duplicates_;
          continue;
        }
        mark_[c] = r;
        if (c == r && !keep_self_loops_) {
          ++self_loops_;
          continue;
        }
        sources_[kept] = r;
        targets_of_block_[kept] = c;
        ++kept;
      }
    }

    // 2. Symmetrise: every kept (r, c) puts c in row r and r in row c; then drop repeats, sort rows.
    sources_.resize(kept);
    targets_of_block_.resize(kept);
    sources_.insert(sources_.end(), targets_of_block_.begin(), targets_of_block_.end());
    targets_of_block_.insert(targets_of_block_.end(), sources_.begin(), sources_.begin() + static_cast<std::ptrdiff_t>(kept));
    group_by_row(n, sources_.data(), targets_of_block_.data(), sources_.size());
    mark_.assign(static_cast<std::size_t>(n), -1);
    for (int32_t r = 0; r < n; ++r) {
      std::size_t row_begin = targets_.size();
      for (int32_t j = row_start_[r]; j < row_start_[r + 1]; ++j) {
        int32_t c = sorted_[j];
        if (mark_[c] == r) continue;  // the reverse line was in the file too
        mark_[c] = r;
        targets_.push_back(static_cast<int32_t>(c + first));
      }
      std::sort(targets_.begin() + static_cast<std::ptrdiff_t>(row_begin), targets_.end());
      offsets_[first + r + 1] = static_cast<int64_t>(targets_.size());
    }
    rows_done_ = first + n;
    sources_.clear();
    targets_of_block_.clear();
  }

  const std::vector<int64_t>& node_offsets_;
  bool keep_self_loops_;
  int32_t current_graph_ = -1;
  int32_t base_ = 0;                       // first global node id of current_graph_
  std::vector<int32_t> sources_;           // lines of the current graph, local ids
  std::vector<int32_t> targets_of_block_;
  std::vector<int64_t> offsets_;           // the CSR being built, rows [0, rows_done_) final
  std::vector<int32_t> targets_;
  int64_t rows_done_ = 0;
  std::vector<int32_t> row_start_, cursor_, sorted_, mark_;  // scratch, reused for every graph
  int64_t duplicates_ = 0;
  int64_t self_loops_ = 0;
};

// Calls sink(graph, u, v) for every line of _A.txt with 0-based global ids, after checking the ids
// and that both ends lie in the same graph. A sink returning false stops the reading.
template <class Sink>
int64_t for_each_edge(const DataFile& file, const GraphIndicator& indicator, Sink&& sink) {
  const int64_t num_nodes = static_cast<int64_t>(indicator.graph_of_node.size());
  const int32_t* graph_of = indicator.graph_of_node.data();
  text::InputFile input(file.path, file.gzip);
  int64_t lines = for_each_line(input, [&](std::string_view line, int64_t number) -> bool {
    const char* p = line.data();
    const char* end = line.data() + line.size();
    int64_t u = 0, v = 0;
    // "i, j" (most datasets) or "i,j" (NCI1); blanks around both numbers are allowed.
    p = text::skip_blanks(p, end);
    bool ok = text::parse_integer(p, end, u);
    if (ok) {
      p = text::skip_blanks(p, end);
      ok = p < end && *p == ',';
      if (ok) {
        p = text::skip_blanks(p + 1, end);
        ok = text::parse_integer(p, end, v) && text::skip_blanks(p, end) == end;
      }
    }
    if (!ok) throw_at(file.path, number, fmt::format("expected two comma-separated node ids, got {}", quote(line)));
    if (u < 1 || u > num_nodes || v < 1 || v > num_nodes) [[unlikely]] {
      throw_at(file.path, number, fmt::format("node id {} out of range 1..{} (the number of nodes in the graph "
                                              "indicator) in {}", (u < 1 || u > num_nodes) ? u : v, num_nodes,
                                              quote(line)));
    }
    int32_t graph = graph_of[u - 1];
    if (graph != graph_of[v - 1]) [[unlikely]] {
      throw_at(file.path, number, fmt::format("edge {} joins node {} of graph {} and node {} of graph {}; edges must "
                                              "not cross graphs", quote(line), u, graph + 1, v, graph_of[v - 1] + 1));
    }
    return sink(graph, static_cast<int32_t>(u - 1), static_cast<int32_t>(v - 1));
  });
  return lines;
}

// Returns the number of lines of the file.
int64_t read_adjacency(const DataFile& file, const GraphIndicator& indicator, bool keep_self_loops,
                       GraphDataset& out) {
  AdjacencyBuilder builder(indicator.node_offsets, keep_self_loops);
  bool grouped = true;
  int64_t lines = for_each_edge(file, indicator, [&](int32_t graph, int32_t u, int32_t v) {
    grouped = builder.add(graph, u, v);
    return grouped;
  });
  require_lines(file.path, lines, "one edge \"i, j\" per line");
  if (grouped) {
    builder.finish(out);
    return lines;
  }
  // Lines of one graph are spread over the file: read it again, keeping every line, and feed the
  // builder graph by graph (a counting sort by graph keeps the line order within each graph).
  std::vector<int32_t> us, vs, graphs;
  lines = for_each_edge(file, indicator, [&](int32_t graph, int32_t u, int32_t v) {
    us.push_back(u);
    vs.push_back(v);
    graphs.push_back(graph);
    return true;
  });
  std::size_t num_graphs = indicator.node_offsets.size() - 1;
  std::vector<std::size_t> start(num_graphs + 1, 0);
  for (int32_t g : graphs) ++start[g + 1];
  for (std::size_t g = 0; g < num_graphs; ++g) start[g + 1] += start[g];
  std::vector<std::size_t> order(us.size());
  for (std::size_t i = 0; i < us.size(); ++i) order[start[graphs[i]]++] = i;
  AdjacencyBuilder regrouped(indicator.node_offsets, keep_self_loops);
  for (std::size_t i : order) regrouped.add(graphs[i], us[i], vs[i]);
  regrouped.finish(out);
  return lines;
}

// ---- features ----------------------------------------------------------------------------------

void build_features(GraphDataset& data, const DatasetOptions& options, const NodeLabels* node_labels,
                    const NodeAttributes* node_attributes) {
  const std::size_t num_nodes = static_cast<std::size_t>(data.num_nodes());
  FeatureMode mode = options.features;
  if (mode == FeatureMode::automatic) {
    mode = (node_labels || node_attributes) ? FeatureMode::labels_and_attributes : FeatureMode::constant;
  }
  auto missing = [&](const char* what, const char* part) {
    throw InputError(fmt::format("dataset {}: features '{}' need {}, but {} has no {}_{}.txt[.gz]; use 'degree' or "
                                 "'constant' instead", data.name, feature_mode_name(options.features), what,
                                 data.source_dir, data.name, part));
  };
  switch (mode) {
    case FeatureMode::automatic:
      break;
    case FeatureMode::node_labels:
      if (!node_labels) missing("node labels", "node_labels");
      node_attributes = nullptr;
      break;
    case FeatureMode::node_attributes:
      if (!node_attributes) missing("node attributes", "node_attributes");
      node_labels = nullptr;
      break;
    case FeatureMode::labels_and_attributes:
      if (options.features == FeatureMode::labels_and_attributes) {
        if (!node_labels) missing("node labels", "node_labels");
        if (!node_attributes) missing("node attributes", "node_attributes");
      }
      break;
    case FeatureMode::degree: {
      if (options.degree_cap < 1) {
        throw InputError(fmt::format("dataset {}: degree_cap must be at least 1, got {}", data.name, options.degree_cap));
      }
      const int64_t width = options.degree_cap;
      data.num_features = width;
      data.features.assign(num_nodes * static_cast<std::size_t>(width), 0.0f);
      for (std::size_t v = 0; v < num_nodes; ++v) {
        int64_t degree = data.adjacency_offsets[v + 1] - data.adjacency_offsets[v];
        data.features[v * static_cast<std::size_t>(width) + static_cast<std::size_t>(std::min(degree, width - 1))] = 1.0f;
      }
      data.feature_description = fmt::format("{} degree one-hot (degrees >= {} share the last column)", width, width - 1);
      return;
    }
    case FeatureMode::constant: {
      if (options.constant_dim < 1) {
        throw InputError(fmt::format("dataset {}: constant_dim must be at least 1, got {}", data.name,
                                     options.constant_dim));
      }
      data.num_features = options.constant_dim;
      data.features.assign(num_nodes * static_cast<std::size_t>(options.constant_dim), 1.0f);
      data.feature_description = fmt::format("{} constant ones", options.constant_dim);
      if (options.features == FeatureMode::automatic) data.feature_description += " (no node labels or attributes)";
      return;
    }
  }
  // One-hot node labels, then attributes.
  const int64_t label_width = node_labels ? node_labels->num_values : 0;
  const int64_t attribute_width = node_attributes ? node_attributes->width : 0;
  const std::size_t width = static_cast<std::size_t>(label_width + attribute_width);
  data.num_features = label_width + attribute_width;
  data.features.assign(num_nodes * width, 0.0f);
  for (std::size_t v = 0; v < num_nodes; ++v) {
    float* row = data.features.data() + v * width;
    if (node_labels) row[node_labels->index[v]] = 1.0f;
    if (node_attributes) {
      const float* source = node_attributes->values.data() + v * static_cast<std::size_t>(attribute_width);
      std::copy(source, source + attribute_width, row + label_width);
    }
  }
  std::vector<std::string> parts;
  if (node_labels) parts.push_back(fmt::format("{} node-label one-hot", label_width));
  if (node_attributes) parts.push_back(fmt::format("{} attribute{}", attribute_width, attribute_width == 1 ? "" : "s"));
  data.feature_description = fmt::format("{}", fmt::join(parts, " + "));
}


}  // namespace

const EnumNames<FeatureMode>& feature_mode_names() {
  static const EnumNames<FeatureMode> names("feature mode",
                                            {{"automatic", FeatureMode::automatic},
                                             {"node_labels", FeatureMode::node_labels},
                                             {"node_attributes", FeatureMode::node_attributes},
                                             {"labels_and_attributes", FeatureMode::labels_and_attributes},
                                             {"degree", FeatureMode::degree},
                                             {"constant", FeatureMode::constant}},
                                            {{"auto", FeatureMode::automatic}});  // short form in experiment files
  return names;
}
const char* feature_mode_name(FeatureMode mode) { return feature_mode_names().name(mode); }
FeatureMode parse_feature_mode(const std::string& text) { return feature_mode_names().parse(text); }

std::string tu_download_url(const std::string& name) {
  return fmt::format("https://www.chrsmrrs.com/graphkerneldatasets/{}.zip", name);
}

std::string resolve_data_dir(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) return explicit_dir;
  if (const char* env = std::getenv("DIFFPOOL_DATA"); env && *env) return env;
  return "./datasets";
}

int64_t GraphDataset::max_nodes() const {
  int64_t result = 0;
  for (std::size_t g = 0; g + 1 < node_offsets.size(); ++g) result = std::max(result, node_offsets[g + 1] - node_offsets[g]);
  return result;
}

namespace {
// Keeps the graphs with at most max_nodes nodes, renumbering nodes; edges never cross graphs, so
// every neighbour of a kept node is kept.
void drop_graphs_above(GraphDataset& data, int64_t max_nodes) {
  const int64_t graphs = data.num_graphs();
  std::vector<int64_t> new_id(static_cast<std::size_t>(data.num_nodes()), -1);
  std::vector<int64_t> node_offsets{0}, adjacency_offsets{0}, source;
  std::vector<int32_t> targets, labels;
  std::vector<float> features;
  const std::size_t width = static_cast<std::size_t>(data.num_features);
  for (int64_t g = 0; g < graphs; ++g) {
    if (data.num_nodes(g) > max_nodes) continue;
    const int64_t begin = data.node_offsets[static_cast<std::size_t>(g)];
    for (int64_t v = begin; v < data.node_offsets[static_cast<std::size_t>(g) + 1]; ++v)
      new_id[static_cast<std::size_t>(v)] = node_offsets.back() + (v - begin);
    node_offsets.push_back(node_offsets.back() + data.num_nodes(g));
    source.push_back(g);
    labels.push_back(data.labels[static_cast<std::size_t>(g)]);
  }
  if (static_cast<int64_t>(source.size()) == graphs) return;
  for (std::size_t v = 0; v < new_id.size(); ++v) {
    if (new_id[v] < 0) continue;
    for (int64_t e = data.adjacency_offsets[v]; e < data.adjacency_offsets[v + 1]; ++e)
      targets.push_back(static_cast<int32_t>(new_id[static_cast<std::size_t>(data.adjacency_targets[static_cast<std::size_t>(e)])]));
    adjacency_offsets.push_back(static_cast<int64_t>(targets.size()));
    features.insert(features.end(), data.features.begin() + static_cast<std::ptrdiff_t>(v * width),
                    data.features.begin() + static_cast<std::ptrdiff_t>((v + 1) * width));
  }
  data.graphs_dropped = graphs - static_cast<int64_t>(source.size());
  data.node_offsets = std::move(node_offsets);
  data.adjacency_offsets = std::move(adjacency_offsets);
  data.adjacency_targets = std::move(targets);
  data.labels = std::move(labels);
  data.features = std::move(features);
  data.source_graph = std::move(source);
  if (data.labels.empty())
    throw InputError(fmt::format("dataset {}: dataset.max_nodes = {} drops every graph (the smallest has more nodes)",
                                 data.name, max_nodes));
}

// Classification needs two classes; a model for one would fail deep inside (an internal check).
void require_two_classes(const GraphDataset& data, const std::string& labels_path, int64_t max_nodes) {
  if (data.labels.empty()) return;
  const int32_t first = data.labels.front();
  if (std::any_of(data.labels.begin(), data.labels.end(), [&](int32_t label) { return label != first; })) return;
  throw InputError(fmt::format(
      "{}: every one of the {} graph{} has the label {}{}: graph classification needs at least 2 classes", labels_path,
      data.num_graphs(), data.num_graphs() == 1 ? "" : "s", data.class_values[static_cast<std::size_t>(first)],
      max_nodes > 0 ? fmt::format(" (after dataset.max_nodes = {} dropped the larger graphs)", max_nodes) : ""));
}
}  // namespace

GraphDataset load_tu_dataset(const std::string& name, const DatasetOptions& options) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    throw InputError(fmt::format("invalid dataset name '{}': expected a TU dataset name such as ENZYMES", name));
  }
  const std::string data_dir = resolve_data_dir(options.data_dir);
  GraphDataset data;
  data.name = name;
  data.source_dir = (std::filesystem::path(data_dir) / name).string();

  // Every required file is located before any is read, so a missing dataset fails at once.
  DataFile edges_file = require_file(data_dir, name, "A");
  DataFile indicator_file = require_file(data_dir, name, "graph_indicator");
  DataFile labels_file = require_file(data_dir, name, "graph_labels");
  auto node_labels_file = find_file(data.source_dir, name + "_node_labels");
  auto node_attributes_file = find_file(data.source_dir, name + "_node_attributes");
  auto edge_labels_file = find_file(data.source_dir, name + "_edge_labels");

  GraphIndicator indicator = read_graph_indicator(indicator_file);
  const int64_t num_graphs = static_cast<int64_t>(indicator.node_offsets.size()) - 1;
  const int64_t num_nodes = indicator.node_offsets.back();

  GraphLabels labels = read_graph_labels(labels_file, num_graphs, indicator_file.path);
  data.labels = std::move(labels.labels);
  data.class_values = std::move(labels.class_values);

  std::optional<NodeLabels> node_labels;
  if (node_labels_file) node_labels = read_node_labels(*node_labels_file, num_nodes, indicator_file.path);
  std::optional<NodeAttributes> node_attributes;
  if (node_attributes_file) node_attributes = read_node_attributes(*node_attributes_file, num_nodes, indicator_file.path);
  data.num_node_labels = node_labels ? node_labels->num_values : 0;
  data.num_node_attributes = node_attributes ? node_attributes->width : 0;

  int64_t edge_lines = read_adjacency(edges_file, indicator, options.keep_self_loops, data);
  if (edge_labels_file) check_edge_labels(*edge_labels_file, edge_lines, edges_file.path);
  data.node_offsets = std::move(indicator.node_offsets);

  build_features(data, options, node_labels ? &*node_labels : nullptr, node_attributes ? &*node_attributes : nullptr);
  if (options.max_nodes > 0) drop_graphs_above(data, options.max_nodes);
  require_two_classes(data, labels_file.path, options.max_nodes);
  data.digest = dataset_digest(data);
  return data;
}

namespace {

// A 64-bit hash fed eight bytes at a time (FNV-1a's step on words, with a final mix): fast enough
// for the hundreds of megabytes of COLLAB's arrays; not cryptographic, which a check against
// accidents does not need.
class WordHash {
 public:
  void add_bytes(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      mix(word);
    }
    uint64_t tail = 0;
    if (i < bytes) std::memcpy(&tail, p + i, bytes - i);
    mix(tail ^ (static_cast<uint64_t>(bytes) << 56));  // the length, so [] and [0] differ
  }
  template <class T>
  void add(const std::vector<T>& v) {
    add_bytes(v.data(), v.size() * sizeof(T));
  }
  uint64_t value() const { return splitmix64(state_); }  // a final avalanche

 private:
  void mix(uint64_t word) {
    state_ ^= word;
    state_ *= 1099511628211ULL;
    state_ ^= state_ >> 29;
  }
  uint64_t state_ = 1469598103934665603ULL;
};

}  // namespace

std::string dataset_digest(const GraphDataset& data) {
  WordHash h;
  h.add(data.node_offsets);
  h.add(data.adjacency_offsets);
  h.add(data.adjacency_targets);
  h.add(data.labels);
  for (const std::string& c : data.class_values) h.add_bytes(c.data(), c.size());
  const std::vector<int64_t> width{data.num_features};
  h.add(width);
  h.add(data.features);
  return fmt::format("{:016x}", h.value());
}

}  // namespace diffpool
