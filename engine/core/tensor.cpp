#include "engine/core/tensor.hpp"

#include "engine/core/error.hpp"

namespace diffpool {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
  }
  return "?";
}

const char* device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
  }
  return 0;
}

Shape::Shape(std::initializer_list<int64_t> list) {
  DP_CHECK(list.size() >= 1 && list.size() <= static_cast<std::size_t>(kMaxDims),
           "a shape has 1 to {} dimensions, got {}", kMaxDims, list.size());
  for (int64_t d : list) {
    DP_CHECK(d >= 0, "negative dimension {}", d);
    dims[static_cast<std::size_t>(ndim++)] = d;
  }
}

int64_t Shape::numel() const {
  if (ndim == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= dims[static_cast<std::size_t>(i)];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (ndim != other.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (dims[static_cast<std::size_t>(i)] != other.dims[static_cast<std::size_t>(i)]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[static_cast<std::size_t>(i)]);
  }
  return s + "]";
}

Tensor::Tensor(void* data, Shape shape, DType dtype, Device device, std::shared_ptr<void> owner)
    : data_(data), shape_(shape), dtype_(dtype), device_(device), owner_(std::move(owner)) {}

int64_t Tensor::dim(int i) const {
  DP_CHECK(i >= 0 && i < shape_.ndim, "dimension {} of a tensor of shape {}", i, shape_.str());
  return shape_.dims[static_cast<std::size_t>(i)];
}

Tensor Tensor::reshape(Shape shape) const {
  DP_CHECK(shape.numel() == numel(), "cannot reshape {} to {}", shape_.str(), shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::rows_slice(int64_t begin, int64_t end) const {
  DP_CHECK(begin >= 0 && begin <= end && end <= rows(), "rows [{}, {}) of a tensor of shape {}", begin,
           end, shape_.str());
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + static_cast<std::size_t>(begin * cols()) * dtype_size(dtype_);
  t.shape_ = Shape{end - begin, cols()};
  return t;
}

std::string Tensor::describe() const {
  return fmt::format("{}{} on {}", dtype_name(dtype_), shape_.str(), device_name(device_));
}

void Tensor::check_dtype(DType expected) const {
  DP_CHECK(dtype_ == expected, "tensor {} accessed as {}", describe(), dtype_name(expected));
}

}  // namespace diffpool
