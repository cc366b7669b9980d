#pragma once
// TF32, the input format of NVIDIA tensor cores for f32 products: f32's sign and 8-bit exponent
// with 10 of its 23 mantissa bits. A product of two TF32 values is exact in f32, so "a TF32 matrix
// product" is: every operand element reduced to TF32, the products accumulated in f32.
//
// to_tf32 keeps the first 10 mantissa bits and drops the rest (truncation toward zero), the
// reading of the tensor cores PyTorch's notes on numerical accuracy describe ("only the first
// 10 bits of the input mantissa are read"); a kernel that rounds to nearest instead errs half as
// much and without bias, so truncation is the conservative model of the two. Infinities and NaNs
// pass unchanged (dropping a NaN's low payload bits could turn it into an infinity). Host and
// device: the CPU backend's emulation of backend.matmul_precision: tf32 and the CUDA backend's
// grouped product kernel use the same function, so both reduce every operand the same way.
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define DP_TF32_HOST_DEVICE __host__ __device__
#else
#define DP_TF32_HOST_DEVICE
#endif

namespace diffpool {

inline constexpr uint32_t kTf32DroppedBits = 0x1fffu;  // the 13 low mantissa bits TF32 lacks

DP_TF32_HOST_DEVICE inline float to_tf32(float x) {
#if defined(__CUDA_ARCH__)
  uint32_t u = __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
#endif
  if ((u & 0x7f800000u) != 0x7f800000u) u &= ~kTf32DroppedBits;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  std::memcpy(&x, &u, sizeof u);
  return x;
#endif
}
// f64 products are never reduced: the gradient checks and f64 training keep full precision.
DP_TF32_HOST_DEVICE inline double to_tf32(double x) { return x; }

}  // namespace diffpool
