#include "results/atomic_file.hpp"

#include "results/checksum_block.hpp"

#include <fcntl.h>
#include <fmt/format.h>
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
  try {
    write(temporary);
    fsync_path(temporary, false, "file");
    if (std::rename(temporary.c_str(), final_path.c_str()) != 0) {
      throw Error(fmt::format("cannot rename '{}' to '{}': {}", temporary.string(), final_path.string(),
                              std::strerror(errno)));
    }
    fsync_path(directory, true, "directory");
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
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

void close_written_file(File& file, const std::filesystem::path& final_path) {
  file.flush();
  // With HDF5's default ("weak") close, a group or dataset still open keeps the file open after
  // H5Fclose, and what it holds would be written after our checksum, fsync and rename: refuse.
  const std::size_t open_objects = file.open_object_count();
  if (open_objects != 1) {
    throw Error(fmt::format("write_file_atomically('{}'): {} HDF5 objects of the file are still open "
                            "after the write callback returned; close every Group and Dataset inside it",
                            final_path.string(), open_objects - 1));
  }
  file.close();
}

}  // namespace

void write_file_atomically(const std::filesystem::path& final_path, const std::function<void(File&)>& write) {
  const std::scoped_lock lock(library_mutex());
  write_atomically(final_path, [&](const std::filesystem::path& temporary) {
    File file = File::create(temporary, kChecksumBlockBytes);
    write(file);
    if (file.valid()) close_written_file(file, final_path);  // else the callback closed it itself
    // The CRC-32 of the closed file into its user block, before the rename makes it visible.
    seal_checksum_block(temporary);
  });
}

}  // namespace hdf5
}  // namespace diffpool
