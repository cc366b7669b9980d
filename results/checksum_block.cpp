#include "results/checksum_block.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>

namespace diffpool::hdf5 {

namespace {

constexpr std::string_view kMagic{"\x89" "diffpool-h5\r\n\x1a\n", 16};
constexpr std::string_view kHdf5Signature{"\x89HDF\r\n\x1a\n", 8};
// Field offsets inside the block (see checksum_block.hpp).
constexpr std::size_t kVersionAt = 16, kHeaderBytesAt = 20, kContentBytesAt = 24, kContentCrcAt = 32,
                      kHeaderCrcAt = 36;
static_assert(kMagic.size() == kVersionAt && kHeaderCrcAt + 4 <= kChecksumBlockBytes);
// Files are read in pieces of this size (zlib's crc32 takes a 32-bit length).
constexpr std::size_t kReadPiece = std::size_t{1} << 20;

// Owns one POSIX file descriptor.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }

 private:
  int fd_;
};

void put_u32(std::string& bytes, std::size_t at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xffu);
}
void put_u64(std::string& bytes, std::size_t at, std::uint64_t value) {
  for (std::size_t i = 0; i < 8; ++i) bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xffu);
}
std::uint64_t get_le(std::string_view bytes, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) value |= std::uint64_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  return value;
}

std::uint32_t crc32_of(std::uint32_t crc, const void* data, std::size_t size) {
  return static_cast<std::uint32_t>(::crc32(crc, static_cast<const Bytef*>(data), static_cast<uInt>(size)));
}

std::string header_bytes(std::uint64_t content_bytes, std::uint32_t content_crc32) {
  std::string block(kChecksumBlockBytes, '\0');
  std::copy(kMagic.begin(), kMagic.end(), block.begin());
  put_u32(block, kVersionAt, kChecksumBlockVersion);
  put_u32(block, kHeaderBytesAt, static_cast<std::uint32_t>(kChecksumBlockBytes));
  put_u64(block, kContentBytesAt, content_bytes);
  put_u32(block, kContentCrcAt, content_crc32);
  put_u32(block, kHeaderCrcAt, crc32_of(0, block.data(), kHeaderCrcAt));
  return block;
}

// Reads up to `size` bytes at `offset`; fewer only at the end of the file.
std::size_t read_at(int fd, void* data, std::size_t size, std::uint64_t offset, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::pread(fd, static_cast<char*>(data) + done, size - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(fmt::format("cannot read '{}': {}", path.string(), std::strerror(errno)));
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

// CRC-32 of bytes [offset, end of file); `bytes` is set to how many there were.
std::uint32_t crc32_from(int fd, std::uint64_t offset, std::uint64_t& bytes, const std::filesystem::path& path) {
  std::vector<unsigned char> piece(kReadPiece);
  std::uint32_t crc = crc32_of(0, nullptr, 0);
  bytes = 0;
  for (;;) {
    const std::size_t got = read_at(fd, piece.data(), piece.size(), offset + bytes, path);
    if (got == 0) return crc;
    crc = crc32_of(crc, piece.data(), got);
    bytes += got;
  }
}

// The files this process verified, by what identifies their bytes: a result file is replaced by a
// rename (a new inode) and never changed in place; a change in place (a test flipping a byte, h5py
// "r+") sets the change time. A file is remembered only once its change time is kVerifiedSettled
// old: the file system's timestamps are coarse (a tick, milliseconds), so a change within the same
// tick as the verification could leave them equal; any later change gives a later change time.
using FileIdentity = std::tuple<dev_t, ino_t, off_t, time_t, long, time_t, long>;
constexpr time_t kVerifiedSettled = 2;  // seconds

FileIdentity identity_of(const struct stat& s) {
  return {s.st_dev, s.st_ino, s.st_size, s.st_mtim.tv_sec, s.st_mtim.tv_nsec, s.st_ctim.tv_sec, s.st_ctim.tv_nsec};
}

class VerifiedFiles {
 public:
  bool contains(const struct stat& s) {
    const std::lock_guard<std::mutex> lock(mutex_);
    return files_.count(identity_of(s)) != 0;
  }
  void add(const struct stat& s) {
    timespec now{};
    if (::clock_gettime(CLOCK_REALTIME, &now) != 0 || now.tv_sec - s.st_ctim.tv_sec < kVerifiedSettled) return;
    const std::lock_guard<std::mutex> lock(mutex_);
    if (files_.size() >= kMaxFiles) files_.clear();  // a bound, far above any experiment's files
    files_.insert(identity_of(s));
  }

 private:
  static constexpr std::size_t kMaxFiles = 1 << 20;
  std::mutex mutex_;
  std::set<FileIdentity> files_;
};

std::atomic<std::uint64_t> files_read{0};

VerifiedFiles& verified_files() {
  static VerifiedFiles files;
  return files;
}

[[noreturn]] void throw_damaged(const std::filesystem::path& path, std::string_view kind, const std::string& detail) {
  throw DamagedFileError(fmt::format("cannot open file '{}' for reading: the file is damaged ({}): {}", path.string(),
                                     kind, detail),
                         fmt::format("{}: {}", kind, detail));
}

}  // namespace

std::string checksum_block_for(std::string_view content, std::uint32_t content_crc32_xor) {
  return header_bytes(content.size(), crc32_of(crc32_of(0, nullptr, 0), content.data(), content.size()) ^
                                          content_crc32_xor);
}

ChecksumCheck verify_checksum_block(const std::filesystem::path& path) {
  struct stat status {};
  // A file verified before by this process, unchanged since: one stat call instead of reading it
  // all again (a resumed run looks at each finished job file several times).
  if (::stat(path.c_str(), &status) == 0 && S_ISREG(status.st_mode) && verified_files().contains(status))
    return ChecksumCheck::verified;
  // O_NONBLOCK: a FIFO at `path` must not block the open (it is then refused as no regular file).
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid() || ::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode)) return ChecksumCheck::absent;
  const auto file_bytes = static_cast<std::uint64_t>(status.st_size);

  std::string header(kChecksumBlockBytes, '\0');
  header.resize(read_at(fd.get(), header.data(), header.size(), 0, path));
  if (std::string_view(header).starts_with(kHdf5Signature)) return ChecksumCheck::absent;  // an earlier version
  if (!header.empty() && header.size() < kMagic.size() && kMagic.starts_with(header)) {
    throw_damaged(path, "truncated", fmt::format("it is {} bytes long, a part of a checksum header", file_bytes));
  }
  if (!std::string_view(header).starts_with(kMagic)) {
    throw_damaged(path, "not a result file",
                  file_bytes == 0 ? std::string("it is empty (0 bytes)")
                                  : fmt::format("it is {} bytes long and starts neither with the checksum header of "
                                                "diffpool's result files nor with an HDF5 signature",
                                                file_bytes));
  }
  if (header.size() < kChecksumBlockBytes) {
    throw_damaged(path, "truncated", fmt::format("it is {} bytes long, shorter than its {}-byte checksum header",
                                                 file_bytes, kChecksumBlockBytes));
  }
  const auto header_crc = static_cast<std::uint32_t>(get_le(header, kHeaderCrcAt, 4));
  if (crc32_of(0, header.data(), kHeaderCrcAt) != header_crc) {
    throw_damaged(path, "corrupt", fmt::format("its checksum header (the first {} bytes) does not match its own "
                                               "CRC-32",
                                               kChecksumBlockBytes));
  }
  const auto version = static_cast<std::uint32_t>(get_le(header, kVersionAt, 4));
  if (version != kChecksumBlockVersion) {
    throw InputError(fmt::format("cannot open file '{}' for reading: its checksum header has format version {}, "
                                 "and this diffpool reads version {} (the file was written by a newer diffpool)",
                                 path.string(), version, kChecksumBlockVersion));
  }
  const auto block_bytes = get_le(header, kHeaderBytesAt, 4);
  if (block_bytes != kChecksumBlockBytes) {
    throw_damaged(path, "corrupt", fmt::format("its checksum header says the HDF5 data start at byte {}, not {}",
                                               block_bytes, kChecksumBlockBytes));
  }
  const std::uint64_t recorded_bytes = get_le(header, kContentBytesAt, 8);
  const std::uint64_t total_recorded = recorded_bytes + kChecksumBlockBytes;
  if (file_bytes != total_recorded) {
    throw_damaged(path, file_bytes < total_recorded ? "truncated" : "corrupt",
                  fmt::format("it is {} bytes long, and its checksum header records {} ({} + {} bytes of header)",
                              file_bytes, total_recorded, recorded_bytes, kChecksumBlockBytes));
  }
  std::uint64_t content_bytes = 0;
  files_read.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t computed = crc32_from(fd.get(), kChecksumBlockBytes, content_bytes, path);
  const auto recorded = static_cast<std::uint32_t>(get_le(header, kContentCrcAt, 4));
  if (content_bytes != recorded_bytes) {  // it changed while we read it
    throw_damaged(path, "truncated", fmt::format("{} bytes after its checksum header could be read, and the header "
                                                 "records {}",
                                                 content_bytes, recorded_bytes));
  }
  if (computed != recorded) {
    throw_damaged(path, "corrupt", fmt::format("the CRC-32 of its {} bytes after the checksum header is {:#010x}, and "
                                               "the header records {:#010x}",
                                               content_bytes, computed, recorded));
  }
  verified_files().add(status);
  return ChecksumCheck::verified;
}

std::uint64_t checksum_files_read() noexcept { return files_read.load(std::memory_order_relaxed); }

void seal_checksum_block(const std::filesystem::path& path) {
  const FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) throw Error(fmt::format("cannot open '{}' to write its checksum: {}", path.string(), std::strerror(errno)));
  std::array<char, kHdf5Signature.size()> signature{};
  const std::size_t got = read_at(fd.get(), signature.data(), signature.size(), kChecksumBlockBytes, path);
  DP_CHECK(got == signature.size() && std::string_view(signature.data(), got) == kHdf5Signature,
           "'{}' was not created with a {}-byte user block: no HDF5 signature at byte {}", path.string(),
           kChecksumBlockBytes, kChecksumBlockBytes);
  std::uint64_t content_bytes = 0;
  const std::uint32_t crc = crc32_from(fd.get(), kChecksumBlockBytes, content_bytes, path);
  const std::string header = header_bytes(content_bytes, crc);
  std::size_t done = 0;
  while (done < header.size()) {
    const ssize_t put = ::pwrite(fd.get(), header.data() + done, header.size() - done, static_cast<off_t>(done));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) throw Error(fmt::format("cannot write the checksum of '{}': {}", path.string(), std::strerror(errno)));
    done += static_cast<std::size_t>(put);
  }
}

}  // namespace diffpool::hdf5
