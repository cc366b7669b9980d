#pragma once
// The reference rate of the benchmarks: GFLOP/s of one square single-precision product on a
// backend, the practical limit of the hardware that absolute timings are reported beside.
#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/backend/backend.hpp"

namespace diffpool::bench {

// GFLOP/s of C = A B for n x n single-precision matrices on `backend`: the median of five products
// after one untimed one.
inline double sgemm_rate(Backend& backend, int n) {
  Tensor a = allocate_tensor(backend, Shape{n, n}, DType::f32), b = allocate_tensor(backend, Shape{n, n}, DType::f32),
         c = allocate_tensor(backend, Shape{n, n}, DType::f32);
  backend.fill(a, 0.5);
  backend.fill(b, 0.25);
  std::vector<double> rates;
  for (int i = 0; i < 6; ++i) {
    backend.synchronize();
    const auto start = std::chrono::steady_clock::now();
    backend.gemm(Trans::no, Trans::no, n, n, n, 1.0, a.data(), n, b.data(), n, 0.0, c.data(), n, DType::f32);
    backend.synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i > 0) rates.push_back(2.0 * n * static_cast<double>(n) * n / s / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace diffpool::bench
