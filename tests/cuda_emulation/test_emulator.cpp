// The CUDA emulation itself (tests/cuda_emulation/README.md): barriers and warp shuffles give the
// results real hardware gives, over many blocks and launches of different sizes (the fibers that
// run the threads live from one launch to the next), and a launch that can never complete fails
// with cudaErrorLaunchFailure and leaves the emulator able to run the next one.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cuda_runtime.h"

namespace {

// out[block * n + t] = in[block * n + (t + 1) % n] + the block's sum of in, by shared memory,
// barriers and a warp butterfly (one warp's partial per warp, then warp 0 adds those).
__global__ void rotate_and_sum(const int* in, int* out) {
  __shared__ int values[1024];
  __shared__ int warp_sums[32];
  const unsigned n = blockDim.x, t = threadIdx.x, base = blockIdx.x * n;
  values[t] = in[base + t];
  int v = values[t];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (t % 32 == 0) warp_sums[t / 32] = v;
  __syncthreads();
  int total = 0;
  for (unsigned w = 0; w < n / 32; ++w) total += warp_sums[w];
  out[base + t] = values[(t + 1) % n] + total;
}

// Lane 0 waits at the block barrier while the other lanes of its warp wait at a shuffle: neither
// can complete.
__global__ void deadlock(int* out) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
  }
}

template <class T> T* device_copy(const std::vector<T>& host) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpyAsync(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, nullptr), cudaSuccess);
  return static_cast<T*>(p);
}
template <class T> std::vector<T> host_copy(const T* device, std::size_t n) {
  std::vector<T> host(n);
  EXPECT_EQ(cudaMemcpyAsync(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost, nullptr), cudaSuccess);
  return host;
}

// Runs rotate_and_sum on `blocks` blocks of `threads` threads and checks every output.
void check_rotate_and_sum(unsigned blocks, unsigned threads) {
  SCOPED_TRACE(std::to_string(blocks) + " blocks of " + std::to_string(threads) + " threads");
  std::vector<int> in(static_cast<std::size_t>(blocks) * threads);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>((i * 7919) % 1000) - 500;
  int* d_in = device_copy(in);
  int* d_out = device_copy(std::vector<int>(in.size(), 0));
  emu::launch("rotate_and_sum", &rotate_and_sum, dim3(blocks), dim3(threads), nullptr, d_in, d_out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> out = host_copy(d_out, in.size());
  for (unsigned b = 0; b < blocks; ++b) {
    int total = 0;
    for (unsigned t = 0; t < threads; ++t) total += in[b * threads + t];
    for (unsigned t = 0; t < threads; ++t)
      ASSERT_EQ(out[b * threads + t], in[b * threads + (t + 1) % threads] + total) << "block " << b << " thread " << t;
  }
  cudaFree(d_in);
  cudaFree(d_out);
}

TEST(CudaEmulator, BarriersAndShufflesAcrossBlocksAndLaunches) {
  check_rotate_and_sum(3, 64);
  check_rotate_and_sum(2, 256);  // more threads than the launch before: new fibers beside the old
  check_rotate_and_sum(5, 32);   // fewer: the rest stay idle
  check_rotate_and_sum(1, 1024);
}

TEST(CudaEmulator, ALaunchThatCannotCompleteFailsAndTheNextOneRuns) {
  check_rotate_and_sum(2, 64);
  int* d_out = device_copy(std::vector<int>(64, 0));
  emu::launch("deadlock", &deadlock, dim3(2), dim3(64), nullptr, d_out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // reading the error clears it
  cudaFree(d_out);
  // The fibers left waiting inside the failed launch start afresh.
  check_rotate_and_sum(2, 64);
  check_rotate_and_sum(4, 128);
}

}  // namespace
