// backend.matmul_precision: tf32 on the CPU backend, the emulation that lets TF32 training be
// measured without a GPU: to_tf32 itself (engine/core/tf32.hpp), and the CPU products under it.
// The CUDA backend's TF32 products are compared with these in test_backend_parity (Tf32Products).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/backend/counting_backend.hpp"
#include "engine/core/random.hpp"
#include "engine/core/tf32.hpp"

namespace diffpool {
namespace {

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

TEST(ToTf32, KeepsTenMantissaBitsAndTruncatesTowardZero) {
  EXPECT_EQ(to_tf32(1.0f), 1.0f);
  EXPECT_EQ(to_tf32(1.0f + 0x1p-10f), 1.0f + 0x1p-10f);  // the last bit TF32 has
  EXPECT_EQ(to_tf32(1.0f + 0x1p-11f), 1.0f);             // the first bit it lacks
  EXPECT_EQ(to_tf32(1.0f + 0x1p-10f + 0x1p-11f + 0x1p-23f), 1.0f + 0x1p-10f);  // truncated, not rounded up
  EXPECT_EQ(to_tf32(-(1.0f + 0x1p-11f + 0x1p-12f)), -1.0f);                   // toward zero for negatives
  EXPECT_EQ(bits(to_tf32(std::numeric_limits<float>::max())), 0x7f7fe000u);
  EXPECT_EQ(to_tf32(0.0f), 0.0f);
  EXPECT_EQ(bits(to_tf32(-0.0f)), 0x80000000u);
  // Subnormals lose the same 13 low bits: the smallest ones become zero.
  EXPECT_EQ(bits(to_tf32(from_bits(0x00001fffu))), 0u);
  EXPECT_EQ(bits(to_tf32(from_bits(0x00002001u))), 0x00002000u);
  // Relative error below 2^-10 for every normal value, and exact powers of two.
  Rng rng(1);
  for (int i = 0; i < 10000; ++i) {
    const float x = static_cast<float>((rng.uniform() - 0.5) * std::ldexp(1.0, static_cast<int>(rng.below(60)) - 30));
    if (x == 0) continue;
    const float t = to_tf32(x);
    EXPECT_LE(std::abs(t), std::abs(x));
    EXPECT_LT(std::abs(static_cast<double>(x) - t), std::ldexp(std::abs(static_cast<double>(x)), -10)) << x;
    EXPECT_EQ(bits(t) & kTf32DroppedBits, 0u);
  }
}

TEST(ToTf32, InfinitiesAndNansPassUnchanged) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(to_tf32(inf), inf);
  EXPECT_EQ(to_tf32(-inf), -inf);
  // A NaN whose payload lies only in the dropped bits stays a NaN (masking it would give inf).
  EXPECT_TRUE(std::isnan(to_tf32(from_bits(0x7f800001u))));
  EXPECT_EQ(bits(to_tf32(from_bits(0x7fc00123u))), 0x7fc00123u);
  EXPECT_EQ(to_tf32(0.1), 0.1);  // f64 is never reduced
}

struct Operands {
  int64_t m, n, k, lda, ldb, ldc;
  std::vector<float> a, b, c;
};

// op(A) m x k and op(B) k x n, row-major with padded leading dimensions.
Operands random_operands(Rng& rng, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k) {
  Operands o{m, n, k, (ta == Trans::no ? k : m) + 3, (tb == Trans::no ? n : k) + 2, n + 1, {}, {}, {}};
  o.a.resize(static_cast<std::size_t>((ta == Trans::no ? m : k) * o.lda));
  o.b.resize(static_cast<std::size_t>((tb == Trans::no ? k : n) * o.ldb));
  o.c.resize(static_cast<std::size_t>(m * o.ldc));
  for (float& v : o.a) v = static_cast<float>(rng.uniform() * 2 - 1);
  for (float& v : o.b) v = static_cast<float>(rng.uniform() * 2 - 1);
  for (float& v : o.c) v = static_cast<float>(rng.uniform() * 2 - 1);
  return o;
}

std::vector<float> truncated(std::vector<float> v) {
  for (float& x : v) x = to_tf32(x);
  return v;
}

// Under tf32 a CPU product equals the full-precision product of operands reduced beforehand, bit
// for bit (the same OpenBLAS product of the same values), and differs from the unreduced one.
TEST(CpuTf32, GemmIsTheProductOfReducedOperands) {
  auto fp32 = make_cpu_backend(1);
  auto tf32 = make_backend(BackendOptions{.matmul_precision = MatmulPrecision::tf32});
  ASSERT_EQ(tf32->matmul_precision(), MatmulPrecision::tf32);
  ASSERT_EQ(fp32->matmul_precision(), MatmulPrecision::fp32);
  Rng rng(7);
  for (Trans ta : {Trans::no, Trans::yes})
    for (Trans tb : {Trans::no, Trans::yes}) {
      SCOPED_TRACE(std::string("trans ") + (ta == Trans::yes ? "T" : "N") + (tb == Trans::yes ? "T" : "N"));
      const Operands o = random_operands(rng, ta, tb, 37, 29, 53);
      std::vector<float> c_tf32 = o.c, c_reduced = o.c, c_full = o.c;
      tf32->gemm(ta, tb, o.m, o.n, o.k, 0.75, o.a.data(), o.lda, o.b.data(), o.ldb, 0.5, c_tf32.data(), o.ldc,
                 DType::f32);
      const std::vector<float> a_reduced = truncated(o.a), b_reduced = truncated(o.b);
      fp32->gemm(ta, tb, o.m, o.n, o.k, 0.75, a_reduced.data(), o.lda, b_reduced.data(), o.ldb, 0.5,
                 c_reduced.data(), o.ldc, DType::f32);
      fp32->gemm(ta, tb, o.m, o.n, o.k, 0.75, o.a.data(), o.lda, o.b.data(), o.ldb, 0.5, c_full.data(), o.ldc,
                 DType::f32);
      int differ = 0;
      double worst = 0;
      for (int64_t i = 0; i < o.m; ++i)
        for (int64_t j = 0; j < o.n; ++j) {
          const std::size_t at = static_cast<std::size_t>(i * o.ldc + j);
          ASSERT_EQ(bits(c_tf32[at]), bits(c_reduced[at])) << "C[" << i << ", " << j << "]";
          differ += c_tf32[at] != c_full[at];
          worst = std::max(worst, std::abs(static_cast<double>(c_tf32[at]) - c_full[at]));
        }
      // Most elements change, by the size TF32 predicts: each of the k terms off by under 2^-9
      // relative, |terms| < 0.75, so the sum is off by under 0.75 k 2^-9 (far less in practice).
      EXPECT_GT(differ, o.m * o.n / 2);
      EXPECT_LT(worst, 0.75 * static_cast<double>(o.k) * std::ldexp(1.0, -9));
      EXPECT_GT(worst, 1e-5);
      // The padding of C is never written.
      for (int64_t i = 0; i < o.m; ++i)
        EXPECT_EQ(bits(c_tf32[static_cast<std::size_t>(i * o.ldc + o.n)]), bits(o.c[static_cast<std::size_t>(i * o.ldc + o.n)]));
    }
}

TEST(CpuTf32, BatchedAndGroupedProductsAreReducedToo) {
  auto fp32 = make_cpu_backend(1);
  auto tf32 = make_backend(BackendOptions{.matmul_precision = MatmulPrecision::tf32});
  Rng rng(8);
  const Operands o = random_operands(rng, Trans::no, Trans::yes, 9, 11, 40);
  const std::vector<float> a_reduced = truncated(o.a), b_reduced = truncated(o.b);
  std::vector<float> c_expected = o.c;
  fp32->gemm(Trans::no, Trans::yes, o.m, o.n, o.k, 1.0, a_reduced.data(), o.lda, b_reduced.data(), o.ldb, 0.0,
             c_expected.data(), o.ldc, DType::f32);
  // Batched: the same product twice, the second batch entry at stride 0 (same operands).
  std::vector<float> c_batched(o.c.size() * 2, 0.0f);
  tf32->gemm_strided_batched(Trans::no, Trans::yes, o.m, o.n, o.k, 1.0, o.a.data(), o.lda, 0, o.b.data(), o.ldb, 0,
                             0.0, c_batched.data(), o.ldc, static_cast<int64_t>(o.c.size()), 2, DType::f32);
  std::vector<float> c_grouped = o.c;
  tf32->gemm_grouped(Trans::no, Trans::yes,
                     {GemmGroup{o.m, o.n, o.k, o.a.data(), o.lda, o.b.data(), o.ldb, c_grouped.data(), o.ldc}}, 1.0,
                     0.0, DType::f32);
  for (int64_t i = 0; i < o.m; ++i)
    for (int64_t j = 0; j < o.n; ++j) {
      const std::size_t at = static_cast<std::size_t>(i * o.ldc + j);
      EXPECT_EQ(bits(c_batched[at]), bits(c_expected[at]));
      EXPECT_EQ(bits(c_batched[at + o.c.size()]), bits(c_expected[at]));
      EXPECT_EQ(bits(c_grouped[at]), bits(c_expected[at]));
    }
}

TEST(CpuTf32, DoubleProductsAreNotReduced) {
  auto fp32 = make_cpu_backend(1);
  auto tf32 = make_backend(BackendOptions{.matmul_precision = MatmulPrecision::tf32});
  Rng rng(9);
  const int64_t m = 13, n = 7, k = 21;
  std::vector<double> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
  for (double& v : a) v = rng.uniform() * 2 - 1;
  for (double& v : b) v = rng.uniform() * 2 - 1;
  std::vector<double> c1(static_cast<std::size_t>(m * n)), c2(c1.size());
  fp32->gemm(Trans::no, Trans::no, m, n, k, 1.0, a.data(), k, b.data(), n, 0.0, c1.data(), n, DType::f64);
  tf32->gemm(Trans::no, Trans::no, m, n, k, 1.0, a.data(), k, b.data(), n, 0.0, c2.data(), n, DType::f64);
  for (std::size_t i = 0; i < c1.size(); ++i) EXPECT_EQ(c1[i], c2[i]) << i;
}

TEST(CpuTf32, WrappersForwardThePrecision) {
  auto inner = make_cpu_backend(1);
  CountingBackend counting(*inner);
  EXPECT_EQ(counting.matmul_precision(), MatmulPrecision::fp32);
  counting.set_matmul_precision(MatmulPrecision::tf32);
  EXPECT_EQ(counting.matmul_precision(), MatmulPrecision::tf32);
  EXPECT_EQ(inner->matmul_precision(), MatmulPrecision::tf32);
  CountingBackend second(*inner);  // takes the inner backend's precision
  EXPECT_EQ(second.matmul_precision(), MatmulPrecision::tf32);
}

TEST(MatmulPrecision, NamesAndWhatLogsRecord) {
  EXPECT_STREQ(matmul_precision_name(MatmulPrecision::fp32), "fp32");
  EXPECT_STREQ(matmul_precision_name(MatmulPrecision::tf32), "tf32");
  auto fp32 = make_cpu_backend(1);
  auto tf32 = make_backend(BackendOptions{.matmul_precision = MatmulPrecision::tf32});
  EXPECT_EQ(fp32->description(), fp32->name());
  EXPECT_EQ(tf32->description(), tf32->name() + ", TF32 products");
}

}  // namespace
}  // namespace diffpool
