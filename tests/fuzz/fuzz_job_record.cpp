// libFuzzer target: the HDF5 job-file reader used at resume and by `diffpool report`
// (read_job_record of results/job_record.hpp), on a file holding the fuzzer's bytes.
//
// Input layout: byte 0 bit 0: read the per-graph outputs too; the rest is the file.
// tests/fuzz/corpus/job_record/ holds small job files written by write_job_record.
// InputError (not a job file) and LibraryError (HDF5's own message for a damaged file) are the
// expected outcomes; anything else is a finding.
#include "engine/core/error.hpp"
#include "results/job_record.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffpool;
  if (size < 1) return 0;
  const auto path = fuzz::scratch_dir() / "job.h5";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  try {
    JobRecord record = read_job_record(path, (data[0] & 1) != 0);
    (void)record;
  } catch (const InputError&) {
  } catch (const LibraryError&) {
  }
  return 0;
}
