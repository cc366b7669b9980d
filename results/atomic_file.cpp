#include "results/atomic_file.hpp"

#include "results/checksum_block.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <system_error>

namespace diffpool {

namespace {

// fsync a file or a directory by path; `what` names it in the error.
void fsync_path(const std::filesystem::path& path, bool directory, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) {
    throw Error(fmt::format("cannot open {} '{}' to fsync it: {}", what, path.string(), std::strerror(errno)));
  }
  const int status = ::fsync(fd);
  const int fsync_errno = errno;
  ::close(fd);
  if (status != 0) {
    throw Error(fmt::format("cannot fsync {} '{}': {}", what, path.string(), std::strerror(fsync_errno)));
  }
}

}  // namespace

std::string storage_full_cause(std::string_view error_text, const std::filesystem::path& directory) {
  const auto names = [&](std::initializer_list<std::string> words) {
    for (const std::string& w : words)
      if (error_text.find(w) != std::string_view::npos) return true;
    return false;
  };
  struct statvfs fs {};
  const bool known = ::statvfs(directory.empty() ? "." : directory.c_str(), &fs) == 0;
  const unsigned long long free_bytes = known ? static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize : 0;
  const std::string left = fmt::format(" in '{}'{}", directory.string(),
                                       known ? fmt::format(" ({} bytes free)", free_bytes) : std::string());
  if (names({std::strerror(EDQUOT), fmt::format("errno = {},", EDQUOT)})) return "disk quota exceeded" + left;
  if (names({std::strerror(ENOSPC), fmt::format("errno = {},", ENOSPC)}) || (known && free_bytes < (1ull << 20)))
    return "no space left on device" + left;
  return {};
}

std::filesystem::path atomic_temporary_path(const std::filesystem::path& final_path) {
  std::filesystem::path temporary = final_path;
  temporary += fmt::format(".tmp.{}", ::getpid());
  return temporary;
}

void write_atomically(const std::filesystem::path& final_path,
                      const std::function<void(const std::filesystem::path& temporary)>& write) {
  const std::filesystem::path temporary = atomic_temporary_path(final_path);
  std::filesystem::path directory = final_path.parent_path();
  if (directory.empty()) directory = ".";
  const auto remove_temporary = [&] {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
  };
  try {
    write(temporary);
    fsync_path(temporary, false, "file");
    if (std::rename(temporary.c_str(), final_path.c_str()) != 0) {
      throw Error(fmt::format("cannot rename '{}' to '{}': {}", temporary.string(), final_path.string(),
                              std::strerror(errno)));
    }
    fsync_path(directory, true, "directory");
  } catch (const std::exception& e) {
    remove_temporary();
    if (dynamic_cast<const StorageFullError*>(&e) != nullptr) throw;
    const std::string cause = storage_full_cause(e.what(), directory);
    if (cause.empty()) throw;
    throw StorageFullError(fmt::format("cannot write '{}': {}", final_path.string(), cause));
  } catch (...) {
    remove_temporary();
    throw;
  }
}

void write_text_file_atomically(const std::filesystem::path& path, std::string_view text) {
  write_atomically(path, [&](const std::filesystem::path& temporary) {
    std::ofstream stream(temporary, std::ios::binary | std::ios::trunc);
    stream.write(text.data(), static_cast<std::streamsize>(text.size()));
    stream.close();
    if (!stream) throw Error(fmt::format("cannot write '{}': {}", temporary.string(), std::strerror(errno)));
  });
}

namespace hdf5 {

namespace {

// The in-memory file's bytes, the file closed. With HDF5's default ("weak") close, a group or
// dataset still open keeps the file open after H5Fclose, and what it held would be missing from
// the image: refuse.
std::vector<char> close_written_file(File& file, const std::filesystem::path& final_path) {
  file.flush();
  const std::size_t open_objects = file.open_object_count();
  if (open_objects != 1) {
    throw Error(fmt::format("write_file_atomically('{}'): {} HDF5 objects of the file are still open "
                            "after the write callback returned; close every Group and Dataset inside it",
                            final_path.string(), open_objects - 1));
  }
  std::vector<char> image = file.image();
  file.close();
  return image;
}

// `zeros` zero bytes, then `bytes`, into a new file at `path`; a failed write (a full disk) throws
// Error with the system's words.
void write_bytes(const std::filesystem::path& path, std::size_t zeros, const std::vector<char>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw Error(fmt::format("cannot create '{}': {}", path.string(), std::strerror(errno)));
  const auto fail = [&](const char* what) {
    const int error = errno;
    ::close(fd);
    throw Error(fmt::format("cannot {} '{}': {}", what, path.string(), std::strerror(error)));
  };
  const std::vector<char> block(zeros, '\0');
  for (const std::vector<char>* part : {&block, &bytes}) {
    const char* at = part->data();
    std::size_t left = part->size();
    while (left > 0) {
      const ssize_t n = ::write(fd, at, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write");
      at += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  if (::close(fd) != 0) {  // NFS reports a full disk or quota as late as here
    throw Error(fmt::format("cannot write '{}' (close): {}", path.string(), std::strerror(errno)));
  }
}

}  // namespace

void write_file_atomically(const std::filesystem::path& final_path, const std::function<void(File&)>& write) {
  const std::scoped_lock lock(library_mutex());
  write_atomically(final_path, [&](const std::filesystem::path& temporary) {
    // Built in memory, then written with plain writes: a full disk is then one failed write(),
    // which leaves nothing behind, where HDF5 writing the file itself would keep a file it could
    // neither flush nor close (and could not create again under the same name).
    File file = File::create_in_memory(temporary, kChecksumBlockBytes);
    write(file);
    if (!file.valid())
      throw Error(fmt::format("write_file_atomically('{}'): the write callback closed the file; leave that to "
                              "write_file_atomically",
                              final_path.string()));
    write_bytes(temporary, kChecksumBlockBytes, close_written_file(file, final_path));
    // The CRC-32 of the closed file into its user block, before the rename makes it visible.
    seal_checksum_block(temporary);
  });
}

}  // namespace hdf5
}  // namespace diffpool
