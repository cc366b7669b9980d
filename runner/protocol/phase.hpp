#pragma once
// The typed states of a job: its phase within a protocol, and the status of its result file.
// Strings appear only where a job meets a file (the HDF5 job record, failed/<id>.txt, the job id's
// hash input, log lines): each enum has one names table, sized by its count and checked at
// compile time, and one parser for what a file says.
#include <cstdint>
#include <string_view>

namespace diffpool {

enum class Phase : uint8_t {
  train,    // paper and holdout protocols: one training per (point, fold, repeat)
  select,   // nested: a training of a point on the inner split of an outer fold, for model selection
  retrain,  // nested: the fold's winning point retrained on the outer training folds, tested once
  count,
};
const char* phase_name(Phase phase);
// The phase a job file names; throws InputError for a name that is not a phase.
Phase parse_phase(std::string_view name);

// The status stored in a job's result file.
enum class JobStatus : uint8_t {
  completed,  // trained and evaluated: counts towards the summary, skipped on resume
  failed,     // ended with an error: a rerun tries it again
  count,
};
const char* job_status_name(JobStatus status);
// The status a job file names; throws InputError for a name that is not a status.
JobStatus parse_job_status(std::string_view name);

}  // namespace diffpool
