// libFuzzer target: the HDF5 job-file reader used at resume and by `diffpool report`
// (read_job_record of results/job_record.hpp), on a file holding the fuzzer's bytes.
//
// Input layout: byte 0 is a set of flags, the rest is the file or its HDF5 part.
//   bit 0: read the per-graph outputs too.
//   bit 1 clear: the rest is the whole file. This explores the checksum block's parser
//     (results/checksum_block.hpp) and, for a file without the block (an earlier version's: the
//     HDF5 signature at byte 0), libhdf5 itself, which parses such files unchecked.
//   bit 1 set: the rest is the HDF5 part of a file of this version; the target puts a checksum
//     block in front of it, so that the production reader passes the check and libhdf5 parses
//     the fuzzer's bytes (a file damaged on disk never gets this far: only a file whose checksum
//     was computed over damaged bytes does).
//   bits 1 and 2 set: the same, with a block that records a wrong CRC-32 of those bytes. The read
//     must end in DamagedFileError without libhdf5 seeing the bytes; anything else aborts (a
//     finding in this project's code).
// tests/fuzz/corpus/job_record/ holds small job files written by write_job_record, in each form.
// InputError (not a job file) and LibraryError (a damaged file, found by the checksum or by HDF5's
// own checks) are the expected outcomes; anything else is a finding.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/core/error.hpp"
#include "results/checksum_block.hpp"
#include "results/job_record.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffpool;
  if (size < 1) return 0;
  const bool with_outputs = (data[0] & 1) != 0, add_block = (data[0] & 2) != 0;
  const bool wrong_checksum = add_block && (data[0] & 4) != 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto path = fuzz::scratch_dir() / "job.h5";
  if (add_block) {
    fuzz::write_bytes(path, hdf5::checksum_block_for(rest, wrong_checksum ? 0x80000000u : 0u) + std::string(rest));
  } else {
    fuzz::write_bytes(path, rest);
  }
  try {
    JobRecord record = read_job_record(path, with_outputs);
    (void)record;
  } catch (const hdf5::DamagedFileError&) {
    return 0;
  } catch (const InputError&) {
  } catch (const LibraryError&) {
  }
  if (wrong_checksum) {
    std::fprintf(stderr, "fuzz_job_record: a file whose checksum block records a wrong CRC-32 was not refused as "
                         "damaged before libhdf5 read it\n");
    std::abort();
  }
  return 0;
}
