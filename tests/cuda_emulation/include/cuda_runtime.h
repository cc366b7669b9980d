#pragma once
// CPU emulation of the part of the CUDA runtime and device language that the CUDA backend uses
// (see tests/cuda_emulation/README.md). Compiled with the host C++ compiler in place of the real
// <cuda_runtime.h>, so that the backend's kernels run, slowly but faithfully, on machines without a
// GPU: every CUDA thread is a fiber, blocks run one after another, __syncthreads and warp shuffles
// are real barriers among the fibers, and "device" memory is host memory the emulator tracks.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

// ---- the device language ------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time, so block-shared storage can be static
#define __restrict__

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu {
const uint3& thread_idx();
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void syncthreads();
// A warp collective: every active lane of the warp must call it with the same kind and argument.
enum class ShuffleKind { xor_lane, down };
uint64_t shuffle_bits(uint64_t bits, ShuffleKind kind, int argument, int width);
template <class T> T shuffle(T value, ShuffleKind kind, int argument, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = shuffle_bits(bits, kind, argument, width);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
}  // namespace emu

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
inline void __syncthreads() { ::emu::syncthreads(); }
template <class T> T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  (void)mask;
  return ::emu::shuffle(value, ::emu::ShuffleKind::xor_lane, lane_mask, width);
}
// Blocks run one at a time, so memory operations are ordered already: the fence does nothing, the
// atomic is a plain read-modify-write and the L1-bypassing load a plain load.
inline void __threadfence() {}
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  const unsigned old = *address;
  *address = old + value;
  return old;
}
template <class T> T __ldcg(const T* address) { return *address; }
template <class T> T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  (void)mask;
  return ::emu::shuffle(value, ::emu::ShuffleKind::down, static_cast<int>(delta), width);
}

// ---- the runtime --------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorCapturedEvent = 907,
  cudaErrorGraphExecUpdateFailure = 910,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;
constexpr unsigned cudaStreamNonBlocking = 1;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
constexpr unsigned cudaEventDisableTiming = 2;
constexpr unsigned cudaHostAllocDefault = 0;
struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  int major, minor;
};

const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device);
cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
// Page-locked host memory: a host-to-device copy from it is asynchronous (it reads the source
// when the stream reaches it), from any other host memory it is made before the call returns.
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventSynchronize(cudaEvent_t event);

// Stream capture and graphs: while a stream is captured, launches, cuBLAS calls, copies and
// memsets are recorded instead of made (their arguments copied), and a launch of the graph makes
// them in order. What a capture cannot hold fails and invalidates it: a download, an upload from
// pageable memory, a stream synchronisation, cudaFree and cudaFreeHost; an event recorded during
// a capture cannot be waited for. An update succeeds when the graphs have the same nodes in kind
// and order (kernel, copy, memset, cuBLAS call), whatever their arguments.
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
struct CUgraph_st;
using cudaGraph_t = CUgraph_st*;
struct CUgraphExec_st;
using cudaGraphExec_t = CUgraphExec_st*;
struct CUgraphNode_st;
using cudaGraphNode_t = CUgraphNode_st*;
struct cudaGraphExecUpdateResultInfo {
  int result;
  cudaGraphNode_t errorNode;
  cudaGraphNode_t errorFromNode;
};
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, std::size_t* count);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph, cudaGraphExecUpdateResultInfo* info);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

// ---- launching (used by DP_KERNEL_CALL under DIFFPOOL_CUDA_EMULATION) ----------------------------
namespace emu {
// True when p lies inside a live emulated device allocation (null counts as valid).
bool is_device_pointer(const void* p);
// Runs body once per thread of every block; records cudaErrorInvalidConfiguration or a pointer
// error as the "last error" instead of running.
void run_grid(const char* what, dim3 grid, dim3 block, cudaStream_t stream, bool arguments_valid,
              const std::function<void()>& body);
// While a stream is captured: checks and counts the launch as run_grid does and records it (the
// body, holding copies of the arguments, runs when the graph is launched).
bool capturing();
void capture_grid(const char* what, dim3 grid, dim3 block, bool arguments_valid, std::function<void()> body);
template <class A> bool argument_valid(const A& a) {
  if constexpr (std::is_pointer_v<A>) return is_device_pointer(a);
  return true;
}
// Counts the bytes of a launch's arguments (emulator_counters.h: kernel_argument_bytes).
void count_argument_bytes(const char* what, std::size_t bytes);
// `what`: the launch site's name (DP_CUDA_SITE), in error messages and the launch counts.
template <class... P, class... A>
void launch(const char* what, void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t stream, A... args) {
  const bool valid = (argument_valid(args) && ...);
  count_argument_bytes(what, (std::size_t{0} + ... + sizeof(P)));
  if (capturing()) {
    capture_grid(what, grid, block, valid, [kernel, args...] { kernel(args...); });
    return;
  }
  run_grid(what, grid, block, stream, valid, [&] { kernel(args...); });
}
}  // namespace emu
