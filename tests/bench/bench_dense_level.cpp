// Where one dense GEMM per graph overtakes the CSR product for level 0's neighbour mean
// (engine/data/batch.hpp, dense_level0): Y = D^-1 A X over a batch of B random graphs of n nodes,
// each node pair linked with probability p, X (B n, F). Times the backend's CSR spmm over the
// block-diagonal batch and B GEMMs n x n x F over dense blocks (as A X and as A^T X, the forward
// and the backward), each the best of 30 runs, and prints the fill sum n^2 / nnz beside the
// ratio of the times: the dense path pays where the ratio is above 1.
//
//   bench_dense_level [--graphs B] [--width F] [--sizes n ...] [--densities p ...]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/random.hpp"

namespace {
using namespace diffpool;

template <class F> double best_seconds(Backend& backend, F&& f) {
  double best = 1e30;
  for (int run = 0; run < 30; ++run) {
    backend.synchronize();
    const auto start = std::chrono::steady_clock::now();
    f();
    backend.synchronize();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CSR product against one dense GEMM per graph, for level 0's neighbour mean"};
  int64_t graphs = 20, width = 64;
  std::vector<int64_t> sizes = {10, 20, 40, 74, 150, 300};
  std::vector<double> densities = {0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0};
  app.add_option("--graphs", graphs, "graphs per batch")->capture_default_str();
  app.add_option("--width", width, "feature columns F")->capture_default_str();
  app.add_option("--sizes", sizes, "nodes per graph")->capture_default_str();
  app.add_option("--densities", densities, "probability of each node pair's edge")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto backend = make_cpu_backend(1);
  Rng rng(1);
  fmt::print("{:>5} {:>6} {:>8} {:>11} {:>11} {:>11} {:>12}\n", "n", "p", "fill", "csr us", "dense us",
             "dense^T us", "csr / dense");
  for (const int64_t n : sizes) {
    for (const double p : densities) {
      const int64_t rows = graphs * n;
      // The batch's adjacency, graph by graph: row-normalised dense blocks and the same as CSR.
      std::vector<float> blocks(static_cast<std::size_t>(graphs * n * n), 0.0f);
      for (int64_t g = 0; g < graphs; ++g)
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = i + 1; j < n; ++j)
            if (rng.uniform() < p) blocks[static_cast<std::size_t>((g * n + i) * n + j)] =
                                       blocks[static_cast<std::size_t>((g * n + j) * n + i)] = 1.0f;
      std::vector<int32_t> row_ptr(1, 0), col_idx;
      std::vector<float> values;
      for (int64_t g = 0; g < graphs; ++g)
        for (int64_t i = 0; i < n; ++i) {
          float* row = blocks.data() + (g * n + i) * n;
          const auto degree = static_cast<float>(std::count(row, row + n, 1.0f));
          for (int64_t j = 0; j < n; ++j)
            if (row[j] != 0.0f) {
              row[j] = 1.0f / degree;
              col_idx.push_back(static_cast<int32_t>(g * n + j));
              values.push_back(row[j]);
            }
          row_ptr.push_back(static_cast<int32_t>(col_idx.size()));
        }
      const auto nnz = static_cast<int64_t>(col_idx.size());
      if (nnz == 0) continue;
      Csr a;
      a.rows = a.cols = rows;
      a.nnz = nnz;
      a.row_ptr = upload<int32_t>(*backend, row_ptr, Shape{rows + 1});
      a.col_idx = upload<int32_t>(*backend, col_idx, Shape{nnz});
      a.values = upload<float>(*backend, values, Shape{nnz});
      const Tensor dense = upload<float>(*backend, blocks, Shape{graphs * n * n});
      Tensor x = allocate_tensor(*backend, Shape{rows, width}, DType::f32), y = allocate_tensor(*backend, Shape{rows, width}, DType::f32);
      backend->fill(x, 0.5);
      const std::size_t es = sizeof(float);
      auto per_graph = [&](Trans t) {
        for (int64_t g = 0; g < graphs; ++g)
          backend->gemm(t, Trans::no, n, width, n, 1.0, static_cast<const char*>(dense.data()) + g * n * n * es, n,
                        static_cast<const char*>(x.data()) + g * n * width * es, width, 0.0,
                        static_cast<char*>(y.data()) + g * n * width * es, width, DType::f32);
      };
      const double csr = best_seconds(*backend, [&] { backend->spmm(a, x, 1.0, 0.0, y); });
      const double gemm = best_seconds(*backend, [&] { per_graph(Trans::no); });
      const double gemm_t = best_seconds(*backend, [&] { per_graph(Trans::yes); });
      fmt::print("{:>5} {:>6.2f} {:>8.2f} {:>11.1f} {:>11.1f} {:>11.1f} {:>12.2f}\n", n, p,
                 static_cast<double>(graphs * n * n) / static_cast<double>(nnz), csr * 1e6, gemm * 1e6, gemm_t * 1e6,
                 csr / std::max(gemm, gemm_t));
    }
  }
  return 0;
}
