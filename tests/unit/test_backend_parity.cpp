// Backend parity: every primitive of the CUDA backend against the CPU reference backend, on
// seeded random inputs, in f32 and f64, over shapes that are not multiples of 32, with thousands
// of rows, rows wider than one warp's share (> 1024 columns), batches of unequal graphs with
// empty ones, and every MapOp x Broadcast, Reduce, SegmentReduce and Trans combination. Tolerances
// are described in parity_util.hpp.
//
// Without a CUDA device (or in a build without the CUDA backend) every test skips with
// "no CUDA device: ...". Built with DIFFPOOL_CUDA_EMULATION (tests/cuda_emulation), the same tests
// run against the backend's sources compiled for a CPU emulation of CUDA.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/backend/cuda_device.hpp"
#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/tf32.hpp"
#include "engine/core/workspace.hpp"
#include "tests/unit/parity_util.hpp"


namespace diffpool {
namespace {

using testing::expect_close;
using testing::expect_equal;
using testing::expect_twin_close;
using testing::expect_twin_equal;
using testing::for_each_float;
using testing::nan_values;
using testing::random_values;
using testing::tied_values;
using testing::Twin;

struct Size {
  int64_t rows, cols;
};
std::string describe(const Size& s) { return "[" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "]"; }

// Shapes for row-wise and elementwise primitives: a single element, sizes that are not multiples
// of 32, thousands of rows, and rows wide enough for the block-per-row kernels (> 1024 columns).
const std::vector<Size> kShapes = {{1, 1}, {37, 33}, {3001, 17}, {5, 1030}};

class BackendParity : public testing::BackendPairTest {
 protected:
  template <class T> static Twin twin(const std::vector<T>& host, Shape shape) {
    return testing::make_twin<T>(ref(), gpu(), host, shape);
  }
  template <class T> static void expect_close_twin(const std::string& what, const Twin& t,
                                                   const std::vector<double>* bounds = nullptr) {
    gpu().synchronize();
    expect_twin_close<T>(what, ref(), gpu(), t, bounds);
  }

};

// Every value finite: a backward with beta 0 wrote all of its NaN-filled output.
template <class T> void expect_all_finite(const std::string& what, const std::vector<T>& values) {
  std::size_t nan = 0;
  for (T v : values) nan += std::isfinite(static_cast<double>(v)) ? 0 : 1;
  EXPECT_EQ(nan, 0u) << what << ": " << nan << " of " << values.size() << " values not written";
}

// ---- basics ---------------------------------------------------------------------------------------

TEST(CudaDeviceSelection, LocalRankModuloVisibleDevices) {
  const int count = cuda_device_count();
  EXPECT_GE(count, 0);
  for (int rank = 0; rank < 5; ++rank)
    EXPECT_EQ(select_cuda_device_for_local_rank(rank), count == 0 ? -1 : rank % count) << "local rank " << rank;
  if (!cuda_backend_built()) {
    EXPECT_EQ(count, 0);
    EXPECT_THROW(make_cuda_backend(0), InputError);
  }
}

TEST_F(BackendParity, Identity) {
  EXPECT_EQ(gpu().device(), Device::cuda);
  EXPECT_EQ(gpu().name().rfind("cuda:", 0), 0u) << gpu().name();
}

TEST_F(BackendParity, AllocateReuseAndCopyBytes) {
  Rng rng(1);
  gpu().deallocate(nullptr);  // must be a no-op
  for (int round = 0; round < 3; ++round) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{100}, int64_t{1000}, int64_t{300000}}) {
      const auto host = random_values<double>(rng, n, -1, 1);
      Tensor a = upload<double>(gpu(), host, Shape{n});
      Tensor b = allocate_tensor(gpu(), Shape{n}, DType::f64);
      copy_tensor(gpu(), a, b);  // device to device
      EXPECT_EQ(download<double>(gpu(), b), host) << "n = " << n;
    }
  }
  // A workspace on the device: zeros, reset, growth.
  Workspace workspace(gpu(), 1024);
  for (int step = 0; step < 3; ++step) {
    Tensor z = workspace.zeros(Shape{1000, 3}, DType::f32);
    Tensor w = workspace.zeros(Shape{70000}, DType::f64);
    EXPECT_EQ(download<float>(gpu(), z), std::vector<float>(3000, 0.0f));
    EXPECT_EQ(download<double>(gpu(), w), std::vector<double>(70000, 0.0));
    workspace.reset();
  }
}

// Uploads go through the backend's page-locked staging ring (CUDA: UploadRing in
// cuda_backend.cpp), whose copies read their source only when the stream reaches them. Many
// uploads in a row with no other device work between them (the ring wraps several times, slots
// grow, one upload is too large to stage), half written straight into staging_buffer and half
// from the caller's memory, which is overwritten as soon as copy_bytes returns (the contract lets
// the caller reuse it at once). Every destination must hold what was uploaded into it. Under the
// emulation the copies from page-locked memory are made only when the stream "reaches" them, so
// a slot rewritten before its copy ran (no wait for its event) shows up here as wrong values.
TEST_F(BackendParity, UploadsThroughStagingArriveIntact) {
  Rng rng(7);
  const std::vector<int64_t> sizes = {1, 100, 70000, 3, 300000, 1000, 9000000, 17, 5000, 2};  // doubles
  std::vector<Tensor> destinations;
  std::vector<std::vector<double>> expected;
  int staged = 0;
  for (int round = 0; round < 3; ++round)
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const int64_t n = sizes[i] + round;
      if (n > 100000 && round > 0) continue;  // the large ones once
      std::vector<double> values = random_values<double>(rng, n, -1, 1);
      Tensor dst = allocate_tensor(gpu(), Shape{n}, DType::f64);
      const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(double);
      void* buffer = (i + round) % 2 == 0 ? gpu().staging_buffer(bytes) : nullptr;
      if (buffer) {
        std::memcpy(buffer, values.data(), bytes);
        gpu().copy_bytes(dst.data(), Device::cuda, buffer, Device::cpu, bytes);
        ++staged;
      } else {
        std::vector<double> source = values;
        gpu().copy_bytes(dst.data(), Device::cuda, source.data(), Device::cpu, bytes);
        std::fill(source.begin(), source.end(), -7.0);  // the caller reuses its memory at once
      }
      destinations.push_back(dst);
      expected.push_back(std::move(values));
    }
  EXPECT_GT(staged, 10) << "the backend offered no staging buffer";
  for (std::size_t i = 0; i < destinations.size(); ++i)
    EXPECT_EQ(download<double>(gpu(), destinations[i]), expected[i]) << "upload " << i << " of "
                                                                      << destinations[i].numel() << " doubles";
}

TEST_F(BackendParity, Fill) {
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{100003}}) {
    for (double value : {0.0, -0.0, 2.5, -7.0}) {
      SCOPED_TRACE("n " + std::to_string(n) + " value " + std::to_string(value));
      Tensor f = allocate_tensor(gpu(), Shape{n}, DType::f32);
      Tensor d = allocate_tensor(gpu(), Shape{n}, DType::f64);
      Tensor i = allocate_tensor(gpu(), Shape{n}, DType::i32);
      gpu().fill(f, value);
      gpu().fill(d, value);
      gpu().fill(i, value);
      const auto fv = download<float>(gpu(), f);
      const auto dv = download<double>(gpu(), d);
      EXPECT_EQ(fv, std::vector<float>(static_cast<std::size_t>(n), static_cast<float>(value)));
      EXPECT_EQ(dv, std::vector<double>(static_cast<std::size_t>(n), value));
      EXPECT_EQ(download<int32_t>(gpu(), i), std::vector<int32_t>(static_cast<std::size_t>(n), static_cast<int32_t>(value)));
      EXPECT_EQ(std::signbit(fv.back()), std::signbit(value));
      EXPECT_EQ(std::signbit(dv.back()), std::signbit(value));
    }
  }
}

TEST_F(BackendParity, Copy2d) {
  Rng rng(2);
  struct Case {
    int64_t rows, cols, src_ld, dst_ld;
  };
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Case& c : {Case{1, 1, 1, 1}, Case{5, 3, 3, 3}, Case{100, 17, 20, 25}, Case{3001, 33, 33, 40}}) {
      for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{2.0, 0.0}, std::pair{0.5, 1.5}}) {
        SCOPED_TRACE("copy_2d rows " + std::to_string(c.rows) + " cols " + std::to_string(c.cols) + " alpha " +
                     std::to_string(alpha) + " beta " + std::to_string(beta));
        Twin src = twin<T>(random_values<T>(rng, c.rows * c.src_ld, -2, 2), Shape{c.rows * c.src_ld});
        // beta = 0 must overwrite: the destination starts as NaN (its padding stays NaN on both).
        Twin dst = twin<T>(beta == 0 ? nan_values<T>(c.rows * c.dst_ld) : random_values<T>(rng, c.rows * c.dst_ld, -2, 2),
                           Shape{c.rows * c.dst_ld});
        ref().copy_2d(c.rows, c.cols, dtype_of<T>(), src.reference.data(), c.src_ld, dst.reference.data(), c.dst_ld,
                      alpha, beta);
        gpu().copy_2d(c.rows, c.cols, dtype_of<T>(), src.tested.data(), c.src_ld, dst.tested.data(), c.dst_ld, alpha,
                      beta);
        expect_close_twin<T>("copy_2d", dst);
      }
    }
  });
}

// ---- dense products -------------------------------------------------------------------------------

// |alpha| sum_l |op(A)_il op(B)_lj| + |beta c_ij| for row-major storage, per element of C
// (padding elements get their own |c|, which both backends must leave untouched).
template <class T>
std::vector<double> product_bounds(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, double alpha,
                                   const std::vector<T>& a, int64_t lda, const std::vector<T>& b, int64_t ldb,
                                   double beta, const std::vector<T>& c, int64_t ldc) {
  std::vector<double> bounds(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) bounds[i] = std::isfinite(static_cast<double>(c[i])) ? std::abs(static_cast<double>(c[i])) : 0.0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t l = 0; l < k; ++l) {
        const double av = ta == Trans::no ? a[static_cast<std::size_t>(i * lda + l)] : a[static_cast<std::size_t>(l * lda + i)];
        const double bv = tb == Trans::no ? b[static_cast<std::size_t>(l * ldb + j)] : b[static_cast<std::size_t>(j * ldb + l)];
        s += std::abs(av * bv);
      }
      double& bound = bounds[static_cast<std::size_t>(i * ldc + j)];
      bound = std::abs(alpha) * s + (beta != 0 ? std::abs(beta) * bound : 0.0);
    }
  return bounds;
}

struct GemmShape {
  int64_t m, n, k;
  int64_t pad;  // extra elements in every leading dimension
};
const std::vector<GemmShape> kGemmShapes = {{1, 1, 1, 0},   {7, 5, 3, 0},      {33, 65, 17, 3}, {64, 64, 64, 0},
                                            {129, 31, 2048, 1}, {3001, 40, 64, 0}, {6, 4, 0, 2}};

std::string trans_name(Trans t) { return t == Trans::yes ? "T" : "N"; }

TEST_F(BackendParity, Gemm) {
  Rng rng(3);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const GemmShape& s : kGemmShapes)
      for (Trans ta : {Trans::no, Trans::yes})
        for (Trans tb : {Trans::no, Trans::yes})
          for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.75, 1.5}}) {
            const std::string what = "gemm " + trans_name(ta) + trans_name(tb) + " m " + std::to_string(s.m) + " n " +
                                     std::to_string(s.n) + " k " + std::to_string(s.k) + " pad " +
                                     std::to_string(s.pad) + " alpha " + std::to_string(alpha) + " beta " +
                                     std::to_string(beta);
            SCOPED_TRACE(what);
            // Row-major storage of A (op(A) is m x k) and B (op(B) is k x n).
            const int64_t a_rows = ta == Trans::no ? s.m : s.k, a_cols = ta == Trans::no ? s.k : s.m;
            const int64_t b_rows = tb == Trans::no ? s.k : s.n, b_cols = tb == Trans::no ? s.n : s.k;
            const int64_t lda = std::max<int64_t>(a_cols, 1) + s.pad, ldb = std::max<int64_t>(b_cols, 1) + s.pad;
            const int64_t ldc = s.n + s.pad;
            const auto a = random_values<T>(rng, std::max<int64_t>(a_rows, 1) * lda, -1, 1);
            const auto b = random_values<T>(rng, std::max<int64_t>(b_rows, 1) * ldb, -1, 1);
            // beta = 0 must overwrite; with k = 0 the CPU computes C = beta C, so C stays finite there.
            const auto c = beta == 0 && s.k > 0 ? nan_values<T>(s.m * ldc) : random_values<T>(rng, s.m * ldc, -1, 1);
            Twin ta_ = twin<T>(a, Shape{static_cast<int64_t>(a.size())});
            Twin tb_ = twin<T>(b, Shape{static_cast<int64_t>(b.size())});
            Twin tc = twin<T>(c, Shape{static_cast<int64_t>(c.size())});
            ref().gemm(ta, tb, s.m, s.n, s.k, alpha, ta_.reference.data(), lda, tb_.reference.data(), ldb, beta,
                       tc.reference.data(), ldc, dtype_of<T>());
            gpu().gemm(ta, tb, s.m, s.n, s.k, alpha, ta_.tested.data(), lda, tb_.tested.data(), ldb, beta,
                       tc.tested.data(), ldc, dtype_of<T>());
            const auto bounds = product_bounds<T>(ta, tb, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc);
            expect_close_twin<T>(what, tc, &bounds);
          }
  });
}

TEST_F(BackendParity, GemmStridedBatched) {
  Rng rng(4);
  const int64_t batch = 3;
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const GemmShape& s : kGemmShapes) {
      if (s.m * s.n * std::max<int64_t>(s.k, 1) > 2'000'000) continue;  // keep the host bounds cheap
      for (Trans ta : {Trans::no, Trans::yes})
        for (Trans tb : {Trans::no, Trans::yes})
          for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{-0.5, 1.0}}) {
            const std::string what = "gemm_strided_batched " + trans_name(ta) + trans_name(tb) + " m " +
                                     std::to_string(s.m) + " n " + std::to_string(s.n) + " k " + std::to_string(s.k) +
                                     " beta " + std::to_string(beta);
            SCOPED_TRACE(what);
            const int64_t a_rows = ta == Trans::no ? s.m : s.k, a_cols = ta == Trans::no ? s.k : s.m;
            const int64_t b_rows = tb == Trans::no ? s.k : s.n, b_cols = tb == Trans::no ? s.n : s.k;
            const int64_t lda = std::max<int64_t>(a_cols, 1) + s.pad, ldb = std::max<int64_t>(b_cols, 1) + s.pad;
            const int64_t ldc = s.n + s.pad;
            // Strides leave a gap of 5 elements between the matrices of the batch.
            const int64_t sa = std::max<int64_t>(a_rows, 1) * lda + 5, sb = std::max<int64_t>(b_rows, 1) * ldb + 5;
            const int64_t sc = s.m * ldc + 5;
            const auto a = random_values<T>(rng, batch * sa, -1, 1);
            const auto b = random_values<T>(rng, batch * sb, -1, 1);
            const auto c = beta == 0 && s.k > 0 ? nan_values<T>(batch * sc) : random_values<T>(rng, batch * sc, -1, 1);
            Twin ta_ = twin<T>(a, Shape{batch * sa});
            Twin tb_ = twin<T>(b, Shape{batch * sb});
            Twin tc = twin<T>(c, Shape{batch * sc});
            ref().gemm_strided_batched(ta, tb, s.m, s.n, s.k, alpha, ta_.reference.data(), lda, sa,
                                       tb_.reference.data(), ldb, sb, beta, tc.reference.data(), ldc, sc, batch,
                                       dtype_of<T>());
            gpu().gemm_strided_batched(ta, tb, s.m, s.n, s.k, alpha, ta_.tested.data(), lda, sa, tb_.tested.data(), ldb,
                                       sb, beta, tc.tested.data(), ldc, sc, batch, dtype_of<T>());
            std::vector<double> bounds(c.size());
            for (std::size_t i = 0; i < c.size(); ++i) bounds[i] = std::isfinite(static_cast<double>(c[i])) ? std::abs(static_cast<double>(c[i])) : 0.0;
            for (int64_t g = 0; g < batch; ++g) {
              const std::vector<T> ag(a.begin() + g * sa, a.begin() + (g + 1) * sa);
              const std::vector<T> bg(b.begin() + g * sb, b.begin() + (g + 1) * sb);
              const std::vector<T> cg(c.begin() + g * sc, c.begin() + g * sc + s.m * ldc);
              const auto bg_bounds = product_bounds<T>(ta, tb, s.m, s.n, s.k, alpha, ag, lda, bg, ldb, beta, cg, ldc);
              std::copy(bg_bounds.begin(), bg_bounds.end(), bounds.begin() + g * sc);
            }
            expect_close_twin<T>(what, tc, &bounds);
          }
    }
  });
}

// Products of different sizes in one call (per-graph blocks): more groups than one launch of the
// CUDA kernel takes (48), groups with m, n or k 0, three groups too large for that kernel (one
// grouped cuBLAS call, its pointer arrays uploaded),
// every transpose, beta 0 over NaN and beta 1.5; each group's A, B and C at its own offset in one
// buffer, with padded leading dimensions.
TEST_F(BackendParity, GemmGrouped) {
  Rng rng(5);
  struct Sizes {
    int64_t m, n, k;
  };
  std::vector<Sizes> sizes;
  for (int g = 0; g < 60; ++g)
    sizes.push_back({1 + static_cast<int64_t>(rng.below(40)), 1 + static_cast<int64_t>(rng.below(40)),
                     1 + static_cast<int64_t>(rng.below(70))});
  sizes[3] = {0, 5, 4};
  sizes[7] = {6, 0, 4};
  sizes[11] = {5, 9, 0};
  sizes[50] = {130, 90, 100};  // 1.17 million multiply-adds: over the kernel's limit
  sizes[20] = {100, 120, 110};  // 1.32 million, and sizes differing from the other large ones
  sizes[35] = {140, 80, 95};    // 1.06 million
  const int64_t pad = 2;
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (Trans ta : {Trans::no, Trans::yes})
      for (Trans tb : {Trans::no, Trans::yes})
        for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.75, 1.5}}) {
          const std::string what = "gemm_grouped " + trans_name(ta) + trans_name(tb) + " beta " + std::to_string(beta);
          SCOPED_TRACE(what);
          struct Layout {
            int64_t a, b, c, lda, ldb, ldc;
          };
          std::vector<Layout> at;
          int64_t a_size = 0, b_size = 0, c_size = 0;
          for (const Sizes& z : sizes) {
            const int64_t a_rows = ta == Trans::no ? z.m : z.k, a_cols = ta == Trans::no ? z.k : z.m;
            const int64_t b_rows = tb == Trans::no ? z.k : z.n, b_cols = tb == Trans::no ? z.n : z.k;
            Layout l{a_size, b_size, c_size, std::max<int64_t>(a_cols, 1) + pad, std::max<int64_t>(b_cols, 1) + pad,
                     z.n + pad};
            a_size += std::max<int64_t>(a_rows, 1) * l.lda + 3;
            b_size += std::max<int64_t>(b_rows, 1) * l.ldb + 3;
            c_size += z.m * l.ldc + 3;
            at.push_back(l);
          }
          const auto a = random_values<T>(rng, a_size, -1, 1);
          const auto b = random_values<T>(rng, b_size, -1, 1);
          std::vector<T> c = random_values<T>(rng, c_size, -1, 1);
          if (beta == 0)  // beta 0 overwrites: NaN wherever a product with k > 0 writes
            for (std::size_t g = 0; g < sizes.size(); ++g)
              if (sizes[g].k > 0)
                for (int64_t i = 0; i < sizes[g].m * at[g].ldc; ++i)
                  c[static_cast<std::size_t>(at[g].c + i)] = std::numeric_limits<T>::quiet_NaN();
          Twin ta_ = twin<T>(a, Shape{a_size});
          Twin tb_ = twin<T>(b, Shape{b_size});
          Twin tc = twin<T>(c, Shape{c_size});
          auto groups_of = [&](const Tensor& ta_t, const Tensor& tb_t, Tensor& tc_t) {
            std::vector<GemmGroup> groups;
            for (std::size_t g = 0; g < sizes.size(); ++g) {
              const Layout& l = at[g];
              groups.push_back(GemmGroup{sizes[g].m, sizes[g].n, sizes[g].k, static_cast<const T*>(ta_t.data()) + l.a,
                                         l.lda, static_cast<const T*>(tb_t.data()) + l.b, l.ldb,
                                         static_cast<T*>(tc_t.data()) + l.c, l.ldc});
            }
            return groups;
          };
          ref().gemm_grouped(ta, tb, groups_of(ta_.reference, tb_.reference, tc.reference), alpha, beta, dtype_of<T>());
          gpu().gemm_grouped(ta, tb, groups_of(ta_.tested, tb_.tested, tc.tested), alpha, beta, dtype_of<T>());
          std::vector<double> bounds(c.size());
          for (std::size_t i = 0; i < c.size(); ++i)
            bounds[i] = std::isfinite(static_cast<double>(c[i])) ? std::abs(static_cast<double>(c[i])) : 0.0;
          for (std::size_t g = 0; g < sizes.size(); ++g) {
            const Layout& l = at[g];
            const Sizes& z = sizes[g];
            const int64_t a_rows = ta == Trans::no ? z.m : z.k, b_rows = tb == Trans::no ? z.k : z.n;
            const std::vector<T> ag(a.begin() + l.a, a.begin() + l.a + std::max<int64_t>(a_rows, 1) * l.lda);
            const std::vector<T> bg(b.begin() + l.b, b.begin() + l.b + std::max<int64_t>(b_rows, 1) * l.ldb);
            const std::vector<T> cg(c.begin() + l.c, c.begin() + l.c + z.m * l.ldc);
            const auto gb = product_bounds<T>(ta, tb, z.m, z.n, z.k, alpha, ag, l.lda, bg, l.ldb, beta, cg, l.ldc);
            std::copy(gb.begin(), gb.end(), bounds.begin() + l.c);
          }
          expect_close_twin<T>(what, tc, &bounds);
        }
  });
}

// Products that add into one shared output, in order (the per-graph assignment layer's weight
// gradient): 52 groups, more than one launch takes (48), of every size up to the output's,
// empty ones (m, n or k 0), and one over the kernel's limit in the middle (cuBLAS between two runs
// of the kernel); the output's padding beyond its columns stays as it was. Small, because the CPU
// emulation runs every thread of every tile block through every group.
TEST_F(BackendParity, GemmGroupedSum) {
  Rng rng(31);
  struct Sizes {
    int64_t m, n, k;
  };
  const int64_t rows = 20, cols = 40, ldc = cols + 3;
  std::vector<Sizes> sizes;
  for (int g = 0; g < 52; ++g)
    sizes.push_back({1 + static_cast<int64_t>(rng.below(rows)), 1 + static_cast<int64_t>(rng.below(cols)),
                     1 + static_cast<int64_t>(rng.below(30))});
  sizes[0] = {rows, cols, 7};  // the whole output
  sizes[3] = {0, 5, 4};
  sizes[7] = {6, 0, 4};
  sizes[11] = {5, 9, 0};
  sizes[30] = {rows, cols, 1400};  // 1.12 million multiply-adds: over the kernel's limit
  sizes[49] = {17, 33, 5};         // reaches the last tiles of both dimensions
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (Trans ta : {Trans::no, Trans::yes})
      for (Trans tb : {Trans::no, Trans::yes}) {
        const double alpha = 0.75;
        const std::string what = "gemm_grouped_sum " + trans_name(ta) + trans_name(tb);
        SCOPED_TRACE(what);
        std::vector<int64_t> a_at, b_at, lda, ldb;
        int64_t a_size = 0, b_size = 0;
        for (const Sizes& z : sizes) {
          const int64_t a_rows = ta == Trans::no ? z.m : z.k, a_cols = ta == Trans::no ? z.k : z.m;
          const int64_t b_rows = tb == Trans::no ? z.k : z.n, b_cols = tb == Trans::no ? z.n : z.k;
          a_at.push_back(a_size), b_at.push_back(b_size);
          lda.push_back(std::max<int64_t>(a_cols, 1) + 1), ldb.push_back(std::max<int64_t>(b_cols, 1) + 2);
          a_size += std::max<int64_t>(a_rows, 1) * lda.back() + 3;
          b_size += std::max<int64_t>(b_rows, 1) * ldb.back() + 3;
        }
        const auto a = random_values<T>(rng, a_size, -1, 1);
        const auto b = random_values<T>(rng, b_size, -1, 1);
        const auto c = random_values<T>(rng, rows * ldc, -1, 1);
        Twin ta_ = twin<T>(a, Shape{a_size});
        Twin tb_ = twin<T>(b, Shape{b_size});
        Twin tc = twin<T>(c, Shape{rows * ldc});
        auto groups_of = [&](const Tensor& ta_t, const Tensor& tb_t, Tensor& tc_t) {
          std::vector<GemmGroup> groups;
          for (std::size_t g = 0; g < sizes.size(); ++g)
            groups.push_back(GemmGroup{sizes[g].m, sizes[g].n, sizes[g].k, static_cast<const T*>(ta_t.data()) + a_at[g],
                                       lda[g], static_cast<const T*>(tb_t.data()) + b_at[g], ldb[g], tc_t.data(), ldc});
          return groups;
        };
        ref().gemm_grouped_sum(ta, tb, groups_of(ta_.reference, tb_.reference, tc.reference), alpha, dtype_of<T>());
        gpu().gemm_grouped_sum(ta, tb, groups_of(ta_.tested, tb_.tested, tc.tested), alpha, dtype_of<T>());
        // Bounds: |C| plus |alpha| sum |a b| over every group's terms of the element.
        std::vector<double> bounds(c.size());
        for (std::size_t i = 0; i < c.size(); ++i) bounds[i] = std::abs(static_cast<double>(c[i]));
        for (std::size_t g = 0; g < sizes.size(); ++g)
          for (int64_t i = 0; i < sizes[g].m; ++i)
            for (int64_t j = 0; j < sizes[g].n; ++j) {
              double sum = 0;
              for (int64_t l = 0; l < sizes[g].k; ++l) {
                const double av = ta == Trans::no ? a[static_cast<std::size_t>(a_at[g] + i * lda[g] + l)]
                                                  : a[static_cast<std::size_t>(a_at[g] + l * lda[g] + i)];
                const double bv = tb == Trans::no ? b[static_cast<std::size_t>(b_at[g] + l * ldb[g] + j)]
                                                  : b[static_cast<std::size_t>(b_at[g] + j * ldb[g] + l)];
                sum += std::abs(av * bv);
              }
              bounds[static_cast<std::size_t>(i * ldc + j)] += alpha * sum;
            }
        expect_close_twin<T>(what, tc, &bounds);
        const std::vector<T> out = download<T>(gpu(), tc.tested);
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = cols; j < ldc; ++j)
            ASSERT_EQ(out[static_cast<std::size_t>(i * ldc + j)], c[static_cast<std::size_t>(i * ldc + j)])
                << "padding at " << i << ", " << j << " changed";
      }
  });
}

// Column sums that add into one shared output, in order (the per-graph assignment layer's bias
// gradient): 70 groups, more than one launch takes (64), of 0 to 40 rows and 0 to 70 columns
// (three tiles of 32), empty ones, and one of 600 rows; the output's elements past the widest
// group stay as they were.
// A layer's linear part, C = start + sum_g alpha op(A_g) op(B_g) (gemm_sum_from_row): with and
// without a bias row, one, two and 50 terms (more than a launch's 48: the second launch adds to
// the first), every transpose pair, a term of k 0, and terms over the grouped kernel's limit
// (cuBLAS after a broadcast); C starts as NaN, which must never be read.
TEST_F(BackendParity, GemmSumFromRow) {
  Rng rng(37);
  struct Case {
    std::string name;
    int64_t m, n;
    std::vector<int64_t> ks;
    bool start;
  };
  std::vector<Case> cases = {{"one term, bias", 37, 29, {5}, true},
                             {"one term, no bias", 37, 29, {13}, false},
                             {"two terms, bias", 40, 30, {7, 3}, true},
                             {"two terms, no bias, k 0 first", 17, 33, {0, 9}, false},
                             {"over the kernel's limit", 40, 30, {900, 4}, true},
                             {"over the kernel's limit, no bias", 40, 30, {2, 900}, false}};
  Case many{"50 terms, bias", 21, 18, {}, true};
  for (int g = 0; g < 50; ++g) many.ks.push_back(1 + static_cast<int64_t>(rng.below(6)));
  cases.push_back(many);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Case& c : cases)
      for (Trans ta : {Trans::no, Trans::yes})
        for (Trans tb : {Trans::no, Trans::yes}) {
          const std::string what = "gemm_sum_from_row " + c.name + " " + trans_name(ta) + trans_name(tb);
          SCOPED_TRACE(what);
          const double alpha = 0.5;
          std::vector<int64_t> a_at, b_at;
          int64_t a_size = 0, b_size = 0;
          for (int64_t k : c.ks) {
            a_at.push_back(a_size), b_at.push_back(b_size);
            a_size += c.m * k + 1, b_size += k * c.n + 1;
          }
          const auto a = random_values<T>(rng, a_size, -1, 1);
          const auto b = random_values<T>(rng, b_size, -1, 1);
          const auto bias = random_values<T>(rng, c.n, -1, 1);
          Twin ta_ = twin<T>(a, Shape{a_size});
          Twin tb_ = twin<T>(b, Shape{b_size});
          Twin tbias = twin<T>(bias, Shape{c.n});
          Twin tc = twin<T>(nan_values<T>(c.m * c.n), Shape{c.m * c.n});
          auto groups_of = [&](const Tensor& a_t, const Tensor& b_t, Tensor& c_t) {
            std::vector<GemmGroup> groups;
            for (std::size_t g = 0; g < c.ks.size(); ++g) {
              const int64_t k = c.ks[g];
              groups.push_back(GemmGroup{c.m, c.n, k, static_cast<const T*>(a_t.data()) + a_at[g],
                                         std::max<int64_t>(1, ta == Trans::no ? k : c.m),
                                         static_cast<const T*>(b_t.data()) + b_at[g],
                                         std::max<int64_t>(1, tb == Trans::no ? c.n : k), c_t.data(), c.n});
            }
            return groups;
          };
          ref().gemm_sum_from_row(ta, tb, groups_of(ta_.reference, tb_.reference, tc.reference),
                                  c.start ? tbias.reference.data() : nullptr, alpha, dtype_of<T>());
          gpu().gemm_sum_from_row(ta, tb, groups_of(ta_.tested, tb_.tested, tc.tested),
                                  c.start ? tbias.tested.data() : nullptr, alpha, dtype_of<T>());
          // Bounds: |bias| plus |alpha| sum |a b| over every term of the element.
          std::vector<double> bounds(static_cast<std::size_t>(c.m * c.n));
          for (int64_t i = 0; i < c.m; ++i)
            for (int64_t j = 0; j < c.n; ++j) {
              double sum = c.start ? std::abs(static_cast<double>(bias[static_cast<std::size_t>(j)])) : 0.0;
              for (std::size_t g = 0; g < c.ks.size(); ++g) {
                const int64_t k = c.ks[g];
                for (int64_t l = 0; l < k; ++l) {
                  const double av = ta == Trans::no ? a[static_cast<std::size_t>(a_at[g] + i * k + l)]
                                                    : a[static_cast<std::size_t>(a_at[g] + l * c.m + i)];
                  const double bv = tb == Trans::no ? b[static_cast<std::size_t>(b_at[g] + l * c.n + j)]
                                                    : b[static_cast<std::size_t>(b_at[g] + j * k + l)];
                  sum += alpha * std::abs(av * bv);
                }
              }
              bounds[static_cast<std::size_t>(i * c.n + j)] = sum;
            }
          expect_close_twin<T>(what, tc, &bounds);
          expect_all_finite(what, download<T>(gpu(), tc.tested));
        }
  });
}

// A linear layer's weight and bias gradients (weight_gradients): C_t = A_t^T B + beta C_t for
// each term, then bias = colsum(B) + bias_beta bias. One and two terms with and without the
// bias, the bias alone, four terms (the kernel's most), five (the default's calls), beta 0 over
// NaN and beta 1, a batch over the kernel's limit, k 0, and terms with their own B (the default).
TEST_F(BackendParity, WeightGradients) {
  Rng rng(41);
  struct Case {
    std::string name;
    int64_t k, n;
    std::vector<int64_t> ms;
    bool bias;
    double beta;
    bool shared_b = true;
  };
  const std::vector<Case> cases = {{"one term", 652, 30, {21}, false, 0.0},
                                   {"two terms and bias", 652, 30, {30, 30}, true, 0.0},
                                   {"two terms and bias, accumulating", 240, 30, {30, 30}, true, 1.0},
                                   {"bias alone", 97, 12, {}, true, 1.0},
                                   {"four terms", 50, 7, {3, 1, 5, 2}, true, 0.0},
                                   {"five terms", 50, 7, {3, 1, 5, 2, 4}, true, 0.0},
                                   {"over the kernel's limit", 1200, 30, {30, 30}, true, 0.0},
                                   {"k 0", 0, 9, {4, 2}, true, 1.0},
                                   {"separate upstream gradients", 40, 6, {3, 5}, true, 0.0, false}};
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Case& c : cases) {
      const std::string what = "weight_gradients " + c.name;
      SCOPED_TRACE(what);
      const int64_t terms = static_cast<int64_t>(c.ms.size());
      int64_t a_size = 0, c_size = 0;
      std::vector<int64_t> a_at, c_at;
      for (int64_t m : c.ms) {
        a_at.push_back(a_size), c_at.push_back(c_size);
        a_size += c.k * (m + 1) + 1;  // lda m + 1
        c_size += m * (c.n + 2) + 1;  // ldc n + 2
      }
      const int64_t b_count = c.shared_b ? 1 : std::max<int64_t>(terms, 1);
      const auto a = random_values<T>(rng, std::max<int64_t>(a_size, 1), -1, 1);
      const auto b = random_values<T>(rng, std::max<int64_t>(b_count * c.k * c.n, 1), -1, 1);
      const auto c0 = c.beta == 0 ? nan_values<T>(std::max<int64_t>(c_size, 1))
                                  : random_values<T>(rng, std::max<int64_t>(c_size, 1), -1, 1);
      const auto bias0 = c.beta == 0 ? nan_values<T>(c.n) : random_values<T>(rng, c.n, -1, 1);
      Twin ta = twin<T>(a, Shape{static_cast<int64_t>(a.size())});
      Twin tb = twin<T>(b, Shape{static_cast<int64_t>(b.size())});
      Twin tc = twin<T>(c0, Shape{static_cast<int64_t>(c0.size())});
      Twin tbias = twin<T>(bias0, Shape{c.n});
      auto run = [&](Backend& be, const Tensor& a_t, const Tensor& b_t, Tensor& c_t, Tensor& bias_t) {
        std::vector<GemmGroup> groups;
        for (int64_t t = 0; t < terms; ++t) {
          const T* bt = static_cast<const T*>(b_t.data()) + (c.shared_b ? 0 : t * c.k * c.n);
          groups.push_back(GemmGroup{c.ms[static_cast<std::size_t>(t)], c.n, c.k,
                                     static_cast<const T*>(a_t.data()) + a_at[static_cast<std::size_t>(t)],
                                     c.ms[static_cast<std::size_t>(t)] + 1, bt, c.n,
                                     static_cast<T*>(c_t.data()) + c_at[static_cast<std::size_t>(t)], c.n + 2});
        }
        RowsGroup bias{c.k, c.n, b_t.data(), nullptr, bias_t.data()};
        be.weight_gradients(groups, c.beta, c.bias ? &bias : nullptr, c.beta, dtype_of<T>());
      };
      run(ref(), ta.reference, tb.reference, tc.reference, tbias.reference);
      run(gpu(), ta.tested, tb.tested, tc.tested, tbias.tested);
      // Bounds: |beta C| plus the sum of |a b| over the element's terms; |beta bias| plus sum |b|.
      std::vector<double> bounds(c0.size(), 0.0), bias_bounds(static_cast<std::size_t>(c.n), 0.0);
      for (int64_t t = 0; t < terms; ++t) {
        const int64_t m = c.ms[static_cast<std::size_t>(t)];
        const int64_t b_at = c.shared_b ? 0 : t * c.k * c.n;
        for (int64_t p = 0; p < m; ++p)
          for (int64_t j = 0; j < c.n; ++j) {
            const std::size_t at = static_cast<std::size_t>(c_at[static_cast<std::size_t>(t)] + p * (c.n + 2) + j);
            double sum = c.beta == 0 ? 0.0 : std::abs(c.beta * static_cast<double>(c0[at]));
            for (int64_t r = 0; r < c.k; ++r)
              sum += std::abs(static_cast<double>(a[static_cast<std::size_t>(a_at[static_cast<std::size_t>(t)] + r * (m + 1) + p)]) *
                              b[static_cast<std::size_t>(b_at + r * c.n + j)]);
            bounds[at] = sum;
          }
      }
      for (int64_t j = 0; j < c.n; ++j) {
        double sum = c.beta == 0 ? 0.0 : std::abs(c.beta * static_cast<double>(bias0[static_cast<std::size_t>(j)]));
        for (int64_t r = 0; r < c.k; ++r) sum += std::abs(static_cast<double>(b[static_cast<std::size_t>(r * c.n + j)]));
        bias_bounds[static_cast<std::size_t>(j)] = sum;
      }
      // Elements outside every term (the ldc padding, the gaps) keep their values on both; NaN
      // there compares equal (expect_close treats NaN as matching NaN at the same place).
      expect_close_twin<T>(what + " C", tc, &bounds);
      if (c.bias) expect_close_twin<T>(what + " bias", tbias, &bias_bounds);
      if (c.beta == 0) {
        const std::vector<T> out = download<T>(gpu(), tc.tested);
        for (int64_t t = 0; t < terms; ++t)
          for (int64_t p = 0; p < c.ms[static_cast<std::size_t>(t)]; ++p)
            for (int64_t j = 0; j < c.n; ++j)
              ASSERT_TRUE(std::isfinite(static_cast<double>(
                  out[static_cast<std::size_t>(c_at[static_cast<std::size_t>(t)] + p * (c.n + 2) + j)])))
                  << "term " << t << " [" << p << ", " << j << "] not written";
        if (c.bias) expect_all_finite(what + " bias", download<T>(gpu(), tbias.tested));
      }
    }
  });
}

TEST_F(BackendParity, ReduceColsGroupedSum) {
  Rng rng(37);
  const int64_t width = 80;
  std::vector<int64_t> rows, cols, at;
  int64_t size = 0;
  for (int g = 0; g < 70; ++g) {
    rows.push_back(static_cast<int64_t>(rng.below(41)));
    cols.push_back(static_cast<int64_t>(rng.below(71)));
  }
  rows[5] = 0, cols[9] = 0, cols[20] = 70, rows[66] = 600, cols[66] = 3;
  for (std::size_t g = 0; g < rows.size(); ++g) at.push_back(size), size += rows[g] * cols[g] + 2;
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    Twin a = twin<T>(random_values<T>(rng, size, -2, 2), Shape{size});
    const auto initial = random_values<T>(rng, width, -2, 2);
    Twin out = twin<T>(initial, Shape{width});
    auto groups_of = [&](const Tensor& a_t, Tensor& out_t) {
      std::vector<RowsGroup> groups;
      for (std::size_t g = 0; g < rows.size(); ++g)
        groups.push_back(RowsGroup{rows[g], cols[g], static_cast<const T*>(a_t.data()) + at[g], nullptr, out_t.data()});
      return groups;
    };
    ref().reduce_cols_grouped_sum(groups_of(a.reference, out.reference), 0.5, dtype_of<T>());
    gpu().reduce_cols_grouped_sum(groups_of(a.tested, out.tested), 0.5, dtype_of<T>());
    expect_close_twin<T>("reduce_cols_grouped_sum", out);
    const std::vector<T> tested = download<T>(gpu(), out.tested);
    for (int64_t c = 70; c < width; ++c)
      EXPECT_EQ(tested[static_cast<std::size_t>(c)], initial[static_cast<std::size_t>(c)]) << "column " << c;
  });
}

// Per-graph dot products in one call: more groups than one launch takes (64), empty groups,
// groups longer than a block (256 threads), beta 0 over NaN and beta 1.5, each group at its own
// offset in one buffer.
TEST_F(BackendParity, DotGrouped) {
  Rng rng(12);
  std::vector<int64_t> sizes;
  for (int g = 0; g < 150; ++g) sizes.push_back(static_cast<int64_t>(rng.below(300)));
  sizes[4] = 0;
  sizes[70] = 0;
  sizes[90] = 5000;
  sizes[149] = 1;
  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (int64_t n : sizes) {
    offsets.push_back(total);
    total += n + 2;
  }
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    const auto a = random_values<T>(rng, total, -1, 1);
    const auto b = random_values<T>(rng, total, -1, 1);
    Twin ta = twin<T>(a, Shape{total});
    Twin tb = twin<T>(b, Shape{total});
    for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.5, 1.5}}) {
      SCOPED_TRACE("dot_grouped beta " + std::to_string(beta));
      const auto out0 = beta == 0 ? nan_values<T>(static_cast<int64_t>(sizes.size()))
                                  : random_values<T>(rng, static_cast<int64_t>(sizes.size()), -1, 1);
      Twin out = twin<T>(out0, Shape{static_cast<int64_t>(sizes.size())});
      auto groups_of = [&](const Tensor& at, const Tensor& bt, Tensor& ot) {
        std::vector<DotGroup> groups;
        for (std::size_t g = 0; g < sizes.size(); ++g)
          groups.push_back(DotGroup{sizes[g], static_cast<const T*>(at.data()) + offsets[g],
                                    static_cast<const T*>(bt.data()) + offsets[g], static_cast<T*>(ot.data()) + g});
        return groups;
      };
      ref().dot_grouped(groups_of(ta.reference, tb.reference, out.reference), alpha, beta, dtype_of<T>());
      gpu().dot_grouped(groups_of(ta.tested, tb.tested, out.tested), alpha, beta, dtype_of<T>());
      std::vector<double> bounds(sizes.size());
      for (std::size_t g = 0; g < sizes.size(); ++g) {
        double sum = 0;
        for (int64_t i = 0; i < sizes[g]; ++i)
          sum += std::abs(static_cast<double>(a[static_cast<std::size_t>(offsets[g] + i)]) *
                          b[static_cast<std::size_t>(offsets[g] + i)]);
        bounds[g] = std::abs(alpha) * sum + (beta != 0 ? std::abs(beta * out0[g]) : 0.0);
      }
      expect_close_twin<T>("dot_grouped", out, &bounds);
    }
  });
}

TEST_F(BackendParity, Tf32Products) {
  struct Restore {
    ~Restore() {
      ref().set_matmul_precision(MatmulPrecision::fp32);
      gpu().set_matmul_precision(MatmulPrecision::fp32);
    }
  } restore;
  ref().set_matmul_precision(MatmulPrecision::tf32);
  gpu().set_matmul_precision(MatmulPrecision::tf32);
#if defined(DIFFPOOL_CUDA_EMULATION)
  const double tf32_slack = 0;
#else
  const double tf32_slack = std::ldexp(1.0, -9) / testing::kProductTolerance<float>;
#endif
  Rng rng(11);
  auto reduced = [](std::vector<float> v) {
    for (float& x : v) x = to_tf32(x);
    return v;
  };
  // Bounds from the reduced operands (the rounding of their f32 sums), plus the slack above over
  // the unreduced ones.
  auto bounds_of = [&](Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, double alpha, const std::vector<float>& a,
                       int64_t lda, const std::vector<float>& b, int64_t ldb, double beta, const std::vector<float>& c,
                       int64_t ldc) {
    auto bounds = product_bounds<float>(ta, tb, m, n, k, alpha, reduced(a), lda, reduced(b), ldb, beta, c, ldc);
    if (tf32_slack > 0) {
      const auto full = product_bounds<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0, c, ldc);
      for (std::size_t i = 0; i < bounds.size(); ++i) bounds[i] += tf32_slack * full[i];
    }
    return bounds;
  };
  for (const GemmShape& s : kGemmShapes)
    for (Trans ta : {Trans::no, Trans::yes})
      for (Trans tb : {Trans::no, Trans::yes}) {
        const std::string what = "tf32 gemm " + trans_name(ta) + trans_name(tb) + " m " + std::to_string(s.m) + " n " +
                                 std::to_string(s.n) + " k " + std::to_string(s.k);
        SCOPED_TRACE(what);
        const int64_t a_rows = ta == Trans::no ? s.m : s.k, a_cols = ta == Trans::no ? s.k : s.m;
        const int64_t b_rows = tb == Trans::no ? s.k : s.n, b_cols = tb == Trans::no ? s.n : s.k;
        const int64_t lda = std::max<int64_t>(a_cols, 1) + s.pad, ldb = std::max<int64_t>(b_cols, 1) + s.pad;
        const int64_t ldc = s.n + s.pad;
        const auto a = random_values<float>(rng, std::max<int64_t>(a_rows, 1) * lda, -1, 1);
        const auto b = random_values<float>(rng, std::max<int64_t>(b_rows, 1) * ldb, -1, 1);
        const auto c = random_values<float>(rng, s.m * ldc, -1, 1);
        Twin ta_ = twin<float>(a, Shape{static_cast<int64_t>(a.size())});
        Twin tb_ = twin<float>(b, Shape{static_cast<int64_t>(b.size())});
        Twin tc = twin<float>(c, Shape{static_cast<int64_t>(c.size())});
        ref().gemm(ta, tb, s.m, s.n, s.k, 0.75, ta_.reference.data(), lda, tb_.reference.data(), ldb, 1.5,
                   tc.reference.data(), ldc, DType::f32);
        gpu().gemm(ta, tb, s.m, s.n, s.k, 0.75, ta_.tested.data(), lda, tb_.tested.data(), ldb, 1.5, tc.tested.data(),
                   ldc, DType::f32);
        const auto bounds = bounds_of(ta, tb, s.m, s.n, s.k, 0.75, a, lda, b, ldb, 1.5, c, ldc);
        expect_close_twin<float>(what, tc, &bounds);
      }
  {
    SCOPED_TRACE("tf32 gemm_strided_batched and gemm_grouped");
    const int64_t m = 45, n = 33, k = 70, batch = 3;
    const auto a = random_values<float>(rng, batch * m * k, -1, 1);
    const auto b = random_values<float>(rng, batch * k * n, -1, 1);
    const auto c = nan_values<float>(batch * m * n);
    Twin ta_ = twin<float>(a, Shape{batch * m * k});
    Twin tb_ = twin<float>(b, Shape{batch * k * n});
    Twin tc = twin<float>(c, Shape{batch * m * n});
    Twin tg = twin<float>(c, Shape{batch * m * n});
    ref().gemm_strided_batched(Trans::no, Trans::no, m, n, k, 1.0, ta_.reference.data(), k, m * k,
                               tb_.reference.data(), n, k * n, 0.0, tc.reference.data(), n, m * n, batch, DType::f32);
    gpu().gemm_strided_batched(Trans::no, Trans::no, m, n, k, 1.0, ta_.tested.data(), k, m * k, tb_.tested.data(), n,
                               k * n, 0.0, tc.tested.data(), n, m * n, batch, DType::f32);
    // `count` products of m x n x k stored one after the other (row-major, unpadded) in A, B and C:
    // the groups of one gemm_grouped call, and the bounds of C from the host operands.
    auto stacked_groups = [](int64_t gm, int64_t gn, int64_t gk, int64_t count, const Tensor& a_t, const Tensor& b_t,
                             Tensor& c_t) {
      std::vector<GemmGroup> groups;
      for (int64_t g = 0; g < count; ++g)
        groups.push_back(GemmGroup{gm, gn, gk, static_cast<const float*>(a_t.data()) + g * gm * gk, gk,
                                   static_cast<const float*>(b_t.data()) + g * gk * gn, gn,
                                   static_cast<float*>(c_t.data()) + g * gm * gn, gn});
      return groups;
    };
    auto stacked_bounds = [&](int64_t gm, int64_t gn, int64_t gk, int64_t count, const std::vector<float>& ha,
                              const std::vector<float>& hb) {
      std::vector<double> out(static_cast<std::size_t>(count * gm * gn));
      for (int64_t g = 0; g < count; ++g) {
        const std::vector<float> ag(ha.begin() + g * gm * gk, ha.begin() + (g + 1) * gm * gk);
        const std::vector<float> bg(hb.begin() + g * gk * gn, hb.begin() + (g + 1) * gk * gn);
        const std::vector<float> cg(static_cast<std::size_t>(gm * gn), 0.0f);
        const auto gb = bounds_of(Trans::no, Trans::no, gm, gn, gk, 1.0, ag, gk, bg, gn, 0.0, cg, gn);
        std::copy(gb.begin(), gb.end(), out.begin() + g * gm * gn);
      }
      return out;
    };
    // Grouped: the batch's products in one call.
    ref().gemm_grouped(Trans::no, Trans::no, stacked_groups(m, n, k, batch, ta_.reference, tb_.reference, tg.reference),
                       1.0, 0.0, DType::f32);
    gpu().gemm_grouped(Trans::no, Trans::no, stacked_groups(m, n, k, batch, ta_.tested, tb_.tested, tg.tested), 1.0,
                       0.0, DType::f32);
    const std::vector<double> bounds = stacked_bounds(m, n, k, batch, a, b);
    expect_close_twin<float>("tf32 gemm_strided_batched", tc, &bounds);
    expect_close_twin<float>("tf32 gemm_grouped", tg, &bounds);
    // The grouped and batched products of the same operands agree on each backend.
    gpu().synchronize();
    expect_close<float>("tf32 grouped vs batched (tested backend)", download<float>(gpu(), tc.tested),
                        download<float>(gpu(), tg.tested), &bounds);
    // Large products through cuBLAS: one group of 130 x 90 x 100 (a cuBLAS call of its own), then
    // two of them (one grouped cuBLAS call, whose compute type must be TF32's).
    const int64_t bm = 130, bn = 90, bk = 100;
    for (const int64_t count : {int64_t{1}, int64_t{2}}) {
      const auto ba = random_values<float>(rng, count * bm * bk, -1, 1);
      const auto bb = random_values<float>(rng, count * bk * bn, -1, 1);
      const auto bc = nan_values<float>(count * bm * bn);
      Twin tba = twin<float>(ba, Shape{count * bm * bk});
      Twin tbb = twin<float>(bb, Shape{count * bk * bn});
      Twin tbc = twin<float>(bc, Shape{count * bm * bn});
      ref().gemm_grouped(Trans::no, Trans::no,
                         stacked_groups(bm, bn, bk, count, tba.reference, tbb.reference, tbc.reference), 1.0, 0.0,
                         DType::f32);
      gpu().gemm_grouped(Trans::no, Trans::no, stacked_groups(bm, bn, bk, count, tba.tested, tbb.tested, tbc.tested),
                         1.0, 0.0, DType::f32);
      const std::vector<double> big_bounds = stacked_bounds(bm, bn, bk, count, ba, bb);
      expect_close_twin<float>("tf32 gemm_grouped through cuBLAS, " + std::to_string(count) + " groups", tbc,
                               &big_bounds);
    }
  }
  {
    SCOPED_TRACE("tf32 gemm_sum_from_row and weight_gradients (a linear layer's forward and parameter gradients)");
    const int64_t rows = 300, f = 24, h = 20;
    const auto x = random_values<float>(rng, rows * f, -1, 1);
    const auto w = random_values<float>(rng, f * h, -1, 1);
    const auto dy = random_values<float>(rng, rows * h, -1, 1);
    const auto nan_y = nan_values<float>(rows * h);
    const auto nan_w = nan_values<float>(f * h);
    Twin tx = twin<float>(x, Shape{rows * f}), tw = twin<float>(w, Shape{f * h}), tdy = twin<float>(dy, Shape{rows * h});
    Twin ty = twin<float>(nan_y, Shape{rows * h}), tdw = twin<float>(nan_w, Shape{f * h});
    for (Backend* be : {&ref(), &gpu()}) {
      const bool r = be == &ref();
      const Twin* twins[] = {&tx, &tw, &tdy, &ty, &tdw};
      auto at = [&](int i) { return r ? twins[i]->reference.data() : twins[i]->tested.data(); };
      be->gemm_sum_from_row(Trans::no, Trans::no, {GemmGroup{rows, h, f, at(0), f, at(1), h, at(3), h}}, nullptr, 1.0,
                            DType::f32);
      be->weight_gradients({GemmGroup{f, h, rows, at(0), f, at(2), h, at(4), h}}, 0.0, nullptr, 0.0, DType::f32);
    }
    const std::vector<float> zero_y(static_cast<std::size_t>(rows * h), 0.0f), zero_w(static_cast<std::size_t>(f * h), 0.0f);
    const auto y_bounds = bounds_of(Trans::no, Trans::no, rows, h, f, 1.0, x, f, w, h, 0.0, zero_y, h);
    const auto w_bounds = bounds_of(Trans::yes, Trans::no, f, h, rows, 1.0, x, f, dy, h, 0.0, zero_w, h);
    expect_close_twin<float>("tf32 gemm_sum_from_row", ty, &y_bounds);
    expect_close_twin<float>("tf32 weight_gradients", tdw, &w_bounds);
  }
  {
    SCOPED_TRACE("f64 under tf32: unreduced, the usual f64 bounds");
    const int64_t m = 17, n = 19, k = 23;
    const auto a = random_values<double>(rng, m * k, -1, 1);
    const auto b = random_values<double>(rng, k * n, -1, 1);
    const auto c = nan_values<double>(m * n);
    Twin ta_ = twin<double>(a, Shape{m * k});
    Twin tb_ = twin<double>(b, Shape{k * n});
    Twin tc = twin<double>(c, Shape{m * n});
    ref().gemm(Trans::no, Trans::no, m, n, k, 1.0, ta_.reference.data(), k, tb_.reference.data(), n, 0.0,
               tc.reference.data(), n, DType::f64);
    gpu().gemm(Trans::no, Trans::no, m, n, k, 1.0, ta_.tested.data(), k, tb_.tested.data(), n, 0.0, tc.tested.data(), n,
               DType::f64);
    const auto bounds = product_bounds<double>(Trans::no, Trans::no, m, n, k, 1.0, a, k, b, n, 0.0,
                                                        std::vector<double>(static_cast<std::size_t>(m * n), 0.0), n);
    expect_close_twin<double>("f64 gemm under tf32", tc, &bounds);
    // And the reference's f64 result is the exact-rounding one of an unreduced product: it differs
    // from the product of TF32-reduced operands.
    const auto host = download<double>(ref(), tc.reference);
    double s = 0, s_reduced = 0;
    for (int64_t l = 0; l < k; ++l) {
      s += a[static_cast<std::size_t>(l)] * b[static_cast<std::size_t>(l * n)];
      s_reduced += static_cast<double>(to_tf32(static_cast<float>(a[static_cast<std::size_t>(l)]))) *
                   to_tf32(static_cast<float>(b[static_cast<std::size_t>(l * n)]));
    }
    EXPECT_NEAR(host[0], s, 1e-12);
    EXPECT_GT(std::abs(host[0] - s_reduced), 1e-6);
  }
}

// ---- sparse x dense --------------------------------------------------------------------------------

struct HostCsr {
  int64_t rows, cols;
  std::vector<int32_t> row_ptr, col_idx;
};
// Rows with 0 to 8 non-zeros (so some are empty), and one dense-ish row.
HostCsr random_csr(Rng& rng, int64_t rows, int64_t cols) {
  HostCsr a{rows, cols, {0}, {}};
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t count = r == rows / 2 ? std::min<int64_t>(cols, 300) : static_cast<int64_t>(rng.below(9));
    for (int64_t e = 0; e < count; ++e) a.col_idx.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(cols))));
    a.row_ptr.push_back(static_cast<int32_t>(a.col_idx.size()));
  }
  return a;
}

TEST_F(BackendParity, Spmm) {
  Rng rng(5);
  struct Case {
    int64_t rows, cols, features;
  };
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Case& c : {Case{1, 1, 1}, Case{37, 50, 16}, Case{3001, 3001, 33}, Case{200, 64, 70}, Case{5, 7, 1}}) {
      const HostCsr h = random_csr(rng, c.rows, c.cols);
      const int64_t nnz = static_cast<int64_t>(h.col_idx.size());
      const auto values = random_values<T>(rng, nnz, -1, 1);
      Twin row_ptr = twin<int32_t>(h.row_ptr, Shape{c.rows + 1});
      Twin col_idx = twin<int32_t>(h.col_idx, Shape{nnz});
      Twin vals = twin<T>(values, Shape{nnz});
      Csr a_ref{c.rows, c.cols, nnz, row_ptr.reference, col_idx.reference, vals.reference};
      Csr a_gpu{c.rows, c.cols, nnz, row_ptr.tested, col_idx.tested, vals.tested};
      const auto x = random_values<T>(rng, c.cols * c.features, -1, 1);
      Twin tx = twin<T>(x, Shape{c.cols, c.features});
      for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.5, 1.0}, std::pair{2.0, 0.25}}) {
        const std::string what = "spmm rows " + std::to_string(c.rows) + " cols " + std::to_string(c.cols) + " f " +
                                 std::to_string(c.features) + " beta " + std::to_string(beta);
        SCOPED_TRACE(what);
        const auto y = beta == 0 ? nan_values<T>(c.rows * c.features) : random_values<T>(rng, c.rows * c.features, -1, 1);
        Twin ty = twin<T>(y, Shape{c.rows, c.features});
        ref().spmm(a_ref, tx.reference, alpha, beta, ty.reference);
        gpu().spmm(a_gpu, tx.tested, alpha, beta, ty.tested);
        std::vector<double> bounds(y.size());
        for (int64_t r = 0; r < c.rows; ++r)
          for (int64_t f = 0; f < c.features; ++f) {
            double s = beta != 0 ? std::abs(beta * y[static_cast<std::size_t>(r * c.features + f)]) : 0.0;
            for (int32_t e = h.row_ptr[static_cast<std::size_t>(r)]; e < h.row_ptr[static_cast<std::size_t>(r) + 1]; ++e)
              s += std::abs(alpha * values[static_cast<std::size_t>(e)] *
                            x[static_cast<std::size_t>(h.col_idx[static_cast<std::size_t>(e)] * c.features + f)]);
            bounds[static_cast<std::size_t>(r * c.features + f)] = s;
          }
        expect_close_twin<T>(what, ty, &bounds);
      }
    }
  });
}

// Per-graph sparse products in one call (per-graph pooling's A_g S_g): 60 square blocks (more than
// one launch takes, 48) with empty ones (no rows, no columns, no non-zeros), widths over one
// 32-feature tile, one block of 600 rows (more tiles than a launch's 64 blocks per group cover),
// each group's operands and output at their own offsets; beta 0 over NaN and beta 0.5. Positive
// values: no cancellation, so the default relative tolerance holds.
TEST_F(BackendParity, SpmmGrouped) {
  Rng rng(14);
  std::vector<int64_t> rows, cols;
  for (int g = 0; g < 60; ++g) {
    rows.push_back(static_cast<int64_t>(rng.below(40)));
    cols.push_back(1 + static_cast<int64_t>(rng.below(12)));
  }
  rows[3] = 0;
  cols[7] = 0;
  cols[20] = 45;
  rows[50] = 600, cols[50] = 3;
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    std::vector<HostCsr> host;
    std::vector<Twin> parts;  // row_ptr, col_idx, values per group, kept alive for the Csr handles
    std::vector<Csr> a_ref, a_gpu;
    std::vector<int64_t> at;  // element offset of each group's X and Y
    int64_t total = 0;
    for (std::size_t g = 0; g < rows.size(); ++g) {
      host.push_back(random_csr(rng, rows[g], std::max<int64_t>(rows[g], 1)));
      if (g == 11) host.back() = HostCsr{rows[g], std::max<int64_t>(rows[g], 1), std::vector<int32_t>(static_cast<std::size_t>(rows[g] + 1), 0), {}};
      const HostCsr& h = host.back();
      const auto nnz = static_cast<int64_t>(h.col_idx.size());
      parts.push_back(twin<int32_t>(h.row_ptr, Shape{rows[g] + 1}));
      parts.push_back(twin<int32_t>(nnz ? h.col_idx : std::vector<int32_t>{0}, Shape{std::max<int64_t>(nnz, 1)}));
      parts.push_back(twin<T>(random_values<T>(rng, std::max<int64_t>(nnz, 1), 0.1, 1), Shape{std::max<int64_t>(nnz, 1)}));
      at.push_back(total);
      total += h.cols * cols[g] + 3;
    }
    for (std::size_t g = 0; g < rows.size(); ++g) {
      const auto nnz = static_cast<int64_t>(host[g].col_idx.size());
      const Twin &rp = parts[3 * g], &ci = parts[3 * g + 1], &v = parts[3 * g + 2];
      a_ref.push_back(Csr{host[g].rows, host[g].cols, nnz, rp.reference, ci.reference, v.reference});
      a_gpu.push_back(Csr{host[g].rows, host[g].cols, nnz, rp.tested, ci.tested, v.tested});
    }
    const Twin x = twin<T>(random_values<T>(rng, total, 0.1, 1), Shape{total});
    for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{2.0, 0.5}}) {
      const std::string what = "spmm_grouped beta " + std::to_string(beta);
      SCOPED_TRACE(what);
      auto y0 = random_values<T>(rng, total, 0.1, 1);
      if (beta == 0)
        for (std::size_t g = 0; g < rows.size(); ++g)
          for (int64_t i = 0; i < rows[g] * cols[g]; ++i) y0[static_cast<std::size_t>(at[g] + i)] = std::numeric_limits<T>::quiet_NaN();
      Twin y = twin<T>(y0, Shape{total});
      auto groups_of = [&](const std::vector<Csr>& a, const Tensor& xt, Tensor& yt) {
        std::vector<SpmmGroup> groups;
        for (std::size_t g = 0; g < rows.size(); ++g)
          groups.push_back(SpmmGroup{&a[g], cols[g], static_cast<const T*>(xt.data()) + at[g], static_cast<T*>(yt.data()) + at[g]});
        return groups;
      };
      ref().spmm_grouped(groups_of(a_ref, x.reference, y.reference), alpha, beta, dtype_of<T>());
      gpu().spmm_grouped(groups_of(a_gpu, x.tested, y.tested), alpha, beta, dtype_of<T>());
      expect_close_twin<T>(what, y);
      if (beta == 0) expect_all_finite<T>(what, download<T>(ref(), y.reference));
    }
  });
}

// ---- elementwise ----------------------------------------------------------------------------------

// Inputs inside each op's domain: a for the first operand, b for the second.
template <class T> std::vector<T> map_input(Rng& rng, MapOp op, bool first, int64_t n) {
  switch (op) {
    case MapOp::div:
      if (!first) {  // |b| in [0.5, 2), either sign
        auto v = random_values<T>(rng, n, 0.5, 2);
        for (T& x : v) x = rng.uniform() < 0.5 ? -x : x;
        return v;
      }
      break;
    case MapOp::sqrt: return first ? random_values<T>(rng, n, -1, 3, 0.05) : random_values<T>(rng, n, -1, 1);
    case MapOp::reciprocal: return first ? random_values<T>(rng, n, 0.5, 2) : random_values<T>(rng, n, -1, 1);
    case MapOp::log: return first ? random_values<T>(rng, n, 0, 2, 0.1) : random_values<T>(rng, n, -1, 1);
    case MapOp::plus_one_times: return random_values<T>(rng, n, -2, 2);
    case MapOp::clip_coefficient: return random_values<T>(rng, n, 0, 4, 0.05);
    default: break;
  }
  return random_values<T>(rng, n, -2, 2, 0.05);  // exact zeros exercise relu's edges
}
double map_constant(MapOp op) {
  switch (op) {
    case MapOp::add: return 0.75;
    case MapOp::sqrt:
    case MapOp::reciprocal: return 1e-3;
    case MapOp::clip_coefficient: return 1.0;
    default: return 0.0;
  }
}
const char* broadcast_name(Broadcast b) {
  switch (b) {
    case Broadcast::full: return "full";
    case Broadcast::row: return "row";
    case Broadcast::col: return "col";
    case Broadcast::scalar: return "scalar";
  }
  return "?";
}

TEST_F(BackendParity, MapEveryOpAndBroadcast) {
  Rng rng(6);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (int o = 0; o < static_cast<int>(MapOp::count); ++o) {
      const MapOp op = static_cast<MapOp>(o);
      for (const Size& s : kShapes)
        for (Broadcast mode : {Broadcast::full, Broadcast::row, Broadcast::col, Broadcast::scalar})
          for (bool with_b : {true, false}) {
            // b = null is meaningful for the unary ops only (and then the mode is ignored).
            const bool binary = op == MapOp::broadcast || op == MapOp::add || op == MapOp::mul || op == MapOp::div ||
                                op == MapOp::relu_backward || op == MapOp::reciprocal_backward ||
                                op == MapOp::plus_one_times;
            if (!with_b && (binary || mode != Broadcast::full)) continue;
            for (double beta : {0.0, 1.0}) {
              const std::string what = std::string("map ") + map_op_name(op) + " " + broadcast_name(mode) +
                                       (with_b ? "" : " (no b)") + " " + describe(s) + " beta " + std::to_string(beta);
              SCOPED_TRACE(what);
              const int64_t n = s.rows * s.cols;
              const int64_t bn = mode == Broadcast::full ? n : mode == Broadcast::row ? s.cols
                               : mode == Broadcast::col  ? s.rows
                                                         : 1;
              Twin a = twin<T>(map_input<T>(rng, op, true, n), Shape{s.rows, s.cols});
              Twin b = twin<T>(map_input<T>(rng, op, false, bn), Shape{bn});
              Twin out = twin<T>(beta == 0 ? nan_values<T>(n) : random_values<T>(rng, n, -2, 2), Shape{s.rows, s.cols});
              const double alpha = 1.25, c = map_constant(op);
              // map(broadcast) ignores a: pass an undefined tensor to both.
              const Tensor none;
              ref().map(op, op == MapOp::broadcast ? none : a.reference, with_b ? &b.reference : nullptr, mode, c,
                        alpha, beta, out.reference);
              gpu().map(op, op == MapOp::broadcast ? none : a.tested, with_b ? &b.tested : nullptr, mode, c, alpha,
                        beta, out.tested);
              expect_close_twin<T>(what, out);
            }
          }
    }
  });
}

TEST_F(BackendParity, Dropout) {
  Rng rng(7);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Size& s : kShapes)
      for (double p : {0.1, 0.5, 0.9})
        for (uint64_t seed : {uint64_t{7}, uint64_t{123456789012345}})
          for (double beta : {0.0, 1.0}) {
            const std::string what = "dropout " + describe(s) + " p " + std::to_string(p) + " seed " +
                                     std::to_string(seed) + " beta " + std::to_string(beta);
            SCOPED_TRACE(what);
            const int64_t n = s.rows * s.cols;
            Twin x = twin<T>(random_values<T>(rng, n, 0.5, 2), Shape{s.rows, s.cols});  // never 0: masks are visible
            Twin y = twin<T>(beta == 0 ? nan_values<T>(n) : random_values<T>(rng, n, -2, 2), Shape{s.rows, s.cols});
            ref().dropout(x.reference, p, seed, beta, y.reference);
            gpu().dropout(x.tested, p, seed, beta, y.tested);
            expect_close_twin<T>(what, y);
            if (beta == 0) {  // the same mask, element for element
              const auto yr = download<T>(ref(), y.reference), yg = download<T>(gpu(), y.tested);
              std::vector<int> kept_r(yr.size()), kept_g(yg.size());
              for (std::size_t i = 0; i < yr.size(); ++i) {
                kept_r[i] = yr[i] != T(0);
                kept_g[i] = yg[i] != T(0);
              }
              expect_equal(what + " mask", kept_r, kept_g);
            }
          }
  });
}

TEST_F(BackendParity, AdamSteps) {
  Rng rng(8);
  AdamSettings plain;
  AdamSettings decayed;
  decayed.learning_rate = 0.01;
  decayed.beta1 = 0.8;
  decayed.beta2 = 0.99;
  decayed.eps = 1e-6;
  decayed.weight_decay = 0.05;
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{100003}})
      for (const AdamSettings& settings : {plain, decayed}) {
        const std::string what = "adam n " + std::to_string(n) + " weight_decay " + std::to_string(settings.weight_decay);
        SCOPED_TRACE(what);
        Twin params = twin<T>(random_values<T>(rng, n, -1, 1), Shape{n});
        Twin m = twin<T>(std::vector<T>(static_cast<std::size_t>(n), T(0)), Shape{n});
        Twin v = twin<T>(std::vector<T>(static_cast<std::size_t>(n), T(0)), Shape{n});
        Twin scale = twin<T>(std::vector<T>{T(0.7)}, Shape{1});
        for (int64_t step = 1; step <= 3; ++step) {
          Twin grads = twin<T>(random_values<T>(rng, n, -1, 1), Shape{n});
          ref().adam_step(settings, step, scale.reference, params.reference, grads.reference, m.reference, v.reference);
          gpu().adam_step(settings, step, scale.tested, params.tested, grads.tested, m.tested, v.tested);
          expect_close_twin<T>(what + " params, step " + std::to_string(step), params);
          expect_close_twin<T>(what + " m, step " + std::to_string(step), m);
          expect_close_twin<T>(what + " v, step " + std::to_string(step), v);
        }
      }
  });
}

// ---- reductions -----------------------------------------------------------------------------------

const std::vector<Size> kReduceShapes = {{1, 1}, {3001, 17}, {40, 1030}, {3, 2500}, {20000, 3}};

const char* reduce_name(Reduce kind) {
  switch (kind) {
    case Reduce::sum: return "sum";
    case Reduce::dot: return "dot";
    case Reduce::max: return "max";
  }
  return "?";
}

TEST_F(BackendParity, ReduceRowsColsAll) {
  Rng rng(9);
  enum class Axis { rows, cols, all };
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (Axis axis : {Axis::rows, Axis::cols, Axis::all})
      for (Reduce kind : {Reduce::sum, Reduce::dot, Reduce::max}) {
        if (kind == Reduce::max && axis != Axis::rows) continue;  // max is defined for rows only
        for (const Size& s : kReduceShapes)
          for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.5, 2.0}}) {
            const char* axis_name = axis == Axis::rows ? "reduce_rows" : axis == Axis::cols ? "reduce_cols" : "reduce_all";
            const std::string what = std::string(axis_name) + " " + reduce_name(kind) + " " + describe(s) + " beta " +
                                     std::to_string(beta);
            SCOPED_TRACE(what);
            const int64_t n = s.rows * s.cols;
            const int64_t out_n = axis == Axis::rows ? s.rows : axis == Axis::cols ? s.cols : 1;
            Twin a = twin<T>(random_values<T>(rng, n, -2, 2), Shape{s.rows, s.cols});
            Twin b = twin<T>(random_values<T>(rng, n, -2, 2), Shape{s.rows, s.cols});
            Twin out = twin<T>(beta == 0 ? nan_values<T>(out_n) : random_values<T>(rng, out_n, -2, 2), Shape{out_n});
            const Tensor* b_ref = kind == Reduce::dot ? &b.reference : nullptr;
            const Tensor* b_gpu = kind == Reduce::dot ? &b.tested : nullptr;
            switch (axis) {
              case Axis::rows:
                ref().reduce_rows(kind, a.reference, b_ref, alpha, beta, out.reference);
                gpu().reduce_rows(kind, a.tested, b_gpu, alpha, beta, out.tested);
                break;
              case Axis::cols:
                ref().reduce_cols(kind, a.reference, b_ref, alpha, beta, out.reference);
                gpu().reduce_cols(kind, a.tested, b_gpu, alpha, beta, out.tested);
                break;
              case Axis::all:
                ref().reduce_all(kind, a.reference, b_ref, alpha, beta, out.reference);
                gpu().reduce_all(kind, a.tested, b_gpu, alpha, beta, out.tested);
                break;
            }
            expect_close_twin<T>(what, out);
          }
      }
  });
}

// Column sums finish in one launch: the last block of each column tile to arrive adds the tile's
// partials, counted on tickets the backend keeps at zero between launches. A matrix of more column
// tiles than the tickets first allocated (256 tiles of 32 columns) makes the backend grow them,
// and two or three row splits per tile make the count matter; the reductions after it use the
// grown array, which each must have left at zero.
TEST_F(BackendParity, ColumnReductionsGrowTheirTickets) {
  Rng rng(29);
  for (const Size& s : {Size{600, 8250}, Size{1100, 40}, Size{600, 8250}}) {
    const std::string what = "reduce_cols " + describe(s);
    SCOPED_TRACE(what);
    Twin a = twin<float>(random_values<float>(rng, s.rows * s.cols, -2, 2), Shape{s.rows, s.cols});
    Twin out = twin<float>(nan_values<float>(s.cols), Shape{s.cols});
    ref().reduce_cols(Reduce::sum, a.reference, nullptr, 1.0, 0.0, out.reference);
    gpu().reduce_cols(Reduce::sum, a.tested, nullptr, 1.0, 0.0, out.tested);
    expect_close_twin<float>(what, out);
  }
}

// Row-wise primitives over many blocks at once (per-graph pooling's [n_g, k_g] blocks):
// map_grouped, reduce_rows_grouped, softmax_rows_grouped and argmax_rows_grouped against the
// reference's one-block calls, each block at its own offset with a gap after it that must stay as
// it was. Two layouts: 70 blocks (more than one launch takes, 64) with empty ones (no rows, no
// columns) and, in the second launch, a block with rows wider than a warp's share (> 1024
// columns: that launch takes the block-per-row kernels); and a block longer than a launch's 64
// blocks of rows cover beside a small one. (Apart, and small, because the CPU emulation runs
// every CUDA thread of the grid as a fiber, idle ones included.)
struct RowsLayout {
  std::vector<int64_t> rows, cols;
  std::vector<int64_t> at, row_at;  // offsets of each block's elements and of its rows
  int64_t elements = 0, row_total = 0;
  RowsLayout(Rng& rng, bool long_block) {
    if (long_block) {
      rows = {600, 3};
      cols = {2, 5};
    } else {
      for (int g = 0; g < 70; ++g) {  // up to 2 blocks of 8 rows per group; few rows beside the wide one
        rows.push_back(static_cast<int64_t>(rng.below(g < 64 ? 17 : 4)));
        cols.push_back(1 + static_cast<int64_t>(rng.below(20)));
      }
      rows[4] = 0;
      cols[40] = 0;
      rows[66] = 2, cols[66] = 1100;
      rows[69] = 1, cols[69] = 1;
    }
    for (std::size_t g = 0; g < rows.size(); ++g) {
      at.push_back(elements);
      row_at.push_back(row_total);
      elements += rows[g] * cols[g] + 2;
      row_total += rows[g] + 2;
    }
  }
  std::size_t count() const { return rows.size(); }
};

TEST_F(BackendParity, RowsGrouped) {
  Rng rng(13);
  for (bool long_block : {false, true}) {
  SCOPED_TRACE(long_block ? "a long block" : "70 blocks");
  const RowsLayout l(rng, long_block);
  const auto n = static_cast<int64_t>(l.count());
  // Outputs: NaN inside the blocks for beta 0 (never read), random in the gaps and for beta != 0.
  auto initial = [&](auto zero, bool per_row, double beta) {
    using T = decltype(zero);
    auto values = random_values<T>(rng, per_row ? l.row_total : l.elements, -2, 2);
    if (beta == 0)
      for (std::size_t g = 0; g < l.count(); ++g) {
        const int64_t first = per_row ? l.row_at[g] : l.at[g], size = per_row ? l.rows[g] : l.rows[g] * l.cols[g];
        for (int64_t i = 0; i < size; ++i) values[static_cast<std::size_t>(first + i)] = std::numeric_limits<T>::quiet_NaN();
      }
    return values;
  };
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    const Twin a = twin<T>(random_values<T>(rng, l.elements, 0.1, 3), Shape{l.elements});  // > 0: log is defined
    const Twin full = twin<T>(random_values<T>(rng, l.elements, -2, 2), Shape{l.elements});
    const Twin per_row = twin<T>(random_values<T>(rng, l.row_total, -2, 2), Shape{l.row_total});
    const Twin per_col = twin<T>(random_values<T>(rng, 1100 * n, -2, 2), Shape{1100 * n});  // a row of b per block
    const Twin scalars = twin<T>(random_values<T>(rng, n, -2, 2), Shape{n});
    auto element = [](const Tensor& t, int64_t i) { return static_cast<const T*>(t.data()) + i; };
    auto groups_of = [&](bool tested, Broadcast mode, bool with_b, Twin& out, bool out_per_row) {
      std::vector<RowsGroup> groups;
      for (std::size_t g = 0; g < l.count(); ++g) {
        const Tensor& b = mode == Broadcast::full ? (tested ? full.tested : full.reference)
                        : mode == Broadcast::col  ? (tested ? per_row.tested : per_row.reference)
                        : mode == Broadcast::row  ? (tested ? per_col.tested : per_col.reference)
                                                  : (tested ? scalars.tested : scalars.reference);
        const int64_t b_at = mode == Broadcast::full ? l.at[g]
                           : mode == Broadcast::col  ? l.row_at[g]
                           : mode == Broadcast::row  ? static_cast<int64_t>(g) * 1100
                                                     : static_cast<int64_t>(g);
        Tensor& o = tested ? out.tested : out.reference;
        groups.push_back(RowsGroup{l.rows[g], l.cols[g], element(tested ? a.tested : a.reference, l.at[g]),
                                   with_b ? element(b, b_at) : nullptr,
                                   static_cast<T*>(o.data()) + (out_per_row ? l.row_at[g] : l.at[g])});
      }
      return groups;
    };
    // mul under every broadcast mode; the other ops (b unused, a constant, unary) under one each.
    const std::vector<std::pair<MapOp, Broadcast>> maps = {
        {MapOp::mul, Broadcast::full},         {MapOp::mul, Broadcast::row},   {MapOp::mul, Broadcast::col},
        {MapOp::mul, Broadcast::scalar},       {MapOp::broadcast, Broadcast::col}, {MapOp::add, Broadcast::row},
        {MapOp::log, Broadcast::full},         {MapOp::plus_one_times, Broadcast::col}};
    for (auto [op, mode] : maps)
      for (double beta : {0.0, 1.5}) {
        const bool unary = op == MapOp::log;
        const std::string what = std::string("map_grouped ") + map_op_name(op) + " " + broadcast_name(mode) +
                                 " beta " + std::to_string(beta);
        SCOPED_TRACE(what);
        Twin out = twin<T>(initial(zero, false, beta), Shape{l.elements});
        const double c = op == MapOp::add ? -0.75 : 0.0;
        ref().map_grouped(op, groups_of(false, mode, !unary, out, false), mode, c, 1.25, beta, dtype_of<T>());
        gpu().map_grouped(op, groups_of(true, mode, !unary, out, false), mode, c, 1.25, beta, dtype_of<T>());
        expect_close_twin<T>(what, out);
        if (beta == 0) expect_all_finite<T>(what, download<T>(ref(), out.reference));
      }
    for (Reduce kind : {Reduce::sum, Reduce::dot, Reduce::max})
      for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.5, 2.0}}) {
        const std::string what = std::string("reduce_rows_grouped ") + reduce_name(kind) + " beta " + std::to_string(beta);
        SCOPED_TRACE(what);
        Twin out = twin<T>(initial(zero, true, beta), Shape{l.row_total});
        const bool dot = kind == Reduce::dot;
        ref().reduce_rows_grouped(kind, groups_of(false, Broadcast::full, dot, out, true), alpha, beta, dtype_of<T>());
        gpu().reduce_rows_grouped(kind, groups_of(true, Broadcast::full, dot, out, true), alpha, beta, dtype_of<T>());
        expect_close_twin<T>(what, out);
        if (beta == 0) expect_all_finite<T>(what, download<T>(ref(), out.reference));  // blocks of no columns: 0
      }
    {
      SCOPED_TRACE("softmax_rows_grouped");
      Twin out = twin<T>(initial(zero, false, 0.0), Shape{l.elements});
      ref().softmax_rows_grouped(groups_of(false, Broadcast::full, false, out, false), dtype_of<T>());
      gpu().softmax_rows_grouped(groups_of(true, Broadcast::full, false, out, false), dtype_of<T>());
      expect_close_twin<T>("softmax_rows_grouped", out);
      expect_all_finite<T>("softmax_rows_grouped", download<T>(ref(), out.reference));
    }
    {
      // Ties (values from {0, 1, 2}): the first maximum must win on both. The predictions of each
      // block checked against the host's argmax too; the gaps between them, and the rows of the
      // block of no columns (skipped), keep their -7.
      SCOPED_TRACE("argmax_rows_grouped");
      const std::vector<T> values = tied_values<T>(rng, l.elements, 3);
      const Twin x = twin<T>(values, Shape{l.elements});
      Twin out = twin<int32_t>(std::vector<int32_t>(static_cast<std::size_t>(l.row_total), -7), Shape{l.row_total});
      auto groups = [&](bool tested) {
        std::vector<RowsGroup> g;
        for (std::size_t i = 0; i < l.count(); ++i)
          g.push_back(RowsGroup{l.rows[i], l.cols[i], static_cast<const T*>((tested ? x.tested : x.reference).data()) + l.at[i],
                                nullptr, static_cast<int32_t*>((tested ? out.tested : out.reference).data()) + l.row_at[i]});
        return g;
      };
      ref().argmax_rows_grouped(groups(false), dtype_of<T>());
      gpu().argmax_rows_grouped(groups(true), dtype_of<T>());
      expect_twin_equal<int32_t>("argmax_rows_grouped", ref(), gpu(), out);
      std::vector<int32_t> expected(static_cast<std::size_t>(l.row_total), -7);
      for (std::size_t i = 0; i < l.count(); ++i)
        for (int64_t r = 0; r < (l.cols[i] > 0 ? l.rows[i] : 0); ++r) {
          int32_t best = 0;
          for (int64_t c = 1; c < l.cols[i]; ++c)
            if (values[static_cast<std::size_t>(l.at[i] + r * l.cols[i] + c)] >
                values[static_cast<std::size_t>(l.at[i] + r * l.cols[i] + best)])
              best = static_cast<int32_t>(c);
          expected[static_cast<std::size_t>(l.row_at[i] + r)] = best;
        }
      EXPECT_EQ(download<int32_t>(ref(), out.reference), expected);
    }
  });
  }
}

// ---- graphs ---------------------------------------------------------------------------------------

std::vector<int32_t> offsets_from_sizes(const std::vector<int64_t>& sizes) {
  std::vector<int32_t> offsets{0};
  for (int64_t n : sizes) offsets.push_back(offsets.back() + static_cast<int32_t>(n));
  return offsets;
}

// Batches of graphs of unequal sizes, with empty graphs first, inside and last.
std::vector<std::vector<int64_t>> segment_batches(Rng& rng) {
  std::vector<int64_t> many;
  for (int g = 0; g < 64; ++g) many.push_back(static_cast<int64_t>(rng.below(121)));
  return {{0, 5, 17, 1, 40, 3, 0, 300, 2, 0}, many, {7}, {2500, 0, 1}};
}

const char* segment_name(SegmentReduce kind) { return segment_reduce_name(kind); }

TEST_F(BackendParity, SegmentReduceForwardAndBackward) {
  Rng rng(10);
  const auto batches = segment_batches(rng);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const auto& sizes : batches)
      for (int64_t f : {int64_t{1}, int64_t{17}, int64_t{70}})
        for (bool ties : {false, true})
          for (SegmentReduce kind : {SegmentReduce::sum, SegmentReduce::mean, SegmentReduce::max}) {
            const auto offsets = offsets_from_sizes(sizes);
            const int64_t segments = static_cast<int64_t>(sizes.size()), rows = offsets.back();
            const std::string what = std::string("segment_reduce ") + segment_name(kind) + " " +
                                     std::to_string(segments) + " graphs, " + std::to_string(rows) + " rows, f " +
                                     std::to_string(f) + (ties ? " (ties)" : "");
            SCOPED_TRACE(what);
            Twin toffsets = twin<int32_t>(offsets, Shape{segments + 1});
            Twin x = twin<T>(ties ? tied_values<T>(rng, rows * f, 3) : random_values<T>(rng, rows * f, -2, 2),
                             Shape{rows, f});
            Twin y = twin<T>(nan_values<T>(segments * f), Shape{segments, f});
            Twin argmax = twin<int32_t>(std::vector<int32_t>(static_cast<std::size_t>(segments * f), 12345),
                                        Shape{segments, f});
            const bool is_max = kind == SegmentReduce::max;
            ref().segment_reduce_forward(kind, x.reference, toffsets.reference, y.reference,
                                         is_max ? &argmax.reference : nullptr);
            gpu().segment_reduce_forward(kind, x.tested, toffsets.tested, y.tested, is_max ? &argmax.tested : nullptr);
            expect_close_twin<T>(what + " forward", y);
            if (is_max) expect_twin_equal<int32_t>(what + " argmax", ref(), gpu(), argmax);

            // Backward with the reference's argmax on both sides; dx accumulates.
            const auto dy = random_values<T>(rng, segments * f, -2, 2);
            Twin tdy = twin<T>(dy, Shape{segments, f});
            Twin dx = twin<T>(random_values<T>(rng, rows * f, -1, 1), Shape{rows, f});
            Tensor argmax_for_gpu;
            if (is_max) argmax_for_gpu = upload<int32_t>(gpu(), download<int32_t>(ref(), argmax.reference), Shape{segments, f});
            ref().segment_reduce_backward(kind, tdy.reference, toffsets.reference, is_max ? &argmax.reference : nullptr,
                                          dx.reference);
            gpu().segment_reduce_backward(kind, tdy.tested, toffsets.tested, is_max ? &argmax_for_gpu : nullptr,
                                          dx.tested);
            expect_close_twin<T>(what + " backward", dx);
          }
  });
}

// The binary cross-entropy link loss over batches of unequal graphs (empty ones too), with random
// sorted 0/1 patterns inside each graph; values keep P = s s^T below 1, or (hi 0.7) push some
// pairs above 1 where the clamp applies and the gradient vanishes.
TEST_F(BackendParity, LinkBinaryCrossEntropy) {
  Rng rng(17);
  const auto batches = segment_batches(rng);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const auto& sizes : batches)
      for (auto [k, hi] : {std::pair<int64_t, double>{4, 0.45}, {37, 0.15}, {4, 0.7}}) {
        const auto offsets = offsets_from_sizes(sizes);
        const int64_t segments = static_cast<int64_t>(sizes.size()), rows = offsets.back();
        if (rows > 1500) continue;  // O(n^2 k) per graph: keep the reference quick
        const std::string what = "link_bce " + std::to_string(segments) + " graphs, " + std::to_string(rows) +
                                 " rows, k " + std::to_string(k) + ", values up to " + std::to_string(hi);
        SCOPED_TRACE(what);
        HostCsr h{rows, rows, {0}, {}};
        for (int64_t g = 0; g < segments; ++g)
          for (int64_t r = offsets[static_cast<std::size_t>(g)]; r < offsets[static_cast<std::size_t>(g) + 1]; ++r) {
            for (int64_t c = offsets[static_cast<std::size_t>(g)]; c < offsets[static_cast<std::size_t>(g) + 1]; ++c)
              if (rng.uniform() < 0.3) h.col_idx.push_back(static_cast<int32_t>(c));
            h.row_ptr.push_back(static_cast<int32_t>(h.col_idx.size()));
          }
        const int64_t nnz = static_cast<int64_t>(h.col_idx.size());
        Twin row_ptr = twin<int32_t>(h.row_ptr, Shape{rows + 1});
        Twin col_idx = twin<int32_t>(h.col_idx, Shape{nnz});
        Csr a_ref{rows, rows, nnz, row_ptr.reference, col_idx.reference, Tensor()};
        Csr a_gpu{rows, rows, nnz, row_ptr.tested, col_idx.tested, Tensor()};
        Twin toffsets = twin<int32_t>(offsets, Shape{segments + 1});
        Twin s = twin<T>(random_values<T>(rng, rows * k, 0.0, hi), Shape{rows, k});
        Twin loss = twin<T>(nan_values<T>(rows), Shape{rows, 1});
        ref().link_bce_forward(s.reference, a_ref, toffsets.reference, 1e-7, loss.reference);
        gpu().link_bce_forward(s.tested, a_gpu, toffsets.tested, 1e-7, loss.tested);
        expect_close_twin<T>(what + " forward", loss);
        Twin w = twin<T>(random_values<T>(rng, rows, -1, 1), Shape{rows, 1});
        for (double beta : {0.0, 1.0}) {
          Twin ds = twin<T>(random_values<T>(rng, rows * k, -1, 1), Shape{rows, k});
          ref().link_bce_backward(s.reference, a_ref, toffsets.reference, 1e-7, w.reference, beta, ds.reference);
          gpu().link_bce_backward(s.tested, a_gpu, toffsets.tested, 1e-7, w.tested, beta, ds.tested);
          expect_close_twin<T>(what + " backward, beta " + std::to_string(beta), ds);
        }
      }
  });
}

// ---- fused row and column operations --------------------------------------------------------------

const std::vector<Size> kRowShapes = {{1, 1}, {3001, 7}, {64, 33}, {3, 1500}};

TEST_F(BackendParity, SoftmaxRows) {
  Rng rng(11);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Size& s : kRowShapes) {
      const std::string what = "softmax_rows " + describe(s);
      SCOPED_TRACE(what);
      auto xv = random_values<T>(rng, s.rows * s.cols, -5, 5);
      for (int64_t c = 0; c < s.cols; ++c) xv[static_cast<std::size_t>(c)] += T(200);  // large logits: needs the max shift
      Twin x = twin<T>(xv, Shape{s.rows, s.cols});
      Twin y = twin<T>(nan_values<T>(s.rows * s.cols), Shape{s.rows, s.cols});
      ref().softmax_rows_forward(x.reference, y.reference);
      gpu().softmax_rows_forward(x.tested, y.tested);
      expect_close_twin<T>(what + " forward", y);

      const auto yv = download<T>(ref(), y.reference);
      Twin y_in = twin<T>(yv, Shape{s.rows, s.cols});
      Twin dy = twin<T>(random_values<T>(rng, s.rows * s.cols, -1, 1), Shape{s.rows, s.cols});
      // beta 1 adds to dx; beta 0 overwrites it (NaN before: never read).
      for (double beta : {1.0, 0.0}) {
        Twin dx = twin<T>(beta == 0 ? nan_values<T>(s.rows * s.cols) : random_values<T>(rng, s.rows * s.cols, -1, 1),
                          Shape{s.rows, s.cols});
        ref().softmax_rows_backward(dy.reference, y_in.reference, beta, dx.reference);
        gpu().softmax_rows_backward(dy.tested, y_in.tested, beta, dx.tested);
        expect_close_twin<T>(what + " backward, beta " + std::to_string(beta), dx);
        if (beta == 0) expect_all_finite<T>(what + " backward, beta 0", download<T>(ref(), dx.reference));
      }
    }
  });
}

TEST_F(BackendParity, L2NormalizeRows) {
  Rng rng(12);
  const double eps = 1e-6;
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Size& s : kRowShapes)
      for (bool relu : {false, true}) {  // relu: the ReLU in the same pass, its mask in the backward
      const std::string what = std::string(relu ? "l2_normalize_rows with relu " : "l2_normalize_rows ") + describe(s);
      SCOPED_TRACE(what);
      auto xv = random_values<T>(rng, s.rows * s.cols, -2, 2);
      if (s.rows >= 3) {  // a zero row and a tiny row: norm < eps, y = x / eps
        for (int64_t c = 0; c < s.cols; ++c) {
          xv[static_cast<std::size_t>(c)] = T(0);
          xv[static_cast<std::size_t>(s.cols + c)] = static_cast<T>(1e-9 * (c % 3));
        }
      }
      Twin x = twin<T>(xv, Shape{s.rows, s.cols});
      Twin y = twin<T>(nan_values<T>(s.rows * s.cols), Shape{s.rows, s.cols});
      Twin norms = twin<T>(nan_values<T>(s.rows), Shape{s.rows});
      Twin out = twin<T>(nan_values<T>(s.rows * s.cols), Shape{s.rows, s.cols});
      ref().l2_normalize_rows_forward(x.reference, eps, y.reference, norms.reference, relu ? &out.reference : nullptr);
      gpu().l2_normalize_rows_forward(x.tested, eps, y.tested, norms.tested, relu ? &out.tested : nullptr);
      expect_close_twin<T>(what + " forward y", y);
      expect_close_twin<T>(what + " forward norms", norms);
      if (relu) {
        expect_close_twin<T>(what + " forward relu", out);
        const auto hy = download<T>(ref(), y.reference), hout = download<T>(ref(), out.reference);
        for (std::size_t i = 0; i < hy.size(); ++i) ASSERT_EQ(hout[i], hy[i] > T(0) ? hy[i] : T(0)) << what << " at " << i;
      } else {  // no relu output: left as it was
        gpu().synchronize();
        for (const T v : download<T>(gpu(), out.tested)) ASSERT_TRUE(std::isnan(static_cast<double>(v))) << what;
      }

      Twin y_in = twin<T>(download<T>(ref(), y.reference), Shape{s.rows, s.cols});
      Twin norms_in = twin<T>(download<T>(ref(), norms.reference), Shape{s.rows});
      Twin dy = twin<T>(random_values<T>(rng, s.rows * s.cols, -1, 1), Shape{s.rows, s.cols});
      for (double beta : {1.0, 0.0}) {
        Twin dx = twin<T>(beta == 0 ? nan_values<T>(s.rows * s.cols) : random_values<T>(rng, s.rows * s.cols, -1, 1),
                          Shape{s.rows, s.cols});
        ref().l2_normalize_rows_backward(dy.reference, y_in.reference, norms_in.reference, eps, relu, beta,
                                         dx.reference);
        gpu().l2_normalize_rows_backward(dy.tested, y_in.tested, norms_in.tested, eps, relu, beta, dx.tested);
        expect_close_twin<T>(what + " backward, beta " + std::to_string(beta), dx);
        if (beta == 0) expect_all_finite<T>(what + " backward, beta 0", download<T>(ref(), dx.reference));
      }
      }
  });
}

TEST_F(BackendParity, BatchNorm) {
  Rng rng(13);
  const double momentum = 0.1, eps = 1e-5;
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Size& s : {Size{1, 3}, Size{2, 5}, Size{100, 64}, Size{2048, 33}, Size{3001, 17}, Size{40, 1030}})
      for (bool training : {true, false}) {
        const std::string what = "batch_norm " + describe(s) + (training ? " training" : " eval");
        SCOPED_TRACE(what);
        const int64_t n = s.rows * s.cols;
        const std::vector<T> xv = random_values<T>(rng, n, 1, 5);  // mean far from 0
        Twin x = twin<T>(xv, Shape{s.rows, s.cols});
        Twin gamma = twin<T>(random_values<T>(rng, s.cols, 0.5, 1.5), Shape{s.cols});
        Twin beta = twin<T>(random_values<T>(rng, s.cols, -1, 1), Shape{s.cols});
        Twin running_mean = twin<T>(random_values<T>(rng, s.cols, -1, 1), Shape{s.cols});
        Twin running_var = twin<T>(random_values<T>(rng, s.cols, 0.5, 2), Shape{s.cols});
        Twin y = twin<T>(nan_values<T>(n), Shape{s.rows, s.cols});
        Twin mean = twin<T>(nan_values<T>(s.cols), Shape{s.cols});
        Twin invstd = twin<T>(nan_values<T>(s.cols), Shape{s.cols});
        ref().batch_norm_forward(x.reference, gamma.reference, beta.reference, training, momentum, eps,
                                 running_mean.reference, running_var.reference, y.reference, mean.reference,
                                 invstd.reference);
        gpu().batch_norm_forward(x.tested, gamma.tested, beta.tested, training, momentum, eps, running_mean.tested,
                                 running_var.tested, y.tested, mean.tested, invstd.tested);
        expect_close_twin<T>(what + " y", y);
        expect_close_twin<T>(what + " mean", mean);
        expect_close_twin<T>(what + " invstd", invstd);
        expect_close_twin<T>(what + " running_mean", running_mean);
        expect_close_twin<T>(what + " running_var", running_var);
        if (!training) continue;

        Twin mean_in = twin<T>(download<T>(ref(), mean.reference), Shape{s.cols});
        Twin invstd_in = twin<T>(download<T>(ref(), invstd.reference), Shape{s.cols});
        const std::vector<T> dyv = random_values<T>(rng, n, -1, 1);
        Twin dy = twin<T>(dyv, Shape{s.rows, s.cols});
        // dx = g invstd (dy - s1 / n - (x - mean) invstd^2 s2 / n) with s1 = sum dy, s2 = sum dy (x - mean):
        // the terms cancel (exactly, for one row), so each element's error is bounded by the
        // magnitudes of its terms (the backends fold them differently), not by the result's.
        const auto hg = download<T>(ref(), gamma.reference), hmean = download<T>(ref(), mean_in.reference),
                   hinvstd = download<T>(ref(), invstd_in.reference);
        std::vector<double> s1(static_cast<std::size_t>(s.cols)), s2(s1.size());
        for (int64_t i = 0; i < n; ++i) {
          const auto c = static_cast<std::size_t>(i % s.cols), e = static_cast<std::size_t>(i);
          s1[c] += std::abs(static_cast<double>(dyv[e]));
          s2[c] += std::abs(static_cast<double>(dyv[e]) * (static_cast<double>(xv[e]) - hmean[c]));
        }
        std::vector<double> terms(static_cast<std::size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          const auto c = static_cast<std::size_t>(i % s.cols), e = static_cast<std::size_t>(i);
          const double gi = std::abs(static_cast<double>(hg[c]) * hinvstd[c]), r = static_cast<double>(s.rows);
          terms[e] = gi * (std::abs(static_cast<double>(dyv[e])) + s1[c] / r +
                           (std::abs(static_cast<double>(xv[e])) + std::abs(static_cast<double>(hmean[c]))) *
                               static_cast<double>(hinvstd[c]) * hinvstd[c] * s2[c] / r);
        }
        for (double dx_beta : {1.0, 0.0}) {  // dx added to, or overwritten (NaN before: never read)
          const std::vector<T> dx0 = dx_beta == 0 ? nan_values<T>(n) : random_values<T>(rng, n, -1, 1);
          Twin dx = twin<T>(dx0, Shape{s.rows, s.cols});
          std::vector<double> bounds = terms;
          if (dx_beta != 0)
            for (std::size_t e = 0; e < bounds.size(); ++e) bounds[e] += std::abs(static_cast<double>(dx0[e]));
          Twin dgamma = twin<T>(random_values<T>(rng, s.cols, -1, 1), Shape{s.cols});
          Twin dbeta = twin<T>(random_values<T>(rng, s.cols, -1, 1), Shape{s.cols});
          ref().batch_norm_backward(dy.reference, x.reference, gamma.reference, mean_in.reference, invstd_in.reference,
                                    dx_beta, dx.reference, dgamma.reference, dbeta.reference);
          gpu().batch_norm_backward(dy.tested, x.tested, gamma.tested, mean_in.tested, invstd_in.tested, dx_beta,
                                    dx.tested, dgamma.tested, dbeta.tested);
          expect_close_twin<T>(what + " dx, beta " + std::to_string(dx_beta), dx, &bounds);
          if (dx_beta == 0) expect_all_finite<T>(what + " dx, beta 0", download<T>(ref(), dx.reference));
          expect_close_twin<T>(what + " dgamma", dgamma);
          expect_close_twin<T>(what + " dbeta", dbeta);
        }
      }
  });
}

std::vector<int32_t> random_labels(Rng& rng, int64_t rows, int64_t classes) {
  std::vector<int32_t> labels(static_cast<std::size_t>(rows));
  for (int32_t& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return labels;
}

TEST_F(BackendParity, CrossEntropy) {
  Rng rng(14);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Size& s : {Size{1, 1}, Size{20, 7}, Size{3001, 2}, Size{4, 1500}}) {
      const std::string what = "cross_entropy " + describe(s);
      SCOPED_TRACE(what);
      Twin logits = twin<T>(random_values<T>(rng, s.rows * s.cols, -6, 6), Shape{s.rows, s.cols});
      Twin labels = twin<int32_t>(random_labels(rng, s.rows, s.cols), Shape{s.rows});
      Twin probs = twin<T>(nan_values<T>(s.rows * s.cols), Shape{s.rows, s.cols});
      Twin losses = twin<T>(nan_values<T>(s.rows), Shape{s.rows});
      ref().cross_entropy_forward(logits.reference, labels.reference, probs.reference, losses.reference);
      gpu().cross_entropy_forward(logits.tested, labels.tested, probs.tested, losses.tested);
      expect_close_twin<T>(what + " probs", probs);
      expect_close_twin<T>(what + " losses", losses);

      Twin probs_in = twin<T>(download<T>(ref(), probs.reference), Shape{s.rows, s.cols});
      Twin dlosses = twin<T>(random_values<T>(rng, s.rows, -1, 1), Shape{s.rows});
      Twin dlogits = twin<T>(random_values<T>(rng, s.rows * s.cols, -1, 1), Shape{s.rows, s.cols});
      ref().cross_entropy_backward(probs_in.reference, labels.reference, dlosses.reference, dlogits.reference);
      gpu().cross_entropy_backward(probs_in.tested, labels.tested, dlosses.tested, dlogits.tested);
      expect_close_twin<T>(what + " backward", dlogits);
    }
  });
}

TEST_F(BackendParity, CountCorrectAndArgmaxRows) {
  Rng rng(15);
  for_each_float([&](auto zero) {
    using T = decltype(zero);
    for (const Size& s : {Size{1, 1}, Size{50, 2}, Size{3001, 10}, Size{7, 1100}})
      for (bool ties : {false, true}) {
        const std::string what = "count_correct/argmax_rows " + describe(s) + (ties ? " (ties)" : "");
        SCOPED_TRACE(what);
        // Ties: values from {0, 1, 2}, so most rows have several maxima and the first must win.
        Twin logits = twin<T>(ties ? tied_values<T>(rng, s.rows * s.cols, 3) : random_values<T>(rng, s.rows * s.cols, -3, 3),
                              Shape{s.rows, s.cols});
        Twin labels = twin<int32_t>(random_labels(rng, s.rows, s.cols), Shape{s.rows});
        Twin count = twin<T>(std::vector<T>{T(3)}, Shape{1});  // accumulates
        ref().count_correct(logits.reference, labels.reference, count.reference);
        gpu().count_correct(logits.tested, labels.tested, count.tested);
        ref().count_correct(logits.reference, labels.reference, count.reference);
        gpu().count_correct(logits.tested, labels.tested, count.tested);
        expect_twin_equal<T>(what + " count", ref(), gpu(), count);

        Twin predictions = twin<int32_t>(std::vector<int32_t>(static_cast<std::size_t>(s.rows), -7), Shape{s.rows});
        ref().argmax_rows(logits.reference, predictions.reference);
        gpu().argmax_rows(logits.tested, predictions.tested);
        expect_twin_equal<int32_t>(what + " predictions", ref(), gpu(), predictions);
      }
  });
}

}  // namespace
}  // namespace diffpool
