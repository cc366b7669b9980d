#pragma once
// Graph-classification datasets in memory, and the official TU Dortmund text format reader.
//
// All graphs of a dataset are stored packed: node v of graph g has the global id
// node_offsets[g] + local index; the adjacency is one CSR over global ids (no edge crosses graphs).
// Nothing is ever dropped or truncated: every graph of the files is kept, whatever its size.
//
// Refinements made with the implementation (tu_dataset.cpp), no names or meanings changed:
//  * DatasetOptions::data_dir empty means resolve_data_dir("") ($DIFFPOOL_DATA, else ./datasets).
//  * duplicate_edges_removed counts _A.txt lines that repeat an earlier line in the same direction;
//    self_loops_removed counts distinct self-loops (COLLAB: 2837, each listed twice, so its second
//    line is a duplicate). A line "j, i" next to "i, j" is the other direction, not a duplicate.
//  * Feature modes named explicitly need their files: node_labels / node_attributes /
//    labels_and_attributes throw InputError when the dataset lacks them (automatic never does).
//    degree uses the final adjacency (after deduplication and self-loop removal).
//  * class_values holds the trimmed text of the first line with each value.
//  * Data files are read by text_reader.hpp (plain or gzip, one background inflate thread for .gz).
#include <cstdint>
#include <string>
#include <vector>

namespace diffpool {

template <class E> class EnumNames;  // engine/core/setting.hpp

// How node features are built (dataset.features in experiment files).
enum class FeatureMode : uint8_t {
  automatic,              // node labels (one-hot) and attributes where the dataset has them, else constant
  node_labels,            // one-hot node labels only
  node_attributes,        // continuous node attributes only
  labels_and_attributes,  // both, concatenated (labels first)
  degree,                 // one-hot node degree, degrees >= degree_cap share the last column
  constant,               // constant_dim ones per node (the paper's choice for COLLAB and REDDIT)
};
const EnumNames<FeatureMode>& feature_mode_names();  // "auto" is accepted for automatic
const char* feature_mode_name(FeatureMode mode);
FeatureMode parse_feature_mode(const std::string& text);  // throws InputError listing the allowed names

struct DatasetOptions {
  std::string data_dir;          // folder that holds <NAME>/<NAME>_A.txt[.gz] etc.
  FeatureMode features = FeatureMode::automatic;
  int degree_cap = 64;           // columns of the degree one-hot (>= 1)
  int constant_dim = 10;         // width of constant features (the authors used ten ones) (>= 1)
  bool keep_self_loops = false;  // TU files of some datasets (COLLAB) contain self-loops
  // > 0: drop every graph with more nodes, as the authors' code does with --max-nodes (for
  // reproducing their numbers only); 0 keeps every graph.
  int64_t max_nodes = 0;
};

struct GraphDataset {
  std::string name;
  std::string source_dir;                 // where the files were read from

  // Structure.
  std::vector<int64_t> node_offsets;      // [num_graphs + 1]
  std::vector<int64_t> adjacency_offsets; // CSR row pointer over global node ids, [num_nodes + 1]
  std::vector<int32_t> adjacency_targets; // global neighbour ids, sorted and unique per row
  // Labels.
  std::vector<int32_t> labels;            // graph class in 0..num_classes-1, [num_graphs]
  std::vector<std::string> class_values;  // the raw label text of each class (in ascending numeric order)
  // Node features, row-major [num_nodes, num_features].
  int64_t num_features = 0;
  std::vector<float> features;
  std::string feature_description;        // e.g. "3 node-label one-hot + 18 attributes"

  // What the reader found (for logs and result files).
  int64_t duplicate_edges_removed = 0;    // repeated lines of _A.txt (the social datasets list each edge 4x)
  int64_t self_loops_removed = 0;
  int64_t num_node_labels = 0;            // distinct node label values (0 if no node labels)
  int64_t num_node_attributes = 0;        // attribute columns (0 if none)
  // Graphs dropped by DatasetOptions::max_nodes; graph indices (splits, results) then count the
  // remaining graphs, and source_graph maps each to its index in the files.
  int64_t graphs_dropped = 0;
  std::vector<int64_t> source_graph;      // empty when nothing was dropped
  // 16 hex digits identifying the data as loaded: a hash of the structure, labels, class values
  // and features (dataset_digest). Equal for the same data whatever form its files take (.txt or
  // .gz); a changed edge, label or feature changes it. Job files and checkpoints record it, so a
  // run never mixes results computed on different copies of a dataset.
  std::string digest;

  int64_t num_graphs() const { return static_cast<int64_t>(labels.size()); }
  int64_t num_nodes() const { return node_offsets.empty() ? 0 : node_offsets.back(); }
  int64_t num_nodes(int64_t graph) const {
    return node_offsets[static_cast<std::size_t>(graph) + 1] - node_offsets[static_cast<std::size_t>(graph)];
  }
  int64_t num_directed_edges() const { return static_cast<int64_t>(adjacency_targets.size()); }
  int64_t max_nodes() const;
  int num_classes() const { return static_cast<int>(class_values.size()); }
};

// Reads <data_dir>/<name>/<name>_*.txt (each file may instead be <file>.txt.gz; when both exist
// they must hold the same lines, and .txt is read). Required files: _A, _graph_indicator,
// _graph_labels; optional: _node_labels, _node_attributes, _edge_labels (checked against _A, not
// used). Fewer than two classes is an InputError. Lines and gzip inflation are limited
// (text_reader.hpp, engine/README.md "Dataset files"). Edges are made symmetric and deduplicated;
// self-loops are dropped unless keep_self_loops. Malformed input throws InputError "<path>:<line>: <what>, got '<text>'"; a
// missing dataset names where it looked and the official download URL. COLLAB (725 MB of gzip
// text) loads in about 4 s, bounded by zlib's inflate speed.
GraphDataset load_tu_dataset(const std::string& name, const DatasetOptions& options);

// The digest described at GraphDataset::digest, computed from the dataset's arrays (D&D's 119 MB
// of them in 0.025 s, COLLAB's 116 MB in 0.033 s on the development VM, beside other work).
std::string dataset_digest(const GraphDataset& data);

// The data directory: the explicit value if non-empty, else $DIFFPOOL_DATA, else "./datasets".
std::string resolve_data_dir(const std::string& explicit_dir);

// Official download URL of a TU dataset (https://www.chrsmrrs.com/graphkerneldatasets/<NAME>.zip).
std::string tu_download_url(const std::string& name);

}  // namespace diffpool
