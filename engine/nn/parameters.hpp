#pragma once
// Parameters, their gradients and Adam's two moments, each in one flat arena.
//
// A model first registers named parameters (shape and initialiser) and non-trainable buffers
// (batch-norm running statistics); allocate() then makes one allocation per arena and carves
// every parameter a view at the same offset in each, so the optimiser step, zeroing, norm
// clipping, a checkpoint and an MPI broadcast are single loops or copies.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/tensor.hpp"

namespace diffpool {

enum class Init : uint8_t {
  zeros,
  ones,
  glorot_uniform_relu,  // U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)), gain = sqrt(2) (ReLU)
  torch_linear,         // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's nn.Linear default
};

struct ParamId {
  int32_t index = -1;
};
struct BufferId {
  int32_t index = -1;
};

class ParameterStore {
 public:
  struct Entry {
    std::string name;
    Shape shape;
    int64_t offset = 0;  // in elements, the same in every arena
    Init init = Init::zeros;
    int64_t fan_in = 0;  // for the initialisers; set from the shape [fan_in, fan_out] by default
    int64_t fan_out = 0;
  };

  // Registration (before allocate()).
  ParamId add(std::string name, Shape shape, Init init, int64_t fan_in = -1, int64_t fan_out = -1);
  BufferId add_buffer(std::string name, Shape shape, double fill);

  // Allocates the arenas on the backend's device, in the given floating dtype.
  void allocate(Backend& backend, DType dtype);
  bool allocated() const { return backend_ != nullptr; }
  Backend& backend() const { return *backend_; }
  // Draws initial values (on the host, from the seed) and resets buffers and Adam moments.
  void initialize(uint64_t seed);

  Tensor value(ParamId id) const;
  Tensor grad(ParamId id) const;
  Tensor buffer(BufferId id) const;
  const std::vector<Entry>& entries() const { return params_; }
  const std::vector<Entry>& buffer_entries() const { return buffers_; }
  int64_t size() const { return param_size_; }
  int64_t buffer_size() const { return buffer_size_; }
  DType dtype() const { return dtype_; }

  // The whole arenas.
  Tensor values() const { return values_; }
  Tensor grads() const { return grads_; }
  Tensor adam_m() const { return m_; }
  Tensor adam_v() const { return v_; }
  Tensor buffers() const { return buffer_arena_; }

  void zero_grad();

  // Host snapshot of everything a resume needs (values, moments, buffers), as doubles.
  struct Snapshot {
    std::vector<double> values, m, v, buffers;
  };
  Snapshot snapshot() const;
  void restore(const Snapshot& snapshot);
  // Sets parameter values from host data (e.g. weights written by a reference implementation).
  void set_values(const std::vector<double>& values);

 private:
  std::vector<Entry> params_;
  std::vector<Entry> buffers_;
  std::vector<double> buffer_fill_;
  int64_t param_size_ = 0;
  int64_t buffer_size_ = 0;
  Backend* backend_ = nullptr;
  DType dtype_ = DType::f32;
  Tensor values_, grads_, m_, v_, buffer_arena_;
};

}  // namespace diffpool
