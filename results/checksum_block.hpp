#pragma once
// The checksum block: how a damaged result file is recognised before libhdf5 parses it.
//
// Debian's libhdf5 1.10.8 trusts what a file says about itself: a damaged job file (one byte
// changed in the global heap, an object header that claims terabytes) makes it read out of
// bounds, allocate terabytes or loop forever (tests/fuzz/known/). HDF5's own checks cannot stop
// that, so every HDF5 file this project writes carries a CRC-32 of itself, checked with plain
// file reads before libhdf5 opens the file:
//
//   bytes [0, 512)   the HDF5 *user block*, reserved at creation (H5Pset_userblock); libhdf5,
//                    h5py and h5dump skip it and find the HDF5 data at byte 512. It holds:
//     [0, 16)   magic "\x89diffpool-h5\r\n\x1a\n" (PNG's trick: a high byte and a CR LF pair
//               make a text-mode copy or a 7-bit channel show as damage, not as another file)
//     [16, 20)  format version, uint32 little-endian: 1
//     [20, 24)  header bytes, uint32: 512 (where the HDF5 data start)
//     [24, 32)  content bytes, uint64: the length of the rest of the file
//     [32, 36)  content CRC-32 (zlib's crc32, as Python's zlib.crc32) of the rest of the file
//     [36, 40)  header CRC-32 of bytes [0, 36): a damaged header is told from a newer format
//     [40, 512) zero
//   bytes [512, end) the HDF5 file, as libhdf5 wrote it (its superblock records base address 512).
//
// write_file_atomically (atomic_file.hpp) creates every file with the block, closes it, fills the
// block (seal_checksum_block) and only then renames it into place. Readers (File::open_read_only,
// is_readable_hdf5, and so read_job_record, read_summary and checkpoints) call
// verify_checksum_block first. A file without the block, written by an earlier version (the HDF5
// signature at byte 0), is read as before, with libhdf5's own checks only.
//
// Changing a file in place afterwards (h5py in "r+" mode, say) makes it read as corrupt: result
// files are written once and never modified.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "engine/core/error.hpp"

namespace diffpool::hdf5 {

// The size of the user block that holds the header; libhdf5 needs a power of two >= 512.
inline constexpr std::size_t kChecksumBlockBytes = 512;
inline constexpr std::uint32_t kChecksumBlockVersion = 1;

// A result file that is there but damaged: truncated, corrupt, or not a result file at all. It
// derives from LibraryError, the type of libhdf5's own "damaged file" errors, so that every caller
// treats a damaged file the same whichever check found it. The message names the file.
class DamagedFileError : public LibraryError {
 public:
  using LibraryError::LibraryError;
  DamagedFileError(const std::string& message, std::string reason) : LibraryError(message), reason_(std::move(reason)) {}
  // What is wrong, without the file's name ("truncated: it is N bytes long, ..."); empty when the
  // error was made from a message alone.
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

enum class ChecksumCheck {
  verified,  // the block is there and the length and the CRC-32 of the rest match it
  absent,    // no block: a file of an earlier version (HDF5 signature at byte 0), or one that
             // cannot be opened or is not a regular file (libhdf5's open then says why)
};

// Checks `path` with plain reads (no libhdf5). Throws DamagedFileError naming the file and what
// is wrong: shorter or longer than its header records (truncated: both lengths), a CRC-32 that does
// not match (corrupt: both values), a damaged header, or a file that starts neither with the block
// nor with an HDF5 signature (empty, garbage, a damaged magic). A header of a newer format version
// throws InputError. Reads the whole file (zlib's crc32, see results/README.md for the cost),
// except a file this process verified before and that has not changed since (same device, inode,
// size, modification and change times, the change time at least 2 s older than that
// verification): one stat call then.
ChecksumCheck verify_checksum_block(const std::filesystem::path& path);

// How many files verify_checksum_block has read whole in this process (for tests and profiles:
// a file verified before and unchanged since does not count again).
std::uint64_t checksum_files_read() noexcept;

// Fills the block of `path`, a closed HDF5 file created with a user block of kChecksumBlockBytes:
// CRC-32 and length of everything after it. Throws Error when the file cannot be read or written.
void seal_checksum_block(const std::filesystem::path& path);

// The 512 bytes of a header that records `content` (what follows the block); for tests and the
// fuzz target, which build files of this version from bytes. With content_crc32_xor != 0 the
// recorded CRC-32 is wrong by those bits (the header's own CRC-32 stays right).
std::string checksum_block_for(std::string_view content, std::uint32_t content_crc32_xor = 0);

}  // namespace diffpool::hdf5
