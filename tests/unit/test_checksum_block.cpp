// The checksum block of result files (results/checksum_block.hpp): every HDF5 file written through
// write_file_atomically carries its length and CRC-32 in a 512-byte user block, and every reader
// checks them with plain reads before libhdf5 sees the file. Here: a job file, a summary and a
// checkpoint, each cut by one byte and each with one bit flipped in the middle, are damaged by
// name, for the C++ readers, the runner's file states and the Python reader; the inputs that crash
// Debian's libhdf5 (tests/fuzz/known/) wrapped as files of this version with a wrong checksum are
// refused before libhdf5 parses them; h5py and h5dump read files with the block; a file of an
// earlier version (no block) is still read.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "results/checksum_block.hpp"
#include "results/hdf5.hpp"
#include "results/job_record.hpp"
#include "results/summary.hpp"
#include "runner/checkpoint.hpp"
#include "runner/job_runner.hpp"
#include "tests/test_util.hpp"
#include "tests/unit/results_fixtures.hpp"

namespace diffpool {
namespace {

namespace fs = std::filesystem;
using testing::quoted;
using testing::run_command;
using hdf5::ChecksumCheck;
using hdf5::DamagedFileError;
using hdf5::kChecksumBlockBytes;

class ChecksumBlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("diffpool-checksum-{}-{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path path(const std::string& name) const { return dir_ / name; }
  fs::path dir_;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class Function>
std::string damage_of(Function function) {
  try {
    function();
  } catch (const DamagedFileError& error) {
    return error.what();
  } catch (const std::exception& error) {
    return fmt::format("(not a DamagedFileError: {})", error.what());
  }
  return "(no exception)";
}

Checkpoint make_checkpoint(const std::string& job_id) {
  Checkpoint c;
  c.job_id = job_id;
  c.state.epoch = 4;
  c.state.adam_steps = 40;
  for (int i = 0; i < 3000; ++i) {
    c.state.parameters.values.push_back(0.001 * i);
    c.state.parameters.m.push_back(-0.002 * i);
    c.state.parameters.v.push_back(0.003 * i);
  }
  c.state.parameters.buffers = {1.0, 2.0};
  c.state.best_epoch = 3;
  c.state.has_best = true;
  c.state.best_value = 0.75;
  c.state.best_parameters = c.state.parameters;
  c.wall_seconds = 12.5;
  c.dataset_digest = "fedcba9876543210";
  const JobRecord record = testing::make_job_record(0, 0, 4);
  c.epochs = record.epochs;
  return c;
}

// The three kinds of files the runner writes, each through its production writer.
struct WrittenFile {
  std::string kind;
  fs::path path;
};

std::vector<WrittenFile> write_every_kind(const fs::path& dir) {
  write_job_record(dir / "job.h5", testing::make_job_record(1, 2));
  write_summary(dir / "summary.h5", testing::make_summary());
  write_checkpoint(dir / "checkpoint.h5", make_checkpoint("job-a"));
  return {{"job file", dir / "job.h5"}, {"summary", dir / "summary.h5"}, {"checkpoint", dir / "checkpoint.h5"}};
}

// Reads `file` as the runner does for its kind; throws what the reader throws.
void read_as_production(const WrittenFile& file) {
  if (file.kind == "job file") {
    (void)read_job_record(file.path, true);
  } else if (file.kind == "summary") {
    (void)read_summary(file.path);
  } else {
    (void)hdf5::File::open_read_only(file.path);  // read_checkpoint itself turns damage into "no checkpoint"
  }
}

TEST_F(ChecksumBlockTest, FilesOfThisVersionCarryTheBlockAndReadBack) {
  for (const WrittenFile& file : write_every_kind(dir_)) {
    const std::string bytes = read_bytes(file.path);
    ASSERT_GT(bytes.size(), kChecksumBlockBytes + 8) << file.kind;
    EXPECT_EQ(bytes.substr(0, 16), std::string("\x89" "diffpool-h5\r\n\x1a\n", 16)) << file.kind;
    EXPECT_EQ(bytes.substr(kChecksumBlockBytes, 8), std::string("\x89HDF\r\n\x1a\n", 8)) << file.kind;
    // The header records exactly what follows it: rebuilding it from the content gives the same bytes.
    EXPECT_EQ(bytes.substr(0, kChecksumBlockBytes), hdf5::checksum_block_for(bytes.substr(kChecksumBlockBytes)))
        << file.kind;
    EXPECT_EQ(hdf5::verify_checksum_block(file.path), ChecksumCheck::verified) << file.kind;
    EXPECT_TRUE(hdf5::is_readable_hdf5(file.path)) << file.kind;
    EXPECT_NO_THROW(read_as_production(file)) << file.kind;
  }
  EXPECT_EQ(job_file_state(path("job.h5")), StoredFile::intact);
  EXPECT_EQ(checkpoint_state(path("checkpoint.h5")), StoredFile::intact);
  const auto checkpoint = read_checkpoint(path("checkpoint.h5"), "job-a");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->state.parameters.values, make_checkpoint("job-a").state.parameters.values);
  EXPECT_EQ(checkpoint->dataset_digest, "fedcba9876543210");
  // The evaluations' cluster usage comes back with the epochs (a resumed job's curves are whole).
  const std::vector<EpochMetrics> epochs = make_checkpoint("job-a").epochs;
  ASSERT_EQ(checkpoint->epochs.size(), epochs.size());
  for (std::size_t e = 0; e < epochs.size(); ++e) {
    ASSERT_EQ(checkpoint->epochs[e].validation.has_value(), epochs[e].validation.has_value()) << "epoch " << e;
    ASSERT_EQ(checkpoint->epochs[e].test.has_value(), epochs[e].test.has_value()) << "epoch " << e;
    if (epochs[e].validation) {
      EXPECT_EQ(checkpoint->epochs[e].validation->cluster_usage, epochs[e].validation->cluster_usage) << "epoch " << e;
      EXPECT_EQ(checkpoint->epochs[e].validation->cluster_usage.size(), 2u);
    }
    if (epochs[e].test) {
      EXPECT_EQ(checkpoint->epochs[e].test->cluster_usage, epochs[e].test->cluster_usage) << "epoch " << e;
    }
    EXPECT_TRUE(checkpoint->epochs[e].train.cluster_usage.empty());
  }
  EXPECT_EQ(recorded_dataset_digest(path("checkpoint.h5")), "fedcba9876543210");
  EXPECT_EQ(recorded_dataset_digest(path("job.h5")), testing::make_job_record(1, 2).dataset_digest);
  EXPECT_EQ(recorded_dataset_digest(path("summary.h5")), "") << "a file that records none";
  EXPECT_EQ(read_job_record(path("job.h5"), true).outputs.size(), testing::make_job_record(1, 2).outputs.size());
}

// One byte short and one bit flipped in the middle: damaged, named, with the lengths or the CRC-32;
// for every reader (and the runner's states), never a crash.
TEST_F(ChecksumBlockTest, OneByteShortOrOneBitFlippedIsDamaged) {
  for (const WrittenFile& file : write_every_kind(dir_)) {
    const std::string bytes = read_bytes(file.path);
    const fs::path cut = path("cut-" + file.path.filename().string());
    write_bytes(cut, bytes.substr(0, bytes.size() - 1));
    std::string flipped_bytes = bytes;
    const std::size_t middle = kChecksumBlockBytes + (bytes.size() - kChecksumBlockBytes) / 2;
    flipped_bytes[middle] = static_cast<char>(flipped_bytes[middle] ^ 0x10);
    const fs::path flipped = path("flipped-" + file.path.filename().string());
    write_bytes(flipped, flipped_bytes);

    const std::string cut_message = damage_of([&] { read_as_production({file.kind, cut}); });
    EXPECT_NE(cut_message.find("'" + cut.string() + "'"), std::string::npos) << file.kind << ": " << cut_message;
    EXPECT_NE(cut_message.find("damaged (truncated)"), std::string::npos) << file.kind << ": " << cut_message;
    EXPECT_NE(cut_message.find(fmt::format("it is {} bytes long, and its checksum header records {}", bytes.size() - 1,
                                           bytes.size())),
              std::string::npos)
        << file.kind << ": " << cut_message;

    const std::string flip_message = damage_of([&] { read_as_production({file.kind, flipped}); });
    EXPECT_NE(flip_message.find("'" + flipped.string() + "'"), std::string::npos) << file.kind << ": " << flip_message;
    EXPECT_NE(flip_message.find("damaged (corrupt)"), std::string::npos) << file.kind << ": " << flip_message;
    EXPECT_NE(flip_message.find("CRC-32"), std::string::npos) << file.kind << ": " << flip_message;

    for (const fs::path& damaged : {cut, flipped}) {
      EXPECT_FALSE(hdf5::is_readable_hdf5(damaged)) << damaged;
      if (file.kind == "job file") {
        EXPECT_EQ(job_file_state(damaged), StoredFile::damaged) << damaged;
      }
      if (file.kind == "checkpoint") {
        EXPECT_EQ(checkpoint_state(damaged), StoredFile::damaged) << damaged;
        EXPECT_FALSE(read_checkpoint(damaged, "job-a").has_value()) << damaged;
      }
    }
  }
}

// A damaged header: its magic (then the file is not recognised at all), its length field (its own
// CRC-32 catches that), a header cut in the middle, an empty file; and a header of a newer version.
TEST_F(ChecksumBlockTest, DamagedHeadersAndNewerVersions) {
  write_job_record(path("job.h5"), testing::make_job_record(0, 0));
  const std::string bytes = read_bytes(path("job.h5"));
  const auto damaged_copy = [&](const std::string& name, std::size_t at, char bit) {
    std::string copy = bytes;
    copy[at] = static_cast<char>(copy[at] ^ bit);
    write_bytes(path(name), copy);
    return damage_of([&] { (void)read_job_record(path(name), false); });
  };
  EXPECT_NE(damaged_copy("magic.h5", 3, 0x01).find("starts neither with the checksum header"), std::string::npos);
  EXPECT_NE(damaged_copy("length.h5", 25, 0x04).find("does not match its own CRC-32"), std::string::npos);
  write_bytes(path("header-cut.h5"), bytes.substr(0, 100));
  EXPECT_NE(damage_of([&] { (void)read_job_record(path("header-cut.h5"), false); })
                .find("100 bytes long, shorter than its 512-byte checksum header"),
            std::string::npos);
  write_bytes(path("magic-cut.h5"), bytes.substr(0, 7));
  EXPECT_NE(damage_of([&] { (void)read_job_record(path("magic-cut.h5"), false); }).find("damaged (truncated)"),
            std::string::npos);
  write_bytes(path("empty.h5"), "");
  EXPECT_NE(damage_of([&] { (void)hdf5::File::open_read_only(path("empty.h5")); }).find("it is empty"),
            std::string::npos);
  write_bytes(path("appended.h5"), bytes + "x");
  EXPECT_NE(damage_of([&] { (void)read_job_record(path("appended.h5"), false); }).find("damaged (corrupt)"),
            std::string::npos);
  for (const char* name : {"magic.h5", "length.h5", "header-cut.h5", "magic-cut.h5", "empty.h5", "appended.h5"}) {
    EXPECT_FALSE(hdf5::is_readable_hdf5(path(name))) << name;
    EXPECT_EQ(job_file_state(path(name)), StoredFile::damaged) << name;
  }

  // Version 2 with a header CRC-32 that matches (zlib's crc32 over bytes [0, 36), stored at 36):
  // refused as a newer format, not as damage.
  std::string newer = bytes;
  newer[16] = 2;
  const auto header_crc = static_cast<std::uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(newer.data()), 36));
  for (int i = 0; i < 4; ++i) newer[36 + i] = static_cast<char>((header_crc >> (8 * i)) & 0xffu);
  write_bytes(path("newer.h5"), newer);
  try {
    (void)read_job_record(path("newer.h5"), false);
    ADD_FAILURE() << "a header of version 2 was read";
  } catch (const DamagedFileError& error) {
    ADD_FAILURE() << "a newer version is called damaged: " << error.what();
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("format version 2, and this diffpool reads version 1"), std::string::npos)
        << error.what();
  }
  EXPECT_FALSE(hdf5::is_readable_hdf5(path("newer.h5")));
}

// The inputs that crash or hang Debian's libhdf5 (tests/fuzz/known/job_record; the first byte is
// the fuzz target's flag byte), as files of this version whose recorded CRC-32 is wrong: refused
// with plain reads, so libhdf5 never parses them (it would crash this test).
TEST_F(ChecksumBlockTest, KnownLibhdf5CrashesWithAWrongChecksumAreDamaged) {
  const fs::path known = fs::path(testing::source_dir()) / "tests/fuzz/known/job_record";
  int inputs = 0;
  for (const auto& entry : fs::directory_iterator(known)) {
    const std::string content = read_bytes(entry.path()).substr(1);
    const fs::path file = path(entry.path().filename().string() + ".h5");
    write_bytes(file, hdf5::checksum_block_for(content, 0x00000001u) + content);
    const std::string message = damage_of([&] { (void)read_job_record(file, true); });
    EXPECT_NE(message.find("damaged (corrupt)"), std::string::npos) << entry.path() << ": " << message;
    EXPECT_NE(message.find(file.string()), std::string::npos) << message;
    EXPECT_FALSE(hdf5::is_readable_hdf5(file)) << entry.path();
    EXPECT_EQ(job_file_state(file), StoredFile::damaged) << entry.path();
    ++inputs;
  }
  EXPECT_GE(inputs, 5) << "tests/fuzz/known/job_record holds fewer inputs than expected";
}

// A job file written by an earlier version (no block: the HDF5 signature at byte 0; the fuzz
// corpus keeps one, after its flag byte) is still read, with libhdf5's checks only.
TEST_F(ChecksumBlockTest, FilesOfEarlierVersionsAreStillRead) {
  const fs::path seed = fs::path(testing::source_dir()) / "tests/fuzz/corpus/job_record/job-with-outputs.outputs";
  write_bytes(path("legacy.h5"), read_bytes(seed).substr(1));
  EXPECT_EQ(hdf5::verify_checksum_block(path("legacy.h5")), ChecksumCheck::absent);
  EXPECT_TRUE(hdf5::is_readable_hdf5(path("legacy.h5")));
  EXPECT_EQ(job_file_state(path("legacy.h5")), StoredFile::intact);
  const JobRecord legacy = read_job_record(path("legacy.h5"), true);
  EXPECT_FALSE(legacy.job_id.empty());
  EXPECT_FALSE(legacy.outputs.empty());
  // The same HDF5 bytes behind a block of this version read the same (libhdf5 moves its base address).
  const std::string content = read_bytes(path("legacy.h5"));
  write_bytes(path("wrapped.h5"), hdf5::checksum_block_for(content) + content);
  EXPECT_EQ(hdf5::verify_checksum_block(path("wrapped.h5")), ChecksumCheck::verified);
  EXPECT_EQ(read_job_record(path("wrapped.h5"), true).job_id, legacy.job_id);
}

// read_intact_job_record decides what job_file_state decides, and hands the record read on the
// way (the summary and the cost estimate read each job file once).
TEST_F(ChecksumBlockTest, IntactJobRecordsAreReadOnceDamagedOnesAreNamed) {
  write_job_record(path("job.h5"), testing::make_job_record(1, 2));
  std::string flipped = read_bytes(path("job.h5"));
  flipped[flipped.size() / 2] ^= 0x01;
  write_bytes(path("flipped.h5"), flipped);
  StoredFile state = StoredFile::damaged;
  const std::optional<JobRecord> intact = read_intact_job_record(path("job.h5"), &state);
  EXPECT_EQ(state, StoredFile::intact);
  ASSERT_TRUE(intact);
  EXPECT_EQ(intact->job_id, read_job_record(path("job.h5"), false).job_id);
  EXPECT_EQ(intact->epochs.size(), testing::make_job_record(1, 2).epochs.size());
  EXPECT_TRUE(intact->outputs.empty());  // the record without outputs
  EXPECT_FALSE(read_intact_job_record(path("flipped.h5"), &state));
  EXPECT_EQ(state, StoredFile::damaged);
  EXPECT_FALSE(read_intact_job_record(path("missing.h5"), &state));
  EXPECT_EQ(state, StoredFile::missing);
  for (const char* name : {"job.h5", "flipped.h5", "missing.h5"}) {
    read_intact_job_record(path(name), &state);
    EXPECT_EQ(state, job_file_state(path(name))) << name;
  }
  // A file of an earlier version (no block) still gets libhdf5's object-by-object check, and reads.
  const fs::path seed = fs::path(testing::source_dir()) / "tests/fuzz/corpus/job_record/job-with-outputs.outputs";
  write_bytes(path("legacy.h5"), read_bytes(seed).substr(1));
  EXPECT_TRUE(read_intact_job_record(path("legacy.h5"), &state));
  EXPECT_EQ(state, StoredFile::intact);
}

// A file verified once is not read whole again while it is unchanged (a resumed run looks at each
// finished job file several times), and any change after the verification is still found: in
// place (a new change time), by a rename over it (a new inode), and within the same clock tick as
// the verification of a file written just before (such a file is not remembered).
TEST_F(ChecksumBlockTest, AVerifiedFileIsNotReadAgainUntilItChanges) {
  write_job_record(path("settled.h5"), testing::make_job_record(1, 2));
  write_job_record(path("other.h5"), testing::make_job_record(3, 1));
  const std::string bytes = read_bytes(path("settled.h5"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // older than the 2 s settling time

  const std::uint64_t before = hdf5::checksum_files_read();
  EXPECT_EQ(hdf5::verify_checksum_block(path("settled.h5")), ChecksumCheck::verified);
  EXPECT_EQ(hdf5::checksum_files_read(), before + 1);
  EXPECT_EQ(hdf5::verify_checksum_block(path("settled.h5")), ChecksumCheck::verified);
  EXPECT_TRUE(hdf5::is_readable_hdf5(path("settled.h5")));
  EXPECT_TRUE(read_intact_job_record(path("settled.h5")));
  EXPECT_EQ(read_job_record(path("settled.h5"), true).job_id, testing::make_job_record(1, 2).job_id);
  EXPECT_EQ(hdf5::checksum_files_read(), before + 1) << "a verified, unchanged file was read whole again";

  // One bit flipped in place, the length kept.
  {
    std::fstream f(path("settled.h5"), std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(bytes.size() / 2);
    f.seekp(middle);
    f.put(static_cast<char>(bytes[bytes.size() / 2] ^ 0x04));
  }
  EXPECT_NE(damage_of([&] { hdf5::verify_checksum_block(path("settled.h5")); }).find("damaged (corrupt)"),
            std::string::npos);
  EXPECT_FALSE(read_intact_job_record(path("settled.h5")));
  EXPECT_FALSE(hdf5::File::open_if_readable(path("settled.h5")));

  // Another file renamed over a verified one is read.
  write_bytes(path("settled.h5"), bytes);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(hdf5::verify_checksum_block(path("settled.h5")), ChecksumCheck::verified);
  const std::uint64_t settled = hdf5::checksum_files_read();
  fs::rename(path("other.h5"), path("settled.h5"));
  EXPECT_EQ(hdf5::verify_checksum_block(path("settled.h5")), ChecksumCheck::verified);
  EXPECT_EQ(hdf5::checksum_files_read(), settled + 1);
  EXPECT_EQ(read_job_record(path("settled.h5")).job_id, testing::make_job_record(3, 1).job_id);

  // A file written just now is read every time, so a change in the same tick is found.
  write_job_record(path("fresh.h5"), testing::make_job_record(1, 2));
  const std::uint64_t fresh = hdf5::checksum_files_read();
  EXPECT_EQ(hdf5::verify_checksum_block(path("fresh.h5")), ChecksumCheck::verified);
  EXPECT_EQ(hdf5::verify_checksum_block(path("fresh.h5")), ChecksumCheck::verified);
  EXPECT_EQ(hdf5::checksum_files_read(), fresh + 2);
  {
    std::fstream f(path("fresh.h5"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kChecksumBlockBytes + 100));
    f.put('\x7f');
  }
  EXPECT_FALSE(hdf5::is_readable_hdf5(path("fresh.h5")));
}

// open_if_readable opens what is_readable_hdf5 accepts and nothing else, the file of an earlier
// version included.
TEST_F(ChecksumBlockTest, OpenIfReadableOpensWholeFilesOnly) {
  for (const WrittenFile& file : write_every_kind(dir_)) {
    {
      const std::scoped_lock lock(hdf5::library_mutex());
      const std::optional<hdf5::File> opened = hdf5::File::open_if_readable(file.path);
      ASSERT_TRUE(opened) << file.kind;
      EXPECT_EQ(opened->path(), file.path);
    }
    std::string flipped = read_bytes(file.path);
    flipped[flipped.size() - 10] ^= 0x01;
    write_bytes(path("flipped.h5"), flipped);
    EXPECT_FALSE(hdf5::File::open_if_readable(path("flipped.h5"))) << file.kind;
    write_bytes(path("cut.h5"), read_bytes(file.path).substr(0, 1000));
    EXPECT_FALSE(hdf5::File::open_if_readable(path("cut.h5"))) << file.kind;
  }
  EXPECT_FALSE(hdf5::File::open_if_readable(path("missing.h5")));
  EXPECT_FALSE(hdf5::File::open_if_readable(dir_));
  write_bytes(path("empty.h5"), "");
  EXPECT_FALSE(hdf5::File::open_if_readable(path("empty.h5")));
  write_bytes(path("text.h5"), "not a result file\n");
  EXPECT_FALSE(hdf5::File::open_if_readable(path("text.h5")));
  const fs::path seed = fs::path(testing::source_dir()) / "tests/fuzz/corpus/job_record/job-with-outputs.outputs";
  write_bytes(path("legacy.h5"), read_bytes(seed).substr(1));
  EXPECT_TRUE(hdf5::File::open_if_readable(path("legacy.h5")));
}

// Independent readers of files with the block: h5dump -H and h5py skip the user block; the Python
// package (results/python) checks the CRC-32 itself and names a damaged file with the same words.
TEST_F(ChecksumBlockTest, H5dumpH5pyAndThePythonReaderReadFilesWithTheBlock) {
  write_job_record(path("job.h5"), testing::make_job_record(1, 2));
  const std::string bytes = read_bytes(path("job.h5"));
  write_bytes(path("cut.h5"), bytes.substr(0, bytes.size() - 1));
  std::string flipped = bytes;
  flipped[bytes.size() / 2 + kChecksumBlockBytes / 2] ^= 0x01;
  write_bytes(path("flipped.h5"), flipped);

  if (fs::exists("/usr/bin/h5dump")) {
    const auto [status, output] = run_command("/usr/bin/h5dump -B -H " + quoted(path("job.h5")));
    EXPECT_EQ(status, 0) << output;
    EXPECT_NE(output.find("USERBLOCK_SIZE 512"), std::string::npos) << output;
    EXPECT_NE(output.find("ATTRIBUTE \"job_id\""), std::string::npos) << output;
    EXPECT_NE(output.find("GROUP \"outputs\""), std::string::npos) << output;
  } else {
    std::printf("h5dump part skipped: no /usr/bin/h5dump (install hdf5-tools)\n");
  }
  const fs::path python = "/usr/bin/python3";
  if (!fs::exists(python) || run_command(python.string() + " -c 'import h5py'").first != 0) {
    GTEST_SKIP() << "Debian's /usr/bin/python3 with python3-h5py is not installed";
  }
  const std::string script = fmt::format(
      "import sys, h5py\n"
      "sys.path.insert(0, '{source}/results/python')\n"
      "from diffpool_results.io import load_job, DamagedFileError\n"
      "with h5py.File('{dir}/job.h5', 'r') as f:\n"
      "    print('h5py job_id', f.attrs['job_id'], f.userblock_size)\n"
      "print('load_job fold', load_job('{dir}/job.h5').fold)\n"
      "for name in ('cut', 'flipped'):\n"
      "    try:\n"
      "        load_job('{dir}/' + name + '.h5')\n"
      "        print(name, 'read')\n"
      "    except DamagedFileError as error:\n"
      "        print(name, 'DamagedFileError', error)\n",
      fmt::arg("source", testing::source_dir()), fmt::arg("dir", dir_.string()));
  write_bytes(path("check.py"), script);
  const auto [status, output] = run_command(python.string() + " " + quoted(path("check.py")));
  EXPECT_EQ(status, 0) << output;
  const JobRecord record = testing::make_job_record(1, 2);
  EXPECT_NE(output.find(fmt::format("h5py job_id {} 512", record.job_id)), std::string::npos) << output;
  EXPECT_NE(output.find("load_job fold 1"), std::string::npos) << output;
  EXPECT_NE(output.find(fmt::format("cut DamagedFileError cannot open file '{}' for reading: the file is damaged "
                                    "(truncated): it is {} bytes long, and its checksum header records {}",
                                    path("cut.h5").string(), bytes.size() - 1, bytes.size())),
            std::string::npos)
      << output;
  EXPECT_NE(output.find(fmt::format("flipped DamagedFileError cannot open file '{}' for reading: the file is damaged "
                                    "(corrupt): the CRC-32 of its {} bytes after the checksum header is",
                                    path("flipped.h5").string(), bytes.size() - kChecksumBlockBytes)),
            std::string::npos)
      << output;
}

}  // namespace
}  // namespace diffpool
