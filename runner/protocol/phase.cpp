#include "runner/protocol/phase.hpp"

#include <string>

#include "engine/core/error.hpp"
#include "engine/core/setting.hpp"

namespace diffpool {

namespace {

// The names as written into job files and hashed into job ids: never rename one (the ids of
// existing results would change). The same EnumNames helper as every setting's enum.
const EnumNames<Phase>& phase_names() {
  static const EnumNames<Phase> names("job phase",
                                      {{"train", Phase::train}, {"select", Phase::select}, {"retrain", Phase::retrain}});
  return names;
}

const EnumNames<JobStatus>& job_status_names() {
  static const EnumNames<JobStatus> names("job status", {{"completed", JobStatus::completed}, {"failed", JobStatus::failed}});
  return names;
}

}  // namespace

const char* phase_name(Phase phase) {
  DP_CHECK(phase < Phase::count, "invalid Phase {}", static_cast<int>(phase));
  return phase_names().name(phase);
}

Phase parse_phase(std::string_view name) { return phase_names().parse(std::string(name)); }

const char* job_status_name(JobStatus status) {
  DP_CHECK(status < JobStatus::count, "invalid JobStatus {}", static_cast<int>(status));
  return job_status_names().name(status);
}

JobStatus parse_job_status(std::string_view name) { return job_status_names().parse(std::string(name)); }

}  // namespace diffpool
