#include "engine/data/batch.hpp"

#include <algorithm>

#include "engine/core/error.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/graclus.hpp"

namespace diffpool {

HostCsr transpose(const HostCsr& a) {
  HostCsr t;
  t.rows = a.cols;
  t.cols = a.rows;
  t.row_ptr.assign(static_cast<std::size_t>(t.rows) + 1, 0);
  for (int32_t c : a.col_idx) ++t.row_ptr[static_cast<std::size_t>(c) + 1];
  for (int64_t r = 0; r < t.rows; ++r) t.row_ptr[static_cast<std::size_t>(r) + 1] += t.row_ptr[static_cast<std::size_t>(r)];
  t.col_idx.resize(a.col_idx.size());
  t.values.resize(a.values.size());
  std::vector<int32_t> next(t.row_ptr.begin(), t.row_ptr.end() - 1);
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int32_t e = a.row_ptr[static_cast<std::size_t>(r)]; e < a.row_ptr[static_cast<std::size_t>(r) + 1]; ++e) {
      const int32_t c = a.col_idx[static_cast<std::size_t>(e)];
      const int32_t pos = next[static_cast<std::size_t>(c)]++;
      t.col_idx[static_cast<std::size_t>(pos)] = static_cast<int32_t>(r);
      t.values[static_cast<std::size_t>(pos)] = a.values[static_cast<std::size_t>(e)];
    }
  }
  return t;
}

namespace {
template <class T> Tensor upload_to(Workspace& ws, const T* data, Shape shape, DType dtype) {
  Tensor t = ws.empty(shape, dtype);
  ws.backend().copy_bytes(t.data(), t.device(), data, Device::cpu, t.bytes());
  return t;
}

// Host doubles into a new workspace tensor of the working dtype (upload_converted does the f32 narrowing).
Tensor upload_floats(Workspace& ws, const std::vector<double>& host, Shape shape, DType dtype) {
  Tensor t = ws.empty(shape, dtype);
  upload_converted(ws.backend(), host, t);
  return t;
}
// A batch's host arrays go to the device in one copy instead of one per array (a dozen, each a
// driver call on CUDA): every array gets an aligned slot in one workspace allocation, its values
// are written at that slot's offset in a host staging buffer (or straight into the workspace where
// it is host memory: no copy at all), and send() moves the staging buffer in one copy_bytes. The
// values written are those the per-array uploads wrote (f32 narrowing by static_cast, as
// upload_converted).
class UploadPack {
 public:
  // A slot of `shape` and `dtype`; returns its index (tensors and writes are by index).
  std::size_t add(Shape shape, DType dtype) {
    slots_.push_back(Slot{shape, dtype, bytes_});
    bytes_ += align(std::max<std::size_t>(1, static_cast<std::size_t>(shape.numel()) * dtype_size(dtype)));
    return slots_.size() - 1;
  }
  // Allocates the slots' memory in the workspace; after it, write() and tensor() may be used.
  void allocate(Workspace& ws) {
    memory_ = ws.empty(Shape{static_cast<int64_t>(bytes_ / sizeof(double))}, DType::f64);
    direct_ = memory_.device() == Device::cpu;
    if (direct_) return;
    // The backend's page-locked staging where it has one (CUDA: the copy then never waits for the
    // stream), else a buffer of our own.
    staged_ = ws.backend().staging_buffer(bytes_);
    if (!staged_) {
      staging_.resize(bytes_ / sizeof(double));
      staged_ = staging_.data();
    }
  }
  Tensor tensor(std::size_t i) const {
    return Tensor(static_cast<char*>(memory_.data()) + slots_[i].at, slots_[i].shape, slots_[i].dtype, memory_.device());
  }
  // Where slot i's values go on the host, as T (the slot's dtype).
  template <class T> T* host(std::size_t i) {
    DP_CHECK(dtype_of<T>() == slots_[i].dtype, "upload slot {} holds {}", i, dtype_name(slots_[i].dtype));
    char* base = static_cast<char*>(direct_ ? memory_.data() : staged_);
    return reinterpret_cast<T*>(base + slots_[i].at);
  }
  // Slot i = values, converted to the slot's dtype (static_cast), all of its elements.
  template <class U> void write(std::size_t i, const std::vector<U>& values) {
    DP_CHECK(static_cast<int64_t>(values.size()) == slots_[i].shape.numel(), "upload slot {}: {} values for {}", i,
             values.size(), slots_[i].shape.numel());
    auto convert = [&](auto* out) {
      using T = std::remove_pointer_t<decltype(out)>;
      std::transform(values.begin(), values.end(), out, [](U v) { return static_cast<T>(v); });
    };
    switch (slots_[i].dtype) {
      case DType::f32: convert(host<float>(i)); return;
      case DType::f64: convert(host<double>(i)); return;
      case DType::i32: convert(host<int32_t>(i)); return;
    }
  }
  void send(Workspace& ws) {
    if (!direct_) ws.backend().copy_bytes(memory_.data(), memory_.device(), staged_, Device::cpu, bytes_);
  }

 private:
  static std::size_t align(std::size_t n) { return (n + 255) / 256 * 256; }  // the workspace's alignment
  struct Slot {
    Shape shape;
    DType dtype;
    std::size_t at;
  };
  std::vector<Slot> slots_;
  std::size_t bytes_ = 0;
  Tensor memory_;
  bool direct_ = false;
  void* staged_ = nullptr;         // where the values are written before send (not direct_)
  std::vector<double> staging_;  // doubles: aligned for every dtype
};

// Level 0's dense blocks (dense_level0): block g of `a` is graph g's A, of `mean` its D^-1 A (row r
// scaled by inv_degree[r]), each n_g x n_g row-major with graph-local columns. Written in place
// where the workspace is host memory (no copy, and the workspace's pages are already mapped);
// otherwise written in the backend's staging buffers (page-locked on CUDA) and copied once each. On COLLAB, building all 250 batches
// of 20 graphs takes 0.20 s with the blocks, 0.16 s without.
template <class T>
void write_dense_blocks(Workspace& ws, const HostCsr& adj, const std::vector<double>& inv_degree, const Segments& nodes,
                        Tensor& a, Tensor& mean) {
  const auto elements = static_cast<std::size_t>(a.numel());
  const bool host = a.device() == Device::cpu;
  std::vector<T> staged_a, staged_mean;  // where the backend offers no staging buffer
  const auto stage = [&](Tensor& t, std::vector<T>& own) -> T* {
    if (host) return t.ptr<T>();
    if (void* p = ws.backend().staging_buffer(t.bytes())) return static_cast<T*>(p);
    own.resize(elements);
    return own.data();
  };
  T* pa = stage(a, staged_a);
  T* pm = stage(mean, staged_mean);
  std::fill_n(pa, elements, T(0));
  std::fill_n(pm, elements, T(0));
  int64_t at = 0;  // first element of graph g's block
  for (int64_t g = 0; g < nodes.count(); ++g) {
    const int64_t first = nodes.begin(g), size = nodes.size(g);
    for (int64_t r = first; r < first + size; ++r)
      for (int32_t e = adj.row_ptr[static_cast<std::size_t>(r)]; e < adj.row_ptr[static_cast<std::size_t>(r) + 1]; ++e) {
        const auto k = static_cast<std::size_t>(at + (r - first) * size + adj.col_idx[static_cast<std::size_t>(e)] - first);
        pa[k] = T(1);
        pm[k] = static_cast<T>(inv_degree[static_cast<std::size_t>(r)]);
      }
    at += size * size;
  }
  if (!host) {
    ws.backend().copy_bytes(a.data(), a.device(), pa, Device::cpu, a.bytes());
    ws.backend().copy_bytes(mean.data(), mean.device(), pm, Device::cpu, mean.bytes());
  }
}
// The one-hot blocks of DIFFPOOL-DET's fixed assignments for a batch, level by level, with their
// shapes (nothing when `fixed` is null).
std::vector<std::pair<std::vector<double>, Shape>> fixed_onehots(const FixedAssignments* fixed,
                                                                 const std::vector<int64_t>& graph_ids, int64_t n) {
  std::vector<std::pair<std::vector<double>, Shape>> out;
  const int64_t b = static_cast<int64_t>(graph_ids.size());
  if (fixed && !fixed->counts.empty()) {
    // Per-graph counts: one-hot blocks [rows_g, k_g], rows_g the graph's nodes at level 0 and its
    // clusters of the level before after that, packed flat [elements, 1] (engine/ops/blocks.hpp).
    for (std::size_t l = 0; l < fixed->clusters_per_level.size(); ++l) {
      std::vector<double> onehot;
      for (int64_t i = 0; i < b; ++i) {
        const auto id = static_cast<std::size_t>(graph_ids[static_cast<std::size_t>(i)]);
        const auto& cluster = fixed->clusters[id][l];
        const int64_t k = fixed->counts[id][l];
        const std::size_t at = onehot.size();
        onehot.resize(at + cluster.size() * static_cast<std::size_t>(k), 0.0);
        for (std::size_t v = 0; v < cluster.size(); ++v) onehot[at + v * static_cast<std::size_t>(k) + static_cast<std::size_t>(cluster[v])] = 1.0;
      }
      const Shape shape{static_cast<int64_t>(onehot.size()), 1};
      out.emplace_back(std::move(onehot), shape);
    }
  } else if (fixed) {
    // Level 0: [N, k1] one-hot over packed node rows; level l >= 1: [B * k_l, k_{l+1}].
    int64_t rows_per_graph = -1;  // -1: level 0 (variable)
    for (std::size_t l = 0; l < fixed->clusters_per_level.size(); ++l) {
      const int64_t k = fixed->clusters_per_level[l];
      const int64_t rows = rows_per_graph < 0 ? n : b * rows_per_graph;
      std::vector<double> onehot(static_cast<std::size_t>(rows * k), 0.0);
      int64_t row = 0;
      for (int64_t i = 0; i < b; ++i) {
        const auto& cluster = fixed->clusters[static_cast<std::size_t>(graph_ids[static_cast<std::size_t>(i)])][l];
        const int64_t graph_rows = rows_per_graph < 0 ? static_cast<int64_t>(cluster.size()) : rows_per_graph;
        DP_CHECK(static_cast<int64_t>(cluster.size()) == graph_rows, "fixed assignment of graph {} level {} has {} rows, expected {}",
                 graph_ids[static_cast<std::size_t>(i)], l, cluster.size(), graph_rows);
        for (int64_t v = 0; v < graph_rows; ++v)
          onehot[static_cast<std::size_t>((row + v) * k + cluster[static_cast<std::size_t>(v)])] = 1.0;
        row += graph_rows;
      }
      out.emplace_back(std::move(onehot), Shape{rows, k});
      rows_per_graph = k;
    }
  }
  return out;
}

}  // namespace

Csr upload_csr(Workspace& ws, const HostCsr& a, DType dtype) {
  Csr c;
  c.rows = a.rows;
  c.cols = a.cols;
  c.nnz = static_cast<int64_t>(a.col_idx.size());
  c.row_ptr = upload_to(ws, a.row_ptr.data(), Shape{a.rows + 1}, DType::i32);
  c.col_idx = upload_to(ws, a.col_idx.data(), Shape{c.nnz}, DType::i32);
  c.values = upload_floats(ws, a.values, Shape{c.nnz}, dtype);
  return c;
}

FixedAssignments compute_fixed_assignments(const GraphDataset& dataset, const std::vector<int64_t>& clusters_per_level,
                                           const PerGraphClusters& per_graph) {
  FixedAssignments fixed;
  fixed.clusters_per_level = clusters_per_level;
  fixed.clusters.resize(static_cast<std::size_t>(dataset.num_graphs()));
  if (per_graph) fixed.counts.resize(static_cast<std::size_t>(dataset.num_graphs()));
  for (int64_t g = 0; g < dataset.num_graphs(); ++g) {
    const int64_t base = dataset.node_offsets[static_cast<std::size_t>(g)];
    LocalGraph local;
    local.num_nodes = dataset.num_nodes(g);
    local.offsets.resize(static_cast<std::size_t>(local.num_nodes) + 1, 0);
    for (int64_t v = 0; v < local.num_nodes; ++v) {
      const int64_t begin = dataset.adjacency_offsets[static_cast<std::size_t>(base + v)];
      const int64_t end = dataset.adjacency_offsets[static_cast<std::size_t>(base + v) + 1];
      for (int64_t e = begin; e < end; ++e)
        local.targets.push_back(static_cast<int32_t>(dataset.adjacency_targets[static_cast<std::size_t>(e)] - base));
      local.offsets[static_cast<std::size_t>(v) + 1] = static_cast<int64_t>(local.targets.size());
    }
    auto& levels = fixed.clusters[static_cast<std::size_t>(g)];
    for (std::size_t l = 0; l < clusters_per_level.size(); ++l) {
      const int64_t k = per_graph ? per_graph(static_cast<int>(l), local.num_nodes) : clusters_per_level[l];
      std::vector<int32_t> cluster = graclus_clusters(local, k);
      // The next level's graph has exactly k rows (DiffPool pads nothing: clusters that Graclus
      // leaves empty, where the graph has fewer than k nodes, are rows without members), so
      // coarsen into k clusters. Per graph, k <= the graph's size and no cluster is empty.
      local = coarsen(local, cluster, k);
      levels.push_back(std::move(cluster));
      if (per_graph) fixed.counts[static_cast<std::size_t>(g)].push_back(k);
    }
  }
  return fixed;
}

bool dense_level0(int64_t nodes, int64_t nnz, int64_t sum_squares) {
  return nodes > 0 && nnz >= dense_min_degree * nodes && sum_squares <= dense_max_fill * nnz;
}

GraphBatch build_batch(const GraphDataset& dataset, const std::vector<int64_t>& graph_ids, Workspace& ws, DType dtype,
                       const FixedAssignments* fixed) {
  DP_CHECK(!graph_ids.empty(), "a batch needs at least one graph");
  GraphBatch batch;
  batch.graph_ids = graph_ids;
  const int64_t b = static_cast<int64_t>(graph_ids.size());
  const int64_t f = dataset.num_features;

  std::vector<int64_t> offsets(static_cast<std::size_t>(b) + 1, 0);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t g = graph_ids[static_cast<std::size_t>(i)];
    DP_CHECK(g >= 0 && g < dataset.num_graphs(), "graph index {} outside the dataset's {} graphs", g,
             dataset.num_graphs());
    offsets[static_cast<std::size_t>(i) + 1] = offsets[static_cast<std::size_t>(i)] + dataset.num_nodes(g);
  }
  const int64_t n = offsets.back();

  // Features and the block-diagonal adjacency, renumbered to batch rows. The dataset's
  // adjacency is symmetric, so A, D^-1 A and (D^-1 A)^T = A D^-1 share one sparsity pattern:
  // one row pointer and one column index array, three value arrays (1, 1/deg(row), 1/deg(col)).
  // Every array of the batch goes to the device in one upload (UploadPack), the fixed assignments'
  // one-hot blocks too; the features and the two mean-aggregation value arrays are written
  // straight into their slots (no host copy of their own: they are most of a batch's bytes).
  const bool f32 = dtype == DType::f32;
  HostCsr& adj = batch.host_adjacency;
  adj.rows = adj.cols = n;
  adj.row_ptr.assign(static_cast<std::size_t>(n) + 1, 0);
  std::vector<double> inv_degree(static_cast<std::size_t>(n), 0.0);
  std::vector<double> sq_norms(static_cast<std::size_t>(b), 0.0);
  std::vector<int32_t> labels(static_cast<std::size_t>(b));
  std::size_t edges = 0;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t g = graph_ids[static_cast<std::size_t>(i)];
    const int64_t base = dataset.node_offsets[static_cast<std::size_t>(g)];
    edges += static_cast<std::size_t>(dataset.adjacency_offsets[static_cast<std::size_t>(base + dataset.num_nodes(g))] -
                                      dataset.adjacency_offsets[static_cast<std::size_t>(base)]);
  }
  DP_CHECK(edges <= static_cast<std::size_t>(INT32_MAX), "batch has more than 2^31 edges");
  adj.col_idx.reserve(edges);
  const std::vector<std::pair<std::vector<double>, Shape>> onehots = fixed_onehots(fixed, graph_ids, n);
  const auto edges_i = static_cast<int64_t>(edges);
  UploadPack pack;
  const std::size_t s_offsets = pack.add(Shape{b + 1}, DType::i32), s_features = pack.add(Shape{n, f}, dtype),
                    s_labels = pack.add(Shape{b}, DType::i32), s_row_ptr = pack.add(Shape{n + 1}, DType::i32),
                    s_col_idx = pack.add(Shape{edges_i}, DType::i32), s_values = pack.add(Shape{edges_i}, dtype),
                    s_mean = pack.add(Shape{edges_i}, dtype), s_mean_t = pack.add(Shape{edges_i}, dtype),
                    s_sq_norms = pack.add(Shape{b, 1}, dtype);
  std::vector<std::size_t> s_onehots;
  for (const auto& [values, shape] : onehots) s_onehots.push_back(pack.add(shape, dtype));
  pack.allocate(ws);
  float* const features_f32 = f32 ? pack.host<float>(s_features) : nullptr;
  double* const features_f64 = f32 ? nullptr : pack.host<double>(s_features);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t g = graph_ids[static_cast<std::size_t>(i)];
    labels[static_cast<std::size_t>(i)] = dataset.labels[static_cast<std::size_t>(g)];
    const int64_t src_base = dataset.node_offsets[static_cast<std::size_t>(g)];
    const int64_t dst_base = offsets[static_cast<std::size_t>(i)];
    const int64_t nodes = dataset.num_nodes(g);
    const auto src = dataset.features.begin() + src_base * f;
    if (f32) std::copy_n(src, nodes * f, features_f32 + dst_base * f);
    else std::copy_n(src, nodes * f, features_f64 + dst_base * f);
    for (int64_t v = 0; v < nodes; ++v) {
      const int64_t begin = dataset.adjacency_offsets[static_cast<std::size_t>(src_base + v)];
      const int64_t end = dataset.adjacency_offsets[static_cast<std::size_t>(src_base + v) + 1];
      inv_degree[static_cast<std::size_t>(dst_base + v)] = end > begin ? 1.0 / static_cast<double>(end - begin) : 0.0;
      for (int64_t e = begin; e < end; ++e)
        adj.col_idx.push_back(static_cast<int32_t>(dataset.adjacency_targets[static_cast<std::size_t>(e)] - src_base + dst_base));
      adj.row_ptr[static_cast<std::size_t>(dst_base + v) + 1] = static_cast<int32_t>(adj.col_idx.size());
      sq_norms[static_cast<std::size_t>(i)] += static_cast<double>(end - begin);
    }
  }
  const std::size_t nnz = adj.col_idx.size();
  DP_CHECK(nnz == edges, "batch adjacency: {} edges written, {} counted", nnz, edges);
  adj.values.assign(nnz, 1.0);
  // Edge e of row r: D^-1 A holds 1/deg(r), (D^-1 A)^T 1/deg(col_idx[e]), as T (the narrowing of
  // the double, as a write of double arrays would make it).
  auto write_means = [&](auto* mean, auto* mean_t) {
    using T = std::remove_pointer_t<decltype(mean)>;
    for (int64_t r = 0; r < n; ++r)
      for (int32_t e = adj.row_ptr[static_cast<std::size_t>(r)]; e < adj.row_ptr[static_cast<std::size_t>(r) + 1]; ++e) {
        mean[e] = static_cast<T>(inv_degree[static_cast<std::size_t>(r)]);
        mean_t[e] = static_cast<T>(inv_degree[static_cast<std::size_t>(adj.col_idx[static_cast<std::size_t>(e)])]);
      }
  };
  if (f32) write_means(pack.host<float>(s_mean), pack.host<float>(s_mean_t));
  else write_means(pack.host<double>(s_mean), pack.host<double>(s_mean_t));

  batch.nodes = make_segments_staged(std::move(offsets), pack.tensor(s_offsets), pack.host<int32_t>(s_offsets));
  pack.write(s_labels, labels);
  pack.write(s_row_ptr, adj.row_ptr);
  pack.write(s_col_idx, adj.col_idx);
  pack.write(s_values, adj.values);
  pack.write(s_sq_norms, sq_norms);
  for (std::size_t l = 0; l < onehots.size(); ++l) pack.write(s_onehots[l], onehots[l].first);
  pack.send(ws);
  batch.features = pack.tensor(s_features);
  batch.labels = pack.tensor(s_labels);
  batch.adjacency.rows = batch.adjacency.cols = n;
  batch.adjacency.nnz = edges_i;
  batch.adjacency.row_ptr = pack.tensor(s_row_ptr);
  batch.adjacency.col_idx = pack.tensor(s_col_idx);
  batch.adjacency.values = pack.tensor(s_values);
  batch.mean_adjacency = batch.adjacency;
  batch.mean_adjacency.values = pack.tensor(s_mean);
  batch.mean_adjacency_t = batch.adjacency;
  batch.mean_adjacency_t.values = pack.tensor(s_mean_t);
  batch.adjacency_sq_norms = pack.tensor(s_sq_norms);
  for (std::size_t s : s_onehots) batch.fixed_assignments.push_back(pack.tensor(s));

  int64_t sum_squares = 0;
  for (int64_t i = 0; i < b; ++i) sum_squares += batch.nodes.size(i) * batch.nodes.size(i);
  if (dense_level0(n, static_cast<int64_t>(nnz), sum_squares)) {
    batch.dense_adjacency = ws.empty(Shape{sum_squares, 1}, dtype);
    batch.dense_mean_adjacency = ws.empty(Shape{sum_squares, 1}, dtype);
    auto fill = [&](auto zero) {
      using T = decltype(zero);
      write_dense_blocks<T>(ws, adj, inv_degree, batch.nodes, batch.dense_adjacency, batch.dense_mean_adjacency);
    };
    if (f32) fill(float{});
    else fill(double{});
  }

  return batch;
}

}  // namespace diffpool
