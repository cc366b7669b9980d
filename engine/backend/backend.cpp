#include "engine/backend/backend.hpp"

#include <type_traits>

#include "engine/core/error.hpp"
#include "engine/core/setting.hpp"

namespace diffpool {

const EnumNames<BackendKind>& backend_kind_names() {
  static const EnumNames<BackendKind> names(
      "backend", {{"cpu", BackendKind::cpu}, {"cuda", BackendKind::cuda}, {"auto", BackendKind::automatic}},
      {{"gpu", BackendKind::cuda}});
  return names;
}
const char* backend_kind_name(BackendKind kind) { return backend_kind_names().name(kind); }
BackendKind parse_backend_kind(const std::string& text) { return backend_kind_names().parse(text); }

const EnumNames<MatmulPrecision>& matmul_precision_names() {
  static const EnumNames<MatmulPrecision> names("matmul precision",
                                                {{"fp32", MatmulPrecision::fp32}, {"tf32", MatmulPrecision::tf32}},
                                                {{"f32", MatmulPrecision::fp32}, {"float32", MatmulPrecision::fp32}});
  return names;
}
const char* matmul_precision_name(MatmulPrecision precision) { return matmul_precision_names().name(precision); }

const EnumNames<HugePages>& huge_pages_names() {
  static const EnumNames<HugePages> names(
      "huge pages", {{"auto", HugePages::automatic}, {"on", HugePages::on}, {"off", HugePages::off}},
      {{"true", HugePages::on}, {"false", HugePages::off}});
  return names;
}

std::string Backend::description() const {
  return matmul_precision_ == MatmulPrecision::tf32 ? name() + ", TF32 products" : name();
}

namespace {
std::unique_ptr<Backend> make_backend_of_kind(const BackendOptions& options);
}

std::unique_ptr<Backend> make_backend(const BackendOptions& options) {
  std::unique_ptr<Backend> backend = make_backend_of_kind(options);
  if (options.matmul_precision != MatmulPrecision::fp32) backend->set_matmul_precision(options.matmul_precision);
  return backend;
}

namespace {
std::unique_ptr<Backend> make_backend_of_kind(const BackendOptions& options) {
  switch (options.kind) {
    case BackendKind::cpu: return make_cpu_backend(options.cpu_threads, options.huge_pages);
    case BackendKind::cuda: {
      if (!cuda_backend_built())
        throw InputError(
            "backend 'cuda' was requested, but this build of diffpool has no CUDA backend (nvcc was not found "
            "at configure time, or DIFFPOOL_CUDA=OFF); rebuild with the CUDA toolkit, or use backend: cpu");
      if (const std::string problem = cuda_module_problem(); !problem.empty())
        throw InputError(fmt::format("backend 'cuda' was requested, but {}; use backend: cpu", problem));
      if (cuda_device_count() == 0)
        throw InputError(
            "backend 'cuda' was requested, but no CUDA device is usable on this host (no GPU, no driver, or "
            "CUDA_VISIBLE_DEVICES hides them all); use backend: cpu or auto");
      return make_cuda_backend(std::max(0, options.cuda_device));
    }
    case BackendKind::automatic:
      if (cuda_backend_built() && cuda_device_count() > 0) return make_cuda_backend(std::max(0, options.cuda_device));
      return make_cpu_backend(options.cpu_threads, options.huge_pages);
  }
  throw InputError("invalid backend kind");
}
}  // namespace

Tensor allocate_tensor(Backend& backend, Shape shape, DType dtype) {
  const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  void* p = backend.allocate(bytes);
  std::shared_ptr<void> owner(p, [&backend](void* q) { backend.deallocate(q); });
  return Tensor(p, shape, dtype, backend.device(), std::move(owner));
}

template <class T> Tensor upload(Backend& backend, const T* data, Shape shape) {
  Tensor t = allocate_tensor(backend, shape, dtype_of<T>());
  backend.copy_bytes(t.data(), backend.device(), data, Device::cpu, t.bytes());
  return t;
}

template <class T> std::vector<T> download(Backend& backend, const Tensor& tensor) {
  DP_CHECK(tensor.dtype() == dtype_of<T>(), "download of {} as {}", tensor.describe(), dtype_name(dtype_of<T>()));
  std::vector<T> out(static_cast<std::size_t>(tensor.numel()));
  backend.copy_bytes(out.data(), Device::cpu, tensor.data(), tensor.device(), tensor.bytes());
  return out;
}

template Tensor upload<float>(Backend&, const float*, Shape);
template Tensor upload<double>(Backend&, const double*, Shape);
template Tensor upload<int32_t>(Backend&, const int32_t*, Shape);
template std::vector<float> download<float>(Backend&, const Tensor&);
template std::vector<double> download<double>(Backend&, const Tensor&);
template std::vector<int32_t> download<int32_t>(Backend&, const Tensor&);

void upload_converted(DeviceMemory& memory, const std::vector<double>& host, Tensor& dst) {
  DP_CHECK(static_cast<int64_t>(host.size()) == dst.numel(), "uploading {} values into {}", host.size(),
           dst.describe());
  switch (dst.dtype()) {
    case DType::f64: memory.copy_bytes(dst.data(), dst.device(), host.data(), Device::cpu, dst.bytes()); return;
    case DType::f32: {
      const std::vector<float> f(host.begin(), host.end());
      memory.copy_bytes(dst.data(), dst.device(), f.data(), Device::cpu, dst.bytes());
      return;
    }
    case DType::i32: break;
  }
  DP_CHECK(false, "uploading floating-point values into {}", dst.describe());
}

template <class T> std::vector<T> download_converted(Backend& backend, const Tensor& tensor) {
  if (tensor.dtype() == dtype_of<T>()) return download<T>(backend, tensor);
  DP_CHECK(tensor.dtype() == DType::f32 || tensor.dtype() == DType::f64, "downloading {} as {}", tensor.describe(),
           dtype_name(dtype_of<T>()));
  using Other = std::conditional_t<std::is_same_v<T, float>, double, float>;
  const std::vector<Other> other = download<Other>(backend, tensor);
  return std::vector<T>(other.begin(), other.end());
}

template std::vector<float> download_converted<float>(Backend&, const Tensor&);
template std::vector<double> download_converted<double>(Backend&, const Tensor&);

void copy_tensor(Backend& backend, const Tensor& src, Tensor& dst) {
  DP_CHECK(src.numel() == dst.numel() && src.dtype() == dst.dtype(), "copy {} into {}", src.describe(),
           dst.describe());
  backend.copy_bytes(dst.data(), dst.device(), src.data(), src.device(), src.bytes());
}

double read_scalar(Backend& backend, const Tensor& tensor, int64_t index) {
  DP_CHECK(index >= 0 && index < tensor.numel(), "element {} of {}", index, tensor.describe());
  const std::size_t es = dtype_size(tensor.dtype());
  const char* src = static_cast<const char*>(tensor.data()) + static_cast<std::size_t>(index) * es;
  switch (tensor.dtype()) {
    case DType::f32: { float v; backend.copy_bytes(&v, Device::cpu, src, tensor.device(), es); return v; }
    case DType::f64: { double v; backend.copy_bytes(&v, Device::cpu, src, tensor.device(), es); return v; }
    case DType::i32: { int32_t v; backend.copy_bytes(&v, Device::cpu, src, tensor.device(), es); return v; }
  }
  return 0;
}

}  // namespace diffpool
