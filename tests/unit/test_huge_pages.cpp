// backend.huge_pages: the CPU backend asks the kernel for transparent huge pages (madvise
// MADV_HUGEPAGE) for its large allocations, the step workspace above all. What is checked here is
// what the backend controls: which allocations are asked for as huge pages (the `hg` flag the
// kernel shows in /proc/self/smaps), that they are whole 2 MiB pages, and that a training step
// computes the same bits on such memory. Whether the kernel then grants them depends on its
// setting (/sys/kernel/mm/transparent_hugepage/enabled) and on free memory, not on the backend.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/nn/model.hpp"
#include "engine/train/trainer.hpp"
#include "tests/unit/synthetic.hpp"

namespace diffpool {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

bool kernel_has_transparent_huge_pages() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  return static_cast<bool>(in);
}

// The VmFlags of the mapping of /proc/self/smaps that holds `p`.
std::string vm_flags_of(const void* p) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> begin >> dash >> end && dash == '-' && line.find(':') > line.find(' ')) {
      inside = begin <= address && address < end;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

bool asked_for_huge_pages(const void* p) {
  const std::string flags = vm_flags_of(p) + " ";
  EXPECT_NE(flags, " ") << "no mapping of /proc/self/smaps holds " << p;
  return flags.find(" hg ") != std::string::npos;
}

TEST(HugePages, LargeAllocationsAreAskedForByTheSetting) {
  if (!kernel_has_transparent_huge_pages()) GTEST_SKIP() << "this kernel has no transparent huge pages";
  struct Case {
    HugePages setting;
    std::size_t bytes;
    bool huge;
  };
  const Case cases[] = {
      {HugePages::on, 4 * kMiB, true},           {HugePages::on, kMiB, false},
      {HugePages::automatic, 4 * kMiB, false},   {HugePages::automatic, kHugePagesAutoBytes, true},
      {HugePages::off, kHugePagesAutoBytes, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << huge_pages_names().name(c.setting) << ", " << c.bytes << " bytes");
    auto backend = make_cpu_backend(1, c.setting);
    void* p = backend->allocate(c.bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 256, 0u);
    if (c.huge) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (2 * kMiB), 0u);
    }
    EXPECT_EQ(asked_for_huge_pages(p), c.huge);
    backend->deallocate(p);
  }
}

struct StepResult {
  std::vector<float> logits, grads;
  float loss = 0;
};

// One forward and backward pass of a 2-level model over a batch, its workspace one chunk of
// `workspace_bytes` (so `on` gives it huge pages).
StepResult step(HugePages setting, std::size_t workspace_bytes) {
  const GraphDataset data = testing::synthetic_dataset({40, 25, 31, 60, 12, 48}, 5, 3, 23);
  auto backend = make_cpu_backend(1, setting);
  ModelConfig config;
  config.pool_levels = 2;
  config.hidden_dim = 16;
  config.embedding_dim = 12;
  config.cluster_ratio = 0.25;
  config.cluster_rule = ClusterRule::per_graph;
  DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
  model.parameters().allocate(*backend, DType::f32);
  model.parameters().initialize(5);
  Workspace ws(*backend, workspace_bytes);
  Tape tape(*backend, ws);
  GraphBatch batch = build_batch(data, {0, 1, 2, 3, 4, 5}, ws, DType::f32);
  ForwardOutput out = model.forward(tape, batch, true, 3);
  model.parameters().zero_grad();
  tape.backward(out.loss);
  StepResult r;
  r.loss = download<float>(*backend, out.loss->value)[0];
  r.logits = download<float>(*backend, out.logits->value);
  r.grads = download<float>(*backend, model.parameters().grads());
  if (setting == HugePages::on && kernel_has_transparent_huge_pages()) {
    EXPECT_TRUE(asked_for_huge_pages(out.logits->value.data())) << "the step's workspace has no huge pages";
  }
  return r;
}

TEST(HugePages, AStepComputesTheSameBitsOnHugePages) {
  const StepResult plain = step(HugePages::off, 8 * kMiB), huge = step(HugePages::on, 8 * kMiB);
  EXPECT_EQ(plain.loss, huge.loss);
  EXPECT_EQ(plain.logits, huge.logits);
  EXPECT_EQ(plain.grads, huge.grads);
  EXPECT_FALSE(plain.grads.empty());
}

}  // namespace
}  // namespace diffpool
