#pragma once
// Tensor: a typed view of up to 3 dimensions onto memory on one device.
//
// A Tensor does not always own its memory. Tensors made by a Backend (Backend::empty) own it
// through a shared handle; tensors handed out by a Workspace are plain views that stay valid
// until the workspace is reset at the end of a training step (see workspace.hpp). All tensors
// are contiguous and row-major. Most are matrices [rows, cols]; a batch of dense blocks is
// [B, rows, cols] and is equally a matrix [B*rows, cols].
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

namespace diffpool {

enum class DType : uint8_t { f32, f64, i32 };
enum class Device : uint8_t { cpu, cuda };

const char* dtype_name(DType dtype);
const char* device_name(Device device);
// Bytes per element. Inline with the other accessors below: they run for every graph of every
// per-graph op's descriptors, where a call each was a measurable share of a CUDA step's host time
// (tests/bench/bench_cuda_host.cpp).
constexpr std::size_t dtype_size(DType dtype) { return dtype == DType::f64 ? 8 : 4; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }

struct Shape {
  static constexpr int kMaxDims = 3;
  std::array<int64_t, kMaxDims> dims{};
  int ndim = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> list) {
    if (list.size() < 1 || list.size() > static_cast<std::size_t>(kMaxDims)) [[unlikely]]
      bad_rank(list.size());
    for (int64_t d : list) {
      if (d < 0) [[unlikely]]
        bad_dimension(d);
      dims[static_cast<std::size_t>(ndim++)] = d;
    }
  }
  int64_t numel() const {
    if (ndim == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[static_cast<std::size_t>(i)];
    return n;
  }
  int64_t operator[](int i) const { return dims[static_cast<std::size_t>(i)]; }
  bool operator==(const Shape& other) const;
  std::string str() const;  // "[3, 4]"

 private:
  [[noreturn]] static void bad_rank(std::size_t rank);
  [[noreturn]] static void bad_dimension(int64_t d);
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(void* data, Shape shape, DType dtype, Device device, std::shared_ptr<void> owner = {})
      : data_(data), shape_(shape), dtype_(dtype), device_(device), owner_(std::move(owner)) {}

  bool defined() const { return shape_.ndim > 0; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim; }
  int64_t dim(int i) const;
  int64_t numel() const { return shape_.numel(); }
  // Matrix view: cols is the last dimension, rows the product of the others.
  int64_t cols() const { return shape_.ndim == 0 ? 0 : shape_.dims[static_cast<std::size_t>(shape_.ndim - 1)]; }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  void* data() const { return data_; }
  // Typed pointer; throws if T does not match the dtype.
  template <class T> T* ptr() const {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(data_);
  }

  // Same memory, another shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) of the matrix view, sharing memory.
  Tensor rows_slice(int64_t begin, int64_t end) const;

  std::string describe() const;  // "f32[3, 4] on cpu"

 private:
  void check_dtype(DType expected) const;

  void* data_ = nullptr;
  Shape shape_{};
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
  std::shared_ptr<void> owner_;
};

}  // namespace diffpool
