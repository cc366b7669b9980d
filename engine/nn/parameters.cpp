#include "engine/nn/parameters.hpp"

#include <cmath>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"

namespace diffpool {

namespace {
// Arena offsets are rounded up to 16 elements so every parameter view starts 64-byte aligned.
int64_t round_up(int64_t n) { return (n + 15) / 16 * 16; }
}  // namespace

ParamId ParameterStore::add(std::string name, Shape shape, Init init, int64_t fan_in, int64_t fan_out) {
  DP_CHECK(!allocated(), "parameter '{}' registered after allocation", name);
  Entry e;
  e.name = std::move(name);
  e.shape = shape;
  e.offset = param_size_;
  e.init = init;
  e.fan_in = fan_in >= 0 ? fan_in : (shape.ndim >= 2 ? shape[0] : shape[0]);
  e.fan_out = fan_out >= 0 ? fan_out : (shape.ndim >= 2 ? shape[1] : shape[0]);
  param_size_ += round_up(shape.numel());
  params_.push_back(std::move(e));
  return ParamId{static_cast<int32_t>(params_.size() - 1)};
}

BufferId ParameterStore::add_buffer(std::string name, Shape shape, double fill) {
  DP_CHECK(!allocated(), "buffer '{}' registered after allocation", name);
  Entry e;
  e.name = std::move(name);
  e.shape = shape;
  e.offset = buffer_size_;
  buffer_size_ += round_up(shape.numel());
  buffers_.push_back(std::move(e));
  buffer_fill_.push_back(fill);
  return BufferId{static_cast<int32_t>(buffers_.size() - 1)};
}

void ParameterStore::allocate(Backend& backend, DType dtype) {
  DP_CHECK(!allocated(), "parameters allocated twice");
  DP_CHECK(dtype == DType::f32 || dtype == DType::f64, "parameters must be f32 or f64");
  backend_ = &backend;
  dtype_ = dtype;
  const int64_t n = std::max<int64_t>(param_size_, 1);
  values_ = allocate_tensor(backend, Shape{n}, dtype);
  grads_ = allocate_tensor(backend, Shape{n}, dtype);
  m_ = allocate_tensor(backend, Shape{n}, dtype);
  v_ = allocate_tensor(backend, Shape{n}, dtype);
  buffer_arena_ = allocate_tensor(backend, Shape{std::max<int64_t>(buffer_size_, 1)}, dtype);
  for (Tensor* t : {&values_, &grads_, &m_, &v_, &buffer_arena_}) backend.fill(*t, 0.0);
}

void ParameterStore::initialize(uint64_t seed) {
  DP_CHECK(allocated(), "initialize before allocate");
  std::vector<double> host(static_cast<std::size_t>(values_.numel()), 0.0);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Entry& e = params_[i];
    Rng rng(Rng::derive(seed, i));
    double bound = 0.0;
    switch (e.init) {
      case Init::zeros: bound = 0.0; break;
      case Init::ones: bound = 0.0; break;
      case Init::glorot_uniform_relu:
        bound = std::sqrt(2.0) * std::sqrt(6.0 / static_cast<double>(e.fan_in + e.fan_out));
        break;
      case Init::torch_linear: bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(e.fan_in, 1))); break;
    }
    for (int64_t j = 0; j < e.shape.numel(); ++j) {
      double& x = host[static_cast<std::size_t>(e.offset + j)];
      x = e.init == Init::ones ? 1.0 : (bound > 0 ? rng.uniform(-bound, bound) : 0.0);
    }
  }
  upload_converted(*backend_, host, values_);
  std::vector<double> buf(static_cast<std::size_t>(buffer_arena_.numel()), 0.0);
  for (std::size_t i = 0; i < buffers_.size(); ++i)
    for (int64_t j = 0; j < buffers_[i].shape.numel(); ++j)
      buf[static_cast<std::size_t>(buffers_[i].offset + j)] = buffer_fill_[i];
  upload_converted(*backend_, buf, buffer_arena_);
  backend_->fill(m_, 0.0);
  backend_->fill(v_, 0.0);
  backend_->fill(grads_, 0.0);
}

namespace {
Tensor view_at(const Tensor& arena, const ParameterStore::Entry& e) {
  const std::size_t es = dtype_size(arena.dtype());
  return Tensor(static_cast<char*>(arena.data()) + static_cast<std::size_t>(e.offset) * es, e.shape, arena.dtype(),
                arena.device());
}
}  // namespace

Tensor ParameterStore::value(ParamId id) const { return view_at(values_, params_.at(static_cast<std::size_t>(id.index))); }
Tensor ParameterStore::grad(ParamId id) const { return view_at(grads_, params_.at(static_cast<std::size_t>(id.index))); }
Tensor ParameterStore::buffer(BufferId id) const {
  return view_at(buffer_arena_, buffers_.at(static_cast<std::size_t>(id.index)));
}

void ParameterStore::zero_grad() { backend_->fill(grads_, 0.0); }

ParameterStore::Snapshot ParameterStore::snapshot() const {
  return Snapshot{download_converted<double>(*backend_, values_), download_converted<double>(*backend_, m_), download_converted<double>(*backend_, v_),
                  download_converted<double>(*backend_, buffer_arena_)};
}

void ParameterStore::restore(const Snapshot& s) {
  upload_converted(*backend_, s.values, values_);
  upload_converted(*backend_, s.m, m_);
  upload_converted(*backend_, s.v, v_);
  upload_converted(*backend_, s.buffers, buffer_arena_);
}

void ParameterStore::set_values(const std::vector<double>& values) { upload_converted(*backend_, values, values_); }

}  // namespace diffpool
