// The CUDA backend: every Backend primitive on one GPU (see backend.hpp for the semantics and
// README.md in this folder for how each primitive is implemented and tested).
//
// One stream per backend; cuBLAS is bound to it, and every kernel is enqueued on it, so the
// primitives never wait for the device. The host waits only in copy_bytes from the device to host
// memory, in synchronize(), and for an upload slot the device has not read yet (UploadRing: only
// when the host runs 8 uploads ahead of the device). Dense products go to cuBLAS, everything else
// to the kernels in kernels_*.cu. Device memory comes from a caching allocator (size-bucketed free
// lists); reusing a freed block without a synchronisation is safe because all work is ordered on
// the one stream. A step (Backend::begin_step to end_step) is captured into a CUDA graph and
// launched as one (README.md, "Steps as CUDA graphs").
#include "engine/backend/cuda/cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "engine/core/error.hpp"

namespace diffpool::DP_CUDA_NS {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  (void)cudaGetLastError();  // clear a non-sticky error so that later calls are not blamed for it
  throw LibraryError(fmt::format("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(status),
                                 cudaGetErrorString(status), call, file, line));
}

void check_launch(const Site& site) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) [[unlikely]]
    throw LibraryError(fmt::format("CUDA error {} ({}) launching kernel {} at {}:{}", cudaGetErrorName(status),
                                   cudaGetErrorString(status), site.what, site.file, site.line));
}

namespace {

[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw LibraryError(fmt::format("cuBLAS error {} ({}) in {} at {}:{}", cublasGetStatusName(status),
                                 cublasGetStatusString(status), call, file, line));
}

#define DP_CUBLAS_CHECK(call)                                                   \
  do {                                                                          \
    const cublasStatus_t dp_cublas_status_ = (call);                            \
    if (dp_cublas_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                \
      throw_cublas_error(dp_cublas_status_, #call, __FILE__, __LINE__);         \
  } while (0)

// ---- RAII handles -------------------------------------------------------------------------------
class Stream {
 public:
  Stream() { DP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (stream_) (void)cudaStreamDestroy(stream_);  // errors cannot be reported from a destructor
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    DP_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
      DP_CUBLAS_CHECK(cublasSetStream(handle_, stream));
      // Full FP32 products (no TF32 tensor cores) unless backend.matmul_precision asks for TF32
      // (set_matmul_precision), so f32 results stay within float tolerances of the CPU backend;
      // alpha and beta are host scalars.
      DP_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
      DP_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));
    } catch (...) {
      (void)cublasDestroy(handle_);
      throw;
    }
  }
  ~CublasHandle() { (void)cublasDestroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

// ---- caching allocator ----------------------------------------------------------------------
// Blocks are rounded up to a bucket size (a power of two from 512 bytes to 1 MiB, then multiples
// of 2 MiB) and kept on a free list per bucket when deallocated. A cudaMalloc that runs out of
// memory releases the cache and tries once more. A miss for a large block (kTrimFrom and over)
// first gives the cached large blocks back to CUDA: those are a workspace's chunks, whose sizes do
// not repeat once it has grown past them (a D&D batch with more nodes than any before merges them
// into a larger one), so keeping them only held memory that nothing would ask for again: under the
// emulation, 1.0 GiB held after two epochs of the per-graph D&D model grew to 2.6 GiB by the
// seventeenth, against about 0.5 GiB that a step uses (bench_cuda_host --dataset DD --levels 2).
class CachingAllocator {
 public:
  explicit CachingAllocator(bool caching) : caching_(caching) {}
  ~CachingAllocator() {
    release_cached();
    for (const auto& [ptr, bytes] : live_) (void)cudaFree(ptr);
  }
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes) {
    const std::size_t size = caching_ ? bucket(bytes) : std::max<std::size_t>(bytes, 1);
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (caching_) {
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
        live_.emplace(p, size);
        return p;
      }
    }
    if (caching_ && size >= kTrimFrom) give_back_large_cached_locked();
    void* p = nullptr;
    cudaError_t status = cudaMalloc(&p, size);
    if (status == cudaErrorMemoryAllocation && cached_bytes_ > 0) {
      (void)cudaGetLastError();
      if (before_release_) before_release_();  // a captured step's graph may use cached blocks
      release_cached_locked();
      status = cudaMalloc(&p, size);
    }
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      throw LibraryError(fmt::format(
          "CUDA error {} ({}) in cudaMalloc of {} bytes ({} bytes in use by this backend) at {}:{}",
          cudaGetErrorName(status), cudaGetErrorString(status), size, live_bytes(), __FILE__, __LINE__));
    }
    try {
      live_.emplace(p, size);
    } catch (...) {
      (void)cudaFree(p);
      throw;
    }
    return p;
  }

  void deallocate(void* ptr) noexcept {
    if (!ptr) return;
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;  // not ours: nothing to give back
    const std::size_t size = it->second;
    live_.erase(it);
    if (caching_) {
      try {
        free_[size].push_back(ptr);
        cached_bytes_ += size;
        return;
      } catch (...) {  // no memory for the free list: give the block back to CUDA instead
      }
    }
    if (deferring_) {  // a captured step's work may still read the block: freed after its launch
      try {
        deferred_.push_back(ptr);
      } catch (...) {  // no memory to remember it: leak the block rather than free it under the graph
      }
      return;
    }
    (void)cudaFree(ptr);
  }

  // Called before the cache is given back to CUDA for want of memory: the backend launches the
  // step it is capturing, whose recorded work may use cached blocks (cudaFree then waits for it).
  void set_before_release(std::function<void()> f) { before_release_ = std::move(f); }

  // While a step is captured: blocks given back to CUDA (not cached) are kept until
  // free_deferred, after the step's graph has been launched (cudaFree then waits for it).
  void defer_frees(bool on) noexcept {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    deferring_ = on;
  }
  void free_deferred() noexcept {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    for (void* p : deferred_) (void)cudaFree(p);
    deferred_.clear();
  }

  void release_cached() noexcept {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    release_cached_locked();
  }

 private:
  static constexpr std::size_t kTrimFrom = std::size_t{32} << 20;

  // The cached blocks of kTrimFrom bytes and more go back to CUDA; while a step is captured, after
  // its graph's launch (the recorded work may still use them).
  void give_back_large_cached_locked() noexcept {
    for (auto it = free_.begin(); it != free_.end();) {
      if (it->first < kTrimFrom) {
        ++it;
        continue;
      }
      for (void* p : it->second) {
        cached_bytes_ -= it->first;
        if (!deferring_) {
          (void)cudaFree(p);
          continue;
        }
        try {
          deferred_.push_back(p);
        } catch (...) {  // no memory to remember it: leak the block rather than free it under the graph
        }
      }
      it = free_.erase(it);
    }
  }

  static std::size_t bucket(std::size_t bytes) {
    constexpr std::size_t kSmallest = 512, kLargeStep = std::size_t{2} << 20;
    if (bytes <= kSmallest) return kSmallest;
    if (bytes <= (std::size_t{1} << 20)) return std::bit_ceil(bytes);
    return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
  }
  void release_cached_locked() noexcept {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) (void)cudaFree(p);
    free_.clear();
    cached_bytes_ = 0;
  }
  std::size_t live_bytes() const {
    std::size_t total = 0;
    for (const auto& [ptr, bytes] : live_) total += bytes;
    return total;
  }

  bool caching_;
  std::recursive_mutex mutex_;  // recursive: before_release_ launches a graph, which frees deferred blocks
  std::function<void()> before_release_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::unordered_map<void*, std::size_t> live_;
  std::size_t cached_bytes_ = 0;
  bool deferring_ = false;
  std::vector<void*> deferred_;
};

// The backend's arrival tickets (kernels::ScratchSpace::tickets): one array of zeros, replaced by a
// larger zeroed one when a launch needs more. The old array goes back to the allocator at once:
// its next user runs after every launch queued before it on the stream.
class Tickets {
 public:
  Tickets(CachingAllocator& allocator, cudaStream_t stream) : allocator_(allocator), stream_(stream) {}
  ~Tickets() {
    if (data_) allocator_.deallocate(data_);
  }
  Tickets(const Tickets&) = delete;
  Tickets& operator=(const Tickets&) = delete;
  unsigned* get(std::size_t count) {
    if (count > capacity_) {
      const std::size_t capacity = std::max<std::size_t>({count, 2 * capacity_, 256});
      void* p = allocator_.allocate(capacity * sizeof(unsigned));
      const cudaError_t status = cudaMemsetAsync(p, 0, capacity * sizeof(unsigned), stream_);
      if (status != cudaSuccess) {
        allocator_.deallocate(p);
        DP_CUDA_CHECK(status);
      }
      if (data_) allocator_.deallocate(data_);
      data_ = static_cast<unsigned*>(p);
      capacity_ = capacity;
    }
    return data_;
  }

 private:
  CachingAllocator& allocator_;
  cudaStream_t stream_;
  unsigned* data_ = nullptr;
  std::size_t capacity_ = 0;
};

// Page-locked staging buffers for uploads. A host-to-device copy from pageable memory makes the
// driver copy the source into a page-locked buffer of its own before the DMA, and the CUDA runtime
// allows it to wait for the stream first ("API synchronization behavior"): an upload in the middle
// of a queue of work could make the host wait for all of it. From page-locked memory the copy is
// truly asynchronous, but it reads its source only when the stream reaches it, so the source must
// not change until then. The ring: kSlots page-locked buffers used in turn, each with an event
// recorded after the copy that read it; a buffer is written again only after its event, the copy
// kSlots uploads earlier, which has long completed unless the host is that many uploads ahead of
// the device (then the wait is the back-pressure that keeps it from running further ahead).
class UploadRing {
 public:
  static constexpr std::size_t kSlots = 8;
  static constexpr std::size_t kSmallest = std::size_t{64} << 10;  // a slot's first capacity
  static constexpr std::size_t kLargest = std::size_t{64} << 20;   // larger uploads are not staged

  UploadRing() = default;
  ~UploadRing() {  // the backend has synchronised its stream: no copy reads a slot any more
    for (Slot& slot : slots_) {
      if (slot.host) (void)cudaFreeHost(slot.host);
      if (slot.done) (void)cudaEventDestroy(slot.done);
    }
  }
  UploadRing(const UploadRing&) = delete;
  UploadRing& operator=(const UploadRing&) = delete;

  // The next slot, with room for `bytes` and no copy still reading it; null when bytes is over
  // kLargest or page-locked memory cannot be had (the caller uploads from pageable memory). The
  // slot stays the caller's until its copy is queued (send) or kSlots further acquisitions.
  void* acquire(std::size_t bytes) {
    if (bytes > kLargest) return nullptr;
    Slot& slot = slots_[next_];
    DP_CHECK(!slot.captured, "upload ring: slot {} is read by the step being captured", next_);
    next_ = (next_ + 1) % kSlots;
    if (slot.recorded) {
      DP_CUDA_CHECK(cudaEventSynchronize(slot.done));
      slot.recorded = false;
    }
    if (slot.capacity < bytes) {
      if (slot.host) {
        DP_CUDA_CHECK(cudaFreeHost(slot.host));
        slot.host = nullptr;
        slot.capacity = 0;
      }
      const std::size_t capacity = std::max(kSmallest, std::bit_ceil(bytes));
      if (cudaHostAlloc(&slot.host, capacity, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();  // no page-locked memory to be had: this upload goes from pageable memory
        slot.host = nullptr;
        return nullptr;
      }
      slot.capacity = capacity;
    }
    if (!slot.done) DP_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
    return slot.host;
  }

  // Whether [p, p + bytes) lies in a slot (memory acquire handed out).
  bool holds(const void* p, std::size_t bytes) const { return find(p, bytes) != nullptr; }

  // Queues the copy of [src, src + bytes) (inside a slot) to dst on `stream`, and records the
  // slot's event after it. While `stream` is captured (a step becoming a CUDA graph) the copy is
  // recorded, not made: it reads the slot when the graph runs, and an event recorded inside a
  // capture cannot be waited for, so the slot is marked and its event is recorded after the
  // graph's launch (record_captured).
  void send(void* dst, const void* src, std::size_t bytes, cudaStream_t stream, bool capturing) {
    Slot* slot = find(src, bytes);
    DP_CHECK(slot, "upload from {} bytes outside the staging buffers", bytes);
    DP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    if (capturing) {
      slot->captured = true;
      return;
    }
    DP_CUDA_CHECK(cudaEventRecord(slot->done, stream));
    slot->recorded = true;
  }

  // Whether acquire(bytes) would need what a capture must not do: reuse a slot the captured step
  // still reads (more uploads in one step than slots), or allocate or grow a slot's buffer.
  bool acquire_needs_submit(std::size_t bytes) const {
    if (bytes > kLargest) return false;
    const Slot& slot = slots_[next_];
    return slot.captured || slot.capacity < bytes;
  }
  // After the captured step's graph was launched on `stream`: each slot it reads gets its event
  // recorded after the graph. `launched` false: the graph never ran, the slots are free again.
  void record_captured(cudaStream_t stream, bool launched) {
    for (Slot& slot : slots_) {
      if (!slot.captured) continue;
      slot.captured = false;
      if (!launched) continue;
      DP_CUDA_CHECK(cudaEventRecord(slot.done, stream));
      slot.recorded = true;
    }
  }

 private:
  struct Slot {
    void* host = nullptr;
    std::size_t capacity = 0;
    cudaEvent_t done = nullptr;
    bool recorded = false;  // done marks a queued copy from this slot
    bool captured = false;  // a copy from this slot is part of the step being captured
  };
  Slot* find(const void* p, std::size_t bytes) {
    const auto* q = static_cast<const char*>(p);
    for (Slot& slot : slots_) {
      const auto* base = static_cast<const char*>(slot.host);
      if (slot.host && q >= base && q + bytes <= base + slot.capacity) return &slot;
    }
    return nullptr;
  }
  const Slot* find(const void* p, std::size_t bytes) const { return const_cast<UploadRing*>(this)->find(p, bytes); }

  std::array<Slot, kSlots> slots_{};
  std::size_t next_ = 0;
};

// The executable graphs of captured steps, most recently used first. A captured step updates the
// one with as many nodes (cudaGraphExecUpdate: the same topology with new kernel arguments, grid
// sizes and copy addresses, far cheaper than instantiating) or, where that fails or none has as
// many nodes, is instantiated anew. Training and evaluation steps (and a smaller last batch)
// differ in shape, so a few are kept.
class GraphExecs {
 public:
  static constexpr std::size_t kKept = 4;
  GraphExecs() { execs_.reserve(kKept); }
  ~GraphExecs() {
    for (const Entry& e : execs_) (void)cudaGraphExecDestroy(e.exec);  // in flight: freed when done
  }
  GraphExecs(const GraphExecs&) = delete;
  GraphExecs& operator=(const GraphExecs&) = delete;

  cudaGraphExec_t for_graph(cudaGraph_t graph, std::size_t nodes) {
    ++launched_;
    for (std::size_t i = 0; i < execs_.size(); ++i) {
      if (execs_[i].nodes != nodes) continue;
      cudaGraphExecUpdateResultInfo info{};
      if (cudaGraphExecUpdate(execs_[i].exec, graph, &info) == cudaSuccess) {
        ++updated_;
        std::rotate(execs_.begin(), execs_.begin() + static_cast<std::ptrdiff_t>(i),
                    execs_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        return execs_.front().exec;
      }
      ++refused_[static_cast<int>(info.result)];
      (void)cudaGetLastError();  // a different topology (e.g. cuBLAS chose other kernels): instantiate
      (void)cudaGraphExecDestroy(execs_[i].exec);
      execs_.erase(execs_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
    cudaGraphExec_t exec = nullptr;
    DP_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    ++instantiated_;
    if (execs_.size() == kKept) {
      (void)cudaGraphExecDestroy(execs_.back().exec);
      execs_.pop_back();
    }
    execs_.insert(execs_.begin(), Entry{exec, nodes});  // capacity reserved: no throw
    return exec;
  }

  // Host time of each phase of the steps' graphs, for statistics().
  struct Phases {
    double capturing = 0;  // from the capture's start to its end: the host's work and the recorded launches
    double ending = 0;     // cudaStreamEndCapture
    double updating = 0;   // cudaGraphGetNodes and cudaGraphExecUpdate or cudaGraphInstantiate
    double launching = 0;  // cudaGraphLaunch
    double nodes = 0;
  };
  Phases& phases() { return phases_; }

  // "graphs launched L, updated U, instantiated I[, updates refused: R x result C ...]; per graph
  // N nodes, host us: capturing, ending, updating, launching"; the codes C are
  // cudaGraphExecUpdateResult's (2 topology, 3 node type, 4 function, 5 parameters, 6 not
  // supported, 7 unsupported function change, 8 attributes changed).
  std::string statistics() const {
    std::string text = fmt::format("graphs launched {}, updated {}, instantiated {}", launched_, updated_, instantiated_);
    if (!refused_.empty()) {
      text += ", updates refused:";
      for (const auto& [code, count] : refused_) text += fmt::format(" {} x result {}", count, code);
    }
    if (launched_ > 0) {
      const double n = static_cast<double>(launched_);
      text += fmt::format("; per graph {:.1f} nodes, host us: capturing {:.1f}, ending {:.1f}, updating {:.1f}, "
                          "launching {:.1f}",
                          phases_.nodes / n, 1e6 * phases_.capturing / n, 1e6 * phases_.ending / n,
                          1e6 * phases_.updating / n, 1e6 * phases_.launching / n);
    }
    return text;
  }

 private:
  struct Entry {
    cudaGraphExec_t exec;
    std::size_t nodes;
  };
  std::vector<Entry> execs_;
  long long launched_ = 0, updated_ = 0, instantiated_ = 0;
  std::map<int, long long> refused_;  // by cudaGraphExecUpdateResult
  Phases phases_;
};

// Scratch blocks of one primitive, given back when it returns (see kernels::ScratchSpace).
class Scratch final : public kernels::ScratchSpace {
 public:
  Scratch(CachingAllocator& allocator, Tickets& tickets) : allocator_(allocator), tickets_(tickets) {}
  ~Scratch() {
    for (void* p : blocks_) allocator_.deallocate(p);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  double* doubles(std::size_t count) override {
    blocks_.reserve(blocks_.size() + 1);
    void* p = allocator_.allocate(std::max<std::size_t>(count, 1) * sizeof(double));
    blocks_.push_back(p);
    return static_cast<double*>(p);
  }
  unsigned* tickets(std::size_t count) override { return tickets_.get(count); }

 private:
  CachingAllocator& allocator_;
  Tickets& tickets_;
  std::vector<void*> blocks_;
};

// ---- helpers ------------------------------------------------------------------------------------
template <class F> void dispatch_float(DType dtype, const char* where, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: break;
  }
  DP_CHECK(false, "{}: floating-point tensor expected, got {}", where, dtype_name(dtype));
}

void check_on_device(const char* where, const Tensor& t) {
  DP_CHECK(t.device() == Device::cuda, "{}: tensor {} is not on the CUDA device", where, t.describe());
}
void check_on_device(const char* where, const Tensor* t) {
  if (t) check_on_device(where, *t);
}
void check_same_size(const char* where, const Tensor& a, const Tensor& out) {
  DP_CHECK(a.numel() == out.numel(), "{}: input {} and output {} differ in size", where, a.describe(),
           out.describe());
  DP_CHECK(a.dtype() == out.dtype(), "{}: input {} and output {} differ in dtype", where, a.describe(),
           out.describe());
}
template <class T> const T* cptr(const Tensor* t) { return t ? t->ptr<T>() : nullptr; }

cublasOperation_t to_cublas(Trans t) { return t == Trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N; }

int activate_device(int device) {
  DP_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

std::string describe_device(int device) {
  cudaDeviceProp properties{};
  DP_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
  return fmt::format("cuda:{} ({})", device, properties.name);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, const CudaBackendOptions& options)
      : device_(activate_device(device)),
        name_(describe_device(device)),
        cublas_(stream_.get()),
        allocator_(options.caching_allocator),
        tickets_(allocator_, stream_.get()),
        grouped_kernel_(grouped_kernel_enabled()),
        cublas_grouped_(options.cublas_grouped.value_or(cublas_grouped_enabled())),
        graphs_(options.graphs.value_or(graphs_enabled())) {
    allocator_.set_before_release([this] { submit_captured(true); });
    if (graphs_) {
      // cuBLAS's own workspace would be allocated anew for every captured graph; a fixed one
      // serves them all (cublasSetWorkspace; it holds until the stream is set again).
      // The allocator's, freed with it.
      void* workspace = allocator_.allocate(kCublasWorkspaceBytes);
      DP_CUBLAS_CHECK(cublasSetWorkspace(cublas_.get(), workspace, kCublasWorkspaceBytes));
    }
  }

  ~CudaBackend() override {
    abandon_step();  // a step still being captured (its scope was not left through end) never runs
    // Let queued work finish before its memory goes back to CUDA; errors cannot be reported here.
    (void)cudaStreamSynchronize(stream_.get());
  }
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda; }
  std::string name() const override { return name_; }
  std::string step_statistics() const override {
    return graphs_ ? execs_.statistics() : "graphs off (each launch issued as it comes)";
  }

  // TF32: cuBLAS's tensor-op math mode for its f32 products (f64 products are unaffected), and
  // the grouped kernel reduces its f32 operands to TF32 itself (to_tf32, as the CPU emulation).
  void set_matmul_precision(MatmulPrecision precision) override {
    DP_CUBLAS_CHECK(cublasSetMathMode(
        cublas_.get(), precision == MatmulPrecision::tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    matmul_precision_ = precision;
  }

  // ---- memory -----------------------------------------------------------------------------------
  void* allocate(std::size_t bytes) override { return allocator_.allocate(bytes); }
  void deallocate(void* ptr) noexcept override { allocator_.deallocate(ptr); }

  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) override {
    if (bytes == 0) return;
    if (dst_device == Device::cpu && src_device == Device::cpu) {
      std::memcpy(dst, src, bytes);
      return;
    }
    const cudaMemcpyKind kind = dst_device == Device::cuda
                                    ? (src_device == Device::cuda ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                    : cudaMemcpyDeviceToHost;
    // Host to device: through the page-locked ring (UploadRing), so the copy never waits for the
    // stream and the caller may reuse src at once. Memory staging_buffer handed out is sent as it
    // is; other host memory is copied into a slot first. Uploads over the ring's largest slot
    // (parameters and checkpoints, not steps) go from pageable memory, where cudaMemcpyAsync
    // returns once the driver has staged the source.
    if (kind == cudaMemcpyHostToDevice) {
      if (uploads_.holds(src, bytes)) {
        uploads_.send(dst, src, bytes, stream_.get(), capturing_);
        return;
      }
      if (void* slot = acquire_upload(bytes)) {
        std::memcpy(slot, src, bytes);
        uploads_.send(dst, slot, bytes, stream_.get(), capturing_);
        return;
      }
    }
    if (kind == cudaMemcpyDeviceToDevice) {
      if (capturing_) {  // a kernel node: see fill
        kernels::copy_rows(stream_.get(), 1, bytes, src, bytes, dst, bytes);
        return;
      }
      DP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream_.get()));
      return;
    }
    // The host reads a download at once, and a copy from pageable memory cannot be part of a
    // graph: the step captured so far is launched first, and a new capture starts after the copy.
    submit_captured(true);
    DP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream_.get()));
    // A device-to-host copy must be complete when we return (the host reads dst at once).
    if (kind == cudaMemcpyDeviceToHost) DP_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    resume_capture();
  }

  // A page-locked slot of the upload ring: the caller writes an upload there and sends it with
  // copy_bytes, which then copies nothing on the host.
  void* staging_buffer(std::size_t bytes) override { return acquire_upload(bytes); }

  // ---- steps as CUDA graphs -----------------------------------------------------------------
  // begin_step starts capturing the stream (relaxed mode: the caching allocator may cudaMalloc
  // meanwhile); end_step ends the capture and launches the graph, updated from the last one of
  // its shape (GraphExecs). What a capture cannot hold submits the part captured so far first:
  // downloads, uploads from pageable memory, synchronize(), an upload slot still read by the
  // step or to be allocated, the allocator giving its cache back to CUDA. A training step of
  // small graphs is about 130 launches, each costing the host several microseconds in the
  // driver; as one graph they cost a capture and an update (docs/PERFORMANCE.md).
  void begin_step() override {
    in_step_ = true;
    resume_capture();
  }
  void end_step() override {
    in_step_ = false;
    submit_captured(true);
  }
  void abandon_step() noexcept override {
    in_step_ = false;
    try {
      submit_captured(false);
    } catch (...) {  // nothing to report from here: the step's error is already on its way
    }
  }

  // Inside a captured step, zero fills and device-to-device copies are kernels, not memset and
  // memcpy nodes: a memset or 2-D memcpy node of another size can make cudaGraphExecUpdate refuse
  // the next step's graph (and instantiating one costs far more than updating it), while a
  // kernel node takes any grid and arguments. Outside captures the driver's own calls are used.
  void fill(Tensor& out, double value) override {
    check_on_device("fill", out);
    if (out.numel() == 0) return;
    if (value == 0.0 && !std::signbit(value) && !capturing_) {  // all-zero bytes in every dtype
      DP_CUDA_CHECK(cudaMemsetAsync(out.data(), 0, out.bytes(), stream_.get()));
      return;
    }
    kernels::fill(stream_.get(), out.data(), out.dtype(), out.numel(), value);
  }

  void copy_2d(int64_t rows, int64_t cols, DType dtype, const void* src, int64_t src_ld, void* dst, int64_t dst_ld,
               double alpha, double beta) override {
    if (rows <= 0 || cols <= 0) return;
    dispatch_float(dtype, "copy_2d", [&](auto zero) {
      using T = decltype(zero);
      const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
      if (a == T(1) && b == T(0) && src != dst && src_ld >= cols && dst_ld >= cols) {
        const std::size_t es = sizeof(T);
        if (capturing_) {  // a kernel node: see fill
          kernels::copy_rows(stream_.get(), rows, static_cast<std::size_t>(cols) * es, src,
                             static_cast<std::size_t>(src_ld) * es, dst, static_cast<std::size_t>(dst_ld) * es);
          return;
        }
        DP_CUDA_CHECK(cudaMemcpy2DAsync(dst, static_cast<std::size_t>(dst_ld) * es, src,
                                        static_cast<std::size_t>(src_ld) * es, static_cast<std::size_t>(cols) * es,
                                        static_cast<std::size_t>(rows), cudaMemcpyDeviceToDevice, stream_.get()));
        return;
      }
      kernels::copy_2d<T>(stream_.get(), rows, cols, static_cast<const T*>(src), src_ld, static_cast<T*>(dst), dst_ld,
                          a, b);
    });
  }

  // ---- dense products ---------------------------------------------------------------------------
  // cuBLAS is column-major. A row-major matrix with leading dimension ld is, read column-major, its
  // transpose with the same ld, so row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T:
  // call cuBLAS with the operands swapped (B first), the same transpose flags, and m and n swapped.
  void gemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a, int64_t lda,
            const void* b, int64_t ldb, double beta, void* c, int64_t ldc, DType dtype) override {
    if (m == 0 || n == 0) return;
    dispatch_float(dtype, "gemm", [&](auto zero) {
      using T = decltype(zero);
      if (k == 0) {  // C = beta C, overwriting when beta = 0
        kernels::scale_2d<T>(stream_.get(), m, n, static_cast<T*>(c), ldc, static_cast<T>(beta));
        return;
      }
      const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
      if constexpr (std::is_same_v<T, float>) {
        DP_CUBLAS_CHECK(cublasSgemm_64(cublas_.get(), to_cublas(trans_b), to_cublas(trans_a), n, m, k, &al,
                                       static_cast<const float*>(b), ldb, static_cast<const float*>(a), lda, &be,
                                       static_cast<float*>(c), ldc));
      } else {
        DP_CUBLAS_CHECK(cublasDgemm_64(cublas_.get(), to_cublas(trans_b), to_cublas(trans_a), n, m, k, &al,
                                       static_cast<const double*>(b), ldb, static_cast<const double*>(a), lda, &be,
                                       static_cast<double*>(c), ldc));
      }
    });
  }

  void gemm_strided_batched(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                            const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b,
                            double beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch,
                            DType dtype) override {
    if (m == 0 || n == 0 || batch == 0) return;
    dispatch_float(dtype, "gemm_strided_batched", [&](auto zero) {
      using T = decltype(zero);
      if (k == 0) {
        for (int64_t i = 0; i < batch; ++i)
          kernels::scale_2d<T>(stream_.get(), m, n, static_cast<T*>(c) + i * stride_c, ldc, static_cast<T>(beta));
        return;
      }
      const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
      if constexpr (std::is_same_v<T, float>) {
        DP_CUBLAS_CHECK(cublasSgemmStridedBatched_64(
            cublas_.get(), to_cublas(trans_b), to_cublas(trans_a), n, m, k, &al, static_cast<const float*>(b), ldb,
            stride_b, static_cast<const float*>(a), lda, stride_a, &be, static_cast<float*>(c), ldc, stride_c, batch));
      } else {
        DP_CUBLAS_CHECK(cublasDgemmStridedBatched_64(
            cublas_.get(), to_cublas(trans_b), to_cublas(trans_a), n, m, k, &al, static_cast<const double*>(b), ldb,
            stride_b, static_cast<const double*>(a), lda, stride_a, &be, static_cast<double*>(c), ldc, stride_c,
            batch));
      }
    });
  }

  // The groups with work: at least one row (rows_only: a row of no columns still reduces to 0) or
  // one element.
  static std::vector<RowsGroup> nonempty_groups(const char* what, const std::vector<RowsGroup>& groups, bool rows_only) {
    std::vector<RowsGroup> work;
    work.reserve(groups.size());
    for (const RowsGroup& g : groups) {
      DP_CHECK(g.rows >= 0 && g.cols >= 0, "{}: a group of {} x {} elements", what, g.rows, g.cols);
      if (g.rows == 0 || (!rows_only && g.cols == 0)) continue;
      DP_CHECK(g.out, "{}: a group of {} x {} elements without an output", what, g.rows, g.cols);
      work.push_back(g);
    }
    return work;
  }

  // Whether the grouped kernels (plain tiles, 32-bit sizes) take this group: at most 2^20
  // multiply-adds and every size and leading dimension below 2^31; larger groups go to cuBLAS.
  static bool fits_grouped_kernel(const GemmGroup& g) {
    return g.m * g.n * std::max<int64_t>(g.k, 1) <= (int64_t{1} << 20) &&
           std::max({g.lda, g.ldb, g.ldc, g.k, g.m, g.n}) < (int64_t{1} << 31);
  }

  // Small groups (per-graph blocks) in one kernel launch per 48 groups; a group too large for
  // that kernel's plain tiles goes to cuBLAS on its own.
  void gemm_grouped(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha, double beta,
                    DType dtype) override {
    if (!grouped_kernel_) {
      Backend::gemm_grouped(trans_a, trans_b, groups, alpha, beta, dtype);
      return;
    }
    std::vector<GemmGroup> small, large;
    small.reserve(groups.size());
    for (const GemmGroup& g : groups) {
      if (g.m == 0 || g.n == 0) continue;
      (fits_grouped_kernel(g) ? small : large).push_back(g);
    }
    if (!large.empty()) gemm_large_groups(trans_a, trans_b, large, alpha, beta, dtype);
    if (small.empty()) return;
    dispatch_float(dtype, "gemm_grouped", [&](auto zero) {
      using T = decltype(zero);
      kernels::gemm_grouped<T>(stream_.get(), trans_a, trans_b, small.data(), static_cast<int64_t>(small.size()),
                               static_cast<T>(alpha), static_cast<T>(beta),
                               matmul_precision_ == MatmulPrecision::tf32);
    });
  }

  // The groups of a gemm_grouped call too large for the grouped kernel (D&D's per-graph products
  // with the largest graph's cluster count: 20 products of about 300 x 300 x 1437 a call). With
  // cublas_grouped_ (CudaBackendOptions, DIFFPOOL_CUDA_CUBLAS_GROUPED=1): one cuBLAS grouped
  // batched call, every graph a group of its own (the sizes differ), instead of one call per
  // graph; the handle's math mode makes its f32 products TF32 under tf32, as for cublasSgemm. Its
  // operand and output pointers are a device array, uploaded through the page-locked ring (no
  // wait for the stream) into scratch that is given back when this returns (stream order keeps it
  // until the call has run). Per-graph calls where it is off, there is one group, a group has
  // k = 0 (cuBLAS would not write beta C), or no staging memory can be had.
  void gemm_large_groups(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& large, double alpha,
                         double beta, DType dtype) {
    const std::size_t count = large.size();
    bool one_call = cublas_grouped_ && count >= 2;
    for (const GemmGroup& g : large) one_call = one_call && g.k > 0;
    const std::size_t bytes = 3 * count * sizeof(void*);
    void* host = one_call ? acquire_upload(bytes) : nullptr;
    if (!host) {
      for (const GemmGroup& g : large)
        gemm(trans_a, trans_b, g.m, g.n, g.k, alpha, g.a, g.lda, g.b, g.ldb, beta, g.c, g.ldc, dtype);
      return;
    }
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T (see gemm): B is cuBLAS's
    // first operand, m and n swap.
    auto** pointers = static_cast<const void**>(host);
    std::vector<cublasOperation_t> first_trans(count, to_cublas(trans_b)), second_trans(count, to_cublas(trans_a));
    std::vector<int64_t> m(count), n(count), k(count), ld_first(count), ld_second(count), ldc(count), sizes(count, 1);
    for (std::size_t i = 0; i < count; ++i) {
      const GemmGroup& g = large[i];
      pointers[i] = g.b;
      pointers[count + i] = g.a;
      pointers[2 * count + i] = g.c;
      m[i] = g.n;
      n[i] = g.m;
      k[i] = g.k;
      ld_first[i] = g.ldb;
      ld_second[i] = g.lda;
      ldc[i] = g.ldc;
    }
    Scratch scratch(allocator_, tickets_);
    auto** device = reinterpret_cast<void**>(scratch.doubles((bytes + sizeof(double) - 1) / sizeof(double)));
    uploads_.send(device, host, bytes, stream_.get(), capturing_);
    dispatch_float(dtype, "gemm_grouped", [&](auto zero) {
      using T = decltype(zero);
      const std::vector<T> alphas(count, static_cast<T>(alpha)), betas(count, static_cast<T>(beta));
      T** typed = reinterpret_cast<T**>(device);  // [first operands | second operands | outputs]
      const T* const* operands = typed;
      if constexpr (std::is_same_v<T, float>) {
        DP_CUBLAS_CHECK(cublasSgemmGroupedBatched_64(
            cublas_.get(), first_trans.data(), second_trans.data(), m.data(), n.data(), k.data(), alphas.data(),
            operands, ld_first.data(), operands + count, ld_second.data(), betas.data(), typed + 2 * count,
            ldc.data(), static_cast<int64_t>(count), sizes.data()));
      } else {
        DP_CUBLAS_CHECK(cublasDgemmGroupedBatched_64(
            cublas_.get(), first_trans.data(), second_trans.data(), m.data(), n.data(), k.data(), alphas.data(),
            operands, ld_first.data(), operands + count, ld_second.data(), betas.data(), typed + 2 * count,
            ldc.data(), static_cast<int64_t>(count), sizes.data()));
      }
    });
  }

  // Runs of small groups in one launch per 48 groups (kernels_gemm.cu), a group too large for
  // the kernel's plain tiles by cuBLAS with beta 1 between them, so the groups add in order.
  void gemm_grouped_sum(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, double alpha,
                        DType dtype) override {
    if (!grouped_kernel_) {
      Backend::gemm_grouped_sum(trans_a, trans_b, groups, alpha, dtype);
      return;
    }
    std::vector<GemmGroup> run;
    run.reserve(groups.size());
    int64_t m = 0, n = 0;
    const auto flush = [&] {
      if (run.empty()) return;
      dispatch_float(dtype, "gemm_grouped_sum", [&](auto zero) {
        using T = decltype(zero);
        kernels::gemm_grouped_sum<T>(stream_.get(), trans_a, trans_b, run.data(), static_cast<int64_t>(run.size()), m,
                                     n, static_cast<T>(alpha), matmul_precision_ == MatmulPrecision::tf32);
      });
      run.clear();
      m = n = 0;
    };
    for (const GemmGroup& g : groups) {
      DP_CHECK(g.c == groups.front().c && g.ldc == groups.front().ldc,
               "gemm_grouped_sum: the groups must share one output (c and ldc)");
      if (g.m == 0 || g.n == 0 || g.k == 0) continue;  // adds nothing
      if (fits_grouped_kernel(g)) {
        run.push_back(g);
        m = std::max(m, g.m), n = std::max(n, g.n);
      } else {
        flush();
        gemm(trans_a, trans_b, g.m, g.n, g.k, alpha, g.a, g.lda, g.b, g.ldb, 1.0, g.c, g.ldc, dtype);
      }
    }
    flush();
  }

  // A layer's linear part (bias, x W_x, x2 W_x2) in one launch of the grouped-sum kernel, its
  // tiles starting from the bias, where every group fits the kernel (the small batches of
  // ENZYMES-like datasets); otherwise the default's broadcast and cuBLAS calls.
  void gemm_sum_from_row(Trans trans_a, Trans trans_b, const std::vector<GemmGroup>& groups, const void* start,
                         double alpha, DType dtype) override {
    if (groups.empty()) return;
    const GemmGroup& first = groups.front();
    bool fits = grouped_kernel_ && first.m > 0 && first.n > 0;
    for (const GemmGroup& g : groups) {
      DP_CHECK(g.c == first.c && g.ldc == first.ldc && g.m == first.m && g.n == first.n,
               "gemm_sum_from_row: the groups must share one output (c, ldc, m and n)");
      fits = fits && fits_grouped_kernel(g);
    }
    if (!fits) {
      Backend::gemm_sum_from_row(trans_a, trans_b, groups, start, alpha, dtype);
      return;
    }
    dispatch_float(dtype, "gemm_sum_from_row", [&](auto zero) {
      using T = decltype(zero);
      kernels::gemm_grouped_sum<T>(stream_.get(), trans_a, trans_b, groups.data(), static_cast<int64_t>(groups.size()),
                                   first.m, first.n, static_cast<T>(alpha), matmul_precision_ == MatmulPrecision::tf32,
                                   /*from_start=*/true, static_cast<const T*>(start));
    });
  }

  // A linear layer's weight and bias gradients in one launch of the column-reduction kernel
  // where the terms share the upstream gradient and are small (a batch of small graphs: products
  // of k = 652 rows into 30 x 30 blocks on ENZYMES, where cuBLAS would take a call per term and
  // reduce_cols one more); otherwise the default's cuBLAS calls and column sum.
  void weight_gradients(const std::vector<GemmGroup>& terms, double beta, const RowsGroup* bias, double bias_beta,
                        DType dtype) override {
    bool fits = grouped_kernel_ && !terms.empty() && terms.size() <= static_cast<std::size_t>(kernels::kMaxWeightTerms);
    for (const GemmGroup& t : terms) {
      const GemmGroup& first = terms.front();
      fits = fits && t.b == first.b && t.ldb == first.ldb && t.n == first.n && t.k == first.k && fits_grouped_kernel(t);
    }
    if (fits && bias)
      fits = bias->a == terms.front().b && bias->rows == terms.front().k && bias->cols == terms.front().n &&
             terms.front().ldb == terms.front().n && bias->out;
    if (!fits) {
      Backend::weight_gradients(terms, beta, bias, bias_beta, dtype);
      return;
    }
    const GemmGroup& first = terms.front();
    dispatch_float(dtype, "weight_gradients", [&](auto zero) {
      using T = decltype(zero);
      Scratch scratch(allocator_, tickets_);
      kernels::weight_gradients<T>(stream_.get(), scratch, terms.data(), static_cast<int64_t>(terms.size()), first.k,
                                   first.n, static_cast<const T*>(first.b), first.ldb, beta,
                                   bias ? static_cast<T*>(bias->out) : nullptr, bias_beta,
                                   matmul_precision_ == MatmulPrecision::tf32);
    });
  }

  // Every group in one launch per 64 groups (kernels_reduce.cu); DIFFPOOL_CUDA_GEMM_GROUPED=0
  // turns these off with the grouped products (one launch or two per group, as before).
  void dot_grouped(const std::vector<DotGroup>& groups, double alpha, double beta, DType dtype) override {
    if (!grouped_kernel_) {
      Backend::dot_grouped(groups, alpha, beta, dtype);
      return;
    }
    if (groups.empty()) return;
    for (const DotGroup& g : groups) DP_CHECK(g.n >= 0 && g.out, "dot_grouped: a group without an output or of {} elements", g.n);
    dispatch_float(dtype, "dot_grouped", [&](auto zero) {
      using T = decltype(zero);
      kernels::dot_grouped<T>(stream_.get(), groups.data(), static_cast<int64_t>(groups.size()), alpha, beta);
    });
  }
  // Row-wise groups (per-graph blocks): every group in one launch per 64 groups, groups of no
  // elements dropped (no rows, for reduce_rows_grouped). DIFFPOOL_CUDA_GEMM_GROUPED=0 turns these
  // off too (one launch per group, as the default implementation).
  void map_grouped(MapOp op, const std::vector<RowsGroup>& groups, Broadcast b_mode, double c, double alpha,
                   double beta, DType dtype) override {
    DP_CHECK(op < MapOp::count, "map_grouped: invalid op {}", static_cast<int>(op));
    if (!grouped_kernel_) {
      Backend::map_grouped(op, groups, b_mode, c, alpha, beta, dtype);
      return;
    }
    const std::vector<RowsGroup> work = nonempty_groups("map_grouped", groups, false);
    if (work.empty()) return;
    dispatch_float(dtype, "map_grouped", [&](auto zero) {
      using T = decltype(zero);
      kernels::map_grouped<T>(stream_.get(), op, work.data(), static_cast<int64_t>(work.size()), b_mode,
                              static_cast<T>(c), static_cast<T>(alpha), static_cast<T>(beta));
    });
  }
  void reduce_cols_grouped_sum(const std::vector<RowsGroup>& groups, double alpha, DType dtype) override {
    if (!grouped_kernel_) {
      Backend::reduce_cols_grouped_sum(groups, alpha, dtype);
      return;
    }
    const std::vector<RowsGroup> work = nonempty_groups("reduce_cols_grouped_sum", groups, false);
    if (work.empty()) return;
    int64_t cols = 0;
    for (const RowsGroup& g : work) {
      DP_CHECK(g.out == work.front().out, "reduce_cols_grouped_sum: the groups must share one output");
      cols = std::max(cols, g.cols);
    }
    dispatch_float(dtype, "reduce_cols_grouped_sum", [&](auto zero) {
      using T = decltype(zero);
      kernels::reduce_cols_grouped_sum<T>(stream_.get(), work.data(), static_cast<int64_t>(work.size()), cols, alpha);
    });
  }
  void reduce_rows_grouped(Reduce kind, const std::vector<RowsGroup>& groups, double alpha, double beta,
                           DType dtype) override {
    if (!grouped_kernel_) {
      Backend::reduce_rows_grouped(kind, groups, alpha, beta, dtype);
      return;
    }
    const std::vector<RowsGroup> work = nonempty_groups("reduce_rows_grouped", groups, true);
    for (const RowsGroup& g : work)
      DP_CHECK(kind != Reduce::dot || g.b || g.cols == 0, "reduce_rows_grouped dot: a group without b");
    if (work.empty()) return;
    dispatch_float(dtype, "reduce_rows_grouped", [&](auto zero) {
      using T = decltype(zero);
      kernels::reduce_rows_grouped<T>(stream_.get(), kind, work.data(), static_cast<int64_t>(work.size()), alpha, beta);
    });
  }
  void softmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) override {
    if (!grouped_kernel_) {
      Backend::softmax_rows_grouped(groups, dtype);
      return;
    }
    const std::vector<RowsGroup> work = nonempty_groups("softmax_rows_grouped", groups, false);
    if (work.empty()) return;
    dispatch_float(dtype, "softmax_rows_grouped", [&](auto zero) {
      using T = decltype(zero);
      kernels::softmax_rows_grouped<T>(stream_.get(), work.data(), static_cast<int64_t>(work.size()));
    });
  }

  // ---- sparse x dense ---------------------------------------------------------------------------
  void spmm(const Csr& a, const Tensor& x, double alpha, double beta, Tensor& y) override {
    DP_CHECK(x.rows() == a.cols && y.rows() == a.rows && x.cols() == y.cols(), "spmm: A [{}, {}], x {}, y {}",
             a.rows, a.cols, x.describe(), y.describe());
    DP_CHECK(a.row_ptr.numel() == a.rows + 1, "spmm: row_ptr {} for {} rows", a.row_ptr.describe(), a.rows);
    check_all_on_device("spmm", {&a.row_ptr, &x, &y});
    if (a.nnz > 0) check_all_on_device("spmm", {&a.col_idx, &a.values});  // may be empty tensors otherwise
    const int64_t f = x.cols();
    DP_CHECK(f <= int64_t{65535} * 32, "spmm: {} features exceed the kernel's grid", f);
    if (a.rows == 0 || f == 0) return;
    dispatch_float(x.dtype(), "spmm", [&](auto zero) {
      using T = decltype(zero);
      kernels::spmm<T>(stream_.get(), a.rows, f, a.row_ptr.ptr<int32_t>(),
                       a.nnz > 0 ? a.col_idx.ptr<int32_t>() : nullptr, a.nnz > 0 ? a.values.ptr<T>() : nullptr,
                       x.ptr<T>(), static_cast<T>(alpha), static_cast<T>(beta), y.ptr<T>());
    });
  }

  // Every group in one launch per 48 groups (kernels_reduce.cu); DIFFPOOL_CUDA_GEMM_GROUPED=0
  // turns it off too (one spmm per group).
  void spmm_grouped(const std::vector<SpmmGroup>& groups, double alpha, double beta, DType dtype) override {
    if (!grouped_kernel_) {
      Backend::spmm_grouped(groups, alpha, beta, dtype);
      return;
    }
    std::vector<SpmmGroup> work;
    work.reserve(groups.size());
    for (const SpmmGroup& g : groups) {
      DP_CHECK(g.a && g.cols >= 0, "spmm_grouped: a group without its sparse matrix or of {} columns", g.cols);
      const Csr& a = *g.a;
      DP_CHECK(a.row_ptr.numel() == a.rows + 1, "spmm_grouped: row_ptr {} for {} rows", a.row_ptr.describe(), a.rows);
      if (a.rows == 0 || g.cols == 0) continue;
      DP_CHECK(g.x && g.y, "spmm_grouped: a group of {} x {} without its operands", a.rows, g.cols);
      DP_CHECK(g.cols <= int64_t{65535} * 32, "spmm_grouped: {} columns exceed the kernel's tiles", g.cols);
      check_all_on_device("spmm_grouped", {&a.row_ptr});
      if (a.nnz > 0) check_all_on_device("spmm_grouped", {&a.col_idx, &a.values});
      work.push_back(g);
    }
    if (work.empty()) return;
    dispatch_float(dtype, "spmm_grouped", [&](auto zero) {
      using T = decltype(zero);
      kernels::spmm_grouped<T>(stream_.get(), work.data(), static_cast<int64_t>(work.size()), static_cast<T>(alpha),
                               static_cast<T>(beta));
    });
  }

  // ---- elementwise ------------------------------------------------------------------------------
  void map(MapOp op, const Tensor& a, const Tensor* b, Broadcast b_mode, double c, double alpha, double beta,
           Tensor& out) override {
    DP_CHECK(op < MapOp::count, "map: invalid op {}", static_cast<int>(op));
    const int64_t rows = out.rows(), cols = out.cols();
    if (op != MapOp::broadcast) {
      check_same_size(map_op_name(op), a, out);
      check_on_device(map_op_name(op), a);
    }
    check_on_device(map_op_name(op), out);
    if (b) {
      check_on_device(map_op_name(op), *b);
      DP_CHECK(b->dtype() == out.dtype(), "map {}: b {} vs out {}", map_op_name(op), b->describe(), out.describe());
      const int64_t expected = b_mode == Broadcast::full ? rows * cols
                             : b_mode == Broadcast::row  ? cols
                             : b_mode == Broadcast::col  ? rows
                                                         : 1;
      DP_CHECK(b->numel() == expected, "map {}: b {} does not broadcast to {}", map_op_name(op), b->describe(),
               out.describe());
    }
    if (out.numel() == 0) return;
    dispatch_float(out.dtype(), map_op_name(op), [&](auto zero) {
      using T = decltype(zero);
      kernels::map<T>(stream_.get(), op, rows, cols, op == MapOp::broadcast ? nullptr : a.ptr<T>(), cptr<T>(b),
                      b_mode, static_cast<T>(c), static_cast<T>(alpha), static_cast<T>(beta), out.ptr<T>());
    });
  }

  void reduce_rows(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    const int64_t rows = a.rows(), cols = a.cols();
    DP_CHECK(out.numel() == rows, "reduce_rows: a {} out {}", a.describe(), out.describe());
    check_reduce_inputs("reduce_rows", kind, a, b, out);
    if (rows == 0) return;
    dispatch_float(a.dtype(), "reduce_rows", [&](auto zero) {
      using T = decltype(zero);
      kernels::reduce_rows<T>(stream_.get(), kind, rows, cols, a.ptr<T>(), cptr<T>(b), alpha, beta, out.ptr<T>());
    });
  }

  void reduce_cols(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    const int64_t rows = a.rows(), cols = a.cols();
    DP_CHECK(out.numel() == cols, "reduce_cols: a {} out {}", a.describe(), out.describe());
    DP_CHECK(kind != Reduce::max, "reduce_cols: max is not supported");
    check_reduce_inputs("reduce_cols", kind, a, b, out);
    dispatch_float(a.dtype(), "reduce_cols", [&](auto zero) {
      using T = decltype(zero);
      Scratch scratch(allocator_, tickets_);
      kernels::reduce_cols<T>(stream_.get(), scratch, kind, rows, cols, a.ptr<T>(), cptr<T>(b), alpha, beta,
                              out.ptr<T>());
    });
  }

  void reduce_all(Reduce kind, const Tensor& a, const Tensor* b, double alpha, double beta, Tensor& out) override {
    DP_CHECK(out.numel() == 1, "reduce_all: out {}", out.describe());
    DP_CHECK(kind != Reduce::max, "reduce_all: max is not supported");
    check_reduce_inputs("reduce_all", kind, a, b, out);
    dispatch_float(a.dtype(), "reduce_all", [&](auto zero) {
      using T = decltype(zero);
      Scratch scratch(allocator_, tickets_);
      kernels::reduce_all<T>(stream_.get(), scratch, kind, a.numel(), a.ptr<T>(), cptr<T>(b), alpha, beta,
                             out.ptr<T>());
    });
  }

  // ---- graphs -------------------------------------------------------------------------------------
  void segment_reduce_forward(SegmentReduce kind, const Tensor& x, const Tensor& offsets, Tensor& y,
                              Tensor* argmax) override {
    const int64_t segments = offsets.numel() - 1, f = x.cols();
    DP_CHECK(segments >= 0 && y.rows() == segments && y.cols() == f, "segment_reduce: x {}, {} segments, y {}",
             x.describe(), segments, y.describe());
    DP_CHECK(kind != SegmentReduce::max || (argmax && argmax->numel() == y.numel()),
             "segment_reduce max needs an argmax tensor of y's size");
    DP_CHECK(x.dtype() == y.dtype(), "segment_reduce: x {} and y {} differ in dtype", x.describe(), y.describe());
    check_segment_tensors("segment_reduce", offsets, {&x, &y, kind == SegmentReduce::max ? argmax : nullptr});
    DP_CHECK(f <= int64_t{65535} * 32, "segment_reduce: {} features exceed the kernel's grid", f);
    if (segments == 0 || f == 0) return;
    dispatch_float(x.dtype(), "segment_reduce", [&](auto zero) {
      using T = decltype(zero);
      kernels::segment_reduce_forward<T>(stream_.get(), kind, segments, f, offsets.ptr<int32_t>(), x.ptr<T>(),
                                         y.ptr<T>(),
                                         kind == SegmentReduce::max ? argmax->ptr<int32_t>() : nullptr);
    });
  }

  void link_bce_forward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, Tensor& loss) override {
    DP_CHECK(a.rows == s.rows() && loss.rows() == s.rows() && loss.numel() == s.rows() && s.dtype() == loss.dtype(),
             "link_bce: s {}, A [{}, {}], loss {}", s.describe(), a.rows, a.cols, loss.describe());
    check_all_on_device("link_bce", {&s, &loss, &a.row_ptr, &offsets});
    if (a.nnz > 0) check_all_on_device("link_bce", {&a.col_idx});
    dispatch_float(s.dtype(), "link_bce", [&](auto zero) {
      using T = decltype(zero);
      kernels::link_bce_forward<T>(stream_.get(), s.rows(), s.cols(), offsets.numel() - 1, s.ptr<T>(),
                                   a.row_ptr.ptr<int32_t>(), a.col_idx.ptr<int32_t>(), offsets.ptr<int32_t>(), eps,
                                   loss.ptr<T>());
    });
  }

  void link_bce_backward(const Tensor& s, const Csr& a, const Tensor& offsets, double eps, const Tensor& w, double beta,
                         Tensor& ds) override {
    DP_CHECK(a.rows == s.rows() && w.numel() == s.rows() && ds.rows() == s.rows() && ds.cols() == s.cols() &&
                 s.dtype() == ds.dtype() && w.dtype() == ds.dtype(),
             "link_bce_backward: s {}, A [{}, {}], w {}, ds {}", s.describe(), a.rows, a.cols, w.describe(), ds.describe());
    check_all_on_device("link_bce_backward", {&s, &w, &ds, &a.row_ptr, &offsets});
    if (a.nnz > 0) check_all_on_device("link_bce_backward", {&a.col_idx});
    dispatch_float(s.dtype(), "link_bce_backward", [&](auto zero) {
      using T = decltype(zero);
      kernels::link_bce_backward<T>(stream_.get(), s.rows(), s.cols(), offsets.numel() - 1, s.ptr<T>(),
                                    a.row_ptr.ptr<int32_t>(), a.col_idx.ptr<int32_t>(), offsets.ptr<int32_t>(), eps,
                                    w.ptr<T>(), beta, ds.ptr<T>());
    });
  }

  void segment_reduce_backward(SegmentReduce kind, const Tensor& dy, const Tensor& offsets, const Tensor* argmax,
                               Tensor& dx) override {
    const int64_t segments = offsets.numel() - 1, f = dx.cols();
    DP_CHECK(segments >= 0 && dy.numel() == segments * f, "segment_reduce_backward: dy {}, {} segments, dx {}",
             dy.describe(), segments, dx.describe());
    DP_CHECK(kind != SegmentReduce::max || (argmax && argmax->numel() == dy.numel()),
             "segment_reduce_backward max needs the forward's argmax");
    DP_CHECK(dy.dtype() == dx.dtype(), "segment_reduce_backward: dy {} and dx {} differ in dtype", dy.describe(),
             dx.describe());
    check_segment_tensors("segment_reduce_backward", offsets,
                          {&dy, &dx, kind == SegmentReduce::max ? argmax : nullptr});
    DP_CHECK(f <= int64_t{65535} * 32, "segment_reduce_backward: {} features exceed the kernel's grid", f);
    if (segments == 0 || f == 0) return;
    dispatch_float(dx.dtype(), "segment_reduce_backward", [&](auto zero) {
      using T = decltype(zero);
      kernels::segment_reduce_backward<T>(stream_.get(), kind, segments, f, offsets.ptr<int32_t>(), dy.ptr<T>(),
                                          kind == SegmentReduce::max ? argmax->ptr<int32_t>() : nullptr,
                                          dx.ptr<T>());
    });
  }

  // ---- fused row and column operations ----------------------------------------------------------
  void softmax_rows_forward(const Tensor& x, Tensor& y) override {
    check_same_size("softmax_rows", x, y);
    check_all_on_device("softmax_rows", {&x, &y});
    dispatch_float(x.dtype(), "softmax_rows", [&](auto zero) {
      using T = decltype(zero);
      kernels::softmax_rows_forward<T>(stream_.get(), x.rows(), x.cols(), x.ptr<T>(), y.ptr<T>());
    });
  }

  void softmax_rows_backward(const Tensor& dy, const Tensor& y, double beta, Tensor& dx) override {
    check_same_size("softmax_rows_backward", dy, y);
    check_same_size("softmax_rows_backward", y, dx);
    check_all_on_device("softmax_rows_backward", {&dy, &y, &dx});
    dispatch_float(y.dtype(), "softmax_rows_backward", [&](auto zero) {
      using T = decltype(zero);
      kernels::softmax_rows_backward<T>(stream_.get(), y.rows(), y.cols(), dy.ptr<T>(), y.ptr<T>(), beta,
                                        dx.ptr<T>());
    });
  }

  void l2_normalize_rows_forward(const Tensor& x, double eps, Tensor& y, Tensor& norms, Tensor* relu_out) override {
    check_same_size("l2_normalize_rows", x, y);
    DP_CHECK(norms.numel() == x.rows(), "l2_normalize_rows: x {} norms {}", x.describe(), norms.describe());
    check_all_on_device("l2_normalize_rows", {&x, &y, &norms});
    if (relu_out) {
      check_same_size("l2_normalize_rows", y, *relu_out);
      check_all_on_device("l2_normalize_rows", {relu_out});
    }
    dispatch_float(x.dtype(), "l2_normalize_rows", [&](auto zero) {
      using T = decltype(zero);
      kernels::l2_normalize_rows_forward<T>(stream_.get(), x.rows(), x.cols(), x.ptr<T>(), eps, y.ptr<T>(),
                                            norms.ptr<T>(), relu_out ? relu_out->ptr<T>() : nullptr);
    });
  }

  void l2_normalize_rows_backward(const Tensor& dy, const Tensor& y, const Tensor& norms, double eps, bool relu,
                                  double beta, Tensor& dx) override {
    check_same_size("l2_normalize_rows_backward", dy, y);
    check_same_size("l2_normalize_rows_backward", y, dx);
    DP_CHECK(norms.numel() == y.rows(), "l2_normalize_rows_backward: y {} norms {}", y.describe(), norms.describe());
    check_all_on_device("l2_normalize_rows_backward", {&dy, &y, &norms, &dx});
    dispatch_float(y.dtype(), "l2_normalize_rows_backward", [&](auto zero) {
      using T = decltype(zero);
      kernels::l2_normalize_rows_backward<T>(stream_.get(), y.rows(), y.cols(), dy.ptr<T>(), y.ptr<T>(),
                                             norms.ptr<T>(), eps, relu, beta, dx.ptr<T>());
    });
  }

  void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, bool training, double momentum,
                          double eps, Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& mean,
                          Tensor& invstd) override {
    check_same_size("batch_norm", x, y);
    const int64_t cols = x.cols();
    for (const Tensor* t : std::initializer_list<const Tensor*>{&gamma, &beta, &running_mean, &running_var, &mean, &invstd})
      DP_CHECK(t->numel() == cols, "batch_norm: per-column tensor {} for x {}", t->describe(), x.describe());
    check_all_on_device("batch_norm", {&x, &gamma, &beta, &running_mean, &running_var, &y, &mean, &invstd});
    dispatch_float(x.dtype(), "batch_norm", [&](auto zero) {
      using T = decltype(zero);
      Scratch scratch(allocator_, tickets_);
      kernels::batch_norm_forward<T>(stream_.get(), scratch, x.rows(), cols, x.ptr<T>(), gamma.ptr<T>(),
                                     beta.ptr<T>(), training, momentum, eps, running_mean.ptr<T>(),
                                     running_var.ptr<T>(), y.ptr<T>(), mean.ptr<T>(), invstd.ptr<T>());
    });
  }

  void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& invstd, double beta, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override {
    check_same_size("batch_norm_backward", dy, x);
    check_same_size("batch_norm_backward", x, dx);
    const int64_t cols = x.cols();
    for (const Tensor* t : std::initializer_list<const Tensor*>{&gamma, &mean, &invstd, &dgamma, &dbeta})
      DP_CHECK(t->numel() == cols, "batch_norm_backward: per-column tensor {} for x {}", t->describe(),
               x.describe());
    check_all_on_device("batch_norm_backward", {&dy, &x, &gamma, &mean, &invstd, &dx, &dgamma, &dbeta});
    dispatch_float(x.dtype(), "batch_norm_backward", [&](auto zero) {
      using T = decltype(zero);
      Scratch scratch(allocator_, tickets_);
      kernels::batch_norm_backward<T>(stream_.get(), scratch, x.rows(), cols, dy.ptr<T>(), x.ptr<T>(), gamma.ptr<T>(),
                                      mean.ptr<T>(), invstd.ptr<T>(), beta, dx.ptr<T>(), dgamma.ptr<T>(),
                                      dbeta.ptr<T>());
    });
  }

  void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& losses) override {
    const int64_t rows = logits.rows(), cols = logits.cols();
    DP_CHECK(labels.numel() == rows && losses.numel() == rows, "cross_entropy: logits {}, labels {}, losses {}",
             logits.describe(), labels.describe(), losses.describe());
    check_same_size("cross_entropy", logits, probs);
    check_all_on_device("cross_entropy", {&logits, &labels, &probs, &losses});
    dispatch_float(logits.dtype(), "cross_entropy", [&](auto zero) {
      using T = decltype(zero);
      kernels::cross_entropy_forward<T>(stream_.get(), rows, cols, logits.ptr<T>(), labels.ptr<int32_t>(),
                                        probs.ptr<T>(), losses.ptr<T>());
    });
  }

  void cross_entropy_backward(const Tensor& probs, const Tensor& labels, const Tensor& dlosses,
                              Tensor& dlogits) override {
    const int64_t rows = probs.rows(), cols = probs.cols();
    DP_CHECK(labels.numel() == rows && dlosses.numel() == rows, "cross_entropy_backward: probs {}, labels {}, dlosses {}",
             probs.describe(), labels.describe(), dlosses.describe());
    check_same_size("cross_entropy_backward", probs, dlogits);
    check_all_on_device("cross_entropy_backward", {&probs, &labels, &dlosses, &dlogits});
    dispatch_float(probs.dtype(), "cross_entropy_backward", [&](auto zero) {
      using T = decltype(zero);
      kernels::cross_entropy_backward<T>(stream_.get(), rows, cols, probs.ptr<T>(), labels.ptr<int32_t>(),
                                         dlosses.ptr<T>(), dlogits.ptr<T>());
    });
  }

  void count_correct(const Tensor& logits, const Tensor& labels, Tensor& count) override {
    const int64_t rows = logits.rows(), cols = logits.cols();
    DP_CHECK(labels.numel() == rows && count.numel() == 1, "count_correct: logits {}, labels {}, count {}",
             logits.describe(), labels.describe(), count.describe());
    check_all_on_device("count_correct", {&logits, &labels, &count});
    dispatch_float(logits.dtype(), "count_correct", [&](auto zero) {
      using T = decltype(zero);
      kernels::count_correct<T>(stream_.get(), rows, cols, logits.ptr<T>(), labels.ptr<int32_t>(), count.ptr<T>());
    });
  }

  void argmax_rows(const Tensor& x, Tensor& predictions) override {
    DP_CHECK(predictions.numel() == x.rows(), "argmax_rows: x {}, predictions {}", x.describe(),
             predictions.describe());
    check_all_on_device("argmax_rows", {&x, &predictions});
    dispatch_float(x.dtype(), "argmax_rows", [&](auto zero) {
      using T = decltype(zero);
      kernels::argmax_rows<T>(stream_.get(), x.rows(), x.cols(), x.ptr<T>(), predictions.ptr<int32_t>());
    });
  }
  void argmax_rows_grouped(const std::vector<RowsGroup>& groups, DType dtype) override {
    if (!grouped_kernel_) {
      Backend::argmax_rows_grouped(groups, dtype);
      return;
    }
    const std::vector<RowsGroup> work = nonempty_groups("argmax_rows_grouped", groups, false);
    if (work.empty()) return;
    dispatch_float(dtype, "argmax_rows_grouped", [&](auto zero) {
      using T = decltype(zero);
      kernels::argmax_rows_grouped<T>(stream_.get(), work.data(), static_cast<int64_t>(work.size()));
    });
  }

  void dropout(const Tensor& x, double p, uint64_t seed, double beta, Tensor& y) override {
    check_same_size("dropout", x, y);
    check_all_on_device("dropout", {&x, &y});
    if (x.numel() == 0) return;
    dispatch_float(x.dtype(), "dropout", [&](auto zero) {
      using T = decltype(zero);
      kernels::dropout<T>(stream_.get(), x.numel(), x.ptr<T>(), p, seed, beta, y.ptr<T>());
    });
  }

  // ---- optimiser ----------------------------------------------------------------------------------
  void adam_step(const AdamSettings& s, int64_t step, const Tensor& grad_scale, Tensor& params, const Tensor& grads,
                 Tensor& m, Tensor& v) override {
    DP_CHECK(step >= 1, "adam step counts from 1, got {}", step);
    const int64_t n = params.numel();
    DP_CHECK(grads.numel() == n && m.numel() == n && v.numel() == n && grad_scale.numel() >= 1,
             "adam_step: params {}, grads {}, m {}, v {}, grad_scale {}", params.describe(), grads.describe(),
             m.describe(), v.describe(), grad_scale.describe());
    check_all_on_device("adam_step", {&grad_scale, &params, &grads, &m, &v});
    if (n == 0) return;
    dispatch_float(params.dtype(), "adam_step", [&](auto zero) {
      using T = decltype(zero);
      // The constants exactly as the CPU backend computes them.
      const double bc1 = 1.0 - std::pow(s.beta1, static_cast<double>(step));
      const double bc2 = 1.0 - std::pow(s.beta2, static_cast<double>(step));
      kernels::AdamConstants<T> k{};
      k.beta1 = static_cast<T>(s.beta1);
      k.beta2 = static_cast<T>(s.beta2);
      k.step_size = static_cast<T>(s.learning_rate / bc1);
      k.inv_sqrt_bias_correction2 = static_cast<T>(1.0 / std::sqrt(bc2));
      k.eps = static_cast<T>(s.eps);
      k.weight_decay = static_cast<T>(s.weight_decay);
      kernels::adam_step<T>(stream_.get(), n, k, grad_scale.ptr<T>(), params.ptr<T>(), grads.ptr<T>(), m.ptr<T>(),
                            v.ptr<T>());
    });
  }

  void synchronize() override {
    submit_captured(true);
    DP_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    resume_capture();
  }

 private:
  // A slot of the upload ring; if taking it needs what a capture must not do, the step captured
  // so far is launched first.
  void* acquire_upload(std::size_t bytes) {
    if (!capturing_ || !uploads_.acquire_needs_submit(bytes)) return uploads_.acquire(bytes);
    submit_captured(true);
    void* slot = uploads_.acquire(bytes);
    resume_capture();
    return slot;
  }

  // Inside a step (begin_step and no end yet), with graphs on: captures the stream from here on.
  // Called at the step's start, and after an operation that needed the capture submitted.
  void resume_capture() {
    if (!graphs_ || !in_step_ || capturing_) return;
    DP_CUDA_CHECK(cudaStreamBeginCapture(stream_.get(), cudaStreamCaptureModeRelaxed));
    capturing_ = true;
    capture_started_ = std::chrono::steady_clock::now();
    allocator_.defer_frees(true);
  }

  // Ends the capture of the current step, if one is on, and launches its graph (launch false:
  // drops it unrun). The upload slots it reads get their events after it.
  void submit_captured(bool launch) {
    if (!capturing_) return;
    capturing_ = false;
    using Clock = std::chrono::steady_clock;
    const auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
    GraphExecs::Phases& phases = execs_.phases();
    const Clock::time_point t0 = Clock::now();
    phases.capturing += seconds(capture_started_, t0);
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_.get(), &graph);
    const Clock::time_point t1 = Clock::now();
    phases.ending += seconds(t0, t1);
    struct Owned {
      cudaGraph_t graph;
      ~Owned() {
        if (graph) (void)cudaGraphDestroy(graph);
      }
    } owned{graph};
    bool launched = false;
    try {
      if (launch) {
        DP_CUDA_CHECK(ended);  // an error inside the capture invalidates it
        std::size_t nodes = 0;
        DP_CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &nodes));
        if (nodes > 0) {
          cudaGraphExec_t exec = execs_.for_graph(graph, nodes);
          const Clock::time_point t2 = Clock::now();
          DP_CUDA_CHECK(cudaGraphLaunch(exec, stream_.get()));
          launched = true;
          phases.updating += seconds(t1, t2);
          phases.launching += seconds(t2, Clock::now());
          phases.nodes += static_cast<double>(nodes);
        }
      }
    } catch (...) {
      after_submit(false);
      throw;
    }
    after_submit(launched);
  }
  // The upload slots the submitted capture reads get their events after its graph (or are free
  // again if it did not run), and blocks freed during the capture go back to CUDA.
  void after_submit(bool launched) {
    uploads_.record_captured(stream_.get(), launched);
    allocator_.defer_frees(false);
    allocator_.free_deferred();
  }

  static void check_reduce_inputs(const char* where, Reduce kind, const Tensor& a, const Tensor* b, const Tensor& out) {
    DP_CHECK(kind != Reduce::dot || (b && b->numel() == a.numel()), "{} dot: b missing or mis-sized", where);
    DP_CHECK(a.dtype() == out.dtype() && (!b || b->dtype() == a.dtype()), "{}: a {}, out {} differ in dtype", where,
             a.describe(), out.describe());
    check_on_device(where, a);
    check_on_device(where, kind == Reduce::dot ? b : nullptr);
    check_on_device(where, out);
  }
  static void check_all_on_device(const char* where, std::initializer_list<const Tensor*> tensors) {
    for (const Tensor* t : tensors) check_on_device(where, t);
  }
  static void check_segment_tensors(const char* where, const Tensor& offsets,
                                    std::initializer_list<const Tensor*> tensors) {
    DP_CHECK(offsets.dtype() == DType::i32, "{}: offsets {} must be i32", where, offsets.describe());
    check_on_device(where, offsets);
    check_all_on_device(where, tensors);
  }

  // Declaration order is construction order: the device is made current before the stream and
  // the cuBLAS handle are created on it; destruction runs in reverse (memory, cuBLAS, stream).
  // DIFFPOOL_CUDA_GEMM_GROUPED=0 turns the grouped kernel off (one cuBLAS call per group, as
  // before it existed), so that one GPU session can time both (tests/gpu/run_on_gpu.sh).
  static bool grouped_kernel_enabled() {
    const char* v = std::getenv("DIFFPOOL_CUDA_GEMM_GROUPED");
    return v == nullptr || std::string(v) != "0";
  }
  // Each step captured into a CUDA graph (CudaBackendOptions) unless DIFFPOOL_CUDA_GRAPHS=0
  // (every launch issued as it comes: errors then name the kernel that failed, and one GPU
  // session can time both; tests/gpu/run_on_gpu.sh).
  static bool graphs_enabled() {
    const char* v = std::getenv("DIFFPOOL_CUDA_GRAPHS");
    return v == nullptr || std::string(v) != "0";
  }
  // DIFFPOOL_CUDA_CUBLAS_GROUPED=1: a gemm_grouped call's large groups as one cuBLAS grouped
  // batched call (gemm_large_groups); otherwise one call per group (CudaBackendOptions).
  static bool cublas_grouped_enabled() {
    const char* v = std::getenv("DIFFPOOL_CUDA_CUBLAS_GROUPED");
    return v != nullptr && std::string(v) == "1";
  }

  int device_;
  std::string name_;
  Stream stream_;
  CublasHandle cublas_;
  CachingAllocator allocator_;
  Tickets tickets_;  // after allocator_: destroyed before it
  UploadRing uploads_;  // destroyed after the destructor has synchronised the stream
  bool grouped_kernel_ = true;
  bool cublas_grouped_ = false;
  bool graphs_ = false;
  std::chrono::steady_clock::time_point capture_started_{};  // of the capture on now
  bool in_step_ = false;    // between begin_step and end_step (or abandon_step)
  bool capturing_ = false;  // the stream is being captured: work not submitted yet
  GraphExecs execs_;
  static constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;
};

}  // namespace

std::unique_ptr<Backend> create_cuda_backend(int device, const CudaBackendOptions& options) {
  return std::make_unique<CudaBackend>(device, options);
}

}  // namespace diffpool::DP_CUDA_NS
