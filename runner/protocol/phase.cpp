#include "runner/protocol/phase.hpp"

#include <array>
#include <cstddef>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {

// The names as written into job files and hashed into job ids: never rename one (the ids of
// existing results would change).
constexpr std::array<const char*, static_cast<std::size_t>(Phase::count)> kPhaseNames = {"train", "select", "retrain"};
static_assert(kPhaseNames.size() == 3, "every Phase needs a name");

constexpr std::array<const char*, static_cast<std::size_t>(JobStatus::count)> kJobStatusNames = {"completed", "failed"};
static_assert(kJobStatusNames.size() == 2, "every JobStatus needs a name");

template <typename Enum, std::size_t N>
Enum parse_name(const std::array<const char*, N>& names, std::string_view name, const char* what) {
  for (std::size_t i = 0; i < N; ++i)
    if (name == names[i]) return static_cast<Enum>(i);
  std::string allowed;
  for (std::size_t i = 0; i < N; ++i) allowed += fmt::format("{}{}", i == 0 ? "" : ", ", names[i]);
  throw InputError(fmt::format("unknown {} '{}': expected one of {}", what, name, allowed));
}

}  // namespace

const char* phase_name(Phase phase) {
  const auto i = static_cast<std::size_t>(phase);
  DP_CHECK(i < kPhaseNames.size(), "invalid Phase {}", i);
  return kPhaseNames[i];
}

Phase parse_phase(std::string_view name) { return parse_name<Phase>(kPhaseNames, name, "job phase"); }

const char* job_status_name(JobStatus status) {
  const auto i = static_cast<std::size_t>(status);
  DP_CHECK(i < kJobStatusNames.size(), "invalid JobStatus {}", i);
  return kJobStatusNames[i];
}

JobStatus parse_job_status(std::string_view name) { return parse_name<JobStatus>(kJobStatusNames, name, "job status"); }

}  // namespace diffpool
