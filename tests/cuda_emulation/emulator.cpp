// The CUDA emulator behind include/cuda_runtime.h and include/cublas_v2.h (see README.md).
//
// Execution model: blocks run one after another; inside a block every CUDA thread is a fiber
// (ucontext) with its own stack. A fiber runs until it finishes or reaches __syncthreads or a warp
// shuffle; when no fiber can run, the scheduler releases a warp whose active lanes all wait at the
// same shuffle (computing every lane's result before any lane resumes) or the block when all
// unfinished threads wait at __syncthreads. Anything else is a deadlock or a collective with
// missing lanes, which real hardware would hang on or leave undefined: the launch fails with
// cudaErrorLaunchFailure and a message on stderr.
//
// Switching: a fiber is started once (makecontext, then swapcontext into it) and then lives for
// the whole process, running one CUDA thread's body after another; every later switch between the
// scheduler and a fiber is _setjmp/_longjmp, which, unlike swapcontext, does not save and restore
// the signal mask with a system call on every switch (that call was about half the emulation's
// time). A launch that fails leaves fibers inside a body: they are started afresh next time.
//
// Memory: cudaMalloc returns host memory filled with 0xFF bytes (NaN in f32 and f64, -1 in i32),
// so reading memory nobody wrote shows up in results. Copies check their direction against the
// tracked allocations, kernels check that every pointer argument is device memory.
// The fortified longjmp refuses a jump to another stack, which is what switching fibers is.
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "engine/core/tf32.hpp"
#include "cuda_runtime.h"
#include "emulator_counters.h"

struct CUstream_st {
  int id;
};
struct CUevent_st {
  long long last_copy = -1;  // the newest queued copy when the event was recorded (-1: none)
  bool captured = false;     // last recorded while a stream was captured: cannot be waited for
};
// A recorded operation of a captured stream: its kind (graph updates compare them) and the work,
// which returns false when it fails.
struct EmulatedNode {
  const char* kind;
  std::function<bool()> run;
};
struct CUgraph_st {
  std::vector<EmulatedNode> nodes;
};
struct CUgraphExec_st {
  std::vector<EmulatedNode> nodes;
};
struct cublasContext {
  cudaStream_t stream;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;  // TF32: f32 operands reduced to TF32 (diffpool::to_tf32)
};

namespace emu {
namespace {

constexpr std::size_t kStackBytes = 256 * 1024;
constexpr int kWarpSize = 32;

enum class State { ready, block_barrier, warp_collective, done };

struct Fiber {
  ucontext_t context;  // used once, to start the fiber
  jmp_buf jump;        // where the fiber resumes
  bool live = false;   // started, and waiting for its next body between two of them
  uint3 index;
  State state = State::done;
  uint64_t bits = 0, result = 0;
  ShuffleKind kind = ShuffleKind::xor_lane;
  int argument = 0, width = kWarpSize;
};

struct Emulator {
  // The running launch.
  dim3 grid, block;
  uint3 block_index{0, 0, 0};
  std::deque<Fiber> fibers;  // a deque: growing it moves no fiber (their jump buffers stay put)
  std::vector<std::unique_ptr<char[]>> stacks;
  Fiber* current = nullptr;
  ucontext_t scheduler;   // for starting fibers
  jmp_buf scheduler_jump; // where the scheduler resumes
  const std::function<void()>* body = nullptr;
  std::string failure;
  // Device memory: start address -> size.
  std::map<uintptr_t, std::size_t> allocations;
  cudaError_t last_error = cudaSuccess;
  DiffpoolEmulatorCounters counters{};
  std::map<std::string, long long> launches_by_site;
  std::map<std::string, long long> argument_bytes_by_site;
  // Page-locked host memory (cudaHostAlloc): start address -> size.
  std::map<uintptr_t, std::size_t> pinned;
  // Host-to-device copies from page-locked memory that the "stream" has not reached yet. On a GPU
  // such a copy is truly asynchronous: it reads its source when the stream gets to it, so the host
  // must not change the source before then (an event recorded after the copy says when). The
  // emulation makes them when the next operation on the device is enqueued or the host waits for
  // an event or the stream, so a source rewritten too early is what the device receives.
  struct PendingCopy {
    void* dst;
    const void* src;
    std::size_t bytes;
    long long id;
  };
  std::vector<PendingCopy> pending;
  long long copies_queued = 0;
  // The stream being captured (one at a time), what it recorded, and whether an operation the
  // capture cannot hold has invalidated it.
  cudaStream_t capture_stream = nullptr;
  std::vector<EmulatedNode> captured;
  bool capture_invalid = false;
};

Emulator& emulator() {
  static Emulator e;
  return e;
}

// Back to the scheduler; returns when the scheduler resumes this fiber.
// Under AddressSanitizer (README.md: the emulation's memory checks) switches stay swapcontext,
// which ASan follows, where a _longjmp to another stack makes it warn and may make it report
// errors that are not there. DIFFPOOL_EMULATOR_SWAPCONTEXT forces that path (to test it).
#if defined(__SANITIZE_ADDRESS__) || defined(DIFFPOOL_EMULATOR_SWAPCONTEXT)
constexpr bool kSwapcontext = true;
#else
constexpr bool kSwapcontext = false;
#endif

void yield(Emulator& e, Fiber* self) {
  if constexpr (kSwapcontext) {
    swapcontext(&self->context, &e.scheduler);
  } else {
    if (_setjmp(self->jump) == 0) _longjmp(e.scheduler_jump, 1);
  }
}

// A fiber's life: the body of the thread it is given, then back to the scheduler, again and again.
void fiber_main() {
  Emulator& e = emulator();
  for (;;) {
    (*e.body)();
    e.current->state = State::done;
    yield(e, e.current);
  }
}

// Sets fiber f up to start fiber_main on its stack.
void prepare(Emulator& e, Fiber& f, std::size_t index) {
  f.live = true;
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = e.stacks[index].get();
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = nullptr;  // fiber_main never returns
  makecontext(&f.context, fiber_main, 0);
}

// Runs fiber f until it finishes its body or waits at a barrier or shuffle.
void resume(Emulator& e, Fiber& f, std::size_t index) {
  e.current = &f;
  if constexpr (kSwapcontext) {
    if (!f.live) prepare(e, f, index);
    swapcontext(&e.scheduler, &f.context);
  } else if (_setjmp(e.scheduler_jump) == 0) {
    if (f.live) _longjmp(f.jump, 1);
    prepare(e, f, index);
    swapcontext(&e.scheduler, &f.context);  // comes back by _longjmp to scheduler_jump
  }
  e.current = nullptr;
}

void fail(Emulator& e, const std::string& message) {
  if (e.failure.empty()) e.failure = message;
}

// Releases the warp starting at `first` if all its unfinished lanes wait at one shuffle.
bool try_release_warp(Emulator& e, int first, int count) {
  int waiting = 0, finished = 0;
  for (int i = first; i < first + count; ++i) {
    waiting += e.fibers[static_cast<std::size_t>(i)].state == State::warp_collective;
    finished += e.fibers[static_cast<std::size_t>(i)].state == State::done;
  }
  if (waiting == 0 || waiting + finished != count) return false;
  if (finished > 0) {
    fail(e, "a warp shuffle with a full mask was reached while lanes of the warp had exited");
    return false;
  }
  const Fiber& lead = e.fibers[static_cast<std::size_t>(first)];
  for (int i = first; i < first + count; ++i) {
    const Fiber& f = e.fibers[static_cast<std::size_t>(i)];
    if (f.kind != lead.kind || f.argument != lead.argument || f.width != lead.width) {
      fail(e, "lanes of one warp reached different shuffles");
      return false;
    }
  }
  for (int i = first; i < first + count; ++i) {
    Fiber& f = e.fibers[static_cast<std::size_t>(i)];
    const int lane = i - first;
    const int base = lane / f.width * f.width;
    int source = f.kind == ShuffleKind::xor_lane ? (lane ^ f.argument) : lane + f.argument;
    if (source < base || source >= base + f.width || source >= count) source = lane;  // own value
    f.result = e.fibers[static_cast<std::size_t>(first + source)].bits;
  }
  for (int i = first; i < first + count; ++i) e.fibers[static_cast<std::size_t>(i)].state = State::ready;
  return true;
}

// diffpool_emulator_skip_device_work: launches and cuBLAS calls are checked and counted, and
// then do nothing (copies and memsets still run), so a loop of steps times the host's side alone.
bool& skip_device_work() {
  static bool skip = false;
  return skip;
}

bool reverse_order() {
  static const bool reverse = [] {
    const char* order = std::getenv("DIFFPOOL_CUDA_EMULATION_ORDER");
    return order && std::string(order) == "reverse";
  }();
  return reverse;
}

bool run_block(Emulator& e, int threads) {
  for (int i = 0; i < threads; ++i) {
    Fiber& f = e.fibers[static_cast<std::size_t>(i)];
    const unsigned u = static_cast<unsigned>(i);
    f.index = uint3{u % e.block.x, (u / e.block.x) % e.block.y, u / (e.block.x * e.block.y)};
    f.state = State::ready;
  }
  // DIFFPOOL_CUDA_EMULATION_ORDER=reverse runs the threads last to first: a read of shared data
  // that lacks a barrier after the write then sees stale data in one of the two orders.
  const bool reverse = reverse_order();
  for (;;) {
    for (int j = 0; j < threads; ++j) {
      const int i = reverse ? threads - 1 - j : j;
      Fiber& f = e.fibers[static_cast<std::size_t>(i)];
      if (f.state != State::ready) continue;
      resume(e, f, static_cast<std::size_t>(i));
    }
    bool all_done = true, all_at_barrier = true;
    for (int i = 0; i < threads; ++i) {
      const State s = e.fibers[static_cast<std::size_t>(i)].state;
      all_done = all_done && s == State::done;
      all_at_barrier = all_at_barrier && (s == State::done || s == State::block_barrier);
    }
    if (all_done) return true;
    bool released = false;
    for (int first = 0; first < threads; first += kWarpSize)
      released = try_release_warp(e, first, std::min(kWarpSize, threads - first)) || released;
    if (!e.failure.empty()) return false;
    if (!released && all_at_barrier) {
      for (int i = 0; i < threads; ++i)
        if (e.fibers[static_cast<std::size_t>(i)].state == State::block_barrier)
          e.fibers[static_cast<std::size_t>(i)].state = State::ready;
      released = true;
    }
    if (!released) {
      fail(e, "deadlock: threads wait at __syncthreads and at warp shuffles that can never complete");
      return false;
    }
  }
}

std::map<uintptr_t, std::size_t>::const_iterator find_allocation(const Emulator& e, const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  auto it = e.allocations.upper_bound(address);
  if (it == e.allocations.begin()) return e.allocations.end();
  --it;
  // One past the end counts (an empty slice at the end of a tensor).
  return address <= it->first + it->second ? it : e.allocations.end();
}

// [p, p + bytes) lies inside one device allocation.
bool device_range(const void* p, std::size_t bytes) {
  const Emulator& e = emulator();
  auto it = find_allocation(e, p);
  return it != e.allocations.end() && reinterpret_cast<uintptr_t>(p) + bytes <= it->first + it->second;
}

cudaError_t set_error(cudaError_t error, const std::string& what) {
  std::fprintf(stderr, "[cuda emulation] %s: %s\n", cudaGetErrorName(error), what.c_str());
  emulator().last_error = error;
  return error;
}

// Makes the queued copies from page-locked memory up to and including copy `last` (all: -1 for
// none, so pass copies_queued), in the order they were queued: the stream reaches them.
void run_pending(long long last) {
  Emulator& e = emulator();
  std::size_t done = 0;
  for (; done < e.pending.size() && e.pending[done].id <= last; ++done)
    std::memmove(e.pending[done].dst, e.pending[done].src, e.pending[done].bytes);
  e.pending.erase(e.pending.begin(), e.pending.begin() + static_cast<std::ptrdiff_t>(done));
}
// Every queued copy: the operation about to be made at once comes after them on the one stream.
void run_all_pending() { run_pending(emulator().copies_queued); }

// An operation a capture cannot hold: fails and invalidates the capture.
cudaError_t capture_error(cudaError_t error, const std::string& what) {
  emulator().capture_invalid = true;
  return set_error(error, what + " while a stream is captured");
}
// Records an operation into the capture (it runs when the graph is launched).
void record(const char* kind, std::function<bool()> run) { emulator().captured.push_back({kind, std::move(run)}); }
// A copy or memset: recorded while a stream is captured, else made now (after the queued copies).
template <class F> void make_or_record(const char* kind, F work) {
  if (capturing()) {
    record(kind, [work] {
      work();
      return true;
    });
    return;
  }
  run_all_pending();
  work();
}

// The page-locked allocation holding [p, p + bytes), or pinned.end().
std::map<uintptr_t, std::size_t>::const_iterator find_pinned(const Emulator& e, const void* p, std::size_t bytes) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  auto it = e.pinned.upper_bound(address);
  if (it == e.pinned.begin()) return e.pinned.end();
  --it;
  return address + bytes <= it->first + it->second ? it : e.pinned.end();
}

}  // namespace

const uint3& thread_idx() { return emulator().current->index; }
const uint3& block_idx() { return emulator().block_index; }
const dim3& block_dim() { return emulator().block; }
const dim3& grid_dim() { return emulator().grid; }

void syncthreads() {
  Emulator& e = emulator();
  Fiber* self = e.current;
  self->state = State::block_barrier;
  yield(e, self);
}

uint64_t shuffle_bits(uint64_t bits, ShuffleKind kind, int argument, int width) {
  Emulator& e = emulator();
  Fiber* self = e.current;
  self->bits = bits;
  self->kind = kind;
  self->argument = argument;
  self->width = width;
  self->state = State::warp_collective;
  yield(e, self);
  return self->result;
}

bool is_device_pointer(const void* p) {
  return p == nullptr || find_allocation(emulator(), p) != emulator().allocations.end();
}

bool capturing() { return emulator().capture_stream != nullptr; }

void count_argument_bytes(const char* what, std::size_t bytes) {
  Emulator& e = emulator();
  e.counters.kernel_argument_bytes += static_cast<long long>(bytes);
  e.argument_bytes_by_site[what] += static_cast<long long>(bytes);
}

namespace {
// A launch's checks as CUDA makes them when the launch is made or captured, and its count (a
// launch with a bad pointer is counted, one with a bad configuration is not). False: it is not
// to run, the error is set and a capture is invalidated.
bool admit_launch(const char* what, dim3 grid, dim3 block, bool arguments_valid) {
  Emulator& e = emulator();
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  bool admitted = true;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
    set_error(cudaErrorInvalidConfiguration, std::string(what) + ": invalid launch configuration");
    admitted = false;
  } else {
    ++e.counters.kernel_launches;
    ++e.launches_by_site[what];
    if (!arguments_valid) {
      set_error(cudaErrorInvalidDevicePointer, std::string(what) + ": a pointer argument is not device memory");
      admitted = false;
    }
  }
  if (!admitted && capturing()) e.capture_invalid = true;
  return admitted;
}
// Runs every thread of every block; false (with the error set) when the launch fails.
bool execute_grid(const char* what, dim3 grid, dim3 block, const std::function<void()>& body);
}  // namespace

void run_grid(const char* what, dim3 grid, dim3 block, cudaStream_t stream, bool arguments_valid,
              const std::function<void()>& body) {
  (void)stream;
  run_all_pending();
  if (!admit_launch(what, grid, block, arguments_valid) || skip_device_work()) return;
  execute_grid(what, grid, block, body);
}

void capture_grid(const char* what, dim3 grid, dim3 block, bool arguments_valid, std::function<void()> body) {
  if (!admit_launch(what, grid, block, arguments_valid)) return;
  record("kernel", [what, grid, block, body = std::move(body)] {
    return skip_device_work() || execute_grid(what, grid, block, body);
  });
}

namespace {
bool execute_grid(const char* what, dim3 grid, dim3 block, const std::function<void()>& body) {
  Emulator& e = emulator();
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  while (e.stacks.size() < threads) e.stacks.push_back(std::make_unique<char[]>(kStackBytes));
  e.fibers.resize(std::max<std::size_t>(e.fibers.size(), threads));
  e.grid = grid;
  e.block = block;
  e.body = &body;
  e.failure.clear();
  // Under DIFFPOOL_CUDA_EMULATION_ORDER=reverse the blocks run last to first too, so a kernel whose
  // result depends on which block finishes last (the "last block adds the partials" reductions)
  // is run with a different last block.
  const bool reverse = reverse_order();
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        e.block_index = reverse ? uint3{grid.x - 1 - x, grid.y - 1 - y, grid.z - 1 - z} : uint3{x, y, z};
        if (!run_block(e, static_cast<int>(threads))) {
          for (Fiber& f : e.fibers) f.live = false;  // left inside a body: start afresh next time
          set_error(cudaErrorLaunchFailure, std::string(what) + ": " + e.failure);
          return false;
        }
      }
  return true;
}
}  // namespace

}  // namespace emu

// ---- runtime ------------------------------------------------------------------------------------
using emu::emulator;

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorCapturedEvent: return "cudaErrorCapturedEvent";
    case cudaErrorGraphExecUpdateFailure: return "cudaErrorGraphExecUpdateFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorGraphExecUpdateFailure: return "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update";
  }
  return "unknown error";
}
cudaError_t cudaGetLastError() {
  const cudaError_t error = emulator().last_error;
  emulator().last_error = cudaSuccess;
  return error;
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : emu::set_error(cudaErrorInvalidDevice, "cudaSetDevice");
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (device != 0) return emu::set_error(cudaErrorInvalidDevice, "cudaGetDeviceProperties");
  *properties = cudaDeviceProp{};
  std::snprintf(properties->name, sizeof(properties->name), "CPU emulation");
  properties->major = 9;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  ++emulator().counters.mallocs;
  void* p = std::malloc(std::max<std::size_t>(bytes, 1));
  if (!p) return emu::set_error(cudaErrorMemoryAllocation, "cudaMalloc");
  std::memset(p, 0xFF, bytes);
  emulator().allocations[reinterpret_cast<uintptr_t>(p)] = bytes;
  emulator().counters.device_bytes += static_cast<long long>(bytes);
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  if (emu::capturing()) return emu::capture_error(cudaErrorStreamCaptureUnsupported, "cudaFree");
  emu::run_all_pending();  // cudaFree waits for the device
  ++emulator().counters.frees;
  auto& allocations = emulator().allocations;
  auto it = allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == allocations.end()) return emu::set_error(cudaErrorInvalidDevicePointer, "cudaFree of unknown memory");
  emulator().counters.device_bytes -= static_cast<long long>(it->second);
  allocations.erase(it);
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  const bool dst_device = emu::device_range(dst, bytes), src_device = emu::device_range(src, bytes);
  const bool ok = kind == cudaMemcpyHostToDevice     ? dst_device && !emu::is_device_pointer(src)
                  : kind == cudaMemcpyDeviceToHost   ? src_device && !emu::is_device_pointer(dst)
                  : kind == cudaMemcpyDeviceToDevice ? dst_device && src_device
                                                     : false;
  if (!ok) return emu::set_error(cudaErrorInvalidMemcpyDirection, "cudaMemcpyAsync: pointers do not match the kind");
  emu::Emulator& e = emulator();
  auto& counters = e.counters;
  ++(kind == cudaMemcpyHostToDevice   ? counters.host_to_device
     : kind == cudaMemcpyDeviceToHost ? counters.device_to_host
                                      : counters.device_to_device);
  if (emu::capturing()) {
    if (kind == cudaMemcpyDeviceToHost) return emu::capture_error(cudaErrorStreamCaptureUnsupported, "a download");
    if (kind == cudaMemcpyHostToDevice) {
      counters.host_to_device_bytes += static_cast<long long>(bytes);
      if (emu::find_pinned(e, src, bytes) == e.pinned.end())
        return emu::capture_error(cudaErrorStreamCaptureUnsupported, "an upload from pageable memory");
    }
    emu::make_or_record("copy", [dst, src, bytes] { std::memmove(dst, src, bytes); });  // reads src when the graph runs
    return cudaSuccess;
  }
  if (kind == cudaMemcpyHostToDevice) {
    counters.host_to_device_bytes += static_cast<long long>(bytes);
    if (emu::find_pinned(e, src, bytes) != e.pinned.end()) {  // queued behind the copies queued before it
      e.pending.push_back({dst, src, bytes, e.copies_queued++});
      return cudaSuccess;
    }
    ++counters.host_to_device_pageable;
  }
  emu::run_all_pending();  // made now, so everything queued before it is made first
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind, cudaStream_t) {
  if (kind != cudaMemcpyDeviceToDevice || width > dst_pitch || width > src_pitch)
    return emu::set_error(cudaErrorInvalidValue, "cudaMemcpy2DAsync");
  ++emulator().counters.device_to_device;
  if (height == 0 || width == 0) return cudaSuccess;
  if (!emu::device_range(dst, (height - 1) * dst_pitch + width) ||
      !emu::device_range(src, (height - 1) * src_pitch + width))
    return emu::set_error(cudaErrorInvalidValue, "cudaMemcpy2DAsync: outside device memory");
  emu::make_or_record("copy", [=] {
    for (std::size_t r = 0; r < height; ++r)
      std::memmove(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, width);
  });
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t) {
  if (!emu::device_range(dst, bytes)) return emu::set_error(cudaErrorInvalidValue, "cudaMemsetAsync");
  emu::make_or_record("memset", [=] { std::memset(dst, value, bytes); });
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  static int next_id = 1;
  *stream = new CUstream_st{next_id++};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  if (emu::capturing()) return emu::capture_error(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize");
  ++emulator().counters.stream_synchronizations;
  emu::run_all_pending();
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned) {
  ++emulator().counters.pinned_allocations;
  void* p = std::malloc(std::max<std::size_t>(bytes, 1));
  if (!p) return emu::set_error(cudaErrorMemoryAllocation, "cudaHostAlloc");
  std::memset(p, 0xFF, bytes);
  emulator().pinned[reinterpret_cast<uintptr_t>(p)] = std::max<std::size_t>(bytes, 1);
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* ptr) {
  if (!ptr) return cudaSuccess;
  if (emu::capturing()) return emu::capture_error(cudaErrorStreamCaptureUnsupported, "cudaFreeHost");
  emu::Emulator& e = emulator();
  auto it = e.pinned.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == e.pinned.end()) return emu::set_error(cudaErrorInvalidValue, "cudaFreeHost of memory cudaHostAlloc did not return");
  for (const auto& copy : e.pending)
    if (reinterpret_cast<uintptr_t>(copy.src) >= it->first && reinterpret_cast<uintptr_t>(copy.src) < it->first + it->second)
      return emu::set_error(cudaErrorInvalidValue, "cudaFreeHost of page-locked memory a queued copy still reads");
  e.pinned.erase(it);
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  *event = new CUevent_st{};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return emu::set_error(cudaErrorInvalidValue, "cudaEventRecord of no event");
  event->captured = emu::capturing();
  event->last_copy = emulator().copies_queued - 1;
  return cudaSuccess;
}
// Waits for the work queued before the event's record: the copies from page-locked memory among
// it are made now, and a wait that had any to make counts as one the host really waited on.
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return emu::set_error(cudaErrorInvalidValue, "cudaEventSynchronize of no event");
  if (event->captured)
    return emu::set_error(cudaErrorCapturedEvent, "cudaEventSynchronize of an event recorded during a capture");
  emu::Emulator& e = emulator();
  if (!e.pending.empty() && e.pending.front().id <= event->last_copy) {
    ++e.counters.event_waits;
    emu::run_pending(event->last_copy);
  }
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  emu::Emulator& e = emulator();
  if (!stream || e.capture_stream) return emu::set_error(cudaErrorInvalidValue, "cudaStreamBeginCapture");
  e.capture_stream = stream;
  e.captured.clear();
  e.capture_invalid = false;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  emu::Emulator& e = emulator();
  if (!stream || e.capture_stream != stream) return emu::set_error(cudaErrorInvalidValue, "cudaStreamEndCapture");
  e.capture_stream = nullptr;
  std::vector<EmulatedNode> nodes = std::move(e.captured);
  e.captured.clear();
  *graph = nullptr;
  if (e.capture_invalid)
    return emu::set_error(cudaErrorStreamCaptureInvalidated, "cudaStreamEndCapture of an invalidated capture");
  *graph = new CUgraph_st{std::move(nodes)};
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, std::size_t* count) {
  if (!graph || nodes) return emu::set_error(cudaErrorInvalidValue, "cudaGraphGetNodes (only the count is emulated)");
  *count = graph->nodes.size();
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return emu::set_error(cudaErrorInvalidValue, "cudaGraphInstantiate");
  ++emulator().counters.graph_instantiations;
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph, cudaGraphExecUpdateResultInfo* info) {
  if (!exec || !graph) return emu::set_error(cudaErrorInvalidValue, "cudaGraphExecUpdate");
  bool same = exec->nodes.size() == graph->nodes.size();
  for (std::size_t i = 0; same && i < graph->nodes.size(); ++i)
    same = std::string(exec->nodes[i].kind) == graph->nodes[i].kind;
  if (info) *info = cudaGraphExecUpdateResultInfo{same ? 0 : 1, nullptr, nullptr};
  if (!same) {
    emulator().last_error = cudaErrorGraphExecUpdateFailure;  // as CUDA: no message, the caller instantiates
    return cudaErrorGraphExecUpdateFailure;
  }
  ++emulator().counters.graph_updates;
  exec->nodes = graph->nodes;
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
  if (!exec) return emu::set_error(cudaErrorInvalidValue, "cudaGraphLaunch");
  if (emu::capturing()) return emu::capture_error(cudaErrorStreamCaptureUnsupported, "cudaGraphLaunch");
  emu::run_all_pending();  // the graph runs after the copies queued before it
  ++emulator().counters.graph_launches;
  for (const EmulatedNode& node : exec->nodes)
    if (!node.run()) {
      std::fprintf(stderr, "[cuda emulation] a %s node of a graph failed\n", node.kind);
      emulator().last_error = cudaErrorLaunchFailure;
      return cudaErrorLaunchFailure;
    }
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

extern "C" DiffpoolEmulatorCounters diffpool_emulator_counters() { return emulator().counters; }
void diffpool_emulator_skip_device_work(bool skip) { emu::skip_device_work() = skip; }
std::map<std::string, long long> diffpool_emulator_launches_by_site() { return emulator().launches_by_site; }
std::map<std::string, long long> diffpool_emulator_argument_bytes_by_site() { return emulator().argument_bytes_by_site; }

// ---- cuBLAS -------------------------------------------------------------------------------------
const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "success" : "an invalid value was used as an argument";
}
cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext{nullptr};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, std::size_t bytes) {
  if (!handle || (bytes > 0 && !emu::device_range(workspace, bytes))) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t, cublasPointerMode_t mode) {
  return mode == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

namespace {

// Column-major C = alpha op(A) op(B) + beta C, with cuBLAS's argument checks.
template <class T>
cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                    int64_t k, T alpha, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                    int64_t ldc) {
  if (!handle || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const int64_t a_rows = ta == CUBLAS_OP_N ? m : k, a_cols = ta == CUBLAS_OP_N ? k : m;
  const int64_t b_rows = tb == CUBLAS_OP_N ? k : n, b_cols = tb == CUBLAS_OP_N ? n : k;
  if (lda < std::max<int64_t>(1, a_rows) || ldb < std::max<int64_t>(1, b_rows) || ldc < std::max<int64_t>(1, m)) {
    std::fprintf(stderr, "[cuda emulation] cublas gemm: lda %lld (rows %lld), ldb %lld (rows %lld), ldc %lld (m %lld)\n",
                 static_cast<long long>(lda), static_cast<long long>(a_rows), static_cast<long long>(ldb),
                 static_cast<long long>(b_rows), static_cast<long long>(ldc), static_cast<long long>(m));
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  auto extent = [](int64_t rows, int64_t cols, int64_t ld) {
    return static_cast<std::size_t>((cols - 1) * ld + rows) * sizeof(T);
  };
  if ((k > 0 && (!emu::device_range(a, extent(a_rows, a_cols, lda)) || !emu::device_range(b, extent(b_rows, b_cols, ldb)))) ||
      !emu::device_range(c, extent(m, n, ldc))) {
    std::fprintf(stderr, "[cuda emulation] cublas gemm: a matrix lies outside device memory\n");
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  if (emu::skip_device_work()) return CUBLAS_STATUS_SUCCESS;
  // The TF32 math mode models the tensor cores' reading of f32 operands (f64 is unaffected).
  const bool tf32 = handle->math == CUBLAS_TF32_TENSOR_OP_MATH;
  const auto operand = [tf32](T v) { return tf32 ? diffpool::to_tf32(v) : v; };
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0;
      for (int64_t l = 0; l < k; ++l) {
        const T av = operand(ta == CUBLAS_OP_N ? a[i + l * lda] : a[l + i * lda]);
        const T bv = operand(tb == CUBLAS_OP_N ? b[l + j * ldb] : b[j + l * ldb]);
        acc += static_cast<double>(av) * static_cast<double>(bv);
      }
      T& cij = c[i + j * ldc];
      const T value = static_cast<T>(static_cast<double>(alpha) * acc);
      cij = beta == T(0) ? value : value + beta * cij;
    }
  return CUBLAS_STATUS_SUCCESS;
}

template <class T>
cublasStatus_t gemm_batched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                            int64_t k, T alpha, const T* a, int64_t lda, int64_t sa, const T* b, int64_t ldb,
                            int64_t sb, T beta, T* c, int64_t ldc, int64_t sc, int64_t batch) {
  if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  for (int64_t i = 0; i < batch; ++i) {
    const cublasStatus_t s = gemm(handle, ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
  }
  return CUBLAS_STATUS_SUCCESS;
}

template <class T>
cublasStatus_t gemm_grouped_batched(cublasHandle_t handle, const cublasOperation_t* ta, const cublasOperation_t* tb,
                                    const int64_t* m, const int64_t* n, const int64_t* k, const T* alpha,
                                    const T* const* a, const int64_t* lda, const T* const* b, const int64_t* ldb,
                                    const T* beta, T* const* c, const int64_t* ldc, int64_t group_count,
                                    const int64_t* group_size) {
  if (!handle || group_count < 0) return CUBLAS_STATUS_INVALID_VALUE;
  int64_t problems = 0;
  for (int64_t g = 0; g < group_count; ++g) {
    if (group_size[g] < 0) return CUBLAS_STATUS_INVALID_VALUE;
    problems += group_size[g];
  }
  // The pointer arrays are device memory, as cuBLAS requires.
  const std::size_t pointer_bytes = static_cast<std::size_t>(problems) * sizeof(void*);
  if (problems > 0 && (!emu::device_range(a, pointer_bytes) || !emu::device_range(b, pointer_bytes) ||
                       !emu::device_range(c, pointer_bytes))) {
    std::fprintf(stderr, "[cuda emulation] cublas grouped gemm: a pointer array lies outside device memory\n");
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  int64_t p = 0;
  for (int64_t g = 0; g < group_count; ++g)
    for (int64_t i = 0; i < group_size[g]; ++i, ++p) {
      const cublasStatus_t s =
          gemm(handle, ta[g], tb[g], m[g], n[g], k[g], alpha[g], a[p], lda[g], b[p], ldb[g], beta[g], c[p], ldc[g]);
      if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

namespace {
// A cuBLAS call: counted, then made now (after the queued copies) or, while a stream is captured,
// recorded with its arguments (a failure then shows when the graph runs).
template <class F> cublasStatus_t cublas_call(cublasHandle_t handle, F call) {
  ++emulator().counters.cublas_calls;
  ++emulator().launches_by_site["cublas"];
  if (emu::capturing()) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    emu::record("cublas", [call] { return call() == CUBLAS_STATUS_SUCCESS; });
    return CUBLAS_STATUS_SUCCESS;
  }
  emu::run_all_pending();  // e.g. the uploads of a grouped call's pointer arrays, queued before
  return call();
}
// A grouped call's host arrays, copied (cuBLAS reads them when it is called, not when it runs).
template <class T> std::vector<T> host_array(const T* a, int64_t n) { return std::vector<T>(a, a + std::max<int64_t>(n, 0)); }
template <class T>
cublasStatus_t grouped_call(cublasHandle_t h, const cublasOperation_t ta[], const cublasOperation_t tb[],
                            const int64_t m[], const int64_t n[], const int64_t k[], const T alpha[],
                            const T* const a[], const int64_t lda[], const T* const b[], const int64_t ldb[],
                            const T beta[], T* const c[], const int64_t ldc[], int64_t group_count,
                            const int64_t group_size[]) {
  if (group_count < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const int64_t g = group_count;
  return cublas_call(h, [=, ta = host_array(ta, g), tb = host_array(tb, g), m = host_array(m, g), n = host_array(n, g),
                         k = host_array(k, g), alpha = host_array(alpha, g), lda = host_array(lda, g),
                         ldb = host_array(ldb, g), beta = host_array(beta, g), ldc = host_array(ldc, g),
                         sizes = host_array(group_size, g)] {
    return gemm_grouped_batched<T>(h, ta.data(), tb.data(), m.data(), n.data(), k.data(), alpha.data(), a, lda.data(),
                                   b, ldb.data(), beta.data(), c, ldc.data(), g, sizes.data());
  });
}
}  // namespace

cublasStatus_t cublasSgemmGroupedBatched_64(cublasHandle_t h, const cublasOperation_t ta[], const cublasOperation_t tb[],
                                           const int64_t m[], const int64_t n[], const int64_t k[], const float alpha[],
                                           const float* const a[], const int64_t lda[], const float* const b[],
                                           const int64_t ldb[], const float beta[], float* const c[],
                                           const int64_t ldc[], int64_t group_count, const int64_t group_size[]) {
  return grouped_call<float>(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, group_count, group_size);
}
cublasStatus_t cublasDgemmGroupedBatched_64(cublasHandle_t h, const cublasOperation_t ta[], const cublasOperation_t tb[],
                                           const int64_t m[], const int64_t n[], const int64_t k[], const double alpha[],
                                           const double* const a[], const int64_t lda[], const double* const b[],
                                           const int64_t ldb[], const double beta[], double* const c[],
                                           const int64_t ldc[], int64_t group_count, const int64_t group_size[]) {
  return grouped_call<double>(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, group_count, group_size);
}
cublasStatus_t cublasSgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                              int64_t k, const float* alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                              const float* beta, float* c, int64_t ldc) {
  return cublas_call(h, [=, alpha = *alpha, beta = *beta] {
    return gemm<float>(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  });
}
cublasStatus_t cublasDgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                              int64_t k, const double* alpha, const double* a, int64_t lda, const double* b,
                              int64_t ldb, const double* beta, double* c, int64_t ldc) {
  return cublas_call(h, [=, alpha = *alpha, beta = *beta] {
    return gemm<double>(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  });
}
cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                                            int64_t n, int64_t k, const float* alpha, const float* a, int64_t lda,
                                            int64_t sa, const float* b, int64_t ldb, int64_t sb, const float* beta,
                                            float* c, int64_t ldc, int64_t sc, int64_t batch) {
  return cublas_call(h, [=, alpha = *alpha, beta = *beta] {
    return gemm_batched<float>(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
  });
}
cublasStatus_t cublasDgemmStridedBatched_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                                            int64_t n, int64_t k, const double* alpha, const double* a, int64_t lda,
                                            int64_t sa, const double* b, int64_t ldb, int64_t sb, const double* beta,
                                            double* c, int64_t ldc, int64_t sc, int64_t batch) {
  return cublas_call(h, [=, alpha = *alpha, beta = *beta] {
    return gemm_batched<double>(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
  });
}
