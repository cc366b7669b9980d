#pragma once
// Helpers for comparing a backend under test with the CPU reference backend: the backend pair,
// identical inputs on both, and element-wise comparison with float tolerances.
//
// Tolerances (|actual - expected| <= allowed, element by element):
//   * scaled:  rtol |expected| + atol max(1, max |expected|)
//              f32: rtol 1e-5, atol 1e-6;  f64: rtol 1e-12, atol 1e-12.
//     For elementwise and fused row/column operations. Both backends accumulate reductions in
//     double, so f32 results differ by a few ulps at most (device expf/logf are within 2 ulps,
//     nvcc may fuse a * b + c); the max |expected| term covers cancellation near zero.
//   * bounded: factor * bound[i], with bound[i] = sum of the magnitudes of the terms that make
//              element i (for products: |alpha| sum_l |a_il b_lj| + |beta c_ij|).
//              f32: factor 1e-5;  f64: factor 1e-12.
//     For gemm and spmm, which accumulate in the working precision in an order that differs
//     between cuBLAS and OpenBLAS; the rounding error of a dot product of length k grows like
//     sqrt(k) eps times the bound, so 1e-5 leaves margin for k in the thousands.
//   * exact:   integers (argmax, predictions, counts), dropout masks and NaN/Inf placement.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/backend/cuda_device.hpp"
#include "engine/core/random.hpp"

#if defined(DIFFPOOL_CUDA_EMULATION)
#include "engine/backend/cuda/cuda_backend.hpp"
#endif

namespace diffpool::testing {

template <class T> constexpr double kRelativeTolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
template <class T> constexpr double kAbsoluteTolerance = std::is_same_v<T, float> ? 1e-6 : 1e-12;
template <class T> constexpr double kProductTolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;

// Runs f(float{}) and f(double{}), each under a trace naming the dtype.
template <class F> void for_each_float(F&& f) {
  {
    SCOPED_TRACE("dtype f32");
    f(float{});
  }
  {
    SCOPED_TRACE("dtype f64");
    f(double{});
  }
}

// Uniform values in [lo, hi); a fraction `zeros` of them set to exactly 0.
template <class T>
std::vector<T> random_values(Rng& rng, int64_t n, double lo, double hi, double zeros = 0.0) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (T& x : v) x = rng.uniform() < zeros ? T(0) : static_cast<T>(rng.uniform(lo, hi));
  return v;
}
// Small integers in [0, levels) as floats: rows with many ties, for argmax semantics.
template <class T> std::vector<T> tied_values(Rng& rng, int64_t n, int levels) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (T& x : v) x = static_cast<T>(rng.below(static_cast<uint64_t>(levels)));
  return v;
}
template <class T> std::vector<T> nan_values(int64_t n) {
  return std::vector<T>(static_cast<std::size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// The same host data on the reference and on the tested backend.
struct Twin {
  Tensor reference;
  Tensor tested;
};
template <class T> Twin make_twin(Backend& reference, Backend& tested, const std::vector<T>& host, Shape shape) {
  EXPECT_EQ(static_cast<int64_t>(host.size()), shape.numel());
  return Twin{upload<T>(reference, host, shape), upload<T>(tested, host, shape)};
}

// The scaled tolerance's two factors; looser ones are for results of many chained operations
// (a model's training step), whose callers document them.
struct Tolerance {
  double rtol, atol;
};
template <class T> constexpr Tolerance kScaledTolerance{kRelativeTolerance<T>, kAbsoluteTolerance<T>};

// Element-wise comparison; `bounds` (same length) switches to the bounded tolerance.
template <class T>
void expect_close(const std::string& what, const std::vector<T>& expected, const std::vector<T>& actual,
                  const std::vector<double>* bounds = nullptr, Tolerance scaled = kScaledTolerance<T>) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  double scale = 1.0;
  for (T e : expected)
    if (std::isfinite(static_cast<double>(e))) scale = std::max(scale, std::abs(static_cast<double>(e)));
  std::size_t mismatches = 0, worst = 0;
  double worst_ratio = 0;
  std::ostringstream first;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = expected[i], a = actual[i];
    bool ok;
    double allowed = 0, diff = 0;
    if (std::isnan(e) || std::isnan(a)) {
      ok = std::isnan(e) && std::isnan(a);
    } else if (std::isinf(e) || std::isinf(a)) {
      ok = e == a;
    } else {
      diff = std::abs(a - e);
      allowed = bounds ? kProductTolerance<T> * (*bounds)[i] + std::numeric_limits<T>::denorm_min()
                       : scaled.rtol * std::abs(e) + scaled.atol * scale;
      ok = diff <= allowed;
    }
    if (ok) continue;
    const double ratio = allowed > 0 ? diff / allowed : std::numeric_limits<double>::infinity();
    if (mismatches == 0 || ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
    if (mismatches < 5) first << "\n  [" << i << "] expected " << e << ", got " << a << " (allowed " << allowed << ")";
    ++mismatches;
  }
  if (mismatches > 0) {
    std::ostringstream message;
    message.precision(17);
    message << what << ": " << mismatches << " of " << expected.size() << " elements differ; worst at [" << worst
            << "]: expected " << static_cast<double>(expected[worst]) << ", got " << static_cast<double>(actual[worst])
            << "; first:" << first.str();
    ADD_FAILURE() << message.str();
  }
}

template <class T>
void expect_equal(const std::string& what, const std::vector<T>& expected, const std::vector<T>& actual) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  std::size_t mismatches = 0;
  std::ostringstream first;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == actual[i]) continue;
    if (mismatches < 5) first << "\n  [" << i << "] expected " << expected[i] << ", got " << actual[i];
    ++mismatches;
  }
  if (mismatches > 0) ADD_FAILURE() << what << ": " << mismatches << " of " << expected.size() << " differ:" << first.str();
}

// Downloads both sides of a twin and compares them.
template <class T>
void expect_twin_close(const std::string& what, Backend& reference, Backend& tested, const Twin& t,
                       const std::vector<double>* bounds = nullptr) {
  expect_close<T>(what, download<T>(reference, t.reference), download<T>(tested, t.tested), bounds);
}
template <class T>
void expect_twin_equal(const std::string& what, Backend& reference, Backend& tested, const Twin& t) {
  expect_equal<T>(what, download<T>(reference, t.reference), download<T>(tested, t.tested));
}

// The CPU reference backend and the CUDA backend under test, made once per test suite. Every test
// skips with "no CUDA device: ..." where the build has no CUDA backend or no GPU is visible; built
// with DIFFPOOL_CUDA_EMULATION, the tested backend is the CPU emulation of the CUDA sources.
class BackendPairTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = make_cpu_backend(1);
    try {
#if defined(DIFFPOOL_CUDA_EMULATION)
      // Exact-size allocations, so that the emulator sees any access past the end of a tensor; the
      // grouped cuBLAS call of gemm_grouped's large groups on (off by default until timed on a GPU,
      // where tests/gpu/run_on_gpu.sh runs these tests with DIFFPOOL_CUDA_CUBLAS_GROUPED=1 too).
      tested_ = DP_CUDA_NS::create_cuda_backend(0, {.caching_allocator = false, .cublas_grouped = true, .graphs = {}});
#else
      if (!cuda_backend_built())
        skip_reason_ = "no CUDA device: this build has no CUDA backend (nvcc not found at configure time, or "
                       "DIFFPOOL_CUDA=OFF)";
      else if (cuda_device_count() == 0)
        skip_reason_ = "no CUDA device: none is visible (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them)";
      else
        tested_ = make_cuda_backend(0);
#endif
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    tested_.reset();
    reference_.reset();
  }
  void SetUp() override {
    if (!setup_error_.empty()) FAIL() << "creating the CUDA backend failed: " << setup_error_;
    if (!tested_) GTEST_SKIP() << skip_reason_;
  }

  static Backend& ref() { return *reference_; }
  static Backend& gpu() { return *tested_; }

  inline static std::unique_ptr<Backend> reference_, tested_;
  inline static std::string skip_reason_, setup_error_;
};

}  // namespace diffpool::testing
