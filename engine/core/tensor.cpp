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

void Shape::bad_rank(std::size_t rank) {
  throw_internal(__FILE__, __LINE__, fmt::format("a shape has 1 to {} dimensions, got {}", kMaxDims, rank));
}
void Shape::bad_dimension(int64_t d) { throw_internal(__FILE__, __LINE__, fmt::format("negative dimension {}", d)); }

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
