// The CPU backend: the reference implementation of every primitive (see backend.hpp).
// Dense products go to OpenBLAS (cblas_?gemm), everything else is plain loops that the compiler
// vectorises. Reductions accumulate in double so f32 results do not depend on summation order
// more than necessary; the order itself is fixed, so results are bit-identical run after run.
#include <cblas.h>
#include <sys/mman.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string_view>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/tf32.hpp"

extern "C" void openblas_set_num_threads(int num_threads);

// The backend's own loops are compiled twice (docs/PERFORMANCE.md, "AVX2 loops"): in this file for
// the x86-64 baseline (SSE2), into namespace cpu_baseline, and again by cpu_backend_avx2.cpp, which
// includes this file with DIFFPOOL_CPU_AVX2 defined, for AVX2 into namespace cpu_avx2;
// make_cpu_backend picks one when the backend is made. Every header is included above this point,
// so only the functions defined below get the wider instructions (library code that both copies
// call stays the baseline's, safe everywhere). AVX2 without FMA: no multiply-add is fused, and no
// reduction is reordered (no -ffast-math), so both copies compute bit-identical results.
// (A compiler without GCC's target pragma builds the second copy as the baseline's code.)
#if defined(DIFFPOOL_CPU_AVX2) && defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC push_options
#pragma GCC target("avx2")
#define DIFFPOOL_CPU_LOOPS_WIDER 1
#else
#define DIFFPOOL_CPU_LOOPS_WIDER 0
#endif
#define DIFFPOOL_CPU_LOOPS_NAME (DIFFPOOL_CPU_LOOPS_WIDER ? "AVX2" : "baseline")

#if defined(DIFFPOOL_CPU_AVX2)
#define DIFFPOOL_CPU_NS cpu_avx2
#else
#define DIFFPOOL_CPU_NS cpu_baseline
#endif

namespace diffpool {
namespace DIFFPOOL_CPU_NS {
namespace {

template <class F> void dispatch_float(DType dtype, const char* where, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: break;
  }
  DP_CHECK(false, "{}: floating-point tensor expected, got {}", where, dtype_name(dtype));
}

CBLAS_TRANSPOSE to_cblas(Trans t) { return t == Trans::yes ? CblasTrans : CblasNoTrans; }

template <class T> const T* cptr(const Tensor* t) { return t ? static_cast<const T*>(t->data()) : nullptr; }

void check_same_rows_cols(const char* where, const Tensor& a, const Tensor& out) {
  DP_CHECK(a.numel() == out.numel(), "{}: input {} and output {} differ in size", where, a.describe(),
           out.describe());
  DP_CHECK(a.dtype() == out.dtype(), "{}: input {} and output {} differ in dtype", where, a.describe(),
           out.describe());
}

// out = alpha * f(a, b) + beta * out with b broadcast by `mode`. One loop nest per broadcast
// mode and per overwrite/accumulate, so the inner loops are branch-free and vectorise.
template <class T, bool Accumulate, class F>
void map_rows(int64_t rows, int64_t cols, const T* __restrict a, const T* __restrict b, Broadcast mode, T alpha,
              T beta, T* __restrict out, F f) {
  auto finish = [&](T value, T old) {
    if constexpr (Accumulate) return alpha * value + beta * old;
    else return alpha * value;
  };
  if (b == nullptr || mode == Broadcast::full) {
    const int64_t n = rows * cols;
    if (a && b) for (int64_t i = 0; i < n; ++i) out[i] = finish(f(a[i], b[i]), out[i]);
    else if (a) for (int64_t i = 0; i < n; ++i) out[i] = finish(f(a[i], T(0)), out[i]);
    else if (b) for (int64_t i = 0; i < n; ++i) out[i] = finish(f(T(0), b[i]), out[i]);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict o = out + r * cols;
    const T* __restrict ar = a ? a + r * cols : nullptr;
    if (mode == Broadcast::row) {
      if (ar) for (int64_t c = 0; c < cols; ++c) o[c] = finish(f(ar[c], b[c]), o[c]);
      else for (int64_t c = 0; c < cols; ++c) o[c] = finish(f(T(0), b[c]), o[c]);
    } else {
      const T bv = mode == Broadcast::col ? b[r] : b[0];
      if (ar) for (int64_t c = 0; c < cols; ++c) o[c] = finish(f(ar[c], bv), o[c]);
      else for (int64_t c = 0; c < cols; ++c) o[c] = finish(f(T(0), bv), o[c]);
    }
  }
}

template <class T, class F>
void map_loop(int64_t rows, int64_t cols, const T* a, const T* b, Broadcast mode, T alpha, T beta, T* out, F f) {
  if (beta != T(0)) map_rows<T, true>(rows, cols, a, b, mode, alpha, beta, out, f);
  else map_rows<T, false>(rows, cols, a, b, mode, alpha, beta, out, f);
}

// MapOp::relu and MapOp::relu_backward (b = x), shared by map and the l2 normalisation with relu.
template <class T> constexpr auto kRelu = [](T x, T) { return x > T(0) ? x : T(0); };
template <class T> constexpr auto kReluBackward = [](T dy, T x) { return x > T(0) ? dy : T(0); };

// Sums with eight independent partial sums: a fixed order (the result depends on nothing but the
// data), without one long chain of dependent additions. Acc is the partial sums' type: double
// for long reductions; the element type for rows, whose lengths (feature and cluster counts)
// keep float partial sums exact to well below float's own rounding of the result.
template <class Acc, class T> double sum_of(const T* __restrict a, int64_t n) {
  Acc p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) p[j] += static_cast<Acc>(a[i + j]);
  for (int j = 0; i < n; ++i, ++j) p[j] += static_cast<Acc>(a[i]);
  return ((static_cast<double>(p[0]) + p[1]) + (static_cast<double>(p[2]) + p[3])) +
         ((static_cast<double>(p[4]) + p[5]) + (static_cast<double>(p[6]) + p[7]));
}
template <class Acc, class T> double dot_of(const T* __restrict a, const T* __restrict b, int64_t n) {
  Acc p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) p[j] += static_cast<Acc>(a[i + j]) * static_cast<Acc>(b[i + j]);
  for (int j = 0; i < n; ++i, ++j) p[j] += static_cast<Acc>(a[i]) * static_cast<Acc>(b[i]);
  return ((static_cast<double>(p[0]) + p[1]) + (static_cast<double>(p[2]) + p[3])) +
         ((static_cast<double>(p[4]) + p[5]) + (static_cast<double>(p[6]) + p[7]));
}

template <class T> constexpr T tiny() { return std::numeric_limits<T>::min(); }

// Visits every pair (i, j) of rows of the same segment for the binary cross-entropy link loss:
// row_start(i), then pair(i, j, P_ij = s_i . s_j in double, A_ij != 0) for j in increasing order,
// then row_end(i). The sorted pattern of row i of A is walked along with j.
template <class T, class Pair, class RowStart, class RowEnd = void (*)(int64_t)>
void link_bce_rows(const Tensor& s, const Csr& a, const Tensor& offsets, Pair&& pair, RowStart&& row_start,
                   RowEnd&& row_end = [](int64_t) {}) {
  const int64_t k = s.cols(), segments = offsets.numel() - 1;
  const T* sp = s.ptr<T>();
  const int32_t* op = offsets.ptr<int32_t>();
  const int32_t* rp = a.row_ptr.ptr<int32_t>();
  const int32_t* ci = a.nnz > 0 ? a.col_idx.ptr<int32_t>() : nullptr;
  for (int64_t g = 0; g < segments; ++g) {
    for (int64_t i = op[g]; i < op[g + 1]; ++i) {
      row_start(i);
      const T* si = sp + i * k;
      int32_t e = rp[i];
      for (int64_t j = op[g]; j < op[g + 1]; ++j) {
        const T* sj = sp + j * k;
        double p = 0;
        for (int64_t c = 0; c < k; ++c) p += static_cast<double>(si[c]) * static_cast<double>(sj[c]);
        while (e < rp[i + 1] && ci[e] < j) ++e;
        pair(i, j, p, e < rp[i + 1] && ci[e] == j);
      }
      row_end(i);
    }
  }
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, HugePages huge_pages)
      : threads_(std::max(1, threads)),
        huge_pages_from_(huge_pages == HugePages::on          ? kHugePageBytes
                         : huge_pages == HugePages::automatic ? kHugePagesAutoBytes
                                                              : std::numeric_limits<std::size_t>::max()) {
    openblas_set_num_threads(threads_);
  }

  Device device() const override { return Device::cpu; }
  std::string name() const override {
    return fmt::format("cpu (OpenBLAS {} kernels, {} loops, {} thread{})", blas_kernels(), DIFFPOOL_CPU_LOOPS_NAME,
                       threads_, threads_ == 1 ? "" : "s");
  }

  void* allocate(std::size_t bytes) override {
    if (bytes >= huge_pages_from_) {
      // Whole 2 MiB pages, asked for as transparent huge pages; where the kernel refuses
      // (transparent_hugepage `never`, or no such support) the memory is plain memory.
      const std::size_t size = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
      void* p = std::aligned_alloc(kHugePageBytes, size);
      if (!p) throw std::bad_alloc();
      (void)madvise(p, size, MADV_HUGEPAGE);
      return p;
    }
    void* p = std::aligned_alloc(256, (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* ptr) noexcept override { std::free(ptr); }

  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                  std::size_t bytes) override {
    DP_CHECK(dst_device == Device::cpu && src_device == Device::cpu, "cpu backend copies host memory only");
    if (bytes) std::memcpy(dst, src, bytes);
  }

  void fill(Tensor& out, double value) override {
    if (value == 0.0 && !std::signbit(value)) {  // +0 is all-zero bytes in f32, f64 and i32
      std::memset(out.data(), 0, static_cast<std::size_t>(out.numel()) * dtype_size(out.dtype()));
      return;
    }
    switch (out.dtype()) {
      case DType::f32: std::fill_n(out.ptr<float>(), out.numel(), static_cast<float>(value)); break;
      case DType::f64: std::fill_n(out.ptr<double>(), out.numel(), value); break;
      case DType::i32: std::fill_n(out.ptr<int32_t>(), out.numel(), static_cast<int32_t>(value)); break;
    }
  }

  void copy_2d(int64_t rows, int64_t cols, DType dtype, const void* src, int64_t src_ld, void* dst,
               int64_t dst_ld, double alpha, double beta) override {
    dispatch_float(dtype, "copy_2d", [&](auto zero) {
      using T = decltype(zero);
      const T* s = static_cast<const T*>(src);
      T* d = static_cast<T*>(dst);
      const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
      if (b == T(0) && a == T(1) && src_ld == cols && dst_ld == cols) {  // one contiguous block
        std::memcpy(d, s, static_cast<std::size_t>(rows * cols) * sizeof(T));
        return;
      }
      for (int64_t r = 0; r < rows; ++r) {
        const T* sr = s + r * src_ld;
        T* dr = d + r * dst_ld;
        if (b == T(0) && a == T(1)) {
          std::memcpy(dr, sr, static_cast<std::size_t>(cols) * sizeof(T));
        } else if (b == T(0)) {
          for (int64_t c = 0; c < cols; ++c) dr[c] = a * sr[c];
        } else {
          for (int64_t c = 0; c < cols; ++c) dr[c] = a * sr[c] + b * dr[c];
        }
      }
    });
  }

  void gemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
            int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc,
            DType dtype) override {
    if (m == 0 || n == 0) return;
    if (k == 0) {  // C = beta * C; beta = 0 overwrites (C may hold garbage)
      for (int64_t i = 0; i < m; ++i) {
        char* row = static_cast<char*>(c) + static_cast<std::size_t>(i * ldc) * dtype_size(dtype);
        if (beta == 0.0) std::memset(row, 0, static_cast<std::size_t>(n) * dtype_size(dtype));
        else copy_2d(1, n, dtype, row, n, row, n, beta, 0.0);
      }
      return;
    }
    if (dtype == DType::f32 && matmul_precision_ == MatmulPrecision::tf32) {
      // TF32 emulation: the operands reduced to TF32 into scratch copies (packed: leading
      // dimension = columns as stored), then the same f32 product.
      const int64_t a_rows = trans_a == Trans::no ? m : k, a_cols = trans_a == Trans::no ? k : m;
      const int64_t b_rows = trans_b == Trans::no ? k : n, b_cols = trans_b == Trans::no ? n : k;
      tf32_copy(static_cast<const float*>(a), a_rows, a_cols, lda, tf32_a_);
      tf32_copy(static_cast<const float*>(b), b_rows, b_cols, ldb, tf32_b_);
      cblas_sgemm(CblasRowMajor, to_cblas(trans_a), to_cblas(trans_b), static_cast<int>(m),
                  static_cast<int>(n), static_cast<int>(k), static_cast<float>(alpha), tf32_a_.data(),
                  static_cast<int>(a_cols), tf32_b_.data(), static_cast<int>(b_cols), static_cast<float>(beta),
                  static_cast<float*>(c), static_cast<int>(ldc));
    } else if (dtype == DType::f32) {
      cblas_sgemm(CblasRowMajor, to_cblas(trans_a), to_cblas(trans_b), static_cast<int>(m),
                  static_cast<int>(n), static_cast<int>(k), static_cast<float>(alpha),
                  static_cast<const float*>(a), static_cast<int>(lda), static_cast<const float*>(b),
                  static_cast<int>(ldb), static_cast<float>(beta), static_cast<float*>(c),
                  static_cast<int>(ldc));
    } else {
      DP_CHECK(dtype == DType::f64, "gemm on {}", dtype_name(dtype));
      cblas_dgemm(CblasRowMajor, to_cblas(trans_a), to_cblas(trans_b), static_cast<int>(m),
                  static_cast<int>(n), static_cast<int>(k), alpha, static_cast<const double*>(a),
                  static_cast<int>(lda), static_cast<const double*>(b), static_cast<int>(ldb), beta,
                  static_cast<double*>(c), static_cast<int>(ldc));
    }
  }

  void gemm_strided_batched(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                            const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb,
                            int64_t stride_b, double beta, void* c, int64_t ldc, int64_t stride_c,
                            int64_t batch, DType dtype) override {
    const std::size_t es = dtype_size(dtype);
    for (int64_t i = 0; i < batch; ++i) {
      gemm(trans_a, trans_b, m, n, k, alpha, static_cast<const char*>(a) + i * stride_a * es, lda,
           static_cast<const char*>(b) + i * stride_b * es, ldb, beta,
           static_cast<char*>(c) + i * stride_c * es, ldc, dtype);
    }
  }

  static void tf32_copy(const float* src, int64_t rows, int64_t cols, int64_t ld, std::vector<float>& dst) {
    dst.resize(static_cast<std::size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) dst[static_cast<std::size_t>(r * cols + c)] = to_tf32(src[r * ld + c]);
  }

  void spmm(const Csr& a, const Tensor& x, double alpha, double beta, Tensor& y) override {
    DP_CHECK(x.rows() == a.cols && y.rows() == a.rows && x.cols() == y.cols(),
             "spmm: A [{}, {}], x {}, y {}", a.rows, a.cols, x.describe(), y.describe());
    const int32_t* rp = a.row_ptr.ptr<int32_t>();
    const int32_t* ci = a.col_idx.ptr<int32_t>();
    const int64_t f = x.cols();
    dispatch_float(x.dtype(), "spmm", [&](auto zero) {
      using T = decltype(zero);
      const T* vals = a.values.ptr<T>();
      const T* xp = x.ptr<T>();
      T* yp = y.ptr<T>();
      const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
      for (int64_t r = 0; r < a.rows; ++r) {
        T* __restrict yr = yp + r * f;
        int32_t e = rp[r];
        if (be == T(0) && e < rp[r + 1]) {
          // The first edge writes the row: 0 + w x is the sum a zero fill and an addition made,
          // bit for bit (-0 included), without the fill's pass.
          const T w = al * vals[e];
          const T* __restrict xr = xp + static_cast<int64_t>(ci[e]) * f;
          for (int64_t c = 0; c < f; ++c) yr[c] = T(0) + w * xr[c];
          ++e;
        } else if (be == T(0)) {
          std::fill_n(yr, f, T(0));
        } else if (be != T(1)) {
          for (int64_t c = 0; c < f; ++c) yr[c] *= be;
        }
        for (; e < rp[r + 1]; ++e) {
          const T w = al * vals[e];
          const T* __restrict xr = xp + static_cast<int64_t>(ci[e]) * f;
          for (int64_t c = 0; c < f; ++c) yr[c] += w * xr[c];
        }
      }
    });
  }

  void map(MapOp op, const Tensor& a, const Tensor* b, Broadcast b_mode, double c, double alpha, double beta,
           Tensor& out) override {
    const int64_t rows = out.rows(), cols = out.cols();
    if (op != MapOp::broadcast) check_same_rows_cols(map_op_name(op), a, out);
    if (b) {
      DP_CHECK(b->dtype() == out.dtype(), "map {}: b {} vs out {}", map_op_name(op), b->describe(), out.describe());
      const int64_t expected = b_mode == Broadcast::full ? rows * cols
                             : b_mode == Broadcast::row  ? cols
                             : b_mode == Broadcast::col  ? rows
                                                         : 1;
      DP_CHECK(b->numel() == expected, "map {}: b {} does not broadcast to {}", map_op_name(op),
               b->describe(), out.describe());
    }
    dispatch_float(out.dtype(), map_op_name(op), [&](auto zero) {
      using T = decltype(zero);
      const T* ap = op == MapOp::broadcast ? nullptr : a.ptr<T>();
      const T* bp = cptr<T>(b);
      T* o = out.ptr<T>();
      const T al = static_cast<T>(alpha), be = static_cast<T>(beta), k = static_cast<T>(c);
      auto run = [&](auto f) { map_loop<T>(rows, cols, ap, bp, b_mode, al, be, o, f); };
      switch (op) {
        case MapOp::copy: run([](T x, T) { return x; }); break;
        case MapOp::broadcast: run([](T, T y) { return y; }); break;
        case MapOp::add: run([k](T x, T y) { return x + k * y; }); break;
        case MapOp::mul: run([](T x, T y) { return x * y; }); break;
        case MapOp::div: run([](T x, T y) { return x / y; }); break;
        case MapOp::relu: run(kRelu<T>); break;
        case MapOp::relu_backward: run(kReluBackward<T>); break;
        case MapOp::sqrt: run([k](T x, T) { return std::sqrt(std::max(x, T(0)) + k); }); break;
        case MapOp::reciprocal: run([k](T x, T) { return T(1) / (x + k); }); break;
        case MapOp::reciprocal_backward: run([](T dy, T y) { return -dy * y * y; }); break;
        case MapOp::log: run([](T x, T) { return std::log(std::max(x, tiny<T>())); }); break;
        case MapOp::plus_one_times: run([](T x, T y) { return (x + T(1)) * y; }); break;
        case MapOp::clip_coefficient:
          run([k](T s, T) { return std::min(T(1), k / (std::sqrt(std::max(s, T(0))) + T(1e-6))); });
          break;
        case MapOp::count: DP_CHECK(false, "map: invalid op"); break;
      }
    });
  }

  void reduce_rows(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    const int64_t rows = a.rows(), cols = a.cols();
    DP_CHECK(out.numel() == rows, "reduce_rows: a {} out {}", a.describe(), out.describe());
    DP_CHECK(kind != Reduce::dot || (b && b->numel() == a.numel()), "reduce_rows dot: b missing or mis-sized");
    dispatch_float(a.dtype(), "reduce_rows", [&](auto zero) {
      using T = decltype(zero);
      const T* ap = a.ptr<T>();
      const T* bp = cptr<T>(b);
      T* o = out.ptr<T>();
      for (int64_t r = 0; r < rows; ++r) {
        const T* ar = ap + r * cols;
        double acc;
        if (kind == Reduce::max) {
          acc = cols ? ar[0] : 0.0;
          for (int64_t c = 1; c < cols; ++c) acc = std::max<double>(acc, ar[c]);
        } else if (kind == Reduce::dot) {
          acc = dot_of<T>(ar, bp + r * cols, cols);
        } else {
          acc = sum_of<T>(ar, cols);
        }
        o[r] = static_cast<T>(alpha * acc + (beta != 0 ? beta * o[r] : 0.0));
      }
    });
  }

  void reduce_cols(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    const int64_t rows = a.rows(), cols = a.cols();
    DP_CHECK(out.numel() == cols, "reduce_cols: a {} out {}", a.describe(), out.describe());
    DP_CHECK(kind != Reduce::max, "reduce_cols: max is not supported");
    DP_CHECK(kind != Reduce::dot || (b && b->numel() == a.numel()), "reduce_cols dot: b missing or mis-sized");
    dispatch_float(a.dtype(), "reduce_cols", [&](auto zero) {
      using T = decltype(zero);
      const T* ap = a.ptr<T>();
      const T* bp = cptr<T>(b);
      T* o = out.ptr<T>();
      std::vector<double> acc(static_cast<std::size_t>(cols), 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        const T* ar = ap + r * cols;
        if (kind == Reduce::dot) {
          const T* br = bp + r * cols;
          for (int64_t c = 0; c < cols; ++c) acc[static_cast<std::size_t>(c)] += static_cast<double>(ar[c]) * br[c];
        } else {
          for (int64_t c = 0; c < cols; ++c) acc[static_cast<std::size_t>(c)] += ar[c];
        }
      }
      for (int64_t c = 0; c < cols; ++c)
        o[c] = static_cast<T>(alpha * acc[static_cast<std::size_t>(c)] + (beta != 0 ? beta * o[c] : 0.0));
    });
  }

  void reduce_all(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    DP_CHECK(out.numel() == 1, "reduce_all: out {}", out.describe());
    DP_CHECK(kind != Reduce::max, "reduce_all: max is not supported");
    DP_CHECK(kind != Reduce::dot || (b && b->numel() == a.numel()), "reduce_all dot: b missing or mis-sized");
    dispatch_float(a.dtype(), "reduce_all", [&](auto zero) {
      using T = decltype(zero);
      const T* ap = a.ptr<T>();
      const T* bp = cptr<T>(b);
      const int64_t n = a.numel();
      const double acc = kind == Reduce::dot ? dot_of<double>(ap, bp, n) : sum_of<double>(ap, n);
      T* o = out.ptr<T>();
      o[0] = static_cast<T>(alpha * acc + (beta != 0 ? beta * o[0] : 0.0));
    });
  }

  void segment_reduce_forward(SegmentReduce kind, const Tensor& x, const Tensor& offsets, Tensor& y,
                              Tensor* argmax) override {
    const int64_t segments = offsets.numel() - 1, f = x.cols();
    DP_CHECK(y.rows() == segments && y.cols() == f, "segment_reduce: x {}, {} segments, y {}", x.describe(),
             segments, y.describe());
    DP_CHECK(kind != SegmentReduce::max || (argmax && argmax->numel() == y.numel()),
             "segment_reduce max needs an argmax tensor of y's size");
    const int32_t* off = offsets.ptr<int32_t>();
    dispatch_float(x.dtype(), "segment_reduce", [&](auto zero) {
      using T = decltype(zero);
      const T* xp = x.ptr<T>();
      T* yp = y.ptr<T>();
      int32_t* am = argmax ? argmax->ptr<int32_t>() : nullptr;
      std::vector<double> acc(kind == SegmentReduce::max ? 0 : static_cast<std::size_t>(f));
      for (int64_t s = 0; s < segments; ++s) {
        const int64_t begin = off[s], end = off[s + 1];
        T* ys = yp + s * f;
        if (kind == SegmentReduce::max) {
          int32_t* as = am + s * f;
          if (begin == end) {
            std::fill_n(ys, f, T(0));
            std::fill_n(as, f, -1);
            continue;
          }
          std::copy_n(xp + begin * f, f, ys);
          std::fill_n(as, f, static_cast<int32_t>(begin));
          // Branch-free selects, so the loop over columns vectorises; the first maximum wins.
          for (int64_t r = begin + 1; r < end; ++r) {
            const T* __restrict xr = xp + r * f;
            T* __restrict yv = ys;
            int32_t* __restrict av = as;
            const int32_t row = static_cast<int32_t>(r);
            for (int64_t c = 0; c < f; ++c) {
              const bool larger = xr[c] > yv[c];
              yv[c] = larger ? xr[c] : yv[c];
              av[c] = larger ? row : av[c];
            }
          }
        } else {
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t r = begin; r < end; ++r) {
            const T* xr = xp + r * f;
            for (int64_t c = 0; c < f; ++c) acc[static_cast<std::size_t>(c)] += xr[c];
          }
          const double scale = kind == SegmentReduce::mean && end > begin ? 1.0 / static_cast<double>(end - begin) : 1.0;
          for (int64_t c = 0; c < f; ++c) ys[c] = static_cast<T>(acc[static_cast<std::size_t>(c)] * scale);
        }
      }
    });
  }

  void link_bce_forward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, Tensor& loss) override {
    DP_CHECK(a.rows == s.rows() && loss.rows() == s.rows() && loss.numel() == s.rows() && s.dtype() == loss.dtype(),
             "link_bce: s {}, A [{}, {}], loss {}", s.describe(), a.rows, a.cols, loss.describe());
    dispatch_float(s.dtype(), "link_bce", [&](auto zero) {
      using T = decltype(zero);
      // Each row's sum in double, rounded once (as the CUDA kernel does).
      T* lp = loss.ptr<T>();
      double acc = 0;
      link_bce_rows<T>(s, a, offsets, [&](int64_t, int64_t, double p, bool edge) {
        acc -= edge ? std::log(std::min(p, 1.0) + eps) : std::log(1 - std::min(p, 1.0) + eps);
      }, [&](int64_t) { acc = 0; }, [&](int64_t i) { lp[i] = static_cast<T>(acc); });
    });
  }

  void link_bce_backward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, const Tensor& w, double beta,
                         Tensor& ds) override {
    DP_CHECK(a.rows == s.rows() && w.numel() == s.rows() && ds.rows() == s.rows() && ds.cols() == s.cols() &&
                 s.dtype() == ds.dtype() && w.dtype() == ds.dtype(),
             "link_bce_backward: s {}, A [{}, {}], w {}, ds {}", s.describe(), a.rows, a.cols, w.describe(), ds.describe());
    const int64_t k = s.cols();
    dispatch_float(s.dtype(), "link_bce_backward", [&](auto zero) {
      using T = decltype(zero);
      const T* sp = s.ptr<T>();
      const T* wp = w.ptr<T>();
      T* dp = ds.ptr<T>();
      std::vector<double> acc(static_cast<std::size_t>(k));
      const int32_t* rp = a.row_ptr.ptr<int32_t>();
      const int32_t* ci = a.nnz > 0 ? a.col_idx.ptr<int32_t>() : nullptr;
      link_bce_rows<T>(s, a, offsets, [&](int64_t i, int64_t j, double p, bool edge) {
        if (!(p < 1)) return;
        // d/dP of loss[i] (through A_ij) and of loss[j] (through A_ji; A need not be symmetric).
        const double d_edge = -1 / (p + eps), d_none = 1 / (1 - p + eps);
        const bool edge_ji = std::binary_search(ci + rp[j], ci + rp[j + 1], static_cast<int32_t>(i));
        const double coef = static_cast<double>(wp[i]) * (edge ? d_edge : d_none) +
                            static_cast<double>(wp[j]) * (edge_ji ? d_edge : d_none);
        const T* sj = sp + j * k;
        for (int64_t c = 0; c < k; ++c) acc[static_cast<std::size_t>(c)] += coef * static_cast<double>(sj[c]);
      }, [&](int64_t) { std::fill(acc.begin(), acc.end(), 0.0); }, [&](int64_t i) {
        T* di = dp + i * k;
        for (int64_t c = 0; c < k; ++c)
          di[c] = static_cast<T>((beta == 0 ? 0.0 : beta * static_cast<double>(di[c])) + acc[static_cast<std::size_t>(c)]);
      });
    });
  }

  void segment_reduce_backward(SegmentReduce kind, const Tensor& dy, const Tensor& offsets, const Tensor* argmax,
                               Tensor& dx) override {
    const int64_t segments = offsets.numel() - 1, f = dx.cols();
    const int32_t* off = offsets.ptr<int32_t>();
    dispatch_float(dx.dtype(), "segment_reduce_backward", [&](auto zero) {
      using T = decltype(zero);
      const T* dyp = dy.ptr<T>();
      T* dxp = dx.ptr<T>();
      for (int64_t s = 0; s < segments; ++s) {
        const int64_t begin = off[s], end = off[s + 1];
        const T* dys = dyp + s * f;
        if (kind == SegmentReduce::max) {
          const int32_t* as = argmax->ptr<int32_t>() + s * f;
          for (int64_t c = 0; c < f; ++c)
            if (as[c] >= 0) dxp[static_cast<int64_t>(as[c]) * f + c] += dys[c];
        } else {
          const T scale = kind == SegmentReduce::mean && end > begin ? T(1) / static_cast<T>(end - begin) : T(1);
          for (int64_t r = begin; r < end; ++r) {
            T* dxr = dxp + r * f;
            for (int64_t c = 0; c < f; ++c) dxr[c] += scale * dys[c];
          }
        }
      }
    });
  }

  void softmax_rows_forward(const Tensor& x, Tensor& y) override {
    check_same_rows_cols("softmax_rows", x, y);
    const int64_t rows = x.rows(), cols = x.cols();
    dispatch_float(x.dtype(), "softmax_rows", [&](auto zero) {
      using T = decltype(zero);
      const T* xp = x.ptr<T>();
      T* yp = y.ptr<T>();
      for (int64_t r = 0; r < rows; ++r) {
        const T* xr = xp + r * cols;
        T* yr = yp + r * cols;
        T mx = xr[0];
        for (int64_t c = 1; c < cols; ++c) mx = std::max(mx, xr[c]);
        for (int64_t c = 0; c < cols; ++c) yr[c] = std::exp(xr[c] - mx);
        const double sum = sum_of<T>(yr, cols);
        const T inv = static_cast<T>(1.0 / sum);
        for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
      }
    });
  }

  void softmax_rows_backward(const Tensor& dy, const Tensor& y, double beta, Tensor& dx) override {
    const int64_t rows = y.rows(), cols = y.cols();
    dispatch_float(y.dtype(), "softmax_rows_backward", [&](auto zero) {
      using T = decltype(zero);
      const T* dyp = dy.ptr<T>();
      const T* yp = y.ptr<T>();
      T* dxp = dx.ptr<T>();
      for (int64_t r = 0; r < rows; ++r) {
        const T* dyr = dyp + r * cols;
        const T* yr = yp + r * cols;
        T* dxr = dxp + r * cols;
        const double dot = dot_of<T>(dyr, yr, cols);
        const T d = static_cast<T>(dot);
        if (beta == 0) for (int64_t c = 0; c < cols; ++c) dxr[c] = yr[c] * (dyr[c] - d);
        else for (int64_t c = 0; c < cols; ++c) dxr[c] += yr[c] * (dyr[c] - d);
      }
    });
  }

  void l2_normalize_rows_forward(const Tensor& x, double eps, Tensor& y, Tensor& norms, Tensor* relu_out) override {
    check_same_rows_cols("l2_normalize_rows", x, y);
    if (relu_out) check_same_rows_cols("l2_normalize_rows", y, *relu_out);
    const int64_t rows = x.rows(), cols = x.cols();
    dispatch_float(x.dtype(), "l2_normalize_rows", [&](auto zero) {
      using T = decltype(zero);
      const T* xp = x.ptr<T>();
      T* yp = y.ptr<T>();
      T* np = norms.ptr<T>();
      for (int64_t r = 0; r < rows; ++r) {
        const T* xr = xp + r * cols;
        T* yr = yp + r * cols;
        const double ss = dot_of<T>(xr, xr, cols);
        const double norm = std::sqrt(ss);
        np[r] = static_cast<T>(norm);
        const T inv = static_cast<T>(1.0 / std::max(norm, eps));
        for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] * inv;
      }
      // The ReLU as MapOp::relu's pass over the whole matrix (a loop per row of a few dozen
      // columns is slower here).
      if (relu_out) map_loop<T>(rows, cols, yp, nullptr, Broadcast::full, T(1), T(0), relu_out->ptr<T>(), kRelu<T>);
    });
  }

  void l2_normalize_rows_backward(const Tensor& dy, const Tensor& y, const Tensor& norms, double eps, bool relu,
                                  double beta, Tensor& dx) override {
    const int64_t rows = y.rows(), cols = y.cols();
    dispatch_float(y.dtype(), "l2_normalize_rows_backward", [&](auto zero) {
      using T = decltype(zero);
      const T* dyp = dy.ptr<T>();
      const T* yp = y.ptr<T>();
      const T* np = norms.ptr<T>();
      T* dxp = dx.ptr<T>();
      if (relu) {  // dy masked by y > 0 first, MapOp::relu_backward's pass into scratch
        T* masked = relu_scratch<T>(rows * cols);
        map_loop<T>(rows, cols, dyp, yp, Broadcast::full, T(1), T(0), masked, kReluBackward<T>);
        dyp = masked;
      }
      for (int64_t r = 0; r < rows; ++r) {
        const T* dyr = dyp + r * cols;
        const T* yr = yp + r * cols;
        T* dxr = dxp + r * cols;
        const double norm = np[r];
        if (norm < eps) {  // y = x / eps: a linear map
          const T inv = static_cast<T>(1.0 / eps);
          if (beta == 0) for (int64_t c = 0; c < cols; ++c) dxr[c] = dyr[c] * inv;
          else for (int64_t c = 0; c < cols; ++c) dxr[c] += dyr[c] * inv;
          continue;
        }
        const double dot = dot_of<T>(dyr, yr, cols);
        const T inv = static_cast<T>(1.0 / norm), d = static_cast<T>(dot);
        if (beta == 0) for (int64_t c = 0; c < cols; ++c) dxr[c] = (dyr[c] - yr[c] * d) * inv;
        else for (int64_t c = 0; c < cols; ++c) dxr[c] += (dyr[c] - yr[c] * d) * inv;
      }
    });
  }

  // Batch norm: column statistics accumulate in double, one vectorisable pass per statistic;
  // the elementwise passes use per-column coefficients, y = x * scale + shift and
  // dx += dy * a + x * b + k, so each element costs one multiply-add or two.
  void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, bool training, double momentum,
                          double eps, Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean,
                          Tensor& invstd) override {
    check_same_rows_cols("batch_norm", x, y);
    const int64_t rows = x.rows(), cols = x.cols();
    const std::size_t nc = static_cast<std::size_t>(cols);
    dispatch_float(x.dtype(), "batch_norm", [&](auto zero) {
      using T = decltype(zero);
      const T* __restrict xp = x.ptr<T>();
      T* __restrict yp = y.ptr<T>();
      const T* g = gamma.ptr<T>();
      const T* b = beta.ptr<T>();
      T* mu = mean.ptr<T>();
      T* is = invstd.ptr<T>();
      T* rm = running_mean.ptr<T>();
      T* rv = running_var.ptr<T>();
      if (training) {
        std::vector<double> sum(nc, 0.0), sq(nc, 0.0);
        double* __restrict su = sum.data();
        double* __restrict sqp = sq.data();
        for (int64_t r = 0; r < rows; ++r) {
          const T* __restrict xr = xp + r * cols;
          for (int64_t c = 0; c < cols; ++c) su[c] += static_cast<double>(xr[c]);
        }
        for (int64_t c = 0; c < cols; ++c) su[c] /= static_cast<double>(rows);
        for (int64_t r = 0; r < rows; ++r) {
          const T* __restrict xr = xp + r * cols;
          for (int64_t c = 0; c < cols; ++c) {
            const double d = static_cast<double>(xr[c]) - su[c];
            sqp[c] += d * d;
          }
        }
        for (int64_t c = 0; c < cols; ++c) {
          const double var = sqp[c] / static_cast<double>(rows);
          mu[c] = static_cast<T>(su[c]);
          is[c] = static_cast<T>(1.0 / std::sqrt(var + eps));
          const double unbiased = rows > 1 ? sqp[c] / static_cast<double>(rows - 1) : var;
          rm[c] = static_cast<T>((1 - momentum) * rm[c] + momentum * su[c]);
          rv[c] = static_cast<T>((1 - momentum) * rv[c] + momentum * unbiased);
        }
      } else {
        for (int64_t c = 0; c < cols; ++c) {
          mu[c] = rm[c];
          is[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(rv[c]) + eps));
        }
      }
      // y = (x - mean) (invstd gamma) + beta. Subtracting the mean first keeps y exact where the
      // variance is ~0 (a one-row batch, a constant column): folding the mean into the shift,
      // x scale + (beta - mean scale), would leave rounding errors of |mean| invstd eps there.
      std::vector<T> scale(nc);
      for (int64_t c = 0; c < cols; ++c) scale[static_cast<std::size_t>(c)] = is[c] * g[c];
      const T* __restrict sc = scale.data();
      for (int64_t r = 0; r < rows; ++r) {
        const T* __restrict xr = xp + r * cols;
        T* __restrict yr = yp + r * cols;
        for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu[c]) * sc[c] + b[c];
      }
    });
  }

  void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& invstd, double beta, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override {
    const int64_t rows = x.rows(), cols = x.cols();
    const std::size_t nc = static_cast<std::size_t>(cols);
    dispatch_float(x.dtype(), "batch_norm_backward", [&](auto zero) {
      using T = decltype(zero);
      const T* __restrict dyp = dy.ptr<T>();
      const T* __restrict xp = x.ptr<T>();
      const T* g = gamma.ptr<T>();
      const T* mu = mean.ptr<T>();
      const T* is = invstd.ptr<T>();
      T* __restrict dxp = dx.ptr<T>();
      T* dg = dgamma.ptr<T>();
      T* db = dbeta.ptr<T>();
      // s1 = sum(dy), s2 = sum(dy (x - mu)); xhat = (x - mu) invstd.
      std::vector<double> sum_dy(nc, 0.0), sum_dy_xc(nc, 0.0);
      double* __restrict s1 = sum_dy.data();
      double* __restrict s2 = sum_dy_xc.data();
      for (int64_t r = 0; r < rows; ++r) {
        const T* __restrict dyr = dyp + r * cols;
        const T* __restrict xr = xp + r * cols;
        for (int64_t c = 0; c < cols; ++c) {
          s1[c] += static_cast<double>(dyr[c]);
          s2[c] += static_cast<double>(dyr[c]) * (static_cast<double>(xr[c]) - static_cast<double>(mu[c]));
        }
      }
      // dx = g is / n (n dy - s1 - xhat s2 is) = dy a + x b + k.
      const double n = static_cast<double>(rows);
      std::vector<T> ca(nc), cb(nc), ck(nc);
      for (int64_t c = 0; c < cols; ++c) {
        const std::size_t i = static_cast<std::size_t>(c);
        const double gi = static_cast<double>(g[c]) * is[c];
        const double isq_s2 = static_cast<double>(is[c]) * is[c] * s2[c] / n;
        dg[c] += static_cast<T>(s2[c] * is[c]);
        db[c] += static_cast<T>(s1[c]);
        ca[i] = static_cast<T>(gi);
        cb[i] = static_cast<T>(-gi * isq_s2);
        ck[i] = static_cast<T>(-gi * s1[c] / n + gi * isq_s2 * mu[c]);
      }
      const T* __restrict pa = ca.data();
      const T* __restrict pb = cb.data();
      const T* __restrict pk = ck.data();
      for (int64_t r = 0; r < rows; ++r) {
        const T* __restrict dyr = dyp + r * cols;
        const T* __restrict xr = xp + r * cols;
        T* __restrict dxr = dxp + r * cols;
        if (beta == 0) for (int64_t c = 0; c < cols; ++c) dxr[c] = dyr[c] * pa[c] + xr[c] * pb[c] + pk[c];
        else for (int64_t c = 0; c < cols; ++c) dxr[c] += dyr[c] * pa[c] + xr[c] * pb[c] + pk[c];
      }
    });
  }

  void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& losses) override {
    const int64_t rows = logits.rows(), cols = logits.cols();
    DP_CHECK(labels.numel() == rows && losses.numel() == rows, "cross_entropy: logits {}, labels {}, losses {}",
             logits.describe(), labels.describe(), losses.describe());
    softmax_rows_forward(logits, probs);
    const int32_t* lab = labels.ptr<int32_t>();
    dispatch_float(logits.dtype(), "cross_entropy", [&](auto zero) {
      using T = decltype(zero);
      const T* xp = logits.ptr<T>();
      T* lp = losses.ptr<T>();
      for (int64_t r = 0; r < rows; ++r) {
        const T* xr = xp + r * cols;
        DP_CHECK(lab[r] >= 0 && lab[r] < cols, "cross_entropy: label {} of row {} outside [0, {})", lab[r], r, cols);
        T mx = xr[0];
        for (int64_t c = 1; c < cols; ++c) mx = std::max(mx, xr[c]);
        double sum = 0;
        for (int64_t c = 0; c < cols; ++c) sum += std::exp(static_cast<double>(xr[c] - mx));
        lp[r] = static_cast<T>(std::log(sum) + mx - xr[lab[r]]);
      }
    });
  }

  void cross_entropy_backward(const Tensor& probs, const Tensor& labels, const Tensor& dlosses, Tensor& dlogits) override {
    const int64_t rows = probs.rows(), cols = probs.cols();
    const int32_t* lab = labels.ptr<int32_t>();
    dispatch_float(probs.dtype(), "cross_entropy_backward", [&](auto zero) {
      using T = decltype(zero);
      const T* pp = probs.ptr<T>();
      const T* dl = dlosses.ptr<T>();
      T* dp = dlogits.ptr<T>();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          dp[r * cols + c] += dl[r] * (pp[r * cols + c] - (c == lab[r] ? T(1) : T(0)));
    });
  }

  void count_correct(const Tensor& logits, const Tensor& labels, Tensor& count) override {
    const int64_t rows = logits.rows(), cols = logits.cols();
    const int32_t* lab = labels.ptr<int32_t>();
    dispatch_float(logits.dtype(), "count_correct", [&](auto zero) {
      using T = decltype(zero);
      const T* xp = logits.ptr<T>();
      int64_t correct = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const T* xr = xp + r * cols;
        int64_t best = 0;
        for (int64_t c = 1; c < cols; ++c) if (xr[c] > xr[best]) best = c;
        correct += best == lab[r];
      }
      count.ptr<T>()[0] += static_cast<T>(correct);
    });
  }

  void argmax_rows(const Tensor& x, Tensor& predictions) override {
    const int64_t rows = x.rows(), cols = x.cols();
    int32_t* out = predictions.ptr<int32_t>();
    dispatch_float(x.dtype(), "argmax_rows", [&](auto zero) {
      using T = decltype(zero);
      const T* xp = x.ptr<T>();
      for (int64_t r = 0; r < rows; ++r) {
        const T* xr = xp + r * cols;
        int64_t best = 0;
        for (int64_t c = 1; c < cols; ++c) if (xr[c] > xr[best]) best = c;
        out[r] = static_cast<int32_t>(best);
      }
    });
  }

  void dropout(const Tensor& x, double p, uint64_t seed, double beta, Tensor& y) override {
    check_same_rows_cols("dropout", x, y);
    dispatch_float(x.dtype(), "dropout", [&](auto zero) {
      using T = decltype(zero);
      const T* xp = x.ptr<T>();
      T* yp = y.ptr<T>();
      const T scale = static_cast<T>(1.0 / (1.0 - p));
      const int64_t n = x.numel();
      for (int64_t i = 0; i < n; ++i) {
        const T keep = uniform_hash(seed, static_cast<uint64_t>(i)) >= p ? scale : T(0);
        yp[i] = xp[i] * keep + (beta != 0 ? static_cast<T>(beta) * yp[i] : T(0));
      }
    });
  }

  void adam_step(const AdamSettings& s, int64_t step, const Tensor& grad_scale, Tensor& params, const Tensor& grads,
                 Tensor& m, Tensor& v) override {
    DP_CHECK(step >= 1, "adam step counts from 1, got {}", step);
    dispatch_float(params.dtype(), "adam_step", [&](auto zero) {
      using T = decltype(zero);
      T* p = params.ptr<T>();
      const T* g = grads.ptr<T>();
      T* mp = m.ptr<T>();
      T* vp = v.ptr<T>();
      const T scale = grad_scale.ptr<T>()[0];
      const double bc1 = 1.0 - std::pow(s.beta1, static_cast<double>(step));
      const double bc2 = 1.0 - std::pow(s.beta2, static_cast<double>(step));
      const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
      const T step_size = static_cast<T>(s.learning_rate / bc1);
      const T inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
      const T eps = static_cast<T>(s.eps), wd = static_cast<T>(s.weight_decay);
      const int64_t n = params.numel();
      for (int64_t i = 0; i < n; ++i) {
        const T gi = g[i] * scale + wd * p[i];
        mp[i] = b1 * mp[i] + (T(1) - b1) * gi;
        vp[i] = b2 * vp[i] + (T(1) - b2) * gi * gi;
        p[i] -= step_size * mp[i] / (std::sqrt(vp[i]) * inv_sqrt_bc2 + eps);
      }
    });
  }

  void synchronize() override {}

 private:
  static constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
  int threads_;
  std::size_t huge_pages_from_;  // allocations of this many bytes and more get huge pages
  std::vector<float> tf32_a_, tf32_b_;  // TF32 copies of gemm's operands (matmul_precision tf32)
  std::vector<double> relu_scratch_;      // the masked gradient of l2_normalize_rows_backward with relu
  template <class T> T* relu_scratch(int64_t n) {
    const std::size_t words = (static_cast<std::size_t>(n) * sizeof(T) + sizeof(double) - 1) / sizeof(double);
    if (relu_scratch_.size() < words) relu_scratch_.resize(words);
    return reinterpret_cast<T*>(relu_scratch_.data());
  }
};

}  // namespace

bool wider_loops() { return DIFFPOOL_CPU_LOOPS_WIDER != 0; }

std::unique_ptr<Backend> make_backend(int threads, HugePages huge_pages) {
  return std::make_unique<CpuBackend>(threads, huge_pages);
}

}  // namespace DIFFPOOL_CPU_NS

#if defined(DIFFPOOL_CPU_AVX2) && DIFFPOOL_CPU_LOOPS_WIDER
#pragma GCC pop_options
#endif

#if !defined(DIFFPOOL_CPU_AVX2)

namespace cpu_avx2 {
bool wider_loops();
std::unique_ptr<Backend> make_backend(int threads, HugePages huge_pages);
}  // namespace cpu_avx2

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

CpuLoops cpu_loops_from_environment() {
  const char* value = std::getenv("DIFFPOOL_CPU_LOOPS");
  if (value == nullptr || *value == '\0' || std::string_view(value) == "auto") return CpuLoops::automatic;
  if (std::string_view(value) == "baseline") return CpuLoops::baseline;
  if (std::string_view(value) == "avx2") return CpuLoops::avx2;
  throw InputError(fmt::format("DIFFPOOL_CPU_LOOPS={}: expected auto, baseline or avx2", value));
}

std::unique_ptr<Backend> make_cpu_backend(int threads, HugePages huge_pages, CpuLoops loops) {
  if (loops == CpuLoops::automatic) loops = cpu_loops_from_environment();
  const bool avx2_built = cpu_avx2::wider_loops();
  const bool avx2_usable = avx2_built && cpu_has_avx2();
  if (loops == CpuLoops::avx2 && !avx2_usable) {
    throw InputError(avx2_built ? "DIFFPOOL_CPU_LOOPS=avx2: this CPU does not run AVX2"
                                : "DIFFPOOL_CPU_LOOPS=avx2: this build has no AVX2 loops (built by a compiler "
                                  "without GCC's target pragma, or not for x86-64)");
  }
  if (loops != CpuLoops::baseline && avx2_usable) return cpu_avx2::make_backend(threads, huge_pages);
  return cpu_baseline::make_backend(threads, huge_pages);
}

std::string blas_kernels() {
  const char* name = openblas_get_corename();
  return name != nullptr && *name != '\0' ? std::string(name) : std::string("unknown");
}

std::string blas_kernel_advice(bool cpu_has_avx512, const std::string& kernels, const char* coretype_variable) {
  if (!cpu_has_avx512) return {};
  std::string lower = kernels;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // OpenBLAS's cores whose SGEMM kernels use 512-bit registers (0.3.21 and later names).
  for (const char* avx512 : {"skylakex", "cooperlake", "sapphirerapids", "zen4", "zen5"})
    if (lower == avx512) return {};
  const std::string why =
      coretype_variable != nullptr
          ? fmt::format("because OPENBLAS_CORETYPE={} is set", coretype_variable)
          : std::string("by its own choice (an OpenBLAS release older than the CPU may not know its model)");
  return fmt::format(
      "OpenBLAS runs its {} kernels {}, on a CPU with AVX-512: its AVX-512 kernels (OPENBLAS_CORETYPE=SkylakeX, or "
      "the variable unset where OpenBLAS recognises the CPU) ran single-thread SGEMM 1.9x and the paper models' "
      "epochs 1.3x to 1.65x faster on one such CPU (docs/PERFORMANCE.md, \"OpenBLAS's kernels\")",
      kernels, why);
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

std::string blas_kernel_advice() {
  return blas_kernel_advice(cpu_has_avx512(), blas_kernels(), std::getenv("OPENBLAS_CORETYPE"));
}

#endif  // !defined(DIFFPOOL_CPU_AVX2)

}  // namespace diffpool
