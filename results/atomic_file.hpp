#pragma once
// Writing a file so that a crash, kill or preemption at any moment leaves either no file or a
// complete one at the final path, never a half-written one (HDF5 cannot read a file whose writer
// died before flushing and closing it; a half-written experiment.id would mix experiments).
//
// One function does it for every kind of file: the file is written under a temporary name in the
// same directory (so the rename cannot cross file systems), closed and fsync'ed, then renamed over
// the final path (rename is atomic in POSIX), and the directory is fsync'ed so that the rename
// itself survives a power loss. A killed writer leaves only "<final>.tmp.<pid>", which readers
// never look at; it can be removed once that process is known to be gone. Text and HDF5 files
// have thin adapters below.
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "results/hdf5.hpp"

namespace diffpool {

// A write that failed because the file system is full or the user's disk quota is exhausted
// (ENOSPC, EDQUOT): nothing is wrong with the job or the file, and the same write succeeds once
// space is freed. The runner waits for space, then stops the run to be resumed, instead of
// counting jobs as failed. The message names the file, the folder and the space left there.
class StorageFullError : public LibraryError {
 public:
  using LibraryError::LibraryError;
};

// Whether a failed write of a file into `directory` was for lack of space: the error's text names
// ENOSPC or EDQUOT (as strerror or as HDF5's "errno = N"), or the file system has less than 1 MiB
// left for this user (HDF5 can lose the cause when a close fails). "" if not, else a short cause
// such as "no space left on device in 'runs/x/jobs' (0 bytes free)".
std::string storage_full_cause(std::string_view error_text, const std::filesystem::path& directory);

// "<final_path>.tmp.<pid of this process>".
std::filesystem::path atomic_temporary_path(const std::filesystem::path& final_path);

// Calls write(temporary), which must create the file at `temporary`, fill it and close it; then
// fsyncs it, renames it over `final_path` (replacing an existing file) and fsyncs the directory.
// If anything throws (write, fsync, rename), the temporary file is removed, `final_path` is left as
// it was, and the exception propagates; as StorageFullError when the file system had no room.
void write_atomically(const std::filesystem::path& final_path,
                      const std::function<void(const std::filesystem::path& temporary)>& write);

// A text (or any byte) file, through write_atomically.
void write_text_file_atomically(const std::filesystem::path& path, std::string_view text);

namespace hdf5 {

using diffpool::atomic_temporary_path;

// An HDF5 file, through write_atomically: creates the file in memory, calls write(file), then
// writes its bytes after the checksum block with plain writes, all under library_mutex(). Groups
// and datasets opened inside `write` must be closed when it returns (it is an error to keep one,
// or to close the file). A full disk fails one write() and leaves nothing behind (HDF5 writing to
// the disk itself would keep a file open that it can neither flush nor close). The file is in
// memory twice at the end (HDF5's and the copy written): a job file is megabytes.
void write_file_atomically(const std::filesystem::path& final_path, const std::function<void(File&)>& write);

}  // namespace hdf5
}  // namespace diffpool
